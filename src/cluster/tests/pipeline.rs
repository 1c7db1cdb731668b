//! Pipelined writes (several in the log at once) over real gRPC: when leadership moves
//! away and back mid-stream, every write is applied, in the order submitted (a retried
//! write may be applied twice, never after a later one).

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_writes_keep_their_order_across_leader_changes() {
    let nodes = start_cluster(3).await;
    let leader = form_group(&nodes, 1, 1).await;
    let other = nodes.iter().find(|n| n.id != leader).unwrap().id;
    let home = nodes.iter().find(|n| n.id == leader).unwrap();
    let handle = home.registry.group(1).unwrap();
    let (tx, mut results) = tokio::sync::mpsc::unbounded_channel();
    let pipeline = handle.pipeline(4, tx);
    const N: usize = 600;
    let payloads: Vec<Vec<u8>> = (0..N).map(|i| format!("p{i:04}").into_bytes()).collect();
    let submitter = {
        let payloads = payloads.clone();
        tokio::spawn(async move {
            for p in payloads {
                pipeline.submit(request(p));
                tokio::time::sleep(Duration::from_micros(500)).await;
            }
            pipeline
        })
    };
    let mut answered = 0;
    let mut moved = false;
    while answered < N {
        let result = tokio::time::timeout(WAIT, results.recv())
            .await
            .unwrap_or_else(|_| panic!("timed out after {answered} of {N} results"))
            .expect("the pipeline runs");
        if let Err(e) = result {
            panic!("write {answered} failed: {e}");
        }
        answered += 1;
        if answered == 100 && !moved {
            // Away and back while writes are in flight: the pipeline on `leader` sees
            // refusals, retries, and resumes once it leads again.
            moved = true;
            handle.transfer_leader(other).await.unwrap();
            wait_until("leadership to move away", WAIT, || {
                handle.current_leader() == Some(other)
            })
            .await;
            tokio::time::sleep(Duration::from_millis(100)).await;
            let there = nodes.iter().find(|n| n.id == other).unwrap();
            there
                .registry
                .group(1)
                .unwrap()
                .transfer_leader(leader)
                .await
                .unwrap();
        }
    }
    drop(submitter.await.unwrap());
    let applied = home.applier(1).payloads();
    let mut firsts = Vec::new();
    for p in &applied {
        if !firsts.contains(p) {
            firsts.push(p.clone());
        }
    }
    assert_eq!(firsts, payloads, "first applications in submission order");
}
