//! A node: starts and wires the parts together and owns shutdown. The only module that
//! knows all of them.

mod access;
mod admin;
mod app;
mod connection_rows;
mod connections;
mod control;
mod declare;
mod definitions;
mod describe;
mod groups;
mod identity;
mod limits;
mod membership;
mod messages;
mod mirroring;
mod objects;
mod peer_counts;
mod policies;
mod process;
mod queue_members;
mod queues;
mod stats;

use admin::NodeAdmin;
use control::Control;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::cluster::{ClusterSecret, ClusterServer, TransportSettings};
use crate::config::Config;
use crate::management::{self, ManagementServer};

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
    #[error("cannot load definitions from {0}")]
    Definitions(String),
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
    /// Where peers and warrenctl reach this node.
    pub cluster_addr: SocketAddr,
    control: Arc<Control>,
    /// The management HTTP API, up while the process runs (it answers 503 while the app
    /// is stopped, as the admin service refuses then).
    http: ManagementServer,
    /// The Prometheus endpoint, when its port could be bound.
    prometheus: Option<ManagementServer>,
    /// Brings mirrored classic queues to their policy's members (`mirroring.rs`).
    mirroring: tokio::task::JoinHandle<()>,
}

impl Node {
    /// Serve the cluster port (peers and warrenctl), then start the app: open storage,
    /// recover or bootstrap the metadata, and accept AMQP clients.
    pub async fn start(config: Config) -> Result<Node, StartError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|e| {
            StartError::Storage(config.data_dir.display().to_string(), e.to_string())
        })?;
        let secret_path = config.secret_path();
        let secret = ClusterSecret::load_or_create(&secret_path)
            .map_err(|e| StartError::Secret(secret_path.display().to_string(), e.to_string()))?;
        // The cluster port first: warrenctl can reach the node while it starts.
        let (cluster_listener, cluster_addr) = listen(config.bind, config.cluster_port).await?;
        let control = Arc::new(Control::new(config, secret.clone(), cluster_addr));
        let cluster = ClusterServer::start_with_admin(
            cluster_listener,
            None,
            &secret,
            &TransportSettings::default(),
            Some(Arc::new(NodeAdmin(control.clone()))),
            Some(Arc::new(NodeAdmin(control.clone()))),
        )
        .map_err(|e| StartError::Listen(cluster_addr, e))?;
        control.set_cluster_server(cluster);
        // Bound before the app starts: a client that finds AMQP up finds HTTP up.
        let http = match Self::start_http(&control).await {
            Ok(http) => http,
            Err(e) => {
                control.shutdown().await;
                return Err(e);
            }
        };
        if let Err(e) = control.start_app().await {
            http.shutdown().await;
            control.shutdown().await;
            return Err(e);
        }
        let prometheus = Self::start_prometheus(&control).await;
        let mirroring = tokio::spawn(mirroring::run(control.clone()));
        Ok(Node {
            cluster_addr,
            control,
            http,
            prometheus,
            mirroring,
        })
    }

    async fn start_http(control: &Arc<Control>) -> Result<ManagementServer, StartError> {
        let (listener, addr) = listen(control.config.bind, control.config.http_port).await?;
        let settings = management::Settings {
            loopback_users: control.config.loopback_users.clone(),
        };
        let http = management::start(listener, Arc::new(NodeAdmin(control.clone())), settings)
            .map_err(|e| StartError::Listen(addr, e))?;
        let _ = control.http_addr.set(http.addr);
        Ok(http)
    }

    /// Serve Prometheus metrics; a port in use is no reason to refuse the node's clients
    /// (several nodes on one machine with the default port), so it is only logged.
    async fn start_prometheus(control: &Arc<Control>) -> Option<ManagementServer> {
        let started = match listen(control.config.bind, control.config.prometheus_port).await {
            Ok((listener, _)) => {
                management::start_prometheus(listener, Arc::new(NodeAdmin(control.clone())))
                    .map_err(|e| e.to_string())
            }
            Err(e) => Err(e.to_string()),
        };
        let server = started
            .map_err(|e| tracing::error!(error = e, "no Prometheus endpoint"))
            .ok()?;
        let _ = control.prometheus_addr.set(server.addr);
        Some(server)
    }

    /// Where the Prometheus endpoint listens, if it does.
    pub fn prometheus_addr(&self) -> Option<SocketAddr> {
        self.prometheus.as_ref().map(|p| p.addr)
    }

    /// Where the management HTTP API listens.
    pub fn http_addr(&self) -> SocketAddr {
        self.http.addr
    }

    /// Where AMQP clients connect, while the app runs.
    pub fn amqp_addr(&self) -> Option<SocketAddr> {
        self.control.view().map(|v| v.amqp_addr)
    }

    /// Stop the app (closing client connections and the Raft groups) and the cluster port.
    pub async fn shutdown(self) {
        self.mirroring.abort();
        if let Some(prometheus) = self.prometheus {
            prometheus.shutdown().await;
        }
        self.http.shutdown().await;
        self.control.shutdown().await;
    }
}
