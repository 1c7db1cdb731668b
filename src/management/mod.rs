//! The management HTTP API: RabbitMQ 3.10's `/api/*` (paths, JSON keys, status codes)
//! on each node's `--http-port`, answering for the whole cluster through the node's admin
//! interface ([`AdminHandler`], the one warrenctl uses), so it reads the same read models
//! as warrenctl and changes things through the same broker operations as AMQP clients.
//! The only module that uses axum and the HTTP crates.
//!
//! A request is decoded (`path.rs`), authenticated and authorised (`auth.rs`), routed
//! (`router.rs`) to one handler file per family of endpoints, and answered with
//! RabbitMQ's bodies (`reply.rs`); lists are sorted and paged by `listing.rs` (queues
//! straight from the node's text by `raw_listing.rs`). Every other path is the web
//! UI's (`ui.rs`), whose pages call the API as a browser client.
//! Prometheus metrics are served on a second listener (`prometheus.rs`).

mod access;
mod api;
mod auth;
mod bindings;
mod connections;
mod definitions;
mod exchanges;
mod groups;
mod health;
mod limits;
mod listing;
mod operator_policies;
mod overview;
mod path;
mod policies;
mod prometheus;
mod prometheus_links;
mod queues;
mod raw_listing;
mod replicas;
mod reply;
mod request;
mod router;
mod ui;

pub use api::Settings;

use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, State};
use axum::http::header;
use axum::response::Response;
use axum::Router;
use futures::FutureExt;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tracing::{error, info};

use crate::cluster::AdminHandler;
use api::Api;
use reply::Reply;
use router::Incoming;

/// Largest request body: a definitions file of many thousands of objects.
const MAX_BODY_BYTES: usize = 64 << 20;
/// How long shutdown waits for requests in flight before it drops them.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(2);

/// The running HTTP listener of a node.
pub struct ManagementServer {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

/// Serve the API on `listener` until [`ManagementServer::shutdown`].
pub fn start(
    listener: TcpListener,
    admin: Arc<dyn AdminHandler>,
    settings: Settings,
) -> std::io::Result<ManagementServer> {
    let api = Arc::new(Api::new(admin, settings));
    let app = Router::new().fallback(handle).with_state(api);
    serve(listener, app, "management API")
}

/// Serve Prometheus metrics (`/metrics`, `/metrics/per-object`) on `listener`.
pub fn start_prometheus(
    listener: TcpListener,
    admin: Arc<dyn AdminHandler>,
) -> std::io::Result<ManagementServer> {
    let app = Router::new().fallback(prometheus::handle).with_state(admin);
    serve(listener, app, "Prometheus metrics")
}

fn serve(
    listener: TcpListener,
    app: Router,
    what: &'static str,
) -> std::io::Result<ManagementServer> {
    let addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let service = app.into_make_service_with_connect_info::<SocketAddr>();
        let served = axum::serve(listener, service)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await;
        if let Err(e) = served {
            error!(error = %e, what, "an HTTP listener failed");
        }
    });
    info!(%addr, what, "listening");
    Ok(ManagementServer {
        addr,
        stop: Some(stop),
        task,
    })
}

impl ManagementServer {
    /// Stop listening; requests in flight get a short while to finish.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if tokio::time::timeout(SHUTDOWN_WAIT, &mut self.task)
            .await
            .is_err()
        {
            self.task.abort();
        }
    }
}

async fn handle(
    State(api): State<Arc<Api>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: axum::extract::Request,
) -> Response {
    let (parts, body) = request.into_parts();
    if !ui::is_api(parts.uri.path()) {
        return ui::serve(&parts.method, parts.uri.path());
    }
    let body = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(body) => body,
        Err(_) => {
            return Reply::error(413, "bad_request", "request body too large").into_response()
        }
    };
    let incoming = Incoming {
        method: parts.method,
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        authorization: parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        reason: parts
            .headers
            .get("x-reason")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        peer: peer.ip(),
        body,
    };
    let path = incoming.path.clone();
    // No request may take the node down: a bug in a handler is a 500 for that request.
    match AssertUnwindSafe(router::answer(&api, incoming))
        .catch_unwind()
        .await
    {
        Ok(reply) => reply.into_response(),
        Err(_) => {
            error!(path, "a management request panicked");
            Reply::internal("the request failed").into_response()
        }
    }
}
