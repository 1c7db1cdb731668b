//! Big messages on a three-member quorum queue of real `warrenmq-server` processes:
//! 1 MiB and 16 MiB persistent messages, all published before the first confirm is
//! awaited (so that many are unconfirmed at once), are all confirmed; then the queue's
//! leader is SIGKILLed and every message is consumed, intact, from each surviving
//! member's node. Without proposals, AppendEntries and queue-link frames capped by bytes
//! (and RPC deadlines that grow with the payload), such a burst becomes requests that time
//! out, or link frames over the transport's limit, on every retry; without the new
//! leader retrying its take-over, the queue goes unserved after the kill.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use futures::StreamExt;
use lapin::options::{BasicConsumeOptions, BasicQosOptions};
use lapin::types::FieldTable;

use common::amqp::{durable, open, persistent, quorum};
use common::cluster::{leader_seen_by, Cluster};
use common::{run, Server};

const MIB: usize = 1 << 20;

/// Message `i` of `size` bytes: its number, then a byte pattern that depends on it.
fn body(i: u32, size: usize) -> Vec<u8> {
    let mut b: Vec<u8> = (0..size).map(|k| (k as u32 ^ i) as u8).collect();
    b[..4].copy_from_slice(&i.to_be_bytes());
    b
}

/// Check `data` is an intact [`body`] and return its number.
fn check(data: &[u8]) -> u32 {
    let i = u32::from_be_bytes(data[..4].try_into().unwrap());
    let size = if i < 1000 { MIB } else { 16 * MIB };
    assert_eq!(data.len(), size, "message {i}: wrong length");
    assert!(
        data == body(i, size).as_slice(),
        "message {i}: body corrupted"
    );
    i
}

/// Publish every message of `batch` (numbers and size) before awaiting any confirm;
/// every confirm must be an ack.
async fn publish_unconfirmed(server: &Server, queue: &str, numbers: &[u32], size: usize) {
    let (conn, ch) = open(server).await;
    ch.confirm_select(Default::default()).await.unwrap();
    let mut confirms = Vec::new();
    for &i in numbers {
        let confirm = ch
            .basic_publish(
                "".into(),
                queue.into(),
                Default::default(),
                &body(i, size),
                persistent(),
            )
            .await
            .expect("publish");
        confirms.push((i, confirm));
    }
    for (i, confirm) in confirms {
        let outcome = confirm.await.expect("confirm");
        assert!(outcome.is_ack(), "message {i} was nacked");
    }
    conn.close(200, "bye".into()).await.ok();
}

/// Consume every message of `queue` through `server`; ack them only when `ack` (else
/// they go back to the queue when the connection closes). Returns their numbers.
async fn consume_all(
    server: &Server,
    queue: &str,
    expected: usize,
    ack: bool,
) -> Result<BTreeSet<u32>, String> {
    let (conn, ch) = open(server).await;
    ch.basic_qos(0, BasicQosOptions::default()).await.unwrap();
    let mut deliveries = ch
        .basic_consume(
            queue.into(),
            "big".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(|e| format!("basic.consume failed: {e}"))?;
    let mut seen = BTreeSet::new();
    while seen.len() < expected {
        let next = tokio::time::timeout(Duration::from_secs(30), deliveries.next()).await;
        let Ok(next) = next else {
            return Err(format!(
                "no delivery for 30 s after {} of {expected} messages",
                seen.len()
            ));
        };
        let d = next.expect("consumer stream ended").expect("delivery");
        let i = check(&d.data);
        assert!(seen.insert(i), "message {i} delivered twice");
        if ack {
            ch.basic_ack(d.delivery_tag, Default::default())
                .await
                .unwrap();
        }
    }
    conn.close(200, "bye".into()).await.ok();
    Ok(seen)
}

/// Prints the nodes' logs when the test fails.
struct LogsOnPanic<'a>(&'a Cluster);

impl Drop for LogsOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for m in &self.0.members {
                if let Some(server) = &m.server {
                    eprintln!("--- log of {} ---\n{}", m.name, server.log());
                }
            }
        }
    }
}

#[test]
fn big_messages_replicate_and_survive_the_leader_s_death() {
    let mut c = Cluster::joined();
    let queue = "big-messages";
    let small: Vec<u32> = (0..32).collect();
    let large: Vec<u32> = (1000..1017).collect();
    run(
        Duration::from_secs(180),
        "publishing 32 x 1 MiB and 17 x 16 MiB with every confirm",
        async {
            let (conn, ch) = open(c.server(0)).await;
            ch.queue_declare(queue.into(), durable(), quorum())
                .await
                .expect("declare");
            conn.close(200, "bye".into()).await.ok();
            publish_unconfirmed(c.server(1), queue, &small, MIB).await;
            publish_unconfirmed(c.server(2), queue, &large, 16 * MIB).await;
        },
    );
    let leader = leader_seen_by(&c, 0, queue);
    let dead = c
        .members
        .iter()
        .position(|m| m.name == leader)
        .unwrap_or_else(|| panic!("no member named {leader:?} leads {queue}"));
    c.kill(dead);
    let _logs = LogsOnPanic(&c);
    let want: BTreeSet<u32> = small.iter().chain(&large).copied().collect();
    let survivors: Vec<usize> = (0..3).filter(|&i| i != dead).collect();
    for (k, &node) in survivors.iter().enumerate() {
        let last = k + 1 == survivors.len();
        let got = common::run_value(
            Duration::from_secs(600),
            "consuming every message after the leader was killed",
            consume_all(c.server(node), queue, want.len(), last),
        );
        let got = got.unwrap_or_else(|e| panic!("node {}: {e}", node + 1));
        assert_eq!(got, want, "node {} served a different set", node + 1);
    }
}
