//! `GroupHandle`: what the node holds to use one running group: writes, leadership, and
//! snapshots on demand.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use openraft::async_runtime::WatchReceiver;
use openraft::error::{ClientWriteError, Fatal, RaftError as OpenraftError};
use tokio::sync::watch;

use super::error::{RaftError, WriteError};
use super::network::GroupTransport;
use super::types::{GroupId, NodeId, Raft, Request, Response};

/// How many times, and how long at first, a write refused with no leader known (an
/// election in progress) is retried before `NotLeader` is returned.
const NO_LEADER_RETRIES: u32 = 8;
const NO_LEADER_BACKOFF: Duration = Duration::from_millis(5);

/// A running group. Cheap to clone.
#[derive(Clone)]
pub struct GroupHandle {
    inner: Arc<Shared>,
}

struct Shared {
    group: GroupId,
    /// This node.
    me: NodeId,
    raft: Raft,
    /// Reaches the group's leader when it is elsewhere (forwarded writes).
    transport: Arc<dyn GroupTransport>,
    leader: watch::Receiver<Option<NodeId>>,
    stopped: AtomicBool,
}

impl GroupHandle {
    pub(crate) fn new(
        group: GroupId,
        me: NodeId,
        raft: Raft,
        transport: Arc<dyn GroupTransport>,
    ) -> Self {
        let leader = spawn_leader_watch(&raft);
        GroupHandle {
            inner: Arc::new(Shared {
                group,
                me,
                raft,
                transport,
                leader,
                stopped: AtomicBool::new(false),
            }),
        }
    }

    pub(crate) fn raft(&self) -> &Raft {
        &self.inner.raft
    }

    /// This node's id.
    pub(crate) fn me(&self) -> NodeId {
        self.inner.me
    }

    pub(crate) fn transport(&self) -> &Arc<dyn GroupTransport> {
        &self.inner.transport
    }

    /// Mark the group stopped: later writes fail with `Fatal` without reaching openraft.
    pub(crate) fn mark_stopped(&self) {
        self.inner.stopped.store(true, Ordering::SeqCst);
    }

    /// Whether the group was stopped on this node (its handle is stale).
    pub(crate) fn is_stopped(&self) -> bool {
        self.inner.stopped.load(Ordering::SeqCst)
    }

    /// The group's id.
    pub fn group(&self) -> GroupId {
        self.inner.group
    }

    /// Replicate `request`; returns the applier's response once it is committed (on disk on
    /// a majority) and applied here. Only the leader can do this ([`WriteError::NotLeader`]
    /// elsewhere); [`GroupHandle::write_anywhere`] forwards to the leader.
    pub async fn write(&self, request: Request) -> Result<Response, WriteError> {
        self.write_indexed(request).await.map(|(_, resp)| resp)
    }

    /// A pipeline of ordered writes with up to `depth` in flight (see `pipeline.rs`);
    /// results go to `results` in submission order.
    pub fn pipeline(
        &self,
        depth: usize,
        results: tokio::sync::mpsc::UnboundedSender<super::PipelineResult>,
    ) -> super::WritePipeline {
        super::WritePipeline::start(self.clone(), depth, results)
    }

    /// [`GroupHandle::write`], also returning the entry's log index.
    pub(crate) async fn write_indexed(
        &self,
        request: Request,
    ) -> Result<(u64, Response), WriteError> {
        let mut backoff = NO_LEADER_BACKOFF;
        for attempt in 0.. {
            if self.inner.stopped.load(Ordering::SeqCst) {
                return Err(WriteError::Fatal(format!(
                    "group {} is stopped",
                    self.group()
                )));
            }
            match self.inner.raft.client_write(request.clone()).await {
                Ok(resp) => return Ok((resp.log_id.index, resp.data)),
                Err(e) => match classify(e) {
                    // Refused before reaching the log, no leader yet: retrying is safe.
                    WriteError::NotLeader { leader: None } if attempt < NO_LEADER_RETRIES => {
                        self.renew_lease().await;
                        tokio::time::sleep(backoff).await;
                        backoff *= 2;
                    }
                    other => return Err(other),
                },
            }
        }
        unreachable!("the retry loop returns")
    }

    /// After a refusal with no leader known: a leader of an idle group has no recent
    /// quorum acks (no timers run), so its lease has lapsed; a heartbeat round renews it.
    pub(crate) async fn renew_lease(&self) {
        if self.is_leader() {
            let _ = self.trigger_heartbeat().await;
        }
    }

    /// Whether this node currently leads the group (false once the group is stopped).
    pub fn is_leader(&self) -> bool {
        !self.inner.stopped.load(Ordering::SeqCst) && self.inner.raft.is_leader()
    }

    /// The group's leader as this node sees it; changes when leadership changes.
    pub fn leader_watch(&self) -> watch::Receiver<Option<NodeId>> {
        self.inner.leader.clone()
    }

    /// Take a snapshot of everything applied so far, store it and purge the log behind it.
    pub async fn snapshot_now(&self) -> Result<(), RaftError> {
        let raft = &self.inner.raft;
        let target = raft.metrics().borrow_watched().last_applied;
        let Some(target) = target else {
            return Ok(());
        };
        // A build already in progress drops the trigger: trigger again until one covers us.
        for _ in 0..100 {
            if raft.metrics().borrow_watched().snapshot >= Some(target) {
                return Ok(());
            }
            raft.trigger()
                .snapshot()
                .await
                .map_err(|e| RaftError::Raft(e.to_string()))?;
            let covered = raft
                .wait(Some(Duration::from_millis(200)))
                .metrics(|m| m.snapshot >= Some(target), "snapshot_now")
                .await;
            if covered.is_ok() {
                return Ok(());
            }
        }
        Err(RaftError::Timeout(format!(
            "group {}: snapshot up to {target}",
            self.group()
        )))
    }
}

/// Map openraft's write errors to what the caller can act on.
pub(super) fn classify(
    e: OpenraftError<super::types::TypeConfig, ClientWriteError<super::types::TypeConfig>>,
) -> WriteError {
    match e {
        OpenraftError::APIError(ClientWriteError::ForwardToLeader(f)) => WriteError::NotLeader {
            leader: f.leader_id,
        },
        OpenraftError::APIError(ClientWriteError::LogEntryDiscarded(f)) => WriteError::Unknown(
            format!("log entry discarded (leader now {:?})", f.leader_id),
        ),
        OpenraftError::APIError(other) => WriteError::Fatal(other.to_string()),
        // Submitted, then the group stopped: the entry may be on disk and commit later.
        OpenraftError::Fatal(Fatal::Stopped) => {
            WriteError::Unknown("the group stopped during the write".to_string())
        }
        OpenraftError::Fatal(fatal) => WriteError::Fatal(fatal.to_string()),
    }
}

/// Follow openraft's server metrics (which change only with leadership and membership,
/// not with every write) and publish the leader. Ends when the group's core stops.
fn spawn_leader_watch(raft: &Raft) -> watch::Receiver<Option<NodeId>> {
    let mut server = raft.server_metrics();
    let first = server.borrow_watched().current_leader;
    let (tx, rx) = watch::channel(first);
    tokio::spawn(async move {
        while server.changed().await.is_ok() {
            let leader = server.borrow_watched().current_leader;
            tx.send_if_modified(|current| {
                let changed = *current != leader;
                *current = leader;
                changed
            });
        }
        // The core stopped: nobody leads this group here any more.
        tx.send_replace(None);
    });
    rx
}
