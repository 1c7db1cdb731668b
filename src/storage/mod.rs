//! The only user of sled: per-group logs, votes and snapshots under group-prefixed keys, with a group-commit flusher.
//!
//! # Keyspace
//! One sled database per node ([`Store::open`]) with two trees:
//! - `raft`: every group's data under an 8-byte big-endian group-id prefix, so one group's
//!   keys are contiguous and [`Store::remove_group`] is one prefix scan. After the prefix a
//!   one-byte tag: `0x01` vote, `0x02` committed log id, `0x03` last purged log id, `0x04`
//!   snapshot (meta + data), then `0x10` + 8-byte big-endian index for each log entry (the
//!   log is the tail of the group's range, sorted by index). See [`keys`].
//! - `groups`: the registry of groups with data (key: big-endian group id), written by
//!   [`Store::register_group`] and read at boot by [`Store::known_groups`].
//!
//! Values are opaque bytes: the encoding of openraft's types belongs to `raft/`.
//!
//! # Durability: group commit
//! Writes go to sled without waiting for the disk. A writer that needs durability then
//! registers a waiter ([`GroupStore::after_flush`]) or awaits [`GroupStore::flush`]; one
//! flusher thread per database takes every waiting waiter, calls sled's blocking `flush()`
//! once, and completes them all (see [`flusher`]). Writes of every group share each flush,
//! as RabbitMQ's Ra shares one WAL. sled recovers a prefix of its operation log, so a
//! flush makes every earlier write durable, whichever group made it, and a crash leaves a
//! prefix of a group's appended entries (no holes), which is why appends, truncations
//! and purges are plain inserts and removes, never `sled::Batch` (a batch switches sled
//! to a process-wide lock for every later operation: measured 5x slower with 100 groups).
//!
//! Caveat: on Linux sled 0.34 makes a flush durable with `sync_file_range`, not `fsync`:
//! the data reaches the device, but a volatile device write cache is not flushed, so a
//! power loss (not a process crash) on such a drive can lose the latest flushes.

pub mod flusher;
mod group;
pub mod keys;
mod store;

pub use flusher::FlushStats;
pub use group::GroupStore;
pub use keys::MetaKey;
pub use store::Store;

#[cfg(test)]
mod tests;
