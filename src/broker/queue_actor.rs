//! One queue's actor: owns the leader-side consumer registry and turns client requests
//! into queue-machine commands, batched into proposals.
//!
//! Durable queues propose batches to their Raft group through a `raft::WritePipeline`
//! ([`PIPELINE_DEPTH`] at once, kept in log order, retried in order) and act on the
//! replies in log order; transient queues apply the same machine in memory. A message
//! is marked delivered (and, for durable queues, that mark committed) before a consumer
//! sees it, so after a crash it comes back with `redelivered = true`.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn, Instrument};

use super::consumers::{ChannelCredit, Consumer, Registry};
use super::events::{ConfirmTo, ConnEvent, Delivery, GetReply, QueueMsg, QueueStatus};
use super::proposal::{take_proposal, MAX_PROPOSAL_BYTES};
use super::{BrokerEvent, ConsumerKey, QueueHandle};
use crate::amqp::ReplyCode;
use crate::queue::{ApplyMeta, EnqueuerId, MsgId, QueueCommand, QueueMachine, QueueReply};
use crate::raft::{GroupHandle, PipelineResult, Request, RequestBody, WriteError, WritePipeline};
use crate::stats::QueueStats;

/// Most messages taken from the inbox before a batch is proposed.
const INBOX_BATCH: usize = 512;

/// Most batches of a durable queue in its Raft log at once. Measured (bench.sh and
/// bench-cluster.sh, 2 cores): 2 was slower than 1 on one node (p99 1.3-1.4 vs 1.0 ms)
/// and no faster on three (replication itself is pipelined, `raft/network.rs`): while a
/// batch commits the next one grows, and bigger batches cost less per message.
pub(crate) const PIPELINE_DEPTH: usize = 1;

/// Where the machine's commands go.
pub(crate) enum Backend {
    /// Transient queue: applied here, in memory.
    Local { next_index: u64 },
    /// Durable queue: proposed to its Raft group (through `pipeline` once started).
    Raft(GroupHandle, Option<WritePipeline>),
}

/// What to do with a command's reply.
enum Cont {
    None,
    /// Confirm the publish; deliver it to the consumer it was assigned to before it
    /// committed (credit charged), if any.
    Publish(Option<ConfirmTo>, Option<InFlight>),
    Deliver(Vec<Assignment>),
    Get {
        reply: oneshot::Sender<Option<GetReply>>,
        msg_id: MsgId,
        redelivered: bool,
    },
    Purge(oneshot::Sender<u64>),
}

/// A message picked for a consumer; `redelivered` is what the machine knew before this
/// delivery marked it.
#[derive(Clone, Copy)]
struct Assignment {
    consumer: ConsumerKey,
    msg_id: MsgId,
    redelivered: bool,
}

/// A delivery not yet settled.
struct InFlight {
    /// `None` for `basic.get`.
    consumer: Option<ConsumerKey>,
    credit: Option<Arc<ChannelCredit>>,
}

pub(crate) struct QueueActor {
    handle: QueueHandle,
    machine: Arc<Mutex<QueueMachine>>,
    backend: Backend,
    inbox: mpsc::UnboundedReceiver<QueueMsg>,
    broker: mpsc::UnboundedSender<BrokerEvent>,
    auto_delete: bool,
    had_consumer: bool,
    consumers: Registry,
    available: BTreeSet<MsgId>,
    in_flight: HashMap<MsgId, InFlight>,
    cmds: Vec<QueueCommand>,
    conts: Vec<Cont>,
    /// The batches being proposed, oldest first; their results arrive in this order.
    proposing: VecDeque<(Vec<QueueCommand>, Vec<Cont>)>,
    done_tx: mpsc::UnboundedSender<PipelineResult>,
    done_rx: mpsc::UnboundedReceiver<PipelineResult>,
    /// Set once this node no longer leads the queue: every request goes there.
    relay: Option<QueueHandle>,
    /// Enqueues proposed (or about to be) without a consumer assigned: while there are
    /// any, later publishes are not assigned either, so deliveries keep publish order.
    unassigned: usize,
    /// Closed publishers to forget once none of their enqueues is pending: a forget
    /// proposed with (or before a retry of) its own enqueues would let them in twice.
    forgets: Vec<EnqueuerId>,
    /// The queue's message statistics (which also count for the node).
    stats: Arc<QueueStats>,
}

