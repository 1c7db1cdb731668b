//! What queue actors send to connections, and what connections send to queue actors.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::consumers::ChannelCredit;
use super::{ConsumerKey, QueueHandle};
use crate::amqp::ReplyCode;
use crate::queue::{EnqueuerId, Message, MsgId};

/// A connection's inbox: deliveries, confirms and cancellations from queue actors.
pub type ConnTx = mpsc::UnboundedSender<ConnEvent>;

/// An event for one connection task.
#[derive(Debug)]
pub enum ConnEvent {
    /// A message for a consumer (`basic.deliver`).
    Deliver(Delivery),
    /// The queue has decided a publish: stored (`ok`) or refused.
    Enqueued {
        channel: u16,
        publish_seq: u64,
        ok: bool,
    },
    /// The queue went away under a consumer: send `basic.cancel`.
    ConsumerCancelled {
        channel: u16,
        consumer_tag: Arc<str>,
    },
}

impl ConnEvent {
    /// The channel the event is for.
    pub fn channel(&self) -> u16 {
        match self {
            ConnEvent::Deliver(d) => d.channel,
            ConnEvent::Enqueued { channel, .. } | ConnEvent::ConsumerCancelled { channel, .. } => {
                *channel
            }
        }
    }
}

/// One message handed to a consumer.
#[derive(Debug)]
pub struct Delivery {
    pub channel: u16,
    pub consumer_tag: Arc<str>,
    pub queue: QueueHandle,
    pub msg_id: MsgId,
    pub message: Message,
    pub redelivered: bool,
    /// False for no-ack consumers: nothing to settle later.
    pub needs_ack: bool,
}

/// Where a publisher wants the outcome of an enqueue sent.
#[derive(Debug, Clone)]
pub struct ConfirmTo {
    pub conn: ConnTx,
    pub channel: u16,
    pub publish_seq: u64,
}

/// A message taken with `basic.get`.
#[derive(Debug)]
pub struct GetReply {
    pub msg_id: MsgId,
    pub message: Message,
    pub redelivered: bool,
    /// Ready messages left after this one.
    pub remaining: u32,
}

/// Counts reported by `queue.declare-ok`, `queue.delete-ok` and the CLI.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStatus {
    pub ready: u64,
    pub unacked: u64,
    pub consumers: u32,
}

/// The answer to `basic.consume`: registered, or refused with a reply code and text.
pub type ConsumeReply = oneshot::Sender<Result<(), (ReplyCode, String)>>;

/// A request from a connection to a queue actor.
#[derive(Debug)]
pub enum QueueMsg {
    Publish {
        enqueuer: EnqueuerId,
        seq: u64,
        message: Message,
        confirm: Option<ConfirmTo>,
    },
    Consume {
        key: ConsumerKey,
        tag: Arc<str>,
        channel: u16,
        conn: ConnTx,
        no_ack: bool,
        prefetch: u32,
        channel_credit: Arc<ChannelCredit>,
        priority: i64,
        exclusive: bool,
        reply: ConsumeReply,
    },
    Cancel {
        key: ConsumerKey,
    },
    /// `basic.ack`: remove these deliveries.
    Settle {
        msg_ids: Vec<MsgId>,
    },
    /// `basic.nack`/`reject` with requeue, `basic.recover`, or a closed channel.
    Requeue {
        msg_ids: Vec<MsgId>,
    },
    /// `basic.nack`/`reject` without requeue.
    Discard {
        msg_ids: Vec<MsgId>,
    },
    Get {
        no_ack: bool,
        reply: oneshot::Sender<Option<GetReply>>,
    },
    Purge {
        reply: oneshot::Sender<u64>,
    },
    Status {
        reply: oneshot::Sender<QueueStatus>,
    },
    /// A channel's shared credit was freed: try to dispatch again.
    Wake,
    /// The publishing channel `enqueuer` closed: once every publish of it is stored,
    /// the queue machine forgets its dedup entry (`ForgetEnqueuer`), so the table holds
    /// live publishers only.
    Forget {
        enqueuer: EnqueuerId,
    },
    /// This node no longer leads the queue: pass every pending publish, every consumer
    /// and from then on every request to `to` (the remote side of a link to the new
    /// leader), so this node's clients keep one path to the queue, in order.
    Handover {
        to: QueueHandle,
    },
    /// The queue was deleted: cancel consumers and stop.
    Shutdown {
        reply: oneshot::Sender<u64>,
    },
}
