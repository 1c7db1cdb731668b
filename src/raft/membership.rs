//! Who is in a group and who leads it: status queries, membership changes (learners,
//! voters) and explicit elections, on [`GroupHandle`].
//!
//! # openraft 0.10 alpha pitfalls handled here
//! - A membership change straight after `initialize` or an election fails with
//!   `InProgress` until the leader's first entry is applied: retried with backoff.
//! - Right after an election a change can be refused with no leader known
//!   (`ForwardToLeader{leader_id: None}`): retried with backoff.
//! - `LogEntryDiscarded` means the change may or may not commit: returned as
//!   [`WriteError::Unknown`], never retried here.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use openraft::async_runtime::WatchReceiver;
use openraft::error::{ChangeMembershipError, ClientWriteError, RaftError as OpenraftError};
use openraft::{BasicNode, ServerState};

use super::error::{RaftError, WriteError};
use super::handle::{classify, GroupHandle};
use super::types::{GroupId, NodeId, TypeConfig};

/// How long membership changes keep retrying refusals that a retry can cure.
const CHANGE_RETRY_FOR: Duration = Duration::from_secs(10);
const CHANGE_BACKOFF_FIRST: Duration = Duration::from_millis(10);
const CHANGE_BACKOFF_MAX: Duration = Duration::from_millis(500);

/// A group member's role as this node sees itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Leads the group.
    Leader,
    /// A voter following a leader (or waiting for one).
    Follower,
    /// Campaigning.
    Candidate,
    /// Receives the log but does not vote (also a member not yet contacted).
    Learner,
    /// The group's core has stopped.
    Shutdown,
}

/// A snapshot of one group's state on this node (from openraft's metrics).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupStatus {
    /// The group.
    pub group: GroupId,
    /// This node.
    pub node: NodeId,
    /// This node's role in the group.
    pub role: Role,
    /// The current term.
    pub term: u64,
    /// The leader this node knows of.
    pub leader: Option<NodeId>,
    /// Voters of the effective membership (joint configs: the union).
    pub voters: BTreeSet<NodeId>,
    /// Learners of the effective membership.
    pub learners: BTreeSet<NodeId>,
    /// Index of the last entry in this node's log.
    pub last_log_index: Option<u64>,
    /// Index of the last entry this node knows to be committed.
    pub committed: Option<u64>,
    /// Index of the last entry applied here.
    pub last_applied: Option<u64>,
}

impl GroupHandle {
    /// The group's leader as this node knows it (possibly a node that has since died).
    pub fn current_leader(&self) -> Option<NodeId> {
        *self.leader_watch().borrow()
    }

    /// The voters of the group's effective membership as this node knows it.
    pub fn voters(&self) -> BTreeSet<NodeId> {
        self.raft().voter_ids().collect()
    }

    /// Whether this node is a voter of the group (so it may campaign).
    pub fn is_voter(&self) -> bool {
        let me = *self.raft().node_id();
        self.raft().voter_ids().any(|id| id == me)
    }

    /// The group's state on this node.
    pub fn status(&self) -> GroupStatus {
        let m = self.raft().metrics().borrow_watched().clone();
        let membership = m.membership_config.membership();
        GroupStatus {
            group: self.group(),
            node: m.id,
            role: match m.state {
                ServerState::Leader => Role::Leader,
                ServerState::Follower => Role::Follower,
                ServerState::Candidate => Role::Candidate,
                ServerState::Learner => Role::Learner,
                ServerState::Shutdown => Role::Shutdown,
            },
            term: m.current_term,
            leader: m.current_leader,
            voters: membership.voter_ids().collect(),
            learners: membership.learner_ids().collect(),
            last_log_index: m.last_log_index,
            committed: m.local_committed.map(|id| id.index),
            last_applied: m.last_applied.map(|id| id.index),
        }
    }

    /// Start an election here at once (no-op if this node leads). With `pre_vote`, a
    /// pre-vote round first checks that a quorum would grant the vote, so a live leader
    /// that followers still hear from is not disturbed.
    pub async fn trigger_elect(&self, pre_vote: bool) -> Result<(), RaftError> {
        self.raft()
            .trigger()
            .elect(pre_vote)
            .await
            .map_err(|e| RaftError::Raft(e.to_string()))
    }

    /// Send one round of AppendEntries (heartbeat) to every follower now, if this node leads.
    pub async fn trigger_heartbeat(&self) -> Result<(), RaftError> {
        self.raft()
            .trigger()
            .heartbeat()
            .await
            .map_err(|e| RaftError::Raft(e.to_string()))
    }

    /// Ask the leader (this node, if it leads) to hand leadership to voter `to`; returns at
    /// once: watch [`GroupHandle::leader_watch`] for the outcome.
    pub async fn transfer_leader(&self, to: NodeId) -> Result<(), RaftError> {
        self.raft()
            .trigger()
            .transfer_leader(to)
            .await
            .map_err(|e| RaftError::Raft(e.to_string()))
    }

    /// Wait until some leader is known here (this node or a peer); returns it.
    pub async fn wait_for_leader(&self, timeout: Duration) -> Result<NodeId, RaftError> {
        let mut watch = self.leader_watch();
        let found = tokio::time::timeout(timeout, watch.wait_for(Option::is_some)).await;
        match found {
            Ok(Ok(leader)) => Ok(leader.expect("waited for Some")),
            Ok(Err(_)) => Err(RaftError::NotRunning(self.group())),
            Err(_) => Err(RaftError::Timeout(format!(
                "group {}: no leader within {timeout:?}",
                self.group()
            ))),
        }
    }

    /// Add `node` as a learner (call on the leader) and wait until it has caught up with
    /// the log. The node must have the group running (started with `Bootstrap::Join`).
    pub async fn add_learner(&self, node: NodeId) -> Result<(), WriteError> {
        self.retry_change(|| self.raft().add_learner(node, BasicNode::default(), true))
            .await
    }

    /// Make `voters` the group's voters (call on the leader); they must be voters or
    /// learners already. With `retain`, removed voters stay as learners.
    pub async fn change_membership(
        &self,
        voters: BTreeSet<NodeId>,
        retain: bool,
    ) -> Result<(), WriteError> {
        self.retry_change(|| self.raft().change_membership(voters.clone(), retain))
            .await
    }

    /// Run a membership change, retrying the refusals that happen only while a previous
    /// change or an election is settling.
    async fn retry_change<F, Fut, T>(&self, change: F) -> Result<(), WriteError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<
            Output = Result<T, OpenraftError<TypeConfig, ClientWriteError<TypeConfig>>>,
        >,
    {
        let deadline = Instant::now() + CHANGE_RETRY_FOR;
        let mut backoff = CHANGE_BACKOFF_FIRST;
        loop {
            let err = match change().await {
                Ok(_) => return Ok(()),
                Err(e) => e,
            };
            let retryable = matches!(
                &err,
                OpenraftError::APIError(ClientWriteError::ChangeMembershipError(
                    ChangeMembershipError::InProgress(_)
                )) | OpenraftError::APIError(ClientWriteError::ForwardToLeader(
                    openraft::error::ForwardToLeader {
                        leader_id: None,
                        ..
                    }
                ))
            );
            if !retryable || Instant::now() + backoff > deadline {
                return Err(classify(err));
            }
            self.renew_lease().await;
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(CHANGE_BACKOFF_MAX);
        }
    }
}
