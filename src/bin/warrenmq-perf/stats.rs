//! Counters and latency histograms shared by the producers, consumers and the progress reporter.

use hdrhistogram::Histogram;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

/// Message counters of the whole run, summed over every producer and consumer.
#[derive(Debug, Default)]
pub struct Counters {
    pub sent: AtomicU64,
    pub confirmed: AtomicU64,
    pub nacked: AtomicU64,
    pub returned: AtomicU64,
    pub received: AtomicU64,
}

/// A point-in-time copy of [`Counters`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    pub sent: u64,
    pub confirmed: u64,
    pub nacked: u64,
    pub returned: u64,
    pub received: u64,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            sent: self.sent.load(Ordering::Relaxed),
            confirmed: self.confirmed.load(Ordering::Relaxed),
            nacked: self.nacked.load(Ordering::Relaxed),
            returned: self.returned.load(Ordering::Relaxed),
            received: self.received.load(Ordering::Relaxed),
        }
    }
}

/// Highest latency a histogram tracks exactly: one hour, in nanoseconds.
const MAX_TRACKED_NS: u64 = 3_600_000_000_000;

/// A histogram of latencies in nanoseconds, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_TRACKED_NS, 3).expect("valid histogram bounds")
}

/// Records latencies of one task: into a total histogram that the task returns at the end,
/// and into an interval histogram that the progress reporter drains every interval.
pub struct Recorder {
    total: Histogram<u64>,
    interval: Arc<Mutex<Histogram<u64>>>,
}

impl Recorder {
    pub fn new() -> (Self, Arc<Mutex<Histogram<u64>>>) {
        let interval = Arc::new(Mutex::new(new_histogram()));
        (
            Recorder {
                total: new_histogram(),
                interval: interval.clone(),
            },
            interval,
        )
    }

    pub fn record(&mut self, ns: u64) {
        let ns = ns.max(1);
        self.total.saturating_record(ns);
        if let Ok(mut h) = self.interval.lock() {
            h.saturating_record(ns);
        }
    }

    pub fn into_total(self) -> Histogram<u64> {
        self.total
    }
}

/// Merges and resets the interval histograms of all tasks.
pub fn drain_intervals(intervals: &[Arc<Mutex<Histogram<u64>>>]) -> Histogram<u64> {
    let mut merged = new_histogram();
    for h in intervals {
        if let Ok(mut h) = h.lock() {
            let _ = merged.add(&*h);
            h.reset();
        }
    }
    merged
}

/// Nanoseconds since the Unix epoch: the clock shared by producers and consumers,
/// also across processes on one machine.
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// CPU time (user + system) this process has used, in seconds, from `/proc/self/stat`
/// (Linux; `None` elsewhere). Ticks are USER_HZ, 100 on every Linux platform we run on.
pub fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    parse_cpu_ticks(&stat).map(|ticks| ticks as f64 / 100.0)
}

/// utime + stime from the text of a `/proc/PID/stat` file.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    // Fields after the parenthesised command name start at field 3 (state);
    // utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Percentiles of a latency histogram, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Percentiles {
    pub count: u64,
    pub min: f64,
    pub mean: f64,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl Percentiles {
    /// `None` for an empty histogram.
    pub fn of(h: &Histogram<u64>) -> Option<Self> {
        if h.is_empty() {
            return None;
        }
        let us = |ns: u64| ns as f64 / 1000.0;
        Some(Percentiles {
            count: h.len(),
            min: us(h.min()),
            mean: h.mean() / 1000.0,
            p50: us(h.value_at_quantile(0.50)),
            p95: us(h.value_at_quantile(0.95)),
            p99: us(h.value_at_quantile(0.99)),
            p999: us(h.value_at_quantile(0.999)),
            max: us(h.max()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_in_microseconds() {
        let mut h = new_histogram();
        for i in 1..=1000u64 {
            h.record(i * 1000).unwrap();
        }
        let p = Percentiles::of(&h).unwrap();
        assert_eq!(p.count, 1000);
        assert!((p.p50 - 500.0).abs() < 1.0, "{p:?}");
        assert!((p.p99 - 990.0).abs() < 1.0, "{p:?}");
        assert!((p.max - 1000.0).abs() < 1.0, "{p:?}");
        assert!(Percentiles::of(&new_histogram()).is_none());
    }

    #[test]
    fn cpu_ticks_from_proc_stat() {
        let stat = "42 (a b) c) S 1 2 3 4 5 6 7 8 9 10 250 30 0 0 20 0 1 0";
        assert_eq!(parse_cpu_ticks(stat), Some(280));
        assert!(parse_cpu_ticks("garbage").is_none());
    }

    #[test]
    fn intervals_are_drained() {
        let (mut a, ia) = Recorder::new();
        let (mut b, ib) = Recorder::new();
        a.record(1000);
        b.record(3000);
        let intervals = vec![ia, ib];
        assert_eq!(drain_intervals(&intervals).len(), 2);
        assert_eq!(drain_intervals(&intervals).len(), 0);
        assert_eq!(a.into_total().len(), 1);
    }
}
