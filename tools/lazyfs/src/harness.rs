//! Test support: run `warren-lazyfs` as a child process, cut its power, and always leave
//! nothing mounted (the guard unmounts in `Drop`, also when a test panics).

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Why FUSE cannot be used here, or `None` when `/dev/fuse` opens. Tests skip (and say
/// so) only for this reason; any later failure to mount fails them.
pub fn fuse_unusable() -> Option<String> {
    match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse")
    {
        Ok(_) => None,
        Err(e) => Some(format!("/dev/fuse cannot be opened: {e}")),
    }
}

/// The `warren-lazyfs` binary: `$WARREN_LAZYFS` if set, else the one built into the same
/// target directory as the running test (`target/<profile>/warren-lazyfs`).
pub fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("WARREN_LAZYFS") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("current test executable");
    // target/<profile>/deps/<test> -> target/<profile>/warren-lazyfs
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable in target/<profile>/deps");
    let path = profile_dir.join("warren-lazyfs");
    assert!(
        path.exists(),
        "{} is missing: build it first with `cargo build --release -p warren-lazyfs` \
         (scripts/test.sh does), or point $WARREN_LAZYFS at it",
        path.display()
    );
    path
}

/// True when `path` is a mount point (of any file system) in this mount namespace.
pub fn is_mounted(path: &Path) -> bool {
    let Ok(path) = path.canonicalize() else {
        return false;
    };
    let Ok(mountinfo) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let wanted = path.to_string_lossy().replace(' ', "\\040");
    mountinfo
        .lines()
        .any(|line| line.split(' ').nth(4) == Some(wanted.as_str()))
}

/// A running `warren-lazyfs` over `backing`, mounted at `mountpoint`.
pub struct Mount {
    child: Option<Child>,
    pub backing: PathBuf,
    pub mountpoint: PathBuf,
    control: PathBuf,
}

impl Mount {
    /// Mount `backing` at `mountpoint` (both existing directories) with its control
    /// socket at `control`, and wait until the mount serves.
    pub fn start(
        binary: &Path,
        backing: &Path,
        mountpoint: &Path,
        control: &Path,
    ) -> io::Result<Mount> {
        let mut child = Command::new(binary)
            .arg(backing)
            .arg(mountpoint)
            .arg("--control")
            .arg(control)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdout = child.stdout.take().expect("piped stdout");
        let mut mount = Mount {
            child: Some(child),
            backing: backing.to_path_buf(),
            mountpoint: mountpoint.to_path_buf(),
            control: control.to_path_buf(),
        };
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout);
            let mut first = String::new();
            let _ = lines.read_line(&mut first);
            let _ = tx.send(first);
            // Keep draining so the child never blocks on a full pipe.
            let _ = io::copy(&mut lines, &mut io::sink());
        });
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(line) if line.contains("mounted") && is_mounted(mountpoint) => Ok(mount),
            other => {
                let status = mount
                    .child
                    .as_mut()
                    .and_then(|c| c.try_wait().ok().flatten());
                Err(io::Error::other(format!(
                    "warren-lazyfs did not mount {} on {} (first line {other:?}, exit {status:?})",
                    backing.display(),
                    mountpoint.display()
                )))
            }
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Send one control command and return its one-line answer.
    pub fn command(&self, command: &str) -> io::Result<String> {
        let mut stream = UnixStream::connect(&self.control)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        writeln!(stream, "{command}")?;
        let mut answer = String::new();
        BufReader::new(stream).read_line(&mut answer)?;
        if answer.is_empty() {
            return Err(io::Error::other(format!("no answer to {command:?}")));
        }
        Ok(answer.trim_end().to_string())
    }

    /// Cut the power: every unsynced byte is dropped now. Returns the answer
    /// (`crashed files=N bytes=M`); the process then unmounts and exits, see
    /// [`Mount::wait_exit`].
    pub fn crash(&self) -> io::Result<String> {
        self.command("crash")
    }

    /// Wait until the process has exited and the mount is gone; its exit status.
    pub fn wait_exit(&mut self, limit: Duration) -> io::Result<std::process::ExitStatus> {
        let start = Instant::now();
        let child = self
            .child
            .as_mut()
            .ok_or_else(|| io::Error::other("already exited"))?;
        loop {
            if let Some(status) = child.try_wait()? {
                self.child = None;
                if is_mounted(&self.mountpoint) {
                    return Err(io::Error::other(format!(
                        "warren-lazyfs exited ({status}) but {} is still mounted",
                        self.mountpoint.display()
                    )));
                }
                return Ok(status);
            }
            if start.elapsed() > limit {
                return Err(io::Error::other(format!(
                    "warren-lazyfs still running after {limit:?}"
                )));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// A clean stop (SIGTERM): everything is written back, then unmounted.
    pub fn stop(&mut self) -> io::Result<std::process::ExitStatus> {
        if let Some(pid) = self.pid() {
            // SAFETY: kill(2) of our own child process by its PID.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
        }
        self.wait_exit(Duration::from_secs(10))
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if self.child.is_some() && self.stop().is_err() {
            if let Some(mut child) = self.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        if is_mounted(&self.mountpoint) {
            let _ = Command::new("umount")
                .arg("-l")
                .arg(&self.mountpoint)
                .status();
        }
        if is_mounted(&self.mountpoint) {
            let _ = Command::new("fusermount3")
                .args(["-u", "-z"])
                .arg(&self.mountpoint)
                .status();
        }
    }
}
