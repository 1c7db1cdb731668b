//! The admin service warrenctl talks to (`proto/admin.proto`): its domain types, the
//! server side over an [`AdminHandler`] the node implements, and [`AdminClient`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Response, Status};

use super::admin_command::{command_from_pb, outcome_to_pb, CommandFuture, CommandRequest};
use super::admin_policies::{policy_from_pb, policy_to_pb, PoliciesFuture, PolicyInfo};
use super::admin_queues::{
    change_to_pb, leaders_to_pb, member_to_pb, ChangesFuture, LeadersFuture, MembersFuture,
};
use super::pb::admin;
use super::pb::admin::admin_client;
use super::pb::admin::admin_server::{Admin, AdminServer};
use super::secret::{AttachSecret, ClusterSecret};

/// A listening socket of a node, as rabbitmqctl lists them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenerInfo {
    /// `amqp`, `clustering` or `http`.
    pub protocol: String,
    pub interface: String,
    pub port: u16,
    pub purpose: String,
}

/// What `warrenctl status` shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeStatus {
    pub node_name: String,
    pub node_id: u64,
    pub pid: u32,
    pub version: String,
    pub uptime_ms: u64,
    pub app_running: bool,
    pub listeners: Vec<ListenerInfo>,
    pub data_dir: String,
    pub resident_memory_bytes: u64,
    /// Resource alarms in effect (`memory`).
    pub alarms: Vec<String>,
}

/// A node of the cluster as the answering node sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterNodeInfo {
    pub name: String,
    pub id: u64,
    pub cluster_addr: String,
    /// The answering node itself, or a peer answering its liveness pings.
    pub running: bool,
}

/// What `warrenctl cluster_status` shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterStatus {
    pub cluster_name: String,
    pub node_name: String,
    pub nodes: Vec<ClusterNodeInfo>,
    pub listeners: Vec<ListenerInfo>,
}

/// A node joining the cluster, as it asks a member to add it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JoiningNode {
    pub id: u64,
    pub name: String,
    pub cluster_addr: String,
}

/// One queue as `list_queues` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueInfo {
    pub vhost: String,
    pub name: String,
    pub queue_type: String,
    /// Empty when no leader is known.
    pub leader: String,
    pub members: Vec<String>,
    pub online: Vec<String>,
    /// `None` when the node running the queue did not answer.
    pub messages: Option<u64>,
    pub consumers: Option<u32>,
    /// The policy that applies (empty: none) and its definition (a JSON object).
    pub policy: String,
    pub effective_policy_definition: String,
    /// WarrenMQ's `mirroring` column: `raft` for a replicated queue, `not mirrored:
    /// REASON` for a classic queue an `ha-mode` policy matches in vain, else empty.
    pub mirroring: String,
}

/// The outcome of `list_queues`.
pub type QueuesFuture<'a> = futures::future::BoxFuture<'a, Result<Vec<QueueInfo>, String>>;

/// The outcome of an admin command: `Err` carries the text shown to the user.
pub type AdminFuture<'a> = futures::future::BoxFuture<'a, Result<(), String>>;

/// The node's answers to admin calls.
pub trait AdminHandler: Send + Sync + 'static {
    fn status(&self) -> NodeStatus;
    fn cluster_status(&self) -> ClusterStatus;
    fn stop_app(&self) -> AdminFuture<'_>;
    fn start_app(&self) -> AdminFuture<'_>;
    fn reset(&self) -> AdminFuture<'_>;
    /// `node`: a node name or `host:cluster-port`.
    fn join_cluster(&self, node: String) -> AdminFuture<'_>;
    fn forget_cluster_node(&self, node: String) -> AdminFuture<'_>;
    fn add_node(&self, node: JoiningNode) -> AdminFuture<'_>;
    fn list_queues(&self, vhost: String, local_only: bool) -> QueuesFuture<'_>;
    /// `node`: a node name or `host:cluster-port`.
    fn change_member(
        &self,
        vhost: String,
        queue: String,
        node: String,
        add: bool,
    ) -> AdminFuture<'_>;
    fn grow_shrink(&self, node: String, grow: bool, strategy: String) -> ChangesFuture<'_>;
    fn quorum_status(&self, vhost: String, queue: String, local_only: bool) -> MembersFuture<'_>;
    fn rebalance(&self) -> LeadersFuture<'_>;
    fn transfer_queue_leader(&self, vhost: String, queue: String, to: u64) -> AdminFuture<'_>;
    fn set_policy(&self, policy: PolicyInfo) -> AdminFuture<'_>;
    fn clear_policy(&self, vhost: String, name: String) -> AdminFuture<'_>;
    fn list_policies(&self, vhost: String) -> PoliciesFuture<'_>;
    fn command(&self, request: CommandRequest) -> CommandFuture<'_>;
}

