//! What an operator sets beyond permissions, checked over AMQP as RabbitMQ 3.10.8 does
//! it (texts measured against it): topic permissions on topic-exchange publishes and
//! bindings, the vhost `max-queues` limit, an `alternate-exchange` policy on existing
//! exchanges, and operator policies refused by key.

mod common;

use std::process::Output;
use std::time::Duration;

use common::amqp::refusal;
use common::cluster::warrenctl;
use common::{run, Server};
use futures::StreamExt;
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};

fn ctl(server: &Server, args: &[&str]) -> Output {
    warrenctl(
        &server.data_dir.join("cluster_secret"),
        server.cluster_port,
        args,
    )
}

fn ctl_ok(server: &Server, args: &[&str]) -> String {
    let out = ctl(server, args);
    assert!(out.status.success(), "warrenctl {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

fn started() -> Server {
    let server = Server::start();
    // The AMQP port accepts before the app counts as running.
    ctl_ok(&server, &["await_startup"]);
    server
}

async fn connect(port: u16, user: &str, pass: &str) -> Connection {
    let uri = format!("amqp://{user}:{pass}@127.0.0.1:{port}/%2F");
    Connection::connect(&uri, ConnectionProperties::default())
        .await
        .unwrap_or_else(|e| panic!("{user} connects: {e}"))
}

/// Publish and make a round trip, so that a refusal of the publish surfaces here. The
/// server's channel.close can overtake the round trip (lapin then refuses to send it,
/// with the channel already closing); the close's reply then arrives as the
/// connection's error event.
async fn publish(
    conn: &Connection,
    ch: &Channel,
    exchange: &str,
    key: &str,
) -> Result<(), lapin::Error> {
    let mut events = conn.events_listener();
    ch.basic_publish(
        exchange.into(),
        key.into(),
        BasicPublishOptions::default(),
        b"m",
        BasicProperties::default(),
    )
    .await?;
    match ch.basic_qos(1, BasicQosOptions::default()).await {
        Err(e) if matches!(e.kind(), lapin::ErrorKind::InvalidChannelState(..)) => loop {
            match tokio::time::timeout(Duration::from_secs(5), events.next()).await {
                Ok(Some(lapin::Event::Error(e))) => return Err(e),
                Ok(Some(_)) => continue,
                other => panic!("channel closing after a publish, but no close came: {other:?}"),
            }
        },
        other => other,
    }
}

async fn bind(ch: &Channel, exchange: &str, key: &str) -> Result<(), lapin::Error> {
    let q = ch
        .queue_declare(
            "".into(),
            QueueDeclareOptions {
                exclusive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
    ch.queue_bind(
        q.name().clone(),
        exchange.into(),
        key.into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
}

fn topic_refused(key: &str, exchange: &str) -> (u16, String) {
    (
        403,
        format!("ACCESS_REFUSED - access to topic '{key}' in exchange '{exchange}' in vhost '/' refused for user 'tp'"),
    )
}

#[test]
fn topic_permissions_gate_publishes_and_bindings_on_topic_exchanges() {
    let server = started();
    ctl_ok(&server, &["add_user", "tp", "tp1"]);
    ctl_ok(&server, &["set_permissions", "tp", ".*", ".*", ".*"]);
    let out = ctl_ok(
        &server,
        &[
            "set_topic_permissions",
            "tp",
            "amq.topic",
            "^{username}\\.",
            "^r\\.",
        ],
    );
    assert!(
        out.contains(
            "Setting topic permissions on \"amq.topic\" for user \"tp\" in vhost \"/\" ..."
        ),
        "{out}"
    );
    let listed: serde_json::Value = serde_json::from_str(&ctl_ok(
        &server,
        &["list_topic_permissions", "--formatter", "json"],
    ))
    .unwrap();
    assert_eq!(
        listed,
        serde_json::json!([{"user": "tp", "exchange": "amq.topic", "write": "^{username}\\.", "read": "^r\\."}])
    );
    let table = ctl_ok(&server, &["list_user_topic_permissions", "tp"]);
    assert_eq!(
        table,
        "Listing topic permissions for user \"tp\" ...\n/\tamq.topic\t^{username}\\.\t^r\\.\n"
    );
    assert_eq!(
        ctl(
            &server,
            &["set_topic_permissions", "nobody", "amq.topic", "x", "y"]
        )
        .status
        .code(),
        Some(67)
    );
    assert_eq!(
        ctl(
            &server,
            &["set_topic_permissions", "tp", "amq.topic", "(", "y"]
        )
        .status
        .code(),
        Some(69)
    );

    let port = server.port;
    run(Duration::from_secs(60), "topic permissions", async {
        let guest = connect(port, "guest", "guest").await;
        let g = guest.create_channel().await.unwrap();
        g.exchange_declare(
            "own-topic".into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
        let conn = connect(port, "tp", "tp1").await;
        let fresh = || async { conn.create_channel().await.unwrap() };
        publish(&conn, &fresh().await, "amq.topic", "tp.x")
            .await
            .expect("{username} expands to tp");
        assert_eq!(
            refusal(publish(&conn, &fresh().await, "amq.topic", "b.x").await),
            topic_refused("b.x", "amq.topic")
        );
        // Other exchanges: no topic permission on them, or not a topic exchange.
        publish(&conn, &fresh().await, "own-topic", "b.x")
            .await
            .unwrap();
        publish(&conn, &fresh().await, "amq.direct", "b.x")
            .await
            .unwrap();
        // Bindings need read on their key.
        bind(&fresh().await, "amq.topic", "r.x").await.unwrap();
        assert_eq!(
            refusal(bind(&fresh().await, "amq.topic", "s.x").await),
            topic_refused("s.x", "amq.topic")
        );
        // A cleared topic permission applies to the open connection's next operation.
        let out = ctl(&server, &["clear_topic_permissions", "tp", "amq.topic"]);
        assert!(out.status.success(), "{out:?}");
        publish(&conn, &fresh().await, "amq.topic", "b.x")
            .await
            .expect("no topic permission: allowed");
        let _ = conn.close(200, "bye".into()).await;
        let _ = guest.close(200, "bye".into()).await;
    });
    let listed = ctl_ok(&server, &["list_topic_permissions", "--formatter", "json"]);
    assert_eq!(listed.trim(), "[]");
}

#[test]
fn a_vhost_s_max_queues_limit_refuses_new_queues_with_rabbitmq_s_text() {
    let server = started();
    ctl_ok(
        &server,
        &["set_vhost_limits", "-p", "/", r#"{"max-queues":1}"#],
    );
    assert_eq!(
        ctl_ok(&server, &["list_vhost_limits", "-p", "/"]),
        "Listing limits for vhost \"/\" ...\n{\"max-queues\":1}\n"
    );
    let global: serde_json::Value = serde_json::from_str(&ctl_ok(
        &server,
        &["list_vhost_limits", "--global", "--formatter", "json"],
    ))
    .unwrap();
    assert_eq!(
        global,
        serde_json::json!([{"vhost": "/", "limits": "{\"max-queues\":1}"}])
    );
    let bad = ctl(
        &server,
        &["set_vhost_limits", "-p", "/", r#"{"max-foo":1}"#],
    );
    assert_eq!(bad.status.code(), Some(69));
    assert!(
        String::from_utf8_lossy(&bad.stderr)
            .contains("Unrecognised terms [{<<\"max-foo\">>,1}] in limits"),
        "{bad:?}"
    );
    assert_eq!(
        ctl(
            &server,
            &["set_vhost_limits", "-p", "nov", r#"{"max-queues":1}"#]
        )
        .status
        .code(),
        Some(65)
    );
    let port = server.port;
    let declare = |ch: Channel, name: &'static str| async move {
        ch.queue_declare(
            name.into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .map(|_| ())
    };
    run(Duration::from_secs(60), "max-queues", async {
        let conn = connect(port, "guest", "guest").await;
        declare(conn.create_channel().await.unwrap(), "lim-q1")
            .await
            .unwrap();
        declare(conn.create_channel().await.unwrap(), "lim-q1")
            .await
            .expect("redeclaring is not a new queue");
        assert_eq!(
            refusal(declare(conn.create_channel().await.unwrap(), "lim-q2").await),
            (
                406,
                "PRECONDITION_FAILED - cannot declare queue 'lim-q2': queue limit in vhost '/' (1) is reached".into()
            )
        );
        let out = ctl(&server, &["clear_vhost_limits", "-p", "/"]);
        assert!(out.status.success(), "{out:?}");
        declare(conn.create_channel().await.unwrap(), "lim-q2")
            .await
            .expect("limit cleared");
        let _ = conn.close(200, "bye".into()).await;
    });
    assert_eq!(
        ctl_ok(
            &server,
            &["list_vhost_limits", "-p", "/", "--formatter", "json"]
        ),
        "[]\n"
    );
    // User limits merge, and are listed and cleared as rabbitmqctl does.
    ctl_ok(
        &server,
        &["set_user_limits", "guest", r#"{"max-connections":5}"#],
    );
    ctl_ok(
        &server,
        &["set_user_limits", "guest", r#"{"max-channels":7}"#],
    );
    assert_eq!(
        ctl_ok(&server, &["list_user_limits", "--user", "guest"]),
        "Listing limits for user \"guest\" ...\n{\"max-channels\":7,\"max-connections\":5}\n"
    );
    ctl_ok(&server, &["clear_user_limits", "guest", "max-channels"]);
    assert_eq!(
        ctl_ok(
            &server,
            &["list_user_limits", "--user", "guest", "--formatter", "json"]
        ),
        "{\"message\":\"{\\\"max-connections\\\":5}\"}\n"
    );
    let bad = ctl(
        &server,
        &["set_user_limits", "guest", r#"{"max-queues":1}"#],
    );
    assert_eq!(bad.status.code(), Some(69));
    ctl_ok(&server, &["clear_user_limits", "guest", "all"]);
}

#[test]
fn an_alternate_exchange_policy_reroutes_an_existing_exchange_s_unroutable_messages() {
    let server = started();
    let port = server.port;
    let ready = |ch: Channel| async move {
        ch.queue_declare(
            "ae-q".into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap()
        .message_count()
    };
    run(
        Duration::from_secs(60),
        "alternate-exchange policy",
        async {
            let conn = connect(port, "guest", "guest").await;
            let ch = conn.create_channel().await.unwrap();
            for (x, kind) in [
                ("x.main", ExchangeKind::Direct),
                ("ae", ExchangeKind::Fanout),
            ] {
                ch.exchange_declare(x.into(), kind, Default::default(), FieldTable::default())
                    .await
                    .unwrap();
            }
            ch.queue_declare("ae-q".into(), Default::default(), FieldTable::default())
                .await
                .unwrap();
            ch.queue_bind(
                "ae-q".into(),
                "ae".into(),
                "".into(),
                Default::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
            publish(&conn, &ch, "x.main", "nowhere").await.unwrap();
            assert_eq!(ready(ch.clone()).await, 0, "no policy yet: dropped");
            let out = ctl(
                &server,
                &[
                    "set_policy",
                    "AE",
                    "^x\\.",
                    r#"{"alternate-exchange":"ae"}"#,
                    "--apply-to",
                    "exchanges",
                ],
            );
            assert!(out.status.success(), "{out:?}");
            publish(&conn, &ch, "x.main", "nowhere").await.unwrap();
            let mut count = 0;
            for _ in 0..100 {
                count = ready(ch.clone()).await;
                if count == 1 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            assert_eq!(count, 1, "the policy's alternate exchange took the message");
            let out = ctl(&server, &["clear_policy", "AE"]);
            assert!(out.status.success(), "{out:?}");
            publish(&conn, &ch, "x.main", "nowhere").await.unwrap();
            tokio::time::sleep(Duration::from_millis(200)).await;
            assert_eq!(ready(ch.clone()).await, 1, "policy cleared: dropped again");
            let _ = conn.close(200, "bye".into()).await;
        },
    );
    let bad = ctl(
        &server,
        &["set_policy", "AE", "^x", r#"{"alternate-exchange":5}"#],
    );
    assert_eq!(bad.status.code(), Some(70), "{bad:?}");
}

#[test]
fn operator_policies_refuse_each_key_by_name_until_its_feature_lands() {
    let server = started();
    let out = ctl(
        &server,
        &["set_operator_policy", "op", "^", r#"{"max-length":10}"#],
    );
    assert_eq!(out.status.code(), Some(69));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("policy key 'max-length' is not supported by WarrenMQ yet"),
        "{out:?}"
    );
    let out = ctl(
        &server,
        &["set_operator_policy", "op", "^", r#"{"ha-mode":"all"}"#],
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("are not recognised policy settings"),
        "{out:?}"
    );
    assert_eq!(
        ctl_ok(&server, &["list_operator_policies", "--formatter", "json"]).trim(),
        "[]"
    );
    assert_eq!(
        ctl(&server, &["clear_operator_policy", "op"]).status.code(),
        Some(69)
    );
}
