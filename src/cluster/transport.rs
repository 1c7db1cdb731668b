//! `GrpcTransport`: raft/'s [`GroupTransport`] over gRPC. Each call goes to the target
//! peer's batcher, a task that sends whatever group RPCs are queued for that peer at that
//! moment as one `Raft.Call` (so a burst from many groups shares one gRPC call and one
//! HTTP/2 frame round, while a lone RPC goes out at once, never waiting for company).
//! Batches to one peer are concurrent streams on its one connection.

use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tracing::debug;

use super::pb::raft::{RaftBatch, RaftRequest};
use super::pb::{kind_to_pb, reply_from_pb};
use super::peers::{PeerRaftClient, Peers, TransportSettings};
use crate::raft::{GroupId, GroupTransport, NodeId, RpcKind, TransportError, TransportFuture};

/// One queued group RPC and where its answer goes.
pub(crate) struct Pending {
    request: RaftRequest,
    timeout: Duration,
    reply: oneshot::Sender<Result<Vec<u8>, TransportError>>,
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
        let peer = self.peers.get(target);
        let timeout = self.peers.settings().timeout_for(kind);
        Box::pin(async move {
            let peer = peer.ok_or_else(|| {
                TransportError(format!("node {target}: no address known for this peer"))
            })?;
            let (reply, answer) = oneshot::channel();
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
                .map_err(|_| TransportError(format!("node {target}: peer was removed")))?;
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

/// Start the batcher of peer `node`; it sends each batch on its own task.
pub(crate) fn spawn_batcher(
    node: NodeId,
    client: PeerRaftClient,
    settings: TransportSettings,
) -> BatchSender {
    let (tx, mut rx) = mpsc::unbounded_channel::<Pending>();
    tokio::spawn(async move {
        while let Some(first) = rx.recv().await {
            let mut bytes = first.request.payload.len();
            let mut batch = vec![first];
            while batch.len() < settings.max_batch_requests && bytes < settings.max_batch_bytes {
                let Ok(next) = rx.try_recv() else { break };
                bytes += next.request.payload.len();
                batch.push(next);
            }
            tokio::spawn(send_batch(node, client.clone(), batch));
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
    let mut call = tonic::Request::new(RaftBatch { requests });
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

fn fail_all(replies: Vec<oneshot::Sender<Result<Vec<u8>, TransportError>>>, error: &str) {
    for reply in replies {
        let _ = reply.send(Err(TransportError(error.to_string())));
    }
}
