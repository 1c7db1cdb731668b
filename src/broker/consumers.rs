//! The leader-side consumer registry of one queue: who may receive the next message.
//!
//! Consumers are served round-robin within the highest priority that has credit, as
//! RabbitMQ does with `x-priority`. Credit is the consumer's own prefetch and, when the
//! channel has a global prefetch, the channel's shared one.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use super::{ConnTx, ConsumerKey};

/// A channel's shared prefetch (`basic.qos` with `global = true`); 0 = unlimited.
#[derive(Debug, Default)]
pub struct ChannelCredit {
    pub limit: AtomicU32,
    pub outstanding: AtomicU32,
}

impl ChannelCredit {
    fn has_room(&self) -> bool {
        let limit = self.limit.load(Ordering::Relaxed);
        limit == 0 || self.outstanding.load(Ordering::Relaxed) < limit
    }
}

/// One `basic.consume` registration.
#[derive(Debug)]
pub struct Consumer {
    pub key: ConsumerKey,
    pub tag: Arc<str>,
    pub channel: u16,
    pub conn: ConnTx,
    pub no_ack: bool,
    /// Per-consumer prefetch; 0 = unlimited.
    pub prefetch: u32,
    pub channel_credit: Arc<ChannelCredit>,
    pub priority: i64,
    /// Deliveries not yet settled or returned.
    pub outstanding: u32,
}

impl Consumer {
    fn has_credit(&self) -> bool {
        self.no_ack
            || ((self.prefetch == 0 || self.outstanding < self.prefetch)
                && self.channel_credit.has_room())
    }
}

/// Consumers of one queue.
#[derive(Debug, Default)]
pub struct Registry {
    consumers: BTreeMap<ConsumerKey, Consumer>,
    /// Round-robin order per priority, highest priority first when iterated in reverse.
    rings: BTreeMap<i64, VecDeque<ConsumerKey>>,
    /// Set while a consumer holds `exclusive` access.
    exclusive: Option<ConsumerKey>,
}

impl Registry {
    pub fn len(&self) -> usize {
        self.consumers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.consumers.is_empty()
    }

    /// The consumer holding `exclusive` access, if any.
    pub fn exclusive_key(&self) -> Option<ConsumerKey> {
        self.exclusive
    }

    pub fn has_exclusive(&self) -> bool {
        self.exclusive.is_some()
    }

    pub fn add(&mut self, consumer: Consumer, exclusive: bool) {
        if exclusive {
            self.exclusive = Some(consumer.key);
        }
        self.rings
            .entry(consumer.priority)
            .or_default()
            .push_back(consumer.key);
        self.consumers.insert(consumer.key, consumer);
    }

    pub fn remove(&mut self, key: ConsumerKey) -> Option<Consumer> {
        let consumer = self.consumers.remove(&key)?;
        if let Some(ring) = self.rings.get_mut(&consumer.priority) {
            ring.retain(|k| *k != key);
            if ring.is_empty() {
                self.rings.remove(&consumer.priority);
            }
        }
        if self.exclusive == Some(key) {
            self.exclusive = None;
        }
        Some(consumer)
    }

    pub fn get_mut(&mut self, key: ConsumerKey) -> Option<&mut Consumer> {
        self.consumers.get_mut(&key)
    }

    pub fn drain(&mut self) -> Vec<Consumer> {
        self.rings.clear();
        self.exclusive = None;
        std::mem::take(&mut self.consumers).into_values().collect()
    }

    /// The next consumer with credit, rotating it to the back of its ring.
    pub fn next_with_credit(&mut self) -> Option<ConsumerKey> {
        for ring in self.rings.values_mut().rev() {
            for _ in 0..ring.len() {
                let key = ring.pop_front()?;
                ring.push_back(key);
                if self.consumers.get(&key).is_some_and(Consumer::has_credit) {
                    return Some(key);
                }
            }
        }
        None
    }

    /// Record a delivery to `key`. Unless it is no-ack, it counts against the consumer's
    /// and its channel's credit; the channel credit to give back later is returned.
    pub fn charge(&mut self, key: ConsumerKey) -> Option<Arc<ChannelCredit>> {
        let c = self.consumers.get_mut(&key)?;
        if c.no_ack {
            return None;
        }
        c.outstanding += 1;
        c.channel_credit.outstanding.fetch_add(1, Ordering::Relaxed);
        Some(c.channel_credit.clone())
    }

    /// A delivery to `key` was settled or returned: give the consumer's credit back.
    /// (The channel's credit is given back by whoever holds the `charge` result.)
    pub fn refund(&mut self, key: ConsumerKey) {
        if let Some(c) = self.consumers.get_mut(&key) {
            c.outstanding = c.outstanding.saturating_sub(1);
        }
    }
}

impl ChannelCredit {
    /// Give back one unit of channel credit.
    pub fn release(&self) {
        let _ = self
            .outstanding
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }
}
