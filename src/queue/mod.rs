//! The queue machine: a pure, deterministic state machine for one queue's messages.
//!
//! `QueueMachine::apply(meta, command) -> (reply, effects)` has no IO, clock or randomness;
//! time arrives in [`ApplyMeta`]. The same machine backs durable queues (applied by a Raft
//! group on every member) and transient queues (applied in memory by the queue actor).
//! Consumer registrations are not part of it: the leader-side registry in `broker/`
//! dispatches ready messages and records deliveries with `MarkDelivered`.

mod command;
mod machine;
mod message;
mod snapshot;

#[cfg(test)]
mod prop_tests;
#[cfg(test)]
mod tests;

pub use command::{ApplyMeta, QueueCommand, QueueEffect, QueueReply};
pub use machine::{QueueMachine, StoredMessage};
pub use message::Message;
pub use snapshot::{SnapshotError, SNAPSHOT_VERSION};

/// Position of a message in its queue: assigned by the machine at enqueue, strictly
/// increasing, never reused. Not the per-channel delivery tag.
pub type MsgId = u64;

/// Identifies one publisher stream (a channel on a node) for enqueue deduplication.
pub type EnqueuerId = u64;
