//! `Peers`: this node's view of the other nodes: the address of each (updatable at run
//! time, as nodes join later) and one lazily connected gRPC channel per peer, shared by
//! every Raft group.
//!
//! Queue links (forwarded publishes and consumers) share a third connection per peer.
//! Liveness pings get a second, tiny connection of their own: on a shared one they would
//! queue behind a burst of Raft batches (HTTP/2 stream limits, flow control) and a busy
//! peer would look dead, which makes every group it leads campaign and adds to the load.
//!
//! A channel connects on first use and reconnects by itself after a failure; replacing a
//! peer's address replaces its channels (and the batcher feeding it).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tracing::info;

use super::link::PeerLinkClient;
use super::pb::cluster::liveness_client::LivenessClient;
use super::pb::cluster::queue_link_client::QueueLinkClient;
use super::pb::raft::raft_client::RaftClient;
use super::secret::{AttachSecret, ClusterSecret};
use super::server::RESET_STREAMS_ALLOWED;
use super::transport::{spawn_batcher, BatchSender};
use crate::raft::{NodeId, RpcKind};

/// HTTP/2 flow-control windows (bytes) of node-to-node connections, both ways: one
/// stream carries all Raft traffic to a peer, and h2's 64 KiB default would make a
/// large append wait a round trip per 64 KiB.
pub(crate) const STREAM_WINDOW: u32 = 8 << 20;
pub(crate) const CONNECTION_WINDOW: u32 = 16 << 20;

/// A Raft client of one peer, with the secret attached to each call.
pub(crate) type PeerRaftClient = RaftClient<InterceptedService<Channel, AttachSecret>>;
/// A liveness client of one peer, with the secret attached to each call.
pub(crate) type PeerLivenessClient = LivenessClient<InterceptedService<Channel, AttachSecret>>;

/// Timeouts and limits of node-to-node calls.
#[derive(Clone, Debug)]
pub struct TransportSettings {
    /// How long connecting to a peer may take.
    pub connect_timeout: Duration,
    /// Deadline of one Raft RPC (append entries, vote, transfer leader).
    pub rpc_timeout: Duration,
    /// Deadline of shipping one whole snapshot.
    pub snapshot_timeout: Duration,
    /// Most group RPCs carried by one gRPC call.
    pub max_batch_requests: usize,
    /// A batch takes no more requests once its payloads reach this many bytes.
    pub max_batch_bytes: usize,
    /// Largest gRPC message sent or accepted (a snapshot travels in one message).
    pub max_message_bytes: usize,
}

impl Default for TransportSettings {
    fn default() -> Self {
        TransportSettings {
            connect_timeout: Duration::from_millis(500),
            rpc_timeout: Duration::from_secs(2),
            snapshot_timeout: Duration::from_secs(60),
            max_batch_requests: 128,
            max_batch_bytes: 4 << 20,
            max_message_bytes: 256 << 20,
        }
    }
}

/// The slowest rate at which a peer is expected to receive and persist an RPC's payload
/// (loopback or LAN, a follower writing and syncing it to disk).
pub const SLOWEST_BYTES_PER_SEC: f64 = 16.0 * 1024.0 * 1024.0;

impl TransportSettings {
    /// The deadline of one RPC of `kind` carrying `payload_bytes`: the base deadline,
    /// plus the time to move and persist that payload at [`SLOWEST_BYTES_PER_SEC`], so a
    /// big request is given the time it needs instead of timing out on every retry.
    pub fn timeout_for(&self, kind: RpcKind, payload_bytes: usize) -> Duration {
        let base = match kind {
            RpcKind::FullSnapshot => self.snapshot_timeout,
            _ => self.rpc_timeout,
        };
        base + Duration::from_secs_f64(payload_bytes as f64 / SLOWEST_BYTES_PER_SEC)
    }
}

/// The peers of this node. Cheap to clone.
#[derive(Clone)]
pub struct Peers {
    inner: Arc<Shared>,
}

struct Shared {
    me: NodeId,
    secret: ClusterSecret,
    settings: TransportSettings,
    map: RwLock<HashMap<NodeId, Arc<Peer>>>,
}

