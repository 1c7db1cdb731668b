//! The management endpoints that answered 404 until now, on real nodes over HTTP, with the
//! status codes and bodies a RabbitMQ 3.10.8 node gave for the same requests: the health
//! checks (`node-is-quorum-critical` on a three-node cluster whose members are killed and
//! restarted), limit and operator-policy writes, renaming the cluster, queue actions,
//! WarrenMQ's own `/api/warren/groups`, and unknown paths answered before authentication.

mod common;

use std::time::{Duration, Instant};

use common::cluster::Cluster;
use common::http::{Http, Response};
use common::Server;
use serde_json::{json, Value};

/// A user with `tags` and full permissions on `/`, signed in.
fn user(admin: &Http, name: &str, tags: &str) -> Http {
    let body = json!({"password": "pw", "tags": tags}).to_string();
    assert_eq!(admin.put(&format!("/api/users/{name}"), &body).status, 201);
    let all = r#"{"configure":".*","write":".*","read":".*"}"#;
    let r = admin.put(&format!("/api/permissions/%2F/{name}"), all);
    assert_eq!(r.status, 201, "{}", r.body);
    Http::as_user(admin.port, name, "pw")
}

#[track_caller]
fn answer(r: &Response, status: u16, body: Value) {
    assert_eq!((r.status, r.json()), (status, body), "{}", r.body);
}

#[track_caller]
fn bare(r: &Response, status: u16) {
    assert_eq!((r.status, r.body.as_str()), (status, ""), "{r:?}");
}

#[track_caller]
fn refused(r: &Response, reason: &str) {
    answer(r, 400, json!({"error": "bad_request", "reason": reason}));
}

#[track_caller]
fn not_admin(r: &Response) {
    answer(
        r,
        401,
        json!({"error": "not_authorised", "reason": "Not administrator user"}),
    );
}

#[test]
fn unknown_paths_are_answered_before_authentication() {
    let server = Server::start();
    let api = Http::ready(server.http_port);
    let not_found = json!({"error": "Object Not Found", "reason": "Not Found"});
    let wrong = Http::as_user(server.http_port, "guest", "wrong");
    for client in [&Http::anonymous(server.http_port), &wrong, &api] {
        for path in [
            "/api/nosuch",
            "/api/queues/x/q/nosuch",
            "/api/health/checks/x",
        ] {
            answer(&client.get(path), 404, not_found.clone());
        }
        // An encoded slash in a path no route takes: RabbitMQ's router answers a bare 400.
        bare(&client.get("/api/nosuch/%2F"), 400);
        bare(&client.get("/api/queues/%2F/q/nosuch"), 400);
    }
    // A known path still needs credentials.
    let r = Http::anonymous(server.http_port).get("/api/health/checks/virtual-hosts");
    bare(&r, 401);
    let r = wrong.get("/api/health/checks/port-listener/abc");
    answer(
        &r,
        401,
        json!({"error": "not_authorized", "reason": "Login failed"}),
    );
}

