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
impl QueueMachine {
    pub fn get(&self, id: MsgId) -> Option<&StoredMessage> { self.messages.get(&id) }
    pub fn iter(&self) -> impl Iterator<Item = (MsgId, &StoredMessage)> { self.messages.iter().map(|(k, v)| (*k, v)) }
    pub fn to_snapshot(&self) -> Vec<u8> { todo!() }
    pub fn from_snapshot(b: &[u8]) -> Result<Self, String> { todo!() }
}
