//! What the frontend asks of the broker: start-up, authentication, declare/delete/bind,
//! routing and queue lookup. Checks run on the local read model; changes are proposed
//! to the metadata group and take effect when applied.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use amq_protocol::types::FieldTable;
use tokio::sync::mpsc;
use tracing::warn;

use super::queue_actor::{Backend, QueueActor};
use super::queue_applier::QueueApplier;
use super::{Broker, BrokerError, BrokerEvent, BrokerResult, QueueHandle, QueueMsg, QueueStatus};
use crate::amqp::ReplyCode;
use crate::metadata::{
    check_new_queue_args, Destination, ExchangeKind, MetaCommand, MetaReply, QueueRecord, QueueType,
};
use crate::queue::QueueMachine;
use crate::raft::{Request, RequestBody, WriteError};

pub(super) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn locked_queue(name: &str, vhost: &str) -> BrokerError {
    BrokerError::new(
        ReplyCode::ResourceLocked,
        format!(
            "cannot obtain exclusive access to locked queue '{name}' in vhost '{vhost}'. It could be originally declared on another connection or the exclusive property value does not match that of the original declaration."
        ),
    )
}

impl Broker {
    /// Propose a metadata command and wait until it is applied here.
    pub(crate) async fn propose(&self, cmd: MetaCommand) -> BrokerResult<MetaReply> {
        // One id for every try: a retry of a try that committed gets its answer.
        let cmd = MetaCommand::Request {
            id: rand::random(),
            command: Box::new(cmd),
        };
        let body = postcard::to_allocvec(&cmd).expect("encode metadata command");
        let request = Request {
            time_ms: now_ms(),
            body: RequestBody::Meta(body.into()),
        };
        let mut backoff = Duration::from_millis(5);
        for _ in 0..40 {
            match self.meta_group.write_anywhere(request.clone()).await {
                Ok(resp) => {
                    let reply: MetaReply = postcard::from_bytes(&resp.0).map_err(|e| {
                        BrokerError::new(
                            ReplyCode::InternalError,
                            format!("decode metadata reply: {e}"),
                        )
                    })?;
                    if let MetaReply::Error(e) = reply {
                        return Err(e.into());
                    }
                    return Ok(reply);
                }
                // Lost in transit or at a leader change: it may have committed or not.
                Err(WriteError::Unknown(_)) => {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_millis(500));
                }
                // `write_anywhere` has already waited out elections.
                Err(WriteError::NotLeader { .. }) => break,
                Err(WriteError::Fatal(e)) => {
                    return Err(BrokerError::new(ReplyCode::InternalError, e))
                }
            }
        }
        Err(BrokerError::new(
            ReplyCode::InternalError,
            "metadata group unavailable",
        ))
    }

    pub fn authenticate(&self, user: &str, password: &str) -> bool {
        self.meta
            .state
            .read()
            .expect("metadata lock")
            .check_password(user, password)
    }

    pub fn check_vhost_access(&self, user: &str, vhost: &str) -> BrokerResult<()> {
        let state = self.meta.state.read().expect("metadata lock");
        if !state.vhost_exists(vhost) {
            return Err(BrokerError::new(
                ReplyCode::NotAllowed,
                format!("vhost {vhost} not found"),
            ));
        }
        if state.permissions(user, vhost).is_none() {
            return Err(BrokerError::new(
                ReplyCode::NotAllowed,
                format!("access to vhost '{vhost}' refused for user '{user}'"),
            ));
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn declare_exchange(
        &self,
        vhost: &str,
        name: &str,
        kind: &str,
        passive: bool,
        durable: bool,
        auto_delete: bool,
        internal: bool,
        arguments: FieldTable,
    ) -> BrokerResult<()> {
        if passive {
            if name.is_empty() {
                return Err(BrokerError::new(
                    ReplyCode::AccessRefused,
                    "operation not permitted on the default exchange",
                ));
            }
            let state = self.meta.state.read().expect("metadata lock");
            return match state.exchange(vhost, name) {
                Some(_) => Ok(()),
                None => Err(BrokerError::new(
                    ReplyCode::NotFound,
                    format!("no exchange '{name}' in vhost '{vhost}'"),
                )),
            };
        }
        let kind = ExchangeKind::parse(kind).ok_or_else(|| {
            BrokerError::new(
                ReplyCode::CommandInvalid,
                format!("unknown exchange type '{kind}'"),
            )
        })?;
        let cmd = MetaCommand::DeclareExchange {
            vhost: vhost.to_owned(),
            name: name.to_owned(),
            kind,
            durable,
            auto_delete,
            internal,
            arguments,
        };
        self.propose(cmd).await.map(|_| ())
    }

    pub async fn delete_exchange(
        &self,
        vhost: &str,
        name: &str,
        if_unused: bool,
    ) -> BrokerResult<()> {
        let cmd = MetaCommand::DeleteExchange {
            vhost: vhost.to_owned(),
            name: name.to_owned(),
            if_unused,
        };
        self.propose(cmd).await.map(|_| ())
    }

    pub(super) fn queue_record(&self, vhost: &str, name: &str) -> Option<QueueRecord> {
        self.read_meta().queue(vhost, name).cloned()
    }

    fn check_owner(&self, record: &QueueRecord, vhost: &str, conn: u64) -> BrokerResult<()> {
        match record.exclusive_owner {
            Some(owner) if owner != (self.node_id, conn) => Err(locked_queue(&record.name, vhost)),
            _ => Ok(()),
        }
    }

    /// `queue.declare`: returns the queue's counts.
    #[allow(clippy::too_many_arguments)]
    pub async fn declare_queue(
        &self,
        vhost: &str,
        name: &str,
        passive: bool,
        durable: bool,
        exclusive_conn: Option<u64>,
        conn: u64,
        auto_delete: bool,
        arguments: FieldTable,
    ) -> BrokerResult<QueueStatus> {
        if passive {
            let record = self.queue_record(vhost, name).ok_or_else(|| {
                BrokerError::new(
                    ReplyCode::NotFound,
                    format!("no queue '{name}' in vhost '{vhost}'"),
                )
            })?;
            self.check_owner(&record, vhost, conn)?;
        } else {
            match self.queue_record(vhost, name) {
                Some(record) => self.check_owner(&record, vhost, conn)?,
                None => {
                    let what = format!("queue '{name}' in vhost '{vhost}'");
                    check_new_queue_args(&arguments, &what)?;
                }
            }
            let cmd = MetaCommand::DeclareQueue {
                vhost: vhost.to_owned(),
                name: name.to_owned(),
                durable,
                exclusive_owner: exclusive_conn.map(|c| (self.node_id, c)),
                auto_delete,
                arguments,
                node: self.node_id,
            };
            self.propose(cmd).await?;
        }
        let handle = self.ensure_queue(vhost, name).await?;
        Ok(handle.status().await.unwrap_or_default())
    }

    /// What this node's clients use for a queue: its actor here (started, with its Raft
    /// group, if need be), or the remote side of a link to the node that runs it.
    pub(crate) async fn ensure_queue(&self, vhost: &str, name: &str) -> BrokerResult<QueueHandle> {
        if let Some(h) = self.queues.for_clients(vhost, name) {
            return Ok(h);
        }
        let _guard = self.starting.lock().await;
        if let Some(h) = self.queues.for_clients(vhost, name) {
            return Ok(h);
        }
        let record = self.queue_record(vhost, name).ok_or_else(|| {
            BrokerError::new(
                ReplyCode::NotFound,
                format!("no queue '{name}' in vhost '{vhost}'"),
            )
        })?;
        if record.group_id != 0 && record.members.len() > 1 {
            drop(_guard);
            return self.replicated_queue(&record, vhost).await;
        }
        let home = record
            .members
            .first()
            .copied()
            .unwrap_or(record.leader_node);
        if home != self.node_id {
            return Ok(self.remote_queue(vhost, name));
        }
        let (machine, applier) = QueueApplier::with_new_machine();
        // Durable, non-exclusive queues have a Raft group; the rest live in memory.
        let backend = if record.group_id != 0 {
            let group = self
                .raft
                .start_group(record.group_id, applier)
                .await
                .map_err(|e| group_error(record.group_id, e))?;
            Backend::Raft(group, None)
        } else {
            Backend::Local { next_index: 0 }
        };
        let handle = spawn_actor(
            &self.events,
            self.stats
                .queue(vhost, name, record.queue_type == QueueType::Quorum),
            vhost,
            name,
            machine,
            backend,
            record.auto_delete,
        );
        // The queue may have been deleted while its group started.
        if self.queue_record(vhost, name).is_none() {
            let (reply, _rx) = tokio::sync::oneshot::channel();
            handle.send(QueueMsg::Shutdown { reply });
            return Err(BrokerError::new(
                ReplyCode::NotFound,
                format!("no queue '{name}' in vhost '{vhost}'"),
            ));
        }
        self.queues.add_actor(vhost, name, &handle);
        Ok(self.queues.for_clients(vhost, name).unwrap_or(handle))
    }

    /// A queue a client wants to use (consume, get, purge): exists and is not locked.
    pub async fn lookup_queue(
        &self,
        vhost: &str,
        name: &str,
        conn: u64,
    ) -> BrokerResult<QueueHandle> {
        let record = self.queue_record(vhost, name).ok_or_else(|| {
            BrokerError::new(
                ReplyCode::NotFound,
                format!("no queue '{name}' in vhost '{vhost}'"),
            )
        })?;
        self.check_owner(&record, vhost, conn)?;
        self.ensure_queue(vhost, name).await
    }

    pub async fn purge_queue(&self, vhost: &str, name: &str, conn: u64) -> BrokerResult<u64> {
        let handle = self.lookup_queue(vhost, name, conn).await?;
        let (reply, rx) = tokio::sync::oneshot::channel();
        if !handle.send(QueueMsg::Purge { reply }) {
            return Ok(0);
        }
        Ok(rx.await.unwrap_or(0))
    }

    pub async fn delete_queue(
        &self,
        vhost: &str,
        name: &str,
        if_unused: bool,
        if_empty: bool,
        conn: u64,
    ) -> BrokerResult<u64> {
        let Some(record) = self.queue_record(vhost, name) else {
            // RabbitMQ answers delete-ok for a queue that does not exist.
            return Ok(0);
        };
        self.check_owner(&record, vhost, conn)?;
        let handle = self.ensure_queue(vhost, name).await?;
        let status = handle.status().await.unwrap_or_default();
        if if_unused && status.consumers > 0 {
            return Err(BrokerError::new(
                ReplyCode::PreconditionFailed,
                format!("queue '{name}' in vhost '{vhost}' in use"),
            ));
        }
        if if_empty && status.ready + status.unacked > 0 {
            return Err(BrokerError::new(
                ReplyCode::PreconditionFailed,
                format!("queue '{name}' in vhost '{vhost}' not empty"),
            ));
        }
        self.propose(MetaCommand::DeleteQueue {
            vhost: vhost.to_owned(),
            name: name.to_owned(),
        })
        .await?;
        Ok(status.ready)
    }

    /// `queue.bind`/`unbind` (`to_exchange = false`) and `exchange.bind`/`unbind`.
    #[allow(clippy::too_many_arguments)]
    pub async fn bind(
        &self,
        vhost: &str,
        source: &str,
        destination: &str,
        to_exchange: bool,
        routing_key: &str,
        arguments: FieldTable,
        conn: u64,
        bind: bool,
    ) -> BrokerResult<()> {
        if !to_exchange {
            if let Some(record) = self.queue_record(vhost, destination) {
                self.check_owner(&record, vhost, conn)?;
            }
        }
        let destination = if to_exchange {
            Destination::Exchange(destination.to_owned())
        } else {
            Destination::Queue(destination.to_owned())
        };
        let (vhost, source, routing_key) =
            (vhost.to_owned(), source.to_owned(), routing_key.to_owned());
        let cmd = if bind {
            MetaCommand::Bind {
                vhost,
                source,
                destination,
                routing_key,
                arguments,
            }
        } else {
            MetaCommand::Unbind {
                vhost,
                source,
                destination,
                routing_key,
                arguments,
            }
        };
        self.propose(cmd).await.map(|_| ())
    }

    /// A publish may go to this exchange (exists, not internal).
    pub fn check_publish(&self, vhost: &str, exchange: &str) -> BrokerResult<()> {
        let state = self.meta.state.read().expect("metadata lock");
        match state.exchange(vhost, exchange) {
            None => Err(BrokerError::new(
                ReplyCode::NotFound,
                format!("no exchange '{exchange}' in vhost '{vhost}'"),
            )),
            Some(x) if x.internal => Err(BrokerError::new(
                ReplyCode::AccessRefused,
                format!("cannot publish to internal exchange '{exchange}' in vhost '{vhost}'"),
            )),
            Some(_) => Ok(()),
        }
    }

    /// Whether `user` has the `impersonator` tag (may publish with another `user_id`).
    pub fn is_impersonator(&self, user: &str) -> bool {
        self.read_meta()
            .user(user)
            .is_some_and(|u| u.tags.iter().any(|t| t == "impersonator"))
    }

    /// The names of the queues a publish routes to (its exchange checked first).
    fn route_names(
        &self,
        vhost: &str,
        exchange: &str,
        routing_key: &str,
        extra_keys: &[String],
        headers: Option<&FieldTable>,
    ) -> BrokerResult<Vec<String>> {
        self.check_publish(vhost, exchange)?;
        let state = self.read_meta();
        let keys = std::iter::once(routing_key).chain(extra_keys.iter().map(String::as_str));
        Ok(state
            .route_keys(vhost, exchange, keys, headers)
            .queues
            .into_iter()
            .collect())
    }

    /// [`Broker::route`] without waiting: `None` when a routed queue must be started or
    /// linked first (then `route` does that). The publish path's common case.
    pub fn try_route(
        &self,
        vhost: &str,
        exchange: &str,
        routing_key: &str,
        extra_keys: &[String],
        headers: Option<&FieldTable>,
    ) -> Option<BrokerResult<Routed>> {
        let names = match self.route_names(vhost, exchange, routing_key, extra_keys, headers) {
            Ok(names) => names,
            Err(e) => return Some(Err(e)),
        };
        let mut queues = Vec::with_capacity(names.len());
        for name in &names {
            queues.push(self.queues.for_clients(vhost, name)?);
        }
        self.stats.routed(vhost, exchange, queues.len());
        Some(Ok(Routed {
            queues,
            unavailable: 0,
        }))
    }

    /// The queues a publish goes to: by its routing key and `extra_keys` (from its `CC` /
    /// `BCC` headers), and by its decoded `headers` for headers exchanges. A bound queue
    /// that exists but cannot take messages here (its group or actor failed to start)
    /// is counted in `unavailable`: the publisher is told (a nack), never silently
    /// dropped from the route. A queue deleted meanwhile is simply not routed to.
    pub async fn route(
        &self,
        vhost: &str,
        exchange: &str,
        routing_key: &str,
        extra_keys: &[String],
        headers: Option<&FieldTable>,
    ) -> BrokerResult<Routed> {
        let names = self.route_names(vhost, exchange, routing_key, extra_keys, headers)?;
        let mut routed = Routed {
            queues: Vec::with_capacity(names.len()),
            unavailable: 0,
        };
        for name in names {
            match self.queues.for_clients(vhost, &name) {
                Some(h) => routed.queues.push(h),
                None => match self.ensure_queue(vhost, &name).await {
                    Ok(h) => routed.queues.push(h),
                    Err(_) if self.queue_record(vhost, &name).is_none() => {}
                    Err(e) => {
                        warn!(
                            vhost,
                            queue = name,
                            error = e.text,
                            "a routed queue cannot take messages"
                        );
                        routed.unavailable += 1;
                    }
                },
            }
        }
        let targets = routed.queues.len() + routed.unavailable;
        self.stats.routed(vhost, exchange, targets);
        Ok(routed)
    }

    /// A client connection ended: its exclusive queues go.
    pub async fn connection_closed(&self, conn: u64) {
        let owner = (self.node_id, conn);
        let owns = self
            .meta
            .state
            .read()
            .expect("metadata lock")
            .has_queues_of_owner(owner);
        if owns {
            if let Err(e) = self
                .propose(MetaCommand::DeleteQueuesOfOwner { owner })
                .await
            {
                warn!(error = ?e, "could not delete exclusive queues");
            }
        }
    }
}

/// Where a publish goes: the queues that take it, and how many more it was routed to
/// that cannot (see [`Broker::route`]).
#[derive(Debug, Default)]
pub struct Routed {
    pub queues: Vec<QueueHandle>,
    pub unavailable: usize,
}

pub(super) async fn run_events(
    broker: std::sync::Weak<Broker>,
    mut rx: mpsc::UnboundedReceiver<BrokerEvent>,
) {
    while let Some(event) = rx.recv().await {
        let Some(broker) = broker.upgrade() else {
            return;
        };
        match event {
            BrokerEvent::AutoDelete { vhost, name } => {
                let still_unused = broker.queues.actor(&vhost, &name);
                if let Some(h) = still_unused {
                    if h.status().await.is_some_and(|s| s.consumers == 0) {
                        let _ = broker
                            .propose(MetaCommand::DeleteQueue { vhost, name })
                            .await;
                    }
                }
            }
            BrokerEvent::StartReplica { vhost, name } => {
                if let Err(e) = broker.ensure_replica(&vhost, &name).await {
                    warn!(vhost, name, error = ?e, "could not start the queue's replica");
                }
            }
            BrokerEvent::MembersChanged {
                vhost,
                name,
                group,
                members,
            } => {
                let result = if members.contains(&broker.node_id) {
                    broker.ensure_replica(&vhost, &name).await
                } else if broker.raft.group(group).is_some() {
                    broker
                        .raft
                        .remove_group(group)
                        .await
                        .map_err(|e| group_error(group, e))
                } else {
                    Ok(())
                };
                if let Err(e) = result {
                    warn!(vhost, name, error = ?e, "could not follow the queue's new members");
                }
            }
            BrokerEvent::RemoveGroup { group } => {
                if let Err(e) = broker.raft.remove_group(group).await {
                    warn!(group, error = ?e, "could not remove queue group");
                }
            }
        }
    }
}

/// A queue group that could not start, as a client sees it.
pub(super) fn group_error(group: u64, e: crate::raft::RaftError) -> BrokerError {
    BrokerError::new(
        ReplyCode::InternalError,
        format!("queue group {group}: {e}"),
    )
}

/// Start a queue's actor over `machine` and `backend`.
pub(super) fn spawn_actor(
    events: &mpsc::UnboundedSender<BrokerEvent>,
    stats: Arc<crate::stats::QueueStats>,
    vhost: &str,
    name: &str,
    machine: Arc<Mutex<QueueMachine>>,
    backend: Backend,
    auto_delete: bool,
) -> QueueHandle {
    let (tx, rx) = mpsc::unbounded_channel();
    let handle = QueueHandle::new(vhost.to_owned(), name.to_owned(), tx);
    let actor = QueueActor::new(
        handle.clone(),
        machine,
        backend,
        rx,
        events.clone(),
        auto_delete,
    )
    .counting_into(stats);
    tokio::spawn(actor.run());
    handle
}
