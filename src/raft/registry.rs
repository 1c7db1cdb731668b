//! `RaftRegistry`: every Raft group of this node (the multi-raft router): starts, recovers,
//! stops and removes groups over the node's one `Store`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openraft::async_runtime::WatchReceiver;
use openraft::{BasicNode, ServerState};
use tracing::{info, warn, Instrument};

use super::alive::{alive, AliveWatch};
use super::applier::GroupApplier;
use super::error::RaftError;
use super::handle::GroupHandle;
use super::log_store::GroupLogStore;
use super::network::{GroupNetworkFactory, GroupTransport, NoTransport};
use super::settings::RaftSettings;
use super::state_machine::GroupStateMachine;
use super::types::{GroupId, NodeId, Raft};
use crate::storage::Store;

/// All groups of this node. Cheap to clone.
#[derive(Clone)]
pub struct RaftRegistry {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    node_id: NodeId,
    settings: RaftSettings,
    transport: Arc<dyn GroupTransport>,
    running: Mutex<HashMap<GroupId, Running>>,
    /// One lock per group serializing its start, stop and removal.
    lifecycle: Mutex<HashMap<GroupId, Arc<tokio::sync::Mutex<()>>>>,
}

struct Running {
    handle: GroupHandle,
    gone: AliveWatch,
}

impl RaftRegistry {
    /// A registry over `store` for node `node_id`, with default settings and no network.
    pub fn new(store: Store, node_id: NodeId) -> Self {
        Self::with_settings(
            store,
            node_id,
            RaftSettings::default(),
            Arc::new(NoTransport),
        )
    }

