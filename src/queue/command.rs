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
    /// An enqueue from an enqueuer that numbers its messages to this queue 1, 2, 3...
    /// without gaps: a seq past the next one expected means an earlier enqueue was lost
    /// or overtaken on its way, and this one is refused ([`QueueReply::OutOfOrder`], the
    /// publisher gets a nack) rather than stored; a seq at or below the last applied one
    /// is a duplicate. `assigned` as for [`QueueCommand::EnqueueAssigned`]. (The older
    /// variants accept gaps; they stay for the logs that hold them.)
    EnqueueNext {
        enqueuer: EnqueuerId,
        seq: u64,
        message: Message,
        assigned: bool,
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
    /// [`QueueCommand::EnqueueNext`] skipped a seq: refused, nothing changed; `expected`
    /// is the seq the enqueuer's next enqueue must have.
    OutOfOrder { expected: u64 },
}

/// What the runtime must do after a command was applied (executed on the leader).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueueEffect {
    /// A new message is ready for consumers.
    Available { msg_id: MsgId },
    /// These messages left the queue (settled, discarded or purged).
    Removed { msg_ids: Vec<MsgId> },
}

impl QueueCommand {
    /// About how many bytes the command takes encoded: its message's body, properties,
    /// exchange and routing key, or its id lists, plus a little framing. Proposals are
    /// capped by this sum (`broker::queue_actor`).
    pub fn weight(&self) -> usize {
        const FRAMING: usize = 16;
        match self {
            QueueCommand::Enqueue { message, .. }
            | QueueCommand::EnqueueAssigned { message, .. }
            | QueueCommand::EnqueueNext { message, .. } => FRAMING + message.weight(),
            QueueCommand::MarkDelivered { msg_ids }
            | QueueCommand::Settle { msg_ids }
            | QueueCommand::Discard { msg_ids } => FRAMING + 8 * msg_ids.len(),
            QueueCommand::ForgetEnqueuer { .. } => FRAMING,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn weight_bounds_the_encoded_size() {
        let message = Message {
            exchange: "ex".into(),
            routing_key: "rk".repeat(10),
            properties: Bytes::from(vec![1u8; 30]),
            body: Bytes::from(vec![7u8; 100_000]),
        };
        let commands = [
            QueueCommand::Enqueue {
                enqueuer: EnqueuerId::default(),
                seq: u64::MAX,
                message: message.clone(),
            },
            QueueCommand::Settle {
                msg_ids: (0..1000).collect(),
            },
            QueueCommand::ForgetEnqueuer {
                enqueuer: EnqueuerId::default(),
            },
        ];
        for cmd in commands {
            let encoded = postcard::to_allocvec(&cmd).unwrap().len();
            assert!(
                encoded <= cmd.weight() + 32 && cmd.weight() <= encoded + 8 * 1000,
                "{cmd:?}: encoded {encoded} B, weight {}",
                cmd.weight()
            );
        }
    }
}
