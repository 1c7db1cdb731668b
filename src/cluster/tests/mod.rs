//! Tests of the cluster transport with real gRPC over 127.0.0.1: in-process nodes, each
//! with its own store in a temp dir, registry, server and failure detector.

mod auth;
mod idle;
mod pipeline;
mod replication;
mod restart;

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::*;
use crate::raft::tests::{request, TestApplier};
use crate::raft::{
    Bootstrap, GroupHandle, GroupId, NodeId, RaftRegistry, RaftSettings, WriteError,
};
use crate::storage::Store;

/// The secret every test cluster shares.
const SECRET: &str = "test-cluster-secret";

/// One in-process node. Dropping it does not stop it: call [`TestNode::kill`].
pub(super) struct TestNode {
    pub(super) id: NodeId,
    pub(super) registry: RaftRegistry,
    pub(super) peers: Peers,
    server: Option<ClusterServer>,
    liveness: Option<LivenessDetector>,
    appliers: Mutex<HashMap<GroupId, Arc<TestApplier>>>,
    addresses: Vec<SocketAddr>,
    settings: RaftSettings,
    dir: TempDir,
}

impl TestNode {
    /// The server's counts.
    pub(super) fn counts(&self) -> ServerCounts {
        self.server.as_ref().expect("node is running").counts()
    }

    pub(super) fn applier(&self, group: GroupId) -> Arc<TestApplier> {
        self.appliers.lock().unwrap()[&group].clone()
    }

    /// Start `group` here, initializing it (with `voters`) only if this is `designated`.
    pub(super) async fn start_group(
        &self,
        group: GroupId,
        voters: &BTreeSet<NodeId>,
        designated: NodeId,
    ) -> GroupHandle {
        let applier = Arc::new(TestApplier::default());
        self.appliers.lock().unwrap().insert(group, applier.clone());
        let bootstrap = if self.id == designated {
            Bootstrap::Initialize(voters.clone())
        } else {
            Bootstrap::Join
        };
        self.registry
            .start_replicated_group(group, applier, bootstrap)
            .await
            .unwrap_or_else(|e| panic!("node {}: starting group {group}: {e}", self.id))
    }

    /// Simulate this node's death: its server, detector and groups stop.
    pub(super) async fn kill(&mut self) {
        if let Some(liveness) = self.liveness.take() {
            liveness.stop().await;
        }
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
        self.registry.shutdown().await;
    }

    pub(super) fn is_running(&self) -> bool {
        self.server.is_some()
    }
}

/// `n` nodes (ids 1..=n) that know each other's addresses, all running.
pub(super) async fn start_cluster(n: u64) -> Vec<TestNode> {
    start_cluster_with(n, RaftSettings::default()).await
}

/// [`start_cluster`] with explicit Raft settings.
pub(super) async fn start_cluster_with(n: u64, settings: RaftSettings) -> Vec<TestNode> {
    // Logs show only for a failing test.
    let _ = tracing_subscriber::fmt()
        .with_env_filter("warn,warrenmq=info")
        .with_test_writer()
        .try_init();
    let mut listeners = Vec::new();
    for _ in 0..n {
        listeners.push(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap());
    }
    let addresses: Vec<_> = listeners.iter().map(|l| l.local_addr().unwrap()).collect();
    let mut nodes = Vec::new();
    for (i, listener) in listeners.into_iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let id = i as u64 + 1;
        nodes.push(spawn_node(id, dir, listener, addresses.clone(), settings.clone()).await);
    }
    nodes
}

/// Start node `id` over the store in `dir`, serving `listener`; `addresses[i]` is node
/// `i + 1`'s.
async fn spawn_node(
    id: NodeId,
    dir: TempDir,
    listener: tokio::net::TcpListener,
    addresses: Vec<SocketAddr>,
    settings: RaftSettings,
) -> TestNode {
    let secret = ClusterSecret::new(SECRET).unwrap();
    let store = open_store(dir.path()).await;
    let peers = Peers::new(id, secret.clone(), TransportSettings::default());
    for (j, addr) in addresses.iter().enumerate() {
        peers.set_peer(j as u64 + 1, *addr);
    }
    let transport = Arc::new(GrpcTransport::new(peers.clone()));
    let registry = RaftRegistry::with_settings(store, id, settings.clone(), transport);
    let server = ClusterServer::start(
        listener,
        registry.clone(),
        &secret,
        &TransportSettings::default(),
    )
    .unwrap();
    let liveness =
        LivenessDetector::start(peers.clone(), registry.clone(), LivenessSettings::default());
    TestNode {
        id,
        registry,
        peers,
        server: Some(server),
        liveness: Some(liveness),
        appliers: Mutex::default(),
        addresses,
        settings,
        dir,
    }
}

