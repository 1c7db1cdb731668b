//! Every publish in confirm mode gets exactly one answer (issue 13, "every confirm
//! tells the truth"): a queue deleted while a publisher with confirms streams into it
//! answers every publish still pending, on the node running the queue and through a
//! queue link from another node, so `waitForConfirms` returns instead of hanging.

mod common;

use std::time::Duration;

use common::amqp::{durable, open};
use common::cluster::Cluster;
use common::run;
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::BasicProperties;

/// How many publishes go out before and after the deletion.
const PUBLISHES: u64 = 20_000;

/// Stream confirmed publishes into `queue` through `publisher` (node `p`), delete the
/// queue through node `d` once half went out, and check that every publish is answered.
fn delete_under_a_publisher(c: &Cluster, p: usize, d: usize, queue: &str) {
    run(
        Duration::from_secs(120),
        "delete under a publisher",
        async {
            let (pconn, ch) = open(c.server(p)).await;
            let (dconn, dch) = open(c.server(d)).await;
            dch.queue_declare(queue.into(), durable(), FieldTable::default())
                .await
                .unwrap();
            ch.confirm_select(ConfirmSelectOptions::default())
                .await
                .unwrap();
            let mut confirms = Vec::with_capacity(PUBLISHES as usize);
            for i in 0..PUBLISHES {
                if i == PUBLISHES / 2 {
                    dch.queue_delete(queue.into(), QueueDeleteOptions::default())
                        .await
                        .unwrap();
                }
                let confirm = ch
                    .basic_publish(
                        "".into(),
                        queue.into(),
                        BasicPublishOptions::default(),
                        b"m",
                        BasicProperties::default().with_delivery_mode(2),
                    )
                    .await
                    .expect("publish");
                confirms.push(confirm);
            }
            // Each publish is answered within the bound, not left waiting for ever.
            let mut answered = 0u64;
            for confirm in confirms {
                match tokio::time::timeout(Duration::from_secs(30), confirm).await {
                    Ok(Ok(_)) => answered += 1,
                    Ok(Err(e)) => panic!("the channel failed: {e}"),
                    Err(_) => panic!("publish {answered} got no answer within 30 s"),
                }
            }
            assert_eq!(answered, PUBLISHES);
            pconn.close(200, "bye".into()).await.unwrap();
            dconn.close(200, "bye".into()).await.unwrap();
        },
    );
}

#[test]
fn a_deleted_queue_answers_every_pending_publish() {
    let c = Cluster::joined_n(2);
    for i in 0..2 {
        c.ctl_ok(i, &["await_startup"]);
    }
    // The queue's actor on the publisher's node.
    delete_under_a_publisher(&c, 0, 0, "ca-local");
    // The queue on node 1, the publisher on node 2: through a queue link.
    delete_under_a_publisher(&c, 1, 0, "ca-remote");
}
