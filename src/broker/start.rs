//! Starting a node's runtime: the metadata group (recovered, new, or joining a cluster),
//! this node's record in it, the first node's bootstrap, and the recovery of durable
//! queues.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use super::link::LinkConnector;
use super::meta_applier::MetaApplier;
use super::{Broker, BrokerError, BrokerResult, ConnectionRegistry, QueueMap};
use crate::amqp::ReplyCode;
use crate::config::Config;
use crate::metadata::{hash_password, ClusterNode, MetaCommand, MetaReply, MetaState};
use crate::raft::{Bootstrap, GroupHandle, RaftRegistry, META_GROUP};

/// How often a node waiting for its cluster's metadata leader says so in the log.
const LEADER_WAIT_LOG_EVERY: Duration = Duration::from_secs(10);

/// How the metadata group comes up on this node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetaStart {
    /// Recover it from storage, or create a new one-node cluster on a fresh node.
    Recover,
    /// Start empty and wait for a cluster's leader to add this node (`join_cluster`).
    Join,
}

impl Broker {
    /// Start the runtime: bring up the metadata group, wait until it has a leader and this
    /// node has caught up with it, bootstrap a fresh cluster, drop the transient queues of
    /// this node's previous life, and start every durable queue in the background.
    pub async fn start(
        config: Config,
        raft: RaftRegistry,
        node_id: u64,
        how: MetaStart,
        nodes: watch::Sender<BTreeMap<u64, ClusterNode>>,
        links: Arc<dyn LinkConnector>,
    ) -> Result<Arc<Broker>, BrokerError> {
        let (events, events_rx) = mpsc::unbounded_channel();
        let queues: Arc<QueueMap> = Arc::default();
        let meta = Arc::new(MetaApplier {
            state: RwLock::new(MetaState::default()),
            queues: queues.clone(),
            events: events.clone(),
            nodes,
            access_epoch: watch::channel(0).0,
        });
        let bootstrap = match how {
            MetaStart::Recover => Bootstrap::Initialize(BTreeSet::from([node_id])),
            MetaStart::Join => Bootstrap::Join,
        };
        let meta_group = raft
            .start_replicated_group(META_GROUP, meta.clone(), bootstrap)
            .await
            .map_err(|e| {
                BrokerError::new(ReplyCode::InternalError, format!("metadata group: {e:?}"))
            })?;
        wait_for_meta_leader(&meta_group, node_id).await?;
        let limits = super::alarm::AlarmLimits {
            memory: super::alarm::watermark(config.memory_high_watermark),
            disk_free: config.disk_free_limit,
            data_dir: config.data_dir.clone(),
        };
        let alarms = super::alarm::spawn_monitor(limits, Duration::from_secs(1));
        // As an Erlang node's creation: a number for this start, in every connection pid.
        let creation = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let connections = Arc::new(ConnectionRegistry::new(config.node_name.clone(), creation));
        let broker = Arc::new_cyclic(|me| Broker {
            me: me.clone(),
            links,
            alarms,
            config,
            node_id,
            raft,
            meta,
            meta_group,
            queues,
            starting: tokio::sync::Mutex::new(()),
            events,
            next_id: AtomicU64::new(1),
            connections,
            peer_counts: std::sync::OnceLock::new(),
            stats: Arc::default(),
        });
        tokio::spawn(sample_stats(Arc::downgrade(&broker)));
        // A write through the leader, applied here before it returns: from now on the local
        // read model holds everything committed before this node started.
        broker.register_node().await?;
        if !broker.read_meta().vhost_exists("/") {
            let salt: [u8; 4] = rand::random();
            let cmd = MetaCommand::Bootstrap {
                default_user: broker.config.default_user.clone(),
                password_hash: hash_password(&broker.config.default_pass, salt),
            };
            broker.propose(cmd).await?;
            info!("bootstrapped a fresh node");
        }
        if broker.read_meta().has_transient_queues_of(node_id) {
            broker
                .propose(MetaCommand::DeleteTransientQueuesOfNode { node: node_id })
                .await?;
        }
        // A lone node's restart is a whole-cluster restart: non-durable exchanges go.
        let alone = broker.meta_group.voters() == BTreeSet::from([node_id]);
        if alone && broker.read_meta().has_transient_exchanges() {
            broker
                .propose(MetaCommand::DeleteTransientExchanges)
                .await?;
        }
        tokio::spawn(super::operations::run_events(
            Arc::downgrade(&broker),
            events_rx,
        ));
        let durable: Vec<(String, String, bool)> = {
            let state = broker.read_meta();
            state
                .all_queues()
                .filter(|(_, q)| q.group_id != 0 && q.members.contains(&node_id))
                .map(|(v, q)| (v.to_owned(), q.name.clone(), q.members.len() > 1))
                .collect()
        };
        let b = broker.clone();
        tokio::spawn(async move {
            for (vhost, name, replicated) in durable {
                let started = if replicated {
                    b.ensure_replica(&vhost, &name).await
                } else {
                    b.ensure_queue(&vhost, &name).await.map(|_| ())
                };
                if let Err(e) = started {
                    warn!(vhost, name, error = ?e, "queue recovery failed");
                }
            }
        });
        Ok(broker)
    }

