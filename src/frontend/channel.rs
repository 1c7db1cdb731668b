//! Per-channel state: publish assembly, confirms, transactions, consumers and the
//! delivery tags of unacknowledged deliveries.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use super::publish_checks::Routing;
use crate::broker::{ChannelCredit, ConsumerInfo, ConsumerKey, QueueHandle};
use crate::queue::{EnqueuerId, MsgId};
use crate::stats::LinkCounters;

/// A `basic.publish` waiting for its header and body frames.
#[derive(Debug)]
pub struct Assembly {
    pub exchange: String,
    pub routing_key: String,
    pub mandatory: bool,
    pub header: Option<(u64, Bytes)>,
    pub body: BytesMut,
}

impl Assembly {
    /// The complete publish: its body is `whole` when it came in one piece (kept without
    /// a copy), else the frames gathered.
    pub fn into_publish(mut self, whole: Option<Bytes>) -> TxPublish {
        let (_, properties) = self.header.expect("a complete publish has its header");
        let body = whole.unwrap_or_else(|| std::mem::take(&mut self.body).freeze());
        TxPublish {
            exchange: self.exchange,
            routing_key: self.routing_key,
            routing: Routing::default(),
            mandatory: self.mandatory,
            properties,
            body,
        }
    }
}

/// A publish held until `tx.commit`.
#[derive(Debug)]
pub struct TxPublish {
    pub exchange: String,
    pub routing_key: String,
    /// What its properties add to routing (`CC` / `BCC` keys, decoded headers).
    pub routing: Routing,
    pub mandatory: bool,
    pub properties: Bytes,
    pub body: Bytes,
}

/// An acknowledgement held until `tx.commit`.
#[derive(Debug, Clone, Copy)]
pub enum TxAck {
    Ack {
        tag: u64,
        multiple: bool,
    },
    Reject {
        tag: u64,
        multiple: bool,
        requeue: bool,
    },
}

/// A consumer as its channel sees it.
#[derive(Debug, Clone)]
pub struct ChannelConsumer {
    pub key: ConsumerKey,
    pub queue: QueueHandle,
    /// What `list_consumers` shows of it.
    pub info: ConsumerInfo,
}

/// One delivery awaiting `basic.ack`.
#[derive(Debug, Clone)]
pub struct Unacked {
    pub queue: QueueHandle,
    pub msg_id: MsgId,
}

/// The state of one open channel.
#[derive(Debug)]
pub struct Channel {
    /// True after we sent `channel.close` and wait for `close-ok`.
    pub closing: bool,
    pub assembly: Option<Assembly>,
    pub confirm: bool,
    /// Confirm-mode sequence number of the last publish.
    pub publish_seq: u64,
    /// Publishes not yet confirmed: seq -> (queues still to answer, any refused).
    pub unconfirmed: BTreeMap<u64, (u32, bool)>,
    /// Decided publishes whose ack/nack is not yet written.
    pub decided: Vec<(u64, bool)>,
    pub enqueuer: EnqueuerId,
    /// The seq of this channel's last enqueue to each queue, by queue name (a new handle
    /// of the same queue continues its count): 1, 2, 3... as `EnqueueNext` expects.
    enqueue_seqs: HashMap<String, u64>,
    /// The queues this channel published to, by handle key (each holds its handle, so
    /// a key is never reused meanwhile), told to forget its enqueuer when it closes.
    pub published_to: HashMap<usize, QueueHandle>,
    /// The key of the queue published to last: a publisher mostly publishes to one
    /// queue, so most publishes need no lookup.
    last_published: usize,
    pub tx: Option<(Vec<TxPublish>, Vec<TxAck>)>,
    /// `tx.commit` waiting for publishes up to this seq to be stored.
    pub commit_waiting: Option<u64>,
    pub consumers: HashMap<Arc<str>, ChannelConsumer>,
    pub next_tag: u64,
    pub unacked: BTreeMap<u64, Unacked>,
    pub prefetch: u32,
    pub credit: Arc<ChannelCredit>,
    /// The queue this channel declared last: what an empty queue name stands for.
    pub last_queue: Option<String>,
    /// The channel's `message_stats`.
    pub stats: LinkCounters,
}

