//! The openraft v2 log storage of one group over `storage::GroupStore`: entries, vote,
//! committed and purged log ids as postcard values under the group's keys.
//!
//! Appends write to sled without waiting and hand openraft's `IOFlushed` callback to the
//! group-commit flusher, which fires it only after a flush that covers the entries.
//! Reads of the newest entries come from a [`LogCache`] that sees every write.

use std::fmt::Debug;
use std::io;
use std::ops::RangeBounds;
use std::sync::{Arc, Mutex};

use openraft::entry::RaftEntry;
use openraft::storage::{IOFlushed, LogState, RaftLogReader, RaftLogStorage};
use openraft::{LogIdOptionExt, OptionalSend};

use super::alive::Alive;
use super::log_cache::LogCache;
use super::types::{decode, encode, Entry, LogId, TypeConfig, Vote};
use crate::storage::{GroupStore, MetaKey};

/// One group's log store; also its own log reader (clones share the keyspace).
#[derive(Clone)]
pub(crate) struct GroupLogStore {
    store: GroupStore,
    alive: Alive,
    cache: Arc<Mutex<LogCache>>,
}

impl GroupLogStore {
    pub(crate) fn new(store: GroupStore, alive: Alive) -> Self {
        GroupLogStore {
            store,
            alive,
            cache: Arc::default(),
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, LogCache> {
        self.cache.lock().expect("log cache lock")
    }

    fn read_log_id(&self, key: MetaKey) -> io::Result<Option<LogId>> {
        match self.store.get_meta(key)? {
            None => Ok(None),
            Some(bytes) => decode(&bytes),
        }
    }
}

impl RaftLogReader<TypeConfig> for GroupLogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> io::Result<Vec<Entry>> {
        if let Some(entries) = self.cache().get(&range) {
            return Ok(entries);
        }
        self.store.read_entries(range, |_, bytes| decode(bytes))
    }

    async fn read_vote(&mut self) -> io::Result<Option<Vote>> {
        match self.store.get_meta(MetaKey::Vote)? {
            None => Ok(None),
            Some(bytes) => Ok(Some(decode(&bytes)?)),
        }
    }
}

impl RaftLogStorage<TypeConfig> for GroupLogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> io::Result<LogState<TypeConfig>> {
        let last_purged_log_id = self.read_log_id(MetaKey::Purged)?;
        let last_entry = match self.store.last_entry()? {
            Some((_, bytes)) => Some(decode::<Entry>(&bytes)?.log_id()),
            None => None,
        };
        // Entries at or below the purge point may linger (deleted in the background).
        let last_log_id = last_entry.max(last_purged_log_id);
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> io::Result<()> {
        // openraft requires the vote on disk before returning.
        self.store.put_meta(MetaKey::Vote, &encode(vote)?)?;
        self.store.flush().await
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> io::Result<()> {
        // Not awaited: it reaches disk with the next flush; losing the latest value only
        // means re-applying fewer entries at start, the rest commit again once leading.
        self.store
            .put_meta(MetaKey::Committed, &encode(&committed)?)
    }

    async fn read_committed(&mut self) -> io::Result<Option<LogId>> {
        self.read_log_id(MetaKey::Committed)
    }

    async fn append<I>(&mut self, entries: I, callback: IOFlushed<TypeConfig>) -> io::Result<()>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut cached = Vec::new();
        let mut encoded = Vec::new();
        for entry in entries {
            let bytes = encode(&entry)?;
            let size = bytes.len();
            encoded.push((entry.index(), bytes));
            cached.push((entry, size));
        }
        // The cache changes with the store, under its lock, so no reader sees one
        // without the other.
        let mut cache = self.cache();
        self.store.append(encoded)?;
        cache.append(cached);
        drop(cache);
        self.store
            .after_flush(Box::new(move |result| callback.io_completed(result)));
        Ok(())
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> io::Result<()> {
        let mut cache = self.cache();
        cache.truncate_from(last_log_id.next_index());
        self.store.truncate_from(last_log_id.next_index())
    }

    async fn purge(&mut self, log_id: LogId) -> io::Result<()> {
        // The purge point is what counts; deleting tens of thousands of keys would stall
        // the group, so it happens on a blocking thread (holding the group's token).
        self.store
            .put_meta(MetaKey::Purged, &encode(&Some(log_id))?)?;
        self.cache().purge_upto(log_id.index());
        let (store, alive, upto) = (self.store.clone(), self.alive.clone(), log_id.index());
        tokio::task::spawn_blocking(move || {
            if let Err(e) = store.delete_upto(upto) {
                tracing::warn!(group = store.group(), upto, error = %e, "deleting purged entries");
            }
            // The storage handle goes first: once the token drops the group may be deleted
            // or the database reopened.
            drop(store);
            drop(alive);
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::alive::alive;
    use crate::raft::types::{Request, RequestBody};
    use crate::storage::Store;
    use openraft::impls::leader_id_adv::LeaderId;
    use openraft::storage::RaftLogStorageExt;
    use openraft::vote::RaftLeaderId;
    use openraft::EntryPayload;

    fn log_id(term: u64, index: u64) -> LogId {
        LogId::new(LeaderId::new(term, 1).to_committed(), index)
    }

    fn entry(term: u64, index: u64) -> Entry {
        let request = Request {
            time_ms: index,
            body: RequestBody::Queue(vec![index as u8].into()),
        };
        Entry::new(log_id(term, index), EntryPayload::Normal(request))
    }

    #[tokio::test]
    async fn append_is_readable_at_once_and_flushed_before_the_callback() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (token, _watch) = alive();
        let mut log = GroupLogStore::new(store.group(4), token);
        assert_eq!(log.get_log_state().await.unwrap(), LogState::default());

        let flushes_before = store.flush_stats().flushes;
        log.blocking_append((1..=5).map(|i| entry(1, i)))
            .await
            .unwrap();
        assert!(store.flush_stats().flushes > flushes_before);

        let got = log.try_get_log_entries(2..4).await.unwrap();
        assert_eq!(
            got.iter().map(|e| e.log_id().index()).collect::<Vec<_>>(),
            vec![2, 3]
        );
        let state = log.get_log_state().await.unwrap();
        assert_eq!(state.last_log_id, Some(log_id(1, 5)));

        log.truncate_after(Some(log_id(1, 3))).await.unwrap();
        log.purge(log_id(1, 2)).await.unwrap();
        let state = log.get_log_state().await.unwrap();
        assert_eq!(state.last_purged_log_id, Some(log_id(1, 2)));
        assert_eq!(state.last_log_id, Some(log_id(1, 3)));
        log.purge(log_id(1, 3)).await.unwrap();
        let state = log.get_log_state().await.unwrap();
        assert_eq!(
            state.last_log_id,
            Some(log_id(1, 3)),
            "falls back to last purged"
        );

        // Entries below the purge point may linger (deleted in the background): the purge
        // point is still the last log id.
        let group = store.group(4);
        group.append([(1, encode(&entry(1, 1)).unwrap())]).unwrap();
        group
            .put_meta(MetaKey::Purged, &encode(&Some(log_id(2, 10))).unwrap())
            .unwrap();
        let state = log.get_log_state().await.unwrap();
        assert_eq!(state.last_log_id, Some(log_id(2, 10)));

        let vote = Vote::new_committed(2, 1);
        log.save_vote(&vote).await.unwrap();
        assert_eq!(log.read_vote().await.unwrap(), Some(vote));
        log.save_committed(Some(log_id(1, 3))).await.unwrap();
        assert_eq!(log.read_committed().await.unwrap(), Some(log_id(1, 3)));
    }
}