/// One peer: its address, channel and the batcher of its Raft RPCs.
pub(crate) struct Peer {
    pub(crate) addr: SocketAddr,
    /// The liveness pings' own connection.
    ping_channel: Channel,
    /// The connection of every queue link to this peer (forwarded publishes and
    /// deliveries must not hold up Raft's own traffic).
    link_channel: Channel,
    pub(crate) batches: BatchSender,
}

impl Peers {
    /// No peers yet; `me` is this node's id, `secret` goes with every call.
    pub fn new(me: NodeId, secret: ClusterSecret, settings: TransportSettings) -> Peers {
        Peers {
            inner: Arc::new(Shared {
                me,
                secret,
                settings,
                map: RwLock::default(),
            }),
        }
    }

    /// This node's id.
    pub fn me(&self) -> NodeId {
        self.inner.me
    }

    /// The transport settings.
    pub fn settings(&self) -> &TransportSettings {
        &self.inner.settings
    }

    /// Set (or change) the address of peer `node`. Nothing connects until the first call.
    /// Must be called inside a tokio runtime (the peer's batcher is a task).
    pub fn set_peer(&self, node: NodeId, addr: SocketAddr) {
        if node == self.inner.me {
            return;
        }
        if self.get(node).is_some_and(|p| p.addr == addr) {
            return;
        }
        let peer = Arc::new(self.connect_lazy(node, addr));
        let old = self.write().insert(node, peer);
        info!(node, %addr, replaced = old.is_some(), "peer address set");
    }

    /// Forget peer `node` (its channel closes once in-flight calls end).
    pub fn remove_peer(&self, node: NodeId) {
        if self.write().remove(&node).is_some() {
            info!(node, "peer removed");
        }
    }

    /// Every peer's address, by node id.
    pub fn addresses(&self) -> BTreeMap<NodeId, SocketAddr> {
        let map = self.inner.map.read().unwrap_or_else(|e| e.into_inner());
        map.iter().map(|(&id, p)| (id, p.addr)).collect()
    }

    pub(crate) fn get(&self, node: NodeId) -> Option<Arc<Peer>> {
        let map = self.inner.map.read().unwrap_or_else(|e| e.into_inner());
        map.get(&node).cloned()
    }

    /// A liveness client of peer `node` over its shared channel.
    pub(crate) fn liveness_client(&self, node: NodeId) -> Option<PeerLivenessClient> {
        let peer = self.get(node)?;
        Some(LivenessClient::with_interceptor(
            peer.ping_channel.clone(),
            self.inner.secret.attach(),
        ))
    }

    /// A queue-link client of peer `node`.
    pub(crate) fn link_client(&self, node: NodeId) -> Option<PeerLinkClient> {
        let peer = self.get(node)?;
        let settings = &self.inner.settings;
        Some(
            QueueLinkClient::with_interceptor(
                peer.link_channel.clone(),
                self.inner.secret.attach(),
            )
            .max_decoding_message_size(settings.max_message_bytes)
            .max_encoding_message_size(settings.max_message_bytes),
        )
    }

    fn connect_lazy(&self, node: NodeId, addr: SocketAddr) -> Peer {
        let settings = &self.inner.settings;
        let channel = self.endpoint(addr).connect_lazy();
        let client = RaftClient::with_interceptor(channel, self.inner.secret.attach())
            .max_decoding_message_size(settings.max_message_bytes)
            .max_encoding_message_size(settings.max_message_bytes);
        let batches = spawn_batcher(node, client, settings.clone());
        Peer {
            addr,
            ping_channel: self.endpoint(addr).connect_lazy(),
            link_channel: self.endpoint(addr).connect_lazy(),
            batches,
        }
    }

    fn endpoint(&self, addr: SocketAddr) -> Endpoint {
        Endpoint::from_shared(format!("http://{addr}"))
            .expect("a socket address makes a valid URI")
            .connect_timeout(self.inner.settings.connect_timeout)
            .tcp_nodelay(true)
            .http2_max_concurrent_reset_streams(RESET_STREAMS_ALLOWED)
            .http2_max_local_error_reset_streams(RESET_STREAMS_ALLOWED)
            .initial_stream_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<NodeId, Arc<Peer>>> {
        self.inner.map.write().unwrap_or_else(|e| e.into_inner())
    }
}
