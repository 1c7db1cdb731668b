//! The remote side of a queue link: on a node that does not run a queue's actor, a task
//! with the same address type ([`QueueHandle`]) as an actor, so the frontend's channels
//! publish, consume, ack and get exactly as with a local queue. It forwards all of it,
//! batched, over one link to the node that runs the actor (the queue's leader) and hands
//! what comes back (confirms, deliveries, answers) to the local connections.
//!
//! Failover: the task keeps every publish until the leader confirms it and every consumer
//! registration. When the link breaks (the leader died or stepped down), it finds the new
//! leader (the group's view when this node is a member, the old leader's hint, then every
//! member in turn), and sends again, in order, every unconfirmed publish (the queue
//! machine drops those it already has, by `(enqueuer, seq)`), every consumer, and every
//! unanswered request. Clients see a pause, not an error. Deliveries of the old leader
//! that were not settled come again from the new one, flagged `redelivered`.
//!
//! Once a node has a remote side for a queue, its clients keep using it even when the
//! node becomes the queue's leader (the link then stays in the process): one path per
//! publisher keeps its messages in order.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, info};

use super::events::{
    ConfirmTo, ConnEvent, ConnTx, ConsumeReply, Delivery, GetReply, QueueMsg, QueueStatus,
};
use super::link::{decode, encode, frames_by_weight, LinkDown, LinkRx, LinkTx, LinkUp};
use super::{Broker, ConsumerKey, QueueHandle};
use crate::queue::{EnqueuerId, Message, MsgId};

/// How long opening a link to one node may take.
const OPEN_TIMEOUT: Duration = Duration::from_secs(1);
/// First and longest wait between rounds of connection attempts.
const RETRY_MIN: Duration = Duration::from_millis(10);
const RETRY_MAX: Duration = Duration::from_millis(50);
/// A get, purge or status request waits this long for a leader, then gets an empty answer.
const REQUEST_WAIT: Duration = Duration::from_secs(5);

impl Broker {
    /// The remote side of a queue whose actor runs on another node: the one this node
    /// has, or a new one.
    pub(super) fn remote_queue(&self, vhost: &str, name: &str) -> QueueHandle {
        self.queues
            .client_or_insert(vhost, name, || self.spawn_remote(vhost, name))
    }

    /// Start a remote side for a queue (not recorded as what clients use).
    pub(super) fn spawn_remote(&self, vhost: &str, name: &str) -> QueueHandle {
        {
            let (tx, inbox) = mpsc::unbounded_channel();
            let handle = QueueHandle::with_kind(vhost.to_owned(), name.to_owned(), tx, true);
            let remote = RemoteQueue {
                broker: self.me.clone(),
                handle: handle.clone(),
                link: LinkState::Down { next_try: None },
                hint: None,
                next_id: 1,
                publishes: BTreeMap::new(),
                consumers: BTreeMap::new(),
                waiting_consumers: HashMap::new(),
                requests: BTreeMap::new(),
                acks: Vec::new(),
                up: Vec::new(),
                retry: RETRY_MIN,
                leader: None,
                forgets: Vec::new(),
            };
            tokio::spawn(remote.run(inbox));
            handle
        }
    }
}

/// A publish not yet confirmed by the leader.
struct Publish {
    enqueuer: EnqueuerId,
    seq: u64,
    message: Message,
    confirm: Option<ConfirmTo>,
}

/// A local consumer of the remote queue.
struct RemoteConsumer {
    tag: Arc<str>,
    channel: u16,
    conn: ConnTx,
    no_ack: bool,
    prefetch: u32,
    priority: i64,
    exclusive: bool,
}

/// A get, purge or status request waiting for its answer.
struct Request {
    since: Instant,
    kind: RequestKind,
}

enum RequestKind {
    Get {
        no_ack: bool,
        reply: oneshot::Sender<Option<GetReply>>,
    },
    Purge(oneshot::Sender<u64>),
    Status(oneshot::Sender<QueueStatus>),
}

impl RequestKind {
    fn up(&self, id: u64) -> LinkUp {
        match self {
            RequestKind::Get { no_ack, .. } => LinkUp::Get {
                id,
                no_ack: *no_ack,
            },
            RequestKind::Purge(_) => LinkUp::Purge { id },
            RequestKind::Status(_) => LinkUp::Status { id },
        }
    }

