//! The newest log entries of one group, kept decoded in memory beside the sled log.
//!
//! Every entry a leader appends is read back at once by the replication task of each
//! follower and again by the state machine worker when it commits; on a follower the
//! worker reads what it just appended. Serving those reads from here saves a sled range
//! scan and a decode per read. The cache mirrors the newest part of the log exactly (it
//! sees every append and truncation of the store), so a range that starts inside it is
//! answered from it; older ranges (a follower catching up) go to sled.

use std::collections::VecDeque;
use std::ops::{Bound, RangeBounds};

use openraft::entry::RaftEntry;

use super::types::Entry;

/// Most entries kept per group.
const MAX_ENTRIES: usize = 128;
/// Most encoded bytes kept per group (big messages make few entries).
const MAX_BYTES: usize = 2 << 20;

/// Contiguous entries `first ..= last` and their encoded sizes.
#[derive(Default)]
pub(crate) struct LogCache {
    entries: VecDeque<(Entry, usize)>,
    bytes: usize,
}

impl LogCache {
    fn first_index(&self) -> Option<u64> {
        self.entries.front().map(|(e, _)| e.index())
    }

    fn last_index(&self) -> Option<u64> {
        self.entries.back().map(|(e, _)| e.index())
    }

    /// Entries just written to the log (in index order), each with its encoded size.
    pub(crate) fn append(&mut self, entries: impl IntoIterator<Item = (Entry, usize)>) {
        for (entry, size) in entries {
            let index = entry.index();
            match self.last_index() {
                Some(last) if index <= last => self.truncate_from(index),
                Some(last) if index > last + 1 => self.clear(),
                _ => {}
            }
            self.bytes += size;
            self.entries.push_back((entry, size));
        }
        while self.entries.len() > MAX_ENTRIES || self.bytes > MAX_BYTES {
            self.pop_front();
        }
    }

    /// The log lost every entry from `index` on.
    pub(crate) fn truncate_from(&mut self, index: u64) {
        while self.last_index().is_some_and(|last| last >= index) {
            if let Some((_, size)) = self.entries.pop_back() {
                self.bytes -= size;
            }
        }
    }

    /// The log lost every entry up to `index`.
    pub(crate) fn purge_upto(&mut self, index: u64) {
        while self.first_index().is_some_and(|first| first <= index) {
            self.pop_front();
        }
    }

    /// The entries of `range` when it starts inside the cache (the log has none after
    /// the cache's last); `None` when sled must answer.
    pub(crate) fn get(&self, range: &impl RangeBounds<u64>) -> Option<Vec<Entry>> {
        let first = self.first_index()?;
        let start = match range.start_bound() {
            Bound::Included(&i) => i,
            Bound::Excluded(&i) => i.checked_add(1)?,
            Bound::Unbounded => return None,
        };
        if start < first {
            return None;
        }
        let offset = (start - first) as usize;
        Some(
            self.entries
                .iter()
                .skip(offset)
                .map(|(e, _)| e)
                .take_while(|e| range.contains(&e.index()))
                .cloned()
                .collect(),
        )
    }

    fn pop_front(&mut self) {
        if let Some((_, size)) = self.entries.pop_front() {
            self.bytes -= size;
        }
    }

    fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::types::{LogId, Request, RequestBody};
    use openraft::impls::leader_id_adv::LeaderId;
    use openraft::vote::RaftLeaderId;
    use openraft::EntryPayload;

    fn entry(term: u64, index: u64) -> (Entry, usize) {
        let request = Request {
            time_ms: index,
            body: RequestBody::Queue(vec![index as u8].into()),
        };
        let log_id = LogId::new(LeaderId::new(term, 1).to_committed(), index);
        (Entry::new(log_id, EntryPayload::Normal(request)), 10)
    }

    fn indexes(entries: Option<Vec<Entry>>) -> Option<Vec<(u64, u64)>> {
        entries.map(|v| {
            v.iter()
                .map(|e| (e.log_id().leader_id.term, e.index()))
                .collect()
        })
    }

    #[test]
    fn serves_ranges_that_start_inside_and_mirrors_truncation_and_purge() {
        let mut cache = LogCache::default();
        assert_eq!(indexes(cache.get(&(1..3))), None, "empty: sled answers");
        cache.append((5..=9).map(|i| entry(1, i)));
        assert_eq!(indexes(cache.get(&(4..6))), None, "starts below the cache");
        assert_eq!(indexes(cache.get(&(6..8))), Some(vec![(1, 6), (1, 7)]));
        assert_eq!(
            indexes(cache.get(&(8..20))),
            Some(vec![(1, 8), (1, 9)]),
            "nothing after the last entry"
        );
        assert_eq!(indexes(cache.get(&(12..20))), Some(vec![]));

        // A new leader overwrites 8.. : the old entries must not be served.
        cache.truncate_from(8);
        cache.append([entry(2, 8)]);
        assert_eq!(indexes(cache.get(&(7..))), Some(vec![(1, 7), (2, 8)]));
        // An append that overlaps without a truncation replaces the overlapped tail too.
        cache.append([entry(3, 7)]);
        assert_eq!(
            indexes(cache.get(&(5..))),
            Some(vec![(1, 5), (1, 6), (3, 7)])
        );

        cache.purge_upto(6);
        assert_eq!(indexes(cache.get(&(6..))), None);
        assert_eq!(indexes(cache.get(&(7..=7))), Some(vec![(3, 7)]));

        // A gap (cannot happen with openraft) starts the cache afresh.
        cache.append([entry(3, 20)]);
        assert_eq!(indexes(cache.get(&(7..))), None);
        assert_eq!(indexes(cache.get(&(20..))), Some(vec![(3, 20)]));
    }

    #[test]
    fn keeps_a_bounded_newest_part() {
        let mut cache = LogCache::default();
        cache.append((1..=1000).map(|i| entry(1, i)));
        let first = 1000 - MAX_ENTRIES as u64 + 1;
        assert_eq!(indexes(cache.get(&(first - 1..))), None);
        assert_eq!(cache.get(&(first..)).map(|v| v.len()), Some(MAX_ENTRIES));

        let mut cache = LogCache::default();
        let big = |i| (entry(1, i).0, MAX_BYTES / 2);
        cache.append((1..=3).map(big));
        assert_eq!(indexes(cache.get(&(2..))), Some(vec![(1, 2), (1, 3)]));
        assert_eq!(indexes(cache.get(&(1..))), None);
    }
}