    /// A registry with explicit settings and transport (`cluster/` passes its transport).
    pub fn with_settings(
        store: Store,
        node_id: NodeId,
        settings: RaftSettings,
        transport: Arc<dyn GroupTransport>,
    ) -> Self {
        RaftRegistry {
            inner: Arc::new(Inner {
                store,
                node_id,
                settings,
                transport,
                running: Mutex::default(),
                lifecycle: Mutex::default(),
            }),
        }
    }

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.inner.node_id
    }

    /// Start (or recover from storage) a group whose only member is this node; if the group
    /// is new, initialize it. Returns once this node leads the group, can take writes, and
    /// has applied everything in the group's log: recovery restores the latest snapshot
    /// and re-applies the log after it through `applier` before returning. If the group is
    /// already running, returns its handle (and `applier` is dropped).
    pub async fn start_group(
        &self,
        group: GroupId,
        applier: Arc<dyn GroupApplier>,
    ) -> Result<GroupHandle, RaftError> {
        let lock = self.lifecycle_lock(group);
        let _guard = lock.lock().await;
        if let Some(handle) = self.group(group) {
            return Ok(handle);
        }
        let span = tracing::info_span!("raft_group", group);
        let (handle, gone) = self.start_locked(group, applier).instrument(span).await?;
        self.insert_running(group, handle.clone(), gone);
        Ok(handle)
    }

    async fn start_locked(
        &self,
        group: GroupId,
        applier: Arc<dyn GroupApplier>,
    ) -> Result<(GroupHandle, AliveWatch), RaftError> {
        let started = Instant::now();
        let me = self.inner.node_id;
        let (raft, handle, gone) = self.build_group(group, applier).await?;
        let result = async {
            let initialized = raft
                .is_initialized()
                .await
                .map_err(|e| RaftError::Raft(e.to_string()))?;
            if !initialized {
                let members = BTreeMap::from([(me, BasicNode::default())]);
                raft.initialize(members)
                    .await
                    .map_err(|e| RaftError::Raft(e.to_string()))?;
            }
            self.lead_and_catch_up(&raft).await
        }
        .await;
        if let Err(e) = result {
            self.abort_start(&handle, gone).await;
            return Err(e);
        }
        info!(
            group,
            elapsed_us = started.elapsed().as_micros() as u64,
            "group started"
        );
        Ok((handle, gone))
    }

    /// Create the group's openraft instance over this node's store. Recovery happens here:
    /// the stored snapshot is restored and the committed entries after it re-applied.
    pub(super) async fn build_group(
        &self,
        group: GroupId,
        applier: Arc<dyn GroupApplier>,
    ) -> Result<(Raft, GroupHandle, AliveWatch), RaftError> {
        let store = self.inner.store.register_group(group)?;
        let (token, gone) = alive();
        let log_store = GroupLogStore::new(store.clone(), token.clone());
        let state_machine = GroupStateMachine::new(store, applier, token);
        let network = GroupNetworkFactory::new(group, self.inner.transport.clone());
        let config = Arc::new(self.inner.settings.openraft_config(group)?);
        let raft = Raft::new(
            self.inner.node_id,
            config,
            network,
            log_store,
            state_machine,
        )
        .await
        .map_err(|e| RaftError::Raft(e.to_string()))?;
        let handle = GroupHandle::new(
            group,
            self.inner.node_id,
            raft.clone(),
            self.inner.transport.clone(),
        );
        Ok((raft, handle, gone))
    }

    /// Undo [`Self::build_group`] after a failed start: stop the core, wait for its tasks.
    pub(super) async fn abort_start(&self, handle: &GroupHandle, gone: AliveWatch) {
        handle.mark_stopped();
        let _ = handle.raft().shutdown().await;
        let _ = gone.all_dropped(self.inner.settings.stop_timeout).await;
    }

    /// Record a started group as running (found by [`Self::group`] and incoming RPCs).
    pub(super) fn insert_running(&self, group: GroupId, handle: GroupHandle, gone: AliveWatch) {
        self.running().insert(group, Running { handle, gone });
    }

    /// Campaign until this node leads (a single-member group wins at once; ticks are off
    /// so nothing campaigns by itself), then wait until the whole log is applied.
    async fn lead_and_catch_up(&self, raft: &Raft) -> Result<(), RaftError> {
        let deadline = Instant::now() + self.inner.settings.start_timeout;
        let me = self.inner.node_id;
        loop {
            let is_leader = {
                let m = raft.metrics();
                let m = m.borrow_watched();
                m.state == ServerState::Leader && m.current_leader == Some(me)
            };
            if is_leader {
                break;
            }
            if Instant::now() >= deadline {
                return Err(RaftError::Timeout("election".to_string()));
            }
            raft.trigger()
                .elect(false)
                .await
                .map_err(|e| RaftError::Raft(e.to_string()))?;
            let _ = raft
                .wait(Some(Duration::from_millis(500)))
                .state(ServerState::Leader, "start_group: leader")
                .await;
        }
        let last = raft.metrics().borrow_watched().last_log_index;
        let remaining = deadline.saturating_duration_since(Instant::now());
        raft.wait(Some(remaining))
            .applied_index_at_least(last, "start_group: applied")
            .await
            .map_err(|e| RaftError::Timeout(format!("applying the log: {e}")))?;
        Ok(())
    }

    /// Shut the group's Raft down (its data stays). No-op if it is not running.
    pub async fn stop_group(&self, group: GroupId) {
        let lock = self.lifecycle_lock(group);
        let _guard = lock.lock().await;
        if let Err(e) = self.stop_locked(group).await {
            warn!(group, error = %e, "stopping group");
        }
    }

    async fn stop_locked(&self, group: GroupId) -> Result<(), RaftError> {
        let Some(running) = self.running().remove(&group) else {
            return Ok(());
        };
        running.handle.mark_stopped();
        if let Err(e) = running.handle.raft().shutdown().await {
            warn!(group, error = %e, "raft core ended with an error");
        }
        drop(running.handle);
        // openraft's tasks end shortly after the core; wait until they dropped our storage.
        if running
            .gone
            .all_dropped(self.inner.settings.stop_timeout)
            .await
        {
            Ok(())
        } else {
            Err(RaftError::Timeout(format!(
                "group {group}: tasks still hold its storage"
            )))
        }
    }

    /// Stop the group and delete all its data (durably) from this node.
    pub async fn remove_group(&self, group: GroupId) -> Result<(), RaftError> {
        let lock = self.lifecycle_lock(group);
        let _guard = lock.lock().await;
        // Deleting while a task could still write would resurrect keys: refuse instead.
        self.stop_locked(group).await?;
        self.inner.store.remove_group(group)?;
        self.inner.store.flush().await?;
        Ok(())
    }

    /// The handle of a running group.
    pub fn group(&self, group: GroupId) -> Option<GroupHandle> {
        self.running().get(&group).map(|r| r.handle.clone())
    }

    /// Groups with data in storage (to recover at boot), ascending.
    pub fn known_groups(&self) -> Vec<GroupId> {
        match self.inner.store.known_groups() {
            Ok(groups) => groups,
            Err(e) => {
                warn!(error = %e, "reading the group registry");
                Vec::new()
            }
        }
    }

    /// Groups running now, ascending.
    pub fn running_groups(&self) -> Vec<GroupId> {
        let mut groups: Vec<_> = self.running().keys().copied().collect();
        groups.sort_unstable();
        groups
    }

    /// Stop every running group.
    pub async fn shutdown(&self) {
        let groups = self.running_groups();
        futures::future::join_all(groups.into_iter().map(|g| self.stop_group(g))).await;
    }

    fn running(&self) -> std::sync::MutexGuard<'_, HashMap<GroupId, Running>> {
        self.inner.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn lifecycle_lock(&self, group: GroupId) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self
            .inner
            .lifecycle
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        locks.entry(group).or_default().clone()
    }
}
