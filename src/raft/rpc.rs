//! Incoming Raft RPCs: [`RaftRegistry::handle_rpc`] takes a group-tagged request that a
//! peer's [`GroupTransport`](super::GroupTransport) sent, hands it to that group's
//! openraft and returns the encoded reply. The mirror image of `network.rs`: the same
//! [`RpcKind`]s with the same postcard encodings.

use serde::Serialize;

use super::error::RaftError;
use super::forward::ForwardReply;
use super::network::RpcKind;
use super::registry::RaftRegistry;
use super::types::{decode, encode, GroupId, Request, Snapshot, SnapshotData, SnapshotMeta, Vote};
use openraft::raft::{AppendEntriesRequest, TransferLeaderRequest, VoteRequest};

use super::types::TypeConfig;

impl RaftRegistry {
    /// Handle one RPC of `group` from a peer: decode `payload` as the request of `kind`,
    /// run it on the group's Raft here, and encode the response.
    ///
    /// Fails with [`RaftError::NotRunning`] if the group is not running here (the sender
    /// retries: openraft's replication backs off and tries again), with
    /// [`RaftError::BadRequest`] if the payload does not decode, and with
    /// [`RaftError::Raft`] if the group's core has failed or stopped.
    pub async fn handle_rpc(
        &self,
        group: GroupId,
        kind: RpcKind,
        payload: &[u8],
    ) -> Result<Vec<u8>, RaftError> {
        let handle = self
            .group(group)
            .filter(|h| !h.is_stopped())
            .ok_or(RaftError::NotRunning(group))?;
        let raft = handle.raft();
        let failed = |e: &dyn std::fmt::Display| RaftError::Raft(format!("group {group}: {e}"));
        match kind {
            RpcKind::AppendEntries => {
                let req: AppendEntriesRequest<TypeConfig> = decode_request(group, kind, payload)?;
                reply(&raft.append_entries(req).await.map_err(|e| failed(&e))?)
            }
            RpcKind::Vote => {
                let req: VoteRequest<TypeConfig> = decode_request(group, kind, payload)?;
                reply(&raft.vote(req).await.map_err(|e| failed(&e))?)
            }
            RpcKind::PreVote => {
                let req: VoteRequest<TypeConfig> = decode_request(group, kind, payload)?;
                reply(&raft.pre_vote(req).await.map_err(|e| failed(&e))?)
            }
            RpcKind::FullSnapshot => {
                let (vote, meta, data): (Vote, SnapshotMeta, SnapshotData) =
                    decode_request(group, kind, payload)?;
                let snapshot = Snapshot {
                    meta,
                    snapshot: data,
                };
                let resp = raft.install_full_snapshot(vote, snapshot).await;
                reply(&resp.map_err(|e| failed(&e))?)
            }
            RpcKind::TransferLeader => {
                let req: TransferLeaderRequest<TypeConfig> = decode_request(group, kind, payload)?;
                reply(
                    &raft
                        .handle_transfer_leader(req)
                        .await
                        .map_err(|e| failed(&e))?,
                )
            }
            RpcKind::ClientWrite => {
                let req: Request = decode_request(group, kind, payload)?;
                let written: ForwardReply = handle.write_indexed(req).await;
                reply(&written)
            }
        }
    }
}

fn decode_request<'a, T: serde::Deserialize<'a>>(
    group: GroupId,
    kind: RpcKind,
    payload: &'a [u8],
) -> Result<T, RaftError> {
    decode(payload).map_err(|e| RaftError::BadRequest(format!("group {group} {kind:?}: {e}")))
}

fn reply<T: Serialize>(response: &T) -> Result<Vec<u8>, RaftError> {
    encode(response).map_err(|e| RaftError::Raft(format!("encoding a reply: {e}")))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use openraft::raft::VoteResponse;

    use super::*;
    use crate::raft::tests::TestApplier;
    use crate::raft::NoTransport;
    use crate::storage::Store;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rpcs_reach_running_groups_only_and_must_decode() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let reg = RaftRegistry::with_settings(store, 1, Default::default(), Arc::new(NoTransport));
        reg.start_group(3, Arc::new(TestApplier::default()))
            .await
            .unwrap();

        let stale = VoteRequest::<TypeConfig>::new(Vote::new(0, 2), None);
        let payload = encode(&stale).unwrap();
        let err = reg
            .handle_rpc(4, RpcKind::Vote, &payload)
            .await
            .unwrap_err();
        assert!(matches!(err, RaftError::NotRunning(4)), "{err}");
        let err = reg.handle_rpc(3, RpcKind::AppendEntries, &[0xff]).await;
        assert!(matches!(err, Err(RaftError::BadRequest(_))), "{err:?}");

        // A vote from an older term is answered (refused), not failed.
        let reply = reg.handle_rpc(3, RpcKind::Vote, &payload).await.unwrap();
        let resp: VoteResponse<TypeConfig> = decode(&reply).unwrap();
        assert!(!resp.vote_granted);
        reg.shutdown().await;
        let err = reg
            .handle_rpc(3, RpcKind::Vote, &payload)
            .await
            .unwrap_err();
        assert!(matches!(err, RaftError::NotRunning(3)), "{err}");
    }
}
