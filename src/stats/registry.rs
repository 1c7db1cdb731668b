//! A node's message statistics: its own counters, and those of its queues and exchanges
//! found by name. A queue's actor holds its queue's counters (the registry keeps a weak
//! reference, so the counters go with the last actor); an exchange's are looked up on
//! a publish in the counting thread's cache of the last one it counted into (under the
//! registry's read lock on a miss), and dropped by the sampler once the exchange is gone.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Instant;

use super::counter::Count;
use super::links::Links;
use super::sampled::{Sampled, Snapshot};

/// Counter slots of what every thread counts.
const SHARED: usize = 8;

/// An exchange's counters: `Publish` is its `publish_in`, `PublishOut` its `publish_out`.
pub type ExchangeStats = Sampled<SHARED>;

/// Objects of one kind by vhost, then name.
type ByName<T> = HashMap<String, HashMap<String, T>>;

/// One queue's counters, counted by its actor, which also counts for the node.
pub struct QueueStats {
    own: Sampled<1>,
    node: Arc<Sampled<SHARED>>,
    /// The node's counters of quorum queues, for a quorum queue (the consumer-side
    /// figures RabbitMQ labels by `queue_type`).
    quorum: Option<Arc<Sampled<SHARED>>>,
    /// When the oldest batch in the queue's Raft log pipeline was proposed (µs after
    /// `epoch`, 0 for none), and how long the last one took to commit (µs).
    proposed_at: AtomicU64,
    commit_latency_us: AtomicU64,
    epoch: Instant,
}

impl QueueStats {
    /// Messages enqueued (the queue's `publish`).
    #[inline]
    pub fn published(&self) {
        self.own.add(Count::Publish, 1);
    }

    /// Messages handed to consumers: `acked` to ones that ack, `no_ack` to ones that do
    /// not, `redelivered` of them flagged so.
    pub fn delivered(&self, acked: u64, no_ack: u64, redelivered: u64) {
        self.both(Count::Deliver, acked);
        self.both(Count::DeliverNoAck, no_ack);
        self.both(Count::Redeliver, redelivered);
    }

    /// One `basic.get`: a message (`Some(redelivered)`) or none.
    pub fn got(&self, no_ack: bool, message: Option<bool>) {
        let what = match (message, no_ack) {
            (None, _) => Count::GetEmpty,
            (Some(_), true) => Count::GetNoAck,
            (Some(_), false) => Count::Get,
        };
        self.both(what, 1);
        self.both(Count::Redeliver, u64::from(message == Some(true)));
    }

    pub fn acked(&self, n: u64) {
        self.both(Count::Ack, n);
    }

    /// Count for the queue and for the node.
    #[inline]
    fn both(&self, what: Count, n: u64) {
        self.own.add(what, n);
        self.node.add(what, n);
        if let Some(quorum) = &self.quorum {
            quorum.add(what, n);
        }
    }

    /// The queue's depth now.
    pub fn depth(&self, ready: usize, unacked: usize, consumers: usize) {
        let c = &self.own.counters;
        c.set(Count::Ready, ready as u64);
        c.set(Count::Unacked, unacked as u64);
        c.set(Count::Consumers, consumers as u64);
    }

    /// A batch was proposed to the queue's Raft group; `first` when none was pending.
    pub fn proposed(&self, first: bool) {
        if first {
            let us = self.epoch.elapsed().as_micros() as u64;
            self.proposed_at.store(us.max(1), Ordering::Relaxed);
        }
    }

    /// The oldest pending batch committed; `more` when others are still pending (the
    /// next is timed from now on).
    pub fn committed(&self, more: bool) {
        let now = self.epoch.elapsed().as_micros() as u64;
        let at = self
            .proposed_at
            .swap(if more { now } else { 0 }, Ordering::Relaxed);
        if at != 0 {
            self.commit_latency_us
                .store(now.saturating_sub(at), Ordering::Relaxed);
        }
    }

    /// How long the last batch took to commit, in seconds.
    pub fn commit_latency(&self) -> f64 {
        self.commit_latency_us.load(Ordering::Relaxed) as f64 / 1e6
    }

    pub fn snapshot(&self) -> Snapshot {
        self.own.snapshot()
    }
}

/// A node's statistics.
pub struct Stats {
    /// Tells registries apart in the threads' caches (tests run several in a process).
    id: u64,
    node: Arc<Sampled<SHARED>>,
    /// What quorum queues counted of `node`'s consumer-side figures.
    quorum: Arc<Sampled<SHARED>>,
    links: Arc<Links>,
    queues: Mutex<ByName<Weak<QueueStats>>>,
    exchanges: RwLock<ByName<Arc<ExchangeStats>>>,
    /// Moves whenever exchange counters are dropped: every cached one is suspect then.
    generation: AtomicU64,
    epoch: Instant,
}

