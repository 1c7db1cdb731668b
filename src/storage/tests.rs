//! Tests of the storage layer through its public API: many groups writing concurrently
//! through the group commit, and recovery after reopening.

use std::time::Duration;

use super::{MetaKey, Store};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_from_many_groups_share_flushes_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    const GROUPS: u64 = 50;
    const WRITES: u64 = 40;
    {
        let store = Store::open(dir.path()).unwrap();
        let mut tasks = Vec::new();
        for group in 1..=GROUPS {
            let g = store.register_group(group).unwrap();
            tasks.push(tokio::spawn(async move {
                for index in 1..=WRITES {
                    g.append([(index, format!("{group}/{index}").into_bytes())])
                        .unwrap();
                    g.flush().await.unwrap();
                }
                g.put_meta(MetaKey::Committed, &WRITES.to_be_bytes())
                    .unwrap();
                g.flush().await.unwrap();
            }));
        }
        for t in tasks {
            tokio::time::timeout(Duration::from_secs(60), t)
                .await
                .unwrap()
                .unwrap();
        }
        let stats = store.flush_stats();
        assert_eq!(stats.waiters, GROUPS * (WRITES + 1));
        assert!(
            stats.flushes < stats.waiters,
            "flushes were shared between groups: {stats:?}"
        );
    }
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(
        store.known_groups().unwrap(),
        (1..=GROUPS).collect::<Vec<_>>()
    );
    for group in 1..=GROUPS {
        let g = store.group(group);
        let entries = g
            .read_entries(.., |i, b| Ok((i, String::from_utf8(b.to_vec()).unwrap())))
            .unwrap();
        let expected: Vec<_> = (1..=WRITES).map(|i| (i, format!("{group}/{i}"))).collect();
        assert_eq!(entries, expected);
        assert_eq!(
            g.get_meta(MetaKey::Committed).unwrap(),
            Some(WRITES.to_be_bytes().to_vec())
        );
    }
}

#[tokio::test]
async fn after_flush_waiter_runs_once_data_is_flushed() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let g = store.group(1);
    g.append([(1, vec![7; 100])]).unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let before = store.flush_stats().flushes;
    let stats_store = store.clone();
    g.after_flush(Box::new(move |r| {
        // Runs on the flusher thread after its flush completed.
        let _ = tx.send((r.is_ok(), stats_store.flush_stats().flushes));
    }));
    let (ok, flushes_seen) = rx.await.unwrap();
    assert!(ok);
    // The flusher counts a flush when it completes, before it runs that flush's waiters.
    assert!(flushes_seen > before);
}
