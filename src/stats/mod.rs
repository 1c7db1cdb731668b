//! Message statistics: what RabbitMQ's management plugin calls `message_stats` (publish,
//! confirm, deliver, get, ack, redeliver, unroutable) counted per node, per queue and per
//! exchange, with rates sampled every [`SAMPLE_EVERY`], as its `*_details.rate`.
//!
//! The counting is on the publish and delivery paths, so it is cheap there: a counter is
//! a relaxed atomic add into a slot of the counting thread (`counter.rs`), no lock is
//! taken, and a queue's actor adds a batch's counts at once. Reading sums the slots;
//! a sampler task keeps the last two samples of each object for its rates (`sampled.rs`).
//! The registry (`registry.rs`) finds a queue's or an exchange's counters by name.

mod counter;
mod links;
mod registry;
mod sampled;

pub use counter::{Count, Counters, ALL, COUNTS};
pub use links::{Churn, LinkCounters, LinkKind, LinkStats, Links};
pub use registry::{ExchangeStats, QueueStats, Stats};
pub use sampled::{Sampled, Snapshot};

/// RabbitMQ's default sample interval (`collect_statistics_interval`, 5 s).
pub const SAMPLE_EVERY: std::time::Duration = std::time::Duration::from_secs(5);
