//! The protobuf messages and gRPC stubs generated from `proto/` by `build.rs`, and the
//! conversions between them and `raft/`'s types (one place for pb <-> domain).

/// `proto/admin.proto`: warrenctl's service.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod admin {
    tonic::include_proto!("warrenmq.admin");
}

use crate::raft::{RaftError, RpcKind};

/// `proto/raft.proto`: the group-tagged Raft RPC service.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod raft {
    tonic::include_proto!("warrenmq.raft");
}

/// `proto/cluster.proto`: liveness (and later forwarding, join/leave).
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod cluster {
    tonic::include_proto!("warrenmq.cluster");
}

use raft::raft_failure::Code;
use raft::{raft_reply, RaftFailure, RaftReply};

/// The wire value of a [`RpcKind`].
pub(crate) fn kind_to_pb(kind: RpcKind) -> raft::RpcKind {
    match kind {
        RpcKind::AppendEntries => raft::RpcKind::AppendEntries,
        RpcKind::Vote => raft::RpcKind::Vote,
        RpcKind::PreVote => raft::RpcKind::PreVote,
        RpcKind::FullSnapshot => raft::RpcKind::FullSnapshot,
        RpcKind::TransferLeader => raft::RpcKind::TransferLeader,
        RpcKind::ClientWrite => raft::RpcKind::ClientWrite,
    }
}

/// The [`RpcKind`] of a wire value; `None` for unspecified or unknown (newer) kinds.
pub(crate) fn kind_from_pb(kind: i32) -> Option<RpcKind> {
    match raft::RpcKind::try_from(kind).ok()? {
        raft::RpcKind::Unspecified => None,
        raft::RpcKind::AppendEntries => Some(RpcKind::AppendEntries),
        raft::RpcKind::Vote => Some(RpcKind::Vote),
        raft::RpcKind::PreVote => Some(RpcKind::PreVote),
        raft::RpcKind::FullSnapshot => Some(RpcKind::FullSnapshot),
        raft::RpcKind::TransferLeader => Some(RpcKind::TransferLeader),
        raft::RpcKind::ClientWrite => Some(RpcKind::ClientWrite),
    }
}

/// The reply to one group RPC from the registry's answer.
pub(crate) fn reply_to_pb(result: Result<Vec<u8>, RaftError>) -> RaftReply {
    let result = match result {
        Ok(payload) => raft_reply::Result::Payload(payload),
        Err(e) => {
            let code = match e {
                RaftError::NotRunning(_) => Code::NotRunning,
                RaftError::BadRequest(_) => Code::BadRequest,
                _ => Code::Raft,
            };
            raft_reply::Result::Failure(failure(code, e.to_string()))
        }
    };
    RaftReply {
        result: Some(result),
    }
}

/// A failure reply.
pub(crate) fn failure(code: Code, message: String) -> RaftFailure {
    RaftFailure {
        code: code as i32,
        message,
    }
}

/// The payload of a reply, or the remote failure as text.
pub(crate) fn reply_from_pb(reply: RaftReply) -> Result<Vec<u8>, String> {
    match reply.result {
        Some(raft_reply::Result::Payload(payload)) => Ok(payload),
        Some(raft_reply::Result::Failure(f)) => {
            let code = Code::try_from(f.code).unwrap_or(Code::Unspecified);
            Err(format!("remote {}: {}", code.as_str_name(), f.message))
        }
        None => Err("remote sent an empty reply".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_survives_the_wire() {
        for kind in [
            RpcKind::AppendEntries,
            RpcKind::Vote,
            RpcKind::PreVote,
            RpcKind::FullSnapshot,
            RpcKind::TransferLeader,
            RpcKind::ClientWrite,
        ] {
            assert_eq!(kind_from_pb(kind_to_pb(kind) as i32), Some(kind));
        }
        assert_eq!(kind_from_pb(0), None);
        assert_eq!(kind_from_pb(99), None);
    }

    #[test]
    fn replies_keep_payloads_and_failures() {
        assert_eq!(reply_from_pb(reply_to_pb(Ok(vec![1, 2]))), Ok(vec![1, 2]));
        let err = reply_from_pb(reply_to_pb(Err(RaftError::NotRunning(9)))).unwrap_err();
        assert!(
            err.contains("NOT_RUNNING") && err.contains("group 9"),
            "{err}"
        );
    }
}
