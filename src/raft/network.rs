//! How a group reaches its peers: openraft's network trait over a [`GroupTransport`] that
//! carries opaque, group-tagged RPCs (one connection per peer, shared by all groups).
//!
//! raft/ encodes openraft's requests and responses with postcard, so the transport never
//! sees openraft types. `cluster/` will supply the gRPC transport (and feed incoming RPCs
//! back to the registry); until then every group has one member and uses [`NoTransport`],
//! which is never called and fails if it is.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use openraft::base::{BoxFuture, BoxStream};
use openraft::entry::RaftEntry;
use openraft::error::{RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::{RPCOption, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, StreamAppendResult,
    TransferLeaderRequest, TransferLeaderResponse, VoteRequest, VoteResponse,
};
use openraft::{BasicNode, OptionalSend, RaftNetworkV2};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::append_split;
use super::types::{decode, encode, GroupId, NodeId, Snapshot, SnapshotData, TypeConfig, Vote};

/// Which Raft RPC a transport call carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub enum RpcKind {
    /// AppendEntries (also heartbeats).
    AppendEntries,
    /// RequestVote.
    Vote,
    /// Pre-vote probe.
    PreVote,
    /// A whole snapshot: `(vote, meta, data)`.
    FullSnapshot,
    /// Leadership transfer.
    TransferLeader,
    /// A client write forwarded to the leader (`forward.rs`): a [`Request`] in, a
    /// `ForwardReply` out.
    ///
    /// [`Request`]: super::Request
    ClientWrite,
}

/// A transport failure (peer unreachable, connection lost, remote refused).
#[derive(Clone, Debug, thiserror::Error)]
#[error("transport: {0}")]
pub struct TransportError(pub String);

/// The future of one transport call: the encoded response.
pub type TransportFuture = Pin<Box<dyn Future<Output = Result<Vec<u8>, TransportError>> + Send>>;

/// Sends one encoded Raft RPC of `group` to node `target` and returns the encoded response.
/// Implemented by `cluster/` over one gRPC connection per peer. A call is queued when it
/// is made (not when its future is polled), and calls to one peer are delivered in that
/// order: pipelined appends of a group must reach the follower in the order sent.
pub trait GroupTransport: Send + Sync + 'static {
    /// Deliver `payload` to `group` on `target`.
    fn call(
        &self,
        target: NodeId,
        group: GroupId,
        kind: RpcKind,
        payload: Vec<u8>,
    ) -> TransportFuture;
}

/// The transport of a node without peers: every call fails.
pub struct NoTransport;

impl GroupTransport for NoTransport {
    fn call(&self, target: NodeId, group: GroupId, kind: RpcKind, _: Vec<u8>) -> TransportFuture {
        let msg = format!(
            "no network: {kind:?} for group {group} to node {target} (cluster/ supplies it)"
        );
        Box::pin(async move { Err(TransportError(msg)) })
    }
}

/// Most AppendEntries of one group to one peer awaiting their answer at once.
const APPEND_PIPELINE: usize = 8;

/// openraft's network factory for one group.
pub(crate) struct GroupNetworkFactory {
    group: GroupId,
    transport: Arc<dyn GroupTransport>,
}

impl GroupNetworkFactory {
    pub(crate) fn new(group: GroupId, transport: Arc<dyn GroupTransport>) -> Self {
        GroupNetworkFactory { group, transport }
    }
}

impl RaftNetworkFactory<TypeConfig> for GroupNetworkFactory {
    type Network = GroupNetwork;

    async fn new_client(&mut self, target: NodeId, _node: &BasicNode) -> GroupNetwork {
        GroupNetwork {
            group: self.group,
            target,
            transport: self.transport.clone(),
        }
    }
}

/// openraft's client of one peer for one group.
#[derive(Clone)]
pub(crate) struct GroupNetwork {
    group: GroupId,
    target: NodeId,
    transport: Arc<dyn GroupTransport>,
}

