//! The queue machine's state, `apply`, and the read accessors the runtime uses.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{ApplyMeta, EnqueuerId, Message, MsgId, QueueCommand, QueueEffect, QueueReply};

/// A message held by the queue, with what the machine knows of its deliveries.
///
/// Its serde form (and that of [`Message`]) is part of snapshot format v1: changing a field
/// means a new snapshot version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredMessage {
    pub message: Message,
    /// True once `MarkDelivered` named it: a later delivery carries `redelivered = true`.
    pub delivered: bool,
}

/// One queue's replicated state. Serialized only through the versioned
/// [`QueueMachine::to_snapshot`] / [`QueueMachine::from_snapshot`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueueMachine {
    next_msg_id: MsgId,
    messages: BTreeMap<MsgId, StoredMessage>,
    /// Highest applied seq per enqueuer, for deduplication.
    enqueuers: BTreeMap<EnqueuerId, u64>,
    /// Sum of the stored bodies' lengths, kept in step with `messages`.
    total_bytes: u64,
}

impl QueueMachine {
    /// Applies one committed command. Pure: the same state and command give the same
    /// state, reply and effects on every replica.
    pub fn apply(&mut self, _meta: ApplyMeta, cmd: QueueCommand) -> (QueueReply, Vec<QueueEffect>) {
        match cmd {
            QueueCommand::Enqueue {
                enqueuer,
                seq,
                message,
            } => self.enqueue(enqueuer, seq, message, false),
            QueueCommand::EnqueueAssigned {
                enqueuer,
                seq,
                message,
            } => self.enqueue(enqueuer, seq, message, true),
            QueueCommand::EnqueueNext {
                enqueuer,
                seq,
                message,
                assigned,
            } => match self.enqueuers.get(&enqueuer) {
                Some(&last) if seq > last.saturating_add(1) => {
                    (QueueReply::OutOfOrder { expected: last + 1 }, Vec::new())
                }
                _ => self.enqueue(enqueuer, seq, message, assigned),
            },
            QueueCommand::MarkDelivered { msg_ids } => {
                for msg_id in msg_ids {
                    if let Some(stored) = self.messages.get_mut(&msg_id) {
                        stored.delivered = true;
                    }
                }
                (QueueReply::Ok, Vec::new())
            }
            QueueCommand::Settle { msg_ids } | QueueCommand::Discard { msg_ids } => {
                self.remove(msg_ids)
            }
            QueueCommand::ForgetEnqueuer { enqueuer } => {
                self.enqueuers.remove(&enqueuer);
                (QueueReply::Ok, Vec::new())
            }
        }
    }

    fn enqueue(
        &mut self,
        enqueuer: EnqueuerId,
        seq: u64,
        message: Message,
        delivered: bool,
    ) -> (QueueReply, Vec<QueueEffect>) {
        if self
            .enqueuers
            .get(&enqueuer)
            .is_some_and(|&last| seq <= last)
        {
            return (QueueReply::Duplicate, Vec::new());
        }
        self.enqueuers.insert(enqueuer, seq);
        let msg_id = self.next_msg_id;
        self.next_msg_id += 1;
        self.total_bytes += body_len(&message);
        self.messages
            .insert(msg_id, StoredMessage { message, delivered });
        (
            QueueReply::Enqueued { msg_id },
            vec![QueueEffect::Available { msg_id }],
        )
    }

    /// Removes the named messages that are present; the rest are already gone (idempotent).
    fn remove(&mut self, mut msg_ids: Vec<MsgId>) -> (QueueReply, Vec<QueueEffect>) {
        // Reuses the command's vector: what stays in it is what was actually removed.
        msg_ids.retain(|msg_id| match self.messages.remove(msg_id) {
            Some(stored) => {
                self.total_bytes -= body_len(&stored.message);
                true
            }
            None => false,
        });
        let count = msg_ids.len() as u64;
        let effects = if msg_ids.is_empty() {
            Vec::new()
        } else {
            vec![QueueEffect::Removed { msg_ids }]
        };
        (QueueReply::Removed { count }, effects)
    }

    /// Number of messages in the queue (ready or delivered but unsettled).
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    pub fn get(&self, msg_id: MsgId) -> Option<&StoredMessage> {
        self.messages.get(&msg_id)
    }

    /// All messages in msg_id (that is, enqueue) order.
    pub fn iter(
        &self,
    ) -> impl DoubleEndedIterator<Item = (MsgId, &StoredMessage)> + ExactSizeIterator + '_ {
        self.messages
            .iter()
            .map(|(&msg_id, stored)| (msg_id, stored))
    }

    /// Messages with `msg_id >= from`, in msg_id order.
    pub fn range_from(
        &self,
        from: MsgId,
    ) -> impl DoubleEndedIterator<Item = (MsgId, &StoredMessage)> + '_ {
        self.messages
            .range(from..)
            .map(|(&msg_id, stored)| (msg_id, stored))
    }

    /// Highest seq applied for `enqueuer`, or `None` if unknown or forgotten.
    pub fn last_seq(&self, enqueuer: EnqueuerId) -> Option<u64> {
        self.enqueuers.get(&enqueuer).copied()
    }

    /// Number of enqueuers with a dedup record.
    pub fn enqueuer_count(&self) -> usize {
        self.enqueuers.len()
    }

    /// The id the next accepted enqueue will get; greater than every id ever assigned.
    pub fn next_msg_id(&self) -> MsgId {
        self.next_msg_id
    }

    /// Sum of the body lengths of the stored messages.
    pub fn total_bytes(&self) -> u64 {
        self.total_bytes
    }

    pub(super) fn messages_map(&self) -> &BTreeMap<MsgId, StoredMessage> {
        &self.messages
    }

    pub(super) fn enqueuers_map(&self) -> &BTreeMap<EnqueuerId, u64> {
        &self.enqueuers
    }

    /// Rebuilds a machine from parts the caller has checked: every msg_id < `next_msg_id`.
    pub(super) fn from_checked_parts(
        next_msg_id: MsgId,
        messages: BTreeMap<MsgId, StoredMessage>,
        enqueuers: BTreeMap<EnqueuerId, u64>,
    ) -> Self {
        let total_bytes = messages.values().map(|s| body_len(&s.message)).sum();
        QueueMachine {
            next_msg_id,
            messages,
            enqueuers,
            total_bytes,
        }
    }
}

fn body_len(message: &Message) -> u64 {
    message.body.len() as u64
}
