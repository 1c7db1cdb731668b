//! Faults under load on a three-node cluster of real `warrenmq-server` processes: a
//! quorum queue led by node 1, a publisher (confirms, 100 in flight) on node 2 and a
//! consumer (prefetch 50, manual acks) on node 3, while the leader is SIGKILLed, paused
//! with SIGSTOP, or the queue loses its majority. The clients never see an error; every
//! confirmed message is consumed, nothing unpublished appears, no publish is refused, and
//! first deliveries keep the publish order (repeats after a failover are redeliveries).

mod common;

use std::collections::{BTreeSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::amqp::{durable, open, persistent, quorum};
use common::cluster::Cluster;
use futures::StreamExt;
use lapin::Connection;
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;

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

/// A publisher on one node and a consumer on another, checked at the end.
struct Traffic {
    rt: Runtime,
    seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
    publishing: Option<JoinHandle<()>>,
    consuming: Option<JoinHandle<()>>,
    conns: Vec<Connection>,
}

impl Traffic {
    /// Declare `queue` on node 1 (its leader), publish from `producer_node` and consume
    /// on `consumer_node`.
    fn start(c: &Cluster, queue: &str, producer_node: usize, consumer_node: usize) -> Traffic {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (c1, ch1) = rt.block_on(open(c.server(0)));
        rt.block_on(ch1.queue_declare(queue.into(), durable(), quorum()))
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
    fn wait_for(&self, what: &str, limit: Duration, done: &dyn Fn(&Seen) -> bool) {
        let deadline = Instant::now() + limit;
        while !done(&self.seen.lock().unwrap()) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn confirmed(&self) -> usize {
        self.seen.lock().unwrap().confirmed.len()
    }

    /// Wait for `more` confirms beyond those seen so far.
    fn wait_more_confirms(&self, more: usize, limit: Duration) {
        let target = self.confirmed() + more;
        self.wait_for("more confirms", limit, &|s| s.confirmed.len() >= target);
    }

    /// Stop publishing, drain, check every guarantee, and return the longest gap between
    /// confirms after `since`.
    fn finish(mut self, since: Instant) -> Duration {
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

/// The leader of `queue` as `warrenctl list_queues` on member `i` reports it.
fn leader_seen_by(c: &Cluster, i: usize, queue: &str) -> String {
    let out = c.ctl_ok(i, &["list_queues", "--formatter", "json", "name", "leader"]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    v.as_array()
        .expect("queues")
        .iter()
        .find(|q| q["name"] == queue)
        .map(|q| q["leader"].as_str().unwrap_or_default().to_string())
        .unwrap_or_default()
}

#[test]
fn publisher_and_consumer_on_other_nodes_ride_out_the_leader_s_death() {
    let mut c = Cluster::joined();
    let traffic = Traffic::start(&c, "failover", 1, 2);
    traffic.wait_for("traffic before the kill", Duration::from_secs(30), &|s| {
        s.confirmed.len() >= 2000 && s.delivered.len() >= 1000
    });
    let killed_at = Instant::now();
    c.kill(0);
    traffic.wait_more_confirms(2000, Duration::from_secs(60));
    traffic.finish(killed_at);
}

#[test]
fn a_paused_leader_is_replaced_and_steps_down_when_it_resumes() {
    let c = Cluster::joined();
    let traffic = Traffic::start(&c, "paused", 1, 2);
    traffic.wait_for("traffic before the pause", Duration::from_secs(30), &|s| {
        s.confirmed.len() >= 2000 && s.delivered.len() >= 1000
    });
    let paused_at = Instant::now();
    c.signal(0, "STOP");
    // The others elect a leader and the clients carry on while node 1 is frozen.
    traffic.wait_more_confirms(2000, Duration::from_secs(60));
    c.signal(0, "CONT");
    traffic.wait_more_confirms(1000, Duration::from_secs(60));
    // Node 1 learns of the new term and serves the queue through the new leader.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let leader = leader_seen_by(&c, 0, "paused");
        if !leader.is_empty() && leader != "warren@c1" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "node 1 still sees itself leading after it resumed: {leader:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    traffic.finish(paused_at);
}

#[test]
fn a_queue_without_a_majority_holds_its_publishes_and_loses_nothing() {
    let mut c = Cluster::joined();
    let traffic = Traffic::start(&c, "minority", 2, 2);
    traffic.wait_for("traffic before the kills", Duration::from_secs(30), &|s| {
        s.confirmed.len() >= 1000 && s.delivered.len() >= 500
    });
    let lost_at = Instant::now();
    c.kill(0);
    c.kill(1);
    // With one member of three left, nothing is confirmed (nor refused)...
    std::thread::sleep(Duration::from_millis(1500));
    let before = traffic.confirmed();
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(traffic.confirmed(), before, "no confirm without a majority");
    assert!(traffic.seen.lock().unwrap().nacked.is_empty());
    // ...until the majority is back.
    c.boot(0);
    c.boot(1);
    traffic.wait_more_confirms(1000, Duration::from_secs(60));
    traffic.finish(lost_at);
}

#[test]
fn a_resumed_leader_hands_its_own_publisher_over_to_the_new_leader() {
    let c = Cluster::joined();
    // The publisher is on node 1 itself: its publishes stall while node 1 is frozen.
    let traffic = Traffic::start(&c, "handover", 0, 2);
    traffic.wait_for("traffic before the pause", Duration::from_secs(30), &|s| {
        s.confirmed.len() >= 2000 && s.delivered.len() >= 1000
    });
    let paused_at = Instant::now();
    c.signal(0, "STOP");
    // Long enough for the others to elect a new leader.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let leader = leader_seen_by(&c, 1, "handover");
        if !leader.is_empty() && leader != "warren@c1" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no new leader while node 1 is paused"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    c.signal(0, "CONT");
    // Node 1 steps down; what its clients publish goes to the new leader, in order.
    traffic.wait_more_confirms(3000, Duration::from_secs(60));
    traffic.finish(paused_at);
}
