//! Replicated durable queues (quorum queues, groups of several members): every member node
//! runs the queue's Raft group, applying committed commands to its copy of the queue
//! machine; the queue's actor (consumer registry, proposals) runs only on the node that
//! leads the group, and moves with the leadership.
//!
//! The member placement chose first initializes the group with all members; the others
//! start empty and are brought up to date by the leader. When this node becomes leader it
//! first commits an empty batch, so that everything the previous leader committed is
//! applied here before the actor reads the machine; delivered-but-unsettled messages
//! are then ready again and go out with `redelivered = true`.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tracing::{info, warn};

use super::operations::{group_error, spawn_actor};
use super::queue_actor::Backend;
use super::queue_applier::QueueApplier;
use super::{Broker, BrokerEvent, BrokerResult, QueueHandle, QueueMap};
use crate::metadata::QueueRecord;
use crate::queue::{QueueCommand, QueueMachine};
use crate::raft::{Bootstrap, GroupHandle, Request, RequestBody};

/// How long a client's operation waits for a new queue's first leader.
const FIRST_LEADER_WAIT: Duration = Duration::from_secs(10);
/// How long it waits for this node's actor once this node leads.
const ACTOR_WAIT: Duration = Duration::from_secs(10);

impl Broker {
    /// Run this node's replica of a replicated queue, if this node is a member and it does
    /// not run yet.
    pub(crate) async fn ensure_replica(&self, vhost: &str, name: &str) -> BrokerResult<()> {
        // One start at a time: a second replica would run over a machine nobody applies to.
        let _guard = self.starting.lock().await;
        let Some(record) = self.queue_record(vhost, name) else {
            return Ok(());
        };
        if record.group_id == 0
            || record.members.len() < 2
            || !record.members.contains(&self.node_id)
            || self.raft.group(record.group_id).is_some()
        {
            return Ok(());
        }
        let (machine, applier) = QueueApplier::with_new_machine();
        // The member placement chose to lead first creates the group and campaigns (the
        // declaring node, unless `x-queue-leader-locator` placed the leader elsewhere);
        // everyone else joins. Only ever a member from the queue's start: `leader_node`
        // falls back to the first member whenever the node it names leaves.
        let initializer = if record.members.contains(&record.leader_node) {
            record.leader_node
        } else {
            record.members[0]
        };
        let bootstrap = if initializer == self.node_id {
            Bootstrap::Initialize(record.members.iter().copied().collect::<BTreeSet<u64>>())
        } else {
            Bootstrap::Join
        };
        let group = self
            .raft
            .start_replicated_group(record.group_id, applier, bootstrap)
            .await
            .map_err(|e| group_error(record.group_id, e))?;
        let local = Local {
            broker: self.me.clone(),
            node_id: self.node_id,
            queues: self.queues.clone(),
            events: self.events.clone(),
            stats: self.stats.clone(),
            quorum: record.queue_type == crate::metadata::QueueType::Quorum,
        };
        tokio::spawn(follow_leadership(
            local,
            vhost.to_owned(),
            name.to_owned(),
            group,
            machine,
            record.auto_delete,
        ));
        Ok(())
    }

    /// What this node's clients use for a replicated queue: its actor when this node
    /// leads the group, else the remote side of a link to the leader.
    pub(super) async fn replicated_queue(
        &self,
        record: &QueueRecord,
        vhost: &str,
    ) -> BrokerResult<QueueHandle> {
        if !record.members.contains(&self.node_id) {
            return Ok(self.remote_queue(vhost, &record.name));
        }
        self.ensure_replica(vhost, &record.name).await?;
        let Some(group) = self.raft.group(record.group_id) else {
            return Ok(self.remote_queue(vhost, &record.name));
        };
        let leader = group.wait_for_leader(FIRST_LEADER_WAIT).await.ok();
        if leader != Some(self.node_id) {
            return Ok(self.remote_queue(vhost, &record.name));
        }
        let deadline = tokio::time::Instant::now() + ACTOR_WAIT;
        loop {
            if let Some(handle) = self.queues.for_clients(vhost, &record.name) {
                return Ok(handle);
            }
            // Leadership may flicker while the group settles (a second campaign); only
            // another node's leadership, or the deadline, ends the wait.
            let leader = group.current_leader();
            if tokio::time::Instant::now() >= deadline || leader.is_some_and(|l| l != self.node_id)
            {
                return Ok(self.remote_queue(vhost, &record.name));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// What a replica needs of its node to run the queue's actor.
struct Local {
    broker: std::sync::Weak<Broker>,
    node_id: u64,
    queues: Arc<QueueMap>,
    events: mpsc::UnboundedSender<BrokerEvent>,
    stats: Arc<crate::stats::Stats>,
    /// A quorum queue (counted as one by the node's statistics).
    quorum: bool,
}

/// First and longest pause before a failed take-over is tried again.
const TAKE_OVER_RETRY: std::time::Duration = std::time::Duration::from_millis(20);
const MAX_TAKE_OVER_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

/// Run the queue's actor here while this node leads its group; ends when the group stops.
async fn follow_leadership(
    local: Local,
    vhost: String,
    name: String,
    group: GroupHandle,
    machine: Arc<Mutex<QueueMachine>>,
    auto_delete: bool,
) {
    let mut leader = group.leader_watch();
    let mut actor: Option<QueueHandle> = None;
    let mut backoff = TAKE_OVER_RETRY;
    loop {
        let leads = *leader.borrow_and_update() == Some(local.node_id);
        let mut retry = false;
        if leads && actor.is_none() {
            match catch_up(&group).await {
                Ok(()) if group.is_leader() => {
                    let handle = spawn_actor(
                        &local.events,
                        local.stats.queue(&vhost, &name, local.quorum),
                        &vhost,
                        &name,
                        machine.clone(),
                        Backend::Raft(group.clone(), None),
                        auto_delete,
                    );
                    local.queues.add_actor(&vhost, &name, &handle);
                    info!(vhost, name, "leading the queue here");
                    actor = Some(handle);
                }
                Ok(()) => {}
                // Right after an election a write can fail although this node leads
                // (openraft answers "no leader" until its first entry commits): try
                // again while it still leads, or the queue would go unserved until the
                // next leadership change.
                Err(e) => {
                    warn!(vhost, name, error = %e, "could not take over the queue yet; retrying");
                    retry = true;
                }
            }
        } else if !leads {
            if let Some(handle) = actor.take() {
                match local.broker.upgrade() {
                    Some(broker) => {
                        let to = broker.spawn_remote(&vhost, &name);
                        local.queues.hand_over(&vhost, &name, &handle, to);
                    }
                    None => local.queues.stop_actor(&vhost, &name, &handle),
                }
                info!(vhost, name, "no longer leading the queue here");
            }
        }
        if retry {
            tokio::select! {
                changed = leader.changed() => if changed.is_err() { break },
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(MAX_TAKE_OVER_RETRY);
            continue;
        }
        backoff = TAKE_OVER_RETRY;
        if leader.changed().await.is_err() {
            break;
        }
    }
    if let Some(handle) = actor {
        local.queues.stop_actor(&vhost, &name, &handle);
    }
}

/// Commit an empty batch: once it is applied, so is everything before it.
async fn catch_up(group: &GroupHandle) -> Result<(), crate::raft::WriteError> {
    let empty: Vec<QueueCommand> = Vec::new();
    let request = Request {
        time_ms: super::operations::now_ms(),
        body: RequestBody::Queue(
            postcard::to_allocvec(&empty)
                .expect("encode empty batch")
                .into(),
        ),
    };
    group.write(request).await.map(|_| ())
}