impl QueueActor {
    pub(crate) fn new(
        handle: QueueHandle,
        machine: Arc<Mutex<QueueMachine>>,
        backend: Backend,
        inbox: mpsc::UnboundedReceiver<QueueMsg>,
        broker: mpsc::UnboundedSender<BrokerEvent>,
        auto_delete: bool,
    ) -> Self {
        let available = machine
            .lock()
            .expect("queue machine lock")
            .iter()
            .map(|(id, _)| id)
            .collect();
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        QueueActor {
            handle,
            machine,
            backend,
            inbox,
            broker,
            auto_delete,
            had_consumer: false,
            consumers: Registry::default(),
            available,
            in_flight: HashMap::new(),
            cmds: Vec::new(),
            conts: Vec::new(),
            proposing: VecDeque::new(),
            done_tx,
            done_rx,
            relay: None,
            unassigned: 0,
            forgets: Vec::new(),
            // Counted nowhere until `counting_into`.
            stats: crate::stats::Stats::default().queue("", "", false),
        }
    }

    /// Count this queue's messages into `stats`.
    pub(crate) fn counting_into(mut self, stats: Arc<QueueStats>) -> Self {
        self.stats = stats;
        self
    }

    pub(crate) async fn run(self) {
        let span = tracing::debug_span!(
            "queue",
            vhost = self.handle.vhost(),
            name = self.handle.name()
        );
        self.serve().instrument(span).await
    }

    async fn serve(mut self) {
        loop {
            tokio::select! {
                msg = self.inbox.recv() => {
                    let Some(msg) = msg else { break };
                    if self.handle_msg(msg) { return; }
                    for _ in 0..INBOX_BATCH {
                        match self.inbox.try_recv() {
                            Ok(msg) => if self.handle_msg(msg) { return; },
                            Err(_) => break,
                        }
                    }
                }
                Some(result) = self.done_rx.recv() => self.pipeline_done(result),
            }
            self.settle_round();
            let depth = (self.available.len(), self.in_flight.len());
            self.stats.depth(depth.0, depth.1, self.consumers.len());
        }
    }

    /// Hand ready messages out and propose what that and the inbox produced. A transient
    /// queue applies its batch inside `flush`, which can make messages ready (a publish)
    /// or free credit (a no-ack settle): dispatch again until nothing more happens, so a
    /// message never waits for the next inbox message to be delivered.
    fn settle_round(&mut self) {
        loop {
            self.dispatch();
            if !self.flush() {
                return;
            }
        }
    }

