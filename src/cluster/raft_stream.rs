//! `Raft.Stream`: Raft batches to one peer on one long-lived ordered gRPC stream.
//!
//! The caller side ([`RaftStream`]) sends batches as they come and matches each reply
//! frame to its batch by id; the server side ([`serve`]) starts every request of a batch,
//! in order, before it reads the next batch, then finishes them on a task of their own.
//! So a group's AppendEntries reach its Raft in the order the leader sent them, even
//! with several in flight (openraft's pipelined replication, `raft/network.rs`), while
//! slow requests (a forwarded write waits for its commit) hold up nothing behind them.
//! Separate unary calls give no such order: the server runs each on its own task.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures::task::noop_waker_ref;
use futures::{Stream, StreamExt};
use tokio::sync::{mpsc, oneshot, watch};
use tonic::{Status, Streaming};
use tracing::debug;

use super::pb::raft::{RaftBatch, RaftReplies, RaftReply, RaftRequest};
use super::pb::reply_from_pb;
use super::peers::PeerRaftClient;
use crate::raft::TransportError;

/// Where the answer to one request of a batch goes.
pub(crate) type ReplyTo = oneshot::Sender<Result<Vec<u8>, TransportError>>;

/// Batches sent and not yet answered, by id; `None` once the stream has ended.
type Waiting = Arc<Mutex<Option<HashMap<u64, Vec<ReplyTo>>>>>;

/// Above this many unanswered batches, those whose callers all gave up are dropped.
const PRUNE_ABOVE: usize = 4096;

/// The caller side of one stream to a peer.
pub(crate) struct RaftStream {
    node: u64,
    frames: mpsc::UnboundedSender<RaftBatch>,
    waiting: Waiting,
    next_id: u64,
}

impl RaftStream {
    /// Open a stream to peer `node` (waits for the peer to accept it).
    pub(crate) async fn open(node: u64, mut client: PeerRaftClient) -> Result<RaftStream, String> {
        let (frames, rx) = mpsc::unbounded_channel();
        let outgoing = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|frame| (frame, rx))
        });
        let replies = client
            .stream(outgoing)
            .await
            .map_err(|status| format!("node {node}: {:?}: {}", status.code(), status.message()))?
            .into_inner();
        let waiting: Waiting = Arc::new(Mutex::new(Some(HashMap::new())));
        tokio::spawn(read_replies(node, replies, waiting.clone()));
        Ok(RaftStream {
            node,
            frames,
            waiting,
            next_id: 0,
        })
    }

    /// Whether the stream has ended (a new one must be opened).
    pub(crate) fn is_closed(&self) -> bool {
        lock(&self.waiting).is_none() || self.frames.is_closed()
    }

    /// Send one batch; each reply goes to its request's `ReplyTo`. On a stream that has
    /// ended, every caller gets the error at once.
    pub(crate) fn send(&mut self, requests: Vec<RaftRequest>, replies: Vec<ReplyTo>) {
        self.next_id += 1;
        let id = self.next_id;
        {
            let mut waiting = lock(&self.waiting);
            let Some(map) = waiting.as_mut() else {
                drop(waiting);
                fail_all(replies, &format!("node {}: raft stream ended", self.node));
                return;
            };
            if map.len() > PRUNE_ABOVE {
                map.retain(|_, replies| replies.iter().any(|r| !r.is_closed()));
            }
            map.insert(id, replies);
        }
        if self.frames.send(RaftBatch { requests, id }).is_err() {
            if let Some(replies) = lock(&self.waiting).as_mut().and_then(|m| m.remove(&id)) {
                fail_all(replies, &format!("node {}: raft stream ended", self.node));
            }
        }
    }
}

fn lock(waiting: &Waiting) -> std::sync::MutexGuard<'_, Option<HashMap<u64, Vec<ReplyTo>>>> {
    waiting.lock().unwrap_or_else(|e| e.into_inner())
}

