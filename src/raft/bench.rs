//! Throughput and idle-cost measurements of the replication layer, run as tests that print
//! their numbers (`cargo test --release --lib raft::bench -- --nocapture`). They assert
//! only that work happened, never an absolute speed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::tests::{request, TestApplier};
use super::*;
use crate::storage::Store;

/// Measured time per run: 2 s in release, shorter in debug builds.
fn run_time() -> Duration {
    if cfg!(debug_assertions) {
        Duration::from_millis(500)
    } else {
        Duration::from_secs(2)
    }
}

/// An applier that only counts (the machine's cost is not what is measured here).
#[derive(Default)]
struct CountingApplier(std::sync::atomic::AtomicU64);

impl GroupApplier for CountingApplier {
    fn apply(&self, _index: u64, _request: &Request) -> Response {
        let n = self.0.fetch_add(1, Ordering::Relaxed) + 1;
        Response(n.to_be_bytes().to_vec())
    }
    fn snapshot(&self) -> Vec<u8> {
        self.0.load(Ordering::Relaxed).to_be_bytes().to_vec()
    }
    fn restore(&self, snapshot: &[u8]) -> std::io::Result<()> {
        let bytes: [u8; 8] = snapshot
            .try_into()
            .map_err(|_| std::io::Error::other("bad snapshot"))?;
        self.0.store(u64::from_be_bytes(bytes), Ordering::Relaxed);
        Ok(())
    }
}

/// `groups` groups with `writers` concurrent writers each, 100-byte requests, for
/// [`run_time`]; prints writes/s, latency percentiles and writes per flush.
async fn throughput(groups: u64, writers: usize) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let reg = RaftRegistry::new(store.clone(), 1);
    let mut handles = Vec::new();
    for g in 1..=groups {
        let applier = Arc::new(CountingApplier::default());
        handles.push(reg.start_group(g, applier).await.unwrap());
    }
    let flushes_before = store.flush_stats();
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for handle in &handles {
        for _ in 0..writers {
            let (handle, stop) = (handle.clone(), stop.clone());
            tasks.push(tokio::spawn(async move {
                let mut hist = Histogram::<u64>::new(3).unwrap();
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    handle.write(request(vec![0xab; 100])).await.unwrap();
                    hist.record(t.elapsed().as_micros() as u64).unwrap();
                }
                hist
            }));
        }
    }
    tokio::time::sleep(run_time()).await;
    stop.store(true, Ordering::Relaxed);
    let mut hist = Histogram::<u64>::new(3).unwrap();
    for t in tasks {
        hist.add(t.await.unwrap()).unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let flushes = store.flush_stats().flushes - flushes_before.flushes;
    let flush_ms = (store.flush_stats().flush_micros - flushes_before.flush_micros) / 1000;
    let flush_kb = (store.flush_stats().bytes - flushes_before.bytes) / 1024;
    let rate = hist.len() as f64 / elapsed;
    println!(
        "{groups} group(s) x {writers} writers: {:.0} durable writes/s ({} writes in {elapsed:.2} s), \
         latency p50 {} us p99 {} us max {} us, {flushes} flushes ({:.1} writes/flush, {flush_ms} ms flushing, {flush_kb} KiB)",
        rate,
        hist.len(),
        hist.value_at_quantile(0.5),
        hist.value_at_quantile(0.99),
        hist.max(),
        hist.len() as f64 / flushes.max(1) as f64,
    );
    reg.shutdown().await;
    rate
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throughput_one_group_64_writers() {
    assert!(throughput(1, 64).await > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throughput_100_groups_8_writers() {
    assert!(throughput(100, 8).await > 0.0);
}

/// (user + system CPU time, resident set size) of this process, from /proc.
fn cpu_and_rss() -> Option<(Duration, u64)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the `(comm)`: state is field 3, utime 14 and stime 15.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let rss_pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // Linux reports 100 ticks per second and 4 KiB pages on the platforms we run on.
    Some((Duration::from_millis(ticks * 10), rss_pages * 4096))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_groups_cost_no_cpu() {
    const GROUPS: u64 = 1000;
    let dir = tempfile::tempdir().unwrap();
    let reg = RaftRegistry::new(Store::open(dir.path()).unwrap(), 1);
    let (_, rss_before) = cpu_and_rss().unwrap_or_default();
    let started = Instant::now();
    for g in 1..=GROUPS {
        reg.start_group(g, Arc::new(TestApplier::default()))
            .await
            .unwrap();
    }
    let start_time = started.elapsed();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (cpu_before, rss_after) = cpu_and_rss().unwrap_or_default();
    let idle = Duration::from_secs(2);
    tokio::time::sleep(idle).await;
    let (cpu_after, _) = cpu_and_rss().unwrap_or_default();
    let cpu = cpu_after.saturating_sub(cpu_before);
    println!(
        "{GROUPS} idle groups: started in {start_time:?} ({:?}/group), CPU over {idle:?} idle: {cpu:?}, \
         RSS +{} KiB ({} KiB/group)",
        start_time / GROUPS as u32,
        rss_after.saturating_sub(rss_before) / 1024,
        rss_after.saturating_sub(rss_before) / 1024 / GROUPS,
    );
    // Ticks are off: idle groups must not burn CPU (allow scheduler noise).
    assert!(cpu < Duration::from_millis(200), "idle CPU {cpu:?}");
    reg.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throughput_custom() {
    let groups = std::env::var("BENCH_GROUPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let writers = std::env::var("BENCH_WRITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    assert!(throughput(groups, writers).await > 0.0);
}