    /// Returns true when the actor must stop.
    fn handle_msg(&mut self, msg: QueueMsg) -> bool {
        if let Some(to) = &self.relay {
            let stop = matches!(msg, QueueMsg::Shutdown { .. });
            if !matches!(msg, QueueMsg::Wake | QueueMsg::Handover { .. }) {
                to.send(msg);
            }
            return stop;
        }
        match msg {
            QueueMsg::Handover { to } => self.hand_over(to),
            QueueMsg::Publish {
                enqueuer,
                seq,
                message,
                confirm,
            } => {
                self.stats.published();
                let assigned = self.pre_assign();
                if assigned.is_none() {
                    self.unassigned += 1;
                }
                let cmd = QueueCommand::EnqueueNext {
                    enqueuer,
                    seq,
                    message,
                    assigned: assigned.is_some(),
                };
                self.push(cmd, Cont::Publish(confirm, assigned));
            }
            QueueMsg::Consume {
                key,
                tag,
                channel,
                conn,
                no_ack,
                prefetch,
                channel_credit,
                priority,
                exclusive,
                reply,
            } => {
                if self.consumers.has_exclusive() || (exclusive && !self.consumers.is_empty()) {
                    let _ = reply.send(Err((
                        ReplyCode::AccessRefused,
                        format!(
                            "ACCESS_REFUSED - queue '{}' in vhost '{}' in exclusive use",
                            self.handle.name(),
                            self.handle.vhost()
                        ),
                    )));
                    return false;
                }
                self.consumers.add(
                    Consumer {
                        key,
                        tag,
                        channel,
                        conn,
                        no_ack,
                        prefetch,
                        channel_credit,
                        priority,
                        outstanding: 0,
                    },
                    exclusive,
                );
                self.had_consumer = true;
                let _ = reply.send(Ok(()));
            }
            QueueMsg::Cancel { key } => {
                self.consumers.remove(key);
                if self.auto_delete && self.had_consumer && self.consumers.is_empty() {
                    let _ = self.broker.send(BrokerEvent::AutoDelete {
                        vhost: self.handle.vhost().to_owned(),
                        name: self.handle.name().to_owned(),
                    });
                }
            }
            QueueMsg::Settle { msg_ids } => {
                let ids = self.take_in_flight(msg_ids);
                self.stats.acked(ids.len() as u64);
                if !ids.is_empty() {
                    self.push(QueueCommand::Settle { msg_ids: ids }, Cont::None);
                }
            }
            QueueMsg::Requeue { msg_ids } => {
                for id in self.take_in_flight(msg_ids) {
                    self.available.insert(id);
                }
            }
            QueueMsg::Discard { msg_ids } => {
                let ids = self.take_in_flight(msg_ids);
                if !ids.is_empty() {
                    self.push(QueueCommand::Discard { msg_ids: ids }, Cont::None);
                }
            }
            QueueMsg::Get { no_ack, reply } => self.get(no_ack, reply),
            QueueMsg::Purge { reply } => {
                let ids: Vec<MsgId> = std::mem::take(&mut self.available).into_iter().collect();
                self.push(QueueCommand::Discard { msg_ids: ids }, Cont::Purge(reply));
            }
            QueueMsg::Status { reply } => {
                let _ = reply.send(QueueStatus {
                    ready: self.available.len() as u64,
                    unacked: self.in_flight.len() as u64,
                    consumers: self.consumers.len() as u32,
                });
            }
            QueueMsg::Wake => {}
            QueueMsg::Forget { enqueuer } => {
                self.forgets.push(enqueuer);
                self.forget_settled();
            }
            QueueMsg::Shutdown { reply } => {
                for c in self.consumers.drain() {
                    let _ = c.conn.send(ConnEvent::ConsumerCancelled {
                        channel: c.channel,
                        consumer_tag: c.tag,
                    });
                }
                let _ = reply.send(self.available.len() as u64);
                self.answer_pending_at_deletion();
                return true;
            }
        }
        false
    }

    /// For a publish arriving now: the consumer to hand it to as soon as it commits,
    /// charged its credit, when one has credit and no earlier message is waiting (ready,
    /// or proposed without a consumer). This saves the `MarkDelivered` round a ready
    /// message needs, so a consumer sees a message one commit after it was published.
    fn pre_assign(&mut self) -> Option<InFlight> {
        if !matches!(self.backend, Backend::Raft(..))
            || self.unassigned > 0
            || !self.available.is_empty()
        {
            return None;
        }
        let key = self.consumers.next_with_credit()?;
        if self.consumers.get_mut(key)?.no_ack {
            return None;
        }
        let credit = self.consumers.charge(key);
        Some(InFlight {
            consumer: Some(key),
            credit,
        })
    }

    /// Give back the credit a delivery (or an assignment) held.
    fn release(&mut self, f: InFlight) {
        if let Some(key) = f.consumer {
            self.consumers.refund(key);
        }
        if let Some(credit) = f.credit {
            credit.release();
        }
    }

