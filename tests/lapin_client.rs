//! Integration tests: lapin against a spawned `warrenmq-server` process.

mod common;

use std::time::Duration;

use common::{run, Server};
use futures::StreamExt;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Connection, ConnectionProperties, ExchangeKind};

async fn connect(server: &Server) -> Connection {
    Connection::connect(&server.uri(), ConnectionProperties::default())
        .await
        .expect("connect")
}

fn s(text: &str) -> ShortString {
    text.into()
}

#[test]
fn confirmed_persistent_messages_are_consumed_in_order_with_their_properties() {
    let server = Server::start();
    run(
        Duration::from_secs(60),
        "publish/consume round trip",
        async {
            let conn = connect(&server).await;
            let ch = conn.create_channel().await.unwrap();
            ch.queue_declare(
                s("orders"),
                QueueDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap();
            ch.confirm_select(ConfirmSelectOptions::default())
                .await
                .unwrap();
            let mut nested = FieldTable::default();
            nested.insert(s("depth"), AMQPValue::LongLongInt(2));
            let mut headers = FieldTable::default();
            headers.insert(s("inner"), AMQPValue::FieldTable(nested));
            headers.insert(s("flag"), AMQPValue::Boolean(true));
            let props = BasicProperties::default()
                .with_delivery_mode(2)
                .with_content_type(s("text/plain"))
                .with_correlation_id(s("corr-1"))
                .with_headers(headers.clone());
            let mut confirms = Vec::new();
            for i in 0..500u32 {
                let body = format!("message-{i}");
                let confirm = ch
                    .basic_publish(
                        s(""),
                        s("orders"),
                        BasicPublishOptions::default(),
                        body.as_bytes(),
                        props.clone(),
                    )
                    .await
                    .unwrap();
                confirms.push(confirm);
            }
            for c in confirms {
                assert!(c.await.unwrap().is_ack(), "every publish is acked");
            }
            let q = ch
                .queue_declare(
                    s("orders"),
                    QueueDeclareOptions {
                        passive: true,
                        ..Default::default()
                    },
                    FieldTable::default(),
                )
                .await
                .unwrap();
            assert_eq!(q.message_count(), 500);
            let mut consumer = ch
                .basic_consume(
                    s("orders"),
                    s("c1"),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await
                .unwrap();
            for i in 0..500u32 {
                let d = consumer
                    .next()
                    .await
                    .expect("delivery")
                    .expect("ok delivery");
                assert_eq!(String::from_utf8_lossy(&d.data), format!("message-{i}"));
                assert!(!d.redelivered);
                assert_eq!(
                    d.properties.correlation_id().as_ref().map(|c| c.as_str()),
                    Some("corr-1")
                );
                assert_eq!(d.properties.headers().as_ref(), Some(&headers));
                d.ack(BasicAckOptions::default()).await.unwrap();
            }
            conn.close(200, s("bye")).await.unwrap();
        },
    );
}

#[test]
fn exchanges_route_by_type_and_mandatory_returns_unroutable() {
    let server = Server::start();
    run(Duration::from_secs(60), "routing", async {
        let conn = connect(&server).await;
        let ch = conn.create_channel().await.unwrap();
        ch.exchange_declare(
            s("logs"),
            ExchangeKind::Topic,
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
        for (q, key) in [("all", "#"), ("errors", "*.error"), ("kern", "kern.*")] {
            ch.queue_declare(s(q), QueueDeclareOptions::default(), FieldTable::default())
                .await
                .unwrap();
            ch.queue_bind(
                s(q),
                s("logs"),
                s(key),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        }
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        for key in ["kern.error", "app.error", "kern.info", "app.info.x"] {
            let confirm = ch
                .basic_publish(
                    s("logs"),
                    s(key),
                    BasicPublishOptions::default(),
                    key.as_bytes(),
                    BasicProperties::default(),
                )
                .await
                .unwrap();
            assert!(confirm.await.unwrap().is_ack());
        }
        // Unroutable + mandatory comes back as basic.return before its confirm.
        let confirm = ch
            .basic_publish(
                s(""),
                s("nobody"),
                BasicPublishOptions {
                    mandatory: false,
                    ..Default::default()
                },
                b"x",
                BasicProperties::default(),
            )
            .await
            .unwrap();
        assert!(confirm.await.unwrap().is_ack());
        let confirm = ch
            .basic_publish(
                s(""),
                s("no-such-queue"),
                BasicPublishOptions {
                    mandatory: true,
                    ..Default::default()
                },
                b"back",
                BasicProperties::default(),
            )
            .await
            .unwrap();
        let confirmation = confirm.await.unwrap();
        let returned = confirmation.take_message().expect("returned message");
        assert_eq!(returned.reply_code, 312);
        assert_eq!(returned.data, b"back");
        let counts = |name: &'static str| {
            let ch = ch.clone();
            async move {
                ch.queue_declare(
                    s(name),
                    QueueDeclareOptions {
                        passive: true,
                        ..Default::default()
                    },
                    FieldTable::default(),
                )
                .await
                .unwrap()
                .message_count()
            }
        };
        assert_eq!(counts("all").await, 4);
        assert_eq!(counts("errors").await, 2);
        assert_eq!(counts("kern").await, 2);
        let got = ch
            .basic_get(s("kern"), BasicGetOptions { no_ack: true })
            .await
            .unwrap()
            .expect("a message");
        assert_eq!(got.delivery.data, b"kern.error");
        assert_eq!(got.message_count, 1);
    });
}

#[test]
fn soft_errors_close_the_channel_with_rabbitmq_codes() {
    let server = Server::start();
    run(Duration::from_secs(60), "channel errors", async {
        let conn = connect(&server).await;
        let ch = conn.create_channel().await.unwrap();
        let err = ch
            .queue_declare(
                s("missing"),
                QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("404") || text.contains("NOT_FOUND"), "{text}");
        assert!(text.contains("no queue 'missing' in vhost '/'"), "{text}");
        // The connection survives a channel error.
        let ch2 = conn.create_channel().await.unwrap();
        ch2.queue_declare(
            s("q1"),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
        let err = ch2
            .queue_declare(
                s("q1"),
                QueueDeclareOptions {
                    durable: false,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap_err();
        assert!(err.to_string().contains("PRECONDITION_FAILED"), "{err}");
        let ch3 = conn.create_channel().await.unwrap();
        let err = ch3
            .basic_consume(
                s("absent"),
                s(""),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap_err();
        assert!(err.to_string().contains("NOT_FOUND"), "{err}");
    });
}

/// Consume `count` messages numbered 0.. (big-endian u32 bodies) from `queue` in order,
/// acking each; the first `redelivered` of them must be flagged redelivered.
async fn consume_in_order(ch: &lapin::Channel, queue: &str, count: u32, redelivered: u32) {
    let mut consumer = ch
        .basic_consume(
            s(queue),
            s(""),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    for i in 0..count {
        let d = consumer.next().await.unwrap().unwrap();
        assert_eq!(d.data, i.to_be_bytes(), "message {i} in order");
        assert_eq!(
            d.redelivered,
            i < redelivered,
            "redelivered flag of message {i}"
        );
        d.ack(BasicAckOptions::default()).await.unwrap();
    }
}

/// A message published while a consumer waits is handed to it as soon as it commits
/// (no separate "delivered" round): it must still come back flagged redelivered after a
/// crash, in order, and none may be lost.
#[test]
fn messages_handed_to_a_waiting_consumer_come_back_redelivered_after_sigkill() {
    let mut server = Server::start();
    let dir = server.data_dir.clone();
    let port = server.port;
    let _keep = server._tmp_take();
    run(Duration::from_secs(60), "publish to a consumer", async {
        let conn = connect(&server).await;
        let ch = conn.create_channel().await.unwrap();
        let durable = QueueDeclareOptions {
            durable: true,
            ..Default::default()
        };
        ch.queue_declare(s("waiting-q"), durable, FieldTable::default())
            .await
            .unwrap();
        let consume_ch = conn.create_channel().await.unwrap();
        consume_ch
            .basic_qos(5, BasicQosOptions::default())
            .await
            .unwrap();
        let mut consumer = consume_ch
            .basic_consume(
                s("waiting-q"),
                s(""),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        for i in 0..20u32 {
            let confirm = ch
                .basic_publish(
                    s(""),
                    s("waiting-q"),
                    BasicPublishOptions::default(),
                    &i.to_be_bytes(),
                    BasicProperties::default().with_delivery_mode(2),
                )
                .await
                .unwrap();
            assert!(confirm.await.unwrap().is_ack());
        }
        // The first five went straight to the consumer (prefetch 5), none acked.
        for i in 0..5u32 {
            let d = consumer.next().await.unwrap().unwrap();
            assert_eq!(d.data, i.to_be_bytes());
            assert!(!d.redelivered, "a first delivery of message {i}");
        }
    });
    server.kill();
    let server = Server::start_on(&dir, port);
    run(Duration::from_secs(60), "consume after restart", async {
        let conn = connect(&server).await;
        let ch = conn.create_channel().await.unwrap();
        consume_in_order(&ch, "waiting-q", 20, 5).await;
    });
}

#[test]
fn sigkill_loses_no_confirmed_message_and_redelivers_unacked() {
    let mut server = Server::start();
    let dir = server.data_dir.clone();
    let port = server.port;
    let _keep = server._tmp_take();
    run(Duration::from_secs(60), "publish then SIGKILL", async {
        let conn = connect(&server).await;
        let ch = conn.create_channel().await.unwrap();
        ch.queue_declare(
            s("durable-q"),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
        ch.exchange_declare(
            s("dx"),
            ExchangeKind::Direct,
            ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
        ch.exchange_declare(
            s("transient-x"),
            ExchangeKind::Fanout,
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
        ch.queue_bind(
            s("durable-q"),
            s("dx"),
            s("k"),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        let mut confirms = Vec::new();
        for i in 0..300u32 {
            confirms.push(
                ch.basic_publish(
                    s("dx"),
                    s("k"),
                    BasicPublishOptions::default(),
                    &i.to_be_bytes(),
                    BasicProperties::default().with_delivery_mode(2),
                )
                .await
                .unwrap(),
            );
        }
        for c in confirms {
            assert!(c.await.unwrap().is_ack());
        }
        let consume_ch = conn.create_channel().await.unwrap();
        consume_ch
            .basic_qos(10, BasicQosOptions::default())
            .await
            .unwrap();
        let mut consumer = consume_ch
            .basic_consume(
                s("durable-q"),
                s(""),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        for _ in 0..10 {
            consumer.next().await.unwrap().unwrap();
        }
    });
    server.kill();
    let server = Server::start_on(&dir, port);
    run(Duration::from_secs(60), "consume after restart", async {
        let conn = connect(&server).await;
        let ch = conn.create_channel().await.unwrap();
        consume_in_order(&ch, "durable-q", 300, 10).await;
        // The durable exchange and binding survived too.
        ch.exchange_declare(
            s("dx"),
            ExchangeKind::Direct,
            ExchangeDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
        // A non-durable exchange did not survive the restart (as in RabbitMQ).
        let err = ch
            .exchange_declare(
                s("transient-x"),
                ExchangeKind::Fanout,
                ExchangeDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap_err();
        assert!(err.to_string().contains("NOT_FOUND"), "{err}");
    });
}
