//! The metadata machine: vhosts, users, permissions, exchanges, queues, bindings,
//! policies, the cluster's nodes and where each durable queue's group lives.
//!
//! Pure and deterministic like the queue machine: `MetaState::apply(meta, command) ->
//! (reply, effects)`. Every node applies the metadata group's log and keeps the state as
//! its local read model, so routing and permission checks never wait on Raft. Replies
//! carry RabbitMQ's reply codes and texts.

mod access;
mod apply;
mod args;
mod command;
pub mod definitions;
pub mod mirroring;
mod password;
mod placement;
mod policy;
mod requests;
mod state;

pub use crate::queue::ApplyMeta;
pub use crate::routing::{Destination, ExchangeKind, RouteResult};
pub use access::{
    expand_topic_pattern, limit, parse_limits, Limits, TopicPermission, USER_LIMITS, VHOST_LIMITS,
};
pub use args::{check_new_queue_args, UNSUPPORTED_QUEUE_ARGS};
pub use command::{MetaCommand, MetaEffect, MetaError, MetaReply};
pub use password::{check_password_hash, hash_password, HashingAlgorithm};
pub use placement::{LeaderLocator, DEFAULT_QUORUM_SIZE};
pub use policy::{Policy, PolicySet, PolicyTarget};
pub use state::{
    ClusterNode, ExchangeRecord, MetaState, OwnerId, Permissions, QueueRecord, QueueType,
    SnapshotError, User, VHost,
};

#[cfg(test)]
mod format_tests;
#[cfg(test)]
mod tests;