impl Channel {
    pub fn new(enqueuer: EnqueuerId, stats: LinkCounters) -> Self {
        Channel {
            closing: false,
            assembly: None,
            confirm: false,
            publish_seq: 0,
            unconfirmed: BTreeMap::new(),
            decided: Vec::new(),
            enqueuer,
            enqueue_seqs: HashMap::new(),
            published_to: HashMap::new(),
            last_published: 0,
            tx: None,
            commit_waiting: None,
            consumers: HashMap::new(),
            next_tag: 0,
            unacked: BTreeMap::new(),
            prefetch: 0,
            credit: Arc::new(ChannelCredit::default()),
            last_queue: None,
            stats,
        }
    }

    /// Delivery tags named by an ack/nack/reject: one tag, or all up to it with `multiple`
    /// (tag 0 with multiple = everything). `None` when a single tag is unknown.
    pub fn take_tags(&mut self, tag: u64, multiple: bool) -> Option<Vec<Unacked>> {
        if multiple {
            let keep = if tag == 0 {
                BTreeMap::new()
            } else {
                self.unacked.split_off(&(tag + 1))
            };
            let taken = std::mem::replace(&mut self.unacked, keep);
            if tag != 0 && taken.is_empty() {
                return None;
            }
            Some(taken.into_values().collect())
        } else {
            self.unacked.remove(&tag).map(|u| vec![u])
        }
    }

    /// The seq of this channel's next enqueue to `queue`.
    pub fn next_enqueue_seq(&mut self, queue: &QueueHandle) -> u64 {
        if let Some(seq) = self.enqueue_seqs.get_mut(queue.name()) {
            *seq += 1;
            return *seq;
        }
        self.enqueue_seqs.insert(queue.name().to_owned(), 1);
        1
    }

    /// The enqueue just numbered for `queue` never reached it: its seq is free again, so
    /// the queue sees no gap.
    pub fn unsend_enqueue_seq(&mut self, queue: &QueueHandle) {
        if let Some(seq) = self.enqueue_seqs.get_mut(queue.name()) {
            *seq -= 1;
        }
    }

    /// Remember that this channel published to `queue`.
    pub fn note_published(&mut self, queue: &QueueHandle) {
        let key = queue.key();
        if key != self.last_published {
            self.last_published = key;
            self.published_to
                .entry(key)
                .or_insert_with(|| queue.clone());
        }
    }

    /// Record one queue's answer to publish `seq`.
    pub fn enqueued(&mut self, seq: u64, ok: bool) {
        if let Some((remaining, failed)) = self.unconfirmed.get_mut(&seq) {
            *remaining -= 1;
            *failed |= !ok;
            if *remaining == 0 {
                let failed = *failed;
                self.unconfirmed.remove(&seq);
                self.decided.push((seq, !failed));
            }
        }
    }

    /// The confirms to write: `(tag, multiple, ack)`, coalescing runs of acks below the
    /// oldest undecided publish into one `multiple` ack.
    pub fn take_confirms(&mut self) -> Vec<(u64, bool, bool)> {
        if self.decided.is_empty() {
            return Vec::new();
        }
        let mut decided = std::mem::take(&mut self.decided);
        decided.sort_unstable();
        let oldest_open = self.unconfirmed.keys().next().copied().unwrap_or(u64::MAX);
        let all_acks_below = decided.iter().all(|(seq, ok)| *ok && *seq < oldest_open);
        if all_acks_below && decided.len() > 1 {
            let last = decided.last().expect("non-empty").0;
            // A multiple ack covers every earlier tag; all of them are decided here or before.
            return vec![(last, true, true)];
        }
        decided
            .into_iter()
            .map(|(seq, ok)| (seq, false, ok))
            .collect()
    }

    /// Group deliveries by queue, preserving order, for one message per queue actor.
    pub fn by_queue(items: Vec<Unacked>) -> Vec<(QueueHandle, Vec<MsgId>)> {
        let mut groups: Vec<(QueueHandle, Vec<MsgId>)> = Vec::new();
        for u in items {
            match groups.iter_mut().find(|(q, _)| q.same(&u.queue)) {
                Some((_, ids)) => ids.push(u.msg_id),
                None => groups.push((u.queue, vec![u.msg_id])),
            }
        }
        groups
    }
}
