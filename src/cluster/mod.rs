//! The only user of tonic: node-to-node gRPC. Raft RPCs of every group travel over one
//! connection per peer ([`Peers`], [`GrpcTransport`]) to the peer's [`ClusterServer`],
//! which hands them to its [`RaftRegistry`](crate::raft::RaftRegistry); every call carries
//! the [`ClusterSecret`]. [`LivenessDetector`] pings peers and, when one goes down, makes
//! this node campaign in the groups that lost their leader.
//!
//! The same server carries warrenctl's [`AdminHandler`] service (`admin.rs`) and the
//! queue links of nodes forwarding their clients' work to a queue's leader ([`LinkHandler`],
//! `link.rs`).
//!
//! Wiring a node: `Peers::new` -> `GrpcTransport::new(peers.clone())` as the registry's
//! transport -> `ClusterServer::start(listener, registry, ...)` ->
//! `LivenessDetector::start(peers, registry, ...)`; `Peers::set_peer` as nodes become known.

mod admin;
mod admin_command;
mod admin_policies;
mod admin_queues;
mod election;
mod link;
mod liveness;
pub mod pb;
mod peers;
mod raft_stream;
mod secret;
mod server;
mod transport;

pub use admin::{
    resolve_node, AdminClient, AdminError, AdminFuture, AdminHandler, ClusterNodeInfo,
    ClusterStatus, JoiningNode, ListenerInfo, NodeStatus, QueueInfo, QueuesFuture,
    DEFAULT_CLUSTER_PORT,
};
pub use admin_command::{CommandFuture, CommandOutcome, CommandRequest};
pub use admin_policies::{PoliciesFuture, PolicyInfo};
pub use admin_queues::{
    ChangesFuture, LeadersFuture, MemberChange, MemberStatus, MembersFuture, NodeLeaders,
};
pub use link::LinkHandler;
pub use liveness::{LivenessDetector, LivenessSettings, PeerState, PeerStates};
pub use peers::{Peers, TransportSettings};
pub use secret::{AttachSecret, CheckSecret, ClusterSecret, SECRET_METADATA_KEY};
pub use server::{ClusterServer, ServerCounts};
pub use transport::GrpcTransport;

#[cfg(test)]
mod tests;
