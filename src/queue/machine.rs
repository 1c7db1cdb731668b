//! The queue machine's state and `apply`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{ApplyMeta, EnqueuerId, Message, MsgId, QueueCommand, QueueEffect, QueueReply};

/// A message held by the queue, with what the machine knows of its deliveries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredMessage {
    pub message: Message,
    /// True once `MarkDelivered` named it: a later delivery carries `redelivered = true`.
    pub delivered: bool,
}

/// One queue's replicated state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueMachine {
    next_msg_id: MsgId,
    messages: BTreeMap<MsgId, StoredMessage>,
    /// Highest applied seq per enqueuer, for deduplication.
    enqueuers: BTreeMap<EnqueuerId, u64>,
}

impl QueueMachine {
    pub fn apply(
        &mut self,
        _meta: ApplyMeta,
        _cmd: QueueCommand,
    ) -> (QueueReply, Vec<QueueEffect>) {
        todo!("queue machine")
    }
}
