//! `warren-lazyfs BACKING_DIR MOUNTPOINT [--control SOCKET]`: mount, wait for a power
//! cut or a stop, unmount. See the library's docs for what persists.

use std::ffi::CString;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::Duration;

use fuser::{MountOption, Session};
use warren_lazyfs::control::{self, Event};
use warren_lazyfs::fs::LazyFs;

const USAGE: &str = "usage: warren-lazyfs BACKING_DIR MOUNTPOINT [--control SOCKET]\n\
    Data written through MOUNTPOINT reaches BACKING_DIR only on fsync/fdatasync.\n\
    Power loss: `crash` on the control socket, or SIGUSR1. Clean stop: SIGTERM.";

struct Args {
    backing: PathBuf,
    mountpoint: PathBuf,
    control: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut positional = Vec::new();
    let mut control = None;
    let mut args = std::env::args_os().skip(1);
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some("-h" | "--help") => return Err(String::new()),
            Some("--control") => {
                control = Some(PathBuf::from(args.next().ok_or("--control needs a path")?));
            }
            _ => positional.push(PathBuf::from(arg)),
        }
    }
    match <[PathBuf; 2]>::try_from(positional) {
        Ok([backing, mountpoint]) => Ok(Args {
            backing,
            mountpoint,
            control,
        }),
        Err(_) => Err("expected BACKING_DIR and MOUNTPOINT".into()),
    }
}

/// Detach the mount even while processes still hold files on it.
fn detach(mountpoint: &Path) {
    let Ok(path) = CString::new(mountpoint.as_os_str().as_bytes()) else {
        return;
    };
    // SAFETY: umount2(2) with a NUL-terminated path.
    if unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) } == 0 {
        return;
    }
    // Not root: the setuid helper may.
    let _ = std::process::Command::new("fusermount3")
        .args(["-u", "-z", "--"])
        .arg(mountpoint)
        .status();
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("warren-lazyfs: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let signals = control::block_signals();
    let (backing, mountpoint) = match (args.backing.canonicalize(), args.mountpoint.canonicalize())
    {
        (Ok(b), Ok(m)) => (b, m),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("warren-lazyfs: {e}");
            return ExitCode::from(2);
        }
    };
    let fs = LazyFs::new(backing.clone());
    let handle = fs.handle();
    let (tx, rx) = mpsc::channel();
    let started = control::spawn_signals(signals, handle.clone(), tx.clone()).and_then(|()| {
        match &args.control {
            Some(path) => control::spawn_socket(path, handle.clone(), tx.clone()),
            None => Ok(()),
        }
    });
    if let Err(e) = started {
        eprintln!("warren-lazyfs: {e}");
        return ExitCode::FAILURE;
    }

    let mut config = fuser::Config::default();
    config.mount_options = vec![
        MountOption::FSName(format!("warren-lazyfs:{}", backing.display())),
        MountOption::Subtype("warren-lazyfs".into()),
    ];
    let mut session = match Session::new(fs, &mountpoint, &config) {
        Ok(session) => session,
        Err(e) => {
            eprintln!("warren-lazyfs: mount on {}: {e}", mountpoint.display());
            return ExitCode::FAILURE;
        }
    };
    let mut unmounter = session.unmount_callable();
    let ended = tx.clone();
    std::thread::spawn(move || {
        let _ = ended.send(Event::Ended(session.run()));
    });
    println!(
        "warren-lazyfs: mounted {} on {}",
        backing.display(),
        mountpoint.display()
    );
    let _ = std::io::stdout().flush();

    let code = match rx.recv() {
        Ok(Event::PowerLoss(dropped)) => {
            detach(&mountpoint);
            eprintln!(
                "warren-lazyfs: power loss: dropped {} unsynced bytes of {} files",
                dropped.bytes, dropped.files
            );
            0
        }
        Ok(Event::Shutdown) => {
            if let Err(e) = handle.sync_all() {
                eprintln!("warren-lazyfs: writeback failed: {e:?}");
            }
            if unmounter.unmount().is_err() {
                detach(&mountpoint); // busy: detach, the session ends with the last user
            }
            match rx.recv_timeout(Duration::from_secs(5)) {
                Ok(Event::Ended(Err(e))) => {
                    eprintln!("warren-lazyfs: session: {e}");
                    1
                }
                _ => 0,
            }
        }
        Ok(Event::Ended(Ok(()))) => 0,
        Ok(Event::Ended(Err(e))) => {
            eprintln!("warren-lazyfs: session: {e}");
            1
        }
        Err(_) => 1,
    };
    if let Some(path) = &args.control {
        let _ = std::fs::remove_file(path);
    }
    // Exit without joining the session thread: closing /dev/fuse ends the connection, so
    // processes still holding files on the detached mount get errors, never a hang.
    std::process::exit(code)
}
