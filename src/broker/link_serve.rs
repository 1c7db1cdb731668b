//! The leader side of a queue link: stands in, towards this node's queue actor, for the
//! clients of another node. Their publishes become the actor's publishes (each answered
//! with a confirm), their consumers the actor's consumers (registered under keys of this
//! node, with the consumer's own prefetch), their acks the actor's settles.
//!
//! When the link ends (the other node went away or dropped it), its consumers are
//! cancelled and what they had not settled is ready again. When the actor stops while
//! the queue still exists (this node no longer leads it), the link ends too: the other
//! side reconnects to the new leader and registers its consumers again.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tracing::debug;

use super::consumers::ChannelCredit;
use super::events::{ConfirmTo, ConnEvent, GetReply, QueueMsg, QueueStatus};
use super::link::{decode, encode, frames_by_weight, LinkDown, LinkGot, LinkRx, LinkTx, LinkUp};
use super::{Broker, ConsumerKey, QueueHandle};
use crate::amqp::ReplyCode;
use crate::queue::MsgId;

/// Most actor events forwarded in one frame.
const EVENT_BATCH: usize = 1024;

/// Answers of the actor to requests of this link, back in the link's task.
enum Answer {
    Consume {
        consumer: u64,
        result: Result<(), (ReplyCode, String)>,
    },
    Got {
        id: u64,
        no_ack: bool,
        got: Option<GetReply>,
    },
    Purged {
        id: u64,
        count: u64,
    },
    Status {
        id: u64,
        status: QueueStatus,
    },
}

impl Broker {
    /// Serve a link another node opened: its frames arrive on `incoming`, the answers go
    /// out on the returned receiver.
    pub fn serve_link(&self, incoming: LinkRx) -> LinkRx {
        let (out, out_rx) = mpsc::unbounded_channel();
        if let Some(broker) = self.me.upgrade() {
            tokio::spawn(serve(broker, incoming, out));
        }
        out_rx
    }
}

async fn serve(broker: Arc<Broker>, mut incoming: LinkRx, out: LinkTx) {
    let Some(first) = incoming.recv().await else {
        return;
    };
    let Some((vhost, name)) = decode::<LinkUp>(&first).and_then(|batch| match batch.first() {
        Some(LinkUp::Open { vhost, name }) => Some((vhost.clone(), name.clone())),
        _ => None,
    }) else {
        debug!("queue link without an open: dropped");
        return;
    };
    let Some(queue) = broker.local_queue(&vhost, &name) else {
        let leader = broker.queue_record(&vhost, &name).and_then(|record| {
            if record.group_id != 0 && record.members.len() > 1 {
                broker.queue_group_leader(record.group_id)
            } else {
                Some(record.leader_node)
            }
        });
        let _ = out.send(encode(&[LinkDown::NotHere { leader }]));
        return;
    };
    let _ = out.send(encode(&[LinkDown::Opened]));
    let (conn, events) = mpsc::unbounded_channel();
    let (answers_tx, answers) = mpsc::unbounded_channel();
    let mut link = LeaderLink {
        broker,
        vhost,
        name,
        queue,
        conn,
        out,
        answers_tx,
        consumers: HashMap::new(),
        by_tag: HashMap::new(),
        outstanding: HashSet::new(),
        down: Vec::new(),
    };
    link.run(incoming, events, answers).await;
    link.detach();
}

struct LeaderLink {
    broker: Arc<Broker>,
    vhost: String,
    name: String,
    queue: QueueHandle,
    /// The link's own connection inbox, as the actor sees it.
    conn: mpsc::UnboundedSender<ConnEvent>,
    out: LinkTx,
    answers_tx: mpsc::UnboundedSender<Answer>,
    /// The other side's consumer keys -> this node's.
    consumers: HashMap<u64, ConsumerKey>,
    /// The tag each registration got at the actor -> the other side's consumer key.
    by_tag: HashMap<Arc<str>, u64>,
    /// Deliveries (and gets) not yet settled or returned by the other side.
    outstanding: HashSet<MsgId>,
    /// The next frame.
    down: Vec<LinkDown>,
}

