//! The one openraft type config shared by every group, and the replicated request and
//! response types (opaque encoded machine commands and replies).

use std::fmt;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// Identifies a Raft group on every node: 0 is the metadata group, queue groups start at 1.
pub type GroupId = u64;
/// Identifies a node in Raft memberships (internal; users see `warren@HOST` names).
pub type NodeId = u64;

/// The metadata group's id.
pub const META_GROUP: GroupId = 0;

/// A replicated command: the leader's clock at proposal (machines get time only from
/// here) and the encoded command. An on-disk format: only append variants.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Request {
    /// Milliseconds since the Unix epoch on the proposing leader.
    pub time_ms: u64,
    /// The encoded command.
    pub body: RequestBody,
}

/// The encoded command of a [`Request`], for the metadata machine or a queue machine.
/// `Bytes` (encoded as one byte string, the same postcard bytes as a `Vec<u8>`) so an
/// entry is cloned without copying and decoded with one copy, not byte by byte.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum RequestBody {
    /// An encoded `MetaCommand`.
    Meta(Bytes),
    /// An encoded batch of queue commands.
    Queue(Bytes),
}

/// The applier's encoded reply to one [`Request`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response(pub Bytes);

impl Request {
    /// Length of the encoded command.
    pub fn body_len(&self) -> usize {
        match &self.body {
            RequestBody::Meta(b) | RequestBody::Queue(b) => b.len(),
        }
    }
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (kind, len) = match &self.body {
            RequestBody::Meta(b) => ("meta", b.len()),
            RequestBody::Queue(b) => ("queue", b.len()),
        };
        write!(f, "Request{{t:{}, {kind}:{len}B}}", self.time_ms)
    }
}

openraft::declare_raft_types!(
    /// The openraft type config of every WarrenMQ group.
    pub TypeConfig:
        D = Request,
        R = Response,
        NodeId = NodeId,
        Node = openraft::BasicNode,
);

/// A serialized machine state, as stored and as shipped to followers.
pub type SnapshotData = Vec<u8>;

pub(crate) type LogId = openraft::alias::LogIdOf<TypeConfig>;
pub(crate) type Vote = openraft::alias::VoteOf<TypeConfig>;
pub(crate) type Entry = openraft::alias::EntryOf<TypeConfig>;
pub(crate) type StoredMembership = openraft::alias::StoredMembershipOf<TypeConfig>;
pub(crate) type SnapshotMeta = openraft::alias::SnapshotMetaOf<TypeConfig>;
pub(crate) type Snapshot = openraft::alias::SnapshotOf<TypeConfig, SnapshotData>;
pub(crate) type Raft = openraft::Raft<TypeConfig, crate::raft::state_machine::GroupStateMachine>;

/// Encode a value stored by `raft/` (postcard).
pub(crate) fn encode<T: Serialize>(value: &T) -> std::io::Result<Vec<u8>> {
    postcard::to_stdvec(value).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// Decode a value stored by `raft/` (postcard).
pub(crate) fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> std::io::Result<T> {
    postcard::from_bytes(bytes).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}
