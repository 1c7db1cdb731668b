//! `State`: the mounted file system's inode table, its open files with their page caches,
//! and the two events that end a file's unsynced state: a sync and a power loss.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use fuser::{Errno, FileAttr, FileType, INodeNo};

use crate::pages::PageCache;

/// A regular file that is open or has unsynced data: the backing file, open read-write,
/// and what was written through the mount since its last sync.
pub struct CachedFile {
    file: File,
    opens: u32,
    pub cache: PageCache,
}

/// Counters of unsynced state, for the control socket.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Dirty {
    pub files: u64,
    pub bytes: u64,
}

/// Everything behind the mount; one lock guards it (the session runs one thread).
pub struct State {
    backing: PathBuf,
    /// After a power loss every operation fails with EIO.
    pub crashed: bool,
    /// Inode number -> path relative to the backing dir ("" is the root).
    paths: HashMap<u64, PathBuf>,
    inos: HashMap<PathBuf, u64>,
    next_ino: u64,
    files: HashMap<u64, CachedFile>,
    /// Directory handles: the entries listed when the directory was opened.
    dirs: HashMap<u64, Vec<(u64, FileType, std::ffi::OsString)>>,
    next_dir_handle: u64,
}

pub fn errno(e: io::Error) -> Errno {
    Errno::from(e)
}

impl State {
    pub fn new(backing: PathBuf) -> State {
        let root = INodeNo::ROOT.0;
        State {
            backing,
            crashed: false,
            paths: HashMap::from([(root, PathBuf::new())]),
            inos: HashMap::from([(PathBuf::new(), root)]),
            next_ino: root + 1,
            files: HashMap::new(),
            dirs: HashMap::new(),
            next_dir_handle: 1,
        }
    }

    /// Fail every operation after a power loss.
    pub fn alive(&self) -> Result<(), Errno> {
        if self.crashed {
            Err(Errno::EIO)
        } else {
            Ok(())
        }
    }

    /// The inode number of a path relative to the backing dir, allocated on first sight.
    pub fn ino_of(&mut self, rel: &Path) -> u64 {
        if let Some(&ino) = self.inos.get(rel) {
            return ino;
        }
        let ino = self.next_ino;
        self.next_ino += 1;
        self.paths.insert(ino, rel.to_path_buf());
        self.inos.insert(rel.to_path_buf(), ino);
        ino
    }

    /// The path of `ino` relative to the backing dir.
    pub fn rel(&self, ino: INodeNo) -> Result<PathBuf, Errno> {
        self.paths.get(&ino.0).cloned().ok_or(Errno::ESTALE)
    }

    /// The relative path of `name` in directory `parent`.
    pub fn child(&self, parent: INodeNo, name: &OsStr) -> Result<PathBuf, Errno> {
        Ok(self.rel(parent)?.join(name))
    }

    /// The backing path of a relative path.
    pub fn full(&self, rel: &Path) -> PathBuf {
        self.backing.join(rel)
    }

    /// Attributes of `ino`: the backing file's, with the size readers see.
    pub fn attr(&self, ino: u64) -> Result<FileAttr, Errno> {
        let meta = match self.files.get(&ino) {
            // An open file may be unlinked already: its descriptor still answers.
            Some(cached) => cached.file.metadata(),
            None => {
                std::fs::symlink_metadata(self.full(self.paths.get(&ino).ok_or(Errno::ESTALE)?))
            }
        }
        .map_err(errno)?;
        let mut attr = to_attr(ino, &meta);
        if let Some(cached) = self.files.get(&ino) {
            attr.size = cached.cache.size();
            attr.blocks = attr.size.div_ceil(512);
        }
        Ok(attr)
    }

    /// Attributes of a path relative to the backing dir (allocating its inode number).
    pub fn attr_of(&mut self, rel: &Path) -> Result<FileAttr, Errno> {
        std::fs::symlink_metadata(self.full(rel)).map_err(errno)?;
        let ino = self.ino_of(rel);
        self.attr(ino)
    }

    /// The cached file of `ino`, opening its backing file on first use.
    pub fn file(&mut self, ino: u64) -> Result<&mut CachedFile, Errno> {
        if !self.files.contains_key(&ino) {
            let path = self.full(self.paths.get(&ino).ok_or(Errno::ESTALE)?);
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .open(path)
                .map_err(errno)?;
            let len = file.metadata().map_err(errno)?.len();
            self.files.insert(
                ino,
                CachedFile {
                    file,
                    opens: 0,
                    cache: PageCache::new(len),
                },
            );
        }
        Ok(self.files.get_mut(&ino).expect("inserted above"))
    }

    /// An open of `ino` through the mount.
    pub fn open(&mut self, ino: u64) -> Result<(), Errno> {
        self.file(ino)?.opens += 1;
        Ok(())
    }

    /// The last close of an open: a clean file leaves the cache (its data is durable).
    pub fn release(&mut self, ino: u64) {
        if let Some(cached) = self.files.get_mut(&ino) {
            cached.opens = cached.opens.saturating_sub(1);
            if cached.opens == 0 && !cached.cache.is_dirty() {
                self.files.remove(&ino);
            }
        }
    }

    /// Read through the page cache.
    pub fn read(&mut self, ino: u64, offset: u64, len: usize) -> Result<Vec<u8>, Errno> {
        let cached = self.file(ino)?;
        let file = &cached.file;
        cached
            .cache
            .read(offset, len, |at, buf| file.read_at(buf, at))
            .map_err(errno)
    }

