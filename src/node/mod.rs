//! A node: starts and wires the parts together and owns shutdown. The only module that
//! knows all of them.

mod admin;
mod identity;

use admin::NodeAdmin;
use identity::load_or_create_node_id;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::info;

use crate::broker::Broker;
use crate::cluster::{
    ClusterSecret, ClusterServer, GrpcTransport, LivenessDetector, LivenessSettings, Peers,
    TransportSettings,
};
use crate::config::Config;
use crate::raft::RaftRegistry;
use crate::raft::RaftSettings;
use crate::storage::Store;

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open data dir {0}: {1}")]
    Storage(String, String),
    #[error("cannot listen on {0}: {1}")]
    Listen(SocketAddr, std::io::Error),
    #[error("broker start failed: {0}")]
    Broker(String),
    #[error("cannot use the cluster secret file {0}: {1}")]
    Secret(String, String),
}

/// Bind `ip:port` (port 0: any free one); returns the listener and its actual address.
async fn listen(ip: std::net::IpAddr, port: u16) -> Result<(TcpListener, SocketAddr), StartError> {
    let addr = SocketAddr::new(ip, port);
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| StartError::Listen(addr, e))?;
    let bound = listener
        .local_addr()
        .map_err(|e| StartError::Listen(addr, e))?;
    Ok((listener, bound))
}

/// A running node.
pub struct Node {
    pub amqp_addr: SocketAddr,
    /// Where peers and warrenctl reach this node.
    pub cluster_addr: SocketAddr,
    pub broker: Arc<Broker>,
    raft: RaftRegistry,
    cluster: ClusterServer,
    liveness: LivenessDetector,
    shutdown: watch::Sender<bool>,
    server: tokio::task::JoinHandle<()>,
}

impl Node {
    /// Open storage, recover or bootstrap the metadata, then accept AMQP clients.
    pub async fn start(config: Config) -> Result<Node, StartError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|e| {
            StartError::Storage(config.data_dir.display().to_string(), e.to_string())
        })?;
        let node_id = load_or_create_node_id(&config.data_dir).map_err(|e| {
            StartError::Storage(config.data_dir.display().to_string(), e.to_string())
        })?;
        let store = Store::open(config.data_dir.join("db")).map_err(|e| {
            StartError::Storage(config.data_dir.display().to_string(), format!("{e:?}"))
        })?;
        let secret_path = config.secret_path();
        let secret = ClusterSecret::load_or_create(&secret_path)
            .map_err(|e| StartError::Secret(secret_path.display().to_string(), e.to_string()))?;
        let transport_settings = TransportSettings::default();
        let peers = Peers::new(node_id, secret.clone(), transport_settings.clone());
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
        // The cluster port first: once AMQP accepts, warrenctl can reach the node too.
        let (cluster_listener, cluster_addr) = listen(config.bind, config.cluster_port).await?;
        // Listen first so clients can connect while queues recover.
        let (listener, amqp_addr) = listen(config.bind, config.amqp_port).await?;
        let admin = Arc::new(NodeAdmin::new(&config, node_id, amqp_addr, cluster_addr));
        // Serve peers and warrenctl before the groups start: they may need votes.
        let cluster = ClusterServer::start_with_admin(
            cluster_listener,
            raft.clone(),
            &secret,
            &transport_settings,
            Some(admin.clone()),
        )
        .map_err(|e| StartError::Listen(cluster_addr, e))?;
        let liveness =
            LivenessDetector::start(peers.clone(), raft.clone(), LivenessSettings::default());
        admin.set_liveness(liveness.watch());
        let broker = Broker::start(config, raft.clone(), node_id)
            .await
            .map_err(|e| StartError::Broker(e.text))?;
        for (id, node) in broker.cluster_nodes() {
            match node.cluster_addr.parse() {
                Ok(addr) if id != node_id => peers.set_peer(id, addr),
                Ok(_) => {}
                Err(e) => tracing::warn!(node = node.name, error = %e, "bad cluster address"),
            }
        }
        admin.set_broker(broker.clone());
        let (shutdown, shutdown_rx) = watch::channel(false);
        let server = tokio::spawn(crate::frontend::serve(
            listener,
            broker.clone(),
            shutdown_rx,
        ));
        info!(%amqp_addr, %cluster_addr, node_id, "accepting AMQP connections");
        Ok(Node {
            amqp_addr,
            cluster_addr,
            broker,
            raft,
            cluster,
            liveness,
            shutdown,
            server,
        })
    }

    /// Stop accepting, close client connections, stop serving peers, and stop the Raft
    /// groups.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.server.await;
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        self.liveness.stop().await;
        self.cluster.shutdown().await;
        self.raft.shutdown().await;
    }
}