    /// Answer without the leader (none could be reached in time).
    fn give_up(self) {
        match self {
            RequestKind::Get { reply, .. } => {
                let _ = reply.send(None);
            }
            RequestKind::Purge(reply) => {
                let _ = reply.send(0);
            }
            RequestKind::Status(reply) => {
                let _ = reply.send(QueueStatus::default());
            }
        }
    }
}

type Opened = Result<(u64, LinkTx, LinkRx), Option<u64>>;

enum LinkState {
    /// No link; the next attempt not before `next_try`.
    Down {
        next_try: Option<Instant>,
    },
    Connecting(oneshot::Receiver<Opened>),
    Up {
        node: u64,
        tx: LinkTx,
        rx: LinkRx,
    },
}

struct RemoteQueue {
    broker: Weak<Broker>,
    handle: QueueHandle,
    link: LinkState,
    /// The leader as last heard of (a refusal's hint).
    hint: Option<u64>,
    next_id: u64,
    publishes: BTreeMap<u64, Publish>,
    consumers: BTreeMap<ConsumerKey, RemoteConsumer>,
    /// `basic.consume` waiting for the leader's answer.
    waiting_consumers: HashMap<ConsumerKey, ConsumeReply>,
    requests: BTreeMap<u64, Request>,
    /// Settles and returns made while no link was up.
    acks: Vec<LinkUp>,
    /// The next frame.
    up: Vec<LinkUp>,
    retry: Duration,
    /// The leadership of the queue's group, when this node is a member.
    leader: Option<watch::Receiver<Option<u64>>>,
    /// Closed publishers whose forget waits for their publishes' confirms (a forget
    /// ahead of a publish resent after a failover would let that publish in twice).
    forgets: Vec<EnqueuerId>,
}

/// What one turn of the loop woke up for.
enum Wake {
    Msg(Option<QueueMsg>),
    Frame(Option<Vec<u8>>),
    Opened(Opened),
    /// The group's leader changed.
    Leader,
    /// A retry or a request's wait is due.
    Due,
}

impl RemoteQueue {
    async fn run(mut self, mut inbox: mpsc::UnboundedReceiver<QueueMsg>) {
        // Nothing runs while the queue is idle: no timer unless a retry or request is due.
        loop {
            let due = self.next_due();
            let wake = tokio::select! {
                msg = inbox.recv() => Wake::Msg(msg),
                wake = link_event(&mut self.link) => wake,
                () = leader_changed(&mut self.leader) => Wake::Leader,
                () = sleep_until(due) => Wake::Due,
            };
            match wake {
                Wake::Msg(None) => return,
                Wake::Msg(Some(msg)) => {
                    if !self.msg(msg) {
                        return;
                    }
                    while let Ok(msg) = inbox.try_recv() {
                        if !self.msg(msg) {
                            return;
                        }
                    }
                }
                Wake::Frame(Some(frame)) => self.frame(&frame),
                Wake::Frame(None) => self.lost("the link ended"),
                Wake::Opened(Ok((node, tx, rx))) => self.linked(node, tx, rx),
                Wake::Opened(Err(hint)) => {
                    self.hint = hint.or(self.hint);
                    self.link = LinkState::Down {
                        next_try: Some(Instant::now() + self.retry),
                    };
                    self.retry = (self.retry * 2).min(RETRY_MAX);
                }
                Wake::Leader => self.leader_changed(),
                Wake::Due => self.due(),
            }
            self.flush();
        }
    }

    fn broker(&self) -> Option<Arc<Broker>> {
        self.broker.upgrade()
    }

    /// Queue a message for the leader (kept for a later link when none is up).
    fn send(&mut self, up: LinkUp) {
        self.up.push(up);
    }

    /// Send the frame gathered so far, connecting first if need be.
    /// Frames are cut where their messages reach [`MAX_FRAME_MESSAGE_BYTES`].
    fn flush(&mut self) {
        if self.up.is_empty() {
            return;
        }
        match &self.link {
            LinkState::Up { tx, .. } => {
                let up = std::mem::take(&mut self.up);
                let sent = frames_by_weight(&up, LinkUp::weight)
                    .into_iter()
                    .all(|frame| tx.send(frame).is_ok());
                if !sent {
                    self.lost("the link closed");
                }
            }
            // What needs the leader is kept in the task's state and sent on linking.
            _ => {
                self.up.clear();
                self.connect_if_due();
            }
        }
    }