/// An admin command's outcome as a gRPC reply.
fn done(result: Result<(), String>) -> Result<Response<admin::Empty>, Status> {
    result
        .map(|()| Response::new(admin::Empty {}))
        .map_err(Status::failed_precondition)
}

pub(super) struct AdminService(pub(super) Arc<dyn AdminHandler>);

/// Largest admin message either way: a definitions file of many thousands of objects
/// (`import_definitions`, `export_definitions`) is larger than tonic's 4 MiB default.
const ADMIN_MESSAGE_BYTES: usize = 64 << 20;

pub(super) fn server(handler: Arc<dyn AdminHandler>) -> AdminServer<AdminService> {
    AdminServer::new(AdminService(handler))
        .max_decoding_message_size(ADMIN_MESSAGE_BYTES)
        .max_encoding_message_size(ADMIN_MESSAGE_BYTES)
}

#[tonic::async_trait]
impl Admin for AdminService {
    async fn status(
        &self,
        _: Request<admin::StatusRequest>,
    ) -> Result<Response<admin::NodeStatus>, Status> {
        Ok(Response::new(status_to_pb(self.0.status())))
    }

    async fn cluster_status(
        &self,
        _: Request<admin::ClusterStatusRequest>,
    ) -> Result<Response<admin::ClusterStatusReply>, Status> {
        Ok(Response::new(cluster_to_pb(self.0.cluster_status())))
    }

    async fn stop_app(&self, _: Request<admin::Empty>) -> Result<Response<admin::Empty>, Status> {
        done(self.0.stop_app().await)
    }

    async fn start_app(&self, _: Request<admin::Empty>) -> Result<Response<admin::Empty>, Status> {
        done(self.0.start_app().await)
    }

    async fn reset(&self, _: Request<admin::Empty>) -> Result<Response<admin::Empty>, Status> {
        done(self.0.reset().await)
    }

    async fn join_cluster(
        &self,
        request: Request<admin::NodeRequest>,
    ) -> Result<Response<admin::Empty>, Status> {
        done(self.0.join_cluster(request.into_inner().node).await)
    }

    async fn forget_cluster_node(
        &self,
        request: Request<admin::NodeRequest>,
    ) -> Result<Response<admin::Empty>, Status> {
        done(self.0.forget_cluster_node(request.into_inner().node).await)
    }

    async fn list_queues(
        &self,
        request: Request<admin::ListQueuesRequest>,
    ) -> Result<Response<admin::ListQueuesReply>, Status> {
        let r = request.into_inner();
        let queues = self
            .0
            .list_queues(r.vhost, r.local_only)
            .await
            .map_err(Status::failed_precondition)?;
        Ok(Response::new(admin::ListQueuesReply {
            queues: queues.into_iter().map(queue_to_pb).collect(),
        }))
    }

    async fn change_member(
        &self,
        request: Request<admin::ChangeMemberRequest>,
    ) -> Result<Response<admin::Empty>, Status> {
        let r = request.into_inner();
        done(self.0.change_member(r.vhost, r.queue, r.node, r.add).await)
    }

    async fn grow_shrink(
        &self,
        request: Request<admin::GrowShrinkRequest>,
    ) -> Result<Response<admin::GrowShrinkReply>, Status> {
        let r = request.into_inner();
        let changes = self
            .0
            .grow_shrink(r.node, r.grow, r.strategy)
            .await
            .map_err(Status::failed_precondition)?;
        Ok(Response::new(admin::GrowShrinkReply {
            changes: changes.into_iter().map(change_to_pb).collect(),
        }))
    }