impl LeaderLink {
    async fn run(
        &mut self,
        mut incoming: LinkRx,
        mut events: mpsc::UnboundedReceiver<ConnEvent>,
        mut answers: mpsc::UnboundedReceiver<Answer>,
    ) {
        let queue = self.queue.clone();
        loop {
            tokio::select! {
                frame = incoming.recv() => {
                    let Some(frame) = frame else { return };
                    let Some(batch) = decode::<LinkUp>(&frame) else {
                        debug!("undecodable queue link frame: link dropped");
                        return;
                    };
                    for up in batch {
                        if !self.request(up) {
                            return;
                        }
                    }
                }
                Some(event) = events.recv() => {
                    if !self.event(event) {
                        return;
                    }
                    for _ in 0..EVENT_BATCH {
                        match events.try_recv() {
                            Ok(event) => if !self.event(event) { return },
                            Err(_) => break,
                        }
                    }
                }
                Some(answer) = answers.recv() => self.answer(answer),
                _ = queue.closed() => {
                    // The actor stopped: its last words (cancellations) are read first.
                    while let Ok(event) = events.try_recv() {
                        if !self.event(event) {
                            return;
                        }
                    }
                    self.flush();
                    return;
                }
            }
            if !self.flush() {
                return;
            }
        }
    }

    /// Send the frame gathered so far; false when the other side is gone.
    fn flush(&mut self) -> bool {
        if self.down.is_empty() {
            return true;
        }
        let down = std::mem::take(&mut self.down);
        frames_by_weight(&down, LinkDown::weight)
            .into_iter()
            .all(|frame| self.out.send(frame).is_ok())
    }

    /// Pass one request to the actor; false when the actor is gone.
    fn request(&mut self, up: LinkUp) -> bool {
        let msg = match up {
            LinkUp::Open { .. } => return true,
            LinkUp::Publish {
                id,
                enqueuer,
                seq,
                message,
            } => QueueMsg::Publish {
                enqueuer,
                seq,
                message,
                confirm: Some(ConfirmTo {
                    conn: self.conn.clone(),
                    channel: 0,
                    publish_seq: id,
                }),
            },
            LinkUp::Consume {
                consumer,
                no_ack,
                prefetch,
                priority,
                exclusive,
            } => {
                let key = self.broker.new_consumer_key();
                let tag: Arc<str> = Arc::from(format!("link-{key}"));
                self.consumers.insert(consumer, key);
                self.by_tag.insert(tag.clone(), consumer);
                let (reply, rx) = oneshot::channel();
                let answers = self.answers_tx.clone();
                tokio::spawn(async move {
                    let result = rx
                        .await
                        .unwrap_or_else(|_| Err((ReplyCode::NotFound, "queue gone".into())));
                    let _ = answers.send(Answer::Consume { consumer, result });
                });
                QueueMsg::Consume {
                    key,
                    tag,
                    channel: 0,
                    conn: self.conn.clone(),
                    no_ack,
                    prefetch,
                    // A channel's global prefetch does not reach other nodes (as quorum
                    // queues, which do not support it in RabbitMQ either).
                    channel_credit: Arc::new(ChannelCredit::default()),
                    priority,
                    exclusive,
                    reply,
                }
            }
            LinkUp::Cancel { consumer } => {
                let Some(key) = self.consumers.remove(&consumer) else {
                    return true;
                };
                self.by_tag.retain(|_, c| *c != consumer);
                QueueMsg::Cancel { key }
            }
            LinkUp::Settle { msg_ids } => QueueMsg::Settle {
                msg_ids: self.returned(msg_ids),
            },
            LinkUp::Requeue { msg_ids } => QueueMsg::Requeue {
                msg_ids: self.returned(msg_ids),
            },
            LinkUp::Discard { msg_ids } => QueueMsg::Discard {
                msg_ids: self.returned(msg_ids),
            },
            LinkUp::Get { id, no_ack } => {
                let (reply, rx) = oneshot::channel();
                self.answer_later(rx, move |got| Answer::Got {
                    id,
                    no_ack,
                    got: got.flatten(),
                });
                QueueMsg::Get { no_ack, reply }
            }
            LinkUp::Purge { id } => {
                let (reply, rx) = oneshot::channel();
                self.answer_later(rx, move |count| Answer::Purged {
                    id,
                    count: count.unwrap_or(0),
                });
                QueueMsg::Purge { reply }
            }
            LinkUp::Forget { enqueuer } => QueueMsg::Forget { enqueuer },
            LinkUp::Status { id } => {
                let (reply, rx) = oneshot::channel();
                self.answer_later(rx, move |status| Answer::Status {
                    id,
                    status: status.unwrap_or_default(),
                });
                QueueMsg::Status { reply }
            }
        };
        self.queue.send(msg)
    }

