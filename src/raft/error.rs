//! The errors of the replication layer: group management (`RaftError`) and writes
//! (`WriteError`, which tells a definite refusal from an unknown outcome).

use super::types::{GroupId, NodeId};

/// A failure to start, stop, snapshot or remove a group.
#[derive(Clone, Debug, thiserror::Error)]
pub enum RaftError {
    /// Reading or writing storage failed.
    #[error("storage error: {0}")]
    Storage(String),
    /// openraft refused or failed (including a stopped or panicked group).
    #[error("raft error: {0}")]
    Raft(String),
    /// The group did not reach the wanted state in time.
    #[error("timed out: {0}")]
    Timeout(String),
    /// The group is not running on this node.
    #[error("group {0} is not running")]
    NotRunning(GroupId),
    /// A peer's RPC could not be decoded.
    #[error("bad request: {0}")]
    BadRequest(String),
}

impl From<std::io::Error> for RaftError {
    fn from(e: std::io::Error) -> Self {
        RaftError::Storage(e.to_string())
    }
}

/// Why a write did not return a response (also on the wire, for forwarded writes).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum WriteError {
    /// Refused before it reached the log: safe to send to `leader` (or retry later).
    #[error("not the leader (leader: {leader:?})")]
    NotLeader {
        /// The leader this node knows, if any.
        leader: Option<NodeId>,
    },
    /// The outcome is unknown (e.g. the entry was discarded at a leader change, or the group
    /// stopped while it was in flight): it may still commit. Retry only with deduplication.
    #[error("outcome unknown: {0}")]
    Unknown(String),
    /// The group is broken or stopped; the write was not submitted or cannot complete.
    #[error("fatal: {0}")]
    Fatal(String),
}
