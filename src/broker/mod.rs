//! The node-local runtime that executes machine effects: queue actors with their
//! leader-side consumer registry, the metadata read model, and the operations the
//! frontend calls (declare, bind, route, ...), each checked against the read model and
//! proposed to the metadata Raft group. Clients of a queue whose actor runs on another
//! node reach it over a queue link (`remote_queue.rs` here, `link_serve.rs` there).

pub mod alarm;
mod conn_limits;
mod conn_registry;
mod consumers;
mod events;
mod link;
mod link_serve;
mod meta_applier;
mod operations;
mod proposal;
mod queue_actor;
mod queue_applier;
mod queue_handle;
mod queue_map;
mod remote_queue;
mod replica;
mod start;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc;

pub use conn_limits::PeerCounts;
pub use conn_registry::{
    ChannelInfo, ConnControl, ConnectionInfo, ConnectionRegistry, ConsumerInfo, LimitCounts, Pid,
    RegisteredConn, Registration,
};
pub use consumers::ChannelCredit;
pub use events::{ConfirmTo, ConnEvent, ConnTx, Delivery, GetReply, QueueMsg, QueueStatus};
pub use link::{LinkConnector, LinkRx, LinkTx, NoLinks};
pub use operations::Routed;
pub use queue_handle::QueueHandle;
pub use start::MetaStart;

use crate::amqp::ReplyCode;
use crate::config::Config;
use crate::raft::{GroupHandle, RaftRegistry};
use meta_applier::MetaApplier;
use queue_map::QueueMap;

/// Identifies a consumer on this node (not the client's consumer tag).
pub type ConsumerKey = u64;

/// An operation refused with RabbitMQ's reply code and full text (`NOT_FOUND - ...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerError {
    pub code: ReplyCode,
    pub text: String,
}

impl BrokerError {
    pub fn new(code: ReplyCode, text: impl std::fmt::Display) -> Self {
        BrokerError {
            code,
            text: format!("{} - {}", code.name(), text),
        }
    }
}

/// A refusal of the metadata machine: its text already carries the `NAME - ` prefix.
impl From<crate::metadata::MetaError> for BrokerError {
    fn from(e: crate::metadata::MetaError) -> Self {
        BrokerError {
            code: e.code,
            text: e.text,
        }
    }
}

impl From<BrokerError> for crate::frontend::AmqpError {
    fn from(e: BrokerError) -> Self {
        crate::frontend::AmqpError::prefixed(e.code, e.text)
    }
}

pub type BrokerResult<T> = Result<T, BrokerError>;

/// Work for the broker's background task.
#[derive(Debug)]
pub enum BrokerEvent {
    /// An auto-delete queue lost its last consumer.
    AutoDelete { vhost: String, name: String },
    /// A replicated queue was declared: run this node's replica if it is a member.
    StartReplica { vhost: String, name: String },
    /// A queue's Raft group must go (the queue was deleted).
    RemoveGroup { group: u64 },
    /// A replicated queue's members changed: run this node's replica if it is one now,
    /// stop it (and drop its data) if it no longer is.
    MembersChanged {
        vhost: String,
        name: String,
        group: u64,
        members: Vec<u64>,
    },
}

/// The runtime of one node.
pub struct Broker {
    /// This broker, for the tasks it starts (links, remote queues).
    me: std::sync::Weak<Broker>,
    /// Opens links to the actors of queues other nodes run.
    links: Arc<dyn LinkConnector>,
    config: Config,
    node_id: u64,
    raft: RaftRegistry,
    meta: Arc<MetaApplier>,
    meta_group: GroupHandle,
    queues: Arc<QueueMap>,
    /// Serialises queue actor start-up so one queue never gets two actors.
    starting: tokio::sync::Mutex<()>,
    events: mpsc::UnboundedSender<BrokerEvent>,
    next_id: AtomicU64,
    alarms: tokio::sync::watch::Receiver<alarm::Alarms>,
    /// This node's open client connections (the `list_connections` family).
    connections: Arc<ConnectionRegistry>,
    /// The other nodes' connection counts, for vhost and user limits (`conn_limits.rs`).
    peer_counts: std::sync::OnceLock<Arc<dyn PeerCounts>>,
    /// Message statistics of this node, its queues and exchanges.
    stats: Arc<crate::stats::Stats>,
}

impl Broker {
    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn node_id(&self) -> u64 {
        self.node_id
    }

    pub fn new_connection_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// This node's open client connections.
    pub fn connections(&self) -> &Arc<ConnectionRegistry> {
        &self.connections
    }

    /// The resource alarms on now (memory, disk), and their changes.
    pub fn alarms(&self) -> tokio::sync::watch::Receiver<alarm::Alarms> {
        self.alarms.clone()
    }

    /// The cluster's nodes as the local metadata lists them, by Raft node id.
    pub fn cluster_nodes(&self) -> std::collections::BTreeMap<u64, crate::metadata::ClusterNode> {
        self.read_meta().nodes().clone()
    }

    /// Message statistics of this node, its queues and exchanges.
    pub fn stats(&self) -> &Arc<crate::stats::Stats> {
        &self.stats
    }

    pub fn new_consumer_key(&self) -> ConsumerKey {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }
}
