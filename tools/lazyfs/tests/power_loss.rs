//! The file system on a real mount: what survives a power cut and what does not.
//! Skipped, with a message, only where /dev/fuse cannot be opened.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use warren_lazyfs::harness::{fuse_unusable, is_mounted, Mount};

/// A mount over a fresh backing dir, all in one temp dir.
struct Fixture {
    mount: Mount,
    _dir: tempfile::TempDir,
}

impl Fixture {
    /// `None` (after saying why) where FUSE is unusable.
    fn start(test: &str) -> Option<Fixture> {
        if let Some(why) = fuse_unusable() {
            eprintln!("SKIPPED {test}: {why}");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let (backing, mountpoint) = (dir.path().join("backing"), dir.path().join("mnt"));
        std::fs::create_dir(&backing).unwrap();
        std::fs::create_dir(&mountpoint).unwrap();
        let mount = Mount::start(
            Path::new(env!("CARGO_BIN_EXE_warren-lazyfs")),
            &backing,
            &mountpoint,
            &dir.path().join("control.sock"),
        )
        .expect("mount");
        Some(Fixture { mount, _dir: dir })
    }

    fn mounted(&self, name: &str) -> PathBuf {
        self.mount.mountpoint.join(name)
    }

    fn backing(&self, name: &str) -> PathBuf {
        self.mount.backing.join(name)
    }

    /// Cut the power and wait until the file system is gone.
    fn power_loss(&mut self) -> String {
        let answer = self.mount.crash().expect("crash command");
        let status = self.mount.wait_exit(Duration::from_secs(10)).expect("exit");
        assert!(status.success(), "warren-lazyfs exited with {status}");
        assert!(!is_mounted(&self.mount.mountpoint));
        answer
    }
}

fn create(path: &Path) -> File {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .unwrap()
}

#[test]
fn fsynced_data_survives_a_power_cut() {
    let Some(mut fx) = Fixture::start("fsynced_data_survives_a_power_cut") else {
        return;
    };
    let mut f = create(&fx.mounted("log"));
    f.write_all(b"synced").unwrap();
    f.sync_all().unwrap();
    assert_eq!(std::fs::read(fx.backing("log")).unwrap(), b"synced");
    f.write_all(b"+lost").unwrap();
    let answer = fx.power_loss();
    assert_eq!(answer, "crashed files=1 bytes=5");
    assert_eq!(std::fs::read(fx.backing("log")).unwrap(), b"synced");
}

#[test]
fn written_but_unsynced_data_is_gone() {
    let Some(mut fx) = Fixture::start("written_but_unsynced_data_is_gone") else {
        return;
    };
    std::fs::write(fx.backing("old"), b"0123456789").unwrap();
    let mut f = create(&fx.mounted("new"));
    f.write_all(&[7u8; 100_000]).unwrap();
    drop(f); // close(2) persists nothing
    let old = create(&fx.mounted("old"));
    old.write_all_at(b"XX", 2).unwrap();
    old.set_len(4).unwrap(); // a truncation is pending too
    assert_eq!(std::fs::read(fx.mounted("old")).unwrap(), b"01XX");
    fx.power_loss();
    // The directory entry survives (metadata goes to the backing dir at once), its data
    // does not.
    assert_eq!(std::fs::read(fx.backing("new")).unwrap(), b"");
    assert_eq!(std::fs::read(fx.backing("old")).unwrap(), b"0123456789");
    // After the cut a file still open answers EIO (or ENOTCONN once the connection is
    // gone), never success.
    assert!(old.write_all_at(b"late", 0).is_err());
}

#[test]
fn sync_file_range_does_not_save_data() {
    let Some(mut fx) = Fixture::start("sync_file_range_does_not_save_data") else {
        return;
    };
    let mut f = create(&fx.mounted("segment"));
    f.write_all(&[1u8; 8192]).unwrap();
    // As sled 0.34 flushes its log on Linux.
    // SAFETY: sync_file_range(2) on an open descriptor.
    let ret = unsafe {
        libc::sync_file_range(
            f.as_raw_fd(),
            0,
            8192,
            libc::SYNC_FILE_RANGE_WAIT_BEFORE
                | libc::SYNC_FILE_RANGE_WRITE
                | libc::SYNC_FILE_RANGE_WAIT_AFTER,
        )
    };
    assert_eq!(
        ret,
        0,
        "sync_file_range: {}",
        std::io::Error::last_os_error()
    );
    assert_eq!(std::fs::metadata(fx.backing("segment")).unwrap().len(), 0);
    let answer = fx.power_loss();
    assert_eq!(answer, "crashed files=1 bytes=8192");
    assert_eq!(std::fs::metadata(fx.backing("segment")).unwrap().len(), 0);
}

#[test]
fn fdatasync_saves_data_and_the_file_growth() {
    let Some(mut fx) = Fixture::start("fdatasync_saves_data_and_the_file_growth") else {
        return;
    };
    std::fs::write(fx.backing("grows"), b"head").unwrap();
    let f = create(&fx.mounted("grows"));
    f.write_all_at(b"tail", 1 << 20).unwrap(); // a hole, then data past the old end
    f.sync_data().unwrap();
    f.write_all_at(b"after", (1 << 20) + 4).unwrap();
    fx.power_loss();
    let bytes = std::fs::read(fx.backing("grows")).unwrap();
    assert_eq!(
        bytes.len(),
        (1 << 20) + 4,
        "the growth up to the synced write survives"
    );
    assert_eq!(&bytes[..4], b"head");
    assert!(bytes[4..1 << 20].iter().all(|&b| b == 0));
    assert_eq!(&bytes[1 << 20..], b"tail");
}

#[test]
fn a_reader_sees_unsynced_data_before_the_cut() {
    let Some(mut fx) = Fixture::start("a_reader_sees_unsynced_data_before_the_cut") else {
        return;
    };
    std::fs::write(fx.backing("f"), b"aaaaaaaaaa").unwrap();
    let writer = create(&fx.mounted("f"));
    writer.write_all_at(b"BB", 4).unwrap();
    writer.write_all_at(b"CC", 12).unwrap(); // past the end: a zero gap, then data
    let mut reader = File::open(fx.mounted("f")).unwrap();
    let mut seen = Vec::new();
    reader.read_to_end(&mut seen).unwrap();
    assert_eq!(seen, b"aaaaBBaaaa\0\0CC");
    assert_eq!(std::fs::metadata(fx.mounted("f")).unwrap().len(), 14);
    assert_eq!(reader.seek(SeekFrom::End(0)).unwrap(), 14);
    // Another process reads the same.
    let out = std::process::Command::new("cat")
        .arg(fx.mounted("f"))
        .output()
        .unwrap();
    assert_eq!(out.stdout, b"aaaaBBaaaa\0\0CC");
    fx.power_loss();
    assert_eq!(std::fs::read(fx.backing("f")).unwrap(), b"aaaaaaaaaa");
}

#[test]
fn a_clean_stop_writes_everything_back() {
    let Some(mut fx) = Fixture::start("a_clean_stop_writes_everything_back") else {
        return;
    };
    std::fs::create_dir(fx.mounted("dir")).unwrap();
    std::fs::write(fx.mounted("dir/a"), b"unsynced").unwrap();
    std::fs::rename(fx.mounted("dir/a"), fx.mounted("dir/b")).unwrap();
    assert_eq!(fx.mount.command("dirty").unwrap(), "dirty files=1 bytes=8");
    let status = fx.mount.stop().unwrap();
    assert!(status.success());
    assert_eq!(std::fs::read(fx.backing("dir/b")).unwrap(), b"unsynced");
    assert!(!fx.backing("dir/a").exists());
}

#[test]
fn the_sync_command_writes_every_file_back() {
    let Some(mut fx) = Fixture::start("the_sync_command_writes_every_file_back") else {
        return;
    };
    std::fs::write(fx.mounted("a"), b"one").unwrap();
    std::fs::write(fx.mounted("b"), b"two").unwrap();
    assert_eq!(fx.mount.command("sync").unwrap(), "synced files=2 bytes=6");
    std::fs::write(fx.mounted("a"), b"changed").unwrap();
    fx.power_loss();
    assert_eq!(std::fs::read(fx.backing("a")).unwrap(), b"one");
    assert_eq!(std::fs::read(fx.backing("b")).unwrap(), b"two");
}

/// Write `data` at the start of `file` through a shared mapping, then `msync` it or not.
fn write_mapped(file: &File, data: &[u8], msync: bool) {
    let len = 4096;
    // SAFETY: a fresh shared mapping of a 4096-byte file, written within its bounds and
    // unmapped before returning.
    unsafe {
        let map = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            0,
        );
        assert_ne!(
            map,
            libc::MAP_FAILED,
            "mmap: {}",
            std::io::Error::last_os_error()
        );
        std::ptr::copy_nonoverlapping(data.as_ptr(), map.cast::<u8>(), data.len());
        if msync {
            assert_eq!(libc::msync(map, len, libc::MS_SYNC), 0);
        }
        assert_eq!(libc::munmap(map, len), 0);
    }
}

#[test]
fn mapped_writes_persist_only_with_msync() {
    let Some(mut fx) = Fixture::start("mapped_writes_persist_only_with_msync") else {
        return;
    };
    for name in ["synced", "unsynced"] {
        let f = create(&fx.mounted(name));
        f.set_len(4096).unwrap();
        f.sync_all().unwrap();
    }
    write_mapped(&create(&fx.mounted("synced")), b"mapped", true);
    write_mapped(&create(&fx.mounted("unsynced")), b"mapped", false);
    // munmap and close wrote the dirty page to the file system, which keeps it unsynced.
    assert_eq!(
        &std::fs::read(fx.mounted("unsynced")).unwrap()[..6],
        b"mapped"
    );
    fx.power_loss();
    assert_eq!(
        &std::fs::read(fx.backing("synced")).unwrap()[..6],
        b"mapped"
    );
    assert_eq!(
        std::fs::read(fx.backing("unsynced")).unwrap(),
        vec![0u8; 4096],
        "a mapped write without msync is lost"
    );
}
