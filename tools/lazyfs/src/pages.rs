//! `PageCache`: the unsynced state of one file (dirty extents, pending size), pure and
//! without IO, so the rules of what a sync persists and a power loss drops are unit-tested.

use std::collections::BTreeMap;
use std::io;

/// What a sync must do to the backing file, in this order: shrink it to `truncate_to`
/// (when a pending truncation hid backing bytes), write every extent, set its length to
/// `len`.
#[derive(Debug, PartialEq, Eq)]
pub struct Writeback {
    pub truncate_to: Option<u64>,
    pub extents: Vec<(u64, Vec<u8>)>,
    pub len: u64,
}

/// One file as the page cache sees it: the backing file holds the durable bytes, this
/// holds everything written or truncated since the last sync.
///
/// A byte at offset `x < size` reads as the newest extent byte covering `x`, else as the
/// backing byte when `x < min(durable_len, hidden_from)`, else as zero.
#[derive(Debug, Clone)]
pub struct PageCache {
    /// Non-overlapping, non-adjacent dirty extents by start offset.
    extents: BTreeMap<u64, Vec<u8>>,
    /// The file's size as readers see it.
    size: u64,
    /// The backing file's length (what survives a power loss).
    durable_len: u64,
    /// Backing bytes at and past this offset were truncated away (pending).
    hidden_from: u64,
}

impl PageCache {
    /// A clean cache over a backing file of `durable_len` bytes.
    pub fn new(durable_len: u64) -> PageCache {
        PageCache {
            extents: BTreeMap::new(),
            size: durable_len,
            durable_len,
            hidden_from: u64::MAX,
        }
    }

    /// The size readers see.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// True when a sync has something to do.
    pub fn is_dirty(&self) -> bool {
        !self.extents.is_empty() || self.size != self.durable_len || self.hidden_from != u64::MAX
    }

    /// Bytes held in dirty extents.
    pub fn dirty_bytes(&self) -> u64 {
        self.extents.values().map(|v| v.len() as u64).sum()
    }

    /// Record a write of `data` at `offset` (the file grows as needed).
    pub fn write(&mut self, offset: u64, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let end = offset + data.len() as u64;
        // Every extent that overlaps or touches [offset, end) merges into one.
        let mut touching: Vec<u64> = Vec::new();
        if let Some((&start, bytes)) = self.extents.range(..offset).next_back() {
            if start + bytes.len() as u64 >= offset {
                touching.push(start);
            }
        }
        touching.extend(self.extents.range(offset..=end).map(|(&start, _)| start));
        let new_start = touching.first().map_or(offset, |&s| s.min(offset));
        let last_end = touching
            .last()
            .map_or(end, |&s| s + self.extents[&s].len() as u64);
        let new_end = last_end.max(end);
        // Reuse the first extent's buffer when it starts the merged one (appends are cheap).
        let mut buf = match touching.first() {
            Some(&s) if s == new_start => self.extents.remove(&s).unwrap_or_default(),
            _ => Vec::new(),
        };
        buf.resize((new_end - new_start) as usize, 0);
        for start in touching {
            if let Some(bytes) = self.extents.remove(&start) {
                let at = (start - new_start) as usize;
                buf[at..at + bytes.len()].copy_from_slice(&bytes);
            }
        }
        let at = (offset - new_start) as usize;
        buf[at..at + data.len()].copy_from_slice(data);
        self.extents.insert(new_start, buf);
        self.size = self.size.max(end);
    }

    /// Record a truncation (or extension with zeros) to `len` bytes.
    pub fn truncate(&mut self, len: u64) {
        if len < self.size {
            let cut: Vec<u64> = self.extents.range(len..).map(|(&s, _)| s).collect();
            for start in cut {
                self.extents.remove(&start);
            }
            if let Some((&start, bytes)) = self.extents.range_mut(..len).next_back() {
                bytes.truncate((len - start) as usize);
            }
            self.hidden_from = self.hidden_from.min(len);
        }
        self.size = len;
    }

    /// Read up to `len` bytes at `offset` as a reader of the file sees them;
    /// `read_backing(offset, buf)` reads durable bytes (a short read means end of file).
    pub fn read(
        &self,
        offset: u64,
        len: usize,
        mut read_backing: impl FnMut(u64, &mut [u8]) -> io::Result<usize>,
    ) -> io::Result<Vec<u8>> {
        if offset >= self.size {
            return Ok(Vec::new());
        }
        let end = self.size.min(offset + len as u64);
        let mut out = vec![0u8; (end - offset) as usize];
        let backing_end = end.min(self.durable_len).min(self.hidden_from);
        if offset < backing_end {
            let want = (backing_end - offset) as usize;
            let mut done = 0;
            while done < want {
                let n = read_backing(offset + done as u64, &mut out[done..want])?;
                if n == 0 {
                    break; // zeros past the backing file's end
                }
                done += n;
            }
        }
        let first = self
            .extents
            .range(..offset)
            .next_back()
            .map_or(offset, |(&s, _)| s);
        for (&start, bytes) in self.extents.range(first..end) {
            let ext_end = start + bytes.len() as u64;
            let (from, to) = (start.max(offset), ext_end.min(end));
            if from < to {
                out[(from - offset) as usize..(to - offset) as usize]
                    .copy_from_slice(&bytes[(from - start) as usize..(to - start) as usize]);
            }
        }
        Ok(out)
    }