    async fn quorum_status(
        &self,
        request: Request<admin::QuorumStatusRequest>,
    ) -> Result<Response<admin::QuorumStatusReply>, Status> {
        let r = request.into_inner();
        let members = self
            .0
            .quorum_status(r.vhost, r.queue, r.local_only)
            .await
            .map_err(Status::failed_precondition)?;
        Ok(Response::new(admin::QuorumStatusReply {
            members: members.into_iter().map(member_to_pb).collect(),
        }))
    }

    async fn rebalance(
        &self,
        _: Request<admin::Empty>,
    ) -> Result<Response<admin::RebalanceReply>, Status> {
        let nodes = self
            .0
            .rebalance()
            .await
            .map_err(Status::failed_precondition)?;
        Ok(Response::new(admin::RebalanceReply {
            nodes: nodes.into_iter().map(leaders_to_pb).collect(),
        }))
    }

    async fn transfer_queue_leader(
        &self,
        request: Request<admin::TransferQueueLeaderRequest>,
    ) -> Result<Response<admin::Empty>, Status> {
        let r = request.into_inner();
        done(self.0.transfer_queue_leader(r.vhost, r.queue, r.to).await)
    }

    async fn set_policy(
        &self,
        request: Request<admin::PolicyInfo>,
    ) -> Result<Response<admin::Empty>, Status> {
        done(
            self.0
                .set_policy(policy_from_pb(request.into_inner()))
                .await,
        )
    }

    async fn clear_policy(
        &self,
        request: Request<admin::ClearPolicyRequest>,
    ) -> Result<Response<admin::Empty>, Status> {
        let r = request.into_inner();
        done(self.0.clear_policy(r.vhost, r.name).await)
    }

    async fn command(
        &self,
        request: Request<admin::CommandRequest>,
    ) -> Result<Response<admin::CommandReply>, Status> {
        let outcome = self
            .0
            .command(command_from_pb(request.into_inner()))
            .await
            .map_err(Status::failed_precondition)?;
        Ok(Response::new(outcome_to_pb(outcome)))
    }

    async fn list_policies(
        &self,
        request: Request<admin::ListPoliciesRequest>,
    ) -> Result<Response<admin::ListPoliciesReply>, Status> {
        let policies = self
            .0
            .list_policies(request.into_inner().vhost)
            .await
            .map_err(Status::failed_precondition)?;
        Ok(Response::new(admin::ListPoliciesReply {
            policies: policies.into_iter().map(policy_to_pb).collect(),
        }))
    }

    async fn add_node(
        &self,
        request: Request<admin::AddNodeRequest>,
    ) -> Result<Response<admin::Empty>, Status> {
        let r = request.into_inner();
        done(
            self.0
                .add_node(JoiningNode {
                    id: r.id,
                    name: r.name,
                    cluster_addr: r.cluster_addr,
                })
                .await,
        )
    }
}

/// The cluster port a node named `name@HOST` listens on.
pub const DEFAULT_CLUSTER_PORT: u16 = 25672;

/// Where a node is: `host:port`, or `name@HOST` (the default cluster port on HOST).
pub fn resolve_node(node: &str) -> Result<SocketAddr, String> {
    use std::net::ToSocketAddrs;
    let target = match node.split_once('@') {
        Some((_, host)) => format!("{host}:{DEFAULT_CLUSTER_PORT}"),
        None => node.to_string(),
    };
    target
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| {
            format!("cannot resolve node '{node}': give it as host:cluster-port or warren@HOST")
        })
}

/// A failed admin call, with a message for the command line.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The node could not be reached (not running, wrong address).
    #[error("unable to connect to {addr}: {reason}")]
    Unreachable { addr: SocketAddr, reason: String },
    /// The node refused the call (bad secret) or failed it.
    #[error("{0}")]
    Refused(String),
}

/// A client of one node's admin service.
pub struct AdminClient {
    pub(super) inner: admin_client::AdminClient<
        tonic::service::interceptor::InterceptedService<Channel, AttachSecret>,
    >,
}

