//! Tests of the replication layer through its public API, with a test applier that keeps
//! every applied payload and records what it was asked to do.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::*;
use crate::storage::Store;

/// What the registry asked the applier to do, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Event {
    /// Restored from a snapshot holding this many payloads.
    Restored(usize),
    /// Applied the entry at this log index with this payload.
    Applied(u64, Vec<u8>),
}

/// The test machine: the list of applied payloads; its reply is the new length.
#[derive(Default)]
pub(crate) struct TestApplier {
    payloads: Mutex<Vec<Vec<u8>>>,
    events: Mutex<Vec<Event>>,
}

#[derive(Serialize, Deserialize)]
struct TestSnapshot {
    payloads: Vec<Vec<u8>>,
}

impl TestApplier {
    pub(crate) fn payloads(&self) -> Vec<Vec<u8>> {
        self.payloads.lock().unwrap().clone()
    }

    pub(crate) fn events(&self) -> Vec<Event> {
        self.events.lock().unwrap().clone()
    }

    /// How many snapshots were installed.
    pub(crate) fn restores(&self) -> usize {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| matches!(e, Event::Restored(_)))
            .count()
    }
}

impl GroupApplier for TestApplier {
    fn apply(&self, index: u64, request: &Request) -> Response {
        let RequestBody::Queue(payload) = &request.body else {
            panic!("test applier expects queue bodies");
        };
        let mut payloads = self.payloads.lock().unwrap();
        payloads.push(payload.to_vec());
        self.events
            .lock()
            .unwrap()
            .push(Event::Applied(index, payload.to_vec()));
        Response((payloads.len() as u64).to_be_bytes().to_vec().into())
    }

    fn snapshot(&self) -> Vec<u8> {
        let payloads = self.payloads.lock().unwrap().clone();
        postcard::to_stdvec(&TestSnapshot { payloads }).unwrap()
    }

    fn restore(&self, snapshot: &[u8]) -> std::io::Result<()> {
        let snap: TestSnapshot = postcard::from_bytes(snapshot)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        self.events
            .lock()
            .unwrap()
            .push(Event::Restored(snap.payloads.len()));
        *self.payloads.lock().unwrap() = snap.payloads;
        Ok(())
    }
}

pub(crate) fn request(payload: Vec<u8>) -> Request {
    Request {
        time_ms: 0,
        body: RequestBody::Queue(payload.into()),
    }
}

fn settings(snapshot_every: u64) -> RaftSettings {
    RaftSettings {
        snapshot_every,
        keep_after_snapshot: 5,
        ..RaftSettings::default()
    }
}

fn registry(dir: &Path, snapshot_every: u64) -> RaftRegistry {
    let store = Store::open(dir).unwrap();
    RaftRegistry::with_settings(store, 1, settings(snapshot_every), Arc::new(NoTransport))
}

fn payload(i: u64) -> Vec<u8> {
    format!("m{i}").into_bytes()
}

