//! `Control`: the node's lifecycle as warrenctl drives it: `start_app`, `stop_app`,
//! `reset` and `join_cluster`. One command at a time; the process, its cluster port and
//! the admin service stay up throughout.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tracing::{info, warn};

use super::app::{App, Starting};
use super::identity::{load_or_create_node_id, remove_node_id};
use super::StartError;
use crate::broker::{Broker, MetaStart};
use crate::cluster::{
    resolve_node, AdminClient, ClusterSecret, ClusterServer, JoiningNode, PeerState, PeerStates,
    Peers,
};
use crate::config::Config;
use crate::metadata::ClusterNode;

/// How long a node being added to a cluster may take to catch up and start.
const JOIN_TIMEOUT: Duration = Duration::from_secs(120);
/// How long admin calls to other nodes may take to connect.
const PEER_ADMIN_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a node waits for a peer's answer to a slow admin call (membership changes).
const SLOW_PEER_ADMIN_TIMEOUT: Duration = Duration::from_secs(120);

/// What status calls read of a running app.
#[derive(Clone)]
pub(super) struct AppView {
    pub node_id: u64,
    pub amqp_addr: SocketAddr,
    pub broker: Arc<Broker>,
    pub peer_states: watch::Receiver<PeerStates>,
    pub peers: Peers,
}

impl AppView {
    /// Whether node `id` is this node or a peer the failure detector sees up.
    pub fn is_live(&self, id: u64) -> bool {
        id == self.node_id || self.peer_states.borrow().get(&id) == Some(&PeerState::Up)
    }

    /// The recorded name of node `id` (`node ID` when it is not recorded).
    pub fn node_name(nodes: &BTreeMap<u64, ClusterNode>, id: u64) -> String {
        nodes
            .get(&id)
            .map_or_else(|| format!("node {id}"), |n| n.name.clone())
    }
}

/// The node's lifecycle.
pub(crate) struct Control {
    pub(super) config: Config,
    pub(super) secret: ClusterSecret,
    pub(super) cluster_addr: SocketAddr,
    pub(super) started: Instant,
    /// Where the management HTTP API listens, once bound.
    pub(super) http_addr: std::sync::OnceLock<SocketAddr>,
    /// Where the Prometheus endpoint listens, once bound.
    pub(super) prometheus_addr: std::sync::OnceLock<SocketAddr>,
    /// The AMQP port: the configured one, or the one first bound when that is 0, so a
    /// restarted app listens where clients found it.
    amqp_port: AtomicU16,
    /// Serialises lifecycle commands; `Some` while the app runs.
    app: tokio::sync::Mutex<Option<App>>,
    /// The running app, for status calls that cannot wait for `app`'s lock.
    view: RwLock<Option<AppView>>,
    /// Set once the cluster server runs; it serves the running app's Raft groups.
    cluster: Mutex<Option<ClusterServer>>,
    /// The cluster this node last saw while running (for `reset` to leave it).
    last_nodes: Mutex<Vec<ClusterNode>>,
}

impl Control {
    pub(super) fn new(config: Config, secret: ClusterSecret, cluster_addr: SocketAddr) -> Self {
        Control {
            amqp_port: AtomicU16::new(config.amqp_port),
            config,
            secret,
            cluster_addr,
            started: Instant::now(),
            http_addr: std::sync::OnceLock::new(),
            prometheus_addr: std::sync::OnceLock::new(),
            app: tokio::sync::Mutex::new(None),
            view: RwLock::new(None),
            cluster: Mutex::new(None),
            last_nodes: Mutex::new(Vec::new()),
        }
    }

    pub(super) fn set_cluster_server(&self, server: ClusterServer) {
        *self.cluster.lock().expect("cluster server lock") = Some(server);
    }

    pub(super) fn take_cluster_server(&self) -> Option<ClusterServer> {
        self.cluster.lock().expect("cluster server lock").take()
    }

    fn serve_raft(&self, raft: Option<crate::raft::RaftRegistry>) {
        if let Some(server) = self.cluster.lock().expect("cluster server lock").as_ref() {
            server.set_registry(raft);
        }
    }

    /// The running app, if any.
    pub(super) fn view(&self) -> Option<AppView> {
        self.view.read().expect("view lock").clone()
    }

    /// The address this node gives its peers.
    pub(super) fn advertised_cluster_addr(&self) -> String {
        SocketAddr::new(self.config.bind, self.cluster_addr.port()).to_string()
    }

