//! `NodeAdmin`: this node's answers to warrenctl (`status`, `cluster_status`), from its
//! configuration, the local metadata and the liveness of its peers.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use tokio::sync::watch;

use crate::broker::Broker;
use crate::cluster::{
    AdminHandler, ClusterNodeInfo, ClusterStatus, ListenerInfo, NodeStatus, PeerState, PeerStates,
};
use crate::config::Config;

pub(super) struct NodeAdmin {
    node_name: String,
    node_id: u64,
    data_dir: String,
    started: Instant,
    listeners: Vec<ListenerInfo>,
    /// Set once the broker runs (the cluster port answers before that).
    broker: OnceLock<Arc<Broker>>,
    liveness: OnceLock<watch::Receiver<PeerStates>>,
}

impl NodeAdmin {
    pub(super) fn new(
        config: &Config,
        node_id: u64,
        amqp: SocketAddr,
        cluster: SocketAddr,
    ) -> NodeAdmin {
        let listener = |protocol: &str, addr: SocketAddr, purpose: &str| ListenerInfo {
            protocol: protocol.into(),
            interface: addr.ip().to_string(),
            port: addr.port(),
            purpose: purpose.into(),
        };
        NodeAdmin {
            node_name: config.node_name.clone(),
            node_id,
            data_dir: config.data_dir.display().to_string(),
            started: Instant::now(),
            listeners: vec![
                listener(
                    "clustering",
                    cluster,
                    "inter-node and CLI tool communication",
                ),
                listener("amqp", amqp, "AMQP 0-9-1"),
            ],
            broker: OnceLock::new(),
            liveness: OnceLock::new(),
        }
    }

    pub(super) fn set_broker(&self, broker: Arc<Broker>) {
        let _ = self.broker.set(broker);
    }

    pub(super) fn set_liveness(&self, states: watch::Receiver<PeerStates>) {
        let _ = self.liveness.set(states);
    }

    fn peer_up(&self, id: u64) -> bool {
        self.liveness
            .get()
            .is_some_and(|w| w.borrow().get(&id) == Some(&PeerState::Up))
    }
}

impl AdminHandler for NodeAdmin {
    fn status(&self) -> NodeStatus {
        NodeStatus {
            node_name: self.node_name.clone(),
            node_id: self.node_id,
            pid: std::process::id(),
            version: env!("CARGO_PKG_VERSION").into(),
            uptime_ms: self.started.elapsed().as_millis() as u64,
            app_running: self.broker.get().is_some(),
            listeners: self.listeners.clone(),
            data_dir: self.data_dir.clone(),
            resident_memory_bytes: crate::broker::alarm::resident_bytes(),
        }
    }

    fn cluster_status(&self) -> ClusterStatus {
        let mut nodes: Vec<ClusterNodeInfo> = self
            .broker
            .get()
            .map(|b| b.cluster_nodes())
            .unwrap_or_default()
            .into_iter()
            .map(|(id, n)| ClusterNodeInfo {
                running: id == self.node_id || self.peer_up(id),
                name: n.name,
                id,
                cluster_addr: n.cluster_addr,
            })
            .collect();
        if !nodes.iter().any(|n| n.id == self.node_id) {
            // Not recorded yet (still starting): this node is running all the same.
            nodes.push(ClusterNodeInfo {
                name: self.node_name.clone(),
                id: self.node_id,
                cluster_addr: self
                    .listeners
                    .first()
                    .map(|l| format!("{}:{}", l.interface, l.port))
                    .unwrap_or_default(),
                running: true,
            });
        }
        nodes.sort_by(|a, b| a.name.cmp(&b.name));
        // RabbitMQ names a cluster after its first node unless renamed.
        let cluster_name = nodes
            .iter()
            .min_by_key(|n| n.id)
            .map(|n| n.name.clone())
            .unwrap_or_else(|| self.node_name.clone());
        ClusterStatus {
            cluster_name,
            node_name: self.node_name.clone(),
            nodes,
            listeners: self.listeners.clone(),
        }
    }
}