    /// The current access epoch: it moves whenever users, permissions or vhosts may
    /// have changed.
    pub fn access_epoch(&self) -> u64 {
        *self.meta.access_epoch.borrow()
    }

    /// Changes of the access epoch, for a connection to notice its user's deletion.
    pub fn access_changes(&self) -> watch::Receiver<u64> {
        self.meta.access_epoch.subscribe()
    }

    /// Whether `user` exists and `vhost` exists (an open connection's login still holds).
    pub fn login_holds(&self, user: &str, vhost: &str) -> (bool, bool) {
        let meta = self.read_meta();
        (meta.user(user).is_some(), meta.vhost_exists(vhost))
    }

    /// The local metadata read model.
    pub(crate) fn read_meta(&self) -> std::sync::RwLockReadGuard<'_, MetaState> {
        self.meta.state.read().expect("metadata lock")
    }

    /// The queue records of `vhost`; `None` if the vhost does not exist.
    pub fn queue_records(&self, vhost: &str) -> Option<Vec<crate::metadata::QueueRecord>> {
        let state = self.read_meta();
        state
            .vhost_exists(vhost)
            .then(|| state.queues(vhost).cloned().collect())
    }

    /// The queue's actor, if it runs on this node (this node leads the queue).
    pub fn local_queue(&self, vhost: &str, name: &str) -> Option<super::QueueHandle> {
        self.queues.actor(vhost, name)
    }

    /// A durable queue's group, when this node runs a member of it.
    pub fn queue_group(&self, group: u64) -> Option<GroupHandle> {
        self.raft.group(group)
    }

    /// The state here of every Raft group this node runs (the metadata group's too), by
    /// group id.
    pub fn group_statuses(&self) -> Vec<crate::raft::GroupStatus> {
        self.raft
            .running_groups()
            .into_iter()
            .filter_map(|g| self.raft.group(g))
            .map(|handle| handle.status())
            .collect()
    }

    /// Every queue record of every vhost, with its vhost.
    pub fn all_queue_records(&self) -> Vec<(String, crate::metadata::QueueRecord)> {
        self.read_meta()
            .all_queues()
            .map(|(v, q)| (v.to_owned(), q.clone()))
            .collect()
    }

    /// The leader of a durable queue's group, as this node sees it when it is a member.
    pub fn queue_group_leader(&self, group: u64) -> Option<u64> {
        self.raft.group(group)?.current_leader()
    }

    /// The metadata group (membership changes are made on its leader).
    pub fn meta_group(&self) -> &GroupHandle {
        &self.meta_group
    }

    /// Record this node (name and cluster address) in the metadata. Always proposed, even
    /// when unchanged: its commit tells this node it has caught up with the cluster.
    async fn register_node(&self) -> BrokerResult<()> {
        let name = self.config.node_name.clone();
        let cluster_addr =
            std::net::SocketAddr::new(self.config.bind, self.config.cluster_port).to_string();
        match self
            .propose(MetaCommand::SetNode {
                id: self.node_id,
                name,
                cluster_addr,
            })
            .await?
        {
            MetaReply::Error(e) => Err(BrokerError::new(e.code, e.text)),
            _ => Ok(()),
        }
    }
}

/// Wait until the metadata group has a leader. A lone member elects itself; a member of
/// a cluster waits for its peers (the failure detector campaigns when none leads), as long
/// as it takes, as a RabbitMQ node waits for its cluster at boot.
async fn wait_for_meta_leader(group: &GroupHandle, me: u64) -> BrokerResult<()> {
    if group.voters() == BTreeSet::from([me]) && group.current_leader().is_none() {
        let _ = group.trigger_elect(false).await;
    }
    loop {
        match group.wait_for_leader(LEADER_WAIT_LOG_EVERY).await {
            Ok(_) => return Ok(()),
            Err(crate::raft::RaftError::Timeout(_)) => {
                info!(voters = ?group.voters(), "waiting for the cluster's metadata leader")
            }
            Err(e) => {
                return Err(BrokerError::new(
                    ReplyCode::InternalError,
                    format!("metadata group: {e}"),
                ))
            }
        }
    }
}

/// Sample the message statistics every [`crate::stats::SAMPLE_EVERY`], while the broker
/// lives (the counters of deleted exchanges go then).
async fn sample_stats(broker: std::sync::Weak<Broker>) {
    let mut every = tokio::time::interval(crate::stats::SAMPLE_EVERY);
    loop {
        every.tick().await;
        let Some(broker) = broker.upgrade() else {
            return;
        };
        let meta = broker.read_meta();
        broker
            .stats
            .sample(std::time::Instant::now(), |vhost, name| {
                meta.exchange(vhost, name).is_some()
            });
    }
}