    /// Handle one client request; false when the task must stop.
    fn msg(&mut self, msg: QueueMsg) -> bool {
        match msg {
            QueueMsg::Publish {
                enqueuer,
                seq,
                message,
                confirm,
            } => {
                let id = self.next_id;
                self.next_id += 1;
                self.send(LinkUp::Publish {
                    id,
                    enqueuer,
                    seq,
                    message: message.clone(),
                });
                self.publishes.insert(
                    id,
                    Publish {
                        enqueuer,
                        seq,
                        message,
                        confirm,
                    },
                );
            }
            QueueMsg::Consume {
                key,
                tag,
                channel,
                conn,
                no_ack,
                prefetch,
                priority,
                exclusive,
                reply,
                ..
            } => {
                let consumer = RemoteConsumer {
                    tag,
                    channel,
                    conn,
                    no_ack,
                    prefetch,
                    priority,
                    exclusive,
                };
                self.send(consume_up(key, &consumer));
                self.consumers.insert(key, consumer);
                self.waiting_consumers.insert(key, reply);
            }
            QueueMsg::Cancel { key } => {
                if self.consumers.remove(&key).is_some() {
                    self.waiting_consumers.remove(&key);
                    self.send(LinkUp::Cancel { consumer: key });
                }
            }
            QueueMsg::Settle { msg_ids } => self.ack(LinkUp::Settle { msg_ids }),
            QueueMsg::Requeue { msg_ids } => self.ack(LinkUp::Requeue { msg_ids }),
            QueueMsg::Discard { msg_ids } => self.ack(LinkUp::Discard { msg_ids }),
            QueueMsg::Get { no_ack, reply } => self.request(RequestKind::Get { no_ack, reply }),
            QueueMsg::Purge { reply } => self.request(RequestKind::Purge(reply)),
            QueueMsg::Status { reply } => self.request(RequestKind::Status(reply)),
            QueueMsg::Forget { enqueuer } => {
                self.forgets.push(enqueuer);
                self.send_forgets();
            }
            QueueMsg::Wake | QueueMsg::Handover { .. } => {}
            QueueMsg::Shutdown { reply } => {
                self.stop();
                let _ = reply.send(0);
                return false;
            }
        }
        true
    }

    fn ack(&mut self, up: LinkUp) {
        if matches!(self.link, LinkState::Up { .. }) {
            self.send(up);
        } else {
            self.acks.push(up);
            self.connect_if_due();
        }
    }

    fn request(&mut self, kind: RequestKind) {
        let id = self.next_id;
        self.next_id += 1;
        self.send(kind.up(id));
        self.requests.insert(
            id,
            Request {
                since: Instant::now(),
                kind,
            },
        );
    }

    /// The queue is gone: its consumers are cancelled; waiting publishers are confirmed,
    /// as RabbitMQ confirms the publishes of a deleted queue (the actor does the same).
    fn stop(&mut self) {
        for (_, c) in std::mem::take(&mut self.consumers) {
            let _ = c.conn.send(ConnEvent::ConsumerCancelled {
                channel: c.channel,
                consumer_tag: c.tag,
            });
        }
        for (_, p) in std::mem::take(&mut self.publishes) {
            if let Some(c) = p.confirm {
                let _ = c.conn.send(ConnEvent::Enqueued {
                    channel: c.channel,
                    publish_seq: c.publish_seq,
                    ok: true,
                });
            }
        }
        for (_, r) in std::mem::take(&mut self.requests) {
            r.kind.give_up();
        }
    }

    /// One frame of the leader.
    fn frame(&mut self, frame: &[u8]) {
        let Some(batch) = decode::<LinkDown>(frame) else {
            self.lost("an undecodable frame");
            return;
        };
        for down in batch {
            self.down(down);
        }
        self.send_forgets();
    }