    fn push(&mut self, cmd: QueueCommand, cont: Cont) {
        // Acks of one batch settle in one command (each client ack would otherwise be a
        // command of its own, serialized, replicated and applied on every member).
        if let (
            QueueCommand::Settle { msg_ids },
            Cont::None,
            Some(QueueCommand::Settle { msg_ids: last }),
            Some(Cont::None),
        ) = (&cmd, &cont, self.cmds.last_mut(), self.conts.last())
        {
            last.extend_from_slice(msg_ids);
            return;
        }
        self.cmds.push(cmd);
        self.conts.push(cont);
    }

    /// Remove deliveries from the in-flight set, giving their credit back.
    fn take_in_flight(&mut self, msg_ids: Vec<MsgId>) -> Vec<MsgId> {
        let mut taken = Vec::with_capacity(msg_ids.len());
        for id in msg_ids {
            if let Some(f) = self.in_flight.remove(&id) {
                self.release(f);
                taken.push(id);
            }
        }
        taken
    }

    fn get(&mut self, no_ack: bool, reply: oneshot::Sender<Option<GetReply>>) {
        let Some(msg_id) = self.available.pop_first() else {
            self.stats.got(no_ack, None);
            let _ = reply.send(None);
            return;
        };
        let redelivered = self.was_delivered(msg_id);
        self.stats.got(no_ack, Some(redelivered));
        if no_ack {
            let got = self.get_reply(msg_id, redelivered);
            self.push(
                QueueCommand::Settle {
                    msg_ids: vec![msg_id],
                },
                Cont::None,
            );
            let _ = reply.send(got);
            return;
        }
        self.in_flight.insert(
            msg_id,
            InFlight {
                consumer: None,
                credit: None,
            },
        );
        self.push(
            QueueCommand::MarkDelivered {
                msg_ids: vec![msg_id],
            },
            Cont::Get {
                reply,
                msg_id,
                redelivered,
            },
        );
    }

    fn was_delivered(&self, msg_id: MsgId) -> bool {
        let machine = self.machine.lock().expect("queue machine lock");
        machine.get(msg_id).is_some_and(|m| m.delivered)
    }

    fn get_reply(&self, msg_id: MsgId, redelivered: bool) -> Option<GetReply> {
        let machine = self.machine.lock().expect("queue machine lock");
        let stored = machine.get(msg_id)?;
        Some(GetReply {
            msg_id,
            message: stored.message.clone(),
            redelivered,
            remaining: self.available.len() as u32,
        })
    }

    /// Hand ready messages to consumers with credit.
    fn dispatch(&mut self) {
        if self.consumers.is_empty() || self.available.is_empty() {
            return;
        }
        let mut to_mark = Vec::new();
        let mut now = Vec::new();
        let mut settle = Vec::new();
        let machine = self.machine.clone();
        let machine = machine.lock().expect("queue machine lock");
        while let Some(&msg_id) = self.available.first() {
            let Some(key) = self.consumers.next_with_credit() else {
                break;
            };
            self.available.pop_first();
            let credit = self.consumers.charge(key);
            let no_ack = credit.is_none() && self.consumers.get_mut(key).is_some_and(|c| c.no_ack);
            let assignment = Assignment {
                consumer: key,
                msg_id,
                redelivered: machine.get(msg_id).is_some_and(|m| m.delivered),
            };
            if no_ack {
                settle.push(msg_id);
                now.push(assignment);
                continue;
            }
            self.in_flight.insert(
                msg_id,
                InFlight {
                    consumer: Some(key),
                    credit,
                },
            );
            to_mark.push(assignment);
        }
        drop(machine);
        self.send_deliveries(&now);
        if !settle.is_empty() {
            self.push(QueueCommand::Settle { msg_ids: settle }, Cont::None);
        }
        if !to_mark.is_empty() {
            let ids = to_mark.iter().map(|a| a.msg_id).collect();
            self.push(
                QueueCommand::MarkDelivered { msg_ids: ids },
                Cont::Deliver(to_mark),
            );
        }
    }

