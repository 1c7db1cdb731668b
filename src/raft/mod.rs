//! The only user of openraft: the metadata group and one group per durable queue.
//!
//! Every group uses the same openraft type config (`types.rs`) and the node's one
//! [`Store`](crate::storage::Store): its log and vote go through `log_store.rs`, its
//! committed commands through `state_machine.rs` to the node's [`GroupApplier`], and its
//! snapshots are kept in storage and taken every [`RaftSettings::snapshot_every`] applied
//! entries, after which the log is purged up to them.
//!
//! [`RaftRegistry`] owns the groups of a node; [`GroupHandle`] is how the node writes to
//! one. Commands and replies are opaque bytes ([`RequestBody`], [`Response`]), so this
//! module does not depend on the machines.
//!
//! # Idle groups cost nothing
//! openraft's tick is off for every group (`settings.rs`): no heartbeat, election or lease
//! timer runs per group. A single-member group campaigns once when started and wins at
//! once. A group with peers ([`RaftRegistry::start_replicated_group`]) campaigns when the
//! node's failure detector (`cluster::LivenessDetector`, per node, not per group) tells it
//! its leader is gone ([`GroupHandle::trigger_elect`]). Followers need no heartbeat to
//! learn commits: openraft sends an entry-less AppendEntries when the commit index moves.
//!
//! # Durability
//! An append is acknowledged to openraft (its `IOFlushed` callback) only by the storage
//! group-commit flusher after the flush covering it; a vote is saved before returning; a
//! snapshot is on disk before openraft may purge the log behind it.
//!
//! # Network
//! Groups reach peers through a [`GroupTransport`] carrying opaque group-tagged RPCs
//! (`network.rs`); `cluster/` supplies the gRPC one and feeds incoming RPCs back through
//! [`RaftRegistry::handle_rpc`] (`rpc.rs`). A node without peers uses [`NoTransport`].
//! Membership changes and leadership queries are on [`GroupHandle`] (`membership.rs`).

mod alive;
mod append_split;
mod applier;
mod error;
mod forward;
mod handle;
mod log_cache;
mod log_store;
mod membership;
mod network;
mod pipeline;
mod registry;
mod replicated;
mod rpc;
mod settings;
mod state_machine;
mod types;

pub use applier::GroupApplier;
pub use error::{RaftError, WriteError};
pub use handle::GroupHandle;
pub use membership::{GroupStatus, Role};
pub use network::{GroupTransport, NoTransport, RpcKind, TransportError, TransportFuture};
pub use pipeline::{PipelineResult, WritePipeline};
pub use registry::RaftRegistry;
pub use replicated::Bootstrap;
pub use settings::RaftSettings;
pub use types::{GroupId, NodeId, Request, RequestBody, Response, META_GROUP};

#[cfg(test)]
mod bench;
#[cfg(test)]
mod crash_tests;
#[cfg(test)]
pub(crate) mod tests;
