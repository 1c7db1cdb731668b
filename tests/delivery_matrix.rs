//! Every queue kind x consumer mode x order delivers at once: one publish to a waiting
//! consumer, publishes before the consumer, two consumers and an odd count. Each case
//! asserts that every message arrives within a bounded wait, exactly once, and that
//! nothing stays ready. (A stall of non-durable queues once hid behind tests that used
//! durable queues only.)

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::cluster::Cluster;
use common::{run, Server};
use futures::StreamExt;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use tokio::sync::mpsc;

/// Longest wait for a message that should arrive at once.
const ARRIVAL: Duration = Duration::from_secs(5);

#[derive(Clone, Copy, Debug)]
enum Kind {
    NonDurable,
    ExclusiveServerNamed,
    AutoDelete,
    DurableClassic,
    Quorum,
}

const KINDS: [Kind; 5] = [
    Kind::NonDurable,
    Kind::ExclusiveServerNamed,
    Kind::AutoDelete,
    Kind::DurableClassic,
    Kind::Quorum,
];

#[derive(Clone, Copy, Debug)]
enum Mode {
    AutoAck,
    /// Manual acks with this per-consumer prefetch (0 = unlimited).
    Manual(u16),
    /// Manual acks under a channel-wide (global) prefetch of 2.
    GlobalQos,
}

const MODES: [Mode; 5] = [
    Mode::AutoAck,
    Mode::Manual(0),
    Mode::Manual(1),
    Mode::Manual(10),
    Mode::GlobalQos,
];

#[derive(Clone, Copy, Debug)]
enum Order {
    /// The consumer waits, then exactly one message is published.
    ConsumerFirst,
    /// Three messages are published, then the consumer starts.
    PublishFirst,
    /// Two consumers wait, then nine messages are published.
    TwoConsumersOdd,
}

const ORDERS: [Order; 3] = [
    Order::ConsumerFirst,
    Order::PublishFirst,
    Order::TwoConsumersOdd,
];

/// Where the clients of one case connect: the queue is declared through `owner`, the
/// consumers use `consumer` (the same connection as `owner` for exclusive queues) and
/// the publisher `producer`.
struct Place<'a> {
    owner: &'a str,
    consumer: &'a str,
    producer: &'a str,
}

async fn connect(uri: &str) -> Connection {
    Connection::connect(uri, ConnectionProperties::default())
        .await
        .expect("connect")
}

fn queue_args(kind: Kind) -> (QueueDeclareOptions, FieldTable) {
    let mut args = FieldTable::default();
    let durable = matches!(kind, Kind::DurableClassic | Kind::Quorum);
    if matches!(kind, Kind::Quorum) {
        args.insert(
            "x-queue-type".into(),
            AMQPValue::LongString("quorum".into()),
        );
    }
    let options = QueueDeclareOptions {
        durable,
        exclusive: matches!(kind, Kind::ExclusiveServerNamed),
        auto_delete: matches!(kind, Kind::AutoDelete),
        ..Default::default()
    };
    (options, args)
}