    /// fsync/fdatasync: write the file's unsynced data and size to the backing file.
    ///
    /// The backing file itself is not fsynced: the simulated disk is the backing dir,
    /// and the machine under it does not lose power.
    pub fn sync(&mut self, ino: u64) -> Result<(), Errno> {
        if let Some(cached) = self.files.get_mut(&ino) {
            let wb = cached.cache.writeback();
            if let Some(len) = wb.truncate_to {
                cached.file.set_len(len).map_err(errno)?;
            }
            for (offset, bytes) in &wb.extents {
                cached.file.write_all_at(bytes, *offset).map_err(errno)?;
            }
            if cached.file.metadata().map_err(errno)?.len() != wb.len {
                cached.file.set_len(wb.len).map_err(errno)?;
            }
            cached.cache.synced();
            if cached.opens == 0 {
                self.files.remove(&ino);
            }
        }
        Ok(())
    }

    /// Sync every file (as a clean unmount or the kernel's writeback would).
    pub fn sync_all(&mut self) -> Result<Dirty, Errno> {
        let before = self.dirty();
        let inos: Vec<u64> = self.files.keys().copied().collect();
        for ino in inos {
            self.sync(ino)?;
        }
        Ok(before)
    }

    /// Power loss: drop every unsynced byte and size change, then fail everything.
    pub fn crash(&mut self) -> Dirty {
        let dirty = self.dirty();
        for cached in self.files.values_mut() {
            cached.cache.discard();
        }
        self.files.clear();
        self.dirs.clear();
        self.crashed = true;
        dirty
    }

    /// What a power loss would drop now.
    pub fn dirty(&self) -> Dirty {
        let dirty_files = self.files.values().filter(|c| c.cache.is_dirty());
        Dirty {
            files: dirty_files.clone().count() as u64,
            bytes: dirty_files.map(|c| c.cache.dirty_bytes()).sum(),
        }
    }

    /// A path was removed (unlink, or replaced by a rename): its inode number no longer
    /// names it, and the unsynced data of a file nobody has open goes with it.
    pub fn forget_path(&mut self, rel: &Path) {
        if let Some(ino) = self.inos.remove(rel) {
            self.paths.remove(&ino);
            if self.files.get(&ino).is_some_and(|c| c.opens == 0) {
                self.files.remove(&ino);
            }
        }
    }

    /// `from` was renamed to `to`: move the inode numbers of it and everything below it.
    pub fn renamed(&mut self, from: &Path, to: &Path) {
        self.forget_path(to);
        let moved: Vec<(PathBuf, u64)> = self
            .inos
            .iter()
            .filter(|(p, _)| p.starts_with(from))
            .map(|(p, &ino)| (p.clone(), ino))
            .collect();
        for (old, ino) in moved {
            let new = to.join(old.strip_prefix(from).expect("filtered on prefix"));
            self.inos.remove(&old);
            // A stale entry below the target was replaced with it.
            self.inos.insert(new.clone(), ino);
            self.paths.insert(ino, new);
        }
    }

    /// Open a directory: list its entries once, served from this list until released.
    pub fn open_dir(&mut self, ino: INodeNo) -> Result<u64, Errno> {
        let rel = self.rel(ino)?;
        let mut entries = vec![
            (ino.0, FileType::Directory, ".".into()),
            (ino.0, FileType::Directory, "..".into()),
        ];
        for entry in std::fs::read_dir(self.full(&rel)).map_err(errno)? {
            let entry = entry.map_err(errno)?;
            let kind = entry
                .file_type()
                .ok()
                .and_then(FileType::from_std)
                .unwrap_or(FileType::RegularFile);
            let child = self.ino_of(&rel.join(entry.file_name()));
            entries.push((child, kind, entry.file_name()));
        }
        let handle = self.next_dir_handle;
        self.next_dir_handle += 1;
        self.dirs.insert(handle, entries);
        Ok(handle)
    }

    pub fn dir_entries(
        &self,
        handle: u64,
    ) -> Result<&[(u64, FileType, std::ffi::OsString)], Errno> {
        self.dirs
            .get(&handle)
            .map(Vec::as_slice)
            .ok_or(Errno::EBADF)
    }

    pub fn release_dir(&mut self, handle: u64) {
        self.dirs.remove(&handle);
    }
}

fn to_attr(ino: u64, meta: &std::fs::Metadata) -> FileAttr {
    let time = |secs: i64, nsecs: i64| {
        if secs >= 0 {
            UNIX_EPOCH + Duration::new(secs as u64, nsecs as u32)
        } else {
            UNIX_EPOCH
        }
    };
    FileAttr {
        ino: INodeNo(ino),
        size: meta.size(),
        blocks: meta.blocks(),
        atime: time(meta.atime(), meta.atime_nsec()),
        mtime: time(meta.mtime(), meta.mtime_nsec()),
        ctime: time(meta.ctime(), meta.ctime_nsec()),
        crtime: UNIX_EPOCH,
        kind: FileType::from_std(meta.file_type()).unwrap_or(FileType::RegularFile),
        perm: (meta.mode() & 0o7777) as u16,
        nlink: meta.nlink() as u32,
        uid: meta.uid(),
        gid: meta.gid(),
        rdev: meta.rdev() as u32,
        blksize: meta.blksize() as u32,
        flags: 0,
    }
}