/// Hand each reply frame to its batch's callers; when the stream ends, fail the rest.
async fn read_replies(node: u64, mut replies: Streaming<RaftReplies>, waiting: Waiting) {
    let error = loop {
        match replies.next().await {
            Some(Ok(frame)) => {
                let Some(callers) = lock(&waiting).as_mut().and_then(|m| m.remove(&frame.id))
                else {
                    continue;
                };
                if frame.replies.len() != callers.len() {
                    let e = format!(
                        "node {node}: {} replies to {} requests",
                        frame.replies.len(),
                        callers.len()
                    );
                    fail_all(callers, &e);
                    continue;
                }
                for (reply, answer) in callers.into_iter().zip(frame.replies) {
                    let _ = reply.send(reply_from_pb(answer).map_err(TransportError));
                }
            }
            Some(Err(status)) => {
                break format!("node {node}: {:?}: {}", status.code(), status.message())
            }
            None => break format!("node {node}: raft stream closed"),
        }
    };
    debug!(node, %error, "raft stream ended");
    let left = lock(&waiting).take().unwrap_or_default();
    for (_, callers) in left {
        fail_all(callers, &error);
    }
}

pub(crate) fn fail_all(replies: Vec<ReplyTo>, error: &str) {
    for reply in replies {
        let _ = reply.send(Err(TransportError(error.to_string())));
    }
}

/// Raft batches a server accepted (unary calls and stream frames) and the group RPCs
/// they carried.
#[derive(Default)]
pub(crate) struct BatchCounts {
    pub(crate) batches: AtomicU64,
    pub(crate) requests: AtomicU64,
}

impl BatchCounts {
    pub(crate) fn record(&self, requests: usize) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.requests.fetch_add(requests as u64, Ordering::Relaxed);
    }
}

/// One request's handling on the server.
pub(crate) type Handled = Pin<Box<dyn Future<Output = RaftReply> + Send>>;

/// The server side: read batches in order; `handle` turns each request into its
/// handling. Counts the batches and requests in `counts`. The stream ends (and the
/// caller opens another) once `stop` turns true: a server shutting down must not keep
/// connections open with streams that only refuse.
pub(crate) fn serve<H>(
    mut incoming: Streaming<RaftBatch>,
    handle: H,
    counts: Arc<BatchCounts>,
    mut stop: watch::Receiver<bool>,
) -> impl Stream<Item = Result<RaftReplies, Status>> + Send + 'static
where
    H: Fn(RaftRequest) -> Handled + Send + 'static,
{
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let frame = tokio::select! {
                frame = incoming.next() => frame,
                _ = stop.wait_for(|stop| *stop) => return,
            };
            let batch = match frame {
                Some(Ok(batch)) => batch,
                Some(Err(status)) => {
                    debug!(%status, "raft stream from a peer ended");
                    return;
                }
                None => return,
            };
            counts.record(batch.requests.len());
            start_batch(batch, &handle, tx.clone());
        }
    });
    futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|replies| (Ok(replies), rx))
    })
}

/// Poll every request of `batch` once, in order (each reaches its group now), then
/// finish them on a task of their own and send the replies.
fn start_batch<H>(batch: RaftBatch, handle: &H, tx: mpsc::UnboundedSender<RaftReplies>)
where
    H: Fn(RaftRequest) -> Handled,
{
    let id = batch.id;
    let mut handling: Vec<Handled> = batch.requests.into_iter().map(handle).collect();
    let mut cx = Context::from_waker(noop_waker_ref());
    let mut replies: Vec<Option<RaftReply>> = handling
        .iter_mut()
        .map(|h| match h.as_mut().poll(&mut cx) {
            Poll::Ready(reply) => Some(reply),
            Poll::Pending => None,
        })
        .collect();
    if replies.iter().all(Option::is_some) {
        let replies = replies.into_iter().flatten().collect();
        let _ = tx.send(RaftReplies { replies, id });
        return;
    }
    tokio::spawn(async move {
        for (h, reply) in handling.into_iter().zip(replies.iter_mut()) {
            if reply.is_none() {
                *reply = Some(h.await);
            }
        }
        let replies = replies.into_iter().flatten().collect();
        let _ = tx.send(RaftReplies { replies, id });
    });
}
