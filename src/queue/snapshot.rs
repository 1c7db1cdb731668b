//! The queue machine's snapshot format: one format-version byte, then a postcard body.
//!
//! Versions are append-only: a new layout gets a new version byte and its own decoder,
//! and old versions stay readable. Version 1 is, in postcard:
//! `next_msg_id: u64, enqueuers: seq of (EnqueuerId, last_seq),
//! messages: seq of (MsgId, StoredMessage)`, both seqs in ascending key order.

use std::collections::BTreeMap;

use serde::de::{Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use super::{EnqueuerId, MsgId, QueueMachine, StoredMessage};

/// The version [`QueueMachine::to_snapshot`] writes.
pub const SNAPSHOT_VERSION: u8 = 1;

/// Why bytes could not be read back as a queue machine.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    #[error("queue snapshot is empty: no format version byte")]
    Empty,
    #[error("queue snapshot format version {found} is unknown (this build reads 1..={supported})")]
    UnsupportedVersion { found: u8, supported: u8 },
    #[error("queue snapshot v{version} does not decode: {source}")]
    Decode {
        version: u8,
        #[source]
        source: postcard::Error,
    },
    #[error("queue snapshot has {0} trailing bytes after its body")]
    TrailingBytes(usize),
    #[error("queue snapshot is inconsistent: {0}")]
    Inconsistent(&'static str),
}

/// Serializes a map as a postcard seq of `(key, value)` tuples without copying it.
struct AsSeq<'a, K, V>(&'a BTreeMap<K, V>);

impl<K: Serialize, V: Serialize> Serialize for AsSeq<'_, K, V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter())
    }
}

/// Reads a seq of `(key, value)` tuples straight into a map, noting whether the keys came
/// strictly increasing (the encoder's order), without an intermediate vector.
struct SortedMap<K, V> {
    map: BTreeMap<K, V>,
    strictly_increasing: bool,
}

impl<'de, K, V> Deserialize<'de> for SortedMap<K, V>
where
    K: Deserialize<'de> + Ord + Copy,
    V: Deserialize<'de>,
{
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SeqVisitor<K, V>(std::marker::PhantomData<(K, V)>);

        impl<'de, K, V> Visitor<'de> for SeqVisitor<K, V>
        where
            K: Deserialize<'de> + Ord + Copy,
            V: Deserialize<'de>,
        {
            type Value = SortedMap<K, V>;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a sequence of (key, value) pairs")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut map = BTreeMap::new();
                let mut strictly_increasing = true;
                let mut last: Option<K> = None;
                while let Some((key, value)) = seq.next_element::<(K, V)>()? {
                    strictly_increasing &= last.is_none_or(|last| last < key);
                    last = Some(key);
                    map.insert(key, value);
                }
                Ok(SortedMap {
                    map,
                    strictly_increasing,
                })
            }
        }

        deserializer.deserialize_seq(SeqVisitor(std::marker::PhantomData))
    }
}

#[derive(Serialize)]
struct SnapshotV1Ref<'a> {
    next_msg_id: MsgId,
    enqueuers: AsSeq<'a, EnqueuerId, u64>,
    messages: AsSeq<'a, MsgId, StoredMessage>,
}

#[derive(Deserialize)]
struct SnapshotV1 {
    next_msg_id: MsgId,
    enqueuers: SortedMap<EnqueuerId, u64>,
    messages: SortedMap<MsgId, StoredMessage>,
}

impl QueueMachine {
    /// Encodes the whole state in the current snapshot format ([`SNAPSHOT_VERSION`]).
    pub fn to_snapshot(&self) -> Vec<u8> {
        let messages = self.messages_map();
        let enqueuers = self.enqueuers_map();
        // Roughly the encoded size, so the buffer rarely has to grow.
        let estimate =
            16 + enqueuers.len() * 20 + messages.len() * 32 + self.total_bytes() as usize;
        let mut buf = Vec::with_capacity(estimate);
        buf.push(SNAPSHOT_VERSION);
        let body = SnapshotV1Ref {
            next_msg_id: self.next_msg_id(),
            enqueuers: AsSeq(enqueuers),
            messages: AsSeq(messages),
        };
        // Writing into a Vec cannot fail, and every field type serializes infallibly.
        postcard::to_extend(&body, buf).expect("queue snapshot serialization into a Vec")
    }

    /// Decodes a snapshot written by [`QueueMachine::to_snapshot`] of this or an older
    /// version, checking the machine's invariants.
    pub fn from_snapshot(bytes: &[u8]) -> Result<Self, SnapshotError> {
        let (&version, body) = bytes.split_first().ok_or(SnapshotError::Empty)?;
        match version {
            1 => decode_v1(body),
            found => Err(SnapshotError::UnsupportedVersion {
                found,
                supported: SNAPSHOT_VERSION,
            }),
        }
    }
}

fn decode_v1(body: &[u8]) -> Result<QueueMachine, SnapshotError> {
    let (snap, rest): (SnapshotV1, _) = postcard::take_from_bytes(body)
        .map_err(|source| SnapshotError::Decode { version: 1, source })?;
    if !rest.is_empty() {
        return Err(SnapshotError::TrailingBytes(rest.len()));
    }
    if !snap.enqueuers.strictly_increasing {
        return Err(SnapshotError::Inconsistent(
            "enqueuer ids not strictly increasing",
        ));
    }
    if !snap.messages.strictly_increasing {
        return Err(SnapshotError::Inconsistent(
            "msg ids not strictly increasing",
        ));
    }
    let messages = snap.messages.map;
    if messages
        .last_key_value()
        .is_some_and(|(&last, _)| last >= snap.next_msg_id)
    {
        return Err(SnapshotError::Inconsistent(
            "a msg id is not below next_msg_id",
        ));
    }
    Ok(QueueMachine::from_checked_parts(
        snap.next_msg_id,
        messages,
        snap.enqueuers.map,
    ))
}
