//! The queue actor's ends of a publisher's or a leader's life: a deleted queue answers
//! everything it had pending, a node that stops leading hands its pending work and
//! consumers to the new leader, and a closed publisher's dedup entry is forgotten once
//! none of its enqueues is pending.

use tokio::sync::oneshot;

use super::{Backend, Cont, QueueActor};
use crate::broker::events::{ConnEvent, QueueMsg};
use crate::broker::QueueHandle;
use crate::queue::{EnqueuerId, QueueCommand};

impl QueueActor {
    /// The queue was deleted: every publish not yet answered is confirmed, as RabbitMQ
    /// confirms the publishes of a queue deleted before it stored them (the queue is gone
    /// either way, and deleting it is no failure of the publish); a pending get finds
    /// nothing, a pending purge removed nothing.
    pub(super) fn answer_pending_at_deletion(&mut self) {
        let mut conts: Vec<Cont> = std::mem::take(&mut self.conts);
        for (_, batch) in std::mem::take(&mut self.proposing) {
            conts.extend(batch);
        }
        self.cmds.clear();
        for cont in conts {
            match cont {
                Cont::Publish(confirm, _) => {
                    if let Some(c) = confirm {
                        let _ = c.conn.send(ConnEvent::Enqueued {
                            channel: c.channel,
                            publish_seq: c.publish_seq,
                            ok: true,
                        });
                    }
                }
                Cont::Get { reply, .. } => {
                    let _ = reply.send(None);
                }
                Cont::Purge(reply) => {
                    let _ = reply.send(0);
                }
                Cont::None | Cont::Deliver(_) => {}
            }
        }
        // What is still in the inbox would be dropped with it: answer it the same way
        // (a sender after this finds the inbox closed, and treats that as a deletion).
        self.inbox.close();
        while let Ok(msg) = self.inbox.try_recv() {
            match msg {
                QueueMsg::Publish {
                    confirm: Some(c), ..
                } => {
                    let _ = c.conn.send(ConnEvent::Enqueued {
                        channel: c.channel,
                        publish_seq: c.publish_seq,
                        ok: true,
                    });
                }
                QueueMsg::Get { reply, .. } => {
                    let _ = reply.send(None);
                }
                QueueMsg::Purge { reply } => {
                    let _ = reply.send(0);
                }
                QueueMsg::Shutdown { reply } => {
                    let _ = reply.send(0);
                }
                _ => {}
            }
        }
    }

    /// Pass pending publishes (in order) and consumers to `to`, and relay from now on.
    /// Publishes of a batch that may have committed are sent again: the queue drops
    /// those it has. Pending deliveries and gets are dropped (the messages stay in the
    /// queue); a pending purge answers 0.
    pub(super) fn hand_over(&mut self, to: QueueHandle) {
        let mut pending: Vec<(QueueCommand, Cont)> = Vec::new();
        for (cmds, conts) in std::mem::take(&mut self.proposing) {
            pending.extend(cmds.into_iter().zip(conts));
        }
        // Results of batches in flight are not wanted any more.
        if let Backend::Raft(_, pipeline) = &mut self.backend {
            *pipeline = None;
        }
        let cmds = std::mem::take(&mut self.cmds);
        let conts = std::mem::take(&mut self.conts);
        pending.extend(cmds.into_iter().zip(conts));
        for (cmd, cont) in pending {
            match (cmd, cont) {
                (
                    QueueCommand::Enqueue {
                        enqueuer,
                        seq,
                        message,
                    }
                    | QueueCommand::EnqueueAssigned {
                        enqueuer,
                        seq,
                        message,
                    }
                    | QueueCommand::EnqueueNext {
                        enqueuer,
                        seq,
                        message,
                        ..
                    },
                    Cont::Publish(confirm, assigned),
                ) => {
                    if let Some(a) = assigned {
                        self.release(a);
                    }
                    to.send(QueueMsg::Publish {
                        enqueuer,
                        seq,
                        message,
                        confirm,
                    });
                }
                (QueueCommand::ForgetEnqueuer { enqueuer }, _) => {
                    to.send(QueueMsg::Forget { enqueuer });
                }
                (_, Cont::Get { reply, .. }) => {
                    let _ = reply.send(None);
                }
                (_, Cont::Purge(reply)) => {
                    let _ = reply.send(0);
                }
                _ => {}
            }
        }
        // Forgets waiting for their publishes follow them to the new leader.
        for enqueuer in std::mem::take(&mut self.forgets) {
            to.send(QueueMsg::Forget { enqueuer });
        }
        let exclusive = self.consumers.exclusive_key();
        for c in self.consumers.drain() {
            let (reply, _rx) = oneshot::channel();
            to.send(QueueMsg::Consume {
                key: c.key,
                tag: c.tag,
                channel: c.channel,
                conn: c.conn,
                no_ack: c.no_ack,
                prefetch: c.prefetch,
                channel_credit: c.channel_credit,
                priority: c.priority,
                exclusive: exclusive == Some(c.key),
                reply,
            });
        }
        self.available.clear();
        self.in_flight.clear();
        self.unassigned = 0;
        self.relay = Some(to);
    }

    /// Propose `ForgetEnqueuer` for each closed publisher none of whose enqueues is
    /// still gathered or in proposal (their answers came back: stored or refused).
    pub(super) fn forget_settled(&mut self) {
        if self.forgets.is_empty() {
            return;
        }
        let pending: std::collections::HashSet<EnqueuerId> = self
            .cmds
            .iter()
            .chain(self.proposing.iter().flat_map(|(cmds, _)| cmds.iter()))
            .filter_map(|cmd| match cmd {
                QueueCommand::Enqueue { enqueuer, .. }
                | QueueCommand::EnqueueAssigned { enqueuer, .. }
                | QueueCommand::EnqueueNext { enqueuer, .. } => Some(*enqueuer),
                _ => None,
            })
            .collect();
        let (later, now): (Vec<_>, Vec<_>) = std::mem::take(&mut self.forgets)
            .into_iter()
            .partition(|e| pending.contains(e));
        self.forgets = later;
        for enqueuer in now {
            self.push(QueueCommand::ForgetEnqueuer { enqueuer }, Cont::None);
        }
    }
}
