//! Clients of any node use any queue: a three-node cluster of real `warrenmq-server`
//! processes, a quorum queue led by node 1, and clients of nodes 2 and 3 that publish,
//! consume, get, purge and delete it (their node forwards to the leader over a queue
//! link). Faults under load are in `failover.rs`.

mod common;

use std::time::Duration;

use common::amqp::{durable, open, persistent, quorum};
use common::cluster::Cluster;
use common::run;
use futures::StreamExt;
use lapin::options::*;
use lapin::BasicProperties;

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
