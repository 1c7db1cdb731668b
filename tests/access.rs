//! Users, vhosts and permissions as a RabbitMQ operator sets them up (warrenctl with
//! rabbitmqctl's words), and their enforcement on AMQP as RabbitMQ 3.10.8 does it:
//! configure / write / read per operation, 403 with RabbitMQ's text closing the channel,
//! changes applied from the next operation, a deleted user's connections closed.

mod common;

use std::time::Duration;

use common::amqp::refusal;
use common::cluster::{warrenctl, Cluster};
use common::{run, Server};
use futures::StreamExt;
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};

fn uri(port: u16, user: &str, pass: &str) -> String {
    format!("amqp://{user}:{pass}@127.0.0.1:{port}/%2F")
}

async fn connect(uri: &str) -> Result<Connection, lapin::Error> {
    Connection::connect(uri, ConnectionProperties::default()).await
}

fn json_of(out: &str) -> serde_json::Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

#[test]
fn the_operator_path_on_node_2_takes_effect_on_node_3() {
    let c = Cluster::joined();
    // As the install guides have it, through node 2.
    c.ctl_ok(1, &["add_user", "ys", "ys1234"]);
    c.ctl_ok(1, &["set_permissions", "-p", "/", "ys", ".*", ".*", ".*"]);
    c.ctl_ok(1, &["add_user", "admin", "admin1234"]);
    c.ctl_ok(1, &["set_user_tags", "admin", "administrator"]);
    c.ctl_ok(
        1,
        &["set_permissions", "-p", "/", "admin", ".*", ".*", ".*"],
    );
    // Seen through node 3.
    let users = json_of(&c.ctl_ok(2, &["list_users", "--formatter", "json"]));
    let users = users.as_array().expect("array");
    for (name, tags) in [
        ("guest", serde_json::json!(["administrator"])),
        ("ys", serde_json::json!([])),
        ("admin", serde_json::json!(["administrator"])),
    ] {
        assert!(
            users.iter().any(|u| u["user"] == name && u["tags"] == tags),
            "{name} with {tags} in {users:?}"
        );
    }
    let table = c.ctl_ok(2, &["list_users"]);
    assert!(table.contains("admin\t[administrator]"), "{table}");
    assert!(!table.contains("ys1234"), "passwords never listed: {table}");
    let perms = json_of(&c.ctl_ok(2, &["list_permissions", "-p", "/", "--formatter", "json"]));
    assert!(
        perms.as_array().unwrap().iter().any(|p| p["user"] == "ys"
            && p["configure"] == ".*"
            && p["write"] == ".*"
            && p["read"] == ".*"),
        "{perms}"
    );
    let out = c.ctl_ok(2, &["authenticate_user", "ys", "ys1234"]);
    assert!(out.contains("Success"), "{out}");
    let out = c.ctl(2, &["authenticate_user", "ys", "wrong"]);
    assert_eq!(out.status.code(), Some(65), "{out:?}");
    // rabbitmqctl's exit codes for what does not exist.
    assert_eq!(c.ctl(2, &["delete_user", "nobody"]).status.code(), Some(67));
    let out = c.ctl(2, &["set_permissions", "-p", "nov", "ys", ".*", ".*", ".*"]);
    assert_eq!(out.status.code(), Some(69), "{out:?}");
    assert_eq!(
        c.ctl(2, &["add_user", "ys", "again"]).status.code(),
        Some(70)
    );

    let port3 = c.server(2).port;
    run(Duration::from_secs(60), "ys logs in on node 3", async {
        let conn = connect(&uri(port3, "ys", "ys1234"))
            .await
            .expect("ys logs in");
        let ch = conn.create_channel().await.unwrap();
        ch.queue_declare(
            "ys-q".into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("ys may configure");
        assert!(
            connect(&uri(port3, "ys", "wrong")).await.is_err(),
            "a wrong password is refused"
        );
    });
    // A vhost and its queues go on every node.
    c.ctl_ok(1, &["add_vhost", "staging"]);
    let vhosts = json_of(&c.ctl_ok(2, &["list_vhosts", "--formatter", "json"]));
    assert!(
        vhosts
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["name"] == "staging"),
        "{vhosts}"
    );
    c.ctl_ok(1, &["delete_vhost", "staging"]);
    let vhosts = json_of(&c.ctl_ok(2, &["list_vhosts", "--formatter", "json"]));
    assert!(
        !vhosts
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["name"] == "staging"),
        "{vhosts}"
    );
}

