//! Writes from any node: a member that does not lead a group forwards its write to the
//! leader as a [`RpcKind::ClientWrite`] over the group transport (so forwarded writes ride
//! the same per-peer batches as the Raft RPCs), and a node that is not a member at all
//! forwards to whichever node it believes leads.
//!
//! The leader proposes the write as its own ([`GroupHandle::write_indexed`], never
//! forwarding again, so a stale leader hint cannot loop) and answers with the entry's log
//! index and the applier's response, or with the leader it knows instead.

use std::time::Duration;

use super::error::WriteError;
use super::handle::GroupHandle;
use super::network::{GroupTransport, RpcKind};
use super::types::{decode, encode, GroupId, NodeId, Request, Response};

/// How long a forwarding member waits for its own copy of the metadata to apply a write
/// the leader committed, before answering anyway.
const LOCAL_APPLY_WAIT: Duration = Duration::from_secs(10);
/// Attempts while the group has no leader (an election takes about an election timeout).
const NO_LEADER_RETRIES: u32 = 40;
const BACKOFF_FIRST: Duration = Duration::from_millis(10);
const BACKOFF_MAX: Duration = Duration::from_millis(250);

/// The leader's answer to a forwarded write (postcard on the wire): the entry's log index
/// and the applier's response, or why not.
pub(crate) type ForwardReply = Result<(u64, Response), WriteError>;

/// Send `request` for `group` to `target`, which proposes it if it leads the group.
pub(crate) async fn forward_to(
    transport: &dyn GroupTransport,
    target: NodeId,
    group: GroupId,
    request: &Request,
) -> Result<(u64, Response), WriteError> {
    let payload = encode(request).map_err(|e| WriteError::Fatal(format!("encode: {e}")))?;
    let answer = transport
        .call(target, group, RpcKind::ClientWrite, payload)
        .await
        // Sent and lost, or never sent: either way the outcome is not known here.
        .map_err(|e| WriteError::Unknown(format!("forwarding to node {target}: {e}")))?;
    let reply: ForwardReply = decode(&answer)
        .map_err(|e| WriteError::Unknown(format!("bad forward reply from node {target}: {e}")))?;
    reply
}

impl GroupHandle {
    /// Replicate `request` from this member whether or not it leads: proposed here when it
    /// does, else forwarded to the leader (following leader hints, waiting out elections).
    /// Returns once the entry is committed and applied on this node too, so the caller's
    /// next read of the local state sees it.
    pub async fn write_anywhere(&self, request: Request) -> Result<Response, WriteError> {
        let mut backoff = BACKOFF_FIRST;
        let mut target = self.current_leader();
        for _ in 0..NO_LEADER_RETRIES {
            let result = match target {
                Some(leader) if leader != self.me() => {
                    forward_to(&**self.transport(), leader, self.group(), &request).await
                }
                _ => self.write_indexed(request.clone()).await,
            };
            match result {
                Ok((index, response)) => {
                    self.wait_applied(index).await;
                    return Ok(response);
                }
                Err(WriteError::NotLeader { leader: Some(l) }) if Some(l) != target => {
                    target = Some(l);
                }
                Err(WriteError::NotLeader { .. }) => {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    target = self.current_leader();
                }
                Err(e) => return Err(e),
            }
        }
        Err(WriteError::NotLeader {
            leader: self.current_leader(),
        })
    }

    /// Wait (bounded) until this node has applied the entry at `index`.
    async fn wait_applied(&self, index: u64) {
        let waited = self
            .raft()
            .wait(Some(LOCAL_APPLY_WAIT))
            .applied_index_at_least(Some(index), "forwarded write applied here")
            .await;
        if let Err(e) = waited {
            tracing::warn!(group = self.group(), index, error = %e, "forwarded write not applied here yet");
        }
    }
}
