//! `LazyFs`: the FUSE operations, each a few lines over [`State`]. File data goes to the
//! page cache; directory operations and attributes other than the size go straight to
//! the backing dir.

use std::ffi::OsStr;
use std::fs::OpenOptions;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use fuser::{
    Errno, FileHandle, Filesystem, FopenFlags, Generation, INodeNo, LockOwner, OpenFlags,
    RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry,
    ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow, WriteFlags,
};

use crate::state::{errno, Dirty, State};

/// How long the kernel may cache attributes and entries: every change goes through this
/// file system, so the kernel's copy stays right.
const TTL: Duration = Duration::from_secs(1);

/// A handle on the file system's state shared with the control socket and signals.
#[derive(Clone)]
pub struct Handle(Arc<Mutex<State>>);

impl Handle {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic in one operation must not wedge the power cut that ends the test.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Power loss: drop every unsynced byte; every later operation fails with EIO.
    pub fn crash(&self) -> Dirty {
        self.lock().crash()
    }

    /// Write back every file (the kernel's periodic writeback, or a clean unmount).
    pub fn sync_all(&self) -> Result<Dirty, Errno> {
        let mut state = self.lock();
        state.alive()?;
        state.sync_all()
    }

    /// What a power loss would drop now.
    pub fn dirty(&self) -> Dirty {
        self.lock().dirty()
    }

    pub fn crashed(&self) -> bool {
        self.lock().crashed
    }
}

/// The file system mounted over a backing dir.
pub struct LazyFs {
    handle: Handle,
}

impl LazyFs {
    pub fn new(backing: PathBuf) -> LazyFs {
        LazyFs {
            handle: Handle(Arc::new(Mutex::new(State::new(backing)))),
        }
    }

    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// Run `op` on the live state; after a power loss it fails with EIO.
    fn live<T>(&self, op: impl FnOnce(&mut State) -> Result<T, Errno>) -> Result<T, Errno> {
        let mut state = self.handle.lock();
        state.alive()?;
        op(&mut state)
    }

    /// unlink and rmdir: `remove` the backing entry, then forget the path's state.
    fn remove(
        &self,
        parent: INodeNo,
        name: &OsStr,
        reply: ReplyEmpty,
        remove: impl FnOnce(&std::path::Path) -> std::io::Result<()>,
    ) {
        empty(
            reply,
            self.live(|s| {
                let rel = s.child(parent, name)?;
                remove(&s.full(&rel)).map_err(errno)?;
                s.forget_path(&rel);
                Ok(())
            }),
        );
    }
}

fn entry(reply: ReplyEntry, result: Result<fuser::FileAttr, Errno>) {
    match result {
        Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
        Err(e) => reply.error(e),
    }
}

fn empty(reply: ReplyEmpty, result: Result<(), Errno>) {
    match result {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(e),
    }
}

fn set_times(path: &Path, atime: Option<TimeOrNow>, mtime: Option<TimeOrNow>) -> Result<(), Errno> {
    let spec = |t: Option<TimeOrNow>| match t {
        None => libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_OMIT,
        },
        Some(TimeOrNow::Now) => libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_NOW,
        },
        Some(TimeOrNow::SpecificTime(t)) => {
            let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
            libc::timespec {
                tv_sec: d.as_secs() as libc::time_t,
                tv_nsec: d.subsec_nanos() as libc::c_long,
            }
        }
    };
    let times = [spec(atime), spec(mtime)];
    let c_path = std::ffi::CString::new(std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str()))
        .map_err(|_| Errno::EINVAL)?;
    // SAFETY: a NUL-terminated path and two timespecs, as utimensat(2) takes them.
    let ret = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c_path.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if ret == 0 {
        Ok(())
    } else {
        Err(errno(std::io::Error::last_os_error()))
    }
}

