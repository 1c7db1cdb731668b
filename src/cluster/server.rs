//! `ClusterServer`: this node's gRPC server for its peers. `Raft.Call` and `Raft.Stream`
//! hand each group RPC of a batch to the local [`RaftRegistry`] by group id (the stream
//! in the order sent, `raft_stream.rs`); `Liveness.Ping` answers at once. Both refuse
//! calls without the cluster secret, and count what they serve (the idle-cost tests read
//! the counts).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::Stream;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tonic::transport::server::TcpIncoming;
use tonic::transport::Server;
use tonic::{Request, Response, Status, Streaming};
use tracing::{info, warn};

use super::admin::AdminHandler;
use super::link::{LinkHandler, LinkService};
use super::pb::cluster::liveness_server::{Liveness, LivenessServer};
use super::pb::cluster::queue_link_server::QueueLinkServer;
use super::pb::cluster::{PingReply, PingRequest};
use super::pb::raft::raft_failure::Code;
use super::pb::raft::raft_server::{Raft, RaftServer};
use super::pb::raft::{raft_reply, RaftBatch, RaftReplies, RaftReply, RaftRequest};
use super::pb::{failure, kind_from_pb, reply_to_pb};
use super::peers::{TransportSettings, CONNECTION_WINDOW, STREAM_WINDOW};
use super::raft_stream::{self, BatchCounts, Handled};
use super::secret::ClusterSecret;
use crate::raft::RaftRegistry;

/// Cancelled or failed streams tolerated on one connection (h2's default is 20 to 1,024).
pub(crate) const RESET_STREAMS_ALLOWED: usize = 1 << 16;

/// How long a graceful shutdown may wait for in-flight calls before the server is dropped.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// What the server has served since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServerCounts {
    /// Raft batches accepted (`Raft.Call` calls and `Raft.Stream` frames).
    pub raft_calls: u64,
    /// Group RPCs carried by those calls.
    pub group_rpcs: u64,
    /// `Liveness.Ping` calls answered.
    pub pings: u64,
}

#[derive(Default)]
struct Stats {
    raft: Arc<BatchCounts>,
    pings: AtomicU64,
}

/// State shared by the services and the server handle.
struct Shared {
    /// `None` while the node's app is stopped (`stop_app`): it takes no part in Raft then.
    /// Taken at shutdown: connections that linger (their tasks outlive the server's)
    /// must not keep the registry, and so the node's database, alive.
    registry: Mutex<Option<RaftRegistry>>,
    stats: Stats,
    /// Cleared at shutdown: calls on connections that linger are refused from then on.
    serving: AtomicBool,
    /// Random per start, so peers can tell a restart from a hiccup.
    incarnation: u64,
    /// Turns true at shutdown: ends the `Raft.Stream`s peers hold open.
    stopping: watch::Sender<bool>,
}

impl Shared {
    fn check_serving(&self) -> Result<(), Status> {
        if self.serving.load(Ordering::SeqCst) {
            Ok(())
        } else {
            Err(Status::unavailable("node is shutting down"))
        }
    }

    fn registry(&self) -> Result<RaftRegistry, Status> {
        self.check_serving()?;
        let registry = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        registry
            .clone()
            .ok_or_else(|| Status::unavailable("the node's app is stopped"))
    }
}

/// A running cluster gRPC server.
pub struct ClusterServer {
    local_addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<Result<(), tonic::transport::Error>>,
}

impl ClusterServer {
    /// Serve `listener` for the peers of the node that runs `registry`.
    pub fn start(
        listener: TcpListener,
        registry: RaftRegistry,
        secret: &ClusterSecret,
        settings: &TransportSettings,
    ) -> io::Result<ClusterServer> {
        Self::start_with_admin(listener, Some(registry), secret, settings, None, None)
    }

