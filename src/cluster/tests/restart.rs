//! Nodes that stop and start again over their stores: a follower catches up with what
//! it missed, and a whole cluster restarted at once finds a leader again.

use super::*;

fn payloads(prefix: &str, n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| format!("{prefix}{i}").into_bytes())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_follower_catches_up() {
    let mut nodes = start_cluster(3).await;
    let leader = form_group(&nodes, 1, 1).await;
    let mut written = payloads("a", 5);
    for p in &written {
        write(&nodes, 1, p.clone()).await;
    }
    let follower = nodes.iter().position(|n| n.id != leader).unwrap();
    nodes[follower].kill().await;
    for p in payloads("b", 5) {
        write(&nodes, 1, p.clone()).await;
        written.push(p);
    }
    let node = nodes.remove(follower).restart().await;
    nodes.insert(follower, node);
    let members = voters([1, 2, 3]);
    nodes[follower].start_group(1, &members, 1).await;
    wait_applied_everywhere(&nodes, 1, &written).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_restarted_at_once_elects_and_takes_writes() {
    let mut nodes = start_cluster(3).await;
    form_group(&nodes, 1, 2).await;
    let mut written = payloads("a", 3);
    for p in &written {
        write(&nodes, 1, p.clone()).await;
    }
    wait_applied_everywhere(&nodes, 1, &written).await;
    for node in &mut nodes {
        node.kill().await;
    }
    let mut restarted = Vec::new();
    for node in nodes {
        restarted.push(node.restart().await);
    }
    let members = voters([1, 2, 3]);
    for node in &restarted {
        // Recovered: the bootstrap is ignored (the group is initialized already).
        node.start_group(1, &members, 2).await;
    }
    leader_of(&restarted, 1, WAIT).await;
    let p = b"after restart".to_vec();
    write(&restarted, 1, p.clone()).await;
    written.push(p);
    wait_applied_everywhere(&restarted, 1, &written).await;
}
