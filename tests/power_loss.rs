//! Power loss: nodes whose data dirs lie on warren-lazyfs (a FUSE file system that keeps
//! everything not fsynced in memory and drops it on a simulated power cut) lose power
//! while a publisher with confirms runs; restarted on what was synced, they must still
//! hold every message they confirmed. Skipped, with a message, only where /dev/fuse is
//! unusable.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use lapin::options::{BasicConsumeOptions, BasicQosOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};
use tokio::sync::Semaphore;
use warren_lazyfs::harness::{binary, fuse_unusable, Mount};

use common::amqp::{durable, persistent, quorum};
use common::cluster::Cluster;
use common::{free_port, Server};

/// Unconfirmed publishes in flight (as a fast publisher keeps them).
const WINDOW: usize = 256;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Mount a fresh backing dir `<dir>/backing-<name>` at `<dir>/mnt-<name>`.
fn mount(dir: &Path, name: &str) -> Mount {
    let backing = dir.join(format!("backing-{name}"));
    let mountpoint = dir.join(format!("mnt-{name}"));
    std::fs::create_dir_all(&backing).unwrap();
    std::fs::create_dir_all(&mountpoint).unwrap();
    Mount::start(
        &binary(),
        &backing,
        &mountpoint,
        &dir.join(format!("lazyfs-{name}.sock")),
    )
    .expect("mount warren-lazyfs")
}

/// A publisher of persistent messages numbered 0, 1, ... with confirms, running until
/// its connection dies; it records every message the broker acked.
struct Publisher {
    rt: tokio::runtime::Runtime,
    confirmed: Arc<Mutex<BTreeSet<u64>>>,
    published: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
    _conn: Connection,
}

impl Publisher {
    fn start(uri: String, queue: &'static str, args: FieldTable) -> Publisher {
        let rt = runtime();
        let confirmed = Arc::new(Mutex::new(BTreeSet::new()));
        let published = Arc::new(AtomicU64::new(0));
        let (conn, ch) = rt.block_on(async {
            let conn = Connection::connect(&uri, ConnectionProperties::default())
                .await
                .expect("connect");
            let ch = conn.create_channel().await.expect("channel");
            ch.queue_declare(queue.into(), durable(), args)
                .await
                .expect("declare");
            ch.confirm_select(Default::default()).await.unwrap();
            (conn, ch)
        });
        let task = rt.spawn({
            let (confirmed, published) = (confirmed.clone(), published.clone());
            async move {
                let window = Arc::new(Semaphore::new(WINDOW));
                for n in 0u64.. {
                    let permit = window.clone().acquire_owned().await.unwrap();
                    let body = format!("{n:020}-{}", "x".repeat(100));
                    let Ok(confirm) = ch
                        .basic_publish(
                            "".into(),
                            queue.into(),
                            Default::default(),
                            body.as_bytes(),
                            persistent(),
                        )
                        .await
                    else {
                        return; // the server is gone
                    };
                    published.store(n + 1, Ordering::Relaxed);
                    let confirmed = confirmed.clone();
                    tokio::spawn(async move {
                        if let Ok(outcome) = confirm.await {
                            if outcome.is_ack() {
                                confirmed.lock().unwrap().insert(n);
                            }
                        }
                        drop(permit);
                    });
                }
            }
        });
        Publisher {
            rt,
            confirmed,
            published,
            task,
            _conn: conn,
        }
    }

    fn confirmed_count(&self) -> usize {
        self.confirmed.lock().unwrap().len()
    }

