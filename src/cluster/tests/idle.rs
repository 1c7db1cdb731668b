//! Idle groups cost nothing: a thousand idle three-member groups send no Raft RPC at all
//! (only the per-node pings run).

use std::time::Duration;

use futures::StreamExt;

use super::*;

const GROUPS: u64 = 1000;
/// Groups are created in waves, as queues are declared, not all in one instant.
const WAVE: u64 = 100;

/// Whether every member of `group` knows the same leader and has applied its whole log.
fn settled(nodes: &[TestNode], group: GroupId) -> bool {
    let statuses: Vec<_> = nodes
        .iter()
        .map(|n| n.registry.group(group).expect("group runs").status())
        .collect();
    let first = &statuses[0];
    first.leader.is_some()
        && statuses.iter().all(|s| {
            s.leader == first.leader
                && s.last_log_index.is_some()
                && s.last_applied == s.last_log_index
                && s.last_log_index == first.last_log_index
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_idle_groups_send_no_raft_rpcs() {
    let nodes = start_cluster(3).await;
    let members = voters([1, 2, 3]);
    for wave in (1..=GROUPS).step_by(WAVE as usize) {
        let groups = wave..wave + WAVE;
        // Joiners first, then the designated node (spread over the nodes) initializes.
        for initializing in [false, true] {
            futures::stream::iter(groups.clone())
                .for_each_concurrent(32, |group| {
                    let designated = group % 3 + 1;
                    let (nodes, members) = (&nodes, &members);
                    async move {
                        for node in nodes {
                            if (node.id == designated) == initializing {
                                node.start_group(group, members, designated).await;
                            }
                        }
                    }
                })
                .await;
        }
        let what = format!("groups {groups:?} to elect and settle");
        wait_until_every(
            &what,
            Duration::from_secs(60),
            Duration::from_millis(200),
            || groups.clone().all(|g| settled(&nodes, g)),
        )
        .await;
    }
    let rpcs = |nodes: &[TestNode]| nodes.iter().map(|n| n.counts().group_rpcs).sum::<u64>();
    let pings = |nodes: &[TestNode]| nodes.iter().map(|n| n.counts().pings).sum::<u64>();
    // Let replies in flight land, then watch an idle period in which several ping rounds
    // and detector sweeps pass: not one group RPC.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (rpcs_before, pings_before) = (rpcs(&nodes), pings(&nodes));
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (rpcs_after, pings_after) = (rpcs(&nodes), pings(&nodes));
    assert_eq!(
        rpcs_after,
        rpcs_before,
        "{GROUPS} idle groups sent {} group RPCs in 3 s",
        rpcs_after - rpcs_before
    );
    assert!(pings_after > pings_before, "the detector kept pinging");
    assert!(
        (1..=GROUPS).all(|g| settled(&nodes, g)),
        "a group lost its leader"
    );
}
