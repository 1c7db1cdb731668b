//! Protocol details a newcomer meets in the first hour, as RabbitMQ 3.10.8 behaves
//! (`scripts/compare_rabbitmq.py` checks the same texts against a real RabbitMQ):
//! sender-selected distribution (`CC` / `BCC`), reserved `amq.` queue names, the
//! `user_id` and `expiration` checks, and queue arguments refused until they work.

mod common;

use std::time::Duration;

use common::amqp::refusal;
use common::{run, Server};
use futures::StreamExt;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldArray, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};

async fn connect(server: &Server) -> Connection {
    Connection::connect(&server.uri(), ConnectionProperties::default())
        .await
        .expect("connect")
}

fn s(text: &str) -> ShortString {
    text.into()
}

async fn declare(ch: &Channel, name: &str, args: FieldTable) -> Result<String, lapin::Error> {
    ch.queue_declare(s(name), QueueDeclareOptions::default(), args)
        .await
        .map(|q| q.name().as_str().to_owned())
}

async fn passive(ch: &Channel, name: &str) -> Result<u32, lapin::Error> {
    ch.queue_declare(
        s(name),
        QueueDeclareOptions {
            passive: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .map(|q| q.message_count())
}

fn keys(items: &[&str]) -> AMQPValue {
    AMQPValue::FieldArray(FieldArray::from(
        items
            .iter()
            .map(|k| AMQPValue::LongString(LongString::from(*k)))
            .collect::<Vec<_>>(),
    ))
}

/// A publish followed by a synchronous method on the same channel: the method succeeds
/// only if the publish did not close the channel (the broker answers in order).
async fn publish_then_probe(
    ch: &Channel,
    exchange: &str,
    key: &str,
    props: BasicProperties,
) -> Result<(), lapin::Error> {
    ch.basic_publish(
        s(exchange),
        s(key),
        BasicPublishOptions::default(),
        b"x",
        props,
    )
    .await?;
    ch.exchange_declare(
        s("amq.direct"),
        lapin::ExchangeKind::Direct,
        ExchangeDeclareOptions {
            passive: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
}

/// A publish that the broker refuses by closing the channel: the close's code and text,
/// as the connection's event stream reports it.
async fn publish_refused(
    events: &mut (impl futures::Stream<Item = lapin::Event> + Unpin),
    ch: &Channel,
    props: BasicProperties,
) -> (u16, String) {
    ch.basic_publish(
        s(""),
        s("props-q"),
        BasicPublishOptions::default(),
        b"x",
        props,
    )
    .await
    .expect("the publish is sent");
    loop {
        match tokio::time::timeout(Duration::from_secs(5), events.next()).await {
            Ok(Some(lapin::Event::Error(e))) => return refusal::<()>(Err(e)),
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the connection ended without a channel error"),
            Err(_) => panic!("no channel.close within 5 s"),
        }
    }
}

#[test]
fn cc_and_bcc_headers_route_to_more_queues_and_bcc_is_not_delivered() {
    let server = Server::start();
    run(Duration::from_secs(60), "CC / BCC routing", async {
        let conn = connect(&server).await;
        let ch = conn.create_channel().await.unwrap();
        // Through the default exchange and through a direct exchange, for a transient
        // and a durable queue each.
        ch.exchange_declare(
            s("sel.direct"),
            lapin::ExchangeKind::Direct,
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
        for (name, durable) in [("sel-main", false), ("sel-cc", true), ("sel-bcc", false)] {
            ch.queue_declare(
                s(name),
                QueueDeclareOptions {
                    durable,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap();
            ch.queue_bind(
                s(name),
                s("sel.direct"),
                s(&format!("key-{name}")),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        }
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        let publish = |exchange: &'static str, key: &'static str, cc: &[&str], bcc: &[&str]| {
            let mut headers = FieldTable::default();
            headers.insert(s("CC"), keys(cc));
            headers.insert(s("BCC"), keys(bcc));
            headers.insert(s("app"), AMQPValue::LongString("kept".into()));
            let ch = ch.clone();
            async move {
                ch.basic_publish(
                    s(exchange),
                    s(key),
                    BasicPublishOptions::default(),
                    exchange.as_bytes(),
                    BasicProperties::default().with_headers(headers),
                )
                .await
                .unwrap()
                .await
                .unwrap();
            }
        };
        publish("", "sel-main", &["sel-cc"], &["sel-bcc"]).await;
        publish(
            "sel.direct",
            "key-sel-main",
            &["key-sel-cc", "nowhere"],
            &["key-sel-bcc"],
        )
        .await;
        for queue in ["sel-main", "sel-cc", "sel-bcc"] {
            for _ in 0..2 {
                let got = ch
                    .basic_get(s(queue), BasicGetOptions { no_ack: true })
                    .await
                    .unwrap()
                    .unwrap_or_else(|| panic!("{queue}: a message for each publish"));
                let headers = got.properties.headers().clone().expect("headers kept");
                let headers = headers.inner();
                assert!(headers.contains_key("CC"), "{queue}: CC stays");
                assert!(headers.contains_key("app"), "{queue}: other headers stay");
                assert!(!headers.contains_key("BCC"), "{queue}: BCC is removed");
                // The delivery carries the publish's own routing key.
                assert!(
                    got.routing_key.as_str().ends_with("sel-main"),
                    "{queue}: {}",
                    got.routing_key
                );
            }
            assert_eq!(
                passive(&ch, queue).await.unwrap(),
                0,
                "{queue}: one copy each"
            );
        }
    });
}

#[test]
fn queue_names_starting_with_amq_are_refused_before_the_exclusive_lock() {
    let server = Server::start();
    run(Duration::from_secs(60), "amq. queue names", async {
        let owner = connect(&server).await;
        let och = owner.create_channel().await.unwrap();
        let generated = och
            .queue_declare(
                s(""),
                QueueDeclareOptions {
                    exclusive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap()
            .name()
            .as_str()
            .to_owned();
        assert!(generated.starts_with("amq.gen-"), "{generated}");
        // The owner may look at it passively, but not declare it by name.
        assert_eq!(passive(&och, &generated).await.unwrap(), 0);
        assert_eq!(
            refusal(declare(&och, &generated, FieldTable::default()).await),
            (
                403,
                format!(
                    "ACCESS_REFUSED - queue name '{generated}' contains reserved prefix 'amq.*'"
                )
            )
        );
        // Another connection gets 403 too (the name check comes before the lock's 405).
        let other = connect(&server).await;
        let ch = other.create_channel().await.unwrap();
        assert_eq!(
            refusal(declare(&ch, &generated, FieldTable::default()).await).0,
            403
        );
        let ch = other.create_channel().await.unwrap();
        assert_eq!(
            refusal(declare(&ch, "amq.mine", FieldTable::default()).await),
            (
                403,
                "ACCESS_REFUSED - queue name 'amq.mine' contains reserved prefix 'amq.*'".into()
            )
        );
        // A passive declare of another connection's exclusive queue is the lock's 405.
        let ch = other.create_channel().await.unwrap();
        assert_eq!(refusal(passive(&ch, &generated).await).0, 405);
    });
}

#[test]
fn user_id_and_expiration_properties_are_checked_as_rabbitmq_does() {
    let server = Server::start();
    run(Duration::from_secs(60), "user_id / expiration", async {
        let conn = connect(&server).await;
        let ch = conn.create_channel().await.unwrap();
        declare(&ch, "props-q", FieldTable::default())
            .await
            .unwrap();
        // Valid values pass and are delivered.
        let fine = BasicProperties::default()
            .with_user_id(s("guest"))
            .with_expiration(s("60000"));
        publish_then_probe(&ch, "", "props-q", fine).await.unwrap();
        let mut consumer = ch
            .basic_consume(
                s("props-q"),
                s("c"),
                BasicConsumeOptions {
                    no_ack: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap();
        let got = tokio::time::timeout(Duration::from_secs(5), consumer.next())
            .await
            .expect("the valid message arrives")
            .unwrap()
            .unwrap();
        assert_eq!(got.properties.user_id().as_ref().unwrap().as_str(), "guest");

        let cases = [
            (
                BasicProperties::default().with_user_id(s("mallory")),
                "PRECONDITION_FAILED - user_id property set to 'mallory' but authenticated user was 'guest'",
            ),
            (
                BasicProperties::default().with_expiration(s("soon")),
                "PRECONDITION_FAILED - invalid expiration 'soon': no_integer",
            ),
            (
                BasicProperties::default().with_expiration(s("-1")),
                "PRECONDITION_FAILED - invalid expiration '-1': {value_negative,-1}",
            ),
        ];
        let mut events = conn.events_listener();
        for (props, text) in cases {
            let ch = conn.create_channel().await.unwrap();
            assert_eq!(
                publish_refused(&mut events, &ch, props).await,
                (406, text.to_owned())
            );
        }
        // The channel closed, the connection lives on and nothing bad was queued.
        let ch = conn.create_channel().await.unwrap();
        assert_eq!(passive(&ch, "props-q").await.unwrap(), 0);
    });
}

#[test]
fn queue_arguments_that_would_be_ignored_are_refused_by_name() {
    let server = Server::start();
    run(Duration::from_secs(60), "refused queue arguments", async {
        let conn = connect(&server).await;
        let refused = [
            ("x-message-ttl", AMQPValue::LongInt(1000)),
            ("x-expires", AMQPValue::LongInt(1000)),
            ("x-max-length", AMQPValue::LongInt(10)),
            ("x-max-length-bytes", AMQPValue::LongInt(1000)),
            ("x-overflow", AMQPValue::LongString("reject-publish".into())),
            (
                "x-dead-letter-exchange",
                AMQPValue::LongString("dlx".into()),
            ),
            ("x-max-priority", AMQPValue::LongInt(5)),
            ("x-single-active-consumer", AMQPValue::Boolean(true)),
            ("x-delivery-limit", AMQPValue::LongInt(3)),
        ];
        for (key, value) in refused {
            let ch = conn.create_channel().await.unwrap();
            let mut args = FieldTable::default();
            args.insert(s(key), value);
            let (code, text) = refusal(declare(&ch, "refused-q", args).await);
            assert_eq!(code, 406, "{key}");
            assert_eq!(
                text,
                format!("PRECONDITION_FAILED - invalid arg '{key}' for queue 'refused-q' in vhost '/': not supported by WarrenMQ yet (refused rather than ignored)")
            );
            let ch = conn.create_channel().await.unwrap();
            assert_eq!(
                refusal(passive(&ch, "refused-q").await).0,
                404,
                "{key}: not created"
            );
        }
        // A bad value still gets RabbitMQ's own text first.
        let ch = conn.create_channel().await.unwrap();
        let mut args = FieldTable::default();
        args.insert(s("x-max-length"), AMQPValue::LongInt(-1));
        assert_eq!(
            refusal(declare(&ch, "refused-q", args).await).1,
            "PRECONDITION_FAILED - invalid arg 'x-max-length' for queue 'refused-q' in vhost '/': {value_negative,-1}"
        );
        // Arguments that work are accepted.
        let ch = conn.create_channel().await.unwrap();
        let mut args = FieldTable::default();
        args.insert(s("x-queue-mode"), AMQPValue::LongString("lazy".into()));
        declare(&ch, "accepted-q", args).await.unwrap();
    });
}
