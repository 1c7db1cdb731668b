//! The counters of client connections and channels: a channel's `message_stats`
//! (publish, confirm, deliver, get, ack, ... as `/api/channels` shows them) and a
//! connection's traffic (`recv_oct`, `send_oct`, ...), each counted by the one
//! connection task that owns it (an uncontended relaxed add), with how many were opened
//! and closed on the node (`rabbitmq_connections_opened_total`, ...).
//!
//! The registry keeps a weak reference to each, for the sampler's rates; a
//! [`LinkCounters`] counts its link as closed when it drops.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use super::sampled::Sampled;

/// One connection's or channel's counters.
pub type LinkStats = Sampled<1>;

/// What a counted link is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkKind {
    Connection,
    Channel,
}

/// The node's open connections and channels, for sampling, and their churn.
#[derive(Default)]
pub struct Links {
    live: Mutex<Vec<Weak<LinkStats>>>,
    /// Opened and closed, by kind (connections, then channels).
    opened: [AtomicU64; 2],
    closed: [AtomicU64; 2],
}

/// How many connections and channels were opened and closed on the node.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Churn {
    pub connections_opened: u64,
    pub connections_closed: u64,
    pub channels_opened: u64,
    pub channels_closed: u64,
}

/// A link's counters while it is open; dropping them counts the link as closed.
pub struct LinkCounters {
    stats: Arc<LinkStats>,
    links: Arc<Links>,
    kind: LinkKind,
}

impl Links {
    /// Counters for a link that opens now.
    pub fn open(self: &Arc<Self>, kind: LinkKind) -> LinkCounters {
        let stats = Arc::new(LinkStats::default());
        {
            let mut live = self.live.lock().expect("link stats lock");
            live.push(Arc::downgrade(&stats));
        }
        self.opened[kind as usize].fetch_add(1, Ordering::Relaxed);
        LinkCounters {
            stats,
            links: self.clone(),
            kind,
        }
    }

    pub fn churn(&self) -> Churn {
        let get = |a: &[AtomicU64; 2], k: LinkKind| a[k as usize].load(Ordering::Relaxed);
        Churn {
            connections_opened: get(&self.opened, LinkKind::Connection),
            connections_closed: get(&self.closed, LinkKind::Connection),
            channels_opened: get(&self.opened, LinkKind::Channel),
            channels_closed: get(&self.closed, LinkKind::Channel),
        }
    }

    /// Sample every open link; forget the closed ones.
    pub(super) fn sample(&self, now: Instant) {
        let mut live = self.live.lock().expect("link stats lock");
        live.retain(|link| match link.upgrade() {
            Some(stats) => {
                stats.sample(now);
                true
            }
            None => false,
        });
    }
}

impl LinkCounters {
    /// The counters, to count into or to share with a reader.
    pub fn stats(&self) -> &Arc<LinkStats> {
        &self.stats
    }
}

impl std::ops::Deref for LinkCounters {
    type Target = LinkStats;

    fn deref(&self) -> &LinkStats {
        &self.stats
    }
}

impl Drop for LinkCounters {
    fn drop(&mut self) {
        self.links.closed[self.kind as usize].fetch_add(1, Ordering::Relaxed);
    }
}

impl std::fmt::Debug for LinkCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkCounters")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Count;
    use std::time::Duration;

    #[test]
    fn links_are_sampled_while_open_and_counted_when_they_close() {
        let links = Arc::new(Links::default());
        let conn = links.open(LinkKind::Connection);
        let ch = links.open(LinkKind::Channel);
        let t = Instant::now();
        ch.add(Count::Publish, 3);
        links.sample(t);
        ch.add(Count::Publish, 10);
        links.sample(t + Duration::from_secs(5));
        let s = ch.snapshot();
        assert_eq!(s.total(Count::Publish), 13);
        assert_eq!(s.rate(Count::Publish), 2.0);
        drop(ch);
        links.sample(t + Duration::from_secs(10));
        assert_eq!(
            links.live.lock().unwrap().len(),
            1,
            "the closed channel is forgotten"
        );
        assert_eq!(
            links.churn(),
            Churn {
                connections_opened: 1,
                connections_closed: 0,
                channels_opened: 1,
                channels_closed: 1,
            }
        );
        drop(conn);
        assert_eq!(links.churn().connections_closed, 1);
    }
}
