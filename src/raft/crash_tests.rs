//! Durability tests: every write that was answered `Ok` survives a stop during writes and a
//! SIGKILL of the process (the test re-runs its own binary as the victim).

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use super::tests::{request, TestApplier};
use super::*;
use crate::storage::Store;

const CRASH_DIR_ENV: &str = "WARRENMQ_RAFT_CRASH_DIR";
const WRITERS: u64 = 8;

fn registry(dir: &Path) -> RaftRegistry {
    let settings = RaftSettings {
        snapshot_every: 500,
        keep_after_snapshot: 10,
        ..RaftSettings::default()
    };
    RaftRegistry::with_settings(
        Store::open(dir).unwrap(),
        1,
        settings,
        Arc::new(NoTransport),
    )
}

/// Writer `w`'s `n`th payload.
fn payload(w: u64, n: u64) -> Vec<u8> {
    (w * 1_000_000 + n).to_be_bytes().to_vec()
}

fn id_of(payload: &[u8]) -> u64 {
    u64::from_be_bytes(payload.try_into().unwrap())
}

/// Recover group 1 from `dir` and return the ids it applied, checking there are no
/// duplicates and that each writer's ids are in order.
async fn recovered_ids(dir: &Path) -> BTreeSet<u64> {
    let reg = registry(dir);
    let applier = Arc::new(TestApplier::default());
    reg.start_group(1, applier.clone()).await.unwrap();
    let ids: Vec<u64> = applier.payloads().iter().map(|p| id_of(p)).collect();
    reg.shutdown().await;
    let set: BTreeSet<u64> = ids.iter().copied().collect();
    assert_eq!(set.len(), ids.len(), "no entry applied twice");
    for w in 0..WRITERS {
        let mine: Vec<u64> = ids
            .iter()
            .copied()
            .filter(|id| id / 1_000_000 == w)
            .collect();
        assert!(mine.windows(2).all(|p| p[0] < p[1]), "writer {w} in order");
    }
    set
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_during_writes_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let reg = registry(dir.path());
    let group = reg
        .start_group(1, Arc::new(TestApplier::default()))
        .await
        .unwrap();
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let group = group.clone();
            tokio::spawn(async move {
                let mut acked = Vec::new();
                for n in 1.. {
                    match group.write(request(payload(w, n))).await {
                        Ok(_) => acked.push(w * 1_000_000 + n),
                        Err(e) => return (acked, e),
                    }
                }
                unreachable!()
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    reg.stop_group(1).await;
    assert!(!group.is_leader());
    let mut acked = BTreeSet::new();
    for w in writers {
        let (ids, err) = w.await.unwrap();
        assert!(
            matches!(err, WriteError::Unknown(_) | WriteError::Fatal(_)),
            "a write cut by a stop is unknown or refused, never NotLeader: {err:?}"
        );
        acked.extend(ids);
    }
    assert!(!acked.is_empty());
    drop((reg, group)); // close the database
    let recovered = recovered_ids(dir.path()).await;
    let lost: Vec<_> = acked.difference(&recovered).collect();
    assert!(lost.is_empty(), "acknowledged writes lost: {lost:?}");
}

/// The victim of `acknowledged_writes_survive_sigkill` (the same test, re-executed with
/// the data dir in the environment): writes until killed, printing every acknowledged id.
async fn crash_victim(dir: &str) {
    let reg = registry(Path::new(dir));
    let group = reg
        .start_group(1, Arc::new(TestApplier::default()))
        .await
        .unwrap();
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let group = group.clone();
            tokio::spawn(async move {
                for n in 1.. {
                    group.write(request(payload(w, n))).await.unwrap();
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "ACK {}", w * 1_000_000 + n).unwrap();
                    out.flush().unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    if let Ok(dir) = std::env::var(CRASH_DIR_ENV) {
        // Child side: be the victim until the parent kills this process.
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
            .block_on(crash_victim(&dir));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "raft::crash_tests::acknowledged_writes_survive_sigkill",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CRASH_DIR_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut acked = BTreeSet::new();
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        if let Some(id) = line.strip_prefix("ACK ") {
            acked.insert(id.parse::<u64>().unwrap());
            // Past a few snapshots and purges (every 500 entries), then kill mid-stream.
            if acked.len() >= 3000 {
                break;
            }
        }
    }
    child.kill().unwrap(); // SIGKILL: no destructor, no final flush
    child.wait().unwrap();
    assert!(acked.len() >= 3000, "the victim wrote: {}", acked.len());
    let recovered = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(recovered_ids(dir.path()));
    let lost: Vec<_> = acked.difference(&recovered).collect();
    assert!(lost.is_empty(), "acknowledged writes lost: {lost:?}");
}