    /// Wait (bounded) until `n` messages are confirmed: publishing is in full flow.
    fn wait_confirmed(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.confirmed_count() < n {
            assert!(Instant::now() < deadline, "never got {n} confirms");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// After the cut: let acks already received be processed, then stop; returns
    /// (published, confirmed).
    fn finish(self) -> (u64, BTreeSet<u64>) {
        std::thread::sleep(Duration::from_millis(500));
        self.task.abort();
        let confirmed = self.confirmed.lock().unwrap().clone();
        let published = self.published.load(Ordering::Relaxed);
        self.rt.shutdown_background();
        (published, confirmed)
    }
}

/// Every message in `queue` on the node at `uri` (auto-ack), once it serves the queue
/// again after the restart: until none came for 10 s, or for 1 s once as many came as it
/// reported ready.
fn drain(uri: &str, queue: &str) -> BTreeSet<u64> {
    common::run_value(Duration::from_secs(180), "drain the queue", async {
        let deadline = Instant::now() + Duration::from_secs(60);
        let (conn, ch, ready) = loop {
            let attempt = async {
                let conn = Connection::connect(uri, ConnectionProperties::default()).await?;
                let ch = conn.create_channel().await?;
                let passive = QueueDeclareOptions {
                    passive: true,
                    durable: true,
                    ..Default::default()
                };
                let declared = ch
                    .queue_declare(queue.into(), passive, FieldTable::default())
                    .await?;
                Ok::<_, lapin::Error>((conn, ch, declared.message_count()))
            };
            match attempt.await {
                Ok(ok) => break ok,
                Err(e) => {
                    assert!(Instant::now() < deadline, "the queue never came back: {e}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        };
        ch.basic_qos(1000, BasicQosOptions::default())
            .await
            .unwrap();
        let mut deliveries = ch
            .basic_consume(
                queue.into(),
                "drain".into(),
                BasicConsumeOptions {
                    no_ack: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("consume");
        let mut found = BTreeSet::new();
        loop {
            // Past the count it reported, only a short wait for stragglers.
            let idle = if found.len() < ready as usize {
                10_000
            } else {
                1_000
            };
            let Ok(Some(delivery)) =
                tokio::time::timeout(Duration::from_millis(idle), deliveries.next()).await
            else {
                break;
            };
            let delivery = delivery.expect("delivery");
            let text = std::str::from_utf8(&delivery.data).unwrap();
            found.insert(text[..20].parse::<u64>().unwrap());
        }
        drop(conn);
        found
    })
}

/// Print what survived and fail if a confirmed message is missing.
fn check(
    what: &str,
    published: u64,
    confirmed: &BTreeSet<u64>,
    found: &BTreeSet<u64>,
    cut: &[String],
) {
    let lost: Vec<u64> = confirmed.difference(found).copied().collect();
    println!(
        "{what}: published {published}, confirmed {}, found after restart {}, \
         confirmed but lost {}; lazyfs at the cut: {cut:?}",
        confirmed.len(),
        found.len(),
        lost.len()
    );
    assert!(
        found.iter().all(|&m| m < published),
        "a message that was never published appeared"
    );
    assert!(
        lost.is_empty(),
        "{what}: {} of {} confirmed messages were lost by the power cut (first {:?}, last {:?}); \
         the highest confirmed was {:?}, the highest found {:?}",
        lost.len(),
        confirmed.len(),
        lost.first(),
        lost.last(),
        confirmed.last(),
        found.last()
    );
}

/// How long to keep publishing after the first confirms before the cut: the cut must
/// land while publishing, at no fixed phase of sled's 500 ms background sync.
fn cut_after() -> Duration {
    Duration::from_millis(rand::random_range(1000..2500))
}

/// How the node goes down.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Cut {
    /// The power: everything not fsynced is lost, and the process dies with it.
    Power,
    /// Only the process (`kill -9`): the kernel keeps what was written, so the file system
    /// writes everything back before it goes. The control run: the harness finds every
    /// confirmed message when the data did reach the disk.
    Process,
}

fn single_node(test: &str, cut: Cut) {
    if let Some(why) = fuse_unusable() {
        eprintln!("SKIPPED {test}: {why}");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    // Declared before the server, so dropped after it (also when the test panics).
    let mut disk = mount(tmp.path(), "node");
    let (port, cluster_port) = (free_port(), free_port());
    let mut server =
        Server::start_on_ports_logged(&disk.mountpoint, &logs, port, cluster_port, &[]);
    // A durable classic queue of a single node: a Raft group of one, stored in sled.
    let publisher = Publisher::start(server.uri(), "power", FieldTable::default());
    publisher.wait_confirmed(1000);
    std::thread::sleep(cut_after());
    let answer = match cut {
        Cut::Power => {
            let answer = disk.crash().expect("cut the power");
            server.kill();
            answer
        }
        Cut::Process => {
            server.kill();
            let synced = disk.command("sync").expect("write back");
            let dropped = disk.crash().expect("unmount");
            assert_eq!(dropped, "crashed files=0 bytes=0");
            synced
        }
    };
    disk.wait_exit(Duration::from_secs(10))
        .expect("warren-lazyfs exits");
    let (published, confirmed) = publisher.finish();

    let backing = disk.backing.clone();
    let server = Server::start_on_ports_logged(&backing, &logs, port, cluster_port, &[]);
    let found = drain(&server.uri(), "power");
    check(
        &format!("single node, {cut:?} cut"),
        published,
        &confirmed,
        &found,
        &[answer],
    );
}

#[test]
fn a_node_keeps_every_confirmed_message_through_a_power_loss() {
    single_node(
        "a_node_keeps_every_confirmed_message_through_a_power_loss",
        Cut::Power,
    );
}

#[test]
fn a_node_on_lazyfs_keeps_every_confirmed_message_through_a_process_crash() {
    single_node(
        "a_node_on_lazyfs_keeps_every_confirmed_message_through_a_process_crash",
        Cut::Process,
    );
}

#[test]
fn a_cluster_keeps_every_confirmed_message_when_every_node_loses_power() {
    if let Some(why) = fuse_unusable() {
        eprintln!(
            "SKIPPED a_cluster_keeps_every_confirmed_message_when_every_node_loses_power: {why}"
        );
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    let mut mounts: Vec<Mount> = (1..=3)
        .map(|i| mount(tmp.path(), &format!("c{i}")))
        .collect();
    let dirs: Vec<PathBuf> = mounts.iter().map(|m| m.mountpoint.clone()).collect();
    let mut c = Cluster::start_in(tempfile::tempdir().unwrap(), dirs, Some(&logs));
    c.join_all();
    // A three-member quorum queue led by node 1 (declared there, client-local).
    let publisher = Publisher::start(c.server(0).uri(), "power-q", quorum());
    publisher.wait_confirmed(1000);
    std::thread::sleep(cut_after());
    let cuts: Vec<String> = mounts
        .iter()
        .map(|m| m.crash().expect("cut the power"))
        .collect();
    for i in 0..3 {
        c.kill(i);
    }
    for m in &mut mounts {
        m.wait_exit(Duration::from_secs(10))
            .expect("warren-lazyfs exits");
    }
    let (published, confirmed) = publisher.finish();

    for (i, m) in mounts.iter().enumerate() {
        c.members[i].dir = m.backing.clone();
        c.boot(i);
    }
    let found = drain(&c.server(0).uri(), "power-q");
    check(
        "three-node cluster, Power cut",
        published,
        &confirmed,
        &found,
        &cuts,
    );
}
