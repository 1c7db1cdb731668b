//! Counters with their last two samples, for rates as RabbitMQ computes them: the change
//! over the last sample interval divided by its length.

use std::sync::Mutex;
use std::time::Instant;

use super::counter::{Count, Counters, COUNTS};

/// The totals of an object at one moment.
type Sample = (Instant, [u64; COUNTS]);

/// One object's counters and samples.
#[derive(Default)]
pub struct Sampled<const SHARDS: usize> {
    pub counters: Counters<SHARDS>,
    /// The previous and the last sample (only the sampler and readers lock it).
    samples: Mutex<[Option<Sample>; 2]>,
}

/// An object's totals and rates (per second) at one moment.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    pub totals: [u64; COUNTS],
    pub rates: [f64; COUNTS],
}

impl Snapshot {
    pub fn total(&self, what: Count) -> u64 {
        self.totals[what as usize]
    }

    pub fn rate(&self, what: Count) -> f64 {
        self.rates[what as usize]
    }

    /// Whether any message was ever counted (RabbitMQ shows no `message_stats` before).
    pub fn any_traffic(&self) -> bool {
        self.totals.iter().zip(super::counter::ALL).any(|(&n, c)| {
            n > 0
                && !matches!(
                    c,
                    Count::Ready
                        | Count::Unacked
                        | Count::Consumers
                        | Count::RecvOct
                        | Count::RecvCnt
                        | Count::SendOct
                        | Count::SendCnt
                )
        })
    }

    /// The sum of two objects' snapshots (a cluster's nodes).
    pub fn plus(&self, other: &Snapshot) -> Snapshot {
        Snapshot {
            totals: std::array::from_fn(|i| self.totals[i].wrapping_add(other.totals[i])),
            rates: std::array::from_fn(|i| self.rates[i] + other.rates[i]),
        }
    }

    pub fn zero() -> Snapshot {
        Snapshot {
            totals: [0; COUNTS],
            rates: [0.0; COUNTS],
        }
    }
}

impl<const SHARDS: usize> std::fmt::Debug for Sampled<SHARDS> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sampled")
            .field("totals", &self.counters.totals())
            .finish_non_exhaustive()
    }
}

impl<const SHARDS: usize> Sampled<SHARDS> {
    #[inline]
    pub fn add(&self, what: Count, n: u64) {
        self.counters.add(what, n)
    }

    /// Take a sample now (the sampler task, every [`super::SAMPLE_EVERY`]).
    pub fn sample(&self, now: Instant) {
        let totals = self.counters.totals();
        let mut s = self.samples.lock().expect("stats samples lock");
        s[0] = s[1].take();
        s[1] = Some((now, totals));
    }

    /// Totals now, rates over the last sample interval (0 before two samples).
    pub fn snapshot(&self) -> Snapshot {
        let totals = self.counters.totals();
        let s = self.samples.lock().expect("stats samples lock");
        let rates = match (&s[0], &s[1]) {
            (Some((t0, v0)), Some((t1, v1))) if t1 > t0 => {
                let secs = (*t1 - *t0).as_secs_f64();
                std::array::from_fn(|i| (v1[i] as f64 - v0[i] as f64) / secs)
            }
            _ => [0.0; COUNTS],
        };
        Snapshot { totals, rates }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_rate_is_the_change_over_the_last_interval() {
        let s: Sampled<1> = Sampled::default();
        let t = Instant::now();
        s.add(Count::Publish, 10);
        s.sample(t);
        assert_eq!(s.snapshot().rate(Count::Publish), 0.0);
        s.add(Count::Publish, 50);
        s.counters.set(Count::Ready, 20);
        s.sample(t + Duration::from_secs(5));
        let snap = s.snapshot();
        assert_eq!(snap.total(Count::Publish), 60);
        assert_eq!(snap.rate(Count::Publish), 10.0);
        assert_eq!(snap.rate(Count::Ready), 4.0);
        // Counting after the last sample moves totals, not rates.
        s.add(Count::Publish, 5);
        assert_eq!(s.snapshot().total(Count::Publish), 65);
        assert_eq!(s.snapshot().rate(Count::Publish), 10.0);
        // A queue that drains has a negative depth rate, as RabbitMQ shows it.
        s.counters.set(Count::Ready, 0);
        s.sample(t + Duration::from_secs(10));
        assert_eq!(s.snapshot().rate(Count::Ready), -4.0);
        assert!(s.snapshot().any_traffic());
        assert!(!Sampled::<1>::default().snapshot().any_traffic());
    }
}