impl AdminClient {
    /// Connect to the node whose cluster port is `addr`.
    pub async fn connect(
        addr: SocketAddr,
        secret: &ClusterSecret,
        timeout: Duration,
    ) -> Result<AdminClient, AdminError> {
        let unreachable = |reason: String| AdminError::Unreachable { addr, reason };
        let endpoint = Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|e| unreachable(e.to_string()))?
            .connect_timeout(timeout)
            .timeout(timeout);
        let channel = endpoint
            .connect()
            .await
            .map_err(|e| unreachable(error_chain(&e)))?;
        Ok(AdminClient {
            inner: admin_client::AdminClient::with_interceptor(channel, secret.attach())
                .max_decoding_message_size(ADMIN_MESSAGE_BYTES)
                .max_encoding_message_size(ADMIN_MESSAGE_BYTES),
        })
    }

    pub async fn status(&mut self) -> Result<NodeStatus, AdminError> {
        let reply = self
            .inner
            .status(admin::StatusRequest {})
            .await
            .map_err(refused)?;
        Ok(status_from_pb(reply.into_inner()))
    }

    pub async fn cluster_status(&mut self) -> Result<ClusterStatus, AdminError> {
        let reply = self
            .inner
            .cluster_status(admin::ClusterStatusRequest {})
            .await
            .map_err(refused)?;
        Ok(cluster_from_pb(reply.into_inner()))
    }

    pub async fn stop_app(&mut self) -> Result<(), AdminError> {
        self.inner
            .stop_app(admin::Empty {})
            .await
            .map_err(refused)?;
        Ok(())
    }

    pub async fn start_app(&mut self) -> Result<(), AdminError> {
        self.inner
            .start_app(admin::Empty {})
            .await
            .map_err(refused)?;
        Ok(())
    }

    pub async fn reset(&mut self) -> Result<(), AdminError> {
        self.inner.reset(admin::Empty {}).await.map_err(refused)?;
        Ok(())
    }

    pub async fn join_cluster(&mut self, node: &str) -> Result<(), AdminError> {
        let node = node.to_string();
        self.inner
            .join_cluster(admin::NodeRequest { node })
            .await
            .map_err(refused)?;
        Ok(())
    }

    pub async fn forget_cluster_node(&mut self, node: &str) -> Result<(), AdminError> {
        let node = node.to_string();
        self.inner
            .forget_cluster_node(admin::NodeRequest { node })
            .await
            .map_err(refused)?;
        Ok(())
    }

    pub async fn list_queues(
        &mut self,
        vhost: &str,
        local_only: bool,
    ) -> Result<Vec<QueueInfo>, AdminError> {
        let request = admin::ListQueuesRequest {
            vhost: vhost.to_string(),
            local_only,
        };
        let reply = self.inner.list_queues(request).await.map_err(refused)?;
        Ok(reply
            .into_inner()
            .queues
            .into_iter()
            .map(queue_from_pb)
            .collect())
    }

    pub async fn add_node(&mut self, node: &JoiningNode) -> Result<(), AdminError> {
        let request = admin::AddNodeRequest {
            id: node.id,
            name: node.name.clone(),
            cluster_addr: node.cluster_addr.clone(),
        };
        self.inner.add_node(request).await.map_err(refused)?;
        Ok(())
    }
}

pub(super) fn refused(status: Status) -> AdminError {
    match status.code() {
        tonic::Code::Unauthenticated => AdminError::Refused(format!(
            "the node refused the call: {} (check the cluster secret file)",
            status.message()
        )),
        _ => AdminError::Refused(status.message().to_string()),
    }
}

/// An error and its sources on one line (tonic's top-level text is just "transport error").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn queue_to_pb(q: QueueInfo) -> admin::QueueInfo {
    admin::QueueInfo {
        vhost: q.vhost,
        name: q.name,
        r#type: q.queue_type,
        leader: q.leader,
        members: q.members,
        online: q.online,
        messages: q.messages,
        consumers: q.consumers,
        policy: q.policy,
        effective_policy_definition: q.effective_policy_definition,
        mirroring: q.mirroring,
    }
}