    /// What a sync must apply to the backing file now; call [`PageCache::synced`] after
    /// it was applied.
    pub fn writeback(&self) -> Writeback {
        Writeback {
            truncate_to: (self.hidden_from < self.durable_len).then_some(self.hidden_from),
            extents: self.extents.iter().map(|(&s, b)| (s, b.clone())).collect(),
            len: self.size,
        }
    }

    /// The writeback was applied: everything is durable.
    pub fn synced(&mut self) {
        self.extents.clear();
        self.durable_len = self.size;
        self.hidden_from = u64::MAX;
    }

    /// Power loss: forget every unsynced byte and size change; returns the bytes dropped.
    pub fn discard(&mut self) -> u64 {
        let dropped = self.dirty_bytes();
        *self = PageCache::new(self.durable_len);
        dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Apply `wb` to an in-memory backing file, as the file system applies it to disk.
    fn apply(backing: &mut Vec<u8>, wb: Writeback) {
        if let Some(len) = wb.truncate_to {
            backing.truncate(len as usize);
        }
        for (offset, bytes) in wb.extents {
            let end = offset as usize + bytes.len();
            if backing.len() < end {
                backing.resize(end, 0);
            }
            backing[offset as usize..end].copy_from_slice(&bytes);
        }
        backing.resize(wb.len as usize, 0);
    }

    fn read_all(cache: &PageCache, backing: &[u8]) -> Vec<u8> {
        cache
            .read(0, usize::MAX / 2, |off, buf| {
                let from = (off as usize).min(backing.len());
                let n = buf.len().min(backing.len() - from);
                buf[..n].copy_from_slice(&backing[from..from + n]);
                Ok(n)
            })
            .unwrap()
    }

    #[test]
    fn unsynced_writes_are_visible_then_dropped_by_a_power_loss() {
        let mut backing = b"durable".to_vec();
        let mut cache = PageCache::new(backing.len() as u64);
        cache.write(7, b"+pending");
        assert_eq!(read_all(&cache, &backing), b"durable+pending");
        assert_eq!(cache.discard(), 8);
        assert_eq!(read_all(&cache, &backing), b"durable");
        cache.write(0, b"D");
        apply(&mut backing, cache.writeback());
        cache.synced();
        assert_eq!(backing, b"Durable");
        assert!(!cache.is_dirty());
    }

    #[test]
    fn a_truncation_hides_backing_bytes_until_synced() {
        let mut backing = b"0123456789".to_vec();
        let mut cache = PageCache::new(10);
        cache.truncate(4);
        cache.write(6, b"xy");
        assert_eq!(read_all(&cache, &backing), b"0123\0\0xy");
        apply(&mut backing, cache.writeback());
        cache.synced();
        assert_eq!(backing, b"0123\0\0xy");
    }

    #[test]
    fn adjacent_and_overlapping_writes_merge_into_one_extent() {
        let mut cache = PageCache::new(0);
        cache.write(0, b"aaaa");
        cache.write(4, b"bbbb");
        cache.write(2, b"cc");
        cache.write(20, b"z");
        let wb = cache.writeback();
        assert_eq!(
            wb.extents,
            vec![(0, b"aaccbbbb".to_vec()), (20, b"z".to_vec())]
        );
        assert_eq!(wb.len, 21);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Write(u64, Vec<u8>),
        Truncate(u64),
        Sync,
        PowerLoss,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u64..64, proptest::collection::vec(any::<u8>(), 1..24))
                .prop_map(|(o, d)| Op::Write(o, d)),
            1 => (0u64..80).prop_map(Op::Truncate),
            1 => Just(Op::Sync),
            1 => Just(Op::PowerLoss),
        ]
    }

    proptest! {
        /// Against a model of two byte vectors (what readers see, what is durable): after
        /// every step a reader sees the model's file and the backing file is the model's
        /// durable file.
        #[test]
        fn matches_a_model_of_visible_and_durable_bytes(ops in proptest::collection::vec(op(), 1..40)) {
            let mut backing: Vec<u8> = b"initial-contents".to_vec();
            let mut visible = backing.clone();
            let mut cache = PageCache::new(backing.len() as u64);
            for op in ops {
                match op {
                    Op::Write(offset, data) => {
                        let end = offset as usize + data.len();
                        if visible.len() < end {
                            visible.resize(end, 0);
                        }
                        visible[offset as usize..end].copy_from_slice(&data);
                        cache.write(offset, &data);
                    }
                    Op::Truncate(len) => {
                        visible.resize(len as usize, 0);
                        cache.truncate(len);
                    }
                    Op::Sync => {
                        apply(&mut backing, cache.writeback());
                        cache.synced();
                        prop_assert!(!cache.is_dirty());
                    }
                    Op::PowerLoss => {
                        cache.discard();
                        visible = backing.clone();
                    }
                }
                prop_assert_eq!(cache.size(), visible.len() as u64);
                prop_assert_eq!(&read_all(&cache, &backing), &visible);
            }
        }
    }
}
