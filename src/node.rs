//! A node: starts and wires the parts together and owns shutdown. The only module that
//! knows all of them.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::info;

use crate::broker::Broker;
use crate::config::Config;
use crate::raft::RaftRegistry;
use crate::storage::Store;

/// Raft id of this node; a single node is always 1 until clustering assigns ids.
const NODE_ID: u64 = 1;

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open data dir {0}: {1}")]
    Storage(String, String),
    #[error("cannot listen on {0}: {1}")]
    Listen(SocketAddr, std::io::Error),
    #[error("broker start failed: {0}")]
    Broker(String),
}

/// A running node.
pub struct Node {
    pub amqp_addr: SocketAddr,
    pub broker: Arc<Broker>,
    raft: RaftRegistry,
    shutdown: watch::Sender<bool>,
    server: tokio::task::JoinHandle<()>,
}

impl Node {
    /// Open storage, recover or bootstrap the metadata, then accept AMQP clients.
    pub async fn start(config: Config) -> Result<Node, StartError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|e| {
            StartError::Storage(config.data_dir.display().to_string(), e.to_string())
        })?;
        let store = Store::open(config.data_dir.join("db")).map_err(|e| {
            StartError::Storage(config.data_dir.display().to_string(), format!("{e:?}"))
        })?;
        let raft = RaftRegistry::new(store, NODE_ID);
        let addr = SocketAddr::new(config.bind, config.amqp_port);
        // Listen first so clients can connect while queues recover.
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| StartError::Listen(addr, e))?;
        let amqp_addr = listener
            .local_addr()
            .map_err(|e| StartError::Listen(addr, e))?;
        let broker = Broker::start(config, raft.clone(), NODE_ID)
            .await
            .map_err(|e| StartError::Broker(e.text))?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let server = tokio::spawn(crate::frontend::serve(
            listener,
            broker.clone(),
            shutdown_rx,
        ));
        info!(%amqp_addr, "accepting AMQP connections");
        Ok(Node {
            amqp_addr,
            broker,
            raft,
            shutdown,
            server,
        })
    }

    /// Stop accepting, close client connections, and stop the Raft groups.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.server.await;
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        self.raft.shutdown().await;
    }
}
