//! Sharded event counters: each thread adds into its own cache line, so counting on the
//! hot path never bounces a line between cores; a read sums the shards.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// What is counted, as RabbitMQ's `message_stats` keys name it (`Unroutable` is every
/// unroutable publish; `drop_unroutable` is what `return_unroutable` leaves of it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Count {
    /// A message received from a publisher (into an exchange: `publish_in`).
    Publish,
    /// A message routed into a queue (`publish_out` of its exchange).
    PublishOut,
    Confirm,
    /// Delivered to a consumer that acks.
    Deliver,
    DeliverNoAck,
    /// Taken with `basic.get`, to be acked.
    Get,
    GetNoAck,
    GetEmpty,
    Ack,
    Redeliver,
    Unroutable,
    ReturnUnroutable,
    /// Depth gauges of a queue (set, not added): ready, unacked, consumers.
    Ready,
    Unacked,
    Consumers,
    /// Bytes and reads from a client's socket, bytes and writes to it (a connection's
    /// `recv_oct`, `recv_cnt`, `send_oct`, `send_cnt`).
    RecvOct,
    RecvCnt,
    SendOct,
    SendCnt,
}

/// How many [`Count`]s there are.
pub const COUNTS: usize = 19;

/// Every [`Count`], in declaration order.
pub const ALL: [Count; COUNTS] = [
    Count::Publish,
    Count::PublishOut,
    Count::Confirm,
    Count::Deliver,
    Count::DeliverNoAck,
    Count::Get,
    Count::GetNoAck,
    Count::GetEmpty,
    Count::Ack,
    Count::Redeliver,
    Count::Unroutable,
    Count::ReturnUnroutable,
    Count::Ready,
    Count::Unacked,
    Count::Consumers,
    Count::RecvOct,
    Count::RecvCnt,
    Count::SendOct,
    Count::SendCnt,
];

impl Count {
    /// Its name in snake case (`return_unroutable`), as the admin commands key it.
    pub fn name(self) -> &'static str {
        match self {
            Count::Publish => "publish",
            Count::PublishOut => "publish_out",
            Count::Confirm => "confirm",
            Count::Deliver => "deliver",
            Count::DeliverNoAck => "deliver_no_ack",
            Count::Get => "get",
            Count::GetNoAck => "get_no_ack",
            Count::GetEmpty => "get_empty",
            Count::Ack => "ack",
            Count::Redeliver => "redeliver",
            Count::Unroutable => "unroutable",
            Count::ReturnUnroutable => "return_unroutable",
            Count::Ready => "ready",
            Count::Unacked => "unacked",
            Count::Consumers => "consumers",
            Count::RecvOct => "recv_oct",
            Count::RecvCnt => "recv_cnt",
            Count::SendOct => "send_oct",
            Count::SendCnt => "send_cnt",
        }
    }
}

/// One cache line (two, against adjacent-line prefetch) of counters.
#[repr(align(128))]
#[derive(Default)]
struct Shard([AtomicU64; COUNTS]);

/// Counters in `SHARDS` slots: 1 for an object one task counts (a queue's actor), more
/// for what every thread counts (the node, an exchange).
pub struct Counters<const SHARDS: usize> {
    shards: [Shard; SHARDS],
}

impl<const SHARDS: usize> Default for Counters<SHARDS> {
    fn default() -> Self {
        Counters {
            shards: std::array::from_fn(|_| Shard::default()),
        }
    }
}

/// This thread's slot number, given out in turn at its first count.
fn thread_slot() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SLOT: usize = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    SLOT.with(|s| *s)
}

impl<const SHARDS: usize> Counters<SHARDS> {
    /// Count `n` events of `what`.
    #[inline]
    pub fn add(&self, what: Count, n: u64) {
        if n == 0 || cfg!(feature = "no-stats") {
            return;
        }
        let shard = match SHARDS {
            1 => 0,
            _ => thread_slot() % SHARDS,
        };
        self.shards[shard].0[what as usize].fetch_add(n, Ordering::Relaxed);
    }

    /// Set a gauge (kept in the first slot only).
    #[inline]
    pub fn set(&self, what: Count, value: u64) {
        self.shards[0].0[what as usize].store(value, Ordering::Relaxed);
    }

    /// The total of `what` over all slots.
    pub fn get(&self, what: Count) -> u64 {
        self.shards
            .iter()
            .map(|s| s.0[what as usize].load(Ordering::Relaxed))
            .fold(0u64, u64::wrapping_add)
    }

    /// Every total, indexed by `Count as usize`.
    pub fn totals(&self) -> [u64; COUNTS] {
        std::array::from_fn(|i| self.get(ALL[i]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn counts_from_many_threads_add_up() {
        let c: Arc<Counters<8>> = Arc::default();
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let c = c.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        c.add(Count::Publish, 1);
                    }
                    c.add(Count::Ack, 5);
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(c.get(Count::Publish), 4000);
        assert_eq!(c.get(Count::Ack), 20);
        assert_eq!(c.get(Count::Deliver), 0);
        c.set(Count::Ready, 7);
        c.set(Count::Ready, 3);
        assert_eq!(c.totals()[Count::Ready as usize], 3);
    }

    #[test]
    fn all_lists_every_count_in_order() {
        for (i, c) in ALL.iter().enumerate() {
            assert_eq!(*c as usize, i);
        }
    }
}