    /// Send the forget of each closed publisher none of whose publishes waits for a
    /// confirm, while a link is up. One lost with its link leaves an entry in the dedup
    /// table, never a duplicate.
    fn send_forgets(&mut self) {
        if self.forgets.is_empty() || !matches!(self.link, LinkState::Up { .. }) {
            return;
        }
        let pending: std::collections::HashSet<EnqueuerId> =
            self.publishes.values().map(|p| p.enqueuer).collect();
        let (later, now): (Vec<_>, Vec<_>) = std::mem::take(&mut self.forgets)
            .into_iter()
            .partition(|e| pending.contains(e));
        self.forgets = later;
        for enqueuer in now {
            self.send(LinkUp::Forget { enqueuer });
        }
    }

    fn down(&mut self, down: LinkDown) {
        match down {
            LinkDown::Opened | LinkDown::NotHere { .. } => {}
            LinkDown::Confirmed { id, ok } => {
                if let Some(Publish {
                    confirm: Some(c), ..
                }) = self.publishes.remove(&id)
                {
                    let _ = c.conn.send(ConnEvent::Enqueued {
                        channel: c.channel,
                        publish_seq: c.publish_seq,
                        ok,
                    });
                }
            }
            LinkDown::ConsumeOk { consumer, refused } => {
                let reply = self.waiting_consumers.remove(&consumer);
                match refused {
                    None => {
                        if let Some(reply) = reply {
                            let _ = reply.send(Ok(()));
                        }
                    }
                    Some(refusal) => {
                        let Some(c) = self.consumers.remove(&consumer) else {
                            return;
                        };
                        match reply {
                            Some(reply) => {
                                let _ = reply.send(Err(refusal));
                            }
                            // A consumer the new leader refused on re-registration.
                            None => {
                                let _ = c.conn.send(ConnEvent::ConsumerCancelled {
                                    channel: c.channel,
                                    consumer_tag: c.tag,
                                });
                            }
                        }
                    }
                }
            }
            LinkDown::Deliver {
                consumer,
                msg_id,
                message,
                redelivered,
            } => self.deliver(consumer, msg_id, message, redelivered),
            LinkDown::Cancelled { consumer } => {
                self.waiting_consumers.remove(&consumer);
                if let Some(c) = self.consumers.remove(&consumer) {
                    let _ = c.conn.send(ConnEvent::ConsumerCancelled {
                        channel: c.channel,
                        consumer_tag: c.tag,
                    });
                }
            }
            LinkDown::Got { id, got } => {
                if let Some(Request {
                    kind: RequestKind::Get { reply, .. },
                    ..
                }) = self.requests.remove(&id)
                {
                    let got = got.map(|g| GetReply {
                        msg_id: g.msg_id,
                        message: g.message,
                        redelivered: g.redelivered,
                        remaining: g.remaining,
                    });
                    if let Err(Some(got)) = reply.send(got) {
                        // The asker went away: the message is ready again.
                        self.send(LinkUp::Requeue {
                            msg_ids: vec![got.msg_id],
                        });
                    }
                }
            }
            LinkDown::Purged { id, count } => {
                if let Some(Request {
                    kind: RequestKind::Purge(reply),
                    ..
                }) = self.requests.remove(&id)
                {
                    let _ = reply.send(count);
                }
            }
            LinkDown::Status {
                id,
                ready,
                unacked,
                consumers,
            } => {
                if let Some(Request {
                    kind: RequestKind::Status(reply),
                    ..
                }) = self.requests.remove(&id)
                {
                    let _ = reply.send(QueueStatus {
                        ready,
                        unacked,
                        consumers,
                    });
                }
            }
        }
    }

    fn deliver(
        &mut self,
        consumer: ConsumerKey,
        msg_id: MsgId,
        message: Message,
        redelivered: bool,
    ) {
        let Some(c) = self.consumers.get(&consumer) else {
            // Cancelled meanwhile: give it back.
            self.send(LinkUp::Requeue {
                msg_ids: vec![msg_id],
            });
            return;
        };
        let delivery = Delivery {
            channel: c.channel,
            consumer_tag: c.tag.clone(),
            queue: self.handle.clone(),
            msg_id,
            message,
            redelivered,
            needs_ack: !c.no_ack,
        };
        if c.conn.send(ConnEvent::Deliver(delivery)).is_err() && !c.no_ack {
            self.send(LinkUp::Requeue {
                msg_ids: vec![msg_id],
            });
        }
    }