    fn send_deliveries(&mut self, assignments: &[Assignment]) {
        if assignments.is_empty() {
            return;
        }
        let mut back = Vec::new();
        let mut gone = Vec::new();
        // Deliveries to consumers that ack, to ones that do not, redelivered ones.
        let mut counts = [0u64; 3];
        {
            let machine = self.machine.lock().expect("queue machine lock");
            for &Assignment {
                consumer: key,
                msg_id,
                redelivered,
            } in assignments
            {
                let consumer = self.consumers.get_mut(key);
                let (Some(consumer), Some(stored)) = (consumer, machine.get(msg_id)) else {
                    back.push(msg_id);
                    continue;
                };
                let delivery = Delivery {
                    channel: consumer.channel,
                    consumer_tag: consumer.tag.clone(),
                    queue: self.handle.clone(),
                    msg_id,
                    message: stored.message.clone(),
                    redelivered,
                    needs_ack: !consumer.no_ack,
                };
                if consumer.conn.send(ConnEvent::Deliver(delivery)).is_err() {
                    back.push(msg_id);
                    gone.push(key);
                    continue;
                }
                counts[usize::from(consumer.no_ack)] += 1;
                counts[2] += u64::from(redelivered);
            }
        }
        self.stats.delivered(counts[0], counts[1], counts[2]);
        // Its connection ended: stop dispatching to it (else the loop in `settle_round`
        // would hand the returned message to it again and again).
        for key in gone {
            self.consumers.remove(key);
        }
        // Consumer gone before its delivery went out: the message is ready again.
        for id in self.take_in_flight(back) {
            self.available.insert(id);
        }
    }

    /// Propose (or apply) the commands gathered so far, unless the pipeline is full.
    /// Returns true when a batch was applied here and now (transient queues), so its
    /// results may have made messages ready.
    fn flush(&mut self) -> bool {
        if self.cmds.is_empty() || self.proposing.len() >= PIPELINE_DEPTH {
            return false;
        }
        // A batch is capped by bytes (a replicated one is one log entry); the rest goes
        // in the next round (for a transient queue, the next turn of `settle_round`).
        let (cmds, conts) = take_proposal(&mut self.cmds, &mut self.conts, MAX_PROPOSAL_BYTES);
        let time_ms = now_ms();
        match &mut self.backend {
            Backend::Local { next_index } => {
                let replies = {
                    let mut machine = self.machine.lock().expect("queue machine lock");
                    cmds.iter()
                        .map(|cmd| {
                            *next_index += 1;
                            let meta = ApplyMeta {
                                index: *next_index,
                                time_ms,
                            };
                            machine.apply(meta, cmd.clone()).0
                        })
                        .collect()
                };
                self.proposing.push_back((cmds, conts));
                self.batch_done(Ok(replies));
                true
            }
            Backend::Raft(group, pipeline) => {
                let body = postcard::to_allocvec(&cmds).expect("encode queue commands");
                let pipeline = pipeline
                    .get_or_insert_with(|| group.pipeline(PIPELINE_DEPTH, self.done_tx.clone()));
                self.stats.proposed(self.proposing.is_empty());
                pipeline.submit(Request {
                    time_ms,
                    body: RequestBody::Queue(body.into()),
                });
                self.proposing.push_back((cmds, conts));
                false
            }
        }
    }

    /// The reply of the oldest batch in flight (decoded by [`Self::batch_done`]).
    fn pipeline_done(&mut self, result: PipelineResult) {
        self.stats.committed(self.proposing.len() > 1);
        let replies = result.and_then(|resp| {
            postcard::from_bytes::<Vec<QueueReply>>(&resp.0)
                .map_err(|e| WriteError::Fatal(format!("decode queue replies: {e}")))
        });
        self.batch_done(replies);
    }

