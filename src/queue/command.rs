//! Replicated queue commands, replies and effects. Commands are an on-disk format:
//! variants are only ever appended, never reordered or changed.

use serde::{Deserialize, Serialize};

use super::{EnqueuerId, Message, MsgId};

/// What the proposer stamps on every command: log index and wall-clock time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApplyMeta {
    pub index: u64,
    pub time_ms: u64,
}

/// A command to a queue machine.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum QueueCommand {
    /// Store a message unless `(enqueuer, seq)` was already applied.
    Enqueue {
        enqueuer: EnqueuerId,
        seq: u64,
        message: Message,
    },
    /// Record that these messages have been handed to a consumer (for `redelivered`).
    MarkDelivered { msg_ids: Vec<MsgId> },
    /// Acknowledged: remove the messages.
    Settle { msg_ids: Vec<MsgId> },
    /// Rejected without requeue, or purged: remove the messages (dead-lettering later).
    Discard { msg_ids: Vec<MsgId> },
    /// The enqueuer is gone (its channel closed): drop its dedup record so the table of
    /// enqueuers cannot grow forever. A later enqueue under the same id starts afresh.
    ForgetEnqueuer { enqueuer: EnqueuerId },
    /// [`QueueCommand::Enqueue`] of a message the leader hands to a consumer as soon as
    /// it commits (the consumer had credit and nothing was waiting): stored already
    /// marked delivered, so after a failover it comes back with `redelivered = true`
    /// without a `MarkDelivered` round.
    EnqueueAssigned {
        enqueuer: EnqueuerId,
        seq: u64,
        message: Message,
    },
}

/// The machine's answer to one command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum QueueReply {
    /// The message was stored under `msg_id`.
    Enqueued { msg_id: MsgId },
    /// `(enqueuer, seq)` was applied before; nothing changed.
    Duplicate,
    /// Done; nothing to report.
    Ok,
    /// `Settle`/`Discard` removed this many of the named messages (unknown ids are skipped).
    Removed { count: u64 },
}

/// What the runtime must do after a command was applied (executed on the leader).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueueEffect {
    /// A new message is ready for consumers.
    Available { msg_id: MsgId },
    /// These messages left the queue (settled, discarded or purged).
    Removed { msg_ids: Vec<MsgId> },
}
