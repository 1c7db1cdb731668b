//! Queue links: what a node without a queue's actor (the remote side,
//! [`remote_queue`](super::remote_queue)) and the node running it (the leader side,
//! [`link_serve`](super::link_serve)) say to each other.
//!
//! A link is a pair of byte channels that `cluster/` carries as one gRPC stream (or, when
//! both sides are this node, plain in-process channels). Each frame is one batch of
//! messages, encoded with postcard: the remote side sends what its clients asked since
//! the last frame, the leader side what its actor produced. The first frame names the
//! queue; the leader side answers [`LinkDown::Opened`], or [`LinkDown::NotHere`] with the
//! leader it knows of, and ends the link.

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::amqp::ReplyCode;
use crate::queue::{EnqueuerId, Message, MsgId};

/// One side's frames, each a postcard-encoded batch.
pub type LinkTx = mpsc::UnboundedSender<Vec<u8>>;

/// A link frame is cut once the messages in it reach this many bytes (by
/// [`Message::weight`]): a burst of big messages must not make one frame over the
/// transport's message limit (256 MiB), which would break the link on every retry.
const MAX_FRAME_MESSAGE_BYTES: usize = 8 << 20;

/// The other side's frames; `None` once the link is gone.
pub type LinkRx = mpsc::UnboundedReceiver<Vec<u8>>;

/// Opens links to other nodes (`cluster/` implements it over gRPC).
pub trait LinkConnector: Send + Sync + 'static {
    /// Open a link to `node`'s leader side.
    fn open(&self, node: u64) -> BoxFuture<'static, Result<(LinkTx, LinkRx), String>>;
}

/// The connector of a node without peers.
pub struct NoLinks;

impl LinkConnector for NoLinks {
    fn open(&self, node: u64) -> BoxFuture<'static, Result<(LinkTx, LinkRx), String>> {
        Box::pin(async move { Err(format!("node {node}: this node has no cluster links")) })
    }
}

/// Remote side to leader side. Consumer keys and request ids are the remote side's.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum LinkUp {
    /// The first message: which queue this link is for.
    Open {
        vhost: String,
        name: String,
    },
    /// Enqueue; always answered by [`LinkDown::Confirmed`], so that the remote side can
    /// resend unanswered ones after a leader change (the queue deduplicates them).
    Publish {
        id: u64,
        enqueuer: EnqueuerId,
        seq: u64,
        message: Message,
    },
    Consume {
        consumer: u64,
        no_ack: bool,
        prefetch: u32,
        priority: i64,
        exclusive: bool,
    },
    Cancel {
        consumer: u64,
    },
    Settle {
        msg_ids: Vec<MsgId>,
    },
    Requeue {
        msg_ids: Vec<MsgId>,
    },
    Discard {
        msg_ids: Vec<MsgId>,
    },
    Get {
        id: u64,
        no_ack: bool,
    },
    Purge {
        id: u64,
    },
    Status {
        id: u64,
    },
    /// [`QueueMsg::Forget`](super::QueueMsg::Forget), sent once every publish of the
    /// enqueuer was confirmed (see `remote_queue.rs`).
    Forget {
        enqueuer: EnqueuerId,
    },
}

/// A message taken by `basic.get` over a link.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LinkGot {
    pub msg_id: MsgId,
    pub message: Message,
    pub redelivered: bool,
    pub remaining: u32,
}

/// Leader side to remote side.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum LinkDown {
    /// The queue's actor runs here: the link is up.
    Opened,
    /// It does not (any more): try `leader` if known. The link ends.
    NotHere {
        leader: Option<u64>,
    },
    Confirmed {
        id: u64,
        ok: bool,
    },
    ConsumeOk {
        consumer: u64,
        refused: Option<(ReplyCode, String)>,
    },
    Deliver {
        consumer: u64,
        msg_id: MsgId,
        message: Message,
        redelivered: bool,
    },
    /// The queue was deleted under the consumer.
    Cancelled {
        consumer: u64,
    },
    Got {
        id: u64,
        got: Option<LinkGot>,
    },
    Purged {
        id: u64,
        count: u64,
    },
    Status {
        id: u64,
        ready: u64,
        unacked: u64,
        consumers: u32,
    },
}

/// One frame's bytes.
pub(super) fn encode<T: Serialize>(batch: &[T]) -> Vec<u8> {
    postcard::to_allocvec(batch).expect("encode a link frame")
}

/// A frame's messages; `None` for a frame that does not decode (the link is dropped).
pub(super) fn decode<T: for<'de> Deserialize<'de>>(frame: &[u8]) -> Option<Vec<T>> {
    postcard::from_bytes(frame).ok()
}

impl LinkUp {
    /// The weight of the message it carries (0 for none), for [`frames_by_weight`].
    pub(super) fn weight(&self) -> usize {
        match self {
            LinkUp::Publish { message, .. } => message.weight(),
            _ => 0,
        }
    }
}

impl LinkDown {
    /// The weight of the message it carries (0 for none), for [`frames_by_weight`].
    pub(super) fn weight(&self) -> usize {
        match self {
            LinkDown::Deliver { message, .. } => message.weight(),
            LinkDown::Got { got: Some(got), .. } => got.message.weight(),
            _ => 0,
        }
    }
}

/// Encode `items` as frames, cutting a new one where the weight of the messages in it
/// reaches [`MAX_FRAME_MESSAGE_BYTES`]; order is kept. Both ends of a link send this way.
pub(super) fn frames_by_weight<T: Serialize>(
    items: &[T],
    weight: impl Fn(&T) -> usize,
) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, item) in items.iter().enumerate() {
        bytes += weight(item);
        if bytes >= MAX_FRAME_MESSAGE_BYTES {
            frames.push(encode(&items[start..=i]));
            (start, bytes) = (i + 1, 0);
        }
    }
    if start < items.len() {
        frames.push(encode(&items[start..]));
    }
    frames
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn publish(id: u64, size: usize) -> LinkUp {
        LinkUp::Publish {
            id,
            enqueuer: 1,
            seq: id,
            message: Message {
                exchange: String::new(),
                routing_key: "q".into(),
                properties: Bytes::new(),
                body: Bytes::from(vec![0u8; size]),
            },
        }
    }

    fn ids(frame: &[u8]) -> Vec<u64> {
        decode::<LinkUp>(frame)
            .expect("a frame decodes")
            .iter()
            .map(|up| match up {
                LinkUp::Publish { id, .. } => *id,
                _ => panic!("not a publish"),
            })
            .collect()
    }

    #[test]
    fn small_publishes_share_one_frame_and_big_ones_are_cut_in_order() {
        let small: Vec<_> = (0..100).map(|i| publish(i, 16)).collect();
        let frames = frames_by_weight(&small, LinkUp::weight);
        assert_eq!(frames.len(), 1);
        assert_eq!(ids(&frames[0]), (0..100).collect::<Vec<_>>());

        let mib = 1 << 20;
        let mut big: Vec<_> = (0..3).map(|i| publish(i, 3 * mib)).collect();
        big.push(publish(3, 16 * mib));
        big.push(publish(4, 16));
        let frames: Vec<_> = frames_by_weight(&big, LinkUp::weight)
            .iter()
            .map(|f| ids(f))
            .collect();
        assert_eq!(frames, vec![vec![0, 1, 2], vec![3], vec![4]]);
        assert!(frames_by_weight(&[] as &[LinkUp], LinkUp::weight).is_empty());
    }
}
