//! RabbitMQ's own HTTP client, `rabbitmqadmin` (from Debian's rabbitmq-server package,
//! installed by `scripts/install-test-deps.sh`), unmodified, pointed at a WarrenMQ node:
//! it lists, declares, publishes, gets and deletes, and a real AMQP client sees the
//! result.

mod common;

use std::process::Command;
use std::time::Duration;

use common::Server;
use lapin::options::BasicGetOptions;
use lapin::{Connection, ConnectionProperties};
use serde_json::Value;

const RABBITMQADMIN: &str = "/usr/bin/rabbitmqadmin";

/// Run rabbitmqadmin against the node's API; require success; its stdout.
fn admin(server: &Server, args: &[&str]) -> String {
    assert!(
        std::path::Path::new(RABBITMQADMIN).exists(),
        "{RABBITMQADMIN} is missing: run scripts/install-test-deps.sh (Debian's rabbitmq-server)"
    );
    let port = server.http_port.to_string();
    let out = Command::new(RABBITMQADMIN)
        .args(["-H", "127.0.0.1", "-P", &port, "-u", "guest", "-p", "guest"])
        .args(args)
        .output()
        .expect("run rabbitmqadmin");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "rabbitmqadmin {args:?} failed: {stdout}{}\nnode log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );
    stdout
}

/// A `list` as JSON rows.
fn list(server: &Server, what: &str) -> Vec<Value> {
    let out = admin(server, &["-f", "raw_json", "list", what]);
    match serde_json::from_str(&out) {
        Ok(Value::Array(rows)) => rows,
        other => panic!("rabbitmqadmin list {what}: not a JSON list: {other:?} {out}"),
    }
}

fn names(rows: &[Value], key: &str) -> Vec<String> {
    rows.iter()
        .map(|r| r[key].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn rabbitmqadmin_lists_declares_publishes_gets_and_deletes() {
    let server = Server::start();
    common::http::Http::ready(server.http_port);

    assert_eq!(names(&list(&server, "users"), "name"), vec!["guest"]);
    assert_eq!(names(&list(&server, "vhosts"), "name"), vec!["/"]);
    assert!(names(&list(&server, "exchanges"), "name").contains(&"amq.topic".to_string()));
    assert!(list(&server, "queues").is_empty());

    assert!(admin(&server, &["declare", "vhost", "name=shop"]).contains("vhost declared"));
    assert!(admin(
        &server,
        &["declare", "queue", "name=orders", "durable=true"]
    )
    .contains("queue declared"));
    assert!(admin(
        &server,
        &["declare", "exchange", "name=events", "type=topic"]
    )
    .contains("exchange declared"));
    assert!(admin(
        &server,
        &[
            "declare",
            "binding",
            "source=events",
            "destination=orders",
            "routing_key=order.#",
        ],
    )
    .contains("binding declared"));
    let queues = list(&server, "queues");
    assert_eq!(names(&queues, "name"), vec!["orders"]);
    let bindings = list(&server, "bindings");
    assert!(
        bindings
            .iter()
            .any(|b| b["source"] == "events" && b["destination"] == "orders"),
        "{bindings:?}"
    );

    assert!(admin(
        &server,
        &[
            "publish",
            "exchange=events",
            "routing_key=order.new",
            "payload=first"
        ],
    )
    .contains("Message published"));
    assert!(admin(
        &server,
        &[
            "publish",
            "exchange=amq.default",
            "routing_key=orders",
            "payload=second"
        ],
    )
    .contains("Message published"));
    let unroutable = admin(
        &server,
        &[
            "publish",
            "exchange=events",
            "routing_key=nothing",
            "payload=x",
        ],
    );
    assert!(unroutable.contains("NOT routed"), "{unroutable}");

    // `get` requeues by default: the table shows the first message, still queued.
    let got = admin(&server, &["get", "queue=orders", "count=1"]);
    assert!(got.contains("first") && got.contains("order.new"), "{got}");
    let rows = list(&server, "queues");
    assert_eq!(rows[0]["messages"], 2, "{rows:?}");

    // A real AMQP client gets both, in order.
    let bodies = common::run_value(Duration::from_secs(30), "lapin basic.get", async {
        let conn = Connection::connect(&server.uri(), ConnectionProperties::default())
            .await
            .unwrap();
        let ch = conn.create_channel().await.unwrap();
        let mut bodies = Vec::new();
        while let Some(m) = ch
            .basic_get("orders".into(), BasicGetOptions { no_ack: true })
            .await
            .unwrap()
        {
            bodies.push(String::from_utf8(m.delivery.data.clone()).unwrap());
        }
        bodies
    });
    assert_eq!(bodies, vec!["first", "second"]);

    assert!(admin(&server, &["delete", "queue", "name=orders"]).contains("queue deleted"));
    assert!(admin(&server, &["delete", "exchange", "name=events"]).contains("exchange deleted"));
    assert!(admin(&server, &["delete", "vhost", "name=shop"]).contains("vhost deleted"));
    assert!(list(&server, "queues").is_empty());
    assert!(!names(&list(&server, "exchanges"), "name").contains(&"events".to_string()));
    let overview = admin(&server, &["show", "overview"]);
    assert!(overview.contains("3.10.8"), "{overview}");
}
