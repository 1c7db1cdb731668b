//! Three nodes form a group over gRPC; writes through the leader are applied on every
//! member; when the leader's node dies the detector elects another and writes go on.

use std::time::Duration;

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_through_the_leader_are_applied_on_all_three_nodes() {
    let nodes = start_cluster(3).await;
    form_group(&nodes, 1, 1).await;
    let payloads: Vec<Vec<u8>> = (0..20).map(|i| format!("m{i}").into_bytes()).collect();
    for p in &payloads {
        write(&nodes, 1, p.clone()).await;
    }
    // The last write's commit reaches followers without any heartbeat timer.
    wait_applied_everywhere(&nodes, 1, &payloads).await;
    let counts = nodes[0].counts();
    assert!(counts.group_rpcs >= counts.raft_calls, "{counts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_initialized_before_its_peers_start_elects_once_they_do() {
    let nodes = start_cluster(3).await;
    let members = voters([1, 2, 3]);
    // The designated node campaigns before the others run the group: the vote is refused,
    // and the detector's sweep campaigns again later.
    let first = nodes[1].start_group(5, &members, 2).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    nodes[0].start_group(5, &members, 2).await;
    nodes[2].start_group(5, &members, 2).await;
    first.wait_for_leader(WAIT).await.unwrap();
    leader_of(&nodes, 5, WAIT).await;
    write(&nodes, 5, b"late".to_vec()).await;
    wait_applied_everywhere(&nodes, 5, &[b"late".to_vec()]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_leader_node_dies_the_others_elect_a_leader_and_writes_continue() {
    let mut nodes = start_cluster(3).await;
    let old = form_group(&nodes, 1, 2).await;
    let mut payloads: Vec<Vec<u8>> = (0..5).map(|i| format!("before{i}").into_bytes()).collect();
    for p in &payloads {
        write(&nodes, 1, p.clone()).await;
    }
    wait_applied_everywhere(&nodes, 1, &payloads).await;

    let victim = nodes.iter_mut().find(|n| n.id == old).unwrap();
    victim.kill().await;
    let new = leader_of(&nodes, 1, WAIT).await;
    assert_ne!(new, old);

    for i in 0..5 {
        let p = format!("after{i}").into_bytes();
        write(&nodes, 1, p.clone()).await;
        payloads.push(p);
    }
    wait_applied_everywhere(&nodes, 1, &payloads).await;
    let status = nodes
        .iter()
        .find(|n| n.id == new)
        .unwrap()
        .registry
        .group(1)
        .unwrap()
        .status();
    assert_eq!(status.role, crate::raft::Role::Leader, "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_learner_added_later_catches_up_and_becomes_a_voter() {
    let nodes = start_cluster(3).await;
    let members = voters([1, 2]);
    nodes[1].start_group(9, &members, 1).await;
    let handle = nodes[0].start_group(9, &members, 1).await;
    handle.wait_for_leader(WAIT).await.unwrap();
    let leader = leader_of(&nodes[..2], 9, WAIT).await;
    write(&nodes[..2], 9, b"one".to_vec()).await;

    nodes[2].start_group(9, &members, 1).await;
    let leader_handle = nodes[leader as usize - 1].registry.group(9).unwrap();
    leader_handle.add_learner(3).await.unwrap();
    leader_handle
        .change_membership(voters([1, 2, 3]), false)
        .await
        .unwrap();
    write(&nodes, 9, b"two".to_vec()).await;
    wait_applied_everywhere(&nodes, 9, &[b"one".to_vec(), b"two".to_vec()]).await;
    assert_eq!(
        nodes[2].registry.group(9).unwrap().status().voters,
        voters([1, 2, 3])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leadership_moves_to_the_node_it_is_transferred_to() {
    let nodes = start_cluster(3).await;
    let old = form_group(&nodes, 1, 1).await;
    write(&nodes, 1, b"one".to_vec()).await;
    let to = nodes.iter().map(|n| n.id).find(|&id| id != old).unwrap();
    let handle = nodes[old as usize - 1].registry.group(1).unwrap();
    handle.transfer_leader(to).await.unwrap();
    wait_until(&format!("node {to} to lead"), WAIT, || {
        nodes
            .iter()
            .all(|n| n.registry.group(1).unwrap().current_leader() == Some(to))
    })
    .await;
    write(&nodes, 1, b"two".to_vec()).await;
    wait_applied_everywhere(&nodes, 1, &[b"one".to_vec(), b"two".to_vec()]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_learner_behind_the_purged_log_gets_a_snapshot_over_grpc() {
    let settings = RaftSettings {
        snapshot_every: 10,
        keep_after_snapshot: 2,
        ..RaftSettings::default()
    };
    let nodes = start_cluster_with(3, settings).await;
    let members = voters([1, 2]);
    nodes[1].start_group(4, &members, 1).await;
    nodes[0].start_group(4, &members, 1).await;
    leader_of(&nodes[..2], 4, WAIT).await;
    let written: Vec<Vec<u8>> = (0..35).map(|i| format!("s{i}").into_bytes()).collect();
    for p in &written {
        write(&nodes[..2], 4, p.clone()).await;
    }
    let leader = leader_of(&nodes[..2], 4, WAIT).await;
    let leader_handle = nodes[leader as usize - 1].registry.group(4).unwrap();
    wait_until("the leader to snapshot and purge", WAIT, || {
        leader_handle.status().last_applied >= Some(30)
    })
    .await;
    nodes[2].start_group(4, &members, 1).await;
    leader_handle.add_learner(3).await.unwrap();
    let applier = nodes[2].applier(4);
    wait_until("the learner to hold every write", WAIT, || {
        applier.payloads() == written
    })
    .await;
    assert!(
        applier.restores() >= 1,
        "the learner was sent the log, not a snapshot"
    );
}
