//! The byte layout of every key in the `raft` tree: group-prefixed, big-endian, so that one
//! group's keys are contiguous and its log entries sort by index.

/// What a key under a group prefix holds: one slot per kind of per-group metadata, then
/// the log entries (tag `LOG`, highest so the log is the tail of the group's range).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetaKey {
    /// The last saved vote.
    Vote,
    /// The last saved committed log id.
    Committed,
    /// The id of the last purged log entry.
    Purged,
    /// The latest snapshot: its meta and the machine's serialized state.
    Snapshot,
}

impl MetaKey {
    fn tag(self) -> u8 {
        match self {
            MetaKey::Vote => 0x01,
            MetaKey::Committed => 0x02,
            MetaKey::Purged => 0x03,
            MetaKey::Snapshot => 0x04,
        }
    }
}

/// Tag of log entry keys; after every `MetaKey` tag.
const LOG_TAG: u8 = 0x10;

/// Length of a group prefix.
pub const GROUP_LEN: usize = 8;
/// Length of a log entry key: group, tag, index.
pub const LOG_KEY_LEN: usize = GROUP_LEN + 1 + 8;

/// The prefix shared by all of a group's keys.
pub fn group_prefix(group: u64) -> [u8; GROUP_LEN] {
    group.to_be_bytes()
}

/// The key of one metadata slot of a group.
pub fn meta_key(group: u64, key: MetaKey) -> [u8; GROUP_LEN + 1] {
    let mut k = [0u8; GROUP_LEN + 1];
    k[..GROUP_LEN].copy_from_slice(&group.to_be_bytes());
    k[GROUP_LEN] = key.tag();
    k
}

/// The key of the log entry at `index` of `group`.
pub fn log_key(group: u64, index: u64) -> [u8; LOG_KEY_LEN] {
    let mut k = [0u8; LOG_KEY_LEN];
    k[..GROUP_LEN].copy_from_slice(&group.to_be_bytes());
    k[GROUP_LEN] = LOG_TAG;
    k[GROUP_LEN + 1..].copy_from_slice(&index.to_be_bytes());
    k
}

/// The log index encoded in a log entry key, `None` if `key` is not one.
pub fn log_index(key: &[u8]) -> Option<u64> {
    if key.len() != LOG_KEY_LEN || key[GROUP_LEN] != LOG_TAG {
        return None;
    }
    let mut idx = [0u8; 8];
    idx.copy_from_slice(&key[GROUP_LEN + 1..]);
    Some(u64::from_be_bytes(idx))
}

/// The group id a registry key (or any group-prefixed key) names.
pub fn group_of(key: &[u8]) -> Option<u64> {
    let bytes: [u8; GROUP_LEN] = key.get(..GROUP_LEN)?.try_into().ok()?;
    Some(u64::from_be_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_keys_sort_by_group_then_index_after_meta() {
        assert!(log_key(1, 2) < log_key(1, 3));
        assert!(log_key(1, u64::MAX) < log_key(2, 0));
        assert!(meta_key(1, MetaKey::Snapshot)[..] < log_key(1, 0)[..]);
        assert!(meta_key(2, MetaKey::Vote)[..] > log_key(1, u64::MAX)[..]);
        assert!(log_key(1, 5).starts_with(&group_prefix(1)));
    }

    #[test]
    fn log_index_round_trips() {
        assert_eq!(log_index(&log_key(7, 42)), Some(42));
        assert_eq!(log_index(&meta_key(7, MetaKey::Vote)), None);
        assert_eq!(group_of(&log_key(7, 42)), Some(7));
    }
}