impl Default for Stats {
    fn default() -> Self {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        Stats {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            node: Arc::default(),
            quorum: Arc::default(),
            links: Arc::default(),
            queues: Mutex::default(),
            exchanges: RwLock::default(),
            generation: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }
}

/// The exchange a thread counted into last: a publisher's thread mostly publishes into
/// one, so the hot path neither hashes nor touches the registry's lock.
struct LastExchange {
    registry: u64,
    generation: u64,
    vhost: String,
    exchange: String,
    stats: Arc<ExchangeStats>,
}

thread_local! {
    static LAST_EXCHANGE: RefCell<Option<LastExchange>> = const { RefCell::new(None) };
}

impl Stats {
    /// The node's own counters (what its clients published, were confirmed, ...).
    pub fn node(&self) -> &Sampled<SHARED> {
        &self.node
    }

    /// The share of the node's consumer-side counts (deliver, get, ack, redeliver) that
    /// quorum queues counted; the rest is classic queues'.
    pub fn quorum_queues(&self) -> &Sampled<SHARED> {
        &self.quorum
    }

    /// The node's connections and channels.
    pub fn links(&self) -> &Arc<Links> {
        &self.links
    }

    /// The counters of a queue whose actor starts here (shared with an actor of it that
    /// still runs, so a queue's counts survive a hand-over and back); `quorum` for a
    /// quorum queue.
    pub fn queue(&self, vhost: &str, name: &str, quorum: bool) -> Arc<QueueStats> {
        let mut queues = self.queues.lock().expect("queue stats lock");
        let slot = queues
            .entry(vhost.to_owned())
            .or_default()
            .entry(name.to_owned())
            .or_default();
        if let Some(live) = slot.upgrade() {
            return live;
        }
        let stats = Arc::new(QueueStats {
            own: Sampled::default(),
            node: self.node.clone(),
            quorum: quorum.then(|| self.quorum.clone()),
            proposed_at: AtomicU64::new(0),
            commit_latency_us: AtomicU64::new(0),
            epoch: self.epoch,
        });
        *slot = Arc::downgrade(&stats);
        stats
    }

    /// A queue's counters, while an actor of it runs here.
    pub fn find_queue(&self, vhost: &str, name: &str) -> Option<Arc<QueueStats>> {
        let queues = self.queues.lock().expect("queue stats lock");
        queues.get(vhost)?.get(name)?.upgrade()
    }

    /// Every queue with an actor here: vhost, name, counters.
    pub fn queues(&self) -> Vec<(String, String, Arc<QueueStats>)> {
        let queues = self.queues.lock().expect("queue stats lock");
        let mut all = Vec::new();
        for (vhost, names) in queues.iter() {
            for (name, q) in names {
                if let Some(q) = q.upgrade() {
                    all.push((vhost.clone(), name.clone(), q));
                }
            }
        }
        all
    }

    /// `acks` publisher confirms went out.
    pub fn confirmed(&self, acks: u64) {
        self.node.add(Count::Confirm, acks);
    }

    /// An unroutable mandatory publish was returned to its publisher.
    pub fn returned(&self) {
        self.node.add(Count::ReturnUnroutable, 1);
    }

    /// A publish into `exchange` went to `queues` queues (none: it was unroutable).
    pub fn routed(&self, vhost: &str, exchange: &str, queues: usize) {
        if cfg!(feature = "no-stats") {
            return;
        }
        self.node.add(Count::Publish, 1);
        if queues == 0 {
            self.node.add(Count::Unroutable, 1);
        }
        let count = |x: &ExchangeStats| {
            x.add(Count::Publish, 1);
            x.add(Count::PublishOut, queues as u64);
        };
        let generation = self.generation.load(Ordering::Acquire);
        let cached = LAST_EXCHANGE.with(|last| match &*last.borrow() {
            Some(l)
                if l.registry == self.id
                    && l.generation == generation
                    && l.exchange == exchange
                    && l.vhost == vhost =>
            {
                count(&l.stats);
                true
            }
            _ => false,
        });
        if cached {
            return;
        }
        let stats = self.exchange_counters(vhost, exchange);
        count(&stats);
        LAST_EXCHANGE.with(|last| {
            *last.borrow_mut() = Some(LastExchange {
                registry: self.id,
                generation,
                vhost: vhost.to_owned(),
                exchange: exchange.to_owned(),
                stats,
            })
        });
    }

    /// An exchange's counters, made at its first publish.
    fn exchange_counters(&self, vhost: &str, exchange: &str) -> Arc<ExchangeStats> {
        {
            let exchanges = self.exchanges.read().expect("exchange stats lock");
            if let Some(x) = exchanges.get(vhost).and_then(|x| x.get(exchange)) {
                return x.clone();
            }
        }
        let mut exchanges = self.exchanges.write().expect("exchange stats lock");
        let names = exchanges.entry(vhost.to_owned()).or_default();
        names.entry(exchange.to_owned()).or_default().clone()
    }

    /// An exchange's counters, once something was published into it.
    pub fn exchange(&self, vhost: &str, name: &str) -> Option<Snapshot> {
        let exchanges = self.exchanges.read().expect("exchange stats lock");
        Some(exchanges.get(vhost)?.get(name)?.snapshot())
    }