fn queue_from_pb(q: admin::QueueInfo) -> QueueInfo {
    QueueInfo {
        vhost: q.vhost,
        name: q.name,
        queue_type: q.r#type,
        leader: q.leader,
        members: q.members,
        online: q.online,
        messages: q.messages,
        consumers: q.consumers,
        policy: q.policy,
        effective_policy_definition: q.effective_policy_definition,
        mirroring: q.mirroring,
    }
}

fn listener_to_pb(l: ListenerInfo) -> admin::Listener {
    admin::Listener {
        protocol: l.protocol,
        interface: l.interface,
        port: u32::from(l.port),
        purpose: l.purpose,
    }
}

fn listener_from_pb(l: admin::Listener) -> ListenerInfo {
    ListenerInfo {
        protocol: l.protocol,
        interface: l.interface,
        port: u16::try_from(l.port).unwrap_or(0),
        purpose: l.purpose,
    }
}

fn status_to_pb(s: NodeStatus) -> admin::NodeStatus {
    admin::NodeStatus {
        node_name: s.node_name,
        node_id: s.node_id,
        pid: s.pid,
        version: s.version,
        uptime_ms: s.uptime_ms,
        app_running: s.app_running,
        listeners: s.listeners.into_iter().map(listener_to_pb).collect(),
        data_dir: s.data_dir,
        resident_memory_bytes: s.resident_memory_bytes,
        alarms: s.alarms,
    }
}

fn status_from_pb(s: admin::NodeStatus) -> NodeStatus {
    NodeStatus {
        node_name: s.node_name,
        node_id: s.node_id,
        pid: s.pid,
        version: s.version,
        uptime_ms: s.uptime_ms,
        app_running: s.app_running,
        listeners: s.listeners.into_iter().map(listener_from_pb).collect(),
        data_dir: s.data_dir,
        resident_memory_bytes: s.resident_memory_bytes,
        alarms: s.alarms,
    }
}

fn cluster_to_pb(c: ClusterStatus) -> admin::ClusterStatusReply {
    admin::ClusterStatusReply {
        cluster_name: c.cluster_name,
        node_name: c.node_name,
        nodes: c
            .nodes
            .into_iter()
            .map(|n| admin::ClusterNode {
                name: n.name,
                id: n.id,
                cluster_addr: n.cluster_addr,
                running: n.running,
            })
            .collect(),
        listeners: c.listeners.into_iter().map(listener_to_pb).collect(),
    }
}

fn cluster_from_pb(c: admin::ClusterStatusReply) -> ClusterStatus {
    ClusterStatus {
        cluster_name: c.cluster_name,
        node_name: c.node_name,
        nodes: c
            .nodes
            .into_iter()
            .map(|n| ClusterNodeInfo {
                name: n.name,
                id: n.id,
                cluster_addr: n.cluster_addr,
                running: n.running,
            })
            .collect(),
        listeners: c.listeners.into_iter().map(listener_from_pb).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_round_trips_through_protobuf() {
        let s = NodeStatus {
            node_name: "warren@node1".into(),
            node_id: 42,
            pid: 7,
            version: "0.1.0".into(),
            uptime_ms: 1234,
            app_running: true,
            listeners: vec![ListenerInfo {
                protocol: "amqp".into(),
                interface: "127.0.0.1".into(),
                port: 5672,
                purpose: "AMQP 0-9-1".into(),
            }],
            data_dir: "/tmp/x".into(),
            resident_memory_bytes: 10 << 20,
            alarms: Vec::new(),
        };
        assert_eq!(status_from_pb(status_to_pb(s.clone())), s);
        let c = ClusterStatus {
            cluster_name: "warren@node1".into(),
            node_name: "warren@node1".into(),
            nodes: vec![ClusterNodeInfo {
                name: "warren@node2".into(),
                id: 3,
                cluster_addr: "127.0.0.1:25673".into(),
                running: false,
            }],
            listeners: s.listeners.clone(),
        };
        assert_eq!(cluster_from_pb(cluster_to_pb(c.clone())), c);
    }
}
