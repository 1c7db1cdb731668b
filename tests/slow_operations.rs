//! A slow broker operation on one channel does not stall its connection: on a three-node
//! cluster that lost its majority, a `queue.declare` waits for a metadata leader while,
//! on the same connection, another channel keeps publishing with confirms, consuming,
//! and the connection keeps its heartbeats (2 s) alive; once the majority is back the
//! declare is answered and the connection is still open.

mod common;

use std::time::{Duration, Instant};

use common::cluster::{queues_seen_by, Cluster};
use common::run;
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions,
    QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};

/// Publish `n` messages on `ch` and wait for every confirm; returns how many were acked.
async fn publish_confirmed(ch: &lapin::Channel, queue: &str, n: usize) -> usize {
    let mut confirms = Vec::with_capacity(n);
    for i in 0..n {
        let confirm = ch
            .basic_publish(
                "".into(),
                queue.into(),
                BasicPublishOptions::default(),
                format!("m{i}").as_bytes(),
                BasicProperties::default(),
            )
            .await
            .expect("publish");
        confirms.push(confirm);
    }
    let mut acked = 0;
    for confirm in confirms {
        if confirm.await.expect("confirm").is_ack() {
            acked += 1;
        }
    }
    acked
}

#[test]
fn a_declare_waiting_for_the_metadata_leader_does_not_stall_other_channels() {
    let mut c = Cluster::joined();
    let uri = format!("{}?heartbeat=2", c.server(2).uri());
    run(
        Duration::from_secs(150),
        "slow operation scenario",
        async move {
            let conn = Connection::connect(&uri, ConnectionProperties::default())
                .await
                .expect("connect to node 3");
            let fast = conn.create_channel().await.expect("fast channel");
            let slow = conn.create_channel().await.expect("slow channel");
            // A classic queue lives on node 3 alone: it serves without the others.
            fast.queue_declare(
                "local".into(),
                QueueDeclareOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("declare local");
            let members = queues_seen_by(&c, 2)["local"].1.clone();
            assert_eq!(
                members,
                vec!["warren@c3".to_string()],
                "local queue's members"
            );
            fast.confirm_select(ConfirmSelectOptions::default())
                .await
                .expect("confirm.select");
            let mut consumer = fast
                .basic_consume(
                    "local".into(),
                    "c".into(),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await
                .expect("consume");

            c.kill(0);
            c.kill(1);
            // Needs the metadata group, which has no majority now: it waits.
            let declare = tokio::spawn(async move {
                let started = Instant::now();
                let result = slow
                    .queue_declare(
                        "needs-metadata".into(),
                        QueueDeclareOptions::default(),
                        FieldTable::default(),
                    )
                    .await;
                (result.map(|q| q.name().to_string()), started.elapsed())
            });
            tokio::time::sleep(Duration::from_millis(300)).await;
            assert!(
                !declare.is_finished(),
                "the declare answered without a majority"
            );

            // Meanwhile the other channel publishes, is confirmed and consumes, for longer
            // than three heartbeat intervals.
            let mut delivered = 0;
            let began = Instant::now();
            let mut rounds = 0;
            while began.elapsed() < Duration::from_secs(7) {
                let round = tokio::time::timeout(Duration::from_secs(5), async {
                    let acked = publish_confirmed(&fast, "local", 50).await;
                    for _ in 0..50 {
                        let d = consumer
                            .next()
                            .await
                            .expect("consumer open")
                            .expect("delivery");
                        d.ack(BasicAckOptions::default()).await.expect("ack");
                    }
                    acked
                })
                .await
                .unwrap_or_else(|_| {
                    panic!("round {rounds}: confirms or deliveries stalled behind the slow declare")
                });
                assert_eq!(round, 50, "every publish confirmed");
                delivered += 50;
                rounds += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            assert!(
                conn.status().connected(),
                "the connection survived its heartbeats"
            );
            assert!(
                !declare.is_finished(),
                "the declare should still wait for the majority"
            );
            eprintln!("{rounds} rounds, {delivered} messages confirmed and consumed meanwhile");

            // The majority comes back: the waiting declare is answered on its channel.
            c.boot(0);
            let (result, took) = tokio::time::timeout(Duration::from_secs(90), declare)
                .await
                .expect("the declare is answered once the majority is back")
                .expect("declare task");
            eprintln!("the declare took {took:?}: {result:?}");
            assert_eq!(result.expect("declare-ok"), "needs-metadata");
            let acked = publish_confirmed(&fast, "local", 10).await;
            assert_eq!(acked, 10, "the connection still works");
            conn.close(200, "bye".into()).await.expect("close");
        },
    );
}