/// Log entries of `group` left in storage.
async fn stored_log_len(dir: &Path, group: GroupId) -> usize {
    let store = Store::open(dir).unwrap();
    let g = store.group(group);
    g.read_entries(.., |_, _| Ok(())).unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_are_applied_in_order_and_answered_with_the_appliers_response() {
    let dir = tempfile::tempdir().unwrap();
    let reg = registry(dir.path(), 20_000);
    let applier = Arc::new(TestApplier::default());
    let group = reg.start_group(7, applier.clone()).await.unwrap();
    assert!(group.is_leader());
    assert_eq!(*group.leader_watch().borrow(), Some(1));
    assert!(reg.group(7).is_some());
    for i in 1..=50 {
        let resp = group.write(request(payload(i))).await.unwrap();
        assert_eq!(resp.0, i.to_be_bytes().to_vec());
    }
    assert_eq!(
        applier.payloads(),
        (1..=50).map(payload).collect::<Vec<_>>()
    );
    // Log indexes strictly increase.
    let indexes: Vec<u64> = applier
        .events()
        .into_iter()
        .map(|e| match e {
            Event::Applied(i, _) => i,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert!(indexes.windows(2).all(|w| w[0] < w[1]));
    reg.shutdown().await;
    assert!(reg.group(7).is_none());
    let err = group.write(request(payload(51))).await.unwrap_err();
    assert!(matches!(err, WriteError::Fatal(_)), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_restores_the_snapshot_then_reapplies_the_log_after_it_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    {
        let reg = registry(dir.path(), 50);
        let group = reg
            .start_group(3, Arc::new(TestApplier::default()))
            .await
            .unwrap();
        for i in 1..=120 {
            group.write(request(payload(i))).await.unwrap();
        }
        reg.shutdown().await;
    }
    let reg = registry(dir.path(), 50);
    assert_eq!(reg.known_groups(), vec![3]);
    let applier = Arc::new(TestApplier::default());
    let started = Instant::now();
    let group = reg.start_group(3, applier.clone()).await.unwrap();
    println!("start_group after recovery: {:?}", started.elapsed());
    let events = applier.events();
    let Event::Restored(in_snapshot) = events[0] else {
        panic!("first event must be a restore: {events:?}");
    };
    assert!(in_snapshot >= 50, "a snapshot was taken: {in_snapshot}");
    let reapplied: Vec<Vec<u8>> = events[1..]
        .iter()
        .map(|e| match e {
            Event::Applied(_, p) => p.clone(),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    let expected: Vec<Vec<u8>> = (in_snapshot as u64 + 1..=120).map(payload).collect();
    assert_eq!(
        reapplied, expected,
        "each entry after the snapshot exactly once, in order"
    );
    assert_eq!(
        applier.payloads(),
        (1..=120).map(payload).collect::<Vec<_>>()
    );
    // And the group takes writes again.
    let resp = group.write(request(payload(121))).await.unwrap();
    assert_eq!(resp.0, 121u64.to_be_bytes().to_vec());
    reg.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_are_taken_every_n_entries_and_purge_the_log() {
    let dir = tempfile::tempdir().unwrap();
    {
        let reg = registry(dir.path(), 100);
        let group = reg
            .start_group(1, Arc::new(TestApplier::default()))
            .await
            .unwrap();
        for i in 1..=450 {
            group.write(request(payload(i))).await.unwrap();
        }
        reg.shutdown().await;
    }
    // Snapshots at ~100, 200, 300, 400 with 5 entries kept: at most ~55 entries remain.
    let left = stored_log_len(dir.path(), 1).await;
    assert!(
        left <= 60,
        "log purged behind the snapshot: {left} entries left"
    );
    let reg = registry(dir.path(), 100);
    let applier = Arc::new(TestApplier::default());
    reg.start_group(1, applier.clone()).await.unwrap();
    let first = applier.events()[0].clone();
    // Snapshot at log index 400; two entries of the log are not commands (membership, blank).
    assert!(matches!(first, Event::Restored(n) if n >= 398), "{first:?}");
    assert_eq!(applier.payloads().len(), 450);
    reg.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_now_covers_everything_applied() {
    let dir = tempfile::tempdir().unwrap();
    {
        let reg = registry(dir.path(), 20_000);
        let group = reg
            .start_group(2, Arc::new(TestApplier::default()))
            .await
            .unwrap();
        for i in 1..=30 {
            group.write(request(payload(i))).await.unwrap();
        }
        group.snapshot_now().await.unwrap();
        reg.shutdown().await;
    }
    let reg = registry(dir.path(), 20_000);
    let applier = Arc::new(TestApplier::default());
    reg.start_group(2, applier.clone()).await.unwrap();
    assert_eq!(applier.events(), vec![Event::Restored(30)]);
    reg.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remove_group_deletes_its_data() {
    let dir = tempfile::tempdir().unwrap();
    {
        let reg = registry(dir.path(), 20_000);
        for g in [4, 5] {
            let group = reg
                .start_group(g, Arc::new(TestApplier::default()))
                .await
                .unwrap();
            group.write(request(payload(g))).await.unwrap();
        }
        reg.remove_group(4).await.unwrap();
        assert!(reg.group(4).is_none());
        assert_eq!(reg.known_groups(), vec![5]);
        reg.shutdown().await;
    }
    assert_eq!(stored_log_len(dir.path(), 4).await, 0);
    let reg = registry(dir.path(), 20_000);
    let fresh = Arc::new(TestApplier::default());
    reg.start_group(4, fresh.clone()).await.unwrap();
    assert!(fresh.events().is_empty(), "a removed group starts empty");
    let kept = Arc::new(TestApplier::default());
    reg.start_group(5, kept.clone()).await.unwrap();
    assert_eq!(kept.payloads(), vec![payload(5)]);
    reg.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_groups_start_and_write_concurrently() {
    let dir = tempfile::tempdir().unwrap();
    let reg = registry(dir.path(), 20_000);
    const GROUPS: u64 = 100;
    const WRITES: u64 = 20;
    let mut tasks = Vec::new();
    for g in 1..=GROUPS {
        let reg = reg.clone();
        tasks.push(tokio::spawn(async move {
            let applier = Arc::new(TestApplier::default());
            let group = reg.start_group(g, applier.clone()).await.unwrap();
            for i in 1..=WRITES {
                group.write(request(payload(g * 1000 + i))).await.unwrap();
            }
            assert_eq!(
                applier.payloads(),
                (1..=WRITES)
                    .map(|i| payload(g * 1000 + i))
                    .collect::<Vec<_>>()
            );
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(reg.running_groups().len() as u64, GROUPS);
    assert_eq!(reg.known_groups(), (1..=GROUPS).collect::<Vec<_>>());
    reg.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_group_is_quick_fresh_and_recovered() {
    let dir = tempfile::tempdir().unwrap();
    let mut fresh = Vec::new();
    {
        let reg = registry(dir.path(), 20_000);
        for g in 1..=20 {
            let t = Instant::now();
            let group = reg
                .start_group(g, Arc::new(TestApplier::default()))
                .await
                .unwrap();
            group.write(request(payload(g))).await.unwrap();
            fresh.push(t.elapsed());
        }
        reg.shutdown().await;
    }
    let mut recovered = Vec::new();
    let reg = registry(dir.path(), 20_000);
    for g in 1..=20 {
        let t = Instant::now();
        let group = reg
            .start_group(g, Arc::new(TestApplier::default()))
            .await
            .unwrap();
        group.write(request(payload(g))).await.unwrap();
        recovered.push(t.elapsed());
    }
    reg.shutdown().await;
    let (first_fresh, first_recovered) = (fresh[0], recovered[0]);
    fresh.sort();
    recovered.sort();
    println!(
        "start_group + first write committed: first group of a new store {first_fresh:?}, \
         fresh median {:?} max {:?}; first group after reopen {first_recovered:?}, \
         recovered median {:?} max {:?}",
        fresh[10], fresh[19], recovered[10], recovered[19]
    );
    // Far below an election timeout: nothing waits for a timer.
    assert!(fresh[10] < Duration::from_millis(100), "{fresh:?}");
    assert!(recovered[10] < Duration::from_millis(100), "{recovered:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_applies_and_answers_its_writes_in_submission_order() {
    let dir = tempfile::tempdir().unwrap();
    let reg = registry(dir.path(), 20_000);
    let applier = Arc::new(TestApplier::default());
    let group = reg.start_group(8, applier.clone()).await.unwrap();
    let (tx, mut results) = tokio::sync::mpsc::unbounded_channel();
    let pipeline = group.pipeline(4, tx);
    for i in 1..=500 {
        pipeline.submit(request(payload(i)));
    }
    // The applier answers with its new length: result i must be i (in order, once each).
    for i in 1..=500u64 {
        let result = tokio::time::timeout(Duration::from_secs(20), results.recv())
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for result {i}"))
            .expect("the pipeline runs");
        assert_eq!(result.unwrap().0, i.to_be_bytes().to_vec(), "result {i}");
    }
    assert_eq!(
        applier.payloads(),
        (1..=500).map(payload).collect::<Vec<_>>()
    );
    drop(pipeline);
    reg.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_whose_group_stopped_answers_each_write_with_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let reg = registry(dir.path(), 20_000);
    let group = reg
        .start_group(9, Arc::new(TestApplier::default()))
        .await
        .unwrap();
    group.write(request(payload(1))).await.unwrap();
    reg.stop_group(9).await;
    let (tx, mut results) = tokio::sync::mpsc::unbounded_channel();
    let pipeline = group.pipeline(4, tx);
    for i in 2..=4 {
        pipeline.submit(request(payload(i)));
    }
    // The group refuses each write at once: each gets its error, none waits forever.
    for i in 2..=4 {
        let result = tokio::time::timeout(Duration::from_secs(5), results.recv())
            .await
            .unwrap_or_else(|_| panic!("no answer to write {i} of a stopped group"))
            .expect("the pipeline runs");
        assert!(result.is_err(), "write {i}: {result:?}");
    }
    drop(pipeline);
    reg.shutdown().await;
}
