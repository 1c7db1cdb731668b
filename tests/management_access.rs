//! Who may use the management HTTP API of a real node, as RabbitMQ 3.10.8 decides it
//! (measured against it): credentials, the management tags, vhost permissions; and the
//! users, vhosts and permissions made through the API decide who an AMQP client (lapin)
//! may connect as.

mod common;

use std::time::Duration;

use common::http::{names, Http};
use common::Server;
use lapin::{Connection, ConnectionProperties};
use serde_json::json;

#[test]
fn credentials_and_tags_gate_as_rabbitmq_does() {
    let server = Server::start();
    let port = server.http_port;
    let guest = Http::ready(port);

    // No credentials: 401, an empty body and the realm.
    let r = Http::anonymous(port).get("/api/whoami");
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("www-authenticate"),
        Some("Basic realm=\"RabbitMQ Management\"")
    );
    assert_eq!(r.body, "");
    // A wrong password: 401 "Login failed", with the realm.
    let r = Http::as_user(port, "guest", "wrong").get("/api/whoami");
    assert_eq!(r.status, 401);
    assert_eq!(
        r.json(),
        json!({"error": "not_authorized", "reason": "Login failed"})
    );
    assert!(r.header("www-authenticate").is_some());

    let r = guest.get("/api/whoami");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json(),
        json!({"name": "guest", "tags": ["administrator"]})
    );

    // Users with each tag (and none).
    for (user, tags) in [
        ("nobody", ""),
        ("mg", "management"),
        ("mon", "monitoring"),
        ("pm", "policymaker"),
    ] {
        let r = guest.put(
            &format!("/api/users/{user}"),
            &json!({"password": "pw", "tags": tags}).to_string(),
        );
        assert_eq!(r.status, 201, "{user}: {}", r.body);
    }
    let as_user = |u: &str| Http::as_user(port, u, "pw");
    let r = as_user("nobody").get("/api/overview");
    assert_eq!(r.status, 401);
    assert_eq!(
        r.json(),
        json!({"error": "not_authorised", "reason": "Not management user"})
    );
    assert!(r.header("www-authenticate").is_none());
    let refused = |r: common::http::Response| {
        assert_eq!(r.status, 401, "{}", r.body);
        r.json()["reason"].as_str().unwrap().to_owned()
    };
    assert_eq!(
        refused(as_user("mg").get("/api/users")),
        "Not administrator user"
    );
    assert_eq!(refused(as_user("mg").get("/api/nodes")), "Not monitor user");
    assert_eq!(as_user("mon").get("/api/nodes").status, 200);
    assert_eq!(
        refused(as_user("mg").get("/api/definitions")),
        "Not administrator user"
    );

    // A management user sees only the vhosts it has permissions in; a monitor all.
    assert_eq!(guest.put("/api/vhosts/private", "").status, 201);
    assert_eq!(
        guest
            .put("/api/queues/private/secret", r#"{"durable":true}"#)
            .status,
        201
    );
    assert_eq!(as_user("mg").get("/api/vhosts").json(), json!([]));
    assert_eq!(
        names(&as_user("mg").get("/api/queues").json()),
        Vec::<String>::new()
    );
    assert_eq!(
        refused(as_user("mg").get("/api/queues/private")),
        "User not authorised to access virtual host"
    );
    assert_eq!(
        names(&as_user("mon").get("/api/queues").json()),
        vec!["secret"]
    );
    let r = guest.put(
        "/api/permissions/private/mg",
        r#"{"configure":".*","write":".*","read":".*"}"#,
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(
        names(&as_user("mg").get("/api/vhosts").json()),
        vec!["private"]
    );
    assert_eq!(
        names(&as_user("mg").get("/api/queues/private").json()),
        vec!["secret"]
    );
    // Policies: policymakers (with access to the vhost) and administrators only.
    let policy = r#"{"pattern":"^x","definition":{"ha-mode":"all"}}"#;
    assert_eq!(
        refused(as_user("mg").put("/api/policies/private/p", policy)),
        "User not authorised to access object"
    );
    assert_eq!(
        refused(as_user("pm").put("/api/policies/private/p", policy)),
        "User not authorised to access object"
    );
    assert_eq!(guest.put("/api/policies/private/p", policy).status, 201);
}

#[test]
fn users_vhosts_and_permissions_decide_who_connects() {
    let server = Server::start();
    let api = Http::ready(server.http_port);
    let connects = |user: &str, password: &str, vhost: &str| -> bool {
        let uri = format!("amqp://{user}:{password}@127.0.0.1:{}/{vhost}", server.port);
        common::run_value(Duration::from_secs(20), "connect", async move {
            Connection::connect(&uri, ConnectionProperties::default())
                .await
                .is_ok()
        })
    };
    assert_eq!(api.put("/api/vhosts/shop", "").status, 201);
    assert_eq!(api.put("/api/vhosts/shop", "").status, 204);
    let r = api.put("/api/users/alice", r#"{"password":"secret"}"#);
    assert_eq!(
        (r.status, r.json()["reason"].clone()),
        (400, json!("tags_not_present"))
    );
    assert_eq!(
        api.put(
            "/api/users/alice",
            r#"{"password":"secret","tags":"management,monitoring"}"#
        )
        .status,
        201
    );
    let alice = api.get("/api/users/alice").json();
    assert_eq!(alice["tags"], json!(["management", "monitoring"]));
    assert_eq!(alice["hashing_algorithm"], "rabbit_password_hashing_sha256");
    assert!(!alice["password_hash"].as_str().unwrap().is_empty());
    assert!(names(&api.get("/api/users/without-permissions").json()).contains(&"alice".into()));
    assert!(!connects("alice", "secret", "shop"), "no permissions yet");
    let r = api.put("/api/permissions/shop/alice", r#"{"configure":".*"}"#);
    assert_eq!(
        r.json()["reason"],
        "[{key_missing,write},{key_missing,read}]"
    );
    let r = api.put(
        "/api/permissions/shop/alice",
        r#"{"configure":".*","write":".*","read":".*"}"#,
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(
        api.get("/api/permissions/shop/alice").json(),
        json!({"user": "alice", "vhost": "shop", "configure": ".*", "write": ".*", "read": ".*"})
    );
    assert!(connects("alice", "secret", "shop"));
    assert!(!connects("alice", "wrong", "shop"));
    // A new password; then the same password given as RabbitMQ's hash of it.
    assert_eq!(
        api.put("/api/users/alice", r#"{"password":"changed","tags":""}"#)
            .status,
        204
    );
    assert!(connects("alice", "changed", "shop"));
    let hash = api.get("/api/users/alice").json()["password_hash"].clone();
    let r = api.put(
        "/api/users/bob",
        &json!({"password_hash": hash, "tags": "management"}).to_string(),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(
        api.put(
            "/api/permissions/shop/bob",
            r#"{"configure":".*","write":".*","read":".*"}"#
        )
        .status,
        201
    );
    assert!(connects("bob", "changed", "shop"));
    // Revoking, deleting, bulk-deleting.
    assert_eq!(api.delete("/api/permissions/shop/alice").status, 204);
    assert_eq!(api.delete("/api/permissions/shop/alice").status, 404);
    assert!(!connects("alice", "changed", "shop"));
    let r = api.post("/api/users/bulk-delete", r#"{"users":["alice","nobody"]}"#);
    assert_eq!(r.status, 400);
    assert_eq!(api.get("/api/users/alice").status, 404);
    assert_eq!(api.delete("/api/users/bob").status, 204);
    assert_eq!(api.delete("/api/vhosts/shop").status, 204);
    assert_eq!(api.delete("/api/vhosts/shop").status, 404);
    assert!(!names(&api.get("/api/vhosts").json()).contains(&"shop".into()));
}

#[test]
fn the_api_acts_with_the_user_s_permissions_as_an_amqp_client_would() {
    let server = Server::start();
    let guest = Http::ready(server.http_port);
    let r = guest.put(
        "/api/users/narrow",
        r#"{"password":"p","tags":"management"}"#,
    );
    assert_eq!(r.status, 201);
    let r = guest.put(
        "/api/permissions/%2F/narrow",
        r#"{"configure":"^cfg","write":"^w","read":"^r"}"#,
    );
    assert_eq!(r.status, 201);
    for q in ["rq", "wq"] {
        assert_eq!(guest.put(&format!("/api/queues/%2F/{q}"), "{}").status, 201);
    }
    let narrow = Http::as_user(server.http_port, "narrow", "p");
    let refused = json!({"error": "not_authorised", "reason": "Access refused."});
    assert_eq!(narrow.put("/api/queues/%2F/xq", "{}").json(), refused);
    assert_eq!(narrow.put("/api/queues/%2F/cfgq", "{}").status, 201);
    assert_eq!(narrow.delete("/api/queues/%2F/cfgq").status, 204);
    assert_eq!(
        narrow
            .put("/api/exchanges/%2F/xx", r#"{"type":"direct"}"#)
            .json(),
        refused
    );
    let publish =
        r#"{"properties":{},"routing_key":"k","payload":"x","payload_encoding":"string"}"#;
    assert_eq!(
        narrow
            .post("/api/exchanges/%2F/amq.direct/publish", publish)
            .json(),
        json!({"error": "bad_request", "reason": "403 ACCESS_REFUSED - access to exchange 'amq.direct' in vhost '/' refused for user 'narrow'"})
    );
    let get = r#"{"count":1,"ackmode":"ack_requeue_true","encoding":"auto"}"#;
    assert_eq!(
        narrow.post("/api/queues/%2F/wq/get", get).json(),
        json!({"error": "not_authorised", "reason": "ACCESS_REFUSED - access to queue 'wq' in vhost '/' refused for user 'narrow'"})
    );
    assert_eq!(narrow.post("/api/queues/%2F/rq/get", get).json(), json!([]));
    assert_eq!(narrow.delete("/api/queues/%2F/wq/contents").json(), refused);
    let bind = r#"{"routing_key":"k"}"#;
    assert_eq!(
        narrow
            .post("/api/bindings/%2F/e/amq.direct/q/wq", bind)
            .json(),
        refused
    );
    assert_eq!(narrow.get("/api/aliveness-test/%2F").status, 401);
    // The administrator acts with its own (full) permissions.
    assert_eq!(
        guest
            .post("/api/bindings/%2F/e/amq.direct/q/wq", bind)
            .status,
        201
    );
    assert_eq!(
        guest
            .post("/api/exchanges/%2F/amq.direct/publish", publish)
            .json(),
        json!({"routed": true})
    );
}
