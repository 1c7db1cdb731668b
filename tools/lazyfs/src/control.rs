//! How the outside world cuts the power: a Unix socket taking one command a line, and
//! signals. Each turns into an [`Event`] for the main thread, which unmounts and exits.

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::mpsc::Sender;

use crate::fs::Handle;
use crate::state::Dirty;

/// What the main thread acts on.
#[derive(Debug)]
pub enum Event {
    /// The power was cut (the state already dropped everything unsynced): unmount, exit.
    PowerLoss(Dirty),
    /// A clean stop (SIGTERM, SIGINT, SIGHUP): write everything back, unmount, exit.
    Shutdown,
    /// The FUSE session ended by itself (someone unmounted the file system).
    Ended(io::Result<()>),
}

/// The answer to one control command, and the event it raises.
pub fn command(line: &str, handle: &Handle) -> (String, Option<Event>) {
    let counts = |d: Dirty| format!("files={} bytes={}", d.files, d.bytes);
    match line.trim() {
        "crash" | "power-loss" => {
            let dropped = handle.crash();
            (
                format!("crashed {}", counts(dropped)),
                Some(Event::PowerLoss(dropped)),
            )
        }
        "sync" => match handle.sync_all() {
            Ok(synced) => (format!("synced {}", counts(synced)), None),
            Err(e) => (format!("error sync failed: {e:?}"), None),
        },
        "dirty" => (format!("dirty {}", counts(handle.dirty())), None),
        other => (
            format!("error unknown command {other:?} (crash, sync, dirty)"),
            None,
        ),
    }
}

/// Serve the control socket at `path` on a thread of its own.
pub fn spawn_socket(path: &Path, handle: Handle, events: Sender<Event>) -> io::Result<()> {
    if path.exists() {
        std::fs::remove_file(path)?; // a stale socket of an earlier run
    }
    let listener = UnixListener::bind(path)?;
    std::thread::Builder::new()
        .name("lazyfs-control".into())
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                serve(stream, &handle, &events);
            }
        })?;
    Ok(())
}

fn serve(stream: UnixStream, handle: &Handle, events: &Sender<Event>) {
    let Ok(mut out) = stream.try_clone() else {
        return;
    };
    for line in BufReader::new(stream).lines() {
        let Ok(line) = line else { return };
        let (answer, event) = command(&line, handle);
        // Answer first: after a power loss the main thread exits at once.
        let _ = writeln!(out, "{answer}").and_then(|()| out.flush());
        if let Some(event) = event {
            let _ = events.send(event);
        }
    }
}

/// The signals this program handles, blocked in the calling thread and so in every
/// thread it starts later; call first thing in `main`.
pub fn block_signals() -> libc::sigset_t {
    // SAFETY: sigset manipulation on a local set, then pthread_sigmask on this thread.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in [libc::SIGUSR1, libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
            libc::sigaddset(&mut set, sig);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

/// Wait for the blocked signals on a thread of its own: SIGUSR1 cuts the power, the
/// others stop cleanly.
pub fn spawn_signals(set: libc::sigset_t, handle: Handle, events: Sender<Event>) -> io::Result<()> {
    std::thread::Builder::new()
        .name("lazyfs-signals".into())
        .spawn(move || loop {
            let mut sig: libc::c_int = 0;
            // SAFETY: sigwait(3) on a set of signals blocked in every thread.
            if unsafe { libc::sigwait(&set, &mut sig) } != 0 {
                continue;
            }
            let event = if sig == libc::SIGUSR1 {
                Event::PowerLoss(handle.crash())
            } else {
                Event::Shutdown
            };
            if events.send(event).is_err() {
                return;
            }
        })?;
    Ok(())
}
