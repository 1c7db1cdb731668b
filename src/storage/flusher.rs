//! Group commit: one thread per database that makes everyone's writes durable with one
//! blocking flush per batch of waiters.
//!
//! Ordering contract: a waiter registered after a write is completed only after a flush
//! that *started* after the waiter was registered, hence after the write. Waiters of one
//! batch complete in registration order. (sled's `flush_async` deadlocks under
//! concurrency, sled #1308, so this is the only path to durability.)

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

/// Called once with the outcome of the flush that covered the waiter's writes.
pub type Waiter = Box<dyn FnOnce(io::Result<()>) + Send>;

/// The blocking flush of the whole database.
/// Returns the number of bytes it wrote.
pub type FlushFn = Box<dyn FnMut() -> io::Result<u64> + Send>;

/// Counters of the flusher, for benchmarks and metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlushStats {
    /// Number of completed flushes.
    pub flushes: u64,
    /// Number of waiters completed by those flushes.
    pub waiters: u64,
    /// Total time spent inside the database's flush, in microseconds.
    pub flush_micros: u64,
    /// Total bytes the database reported flushed.
    pub bytes: u64,
}

#[derive(Default)]
struct State {
    waiting: Vec<Waiter>,
    shutdown: bool,
    /// The thread waits on the condvar: only then does a new waiter need to wake it.
    idle: bool,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    flushes: AtomicU64,
    waiters: AtomicU64,
    flush_micros: AtomicU64,
    bytes: AtomicU64,
}

/// Owns the flusher thread; dropping it flushes what is pending and joins the thread.
pub struct Flusher {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Flusher {
    /// Start the flusher thread around `flush`.
    pub fn start(name: &str, flush: FlushFn) -> io::Result<Flusher> {
        let shared = Arc::new(Shared::default());
        let thread = std::thread::Builder::new().name(name.to_string()).spawn({
            let shared = shared.clone();
            move || run(&shared, flush)
        })?;
        Ok(Flusher {
            shared,
            thread: Some(thread),
        })
    }

    /// Register `waiter` to be completed after the next flush that starts from now on.
    /// After shutdown the waiter is completed at once with an error.
    pub fn after_flush(&self, waiter: Waiter) {
        let mut state = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.shutdown {
            drop(state);
            waiter(Err(io::Error::other("storage is closed")));
            return;
        }
        state.waiting.push(waiter);
        let idle = state.idle;
        drop(state);
        if idle {
            self.shared.wake.notify_one();
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> FlushStats {
        FlushStats {
            flushes: self.shared.flushes.load(Ordering::Relaxed),
            waiters: self.shared.waiters.load(Ordering::Relaxed),
            flush_micros: self.shared.flush_micros.load(Ordering::Relaxed),
            bytes: self.shared.bytes.load(Ordering::Relaxed),
        }
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        {
            let mut state = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
            state.shutdown = true;
        }
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The thread: wait for waiters, take them all, flush once, complete them in order.
fn run(shared: &Shared, mut flush: FlushFn) {
    loop {
        let (batch, shutdown) = {
            let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
            while state.waiting.is_empty() && !state.shutdown {
                state.idle = true;
                state = shared.wake.wait(state).unwrap_or_else(|e| e.into_inner());
                state.idle = false;
            }
            (std::mem::take(&mut state.waiting), state.shutdown)
        };
        if !batch.is_empty() {
            let started = std::time::Instant::now();
            let result = flush().map(|bytes| {
                shared.bytes.fetch_add(bytes, Ordering::Relaxed);
            });
            let micros = started.elapsed().as_micros() as u64;
            shared.flush_micros.fetch_add(micros, Ordering::Relaxed);
            shared.flushes.fetch_add(1, Ordering::Relaxed);
            shared
                .waiters
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
            for waiter in batch {
                let outcome = match &result {
                    Ok(()) => Ok(()),
                    Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
                };
                waiter(outcome);
            }
        }
        if shutdown {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::sync::mpsc;
    use std::time::Duration;

    /// A fake database: a write counter, and a flush that records how many writes existed
    /// when it started and sleeps a little so that batches form.
    struct Fake {
        writes: AtomicU64,
        flushed_upto: AtomicU64,
    }

    fn fake_flusher(fake: Arc<Fake>) -> Flusher {
        Flusher::start(
            "test-flusher",
            Box::new(move || {
                let upto = fake.writes.load(Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(2));
                fake.flushed_upto.fetch_max(upto, Ordering::SeqCst);
                Ok(0)
            }),
        )
        .unwrap()
    }

    #[test]
    fn waiter_completes_only_after_a_flush_that_started_after_its_write() {
        let fake = Arc::new(Fake {
            writes: AtomicU64::new(0),
            flushed_upto: AtomicU64::new(0),
        });
        let flusher = Arc::new(fake_flusher(fake.clone()));
        let violations = Arc::new(AtomicU64::new(0));
        let (done_tx, done_rx) = mpsc::channel();
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (fake, flusher) = (fake.clone(), flusher.clone());
                let (violations, done_tx) = (violations.clone(), done_tx.clone());
                std::thread::spawn(move || {
                    for _ in 0..200 {
                        let my_write = fake.writes.fetch_add(1, Ordering::SeqCst) + 1;
                        let (fake, violations, done_tx) =
                            (fake.clone(), violations.clone(), done_tx.clone());
                        flusher.after_flush(Box::new(move |r| {
                            r.unwrap();
                            if fake.flushed_upto.load(Ordering::SeqCst) < my_write {
                                violations.fetch_add(1, Ordering::SeqCst);
                            }
                            done_tx.send(()).unwrap();
                        }));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        for _ in 0..1600 {
            done_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        }
        assert_eq!(violations.load(Ordering::SeqCst), 0);
        let stats = flusher.stats();
        assert_eq!(stats.waiters, 1600);
        assert!(stats.flushes < 1600, "waiters were batched: {stats:?}");
    }

    #[test]
    fn drop_completes_pending_waiters_and_later_ones_fail() {
        let fake = Arc::new(Fake {
            writes: AtomicU64::new(0),
            flushed_upto: AtomicU64::new(0),
        });
        let flusher = fake_flusher(fake);
        let completed = Arc::new(AtomicBool::new(false));
        let c = completed.clone();
        flusher.after_flush(Box::new(move |r| {
            r.unwrap();
            c.store(true, Ordering::SeqCst);
        }));
        let shared = flusher.shared.clone();
        drop(flusher);
        assert!(completed.load(Ordering::SeqCst));
        let revived = Flusher {
            shared,
            thread: None,
        };
        let (tx, rx) = mpsc::channel();
        revived.after_flush(Box::new(move |r| tx.send(r.is_err()).unwrap()));
        assert!(rx.recv().unwrap());
    }

    #[test]
    fn flush_errors_reach_every_waiter() {
        let flusher = Flusher::start(
            "test-flusher",
            Box::new(|| Err(io::Error::other("disk on fire"))),
        )
        .unwrap();
        let (tx, rx) = mpsc::channel();
        for _ in 0..3 {
            let tx = tx.clone();
            flusher.after_flush(Box::new(move |r| tx.send(r.is_err()).unwrap()));
        }
        for _ in 0..3 {
            assert!(rx.recv_timeout(Duration::from_secs(5)).unwrap());
        }
    }
}
