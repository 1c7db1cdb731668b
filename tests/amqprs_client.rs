//! Integration tests: amqprs (an independent AMQP codec) against a spawned
//! `warrenmq-server` process.

mod common;

use std::time::Duration;

use amqprs::channel::{
    BasicAckArguments, BasicConsumeArguments, BasicGetArguments, BasicPublishArguments,
    BasicQosArguments, ExchangeDeclareArguments, ExchangeUnbindArguments, QueueBindArguments,
    QueueDeclareArguments, QueueUnbindArguments,
};
use amqprs::connection::{Connection, OpenConnectionArguments};
use amqprs::{BasicProperties, FieldTable};
use common::{run, Server};

async fn connect(server: &Server) -> Connection {
    Connection::open(&OpenConnectionArguments::new(
        "127.0.0.1",
        server.port,
        "guest",
        "guest",
    ))
    .await
    .expect("open")
}

#[test]
fn amqprs_publishes_gets_and_consumes_with_prefetch() {
    let server = Server::start();
    run(Duration::from_secs(60), "amqprs round trip", async {
        let conn = connect(&server).await;
        let ch = conn.open_channel(None).await.unwrap();
        let (name, count, consumers) = ch
            .queue_declare(QueueDeclareArguments::durable_client_named("rs-q"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((name.as_str(), count, consumers), ("rs-q", 0, 0));
        ch.exchange_declare(ExchangeDeclareArguments::new("rs-fanout", "fanout"))
            .await
            .unwrap();
        ch.queue_bind(QueueBindArguments::new("rs-q", "rs-fanout", "ignored"))
            .await
            .unwrap();
        let mut props = BasicProperties::default();
        props
            .with_delivery_mode(2)
            .with_message_id("id-1")
            .with_priority(4);
        let mut headers = FieldTable::new();
        headers.insert("k".try_into().unwrap(), "v".into());
        props.with_headers(headers);
        for i in 0..50u8 {
            ch.basic_publish(
                props.clone(),
                vec![i; 1000],
                BasicPublishArguments::new("rs-fanout", "x"),
            )
            .await
            .unwrap();
        }
        // Publishes are asynchronous: wait until the queue holds them all.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let (_, count, _) = ch
                .queue_declare(QueueDeclareArguments::durable_client_named("rs-q"))
                .await
                .unwrap()
                .unwrap();
            if count == 50 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "only {count} of 50 messages arrived"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let (get_ok, got_props, body) = ch
            .basic_get(BasicGetArguments::new("rs-q").no_ack(true).finish())
            .await
            .unwrap()
            .expect("a message");
        assert_eq!(body, vec![0u8; 1000]);
        assert_eq!(get_ok.message_count(), 49);
        assert_eq!(got_props.message_id().map(|s| s.as_str()), Some("id-1"));
        assert_eq!(got_props.priority(), Some(4));
        ch.basic_qos(BasicQosArguments::new(0, 5, false))
            .await
            .unwrap();
        let (_tag, mut rx) = ch
            .basic_consume_rx(BasicConsumeArguments::new("rs-q", "rs-consumer"))
            .await
            .unwrap();
        for i in 1..50u8 {
            let msg = tokio::time::timeout(Duration::from_secs(10), rx.recv())
                .await
                .expect("delivery in time")
                .expect("delivery");
            let deliver = msg.deliver.unwrap();
            assert_eq!(msg.content.unwrap(), vec![i; 1000]);
            ch.basic_ack(BasicAckArguments::new(deliver.delivery_tag(), false))
                .await
                .unwrap();
        }
        conn.close().await.unwrap();
    });
}

#[test]
fn amqprs_unbinds_of_missing_queues_exchanges_and_bindings_succeed() {
    let server = Server::start();
    run(Duration::from_secs(30), "amqprs unbind", async {
        let conn = connect(&server).await;
        let ch = conn.open_channel(None).await.unwrap();
        ch.queue_declare(QueueDeclareArguments::durable_client_named("rs-unbind"))
            .await
            .unwrap();
        // As in RabbitMQ: unbind-ok whether the queue, the exchange or the binding is missing.
        for (queue, exchange) in [
            ("rs-missing", "amq.direct"),
            ("rs-unbind", "rs-missing-x"),
            ("rs-unbind", "amq.direct"),
        ] {
            ch.queue_unbind(QueueUnbindArguments::new(queue, exchange, "k"))
                .await
                .unwrap_or_else(|e| panic!("unbind {queue} from {exchange}: {e}"));
        }
        ch.exchange_unbind(ExchangeUnbindArguments::new("rs-dst", "rs-src", "k"))
            .await
            .unwrap();
        // The channel is still open.
        ch.queue_declare(QueueDeclareArguments::durable_client_named("rs-unbind"))
            .await
            .unwrap();
        conn.close().await.unwrap();
    });
}