/// Start a consumer on a channel of its own; its deliveries' bodies arrive on `tx`
/// (acked first in manual modes).
async fn consume(conn: &Connection, queue: &str, mode: Mode, tx: mpsc::UnboundedSender<String>) {
    let ch = conn.create_channel().await.expect("consumer channel");
    match mode {
        Mode::AutoAck | Mode::Manual(0) => {}
        Mode::Manual(n) => ch
            .basic_qos(n, BasicQosOptions { global: false })
            .await
            .expect("qos"),
        Mode::GlobalQos => ch
            .basic_qos(2, BasicQosOptions { global: true })
            .await
            .expect("global qos"),
    }
    let no_ack = matches!(mode, Mode::AutoAck);
    let mut consumer = ch
        .basic_consume(
            queue.into(),
            "".into(),
            BasicConsumeOptions {
                no_ack,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("consume");
    tokio::spawn(async move {
        let _keep = ch;
        while let Some(Ok(d)) = consumer.next().await {
            if !no_ack {
                d.ack(BasicAckOptions::default()).await.expect("ack");
            }
            if tx
                .send(String::from_utf8_lossy(&d.data).into_owned())
                .is_err()
            {
                return;
            }
        }
    });
}

async fn publish(ch: &Channel, queue: &str, bodies: &[String]) {
    for body in bodies {
        ch.basic_publish(
            "".into(),
            queue.into(),
            BasicPublishOptions::default(),
            body.as_bytes(),
            BasicProperties::default(),
        )
        .await
        .expect("publish")
        .await
        .expect("confirm");
    }
}

/// One case: declare, consume and publish in `order`, then check every message arrived
/// once and nothing is ready.
async fn case(place: &Place<'_>, kind: Kind, mode: Mode, order: Order, id: usize) {
    let what = format!("{kind:?} x {mode:?} x {order:?}");
    let owner = connect(place.owner).await;
    let (options, args) = queue_args(kind);
    let requested = match kind {
        Kind::ExclusiveServerNamed => String::new(),
        _ => format!("matrix-{id}"),
    };
    let declare_ch = owner.create_channel().await.expect("channel");
    let queue = declare_ch
        .queue_declare(requested.as_str().into(), options, args)
        .await
        .unwrap_or_else(|e| panic!("{what}: declare: {e}"))
        .name()
        .to_string();
    // An exclusive queue can only be consumed by its own connection.
    let consumer_conn = match kind {
        Kind::ExclusiveServerNamed => None,
        _ => Some(connect(place.consumer).await),
    };
    let consumer = consumer_conn.as_ref().unwrap_or(&owner);
    let producer = connect(place.producer).await;
    let pch = producer.create_channel().await.expect("producer channel");
    pch.confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirm.select");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let count = match order {
        Order::ConsumerFirst => 1,
        Order::PublishFirst => 3,
        Order::TwoConsumersOdd => 9,
    };
    let bodies: Vec<String> = (0..count).map(|i| format!("{id}-{i}")).collect();
    match order {
        Order::ConsumerFirst => {
            consume(consumer, &queue, mode, tx).await;
            publish(&pch, &queue, &bodies).await;
        }
        Order::PublishFirst => {
            publish(&pch, &queue, &bodies).await;
            consume(consumer, &queue, mode, tx).await;
        }
        Order::TwoConsumersOdd => {
            consume(consumer, &queue, mode, tx.clone()).await;
            consume(consumer, &queue, mode, tx).await;
            publish(&pch, &queue, &bodies).await;
        }
    }
    let mut got = Vec::new();
    while got.len() < bodies.len() {
        match tokio::time::timeout(ARRIVAL, rx.recv()).await {
            Ok(Some(body)) => got.push(body),
            _ => panic!(
                "{what}: {} of {} messages arrived within {ARRIVAL:?} (got {got:?})",
                got.len(),
                bodies.len()
            ),
        }
    }
    let unique: BTreeSet<&String> = got.iter().collect();
    let want: BTreeSet<&String> = bodies.iter().collect();
    assert_eq!(unique, want, "{what}: every message exactly once");
    assert_eq!(got.len(), bodies.len(), "{what}: no duplicates");
    // The count comes from a channel of the owner (the only one an exclusive queue
    // answers a passive declare on).
    let ready = declare_ch
        .queue_declare(
            queue.as_str().into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap_or_else(|e| panic!("{what}: passive declare: {e}"))
        .message_count();
    assert_eq!(ready, 0, "{what}: nothing stays ready");
    declare_ch
        .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{what}: delete: {e}"));
    // Teardown, bounded: a close that is not answered is not what this test checks
    // (seen once in eight cluster runs: a producer's connection.close on node 3 right
    // after the queue on node 1 was deleted; left for the queue-core issue), and the
    // socket goes with the connection anyway.
    for conn in [Some(owner), consumer_conn, Some(producer)]
        .into_iter()
        .flatten()
    {
        if tokio::time::timeout(Duration::from_secs(5), conn.close(200, "bye".into()))
            .await
            .is_err()
        {
            eprintln!("{what}: connection.close not answered within 5 s");
        }
    }
}

/// Every mode x order for one queue kind.
async fn matrix(place: &Place<'_>, kind: Kind, first_id: usize) {
    let mut id = first_id;
    for mode in MODES {
        for order in ORDERS {
            case(place, kind, mode, order, id).await;
            id += 1;
        }
    }
}

fn single_node(kind: Kind, first_id: usize) {
    let server = Server::start();
    let uri = server.uri();
    let place = Place {
        owner: &uri,
        consumer: &uri,
        producer: &uri,
    };
    run(
        Duration::from_secs(180),
        &format!("delivery matrix of {kind:?} queues"),
        matrix(&place, kind, first_id),
    );
}

#[test]
fn non_durable_queues_deliver_at_once_in_every_mode_and_order() {
    single_node(Kind::NonDurable, 0);
}

#[test]
fn exclusive_server_named_queues_deliver_at_once_in_every_mode_and_order() {
    single_node(Kind::ExclusiveServerNamed, 100);
}

#[test]
fn auto_delete_queues_deliver_at_once_in_every_mode_and_order() {
    single_node(Kind::AutoDelete, 200);
}

#[test]
fn durable_classic_queues_deliver_at_once_in_every_mode_and_order() {
    single_node(Kind::DurableClassic, 300);
}

#[test]
fn quorum_queues_deliver_at_once_in_every_mode_and_order() {
    single_node(Kind::Quorum, 400);
}

/// On a three-node cluster: every kind declared on node 1, consumed on node 2 and
/// published to on node 3, so each queue is led by another node than its clients'
/// (an exclusive queue is consumed by its own connection, on node 1).
#[test]
fn queues_led_by_another_node_deliver_at_once_in_every_mode_and_order() {
    let cluster = Cluster::joined();
    let uris: Vec<String> = (0..3).map(|i| cluster.server(i).uri()).collect();
    let place = Place {
        owner: &uris[0],
        consumer: &uris[1],
        producer: &uris[2],
    };
    run(
        Duration::from_secs(600),
        "delivery matrix on a three-node cluster",
        async {
            for (i, kind) in KINDS.into_iter().enumerate() {
                matrix(&place, kind, 1000 + 100 * i).await;
            }
        },
    );
}
