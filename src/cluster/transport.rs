//! `GrpcTransport`: raft/'s [`GroupTransport`] over gRPC. Each call goes to the target
//! peer's batcher, a task that sends whatever group RPCs are queued for that peer at that
//! moment as one batch (so a burst from many groups shares one frame, while a lone RPC
//! goes out at once, never waiting for company). Batches travel in order on the peer's
//! one `Raft.Stream`; a snapshot goes as a `Raft.Call` of its own.

use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tracing::debug;

use super::pb::raft::{RaftBatch, RaftRequest};
use super::pb::{kind_to_pb, reply_from_pb};
use super::peers::{PeerRaftClient, Peers, TransportSettings};
use super::raft_stream::{fail_all, RaftStream, ReplyTo};
use crate::raft::{GroupId, GroupTransport, NodeId, RpcKind, TransportError, TransportFuture};

/// One queued group RPC and where its answer goes.
pub(crate) struct Pending {
    request: RaftRequest,
    timeout: Duration,
    reply: ReplyTo,
}

/// Feeds one peer's batcher; the batcher ends when every sender is dropped.
pub(crate) type BatchSender = mpsc::UnboundedSender<Pending>;

/// Raft RPCs over one gRPC connection per peer. Cheap to clone.
#[derive(Clone)]
pub struct GrpcTransport {
    peers: Peers,
}

impl GrpcTransport {
    /// A transport to the peers in `peers` (addresses may be added later).
    pub fn new(peers: Peers) -> GrpcTransport {
        GrpcTransport { peers }
    }
}

impl GroupTransport for GrpcTransport {
    fn call(
        &self,
        target: NodeId,
        group: GroupId,
        kind: RpcKind,
        payload: Vec<u8>,
    ) -> TransportFuture {
        // Queued now, not when the future is first polled: calls to one peer leave in the
        // order they were made (pipelined appends rely on it).
        let timeout = self.peers.settings().timeout_for(kind, payload.len());
        let (reply, answer) = oneshot::channel();
        let queued = match self.peers.get(target) {
            None => Err(TransportError(format!(
                "node {target}: no address known for this peer"
            ))),
            Some(peer) => {
                let request = RaftRequest {
                    group_id: group,
                    kind: kind_to_pb(kind) as i32,
                    payload,
                };
                let pending = Pending {
                    request,
                    timeout,
                    reply,
                };
                peer.batches
                    .send(pending)
                    .map_err(|_| TransportError(format!("node {target}: peer was removed")))
            }
        };
        Box::pin(async move {
            queued?;
            match tokio::time::timeout(timeout, answer).await {
                Ok(Ok(result)) => result,
                Ok(Err(_)) => Err(TransportError(format!("node {target}: call dropped"))),
                Err(_) => Err(TransportError(format!(
                    "node {target}: {kind:?} for group {group} timed out after {timeout:?}"
                ))),
            }
        })
    }
}

/// Start the batcher of peer `node`. Batches go out in order on one `Raft.Stream`
/// (`raft_stream.rs`), opened on first use and again after it ends; snapshots, which
/// can be large, go in unary calls of their own instead, so they hold up nothing.
pub(crate) fn spawn_batcher(
    node: NodeId,
    client: PeerRaftClient,
    settings: TransportSettings,
) -> BatchSender {
    let (tx, mut rx) = mpsc::unbounded_channel::<Pending>();
    tokio::spawn(async move {
        let mut stream: Option<RaftStream> = None;
        while let Some(first) = rx.recv().await {
            let mut bytes = first.request.payload.len();
            let mut batch = vec![first];
            while batch.len() < settings.max_batch_requests && bytes < settings.max_batch_bytes {
                let Ok(next) = rx.try_recv() else { break };
                bytes += next.request.payload.len();
                batch.push(next);
            }
            let snapshot = kind_to_pb(RpcKind::FullSnapshot) as i32;
            let (snapshots, batch): (Vec<_>, Vec<_>) =
                batch.into_iter().partition(|p| p.request.kind == snapshot);
            if !snapshots.is_empty() {
                tokio::spawn(send_batch(node, client.clone(), snapshots));
            }
            if batch.is_empty() {
                continue;
            }
            let (requests, replies): (Vec<_>, Vec<_>) =
                batch.into_iter().map(|p| (p.request, p.reply)).unzip();
            if stream.as_ref().is_none_or(RaftStream::is_closed) {
                let open = RaftStream::open(node, client.clone());
                stream = match tokio::time::timeout(settings.rpc_timeout, open).await {
                    Ok(Ok(opened)) => Some(opened),
                    Ok(Err(e)) => {
                        fail_all(replies, &e);
                        continue;
                    }
                    Err(_) => {
                        fail_all(
                            replies,
                            &format!("node {node}: opening the raft stream timed out"),
                        );
                        continue;
                    }
                };
            }
            if let Some(stream) = stream.as_mut() {
                stream.send(requests, replies);
            }
        }
        debug!(node, "peer batcher ended");
    });
    tx
}

/// Send one batch and hand each reply to its caller (all get the error if the call fails).
async fn send_batch(node: NodeId, mut client: PeerRaftClient, batch: Vec<Pending>) {
    let timeout = batch.iter().map(|p| p.timeout).max().unwrap_or_default();
    let (requests, replies): (Vec<_>, Vec<_>) =
        batch.into_iter().map(|p| (p.request, p.reply)).unzip();
    let count = requests.len();
    let mut call = tonic::Request::new(RaftBatch { requests, id: 0 });
    call.set_timeout(timeout);
    let outcome = match tokio::time::timeout(timeout, client.call(call)).await {
        Ok(Ok(response)) => Ok(response.into_inner().replies),
        Ok(Err(status)) => Err(format!(
            "node {node}: {:?}: {}",
            status.code(),
            status.message()
        )),
        Err(_) => Err(format!("node {node}: batch timed out after {timeout:?}")),
    };
    match outcome {
        Ok(answers) if answers.len() == count => {
            for (reply, answer) in replies.into_iter().zip(answers) {
                let _ = reply.send(reply_from_pb(answer).map_err(TransportError));
            }
        }
        Ok(answers) => {
            let e = format!("node {node}: {} replies to {count} requests", answers.len());
            fail_all(replies, &e);
        }
        Err(e) => fail_all(replies, &e),
    }
}
