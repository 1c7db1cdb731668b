//! The failover checker: a publisher (confirms, 100 in flight) on one node and a consumer
//! (prefetch 50, manual acks) on another, run against a cluster while a test changes it;
//! at the end every confirmed message must have been consumed, nothing unpublished may
//! appear, no publish may be refused, and first deliveries keep the publish order.

use std::collections::{BTreeSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use lapin::types::FieldTable;
use lapin::Connection;
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;

use super::amqp::{durable, open, persistent, quorum};
use super::cluster::Cluster;

/// What the checker saw.
#[derive(Default)]
pub struct Seen {
    pub confirmed: BTreeSet<u64>,
    pub nacked: BTreeSet<u64>,
    pub published: u64,
    /// Message numbers in delivery order.
    pub delivered: Vec<u64>,
    pub redelivered: usize,
    /// When each confirm arrived (for the longest gap).
    pub confirm_times: Vec<Instant>,
}

/// A publisher on one node and a consumer on another, checked at the end.
pub struct Traffic {
    rt: Runtime,
    pub seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
    publishing: Option<JoinHandle<()>>,
    consuming: Option<JoinHandle<()>>,
    conns: Vec<Connection>,
}

impl Traffic {
    /// Declare the quorum queue `queue` on node 1 (its leader), publish from
    /// `producer_node` and consume on `consumer_node`.
    pub fn start(c: &Cluster, queue: &str, producer_node: usize, consumer_node: usize) -> Traffic {
        Traffic::start_with(c, queue, quorum(), producer_node, consumer_node)
    }

    /// [`Traffic::start`] with the queue declared with `args`.
    pub fn start_with(
        c: &Cluster,
        queue: &str,
        args: FieldTable,
        producer_node: usize,
        consumer_node: usize,
    ) -> Traffic {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (c1, ch1) = rt.block_on(open(c.server(0)));
        rt.block_on(ch1.queue_declare(queue.into(), durable(), args))
            .unwrap();
        let (producer_conn, producer) = rt.block_on(open(c.server(producer_node)));
        let (consumer_conn, consumer) = rt.block_on(open(c.server(consumer_node)));
        let publishing = rt.spawn({
            let (seen, stop, queue) = (seen.clone(), stop.clone(), queue.to_string());
            async move {
                producer.confirm_select(Default::default()).await.unwrap();
                let mut n = 0u64;
                let mut window = VecDeque::new();
                loop {
                    let stopping = stop.load(Ordering::Relaxed);
                    if stopping && window.is_empty() {
                        break;
                    }
                    if window.len() < 100 && !stopping {
                        let confirm = producer
                            .basic_publish(
                                "".into(),
                                queue.as_str().into(),
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
        let consuming = rt.spawn({
            let (seen, queue) = (seen.clone(), queue.to_string());
            async move {
                consumer.basic_qos(50, Default::default()).await.unwrap();
                let mut deliveries = consumer
                    .basic_consume(
                        queue.as_str().into(),
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
        Traffic {
            rt,
            seen,
            stop,
            publishing: Some(publishing),
            consuming: Some(consuming),
            conns: vec![c1, producer_conn, consumer_conn],
        }
    }

    /// Wait (bounded) until `done` holds.
    pub fn wait_for(&self, what: &str, limit: Duration, done: &dyn Fn(&Seen) -> bool) {
        let deadline = Instant::now() + limit;
        while !done(&self.seen.lock().unwrap()) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn confirmed(&self) -> usize {
        self.seen.lock().unwrap().confirmed.len()
    }

    /// Wait for `more` confirms beyond those seen so far.
    pub fn wait_more_confirms(&self, more: usize, limit: Duration) {
        let target = self.confirmed() + more;
        self.wait_for("more confirms", limit, &|s| s.confirmed.len() >= target);
    }

    /// Stop publishing, drain, check every guarantee, and return the longest gap between
    /// confirms after `since`.
    pub fn finish(mut self, since: Instant) -> Duration {
        self.stop.store(true, Ordering::Relaxed);
        let publishing = self.publishing.take().unwrap();
        self.rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(60), publishing)
                .await
                .expect("the publisher drains its window")
                .unwrap();
        });
        self.wait_for(
            "every confirmed message consumed",
            Duration::from_secs(60),
            &|s| {
                let got: BTreeSet<u64> = s.delivered.iter().copied().collect();
                s.confirmed.is_subset(&got)
            },
        );
        std::thread::sleep(Duration::from_millis(300));
        let s = self.seen.lock().unwrap();
        let got: BTreeSet<u64> = s.delivered.iter().copied().collect();
        assert!(s.nacked.is_empty(), "no publish refused: {:?}", s.nacked);
        assert!(
            got.iter().all(|&m| m < s.published),
            "nothing unpublished appears"
        );
        let mut firsts = Vec::new();
        let mut once = BTreeSet::new();
        for &m in &s.delivered {
            if once.insert(m) {
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
            .filter(|w| w[1] > since)
            .map(|w| w[1] - w[0])
            .max()
            .unwrap_or_default();
        eprintln!(
            "published {}, confirmed {}, consumed {} ({} distinct, {} redelivered); longest confirm gap after the fault: {gap:?}",
            s.published,
            s.confirmed.len(),
            s.delivered.len(),
            got.len(),
            s.redelivered,
        );
        drop(s);
        let conns = std::mem::take(&mut self.conns);
        let consuming = self.consuming.take().unwrap();
        self.rt.block_on(async {
            for conn in conns {
                let _ = conn.close(200, "bye".into()).await;
            }
            let _ = tokio::time::timeout(Duration::from_secs(10), consuming).await;
        });
        gap
    }
}
