//! Applies the metadata group's committed entries to the metadata machine, keeps the
//! local read model, and executes the machine's effects on this node.

use std::sync::{Arc, RwLock};

use std::collections::BTreeMap;

use bytes::Bytes;
use tokio::sync::{mpsc, watch};

use super::{BrokerEvent, QueueMap};
use crate::metadata::{ApplyMeta, ClusterNode, MetaCommand, MetaEffect, MetaReply, MetaState};
use crate::raft::{GroupApplier, Request, RequestBody, Response};

/// The metadata machine of this node and what reacts to its effects.
pub(crate) struct MetaApplier {
    pub state: RwLock<MetaState>,
    pub queues: Arc<QueueMap>,
    pub events: mpsc::UnboundedSender<BrokerEvent>,
    /// The cluster's nodes, republished whenever an applied entry or snapshot changes them.
    pub nodes: watch::Sender<BTreeMap<u64, ClusterNode>>,
    /// Moves on whenever users, permissions, topic permissions, limits or vhosts may have
    /// changed (an applied
    /// command that touches them, or a snapshot): connections check access against it.
    pub access_epoch: watch::Sender<u64>,
}

impl MetaApplier {
    fn publish_nodes(&self, state: &MetaState) {
        self.nodes.send_if_modified(|nodes| {
            let changed = nodes != state.nodes();
            if changed {
                nodes.clone_from(state.nodes());
            }
            changed
        });
    }

    fn access_changed(&self) {
        self.access_epoch.send_modify(|epoch| *epoch += 1);
    }

    fn effect(&self, effect: MetaEffect) {
        if let MetaEffect::QueueCreated { vhost, name, .. } = effect {
            let _ = self.events.send(BrokerEvent::StartReplica { vhost, name });
            return;
        }
        if let MetaEffect::QueueMembersChanged {
            vhost,
            name,
            group_id,
            members,
        } = effect
        {
            let _ = self.events.send(BrokerEvent::MembersChanged {
                vhost,
                name,
                group: group_id,
                members,
            });
            return;
        }
        if let MetaEffect::QueueDeleted {
            vhost,
            name,
            group_id,
        } = effect
        {
            // Synchronous so that a reply to the deleting client finds the queue gone.
            self.queues.remove(&vhost, &name);
            if group_id != 0 {
                let _ = self
                    .events
                    .send(BrokerEvent::RemoveGroup { group: group_id });
            }
        }
    }
}

impl GroupApplier for MetaApplier {
    fn apply(&self, index: u64, request: &Request) -> Response {
        let RequestBody::Meta(bytes) = &request.body else {
            tracing::error!(index, "queue command in the metadata group");
            return Response(Bytes::new());
        };
        let reply = match postcard::from_bytes::<MetaCommand>(bytes) {
            Ok(cmd) => {
                let access = cmd.changes_access();
                let meta = ApplyMeta {
                    index,
                    time_ms: request.time_ms,
                };
                let (reply, effects) = {
                    let mut state = self.state.write().expect("metadata lock");
                    let applied = state.apply(meta, cmd);
                    self.publish_nodes(&state);
                    applied
                };
                for effect in effects {
                    self.effect(effect);
                }
                if access {
                    self.access_changed();
                }
                reply
            }
            Err(e) => {
                tracing::error!(index, error = %e, "undecodable metadata command");
                MetaReply::Ok
            }
        };
        Response(
            postcard::to_allocvec(&reply)
                .expect("encode metadata reply")
                .into(),
        )
    }

    fn snapshot(&self) -> Vec<u8> {
        self.state.read().expect("metadata lock").to_snapshot()
    }

    fn restore(&self, snapshot: &[u8]) -> std::io::Result<()> {
        let state = MetaState::from_snapshot(snapshot)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?;
        self.publish_nodes(&state);
        *self.state.write().expect("metadata lock") = state;
        self.access_changed();
        Ok(())
    }
}
