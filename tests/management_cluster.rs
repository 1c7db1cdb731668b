//! The management API on a three-node cluster: every node answers for the whole
//! cluster, and an `ha-mode: all` policy put through the API (the way RabbitMQ's UI and
//! guides switch mirroring on) grows a durable classic queue's Raft group to every node,
//! with the same members and leader shown by every node's `/api/queues/%2F/Q`; what one
//! node routed shows in every node's exchange statistics, and every node's process
//! figures in every node's `/api/nodes`; the alarms health check names an alarm on any
//! node.

mod common;

use std::time::{Duration, Instant};

use common::cluster::Cluster;
use common::http::{wait_for, Http};
use serde_json::{json, Value};

fn sorted(v: &Value) -> Vec<String> {
    let mut names: Vec<String> = v
        .as_array()
        .unwrap_or_else(|| panic!("a list: {v}"))
        .iter()
        .map(|n| n.as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn an_ha_policy_put_through_the_api_mirrors_a_queue_on_every_node() {
    let c = Cluster::joined();
    let apis: Vec<Http> = (0..3).map(|i| Http::ready(c.server(i).http_port)).collect();
    let all = vec!["warren@c1", "warren@c2", "warren@c3"];

    // Every node lists every node, running (once its failure detector has seen them).
    for api in &apis {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let nodes = api.get("/api/nodes").json();
            let rows = nodes.as_array().unwrap();
            let names: Vec<&str> = rows.iter().map(|n| n["name"].as_str().unwrap()).collect();
            if names == all && rows.iter().all(|n| n["running"] == true) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "node on port {} never listed all nodes running: {nodes}",
                api.port
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    // Every node shows every node's process figures, its peers' asked of them.
    for api in &apis {
        let nodes = api.get("/api/nodes").json();
        for n in nodes.as_array().unwrap() {
            for key in ["mem_used", "fd_used", "disk_free", "uptime", "proc_used"] {
                assert!(
                    n[key].as_u64().is_some_and(|v| v > 0),
                    "port {}: {key} of {}: {n}",
                    api.port,
                    n["name"]
                );
            }
            assert_eq!(n["mem_alarm"], false, "{n}");
            assert!(n["os_pid"].is_string(), "{n}");
        }
    }
    let pids: Vec<Value> = ["warren@c1", "warren@c2", "warren@c3"]
        .iter()
        .map(|name| apis[0].get(&format!("/api/nodes/{name}")).json()["os_pid"].clone())
        .collect();
    let expected: Vec<Value> = (0..3)
        .map(|i| json!(c.server(i).pid().to_string()))
        .collect();
    assert_eq!(pids, expected, "each node's own process, seen from node 1");

    // A durable classic queue declared through node 2: a group of one.
    let r = apis[1].put("/api/queues/%2F/ha.orders", r#"{"durable":true}"#);
    assert_eq!(r.status, 201, "{}", r.body);
    let q = apis[0].get("/api/queues/%2F/ha.orders").json();
    assert_eq!(q["members"].as_array().map(Vec::len), Some(1), "{q}");
    assert_eq!(q["policy"], Value::Null);

    // A message published through node 3, counted by node 1.
    let r = apis[2].post(
        "/api/exchanges/%2F/amq.default/publish",
        r#"{"properties":{"delivery_mode":2},"routing_key":"ha.orders","payload":"kept","payload_encoding":"string"}"#,
    );
    assert_eq!(r.json(), json!({"routed": true}));
    // What node 3 routed shows in every node's statistics of the exchange.
    for api in &apis {
        let x = api.get("/api/exchanges/%2F/amq.default").json();
        assert_eq!(
            x["message_stats"]["publish_in"], 1,
            "port {}: {x}",
            api.port
        );
        assert_eq!(
            x["message_stats"]["publish_out"], 1,
            "port {}: {x}",
            api.port
        );
    }

    // The policy, as RabbitMQ's Admin > Policies form sends it, through node 1.
    let policy = json!({"pattern": "^ha\\.", "definition": {"ha-mode": "all"},
                        "priority": 0, "apply-to": "queues"});
    let r = apis[0].put("/api/policies/%2F/ha-all", &policy.to_string());
    assert_eq!(r.status, 201, "{}", r.body);
    // Node 3 applies the metadata log a moment after node 1 answered (it reads its own
    // copy, not the leader's).
    let expected = json!([{"vhost": "/", "name": "ha-all", "pattern": "^ha\\.", "apply-to": "queues",
                           "definition": {"ha-mode": "all"}, "priority": 0}]);
    wait_for(
        &apis[2],
        "/api/policies/%2F",
        "the policy on node 3",
        |listed| listed.as_array().is_some_and(|l| !l.is_empty()),
    );
    assert_eq!(apis[2].get("/api/policies/%2F").json(), expected);

    // Every node soon shows three members, the same members and leader everywhere.
    let deadline = Instant::now() + Duration::from_secs(60);
    let views = loop {
        let views: Vec<Value> = apis
            .iter()
            .map(|api| api.get("/api/queues/%2F/ha.orders").json())
            .collect();
        let settled = views.iter().all(|q| {
            q["members"].as_array().map(Vec::len) == Some(3)
                && q["online"].as_array().map(Vec::len) == Some(3)
                && q["leader"].as_str().is_some_and(|l| !l.is_empty())
                && q["leader"] == views[0]["leader"]
                && q["messages"] == 1
                // Every member node runs a replica: its Raft term is shown once it has
                // heard from the leader.
                && q["raft_term"].as_u64().is_some_and(|t| t > 0)
        });
        if settled {
            break views;
        }
        if Instant::now() > deadline {
            panic!(
                "ha.orders never showed 3 members with one leader on every node: {views:#?}\nlog of node 1:\n{}",
                c.server(0).log()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    for q in &views {
        assert_eq!(sorted(&q["members"]), all, "{q}");
        assert_eq!(q["policy"], "ha-all");
        assert_eq!(q["effective_policy_definition"], json!({"ha-mode": "all"}));
        assert_eq!(q["node"], q["leader"]);
    }

    // The message is still there, got through another node than the one it came in by.
    let r = apis[1].post(
        "/api/queues/%2F/ha.orders/get",
        r#"{"count":1,"ackmode":"ack_requeue_false","encoding":"auto"}"#,
    );
    assert_eq!(r.json()[0]["payload"], "kept", "{}", r.body);

    // Clearing the policy through the API shrinks it back to one member.
    assert_eq!(apis[2].delete("/api/policies/%2F/ha-all").status, 204);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let q = apis[0].get("/api/queues/%2F/ha.orders").json();
        if q["members"].as_array().map(Vec::len) == Some(1) {
            break;
        }
        assert!(Instant::now() < deadline, "never shrank back: {q}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn the_alarms_health_check_answers_for_every_node() {
    let mut c = Cluster::joined();
    // Node 2 back with a memory watermark of one byte: its memory alarm is on at once.
    c.restart_with(1, &["--memory-high-watermark", "1"]);
    c.wait_running(0, &["warren@c1", "warren@c2", "warren@c3"]);
    let api = Http::ready(c.server(0).http_port);
    let deadline = Instant::now() + Duration::from_secs(30);
    let r = loop {
        let r = api.get("/api/health/checks/alarms");
        if r.status == 503 || Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(
        r.json(),
        json!({"status": "failed", "reason": "There are alarms in effect in the cluster",
               "alarms": [{"node": "warren@c2", "resource": "memory"}]})
    );
    // Node 1's own alarms: none.
    let local = api.get("/api/health/checks/local-alarms");
    assert_eq!((local.status, local.json()), (200, json!({"status": "ok"})));
    // Node 2 answers for itself too.
    let two = Http::ready(c.server(1).http_port);
    assert_eq!(two.get("/api/health/checks/local-alarms").status, 503);
}