/// What a user whose regexes are `^n-c` (configure), `^n-w` (write), `^n-r` (read) may do.
#[test]
fn each_amqp_operation_needs_the_permission_rabbitmq_checks() {
    let server = Server::start();
    let ctl = |args: &[&str]| {
        let secret = server.data_dir.join("cluster_secret");
        let out = warrenctl(&secret, server.cluster_port, args);
        assert!(out.status.success(), "warrenctl {args:?}: {out:?}");
    };
    // The AMQP port accepts before the app counts as running.
    ctl(&["await_startup"]);
    ctl(&["add_user", "narrow", "pw"]);
    ctl(&["set_permissions", "narrow", "^n-c", "^n-w", "^n-r"]);
    let port = server.port;
    run(Duration::from_secs(60), "permission matrix", async {
        let guest = connect(&uri(port, "guest", "guest")).await.unwrap();
        let g = guest.create_channel().await.unwrap();
        for q in ["n-c1", "n-r1", "n-w1", "other"] {
            g.queue_declare(
                q.into(),
                QueueDeclareOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        }
        for x in ["n-w-x", "n-r-x"] {
            g.exchange_declare(
                x.into(),
                lapin::ExchangeKind::Direct,
                ExchangeDeclareOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        }
        let conn = connect(&uri(port, "narrow", "pw")).await.unwrap();
        let refused = |kind: &str, name: &str| {
            (
                403u16,
                format!("ACCESS_REFUSED - access to {kind} '{name}' in vhost '/' refused for user 'narrow'"),
            )
        };
        let fresh = || async { conn.create_channel().await.unwrap() };
        let declare = |ch: Channel, name: &'static str, passive: bool| async move {
            ch.queue_declare(
                name.into(),
                QueueDeclareOptions {
                    passive,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
        };
        // configure: declaring (not passively) and deleting.
        declare(fresh().await, "n-c2", false)
            .await
            .expect("configure ^n-c");
        assert_eq!(
            refusal(declare(fresh().await, "other2", false).await),
            refused("queue", "other2")
        );
        declare(fresh().await, "other", true)
            .await
            .expect("passive needs nothing");
        assert_eq!(
            refusal(
                fresh()
                    .await
                    .queue_delete("other".into(), QueueDeleteOptions::default())
                    .await
            ),
            refused("queue", "other")
        );
        // read: purge, get, consume.
        fresh()
            .await
            .queue_purge("n-r1".into(), QueuePurgeOptions::default())
            .await
            .expect("read ^n-r");
        assert_eq!(
            refusal(
                fresh()
                    .await
                    .queue_purge("n-c1".into(), QueuePurgeOptions::default())
                    .await
            ),
            refused("queue", "n-c1")
        );
        assert_eq!(
            refusal(
                fresh()
                    .await
                    .basic_get("other".into(), BasicGetOptions::default())
                    .await
            ),
            refused("queue", "other")
        );
        assert_eq!(
            refusal(
                fresh()
                    .await
                    .basic_consume(
                        "other".into(),
                        "".into(),
                        BasicConsumeOptions::default(),
                        FieldTable::default()
                    )
                    .await
            ),
            refused("queue", "other")
        );
        // Bindings: write on the queue, read on the exchange.
        let bind = |ch: Channel, q: &'static str, x: &'static str| async move {
            ch.queue_bind(
                q.into(),
                x.into(),
                "k".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
        };
        bind(fresh().await, "n-w1", "n-r-x")
            .await
            .expect("write queue, read exchange");
        assert_eq!(
            refusal(bind(fresh().await, "n-c1", "n-r-x").await),
            refused("queue", "n-c1")
        );
        assert_eq!(
            refusal(bind(fresh().await, "n-w1", "n-w-x").await),
            refused("exchange", "n-w-x")
        );
        // Exchange to exchange: write on the destination, read on the source.
        let ebind = |ch: Channel, dest: &'static str, src: &'static str| async move {
            ch.exchange_bind(
                dest.into(),
                src.into(),
                "k".into(),
                ExchangeBindOptions::default(),
                FieldTable::default(),
            )
            .await
        };
        ebind(fresh().await, "n-w-x", "n-r-x").await.expect("e2e");
        assert_eq!(
            refusal(ebind(fresh().await, "n-r-x", "n-w-x").await),
            refused("exchange", "n-r-x")
        );
        // write: publishing (the default exchange is amq.default), seen on a probe.
        let ch = fresh().await;
        let mut events = conn.events_listener();
        ch.basic_publish(
            "".into(),
            "n-c1".into(),
            BasicPublishOptions::default(),
            b"x",
            BasicProperties::default(),
        )
        .await
        .unwrap();
        let e = loop {
            match tokio::time::timeout(Duration::from_secs(5), events.next()).await {
                Ok(Some(lapin::Event::Error(e))) => break e,
                Ok(Some(_)) => continue,
                other => panic!("no channel.close after the publish: {other:?}"),
            }
        };
        assert_eq!(refusal::<()>(Err(e)), refused("exchange", "amq.default"));
        // The node and the other channels are unharmed.
        declare(fresh().await, "n-c1", true)
            .await
            .expect("still serving");
    });
}

#[test]
fn a_permission_change_applies_from_the_next_operation_and_a_deleted_user_is_disconnected() {
    let server = Server::start();
    let secret = server.data_dir.join("cluster_secret");
    let ctl = |args: &[&str]| {
        let out = warrenctl(&secret, server.cluster_port, args);
        assert!(out.status.success(), "warrenctl {args:?}: {out:?}");
    };
    ctl(&["await_startup"]);
    ctl(&["add_user", "bob", "pw"]);
    ctl(&["set_permissions", "bob", ".*", ".*", ".*"]);
    let port = server.port;
    run(Duration::from_secs(60), "permission change", async {
        let conn = connect(&uri(port, "bob", "pw")).await.unwrap();
        let ch = conn.create_channel().await.unwrap();
        ch.queue_declare(
            "bob-q".into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
        ch.basic_get("bob-q".into(), BasicGetOptions::default())
            .await
            .expect("read allowed");
        ctl(&["set_permissions", "bob", "^$", "^$", "^$"]);
        // The same channel, next operation.
        assert_eq!(
            refusal(
                ch.basic_get("bob-q".into(), BasicGetOptions::default())
                    .await
            )
            .0,
            403
        );
        ctl(&["set_permissions", "bob", ".*", ".*", ".*"]);
        let ch = conn.create_channel().await.unwrap();
        ch.basic_get("bob-q".into(), BasicGetOptions::default())
            .await
            .expect("allowed again");
        let mut events = conn.events_listener();
        ctl(&["delete_user", "bob"]);
        let e = loop {
            match tokio::time::timeout(Duration::from_secs(5), events.next()).await {
                Ok(Some(lapin::Event::Error(e))) => break e,
                Ok(Some(_)) => continue,
                other => panic!("the connection was not closed: {other:?}"),
            }
        };
        assert_eq!(
            refusal::<()>(Err(e)),
            (320, "CONNECTION_FORCED - user 'bob' is deleted".into())
        );
    });
}
