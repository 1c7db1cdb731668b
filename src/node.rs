//! A node: starts and wires the parts together and owns shutdown. The only module that
//! knows all of them.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::info;

use crate::broker::Broker;
use crate::config::Config;
use crate::raft::RaftRegistry;
use crate::storage::Store;

/// File in the data dir holding this node's Raft id.
const NODE_ID_FILE: &str = "node_id";
/// The id of a data dir made before node ids were stored (single nodes were always 1).
const LEGACY_NODE_ID: u64 = 1;

/// This node's Raft id: read from the data dir, or chosen at random (never 0) and stored
/// on first start. Data dirs from before ids were stored keep id 1.
fn load_or_create_node_id(data_dir: &Path) -> std::io::Result<u64> {
    let file = data_dir.join(NODE_ID_FILE);
    match std::fs::read_to_string(&file) {
        Ok(text) => text.trim().parse().map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: {e}", file.display()),
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let id = if data_dir.join("db").exists() {
                LEGACY_NODE_ID
            } else {
                // Below 2^53 so that JSON consumers read it exactly.
                rand::random_range(2..(1u64 << 53))
            };
            let tmp = data_dir.join(format!("{NODE_ID_FILE}.tmp"));
            std::fs::write(&tmp, format!("{id}\n"))?;
            std::fs::File::open(&tmp)?.sync_all()?;
            std::fs::rename(&tmp, &file)?;
            Ok(id)
        }
        Err(e) => Err(e),
    }
}

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
        let node_id = load_or_create_node_id(&config.data_dir).map_err(|e| {
            StartError::Storage(config.data_dir.display().to_string(), e.to_string())
        })?;
        let store = Store::open(config.data_dir.join("db")).map_err(|e| {
            StartError::Storage(config.data_dir.display().to_string(), format!("{e:?}"))
        })?;
        let raft = RaftRegistry::new(store, node_id);
        let addr = SocketAddr::new(config.bind, config.amqp_port);
        // Listen first so clients can connect while queues recover.
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| StartError::Listen(addr, e))?;
        let amqp_addr = listener
            .local_addr()
            .map_err(|e| StartError::Listen(addr, e))?;
        let broker = Broker::start(config, raft.clone(), node_id)
            .await
            .map_err(|e| StartError::Broker(e.text))?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let server = tokio::spawn(crate::frontend::serve(
            listener,
            broker.clone(),
            shutdown_rx,
        ));
        info!(%amqp_addr, node_id, "accepting AMQP connections");
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_id_is_created_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let id = load_or_create_node_id(dir.path()).unwrap();
        assert!(id >= 2);
        assert_eq!(load_or_create_node_id(dir.path()).unwrap(), id);
    }

    #[test]
    fn a_data_dir_from_before_ids_keeps_id_1() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("db")).unwrap();
        assert_eq!(load_or_create_node_id(dir.path()).unwrap(), LEGACY_NODE_ID);
    }
}
