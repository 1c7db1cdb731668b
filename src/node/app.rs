//! `App`: what `stop_app` stops and `start_app` starts: the node's storage, its Raft
//! groups and their peers, failure detection, the broker and the AMQP listener. The
//! process, its cluster port and warrenctl's service outlive it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::info;

use super::{listen, StartError};
use crate::broker::{Broker, MetaStart};
use crate::cluster::{
    ClusterSecret, GrpcTransport, LivenessDetector, LivenessSettings, PeerStates, Peers,
    TransportSettings,
};
use crate::config::Config;
use crate::metadata::ClusterNode;
use crate::raft::{RaftRegistry, RaftSettings};
use crate::storage::Store;

/// A running app: its Raft side, the broker, and the AMQP listener.
pub(super) struct App {
    pub core: Starting,
    pub amqp_addr: SocketAddr,
    pub broker: Arc<Broker>,
    shutdown: watch::Sender<bool>,
    server: JoinHandle<()>,
}

/// An app whose Raft side runs (so peers reach its groups) while its broker starts.
pub(super) struct Starting {
    pub node_id: u64,
    pub raft: RaftRegistry,
    pub peers: Peers,
    liveness: LivenessDetector,
    peer_sync: JoinHandle<()>,
    nodes: watch::Sender<BTreeMap<u64, ClusterNode>>,
}

impl Starting {
    /// Open storage and start the Raft side: the registry over gRPC to the peers, and
    /// failure detection. Groups start later, with the broker.
    pub(super) fn open(
        config: &Config,
        node_id: u64,
        secret: &ClusterSecret,
    ) -> Result<Starting, StartError> {
        let store = Store::open(config.data_dir.join("db")).map_err(|e| {
            StartError::Storage(config.data_dir.display().to_string(), format!("{e:?}"))
        })?;
        let peers = Peers::new(node_id, secret.clone(), TransportSettings::default());
        let raft_settings = RaftSettings {
            snapshot_every: config.snapshot_every,
            ..RaftSettings::default()
        };
        let raft = RaftRegistry::with_settings(
            store,
            node_id,
            raft_settings,
            Arc::new(GrpcTransport::new(peers.clone())),
        );
        let liveness =
            LivenessDetector::start(peers.clone(), raft.clone(), LivenessSettings::default());
        let (nodes, nodes_rx) = watch::channel(BTreeMap::new());
        let peer_sync = tokio::spawn(sync_peers(peers.clone(), nodes_rx));
        Ok(Starting {
            node_id,
            raft,
            peers,
            liveness,
            peer_sync,
            nodes,
        })
    }

    /// Start the broker (which brings up the metadata group as `how` says), import the
    /// `definitions` file if one is given (as RabbitMQ's `load_definitions`, before its
    /// listeners: no client sees the node without them), then accept AMQP clients on
    /// `amqp_port`.
    pub(super) async fn run(
        self,
        config: &Config,
        how: MetaStart,
        amqp_port: u16,
        definitions: Option<&Path>,
    ) -> Result<App, (StartError, Starting)> {
        // Listen first so clients can connect while queues recover.
        let (listener, amqp_addr) = match listen(config.bind, amqp_port).await {
            Ok(bound) => bound,
            Err(e) => return Err((e, self)),
        };
        let broker = match Broker::start(
            config.clone(),
            self.raft.clone(),
            self.node_id,
            how,
            self.nodes.clone(),
            Arc::new(self.peers.clone()),
        )
        .await
        {
            Ok(broker) => broker,
            Err(e) => return Err((StartError::Broker(e.text), self)),
        };
        if let Some(path) = definitions {
            if let Err(e) = super::definitions::load(&broker, path).await {
                return Err((StartError::Definitions(e), self));
            }
        }
        let (shutdown, shutdown_rx) = watch::channel(false);
        let server = tokio::spawn(crate::frontend::serve(
            listener,
            broker.clone(),
            shutdown_rx,
        ));
        info!(%amqp_addr, node_id = self.node_id, "accepting AMQP connections");
        Ok(App {
            core: self,
            amqp_addr,
            broker,
            shutdown,
            server,
        })
    }

    /// The liveness of this node's peers.
    pub(super) fn peer_states(&self) -> watch::Receiver<PeerStates> {
        self.liveness.watch()
    }

    /// Stop what [`Starting::open`] started (closing storage once the last group is gone).
    pub(super) async fn stop(self) {
        self.peer_sync.abort();
        self.liveness.stop().await;
        self.raft.shutdown().await;
    }
}

impl App {
    /// Stop accepting, close client connections, then stop the Raft side.
    pub(super) async fn stop(self) {
        let _ = self.shutdown.send(true);
        let _ = self.server.await;
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let node_id = self.core.node_id;
        self.core.stop().await;
        info!(node_id, "app stopped");
    }
}

/// Keep `peers` at the addresses the metadata lists, as nodes join, leave or move.
async fn sync_peers(peers: Peers, mut nodes: watch::Receiver<BTreeMap<u64, ClusterNode>>) {
    loop {
        let wanted: BTreeMap<u64, SocketAddr> = nodes
            .borrow_and_update()
            .iter()
            .filter(|(&id, _)| id != peers.me())
            .filter_map(|(&id, n)| match n.cluster_addr.parse() {
                Ok(addr) => Some((id, addr)),
                Err(e) => {
                    tracing::warn!(node = n.name, error = %e, "bad cluster address");
                    None
                }
            })
            .collect();
        for id in peers.addresses().keys() {
            if !wanted.contains_key(id) {
                peers.remove_peer(*id);
            }
        }
        for (id, addr) in wanted {
            peers.set_peer(id, addr);
        }
        if nodes.changed().await.is_err() {
            return;
        }
    }
}