    /// Start the app (no-op if it runs). The `load-definitions` file is imported each time
    /// it starts, as RabbitMQ imports its `load_definitions`: one that cannot be imported
    /// leaves the app stopped.
    pub(crate) async fn start_app(&self) -> Result<(), StartError> {
        let mut app = self.app.lock().await;
        if app.is_none() {
            *app = Some(self.start_locked(MetaStart::Recover).await?);
        }
        Ok(())
    }

    async fn start_locked(&self, how: MetaStart) -> Result<App, StartError> {
        let node_id = load_or_create_node_id(&self.config.data_dir).map_err(|e| {
            StartError::Storage(self.config.data_dir.display().to_string(), e.to_string())
        })?;
        let starting = Starting::open(&self.config, node_id, &self.secret)?;
        self.serve_raft(Some(starting.raft.clone()));
        let port = self.amqp_port.load(Ordering::SeqCst);
        let definitions = self.config.load_definitions.as_deref();
        match starting.run(&self.config, how, port, definitions).await {
            Ok(app) => {
                self.running(&app);
                Ok(app)
            }
            Err((e, starting)) => {
                tracing::error!(error = %e, "the app did not start");
                self.serve_raft(None);
                starting.stop().await;
                Err(e)
            }
        }
    }

    fn running(&self, app: &App) {
        self.amqp_port.store(app.amqp_addr.port(), Ordering::SeqCst);
        let view = AppView {
            node_id: app.core.node_id,
            amqp_addr: app.amqp_addr,
            broker: app.broker.clone(),
            peer_states: app.core.peer_states(),
            peers: app.core.peers.clone(),
        };
        super::peer_counts::ClusterCounts::install(&view, &self.secret);
        *self.view.write().expect("view lock") = Some(view);
    }

    /// Stop the app (no-op if it is stopped).
    pub(crate) async fn stop_app(&self) {
        let mut app = self.app.lock().await;
        if let Some(running) = app.take() {
            self.stop_locked(running).await;
        }
    }

    async fn stop_locked(&self, app: App) {
        let nodes = app.broker.cluster_nodes().into_values().collect();
        *self.last_nodes.lock().expect("last nodes lock") = nodes;
        *self.view.write().expect("view lock") = None;
        self.serve_raft(None);
        app.stop().await;
    }

    /// Wipe this stopped node's data; it starts next as a fresh node with a new id. If it
    /// was in a cluster, the cluster is asked to forget it first (as RabbitMQ's reset).
    pub(crate) async fn reset(&self) -> Result<(), String> {
        let app = self.app.lock().await;
        if app.is_some() {
            return Err(app_running("reset"));
        }
        self.leave_cluster().await;
        self.wipe()
    }

    /// Ask the other nodes this node last saw to forget it; best effort.
    async fn leave_cluster(&self) {
        let nodes = std::mem::take(&mut *self.last_nodes.lock().expect("last nodes lock"));
        let me = &self.config.node_name;
        if !nodes.iter().any(|n| &n.name == me) {
            return;
        }
        for node in nodes.iter().filter(|n| &n.name != me) {
            match self.admin_of(node).await {
                Ok(mut client) => match client.forget_cluster_node(me).await {
                    Ok(()) => {
                        info!(via = node.name, "left the cluster");
                        return;
                    }
                    Err(e) => warn!(via = node.name, error = %e, "could not leave the cluster"),
                },
                Err(e) => warn!(via = node.name, error = %e, "could not leave the cluster"),
            }
        }
    }

    /// A client of another node's admin service, at its recorded cluster address.
    pub(super) async fn admin_of(&self, node: &ClusterNode) -> Result<AdminClient, String> {
        self.admin_with_timeout(node, PEER_ADMIN_TIMEOUT).await
    }

    /// Clients of every other recorded node that answers now, whatever the failure
    /// detector thinks of it just now (a node wrongly called down by a slow ping still
    /// answers; a dead one fails at once, connection refused, and is left out).
    pub(super) async fn peer_admins(&self, view: &AppView) -> Vec<AdminClient> {
        let mut clients = Vec::new();
        for (id, node) in view.broker.cluster_nodes() {
            if id == view.node_id {
                continue;
            }
            if let Ok(client) = self.admin_of(&node).await {
                clients.push(client);
            }
        }
        clients
    }

    /// [`Control::admin_of`] for calls that may take long (a new member catching up).
    pub(super) async fn admin_of_slow(&self, node: &ClusterNode) -> Result<AdminClient, String> {
        self.admin_with_timeout(node, SLOW_PEER_ADMIN_TIMEOUT).await
    }