    /// Sample every object now; forget the exchanges `exists` no longer knows and the
    /// queues without an actor.
    pub fn sample(&self, now: Instant, exists: impl Fn(&str, &str) -> bool) {
        self.node.sample(now);
        self.quorum.sample(now);
        self.links.sample(now);
        {
            let mut queues = self.queues.lock().expect("queue stats lock");
            for names in queues.values_mut() {
                names.retain(|_, q| match q.upgrade() {
                    Some(q) => {
                        q.own.sample(now);
                        true
                    }
                    None => false,
                });
            }
            queues.retain(|_, names| !names.is_empty());
        }
        let mut exchanges = self.exchanges.write().expect("exchange stats lock");
        let mut dropped = false;
        for (vhost, names) in exchanges.iter_mut() {
            names.retain(|name, x| {
                x.sample(now);
                let keep = exists(vhost, name);
                dropped |= !keep;
                keep
            });
        }
        exchanges.retain(|_, names| !names.is_empty());
        if dropped {
            self.generation.fetch_add(1, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_counts_also_count_for_the_node() {
        let stats = Stats::default();
        let q = stats.queue("/", "q", false);
        q.published();
        q.delivered(2, 1, 1);
        q.got(false, Some(true));
        q.got(true, Some(false));
        q.got(true, None);
        q.acked(3);
        let s = q.snapshot();
        assert_eq!(s.total(Count::Publish), 1);
        assert_eq!(s.total(Count::Deliver), 2);
        assert_eq!(s.total(Count::DeliverNoAck), 1);
        assert_eq!(s.total(Count::Get), 1);
        assert_eq!(s.total(Count::GetNoAck), 1);
        assert_eq!(s.total(Count::GetEmpty), 1);
        assert_eq!(s.total(Count::Redeliver), 2);
        assert_eq!(s.total(Count::Ack), 3);
        let n = stats.node().snapshot();
        // The node's publishes are counted where they are routed, not by the queue.
        assert_eq!(n.total(Count::Publish), 0);
        assert_eq!(n.total(Count::Deliver), 2);
        assert_eq!(n.total(Count::Ack), 3);
        assert_eq!(stats.quorum_queues().snapshot().total(Count::Ack), 0);
        let qq = stats.queue("/", "qq", true);
        qq.acked(2);
        assert_eq!(stats.node().snapshot().total(Count::Ack), 5);
        assert_eq!(stats.quorum_queues().snapshot().total(Count::Ack), 2);
        // A second actor of the same queue shares the counters; the last one takes
        // them away.
        assert!(Arc::ptr_eq(&q, &stats.queue("/", "q", false)));
        assert!(stats.find_queue("/", "q").is_some());
        drop(q);
        assert!(stats.find_queue("/", "q").is_none());
        assert_eq!(
            stats
                .queue("/", "q", false)
                .snapshot()
                .total(Count::Publish),
            0
        );
    }

    #[test]
    fn exchanges_count_in_and_out_and_go_with_their_exchange() {
        let stats = Stats::default();
        stats.routed("/", "x", 2);
        stats.routed("/", "x", 0);
        stats.routed("/", "", 1);
        stats.confirmed(2);
        stats.returned();
        let x = stats.exchange("/", "x").unwrap();
        assert_eq!(x.total(Count::Publish), 2);
        assert_eq!(x.total(Count::PublishOut), 2);
        let n = stats.node().snapshot();
        assert_eq!(n.total(Count::Publish), 3);
        assert_eq!(n.total(Count::Unroutable), 1);
        assert_eq!(n.total(Count::Confirm), 2);
        assert_eq!(n.total(Count::ReturnUnroutable), 1);
        assert!(stats.exchange("/", "y").is_none());
        stats.sample(Instant::now(), |_, name| name.is_empty());
        assert!(stats.exchange("/", "x").is_none());
        assert!(stats.exchange("/", "").is_some());
        // This thread's cached counters of the dropped exchange are not counted into.
        stats.routed("/", "x", 1);
        let x = stats.exchange("/", "x").unwrap();
        assert_eq!(x.total(Count::Publish), 1);
        // Another registry's exchange of the same name is another exchange.
        let other = Stats::default();
        other.routed("/", "x", 1);
        assert_eq!(stats.exchange("/", "x").unwrap().total(Count::Publish), 1);
    }

    #[test]
    fn commit_latency_is_the_time_of_the_last_batch() {
        let stats = Stats::default();
        let q = stats.queue("/", "q", false);
        assert_eq!(q.commit_latency(), 0.0);
        q.proposed(true);
        std::thread::sleep(std::time::Duration::from_millis(20));
        q.committed(false);
        let l = q.commit_latency();
        assert!((0.015..1.0).contains(&l), "latency {l}");
        // A commit without a timed proposal leaves the last latency.
        q.committed(false);
        assert_eq!(q.commit_latency(), l);
    }
}