    /// A link is up: send again everything the leader has not answered.
    fn linked(&mut self, node: u64, tx: LinkTx, rx: LinkRx) {
        info!(
            vhost = self.handle.vhost(),
            name = self.handle.name(),
            node,
            "queue linked to its leader"
        );
        self.link = LinkState::Up { node, tx, rx };
        self.hint = Some(node);
        self.retry = RETRY_MIN;
        let mut up = Vec::new();
        for (&key, c) in &self.consumers {
            up.push(consume_up(key, c));
        }
        up.append(&mut self.acks);
        for (&id, p) in &self.publishes {
            up.push(LinkUp::Publish {
                id,
                enqueuer: p.enqueuer,
                seq: p.seq,
                message: p.message.clone(),
            });
        }
        for (&id, r) in &self.requests {
            up.push(r.kind.up(id));
        }
        // Whatever was gathered for this turn is already in the state above.
        self.up = up;
        self.send_forgets();
    }

    /// The link broke: everything unanswered waits for the next one.
    fn lost(&mut self, why: &str) {
        if let LinkState::Up { node, .. } = self.link {
            debug!(
                vhost = self.handle.vhost(),
                name = self.handle.name(),
                node,
                why,
                "queue link lost"
            );
        }
        self.link = LinkState::Down { next_try: None };
        self.up.clear();
        self.connect_if_due();
    }

    /// Whether anything needs the leader.
    fn needs_link(&self) -> bool {
        !self.publishes.is_empty()
            || !self.consumers.is_empty()
            || !self.requests.is_empty()
            || !self.acks.is_empty()
    }

    fn connect_if_due(&mut self) {
        let LinkState::Down { next_try } = self.link else {
            return;
        };
        if !self.needs_link() || next_try.is_some_and(|t| Instant::now() < t) {
            return;
        }
        let Some(broker) = self.broker() else {
            return;
        };
        self.watch_leader(&broker);
        let (tx, rx) = oneshot::channel();
        let first = self.leader_now(&broker).or(self.hint);
        let (vhost, name) = (
            self.handle.vhost().to_owned(),
            self.handle.name().to_owned(),
        );
        tokio::spawn(async move {
            let _ = tx.send(connect(&broker, &vhost, &name, first).await);
        });
        self.link = LinkState::Connecting(rx);
    }

    /// The queue's leader as this node's replica of its group sees it.
    fn leader_now(&self, broker: &Broker) -> Option<u64> {
        let record = broker.queue_record(self.handle.vhost(), self.handle.name())?;
        if record.group_id != 0 && record.members.len() > 1 {
            broker.queue_group_leader(record.group_id)
        } else {
            Some(record.leader_node)
        }
    }

    /// When the next retry or request deadline is, if any.
    fn next_due(&self) -> Option<Instant> {
        let mut due = match self.link {
            LinkState::Down { next_try } if self.needs_link() => next_try,
            _ => None,
        };
        if !matches!(self.link, LinkState::Up { .. }) {
            if let Some(oldest) = self.requests.values().map(|r| r.since).min() {
                let give_up = oldest + REQUEST_WAIT;
                due = Some(due.map_or(give_up, |d| d.min(give_up)));
            }
        }
        due
    }

    /// A retry or a request's wait is due.
    fn due(&mut self) {
        if !matches!(self.link, LinkState::Up { .. }) {
            let now = Instant::now();
            let late: Vec<u64> = self
                .requests
                .iter()
                .filter(|(_, r)| now.duration_since(r.since) >= REQUEST_WAIT)
                .map(|(&id, _)| id)
                .collect();
            for id in late {
                if let Some(r) = self.requests.remove(&id) {
                    r.kind.give_up();
                }
            }
        }
        self.connect_if_due();
    }

    /// A new leader this node knows of: move there before the old link notices.
    fn leader_changed(&mut self) {
        let leader = self.leader.as_mut().and_then(|w| *w.borrow_and_update());
        match (&self.link, leader) {
            (LinkState::Up { node, .. }, Some(leader)) if *node != leader => {
                self.lost("the queue has a new leader");
            }
            // Waiting to retry: the new leader is worth a try at once.
            (LinkState::Down { .. }, Some(_)) => {
                self.link = LinkState::Down { next_try: None };
                self.connect_if_due();
            }
            _ => {}
        }
    }

