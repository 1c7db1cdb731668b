//! Starting a group that has (or will have) peers: initialized with its voters on exactly
//! one designated node; every other member starts empty and waits for the leader's RPCs.
//!
//! Unlike [`RaftRegistry::start_group`] nothing here waits to lead: the first election
//! needs the other members running, which is the cluster's business. The designated node
//! campaigns once at start; if that fails (peers not up yet), the node's failure detector
//! (`cluster::liveness`) campaigns again for every group it is a voter of and that has no
//! leader, until one is known. [`GroupHandle::wait_for_leader`] waits for that.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use openraft::error::{InitializeError, RaftError as OpenraftError};
use openraft::BasicNode;
use tracing::{info, Instrument};

use super::applier::GroupApplier;
use super::error::RaftError;
use super::handle::GroupHandle;
use super::registry::RaftRegistry;
use super::types::{GroupId, NodeId};

/// How a replicated group comes into being on this node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Bootstrap {
    /// This node is the designated one: if the group is new here, initialize it with these
    /// voters (which should include this node) and campaign. Exactly one node of a new group
    /// may do this.
    Initialize(BTreeSet<NodeId>),
    /// Start empty (or recover) and wait to be contacted by the group's leader, which adds
    /// this node as a learner or voter.
    Join,
}

impl RaftRegistry {
    /// Start (or recover from storage) a group with peers. Returns once the group is running
    /// here and reachable by its peers' RPCs, without waiting for a leader; the returned
    /// handle's [`GroupHandle::wait_for_leader`] does that. If the group is already running,
    /// returns its handle (and `applier` is dropped).
    pub async fn start_replicated_group(
        &self,
        group: GroupId,
        applier: Arc<dyn GroupApplier>,
        bootstrap: Bootstrap,
    ) -> Result<GroupHandle, RaftError> {
        let lock = self.lifecycle_lock(group);
        let _guard = lock.lock().await;
        if let Some(handle) = self.group(group) {
            return Ok(handle);
        }
        let span = tracing::info_span!("raft_group", group);
        async {
            let (raft, handle, gone) = self.build_group(group, applier).await?;
            // Whether this start created the group (so it must hold the first election).
            let result = async {
                let Bootstrap::Initialize(voters) = &bootstrap else {
                    return Ok(false);
                };
                let members: BTreeMap<NodeId, BasicNode> = voters
                    .iter()
                    .map(|&id| (id, BasicNode::default()))
                    .collect();
                match raft.initialize(members).await {
                    Ok(()) => Ok(true),
                    // Recovered from storage (or contacted by a leader already): not new.
                    Err(OpenraftError::APIError(InitializeError::NotAllowed(_))) => Ok(false),
                    Err(e) => Err(RaftError::Raft(e.to_string())),
                }
            }
            .await;
            let created = match result {
                Ok(created) => created,
                Err(e) => {
                    self.abort_start(&handle, gone).await;
                    return Err(e);
                }
            };
            self.insert_running(group, handle.clone(), gone);
            if created {
                // Peers that are not running yet refuse the votes; the detector retries.
                let _ = handle.trigger_elect(false).await;
            }
            info!(group, created, "replicated group started");
            Ok(handle)
        }
        .instrument(span)
        .await
    }
}