#[test]
fn health_checks_answer_as_rabbitmq_s() {
    let server = Server::start();
    let api = Http::ready(server.http_port);
    // Any management user may run them.
    let manager = user(&api, "manager", "management");
    let ok = json!({"status": "ok"});
    let single = json!({"status": "ok", "reason": "single node cluster"});
    for client in [&api, &manager] {
        answer(
            &client.get("/api/health/checks/node-is-quorum-critical"),
            200,
            single.clone(),
        );
        answer(
            &client.get("/api/health/checks/node-is-mirror-sync-critical"),
            200,
            single.clone(),
        );
        answer(
            &client.get("/api/health/checks/virtual-hosts"),
            200,
            ok.clone(),
        );
    }
    assert_eq!(
        api.post("/api/health/checks/virtual-hosts", "{}").status,
        405
    );

    // Every port the node listens on, and one it does not.
    let ports = [
        server.port,
        server.http_port,
        server.prometheus_port,
        server.cluster_port,
    ];
    for port in ports {
        let r = api.get(&format!("/api/health/checks/port-listener/{port}"));
        answer(&r, 200, json!({"status": "ok", "port": port}));
    }
    let r = api.get(&format!(
        "/api/health/checks/port-listener/+{}",
        server.port
    ));
    answer(&r, 200, json!({"status": "ok", "port": server.port}));
    let r = api.get("/api/health/checks/port-listener/1");
    assert_eq!(r.status, 503, "{}", r.body);
    let body = r.json();
    assert_eq!(
        (&body["status"], &body["reason"], &body["missing"]),
        (&json!("failed"), &json!("No active listener"), &json!(1)),
        "{body}"
    );
    let mut listed: Vec<u64> = body["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_u64().unwrap())
        .collect();
    listed.sort();
    let mut want: Vec<u64> = ports.iter().map(|&p| p as u64).collect();
    want.sort();
    assert_eq!(listed, want);
    refused(
        &api.get("/api/health/checks/port-listener/abc"),
        "Invalid port",
    );

    // Protocols by RabbitMQ's names and aliases.
    for (asked, protocol) in [
        ("amqp", "amqp"),
        ("amqp091", "amqp"),
        ("AMQP0-9-1", "amqp"),
        ("http", "http"),
        ("management", "http"),
        ("http%2Fprometheus", "http/prometheus"),
        ("clustering", "clustering"),
        ("distribution", "clustering"),
    ] {
        let r = api.get(&format!("/api/health/checks/protocol-listener/{asked}"));
        answer(&r, 200, json!({"status": "ok", "protocol": protocol}));
    }
    let r = api.get("/api/health/checks/protocol-listener/mqtt311");
    assert_eq!(r.status, 503, "{}", r.body);
    let body = r.json();
    assert_eq!(
        (&body["status"], &body["reason"], &body["missing"]),
        (
            &json!("failed"),
            &json!("No active listener"),
            &json!("mqtt")
        ),
        "{body}"
    );
    let mut protocols: Vec<&str> = body["protocols"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    protocols.sort();
    assert_eq!(protocols, ["amqp", "clustering", "http", "http/prometheus"]);

    // No TLS listener, so no certificate expires; the arguments are still checked.
    for path in ["1/days", "2/WEEKS", "-1/months", "3/years"] {
        let r = api.get(&format!("/api/health/checks/certificate-expiration/{path}"));
        answer(&r, 200, ok.clone());
    }
    refused(
        &api.get("/api/health/checks/certificate-expiration/x/foo"),
        "Invalid expiration value.",
    );
    refused(
        &api.get("/api/health/checks/certificate-expiration/1/foo"),
        "Time unit not recognised. Supported units: days, weeks, months, years.",
    );
}

#[test]
fn vhost_and_user_limits_are_set_and_cleared_one_at_a_time() {
    let server = Server::start();
    let api = Http::ready(server.http_port);
    let limits = |path: &str| api.get(path).json();

    // One vhost limit at a time, merged into the vhost's others.
    bare(
        &api.put("/api/vhost-limits/%2F/max-queues", r#"{"value":10}"#),
        204,
    );
    bare(
        &api.put("/api/vhost-limits/%2F/max-connections", r#"{"value":-1}"#),
        204,
    );
    assert_eq!(
        limits("/api/vhost-limits/%2F"),
        json!([{"vhost": "/", "value": {"max-connections": -1, "max-queues": 10}}])
    );
    refused(
        &api.put("/api/vhost-limits/%2F/max-queues", r#"{"value":"x"}"#),
        "Validation failed\n\nmax-queues should be a number, actually was <<\"x\">>\n",
    );
    refused(
        &api.put("/api/vhost-limits/%2F/max-queues", r#"{"value":10.5}"#),
        "Validation failed\n\nmax-queues should be a number, actually was 10.5\n",
    );
    refused(
        &api.put("/api/vhost-limits/%2F/max-foo", r#"{"value":1}"#),
        "Validation failed\n\nUnrecognised terms [{<<\"max-foo\">>,1}] in limits\n",
    );
    refused(
        &api.put("/api/vhost-limits/%2F/max-queues", "{}"),
        "[{key_missing,value}]",
    );
    refused(
        &api.put("/api/vhost-limits/%2F/max-queues", "notjson"),
        "not_json",
    );
    answer(
        &api.put("/api/vhost-limits/nov/max-queues", r#"{"value":1}"#),
        404,
        json!({"error": "not_found", "reason": "vhost_not_found"}),
    );
    bare(&api.get("/api/vhost-limits/%2F/max-queues"), 405);
    bare(&api.delete("/api/vhost-limits/%2F/max-queues"), 204);
    assert_eq!(
        limits("/api/vhost-limits/%2F"),
        json!([{"vhost": "/", "value": {"max-connections": -1}}])
    );
    // Clearing one the vhost does not have is a success; the last one leaves none.
    bare(&api.delete("/api/vhost-limits/%2F/max-queues"), 204);
    bare(&api.delete("/api/vhost-limits/%2F/max-connections"), 204);
    assert_eq!(limits("/api/vhost-limits"), json!([]));
    bare(&api.delete("/api/vhost-limits/nov/max-queues"), 500);

    // A user's limits, merged the same way.
    bare(
        &api.put("/api/user-limits/guest/max-channels", r#"{"value":5}"#),
        204,
    );
    bare(
        &api.put("/api/user-limits/guest/max-connections", r#"{"value":7}"#),
        204,
    );
    assert_eq!(
        limits("/api/user-limits/guest"),
        json!([{"user": "guest", "value": {"max-channels": 5, "max-connections": 7}}])
    );
    answer(
        &api.put("/api/user-limits/nobody/max-channels", r#"{"value":5}"#),
        400,
        json!({"error": "bad_request", "reason": ["no_such_user", "nobody"]}),
    );
    // The value is checked before the user, as RabbitMQ checks them.
    refused(
        &api.put("/api/user-limits/nobody/max-channels", r#"{"value":"5"}"#),
        "max-channels should be a number, actually was <<\"5\">>",
    );
    refused(
        &api.put("/api/user-limits/guest/max-foo", r#"{"value":5}"#),
        "Unrecognised terms [{<<\"max-foo\">>,5}] in user-limits",
    );
    bare(&api.delete("/api/user-limits/guest/max-channels"), 204);
    assert_eq!(
        limits("/api/user-limits/guest"),
        json!([{"user": "guest", "value": {"max-connections": 7}}])
    );
    bare(&api.delete("/api/user-limits/guest/all"), 204);
    assert_eq!(limits("/api/user-limits"), json!([]));
    bare(&api.delete("/api/user-limits/nobody/max-channels"), 500);

    // Administrators only, as RabbitMQ's.
    let policymaker = user(&api, "pm", "policymaker");
    not_admin(&policymaker.put("/api/vhost-limits/%2F/max-queues", r#"{"value":1}"#));
    not_admin(&policymaker.delete("/api/user-limits/guest/max-channels"));
}

#[test]
fn operator_policies_are_refused_key_by_key_as_warrenctl_refuses_them() {
    let server = Server::start();
    let api = Http::ready(server.http_port);
    let put = |body: &str| api.put("/api/operator-policies/%2F/op", body);
    refused(
        &put(r#"{"pattern":"^op","definition":{"max-length":10}}"#),
        "Validation failed\n\npolicy key 'max-length' is not supported by WarrenMQ yet (refused rather than ignored)\n",
    );
    refused(
        &put(r#"{"pattern":"^op","definition":{"ha-mode":"all"}}"#),
        "Validation failed\n\n[{<<\"ha-mode\">>,<<\"all\">>}] are not recognised policy settings\n",
    );
    refused(
        &put(r#"{"pattern":"^op","definition":{}}"#),
        "Validation failed\n\nno policy provided\n",
    );
    refused(
        &put(r#"{"pattern":"^op","definition":{"max-length":1},"priority":"x"}"#),
        "Validation failed\n\npriority should be a number, actually was <<\"x\">>\n",
    );
    refused(
        &put(r#"{"pattern":"^op","definition":{"max-length":1},"apply-to":"foo"}"#),
        "Validation failed\n\napply-to 'foo' unrecognised; should be 'queues', 'exchanges' or 'all'\n",
    );
    refused(
        &put(r#"{"definition":{"max-length":1}}"#),
        "[{key_missing,pattern}]",
    );
    refused(
        &put("{}"),
        "[{key_missing,pattern},{key_missing,definition}]",
    );
    bare(&put(r#"{"pattern":"^op","definition":"x"}"#), 500);
    answer(
        &api.put(
            "/api/operator-policies/nov/op",
            r#"{"pattern":"^op","definition":{"max-length":1}}"#,
        ),
        404,
        json!({"error": "not_found", "reason": "vhost_not_found"}),
    );
    let not_found = json!({"error": "Object Not Found", "reason": "Not Found"});
    answer(
        &api.get("/api/operator-policies/%2F/op"),
        404,
        not_found.clone(),
    );
    answer(&api.delete("/api/operator-policies/%2F/op"), 404, not_found);
    assert_eq!(api.get("/api/operator-policies/%2F").json(), json!([]));
    let policymaker = user(&api, "pm", "policymaker");
    not_admin(&policymaker.get("/api/operator-policies/%2F/op"));
}

#[test]
fn queue_actions_answer_as_rabbitmq_3_10_8_does_per_queue_kind() {
    let server = Server::start();
    let api = Http::ready(server.http_port);
    for (name, body) in [
        ("classic", r#"{"durable":true}"#),
        ("transient", r#"{"durable":false}"#),
        (
            "quorum",
            r#"{"durable":true,"arguments":{"x-queue-type":"quorum"}}"#,
        ),
    ] {
        let r = api.put(&format!("/api/queues/%2F/{name}"), body);
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let act = |queue: &str, body: &str| api.post(&format!("/api/queues/%2F/{queue}/actions"), body);
    let sync = r#"{"action":"sync"}"#;
    let cancel = r#"{"action":"cancel_sync"}"#;
    // Raft members take every entry as it commits: nothing to sync or cancel.
    for queue in ["classic", "transient"] {
        bare(&act(queue, sync), 204);
        bare(&act(queue, cancel), 204);
    }
    bare(&act("quorum", sync), 204);
    // RabbitMQ 3.10.8 fails on cancel_sync of a quorum queue, and on a missing queue.
    bare(&act("quorum", cancel), 500);
    bare(&act("missing", sync), 500);
    answer(
        &act("classic", r#"{"action":"foo"}"#),
        400,
        json!({"error": "bad_request", "reason": ["unknown", "foo"]}),
    );
    refused(&act("missing", "{}"), "[{key_missing,action}]");
    refused(&act("classic", "x"), "not_json");
    bare(&api.get("/api/queues/%2F/classic/actions"), 405);
    let monitor = user(&api, "mon", "monitoring");
    not_admin(&monitor.post("/api/queues/%2F/classic/actions", sync));
}

#[test]
fn the_cluster_is_renamed_by_administrators() {
    let server = Server::start();
    let api = Http::ready(server.http_port);
    let node = api.get("/api/overview").json()["node"].clone();
    // Named after its first node until renamed, as RabbitMQ's.
    answer(&api.get("/api/cluster-name"), 200, json!({"name": node}));
    refused(&api.put("/api/cluster-name", "{}"), "[{key_missing,name}]");
    bare(&api.put("/api/cluster-name", r#"{"name":5}"#), 500);
    bare(&api.delete("/api/cluster-name"), 405);
    let monitor = user(&api, "mon", "monitoring");
    not_admin(&monitor.put("/api/cluster-name", r#"{"name":"x"}"#));
    bare(
        &api.put("/api/cluster-name", r#"{"name":"warren-prod"}"#),
        204,
    );
    answer(
        &monitor.get("/api/cluster-name"),
        200,
        json!({"name": "warren-prod"}),
    );
    assert_eq!(
        api.get("/api/overview").json()["cluster_name"],
        "warren-prod"
    );
    bare(&api.put("/api/cluster-name", r#"{"name":""}"#), 204);
    answer(&api.get("/api/cluster-name"), 200, json!({"name": ""}));
}

/// The rows of `/api/warren/groups` by what they serve (`metadata` or the queue's name).
fn groups_by_name(api: &Http) -> std::collections::BTreeMap<String, Value> {
    let r = api.get("/api/warren/groups");
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            let name = g["queue"].as_str().unwrap_or("metadata").to_owned();
            (name, g.clone())
        })
        .collect()
}

#[test]
fn warren_groups_lists_the_raft_groups_of_the_node() {
    let server = Server::start();
    let api = Http::ready(server.http_port);
    for (name, body) in [
        ("orders", r#"{"durable":true}"#),
        (
            "jobs",
            r#"{"durable":true,"arguments":{"x-queue-type":"quorum"}}"#,
        ),
        ("scratch", r#"{"durable":false}"#),
    ] {
        let r = api.put(&format!("/api/queues/%2F/{name}"), body);
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let node = api.get("/api/overview").json()["node"].clone();
    let groups = groups_by_name(&api);
    // The metadata group and one group a durable queue; a transient queue has none.
    assert_eq!(
        groups.keys().collect::<Vec<_>>(),
        ["jobs", "metadata", "orders"]
    );
    let meta = &groups["metadata"];
    assert_eq!(meta["group"], 0);
    assert_eq!(meta["serves"], "metadata");
    for (name, kind) in [("orders", "classic"), ("jobs", "quorum")] {
        let g = &groups[name];
        assert_eq!(
            (&g["serves"], &g["vhost"], &g["type"]),
            (&json!("queue"), &json!("/"), &json!(kind)),
            "{g}"
        );
        assert_eq!(
            api.get(&format!("/api/queues/%2F/{name}")).json()["raft_group"],
            g["group"]
        );
    }
    for g in groups.values() {
        assert_eq!(
            (&g["node"], &g["role"], &g["leader"], &g["members"]),
            (&node, &json!("leader"), &node, &json!([node])),
            "{g}"
        );
        assert!(g["term"].as_u64().unwrap() >= 1, "{g}");
        assert!(g["commit_index"].as_u64().unwrap() >= 1, "{g}");
        assert!(g["last_applied"].as_u64() <= g["commit_index"].as_u64());
        assert_eq!(g["learners"], json!([]));
    }
    // Sorted by group id, and the list parameters apply.
    let ids: Vec<u64> = api
        .get("/api/warren/groups")
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["group"].as_u64().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    let r = api.get("/api/warren/groups?columns=group,role&sort=group&sort_reverse=true");
    assert_eq!(r.json()[0].as_object().unwrap().len(), 2, "{}", r.body);
    // Administrators and monitoring users only.
    let monitor = user(&api, "mon", "monitoring");
    assert_eq!(monitor.get("/api/warren/groups").status, 200);
    let manager = user(&api, "manager", "management");
    answer(
        &manager.get("/api/warren/groups"),
        401,
        json!({"error": "not_authorised", "reason": "Not monitor user"}),
    );
}

/// Poll `path` on `api` until it answers `status` (bounded), and return that answer.
fn wait_for(api: &Http, path: &str, status: u16, what: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = api.get(path);
        if r.status == status {
            return r.json();
        }
        assert!(
            Instant::now() < deadline,
            "node on port {} never answered {status} to {path} ({what}); last: {} {}",
            api.port,
            r.status,
            r.body
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_node_becomes_quorum_critical_when_a_peer_dies_and_not_after_it_returns() {
    const CHECK: &str = "/api/health/checks/node-is-quorum-critical";
    let mut c = Cluster::joined();
    let apis: Vec<Http> = (0..3).map(|i| Http::ready(c.server(i).http_port)).collect();
    let r = apis[0].put(
        "/api/queues/%2F/qq",
        r#"{"durable":true,"arguments":{"x-queue-type":"quorum"}}"#,
    );
    assert_eq!(r.status, 201, "{}", r.body);

    // All three members up: no node is critical (and none is a single node cluster).
    for api in &apis {
        let ok = wait_for(api, CHECK, 200, "all members up");
        assert_eq!(ok, json!({"status": "ok"}));
    }
    let members = |api: &Http| api.get("/api/queues/%2F/qq").json()["members"].clone();
    assert_eq!(members(&apis[0]).as_array().map(Vec::len), Some(3));

    // A cluster name set through one node, with warrenctl or the API, is every node's
    // (it is replicated metadata).
    let out = c.ctl_ok(2, &["set_cluster_name", "duo"]);
    assert_eq!(out, "Setting cluster name to duo ...\n");
    let named = |name: &str| {
        for api in &apis {
            let deadline = Instant::now() + Duration::from_secs(30);
            while api.get("/api/cluster-name").json() != json!({ "name": name }) {
                assert!(
                    Instant::now() < deadline,
                    "node on port {} never reported the cluster name {name}",
                    api.port
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    };
    named("duo");
    bare(&apis[1].put("/api/cluster-name", r#"{"name":"trio"}"#), 204);
    named("trio");

    // Node 3 dies: the two left hold a bare majority, each now critical.
    c.kill(2);
    let critical = json!({
        "status": "failed",
        "reason": "There are quorum queues that would lose their quorum if the target node is shut down",
        "queues": [{"readable_name": "queue 'qq' in vhost '/'", "name": "qq",
                    "virtual_host": "/", "type": "quorum"}],
    });
    for api in &apis[..2] {
        assert_eq!(wait_for(api, CHECK, 503, "node 3 killed"), critical);
    }
    // The group keeps its three members and soon has a leader among the two left.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let g = groups_by_name(&apis[0])["qq"].clone();
        assert_eq!(g["members"].as_array().map(Vec::len), Some(3), "{g}");
        if ["warren@c1", "warren@c2"].contains(&g["leader"].as_str().unwrap_or("")) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no leader among the live members: {g}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // Back: nobody is critical any more.
    c.boot(2);
    let apis: Vec<Http> = (0..3).map(|i| Http::ready(c.server(i).http_port)).collect();
    for api in &apis {
        assert_eq!(
            wait_for(api, CHECK, 200, "node 3 restarted"),
            json!({"status": "ok"})
        );
    }
}