    /// [`Control::admin_of_slow`] of the recorded node `id`.
    pub(super) async fn admin_of_id_slow(
        &self,
        view: &AppView,
        id: u64,
    ) -> Result<AdminClient, String> {
        let node = view
            .broker
            .cluster_nodes()
            .remove(&id)
            .ok_or_else(|| format!("node id {id} is not recorded"))?;
        self.admin_of_slow(&node).await
    }

    async fn admin_with_timeout(
        &self,
        node: &ClusterNode,
        timeout: Duration,
    ) -> Result<AdminClient, String> {
        let addr = node
            .cluster_addr
            .parse()
            .map_err(|e| format!("bad address of {}: {e}", node.name))?;
        AdminClient::connect(addr, &self.secret, timeout)
            .await
            .map_err(|e| format!("cannot reach {}: {e}", node.name))
    }

    fn wipe(&self) -> Result<(), String> {
        let dir = &self.config.data_dir;
        let db = dir.join("db");
        if db.exists() {
            std::fs::remove_dir_all(&db)
                .map_err(|e| format!("cannot remove {}: {e}", db.display()))?;
        }
        remove_node_id(dir).map_err(|e| format!("cannot reset {}: {e}", dir.display()))?;
        info!(data_dir = %dir.display(), "node reset");
        Ok(())
    }

    /// Make this stopped node a member of the cluster `target` is in: reset it, start it
    /// empty, and have the cluster add it. Its app runs afterwards.
    pub(crate) async fn join_cluster(&self, target: &str) -> Result<(), String> {
        let mut app = self.app.lock().await;
        if app.is_some() {
            return Err(app_running("join_cluster"));
        }
        let addr = resolve_node(target)?;
        if addr == self.cluster_addr {
            return Err(format!("cannot join node {target}: it is this node"));
        }
        let mut client = AdminClient::connect(addr, &self.secret, PEER_ADMIN_TIMEOUT)
            .await
            .map_err(|e| format!("cannot reach node {target}: {e}"))?;
        let status = client
            .status()
            .await
            .map_err(|e| format!("node {target}: {e}"))?;
        if !status.app_running {
            return Err(format!(
                "node {} (at {target}) is not running its app; start it first",
                status.node_name
            ));
        }
        self.last_nodes.lock().expect("last nodes lock").clear();
        self.wipe()?;
        let node_id = load_or_create_node_id(&self.config.data_dir)
            .map_err(|e| format!("cannot create a node id: {e}"))?;
        let starting = Starting::open(&self.config, node_id, &self.secret)
            .map_err(|e| format!("cannot start: {e}"))?;
        let raft = starting.raft.clone();
        self.serve_raft(Some(raft.clone()));
        let port = self.amqp_port.load(Ordering::SeqCst);
        let config = self.config.clone();
        let mut run =
            tokio::spawn(async move { starting.run(&config, MetaStart::Join, port, None).await });
        let me = JoiningNode {
            id: node_id,
            name: self.config.node_name.clone(),
            cluster_addr: self.advertised_cluster_addr(),
        };
        info!(target, node_id, "asking the cluster to add this node");
        let failure = match client.add_node(&me).await {
            Ok(()) => match tokio::time::timeout(JOIN_TIMEOUT, &mut run).await {
                Ok(Ok(Ok(running))) => {
                    self.running(&running);
                    *app = Some(running);
                    info!(cluster_of = status.node_name, "joined the cluster");
                    return Ok(());
                }
                Ok(Ok(Err((e, starting)))) => {
                    self.serve_raft(None);
                    starting.stop().await;
                    return Err(format!("joined, but could not start: {e}"));
                }
                Ok(Err(e)) => {
                    self.serve_raft(None);
                    return Err(format!("start-up task failed: {e}"));
                }
                Err(_) => format!("joined, but did not catch up within {JOIN_TIMEOUT:?}"),
            },
            Err(e) => format!("node {} refused to add this node: {e}", status.node_name),
        };
        // Stopping the groups ends the start-up, which waits for a leader.
        self.serve_raft(None);
        raft.shutdown().await;
        match run.await {
            Ok(Ok(running)) => running.stop().await,
            Ok(Err((_, starting))) => starting.stop().await,
            Err(_) => {}
        }
        Err(failure)
    }

    /// Stop everything at process exit.
    pub(super) async fn shutdown(&self) {
        self.stop_app().await;
        if let Some(server) = self.take_cluster_server() {
            server.shutdown().await;
        }
    }
}

fn app_running(command: &str) -> String {
    format!(
        "this command ({command}) requires the app to be stopped on the target node; stop it with 'warrenctl stop_app'"
    )
}