impl Filesystem for LazyFs {
    fn destroy(&mut self) {
        // A clean unmount writes everything back, as a real one does; after a power loss
        // nothing is written.
        let mut state = self.handle.lock();
        if !state.crashed {
            if let Err(e) = state.sync_all() {
                eprintln!("warren-lazyfs: writeback at unmount failed: {e:?}");
            }
        }
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        entry(
            reply,
            self.live(|s| {
                let rel = s.child(parent, name)?;
                s.attr_of(&rel)
            }),
        );
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.live(|s| s.attr(ino.0)) {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(e),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let result = self.live(|s| {
            let path = s.full(&s.rel(ino)?);
            if let Some(mode) = mode {
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode & 0o7777))
                    .map_err(errno)?;
            }
            if uid.is_some() || gid.is_some() {
                std::os::unix::fs::lchown(&path, uid, gid).map_err(errno)?;
            }
            if atime.is_some() || mtime.is_some() {
                set_times(&path, atime, mtime)?;
            }
            if let Some(size) = size {
                // A size change is file data: pending until the next sync.
                s.file(ino.0)?.cache.truncate(size);
            }
            s.attr(ino.0)
        });
        match result {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(e),
        }
    }

    fn mkdir(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        entry(
            reply,
            self.live(|s| {
                let rel = s.child(parent, name)?;
                std::fs::DirBuilder::new()
                    .mode(mode & !umask & 0o7777)
                    .create(s.full(&rel))
                    .map_err(errno)?;
                s.attr_of(&rel)
            }),
        );
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.remove(parent, name, reply, |p| std::fs::remove_file(p));
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.remove(parent, name, reply, |p| std::fs::remove_dir(p));
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        empty(
            reply,
            self.live(|s| {
                let from = s.child(parent, name)?;
                let to = s.child(newparent, newname)?;
                if flags.contains(RenameFlags::RENAME_EXCHANGE)
                    || flags.contains(RenameFlags::RENAME_WHITEOUT)
                {
                    return Err(Errno::EINVAL);
                }
                if flags.contains(RenameFlags::RENAME_NOREPLACE)
                    && std::fs::symlink_metadata(s.full(&to)).is_ok()
                {
                    return Err(Errno::EEXIST);
                }
                std::fs::rename(s.full(&from), s.full(&to)).map_err(errno)?;
                s.renamed(&from, &to);
                Ok(())
            }),
        );
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let result = self.live(|s| {
            s.open(ino.0)?;
            if flags.0 & libc::O_TRUNC != 0 {
                s.file(ino.0)?.cache.truncate(0);
            }
            Ok(())
        });
        match result {
            Ok(()) => reply.opened(FileHandle(ino.0), FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let result = self.live(|s| {
            let rel = s.child(parent, name)?;
            // The directory entry is created at once; O_TRUNC is file data, so pending.
            OpenOptions::new()
                .write(true)
                .create(true)
                .create_new(flags & libc::O_EXCL != 0)
                .mode(mode & !umask & 0o7777)
                .open(s.full(&rel))
                .map_err(errno)?;
            let ino = s.ino_of(&rel);
            s.open(ino)?;
            if flags & libc::O_TRUNC != 0 {
                s.file(ino)?.cache.truncate(0);
            }
            s.attr(ino)
        });
        match result {
            Ok(attr) => reply.created(
                &TTL,
                &attr,
                Generation(0),
                FileHandle(attr.ino.0),
                FopenFlags::empty(),
            ),
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        match self.live(|s| s.read(ino.0, offset, size as usize)) {
            Ok(data) => reply.data(&data),
            Err(e) => reply.error(e),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        match self.live(|s| {
            s.file(ino.0)?.cache.write(offset, data);
            Ok(())
        }) {
            Ok(()) => reply.written(data.len() as u32),
            Err(e) => reply.error(e),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        // close(2) persists nothing.
        empty(reply, self.live(|_| Ok(())));
    }

    fn release(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        let mut state = self.handle.lock();
        state.release(ino.0);
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        // fdatasync persists the data and the size needed to read it back, so both
        // flavours write back everything of this file.
        empty(reply, self.live(|s| s.sync(ino.0)));
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.live(|s| s.open_dir(ino)) {
            Ok(handle) => reply.opened(FileHandle(handle), FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let state = self.handle.lock();
        if let Err(e) = state.alive() {
            return reply.error(e);
        }
        match state.dir_entries(fh.0) {
            Ok(entries) => {
                for (i, (ino, kind, name)) in entries.iter().enumerate().skip(offset as usize) {
                    if reply.add(INodeNo(*ino), i as u64 + 1, *kind, name) {
                        break;
                    }
                }
                reply.ok();
            }
            Err(e) => reply.error(e),
        }
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.handle.lock().release_dir(fh.0);
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        // Directory entries reach the backing dir at once: nothing is pending here.
        empty(reply, self.live(|_| Ok(())));
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        // The broker's disk alarm reads statvfs of its data dir: answer the backing one's.
        let result = self.live(|s| {
            let path = std::ffi::CString::new(std::os::unix::ffi::OsStrExt::as_bytes(
                s.full(Path::new("")).as_os_str(),
            ))
            .map_err(|_| Errno::EINVAL)?;
            // SAFETY: statvfs(3) fills the zeroed struct from a NUL-terminated path.
            let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
            if unsafe { libc::statvfs(path.as_ptr(), &mut st) } != 0 {
                return Err(errno(std::io::Error::last_os_error()));
            }
            Ok(st)
        });
        match result {
            Ok(st) => reply.statfs(
                st.f_blocks,
                st.f_bfree,
                st.f_bavail,
                st.f_files,
                st.f_ffree,
                st.f_bsize as u32,
                st.f_namemax as u32,
                st.f_frsize as u32,
            ),
            Err(e) => reply.error(e),
        }
    }

    fn access(&self, _req: &Request, ino: INodeNo, _mask: fuser::AccessFlags, reply: ReplyEmpty) {
        empty(reply, self.live(|s| s.attr(ino.0).map(|_| ())));
    }
}