    /// Follow the leadership of the queue's group, if this node is a member.
    fn watch_leader(&mut self, broker: &Broker) {
        if self.leader.is_some() {
            return;
        }
        let group = broker
            .queue_record(self.handle.vhost(), self.handle.name())
            .filter(|r| r.group_id != 0 && r.members.len() > 1)
            .and_then(|r| broker.raft.group(r.group_id));
        if let Some(group) = group {
            self.leader = Some(group.leader_watch());
        }
    }
}

async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(t) => tokio::time::sleep_until(t.into()).await,
        None => std::future::pending().await,
    }
}

async fn leader_changed(leader: &mut Option<watch::Receiver<Option<u64>>>) {
    match leader {
        Some(w) => {
            if w.changed().await.is_err() {
                // The group stopped here: nothing more to follow.
                *leader = None;
            }
        }
        None => std::future::pending().await,
    }
}

fn consume_up(key: ConsumerKey, c: &RemoteConsumer) -> LinkUp {
    LinkUp::Consume {
        consumer: key,
        no_ack: c.no_ack,
        prefetch: c.prefetch,
        priority: c.priority,
        exclusive: c.exclusive,
    }
}

/// The next frame of an up link, or the outcome of a connection attempt.
async fn link_event(link: &mut LinkState) -> Wake {
    match link {
        LinkState::Up { rx, .. } => Wake::Frame(rx.recv().await),
        LinkState::Connecting(rx) => Wake::Opened(rx.await.unwrap_or(Err(None))),
        LinkState::Down { .. } => std::future::pending().await,
    }
}

/// Find the node running the queue's actor and open a link to it: `first` (the leader as
/// known), then the leaders the refusals name, then every member.
async fn connect(broker: &Arc<Broker>, vhost: &str, name: &str, first: Option<u64>) -> Opened {
    let Some(record) = broker.queue_record(vhost, name) else {
        return Err(None);
    };
    let mut candidates: Vec<u64> = first.into_iter().collect();
    candidates.extend(record.members.iter().copied());
    candidates.push(record.leader_node);
    let mut tried = Vec::new();
    let mut hint = None;
    while let Some(node) = candidates.first().copied() {
        candidates.remove(0);
        if tried.contains(&node) {
            continue;
        }
        tried.push(node);
        match open(broker, node, vhost, name).await {
            Ok(Ok((tx, rx))) => return Ok((node, tx, rx)),
            Ok(Err(Some(leader))) => {
                hint = Some(leader);
                candidates.insert(0, leader);
            }
            Ok(Err(None)) => {}
            Err(e) => debug!(node, error = %e, "could not open a queue link"),
        }
    }
    Err(hint)
}

/// Open a link to `node` and wait for its answer: the link, or the leader it names.
async fn open(
    broker: &Arc<Broker>,
    node: u64,
    vhost: &str,
    name: &str,
) -> Result<Result<(LinkTx, LinkRx), Option<u64>>, String> {
    let attempt = async {
        let (tx, mut rx) = if node == broker.node_id() {
            let (tx, incoming) = mpsc::unbounded_channel();
            (tx, broker.serve_link(incoming))
        } else {
            broker.links.open(node).await?
        };
        let open = LinkUp::Open {
            vhost: vhost.to_owned(),
            name: name.to_owned(),
        };
        tx.send(encode(&[open]))
            .map_err(|_| "link closed at once".to_string())?;
        let answer = rx
            .recv()
            .await
            .and_then(|frame| decode::<LinkDown>(&frame))
            .ok_or_else(|| "link closed before answering".to_string())?;
        match answer.first() {
            Some(LinkDown::Opened) => Ok(Ok((tx, rx))),
            Some(LinkDown::NotHere { leader }) => Ok(Err(*leader)),
            _ => Err("unexpected first answer".to_string()),
        }
    };
    tokio::time::timeout(OPEN_TIMEOUT, attempt)
        .await
        .map_err(|_| format!("no answer within {OPEN_TIMEOUT:?}"))?
}
