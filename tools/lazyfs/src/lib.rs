//! warren-lazyfs: a FUSE file system that simulates power loss, as Jepsen's LazyFS does.
//!
//! `warren-lazyfs BACKING_DIR MOUNTPOINT [--control SOCKET]` mounts a pass-through of
//! BACKING_DIR at MOUNTPOINT. File data written through the mount is kept in memory (the
//! "page cache") and reaches BACKING_DIR only when the file is synced:
//!
//! - `fsync(2)` or `fdatasync(2)` of the file (FUSE FSYNC; both write back the file's data
//!   and its size), `msync(MS_SYNC)` (the kernel turns it into FSYNC);
//! - the control command `sync` (every file, as the kernel's periodic writeback would);
//! - a clean stop (SIGTERM, SIGINT, SIGHUP) or an unmount by someone else (every file, as
//!   a real unmount would).
//!
//! Nothing else persists data: not `close(2)`, not `sync_file_range(2)` (FUSE has no such
//! operation, and since the kernel's writeback cache is not enabled for this mount every
//! `write(2)` reaches us as a WRITE, so the kernel has no dirty pages that a
//! `sync_file_range` could send), not `syncfs(2)` (FUSE has no SYNCFS for such a mount)
//! and not `fsync` of a directory. Readers see unsynced data at once (dirty extents are
//! laid over the backing file), and the file's size is the size as written; growth and
//! truncation are pending until a sync too.
//!
//! **Power loss**: the control command `crash` (or SIGUSR1) drops every unsynced byte and
//! size change, answers every further operation with EIO, detaches the mount (lazily, so
//! processes still holding files only get errors) and exits with status 0. BACKING_DIR then
//! holds exactly what was synced, and a program can be restarted on it directly, or on a
//! fresh mount of it.
//!
//! **What this simulation does not lose**: metadata operations (create, mkdir, rename,
//! unlink, rmdir, chmod, chown, utimes) are applied to BACKING_DIR at once. It loses
//! unsynced file data and unsynced file size changes, not directory entries: a file
//! created and never synced survives a power loss, empty or with its synced bytes. The
//! backing files are not themselves fsynced; the machine under the simulation is not
//! expected to lose power.
//!
//! Control socket protocol: one command a line, one answer a line.
//!
//! | command | answer |
//! | --- | --- |
//! | `crash` (or `power-loss`) | `crashed files=N bytes=M`, then the process unmounts and exits |
//! | `sync` | `synced files=N bytes=M` (what was written back) |
//! | `dirty` | `dirty files=N bytes=M` (what a power loss would drop now) |
//!
//! Once mounted, the program prints `warren-lazyfs: mounted BACKING on MOUNTPOINT` on
//! standard output. It mounts directly when run as root, else through `fusermount3`.

pub mod control;
pub mod fs;
pub mod harness;
pub mod pages;
pub mod state;