impl GroupNetwork {
    async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        kind: RpcKind,
        request: &Req,
    ) -> Result<Resp, Unreachable<TypeConfig>> {
        self.start_call(kind, request).await
    }

    /// Queue the call now (see [`GroupTransport::call`]); the future decodes the answer.
    fn start_call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        kind: RpcKind,
        request: &Req,
    ) -> impl Future<Output = Result<Resp, Unreachable<TypeConfig>>> + Send + 'static {
        let sent = encode(request)
            .map(|payload| self.transport.call(self.target, self.group, kind, payload));
        async move {
            let unreachable =
                |e: &dyn std::fmt::Display| Unreachable::new(&TransportError(e.to_string()));
            let reply = sent
                .map_err(|e| unreachable(&e))?
                .await
                .map_err(|e| unreachable(&e))?;
            decode(&reply).map_err(|e| unreachable(&e))
        }
    }
}

impl GroupNetwork {
    /// Queue `req` now, cut into parts capped by bytes (`append_split.rs`), all queued in
    /// order; the future folds their answers into one.
    fn start_append(
        &self,
        req: AppendEntriesRequest<TypeConfig>,
    ) -> impl Future<Output = Result<AppendEntriesResponse<TypeConfig>, Unreachable<TypeConfig>>>
           + Send
           + 'static {
        let calls: Vec<_> = append_split::split(req, append_split::MAX_APPEND_BYTES)
            .into_iter()
            .map(|part| {
                let last = part.entries.last().map(|e| e.log_id()).or(part.prev_log_id);
                (last, self.start_call(RpcKind::AppendEntries, &part))
            })
            .collect();
        async move {
            let mut answers = Vec::with_capacity(calls.len());
            for (last, call) in calls {
                let answer = call.await;
                let stop = !matches!(answer, Ok(AppendEntriesResponse::Success));
                answers.push((last, answer));
                if stop {
                    break;
                }
            }
            append_split::fold_answers(answers)
        }
    }
}

impl RaftNetworkV2<TypeConfig> for GroupNetwork {
    type SnapshotData = SnapshotData;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        Ok(self.start_append(rpc).await?)
    }

    /// Pipelined: up to [`APPEND_PIPELINE`] requests travel before the first answer is
    /// back (the transport keeps them in order, so the follower appends them in order);
    /// answers are yielded in request order and the stream ends after the first that does
    /// not fully succeed, as openraft's sequential default does.
    fn stream_append<'s, S>(
        &'s mut self,
        input: S,
        _option: RPCOption,
    ) -> BoxFuture<
        's,
        Result<
            BoxStream<'s, Result<StreamAppendResult<TypeConfig>, RPCError<TypeConfig>>>,
            RPCError<TypeConfig>,
        >,
    >
    where
        S: Stream<Item = AppendEntriesRequest<TypeConfig>> + OptionalSend + Unpin + 'static,
    {
        let net = self.clone();
        let answers = input
            .map(move |req| {
                let prev = req.prev_log_id;
                let last = req.entries.last().map(|e| e.log_id()).or(prev);
                let answer = net.start_append(req);
                async move {
                    let resp = answer.await?;
                    let complete = !matches!(resp, AppendEntriesResponse::PartialSuccess(_));
                    Ok((resp.into_stream_result(prev, last), complete))
                }
            })
            .buffered(APPEND_PIPELINE);
        let mut ended = false;
        let answers = answers
            .take_while(move |answer: &Result<_, RPCError<TypeConfig>>| {
                let go_on = !ended;
                ended = !matches!(answer, Ok((Ok(_), true)));
                std::future::ready(go_on)
            })
            .map(|answer| answer.map(|(result, _)| result));
        Box::pin(async move { Ok(answers.boxed()) })
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        Ok(self.call(RpcKind::Vote, &rpc).await?)
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        Ok(self.call(RpcKind::PreVote, &rpc).await?)
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot,
        _cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let request = (vote, snapshot.meta, snapshot.snapshot);
        Ok(self.call(RpcKind::FullSnapshot, &request).await?)
    }

    async fn transfer_leader(
        &mut self,
        req: TransferLeaderRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<TransferLeaderResponse<TypeConfig>, RPCError<TypeConfig>> {
        Ok(self.call(RpcKind::TransferLeader, &req).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn no_transport_fails_every_call() {
        let mut factory = GroupNetworkFactory::new(5, Arc::new(NoTransport));
        let mut net = factory.new_client(2, &BasicNode::default()).await;
        let rpc = VoteRequest::<TypeConfig>::new(Vote::new(1, 1), None);
        let err = RaftNetworkV2::vote(
            &mut net,
            rpc,
            RPCOption::new(std::time::Duration::from_secs(1)),
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("no network"), "{err}");
    }
}