    fn answer_later<T: Send + 'static>(
        &self,
        rx: oneshot::Receiver<T>,
        answer: impl FnOnce(Option<T>) -> Answer + Send + 'static,
    ) {
        let answers = self.answers_tx.clone();
        tokio::spawn(async move {
            let value = rx.await.ok();
            let _ = answers.send(answer(value));
        });
    }

    /// Ids the other side settles or returns: no longer outstanding here.
    fn returned(&mut self, msg_ids: Vec<MsgId>) -> Vec<MsgId> {
        for id in &msg_ids {
            self.outstanding.remove(id);
        }
        msg_ids
    }

    /// Forward one event of the actor; false when the link must end.
    fn event(&mut self, event: ConnEvent) -> bool {
        match event {
            ConnEvent::Enqueued {
                publish_seq, ok, ..
            } => self.down.push(LinkDown::Confirmed {
                id: publish_seq,
                ok,
            }),
            ConnEvent::Deliver(d) => {
                let Some(&consumer) = self.by_tag.get(&d.consumer_tag) else {
                    // Cancelled meanwhile: the message is ready again.
                    if d.needs_ack {
                        self.queue.send(QueueMsg::Requeue {
                            msg_ids: vec![d.msg_id],
                        });
                    }
                    return true;
                };
                if d.needs_ack {
                    self.outstanding.insert(d.msg_id);
                }
                self.down.push(LinkDown::Deliver {
                    consumer,
                    msg_id: d.msg_id,
                    message: d.message,
                    redelivered: d.redelivered,
                });
            }
            ConnEvent::ConsumerCancelled { consumer_tag, .. } => {
                if self.broker.queue_record(&self.vhost, &self.name).is_some() {
                    // Not deleted: the actor stops because this node no longer leads.
                    return false;
                }
                if let Some(consumer) = self.by_tag.remove(&consumer_tag) {
                    self.consumers.remove(&consumer);
                    self.down.push(LinkDown::Cancelled { consumer });
                }
            }
        }
        true
    }

    fn answer(&mut self, answer: Answer) {
        match answer {
            Answer::Consume { consumer, result } => {
                let refused = result.err();
                if refused.is_some() {
                    if let Some(key) = self.consumers.remove(&consumer) {
                        self.by_tag.retain(|_, c| *c != consumer);
                        debug!(key, "link consumer refused");
                    }
                }
                self.down.push(LinkDown::ConsumeOk { consumer, refused });
            }
            Answer::Got { id, no_ack, got } => {
                if let Some(got) = &got {
                    if !no_ack {
                        self.outstanding.insert(got.msg_id);
                    }
                }
                let got = got.map(|g| LinkGot {
                    msg_id: g.msg_id,
                    message: g.message,
                    redelivered: g.redelivered,
                    remaining: g.remaining,
                });
                self.down.push(LinkDown::Got { id, got });
            }
            Answer::Purged { id, count } => self.down.push(LinkDown::Purged { id, count }),
            Answer::Status { id, status } => self.down.push(LinkDown::Status {
                id,
                ready: status.ready,
                unacked: status.unacked,
                consumers: status.consumers,
            }),
        }
    }

    /// The link is gone: its consumers go, and what they held is ready again.
    fn detach(&mut self) {
        for (_, key) in self.consumers.drain() {
            self.queue.send(QueueMsg::Cancel { key });
        }
        let msg_ids: Vec<MsgId> = self.outstanding.drain().collect();
        if !msg_ids.is_empty() {
            self.queue.send(QueueMsg::Requeue { msg_ids });
        }
    }
}