impl TestNode {
    /// Start a killed node again over the same store and address (its groups are not
    /// started: call [`TestNode::start_group`] as the node would for its known groups).
    pub(super) async fn restart(self) -> TestNode {
        assert!(!self.is_running(), "kill node {} first", self.id);
        let TestNode {
            id,
            registry,
            peers,
            addresses,
            settings,
            dir,
            ..
        } = self;
        // The rest of `self` would live to the end of this function: drop what holds the
        // store now, so the database can reopen.
        drop((registry, peers));
        let listener = tokio::net::TcpListener::bind(addresses[id as usize - 1])
            .await
            .unwrap();
        spawn_node(id, dir, listener, addresses, settings).await
    }
}

/// Open the store in `dir`. After an in-process kill, a call that was in flight on a
/// lingering connection can hold the old registry (and so the database lock) a moment
/// longer, as a dying process would: wait for it, bounded.
async fn open_store(dir: &std::path::Path) -> Store {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match Store::open(dir) {
            Ok(store) => return store,
            Err(e) if std::time::Instant::now() < deadline => {
                tracing::debug!(error = %e, "store still locked by the killed node");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("reopening the store in {}: {e}", dir.display()),
        }
    }
}

/// Poll `done` every 20 ms until it holds; panic naming `what` after `timeout`.
pub(super) async fn wait_until(what: &str, timeout: Duration, done: impl FnMut() -> bool) {
    wait_until_every(what, timeout, Duration::from_millis(20), done).await
}

/// Poll `done` every `every` until it holds; panic naming `what` after `timeout`.
pub(super) async fn wait_until_every(
    what: &str,
    timeout: Duration,
    every: Duration,
    mut done: impl FnMut() -> bool,
) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(every).await;
    }
}

/// The running node that leads `group`, once all running members agree on one.
pub(super) async fn leader_of(nodes: &[TestNode], group: GroupId, timeout: Duration) -> NodeId {
    let mut leader = None;
    wait_until(
        &format!("an agreed leader of group {group}"),
        timeout,
        || {
            let seen: BTreeSet<Option<NodeId>> = nodes
                .iter()
                .filter(|n| n.is_running())
                .filter_map(|n| n.registry.group(group))
                .map(|h| h.current_leader())
                .collect();
            leader = match seen.into_iter().collect::<Vec<_>>()[..] {
                [Some(l)] if nodes.iter().any(|n| n.id == l && n.is_running()) => Some(l),
                _ => None,
            };
            leader.is_some()
        },
    )
    .await;
    leader.unwrap()
}

/// Bound of every wait in these tests.
pub(super) const WAIT: Duration = Duration::from_secs(20);

/// Start group `group` on every node (joiners first), initialized by `designated`.
pub(super) async fn form_group(nodes: &[TestNode], group: GroupId, designated: NodeId) -> NodeId {
    let members = voters(nodes.iter().map(|n| n.id));
    for node in nodes.iter().filter(|n| n.id != designated) {
        node.start_group(group, &members, designated).await;
    }
    let first = nodes.iter().find(|n| n.id == designated).unwrap();
    let handle = first.start_group(group, &members, designated).await;
    handle.wait_for_leader(WAIT).await.unwrap();
    let leader = leader_of(nodes, group, WAIT).await;
    for node in nodes {
        let status = node.registry.group(group).unwrap().status();
        assert_eq!(status.voters, members, "node {}: {status:?}", node.id);
    }
    leader
}

/// Wait until every running node has applied exactly `payloads` in `group`.
pub(super) async fn wait_applied_everywhere(
    nodes: &[TestNode],
    group: GroupId,
    payloads: &[Vec<u8>],
) {
    for node in nodes.iter().filter(|n| n.is_running()) {
        let applier = node.applier(group);
        wait_until(
            &format!("node {} to apply {} writes", node.id, payloads.len()),
            WAIT,
            || applier.payloads() == payloads,
        )
        .await;
    }
}

/// Write through whichever node leads, retrying refusals while leadership settles.
pub(super) async fn write(nodes: &[TestNode], group: GroupId, payload: Vec<u8>) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let leader = leader_of(nodes, group, Duration::from_secs(15)).await;
        let node = nodes.iter().find(|n| n.id == leader).unwrap();
        let handle = node.registry.group(group).expect("leader runs the group");
        match handle.write(request(payload.clone())).await {
            Ok(_) => return,
            Err(WriteError::NotLeader { .. }) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("writing to group {group} via node {leader}: {e}"),
        }
    }
}

pub(super) fn voters(ids: impl IntoIterator<Item = NodeId>) -> BTreeSet<NodeId> {
    ids.into_iter().collect()
}
