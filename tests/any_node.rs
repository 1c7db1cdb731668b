//! Clients of any node use any queue: a three-node cluster of real `warrenmq-server`
//! processes, a quorum queue led by node 1, and clients of nodes 2 and 3 that publish,
//! consume, get, purge and delete it (their node forwards to the leader over a queue
//! link); then the leader is SIGKILLed under a running publisher and consumer on the
//! other nodes, which carry on without an error: every confirmed message is consumed,
//! nothing unpublished appears, and first deliveries keep the publish order.

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::cluster::Cluster;
use common::{run, Server};
use futures::StreamExt;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};

async fn open(server: &Server) -> (Connection, Channel) {
    let conn = Connection::connect(&server.uri(), ConnectionProperties::default())
        .await
        .expect("connect");
    let ch = conn.create_channel().await.expect("channel");
    (conn, ch)
}

fn quorum() -> FieldTable {
    let mut args = FieldTable::default();
    args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    args
}

fn durable() -> QueueDeclareOptions {
    QueueDeclareOptions {
        durable: true,
        ..Default::default()
    }
}

fn persistent() -> BasicProperties {
    BasicProperties::default().with_delivery_mode(2)
}

#[test]
fn clients_of_every_node_publish_consume_get_purge_and_delete_a_queue_led_elsewhere() {
    let c = Cluster::joined();
    const COUNT: usize = 500;
    run(Duration::from_secs(120), "any-node clients", async {
        let (_c1, ch1) = open(c.server(0)).await;
        ch1.queue_declare("fwd".into(), durable(), quorum())
            .await
            .unwrap();
        // A transient queue lives on node 1 only; node 2's clients use it too.
        ch1.queue_declare(
            "fwd.transient".into(),
            Default::default(),
            Default::default(),
        )
        .await
        .unwrap();

        // Publisher on node 2, with confirms.
        let (_c2, ch2) = open(c.server(1)).await;
        ch2.confirm_select(Default::default()).await.unwrap();
        let mut confirms = Vec::new();
        for i in 0..COUNT {
            confirms.push(
                ch2.basic_publish(
                    "".into(),
                    "fwd".into(),
                    Default::default(),
                    format!("m{i}").as_bytes(),
                    persistent(),
                )
                .await
                .unwrap(),
            );
        }
        for confirm in confirms {
            assert!(
                confirm.await.unwrap().is_ack(),
                "forwarded publish confirmed"
            );
        }

        // Consumer on node 3 with a prefetch of 10: every message in publish order.
        let (_c3, ch3) = open(c.server(2)).await;
        let passive = QueueDeclareOptions {
            passive: true,
            ..Default::default()
        };
        let q = ch3
            .queue_declare("fwd".into(), passive, Default::default())
            .await
            .unwrap();
        assert_eq!(
            q.message_count() as usize,
            COUNT,
            "counts come from the leader"
        );
        ch3.basic_qos(10, Default::default()).await.unwrap();
        let mut consumer = ch3
            .basic_consume(
                "fwd".into(),
                "c3".into(),
                Default::default(),
                Default::default(),
            )
            .await
            .unwrap();
        // The leader counts the consumer of node 3, as node 2 sees it.
        let q = ch2
            .queue_declare("fwd".into(), passive, Default::default())
            .await
            .unwrap();
        assert_eq!(q.consumer_count(), 1, "a consumer on another node counts");
        let mut unacked = Vec::new();
        for i in 0..COUNT {
            let d = consumer
                .next()
                .await
                .expect("delivery")
                .expect("delivery ok");
            assert_eq!(d.data, format!("m{i}").as_bytes(), "publish order");
            assert!(!d.redelivered);
            unacked.push(d.delivery_tag);
            // Prefetch honoured: never more than 10 unacked at a time.
            if unacked.len() == 10 {
                let q = ch2
                    .queue_declare("fwd".into(), passive, Default::default())
                    .await
                    .unwrap();
                assert!(q.message_count() as usize >= COUNT - i - 1);
                for tag in unacked.drain(..) {
                    ch3.basic_ack(tag, Default::default()).await.unwrap();
                }
            }
        }
        assert!(
            tokio::time::timeout(Duration::from_millis(300), consumer.next())
                .await
                .is_err(),
            "nothing beyond what was published"
        );
        ch3.basic_cancel("c3".into(), Default::default())
            .await
            .unwrap();

        // Get, reject with requeue (redelivered), ack, and purge from node 2.
        for i in 0..3 {
            ch2.basic_publish(
                "".into(),
                "fwd".into(),
                Default::default(),
                format!("g{i}").as_bytes(),
                persistent(),
            )
            .await
            .unwrap()
            .await
            .unwrap();
        }
        let got = ch2
            .basic_get("fwd".into(), BasicGetOptions { no_ack: false })
            .await
            .unwrap()
            .expect("a message");
        assert_eq!(got.delivery.data, b"g0");
        assert_eq!(got.message_count, 2);
        ch2.basic_reject(
            got.delivery.delivery_tag,
            BasicRejectOptions { requeue: true },
        )
        .await
        .unwrap();
        let again = ch2
            .basic_get("fwd".into(), BasicGetOptions { no_ack: false })
            .await
            .unwrap()
            .expect("the rejected message again");
        assert_eq!(again.delivery.data, b"g0");
        assert!(again.delivery.redelivered);
        ch2.basic_ack(again.delivery.delivery_tag, Default::default())
            .await
            .unwrap();
        let purged = ch3
            .queue_purge("fwd".into(), Default::default())
            .await
            .unwrap();
        assert_eq!(purged, 2, "purge from a third node");

        // The transient queue of node 1, from node 2.
        ch2.basic_publish(
            "".into(),
            "fwd.transient".into(),
            Default::default(),
            b"t",
            BasicProperties::default(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
        let t = ch2
            .basic_get("fwd.transient".into(), BasicGetOptions { no_ack: true })
            .await
            .unwrap()
            .expect("the transient queue's message");
        assert_eq!(t.delivery.data, b"t");
        let t = ch1
            .basic_get("fwd.transient".into(), BasicGetOptions { no_ack: true })
            .await
            .unwrap();
        assert!(t.is_none(), "one queue, not one per node");

        // A consumer on node 3 is cancelled when node 2 deletes the queue.
        let mut consumer = ch3
            .basic_consume(
                "fwd".into(),
                "c3b".into(),
                Default::default(),
                Default::default(),
            )
            .await
            .unwrap();
        ch2.queue_delete("fwd".into(), Default::default())
            .await
            .unwrap();
        let end = tokio::time::timeout(Duration::from_secs(10), consumer.next())
            .await
            .expect("the consumer ends when its queue is deleted");
        assert!(end.is_none(), "no delivery after the delete: {end:?}");
        let gone = ch1
            .queue_declare("fwd".into(), passive, Default::default())
            .await;
        assert!(gone.is_err(), "the queue is gone everywhere");
    });
}

/// What the checker saw.
#[derive(Default)]
struct Seen {
    confirmed: BTreeSet<u64>,
    nacked: BTreeSet<u64>,
    published: u64,
    /// Message numbers in delivery order.
    delivered: Vec<u64>,
    redelivered: usize,
    /// When each confirm arrived (for the longest gap).
    confirm_times: Vec<Instant>,
}

#[test]
fn publisher_and_consumer_on_other_nodes_ride_out_the_leader_s_death() {
    let mut c = Cluster::joined();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (_c1, ch1) = rt.block_on(open(c.server(0)));
    rt.block_on(ch1.queue_declare("failover".into(), durable(), quorum()))
        .unwrap();
    let (producer_conn, producer) = rt.block_on(open(c.server(1)));
    let (consumer_conn, consumer) = rt.block_on(open(c.server(2)));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));

    // Publisher on node 2: up to 100 unconfirmed, numbered bodies.
    let publishing = rt.spawn({
        let seen = seen.clone();
        let stop = stop.clone();
        async move {
            producer.confirm_select(Default::default()).await.unwrap();
            let mut n = 0u64;
            let mut window = std::collections::VecDeque::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) || !window.is_empty() {
                if window.len() < 100 && !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let confirm = producer
                        .basic_publish(
                            "".into(),
                            "failover".into(),
                            Default::default(),
                            n.to_string().as_bytes(),
                            persistent(),
                        )
                        .await
                        .expect("publish: the client never sees an error");
                    seen.lock().unwrap().published = n + 1;
                    window.push_back((n, confirm));
                    n += 1;
                    continue;
                }
                let (m, confirm) = window.pop_front().unwrap();
                let outcome = confirm
                    .await
                    .expect("confirm: the client never sees an error");
                let mut s = seen.lock().unwrap();
                if outcome.is_ack() {
                    s.confirmed.insert(m);
                } else {
                    s.nacked.insert(m);
                }
                s.confirm_times.push(Instant::now());
            }
        }
    });
    // Consumer on node 3: prefetch 50, one ack per delivery.
    let consuming = rt.spawn({
        let seen = seen.clone();
        async move {
            consumer.basic_qos(50, Default::default()).await.unwrap();
            let mut deliveries = consumer
                .basic_consume(
                    "failover".into(),
                    "checker".into(),
                    Default::default(),
                    Default::default(),
                )
                .await
                .unwrap();
            while let Some(d) = deliveries.next().await {
                let d = d.expect("delivery: the client never sees an error");
                let m: u64 = std::str::from_utf8(&d.data).unwrap().parse().unwrap();
                {
                    let mut s = seen.lock().unwrap();
                    s.delivered.push(m);
                    s.redelivered += usize::from(d.redelivered);
                }
                consumer
                    .basic_ack(d.delivery_tag, Default::default())
                    .await
                    .expect("ack: the client never sees an error");
            }
        }
    });
    let wait_for = |what: &str, limit: Duration, done: &dyn Fn(&Seen) -> bool| {
        let deadline = Instant::now() + limit;
        while !done(&seen.lock().unwrap()) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait_for("traffic before the kill", Duration::from_secs(30), &|s| {
        s.confirmed.len() >= 2000 && s.delivered.len() >= 1000
    });
    let killed_at = Instant::now();
    c.kill(0);
    let confirmed_at_kill = seen.lock().unwrap().confirmed.len();
    wait_for("confirms after the kill", Duration::from_secs(60), &|s| {
        s.confirmed.len() >= confirmed_at_kill + 2000
    });
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(60), publishing)
            .await
            .expect("the publisher drains its window")
            .unwrap();
    });
    wait_for(
        "every confirmed message consumed",
        Duration::from_secs(60),
        &|s| {
            let got: BTreeSet<u64> = s.delivered.iter().copied().collect();
            s.confirmed.is_subset(&got)
        },
    );
    std::thread::sleep(Duration::from_millis(300));
    let s = seen.lock().unwrap();
    let got: BTreeSet<u64> = s.delivered.iter().copied().collect();
    assert!(s.nacked.is_empty(), "no publish refused: {:?}", s.nacked);
    assert!(
        got.iter().all(|&m| m < s.published),
        "nothing unpublished appears"
    );
    // First deliveries in publish order (repeats after the failover are redeliveries).
    let mut firsts = Vec::new();
    let mut seen_once = BTreeSet::new();
    for &m in &s.delivered {
        if seen_once.insert(m) {
            firsts.push(m);
        }
    }
    assert!(
        firsts.windows(2).all(|w| w[0] < w[1]),
        "first deliveries keep the publish order"
    );
    let gap = s
        .confirm_times
        .windows(2)
        .filter(|w| w[1] > killed_at)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or_default();
    eprintln!(
        "published {}, confirmed {}, consumed {} ({} distinct, {} redelivered); longest confirm gap after the kill: {:?}",
        s.published,
        s.confirmed.len(),
        s.delivered.len(),
        got.len(),
        s.redelivered,
        gap
    );
    drop(s);
    rt.block_on(async {
        let _ = producer_conn.close(200, "bye".into()).await;
        let _ = consumer_conn.close(200, "bye".into()).await;
        let _ = consuming.await;
    });
}
