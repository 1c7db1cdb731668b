//! The admin service warrenctl talks to (`proto/admin.proto`): its domain types, the
//! server side over an [`AdminHandler`] the node implements, and [`AdminClient`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Response, Status};

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

/// The node's answers to admin calls.
pub trait AdminHandler: Send + Sync + 'static {
    fn status(&self) -> NodeStatus;
    fn cluster_status(&self) -> ClusterStatus;
}

pub(super) struct AdminService(pub(super) Arc<dyn AdminHandler>);

pub(super) fn server(handler: Arc<dyn AdminHandler>) -> AdminServer<AdminService> {
    AdminServer::new(AdminService(handler))
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
    inner: admin_client::AdminClient<
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
            inner: admin_client::AdminClient::with_interceptor(channel, secret.attach()),
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
}

fn refused(status: Status) -> AdminError {
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
