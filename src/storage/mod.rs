//! The only user of sled: per-group logs, votes and snapshots under group-prefixed keys, with a group-commit flusher.
