//! `GroupStore`: one group's slice of the keyspace (log entries by index, metadata slots)
//! as opaque bytes. Writes are not durable until a flush: register a waiter with
//! [`GroupStore::after_flush`] or await [`GroupStore::flush`].

use std::io;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use super::flusher::Waiter;
use super::keys::{self, MetaKey};
use super::store::{flush_inner, StoreInner};

/// Handle on one group's keys. Cheap to clone; keeps the database open while alive.
#[derive(Clone)]
pub struct GroupStore {
    group: u64,
    inner: Arc<StoreInner>,
}

impl GroupStore {
    pub(super) fn new(group: u64, inner: Arc<StoreInner>) -> GroupStore {
        GroupStore { group, inner }
    }

    /// The group this handle reads and writes.
    pub fn group(&self) -> u64 {
        self.group
    }

    /// Read a metadata slot.
    pub fn get_meta(&self, key: MetaKey) -> io::Result<Option<Vec<u8>>> {
        let value = self.inner.raft.get(keys::meta_key(self.group, key))?;
        Ok(value.map(|v| v.to_vec()))
    }

    /// Write a metadata slot (durable after the next flush).
    pub fn put_meta(&self, key: MetaKey, value: &[u8]) -> io::Result<()> {
        self.inner
            .raft
            .insert(keys::meta_key(self.group, key), value)?;
        Ok(())
    }

    /// Insert log entries `(index, bytes)` in the given (ascending) order, overwriting
    /// entries at the same indexes (durable after the next flush).
    ///
    /// Not one sled batch: a batch switches sled to a process-wide lock for every
    /// operation. Separate inserts are safe because sled recovers a prefix of its log, so
    /// a crash leaves a prefix of the entries, never a hole.
    pub fn append(&self, entries: impl IntoIterator<Item = (u64, Vec<u8>)>) -> io::Result<()> {
        for (index, bytes) in entries {
            self.inner
                .raft
                .insert(keys::log_key(self.group, index), bytes)?;
        }
        Ok(())
    }

    /// Decode the entries whose index is in `range`, in index order.
    pub fn read_entries<T>(
        &self,
        range: impl RangeBounds<u64>,
        mut decode: impl FnMut(u64, &[u8]) -> io::Result<T>,
    ) -> io::Result<Vec<T>> {
        let start = match range.start_bound() {
            Bound::Included(&i) => Some(i),
            Bound::Excluded(&i) => i.checked_add(1),
            Bound::Unbounded => Some(0),
        };
        let end = match range.end_bound() {
            Bound::Included(&i) => Bound::Included(keys::log_key(self.group, i)),
            Bound::Excluded(&i) => Bound::Excluded(keys::log_key(self.group, i)),
            Bound::Unbounded => Bound::Included(keys::log_key(self.group, u64::MAX)),
        };
        let Some(start) = start else {
            return Ok(Vec::new());
        };
        let start = Bound::Included(keys::log_key(self.group, start));
        let mut out = Vec::new();
        for item in self
            .inner
            .raft
            .range::<[u8; keys::LOG_KEY_LEN], _>((start, end))
        {
            let (key, value) = item?;
            let index = keys::log_index(&key)
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad log key"))?;
            out.push(decode(index, &value)?);
        }
        Ok(out)
    }

    /// The last log entry, if any.
    pub fn last_entry(&self) -> io::Result<Option<(u64, Vec<u8>)>> {
        let range = keys::log_key(self.group, 0)..=keys::log_key(self.group, u64::MAX);
        match self.inner.raft.range(range).next_back() {
            None => Ok(None),
            Some(item) => {
                let (key, value) = item?;
                let index = keys::log_index(&key)
                    .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad log key"))?;
                Ok(Some((index, value.to_vec())))
            }
        }
    }

    /// Delete the entries at `index` and after, last first, so that a crash midway leaves
    /// no hole (durable after the next flush).
    pub fn truncate_from(&self, index: u64) -> io::Result<()> {
        let range = keys::log_key(self.group, index)..=keys::log_key(self.group, u64::MAX);
        for item in self.inner.raft.range(range).rev() {
            let (key, _) = item?;
            self.inner.raft.remove(key)?;
        }
        Ok(())
    }

    /// Delete the entries up to `index` inclusive, first first (durable after the next
    /// flush). Callers record the purge point first (in [`MetaKey::Purged`]), so a crash
    /// midway leaves only entries at or below it, which readers never ask for.
    pub fn delete_upto(&self, index: u64) -> io::Result<()> {
        let range = keys::log_key(self.group, 0)..=keys::log_key(self.group, index);
        for item in self.inner.raft.range(range) {
            let (key, _) = item?;
            self.inner.raft.remove(key)?;
        }
        Ok(())
    }

    /// Register `waiter` to run after the next flush that starts from now on, i.e. once
    /// every write made before this call is on disk. Never blocks.
    pub fn after_flush(&self, waiter: Waiter) {
        self.inner.flusher.after_flush(waiter);
    }

    /// Wait until every write made before this call is on disk.
    pub async fn flush(&self) -> io::Result<()> {
        flush_inner(&self.inner).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Store;

    fn entries(g: &GroupStore) -> Vec<u64> {
        g.read_entries(.., |i, _| Ok(i)).unwrap()
    }

    #[tokio::test]
    async fn append_read_truncate_purge() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let g = store.group(9);
        assert_eq!(g.last_entry().unwrap(), None);
        g.append((1..=10u64).map(|i| (i, i.to_be_bytes().to_vec())))
            .unwrap();
        assert_eq!(g.last_entry().unwrap().map(|e| e.0), Some(10));
        assert_eq!(g.read_entries(3..5, |i, _| Ok(i)).unwrap(), vec![3, 4]);
        assert_eq!(
            g.read_entries(8..=20, |i, _| Ok(i)).unwrap(),
            vec![8, 9, 10]
        );
        let values = g
            .read_entries(2..=2, |_, b| Ok(u64::from_be_bytes(b.try_into().unwrap())))
            .unwrap();
        assert_eq!(values, vec![2]);

        g.truncate_from(8).unwrap();
        assert_eq!(entries(&g), (1..=7).collect::<Vec<_>>());
        g.delete_upto(3).unwrap();
        assert_eq!(entries(&g), (4..=7).collect::<Vec<_>>());
        g.put_meta(MetaKey::Purged, b"p3").unwrap();
        assert_eq!(
            g.get_meta(MetaKey::Purged).unwrap().as_deref(),
            Some(&b"p3"[..])
        );
        g.flush().await.unwrap();

        // Another group's keys stay untouched by range operations.
        let other = store.group(10);
        other.append([(1, vec![1])]).unwrap();
        g.truncate_from(0).unwrap();
        assert_eq!(entries(&g), Vec::<u64>::new());
        assert_eq!(entries(&other), vec![1]);
        assert_eq!(g.last_entry().unwrap(), None);
    }
}
