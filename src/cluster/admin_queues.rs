//! The rabbitmq-queues part of the admin service: a quorum queue's members
//! (`add_member`, `delete_member`, `grow`, `shrink`), their Raft state (`quorum_status`)
//! and where the leaders are (`rebalance`), as domain types with their pb conversions and
//! the client calls. The server side dispatches to [`AdminHandler`](super::AdminHandler).

use super::admin::{refused, AdminClient, AdminError};
use super::pb::admin;

/// One queue's outcome in `grow` / `shrink`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberChange {
    pub vhost: String,
    pub queue: String,
    /// Members after the change.
    pub size: u32,
    /// "ok", or why not.
    pub result: String,
}

/// One member's Raft state, as `quorum_status` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberStatus {
    pub node: String,
    /// "leader", "follower", "candidate", "learner", or "down".
    pub raft_state: String,
    pub log_index: u64,
    pub commit_index: u64,
    pub applied_index: u64,
    pub term: u64,
}

impl MemberStatus {
    /// A member that does not answer (or has no replica running).
    pub fn down(node: String) -> MemberStatus {
        MemberStatus {
            node,
            raft_state: "down".into(),
            log_index: 0,
            commit_index: 0,
            applied_index: 0,
            term: 0,
        }
    }
}

/// How many quorum queues a node leads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeLeaders {
    pub node: String,
    pub quorum_leaders: u32,
}

/// The outcome of `grow` / `shrink`.
pub type ChangesFuture<'a> = futures::future::BoxFuture<'a, Result<Vec<MemberChange>, String>>;
/// The outcome of `quorum_status`.
pub type MembersFuture<'a> = futures::future::BoxFuture<'a, Result<Vec<MemberStatus>, String>>;
/// The outcome of `rebalance`.
pub type LeadersFuture<'a> = futures::future::BoxFuture<'a, Result<Vec<NodeLeaders>, String>>;

pub(super) fn change_to_pb(c: MemberChange) -> admin::MemberChange {
    admin::MemberChange {
        vhost: c.vhost,
        queue: c.queue,
        size: c.size,
        result: c.result,
    }
}

fn change_from_pb(c: admin::MemberChange) -> MemberChange {
    MemberChange {
        vhost: c.vhost,
        queue: c.queue,
        size: c.size,
        result: c.result,
    }
}

pub(super) fn member_to_pb(m: MemberStatus) -> admin::MemberStatus {
    admin::MemberStatus {
        node: m.node,
        raft_state: m.raft_state,
        log_index: m.log_index,
        commit_index: m.commit_index,
        applied_index: m.applied_index,
        term: m.term,
    }
}

fn member_from_pb(m: admin::MemberStatus) -> MemberStatus {
    MemberStatus {
        node: m.node,
        raft_state: m.raft_state,
        log_index: m.log_index,
        commit_index: m.commit_index,
        applied_index: m.applied_index,
        term: m.term,
    }
}

pub(super) fn leaders_to_pb(l: NodeLeaders) -> admin::NodeLeaders {
    admin::NodeLeaders {
        node: l.node,
        quorum_leaders: l.quorum_leaders,
    }
}

fn leaders_from_pb(l: admin::NodeLeaders) -> NodeLeaders {
    NodeLeaders {
        node: l.node,
        quorum_leaders: l.quorum_leaders,
    }
}

impl AdminClient {
    /// `add_member` (`add`) or `delete_member` of `node` for one quorum queue.
    pub async fn change_member(
        &mut self,
        vhost: &str,
        queue: &str,
        node: &str,
        add: bool,
    ) -> Result<(), AdminError> {
        let request = admin::ChangeMemberRequest {
            vhost: vhost.into(),
            queue: queue.into(),
            node: node.into(),
            add,
        };
        self.inner.change_member(request).await.map_err(refused)?;
        Ok(())
    }

    /// `grow` (`strategy` "all" or "even") or `shrink` (`grow = false`).
    pub async fn grow_shrink(
        &mut self,
        node: &str,
        grow: bool,
        strategy: &str,
    ) -> Result<Vec<MemberChange>, AdminError> {
        let request = admin::GrowShrinkRequest {
            node: node.into(),
            grow,
            strategy: strategy.into(),
        };
        let reply = self.inner.grow_shrink(request).await.map_err(refused)?;
        Ok(reply
            .into_inner()
            .changes
            .into_iter()
            .map(change_from_pb)
            .collect())
    }

    pub async fn quorum_status(
        &mut self,
        vhost: &str,
        queue: &str,
        local_only: bool,
    ) -> Result<Vec<MemberStatus>, AdminError> {
        let request = admin::QuorumStatusRequest {
            vhost: vhost.into(),
            queue: queue.into(),
            local_only,
        };
        let reply = self.inner.quorum_status(request).await.map_err(refused)?;
        Ok(reply
            .into_inner()
            .members
            .into_iter()
            .map(member_from_pb)
            .collect())
    }

    pub async fn rebalance(&mut self) -> Result<Vec<NodeLeaders>, AdminError> {
        let reply = self
            .inner
            .rebalance(admin::Empty {})
            .await
            .map_err(refused)?;
        Ok(reply
            .into_inner()
            .nodes
            .into_iter()
            .map(leaders_from_pb)
            .collect())
    }

    /// Node to node: have the queue's leader (the called node) hand over to node `to`.
    pub async fn transfer_queue_leader(
        &mut self,
        vhost: &str,
        queue: &str,
        to: u64,
    ) -> Result<(), AdminError> {
        let request = admin::TransferQueueLeaderRequest {
            vhost: vhost.into(),
            queue: queue.into(),
            to,
        };
        self.inner
            .transfer_queue_leader(request)
            .await
            .map_err(refused)?;
        Ok(())
    }
}