    /// [`ClusterServer::start`], also serving warrenctl's admin service from `admin` and
    /// queue links from `links`; the registry may come later
    /// ([`ClusterServer::set_registry`]).
    pub fn start_with_admin(
        listener: TcpListener,
        registry: Option<RaftRegistry>,
        secret: &ClusterSecret,
        settings: &TransportSettings,
        admin: Option<Arc<dyn AdminHandler>>,
        links: Option<Arc<dyn LinkHandler>>,
    ) -> io::Result<ClusterServer> {
        let local_addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            registry: Mutex::new(registry),
            stats: Stats::default(),
            serving: AtomicBool::new(true),
            incarnation: rand::random(),
            stopping: watch::Sender::new(false),
        });
        let raft = RaftServer::new(RaftService(shared.clone()))
            .max_decoding_message_size(settings.max_message_bytes)
            .max_encoding_message_size(settings.max_message_bytes);
        let raft = tonic::service::interceptor::InterceptedService::new(raft, secret.check());
        let liveness =
            LivenessServer::with_interceptor(LivenessService(shared.clone()), secret.check());
        let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
        let (shutdown, stop) = oneshot::channel::<()>();
        // Peers are trusted (they hold the secret): a burst of cancelled calls (timeouts
        // under load) must not make h2 drop the whole connection with every group's RPCs.
        let router = Server::builder()
            .http2_max_pending_accept_reset_streams(Some(RESET_STREAMS_ALLOWED))
            .http2_max_local_error_reset_streams(Some(RESET_STREAMS_ALLOWED))
            .initial_stream_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW)
            .add_service(raft)
            .add_service(liveness)
            .add_optional_service(links.map(|handler| {
                let service = QueueLinkServer::new(LinkService(handler))
                    .max_decoding_message_size(settings.max_message_bytes)
                    .max_encoding_message_size(settings.max_message_bytes);
                tonic::service::interceptor::InterceptedService::new(service, secret.check())
            }))
            .add_optional_service(admin.map(|handler| {
                tonic::service::interceptor::InterceptedService::new(
                    super::admin::server(handler),
                    secret.check(),
                )
            }));
        let task = tokio::spawn(async move {
            router
                .serve_with_incoming_shutdown(incoming, async {
                    let _ = stop.await;
                })
                .await
        });
        info!(%local_addr, "cluster server listening");
        Ok(ClusterServer {
            local_addr,
            shared,
            shutdown,
            task,
        })
    }

    /// Serve Raft for `registry` from now on (`None`: refuse Raft and liveness calls, as
    /// a node with a stopped app does).
    pub fn set_registry(&self, registry: Option<RaftRegistry>) {
        *self
            .shared
            .registry
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = registry;
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// What the server has served so far.
    pub fn counts(&self) -> ServerCounts {
        let stats = &self.shared.stats;
        ServerCounts {
            raft_calls: stats.raft.batches.load(Ordering::Relaxed),
            group_rpcs: stats.raft.requests.load(Ordering::Relaxed),
            pings: stats.pings.load(Ordering::Relaxed),
        }
    }

    /// Stop serving: refuse new calls at once, then close the listener and connections,
    /// waiting briefly for calls in flight.
    pub async fn shutdown(self) {
        self.shared.serving.store(false, Ordering::SeqCst);
        self.shared.stopping.send_replace(true);
        let registry = self
            .shared
            .registry
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        drop(registry);
        let _ = self.shutdown.send(());
        let mut task = self.task;
        match tokio::time::timeout(SHUTDOWN_GRACE, &mut task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => warn!(error = %e, "cluster server ended with an error"),
            Ok(Err(e)) => warn!(error = %e, "cluster server task failed"),
            Err(_) => task.abort(),
        }
        info!(addr = %self.local_addr, "cluster server stopped");
    }
}

/// `Raft.Call`: every group RPC of the batch runs at once; replies keep request order.
struct RaftService(Arc<Shared>);

impl RaftService {
    async fn one(registry: &RaftRegistry, request: RaftRequest) -> RaftReply {
        let Some(kind) = kind_from_pb(request.kind) else {
            let message = format!("unknown rpc kind {}", request.kind);
            return RaftReply {
                result: Some(raft_reply::Result::Failure(failure(
                    Code::BadRequest,
                    message,
                ))),
            };
        };
        reply_to_pb(
            registry
                .handle_rpc(request.group_id, kind, &request.payload)
                .await,
        )
    }
}

#[tonic::async_trait]
impl Raft for RaftService {
    async fn call(&self, request: Request<RaftBatch>) -> Result<Response<RaftReplies>, Status> {
        let registry = self.0.registry()?;
        let requests = request.into_inner().requests;
        self.0.stats.raft.record(requests.len());
        let replies =
            futures::future::join_all(requests.into_iter().map(|r| Self::one(&registry, r))).await;
        Ok(Response::new(RaftReplies { replies, id: 0 }))
    }

    type StreamStream = Pin<Box<dyn Stream<Item = Result<RaftReplies, Status>> + Send>>;

    async fn stream(
        &self,
        request: Request<Streaming<RaftBatch>>,
    ) -> Result<Response<Self::StreamStream>, Status> {
        self.0.registry()?;
        let shared = self.0.clone();
        let handle = move |request: RaftRequest| -> Handled {
            match shared.registry() {
                Ok(registry) => Box::pin(async move { Self::one(&registry, request).await }),
                Err(status) => {
                    let reply = RaftReply {
                        result: Some(raft_reply::Result::Failure(failure(
                            Code::NotRunning,
                            status.message().to_string(),
                        ))),
                    };
                    Box::pin(std::future::ready(reply))
                }
            }
        };
        let replies = raft_stream::serve(
            request.into_inner(),
            handle,
            self.0.stats.raft.clone(),
            self.0.stopping.subscribe(),
        );
        Ok(Response::new(Box::pin(replies)))
    }
}

/// `Liveness.Ping`: proof of life, with this node's id and incarnation.
struct LivenessService(Arc<Shared>);

#[tonic::async_trait]
impl Liveness for LivenessService {
    async fn ping(&self, _request: Request<PingRequest>) -> Result<Response<PingReply>, Status> {
        let registry = self.0.registry()?;
        self.0.stats.pings.fetch_add(1, Ordering::Relaxed);
        Ok(Response::new(PingReply {
            node_id: registry.node_id(),
            incarnation: self.0.incarnation,
        }))
    }
}