    fn batch_done(&mut self, result: Result<Vec<QueueReply>, WriteError>) {
        let Some((cmds, conts)) = self.proposing.pop_front() else {
            return;
        };
        match result {
            Ok(replies) => {
                if replies.len() != conts.len() {
                    // A batch the machine could not apply whole (it answers each command
                    // it applied): the rest are refused, never left unanswered.
                    tracing::error!(
                        commands = conts.len(),
                        replies = replies.len(),
                        "a queue batch was not applied whole: refusing the rest"
                    );
                }
                let mut conts = conts.into_iter();
                for (cont, reply) in conts.by_ref().zip(replies) {
                    self.complete(cont, reply);
                }
                for cont in conts {
                    self.fail(cont);
                }
            }
            Err(e) => {
                warn!(error = ?e, commands = cmds.len(), "queue batch failed");
                for cont in conts {
                    self.fail(cont);
                }
            }
        }
        self.forget_settled();
    }

    fn complete(&mut self, cont: Cont, reply: QueueReply) {
        match cont {
            Cont::None => {}
            Cont::Publish(confirm, assigned) => {
                if assigned.is_none() {
                    self.unassigned -= 1;
                }
                // A skipped seq: an earlier publish of this enqueuer was lost or overtaken
                // on its way; this one was not stored and is nacked.
                let stored = !matches!(reply, QueueReply::OutOfOrder { .. });
                if let QueueReply::OutOfOrder { expected } = reply {
                    warn!(expected, "an enqueue skipped a seq: refused");
                }
                match (reply, assigned) {
                    (QueueReply::Enqueued { msg_id }, Some(a)) => {
                        let fresh = a.consumer.map(|consumer| Assignment {
                            consumer,
                            msg_id,
                            redelivered: false,
                        });
                        self.in_flight.insert(msg_id, a);
                        self.send_deliveries(fresh.as_slice());
                    }
                    (QueueReply::Enqueued { msg_id }, None) => {
                        self.available.insert(msg_id);
                    }
                    (_, Some(a)) => self.release(a),
                    (_, None) => {}
                }
                if let Some(c) = confirm {
                    let _ = c.conn.send(ConnEvent::Enqueued {
                        channel: c.channel,
                        publish_seq: c.publish_seq,
                        ok: stored,
                    });
                }
            }
            Cont::Deliver(assignments) => self.send_deliveries(&assignments),
            Cont::Get {
                reply,
                msg_id,
                redelivered,
            } => {
                let got = self.get_reply(msg_id, redelivered);
                if got.is_none() {
                    self.in_flight.remove(&msg_id);
                }
                if let Err(Some(got)) = reply.send(got) {
                    // The asker went away: the message is ready again.
                    self.take_in_flight(vec![got.msg_id]);
                    self.available.insert(got.msg_id);
                }
            }
            Cont::Purge(tx) => {
                let count = match reply {
                    QueueReply::Removed { count } => count,
                    _ => 0,
                };
                let _ = tx.send(count);
            }
        }
    }

    fn fail(&mut self, cont: Cont) {
        match cont {
            Cont::None => {}
            Cont::Publish(confirm, assigned) => {
                match assigned {
                    Some(a) => self.release(a),
                    None => self.unassigned -= 1,
                }
                if let Some(c) = confirm {
                    let _ = c.conn.send(ConnEvent::Enqueued {
                        channel: c.channel,
                        publish_seq: c.publish_seq,
                        ok: false,
                    });
                }
            }
            Cont::Deliver(assignments) => {
                let ids = assignments.into_iter().map(|a| a.msg_id).collect();
                for id in self.take_in_flight(ids) {
                    self.available.insert(id);
                }
            }
            Cont::Get { reply, msg_id, .. } => {
                self.take_in_flight(vec![msg_id]);
                self.available.insert(msg_id);
                let _ = reply.send(None);
            }
            Cont::Purge(reply) => {
                let _ = reply.send(0);
            }
        }
        debug!("continuation failed");
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[path = "queue_actor_lifecycle.rs"]
mod lifecycle;

#[cfg(test)]
#[path = "queue_actor_tests.rs"]
mod tests;
