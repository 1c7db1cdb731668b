//! `Store`: the node's one sled database, its registry of known groups and its flusher.

use std::io;
use std::path::Path;
use std::sync::Arc;

use super::flusher::{FlushStats, Flusher, Waiter};
use super::group::GroupStore;
use super::keys;

/// Name of the tree holding every group's log, vote, committed id and snapshot.
const RAFT_TREE: &str = "raft";
/// Name of the tree listing the groups that have data (key: big-endian group id).
const GROUPS_TREE: &str = "groups";

/// The node's durable storage. Cheap to clone; the database closes (after a last flush)
/// when the last clone and the last [`GroupStore`] are dropped.
#[derive(Clone)]
pub struct Store {
    inner: Arc<StoreInner>,
}

pub(super) struct StoreInner {
    // Declared first so it drops (final flush, join) before the trees and the database.
    pub(super) flusher: Flusher,
    pub(super) raft: sled::Tree,
    pub(super) groups: sled::Tree,
    _db: sled::Db,
}

/// How long opening waits for a previous holder of the database's file lock.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Open the sled database in `dir`. sled releases its file lock from its own IO threads
/// once they finish the last writes of a closed database, a moment after the last handle
/// is dropped; a reopen in the same process (a restarted group registry, tests) waits for
/// that, bounded, instead of failing at once.
fn open_db(dir: &Path) -> io::Result<sled::Db> {
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    loop {
        match sled::Config::new().path(dir).open() {
            Ok(db) => return Ok(db),
            // sled reports a held lock as WouldBlock, or wrapped as "could not acquire lock".
            Err(sled::Error::Io(e))
                if (e.kind() == io::ErrorKind::WouldBlock
                    || e.to_string().contains("could not acquire lock"))
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Make the directory entries of a (maybe just created) database durable: sled's files
/// in `dir`, its `blobs` directory, and `dir` in its parent. sled syncs file contents
/// (patched: see vendor/sled/README.WARRENMQ.md) but never a directory.
fn sync_dirs(dir: &Path) -> io::Result<()> {
    let sync = |d: &Path| std::fs::File::open(d)?.sync_all();
    sync(&dir.join("blobs"))?;
    sync(dir)?;
    match dir.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => sync(parent),
        _ => Ok(()),
    }
}

impl Store {
    /// Open (or create) the database in `dir` and start its flusher thread.
    pub fn open(dir: impl AsRef<Path>) -> io::Result<Store> {
        let db = open_db(dir.as_ref())?;
        sync_dirs(dir.as_ref())?;
        let raft = db.open_tree(RAFT_TREE)?;
        let groups = db.open_tree(GROUPS_TREE)?;
        let flusher = Flusher::start(
            "warrenmq-flush",
            Box::new({
                let db = db.clone();
                move || db.flush().map(|n| n as u64).map_err(io::Error::from)
            }),
        )?;
        Ok(Store {
            inner: Arc::new(StoreInner {
                flusher,
                raft,
                groups,
                _db: db,
            }),
        })
    }

    /// A handle on one group's keys (reads and writes; does not register the group).
    pub fn group(&self, group: u64) -> GroupStore {
        GroupStore::new(group, self.inner.clone())
    }

    /// Record `group` in the registry of known groups (durable with the next flush) and
    /// return its handle. Idempotent.
    pub fn register_group(&self, group: u64) -> io::Result<GroupStore> {
        self.inner
            .groups
            .insert(keys::group_prefix(group), &[] as &[u8])?;
        Ok(self.group(group))
    }

    /// Groups that have data in storage, in ascending order.
    pub fn known_groups(&self) -> io::Result<Vec<u64>> {
        let mut out = Vec::new();
        for item in self.inner.groups.iter() {
            let (key, _) = item?;
            if let Some(group) = keys::group_of(&key) {
                out.push(group);
            }
        }
        Ok(out)
    }

    /// Delete every key of `group` and forget it. Not durable by itself: the deletion
    /// reaches disk with the next flush (await [`Store::flush`] to wait for it).
    pub fn remove_group(&self, group: u64) -> io::Result<()> {
        // Unregister first: a crash halfway leaves orphan keys, never a registered group
        // with a partial log.
        self.inner.groups.remove(keys::group_prefix(group))?;
        // Key by key: a sled batch would switch sled to a process-wide lock for good.
        for item in self.inner.raft.scan_prefix(keys::group_prefix(group)) {
            let (key, _) = item?;
            self.inner.raft.remove(key)?;
        }
        Ok(())
    }

    /// Register `waiter` to run after the next flush that starts from now on.
    pub fn after_flush(&self, waiter: Waiter) {
        self.inner.flusher.after_flush(waiter);
    }

    /// Wait until everything written before this call is on disk.
    pub async fn flush(&self) -> io::Result<()> {
        flush_inner(&self.inner).await
    }

    /// Flusher counters: flushes done and waiters they completed.
    pub fn flush_stats(&self) -> FlushStats {
        self.inner.flusher.stats()
    }
}

/// Await one group-commit flush through `inner`'s flusher.
pub(super) async fn flush_inner(inner: &StoreInner) -> io::Result<()> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    inner.flusher.after_flush(Box::new(move |r| {
        let _ = tx.send(r);
    }));
    rx.await
        .map_err(|_| io::Error::other("flusher stopped"))
        .and_then(|r| r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MetaKey;

    #[tokio::test]
    async fn reopen_after_drop_sees_the_data_and_the_registry() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            let g = store.register_group(3).unwrap();
            g.append([(1, b"one".to_vec()), (2, b"two".to_vec())])
                .unwrap();
            g.put_meta(MetaKey::Vote, b"vote").unwrap();
            store.register_group(1).unwrap();
            store.flush().await.unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.known_groups().unwrap(), vec![1, 3]);
        let g = store.group(3);
        assert_eq!(
            g.get_meta(MetaKey::Vote).unwrap().as_deref(),
            Some(&b"vote"[..])
        );
        let entries = g.read_entries(.., |i, b| Ok((i, b.to_vec()))).unwrap();
        assert_eq!(entries, vec![(1, b"one".to_vec()), (2, b"two".to_vec())]);
    }

    #[tokio::test]
    async fn remove_group_deletes_only_that_group() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for group in [1u64, 2, 3] {
            let g = store.register_group(group).unwrap();
            g.append((1..=10).map(|i| (i, vec![group as u8; 10])))
                .unwrap();
            g.put_meta(MetaKey::Snapshot, b"snap").unwrap();
        }
        store.remove_group(2).unwrap();
        store.flush().await.unwrap();
        assert_eq!(store.known_groups().unwrap(), vec![1, 3]);
        assert_eq!(
            store.inner.raft.scan_prefix(keys::group_prefix(2)).count(),
            0
        );
        let g1 = store.group(1);
        assert_eq!(g1.read_entries(.., |i, _| Ok(i)).unwrap().len(), 10);
        assert!(g1.get_meta(MetaKey::Snapshot).unwrap().is_some());
    }
}
