//! Mirrored classic queues: every second, each node brings the durable classic queues
//! whose Raft group it leads to the members their `ha-mode` policy wants
//! (`metadata::mirroring`), one change at a time, with the same steps as
//! `queues add_member / delete_member` (a new member catches up as a learner before it
//! votes; a leader that must go hands its leadership over first, and the new leader
//! removes it). A queue without a mirroring policy shrinks back to its leader. A
//! change that fails is logged and tried again on the next round.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tracing::{debug, info, warn};

use super::control::{AppView, Control};
use super::queue_members::hand_leadership;
use crate::metadata::mirroring::{next_change, wanted, HaMode, Node};
use crate::metadata::{PolicySet, QueueRecord, QueueType};

/// How often a node looks at the classic queues it leads.
const ROUND: Duration = Duration::from_secs(1);

/// Run the rounds for as long as the node lives (the app may stop and start meanwhile).
pub(super) async fn run(control: Arc<Control>) {
    let mut tick = tokio::time::interval(ROUND);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Some(view) = control.view() {
            round(&control, &view).await;
        }
    }
}

/// One pass over the durable classic queues this node leads.
async fn round(control: &Control, view: &AppView) {
    let plans: Vec<(String, QueueRecord, Vec<u64>)> = {
        let meta = view.broker.read_meta();
        let nodes: Vec<Node> = meta
            .nodes()
            .iter()
            .map(|(&id, n)| Node {
                id,
                name: &n.name,
                live: view.is_live(id),
            })
            .collect();
        // Per round, each vhost's patterns are compiled once and each policy's
        // definition parsed once, however many queues they cover.
        let mut sets: HashMap<&str, PolicySet> = HashMap::new();
        let mut modes: HashMap<(&str, &str), Option<HaMode>> = HashMap::new();
        meta.all_queues()
            .filter(|(_, q)| {
                q.queue_type == QueueType::Classic && q.group_id != 0 && q.exclusive_owner.is_none()
            })
            .filter(|(_, q)| view.broker.queue_group_leader(q.group_id) == Some(view.node_id))
            .filter_map(|(vhost, q)| {
                let set = sets.entry(vhost).or_insert_with(|| meta.policy_set(vhost));
                let mode = set
                    .effective(&q.name, QueueType::Classic)
                    .and_then(|(name, p)| modes.entry((vhost, name)).or_insert_with(|| p.ha_mode()).clone());
                let want = wanted(mode.as_ref(), &q.members, view.node_id, &nodes);
                next_change(&q.members, &want, view.node_id)?;
                debug!(vhost, queue = q.name, ?mode, members = ?q.members, ?want, "mirroring: planned");
                Some((vhost.to_owned(), q.clone(), want))
            })
            .collect()
    };
    for (vhost, record, want) in plans {
        if let Err(e) = step(control, view, &vhost, &record, &want).await {
            warn!(
                vhost,
                queue = record.name,
                error = e,
                "mirroring change failed; retrying"
            );
        }
    }
}

/// Make the next change of one queue towards `want`.
async fn step(
    control: &Control,
    view: &AppView,
    vhost: &str,
    record: &QueueRecord,
    want: &[u64],
) -> Result<(), String> {
    let Some(change) = next_change(&record.members, want, view.node_id) else {
        return Ok(());
    };
    let group = view
        .broker
        .queue_group(record.group_id)
        .ok_or("the queue's group is not running here")?;
    if change.add {
        info!(
            vhost,
            queue = record.name,
            node = change.node,
            "mirroring: adding a member"
        );
        control
            .add_member_here(view, vhost, record, &group, change.node)
            .await
    } else if change.node == view.node_id {
        // This leader goes: a wanted member leads next, and removes this node.
        let to = *want
            .iter()
            .find(|&&m| m != view.node_id && record.members.contains(&m))
            .ok_or("no other member to hand the leadership to")?;
        debug!(
            vhost,
            queue = record.name,
            to,
            "mirroring: handing the leadership over"
        );
        hand_leadership(&group, to).await.map(|_| ())
    } else {
        info!(
            vhost,
            queue = record.name,
            node = change.node,
            "mirroring: removing a member"
        );
        control
            .delete_member_here(view, vhost, record, &group, change.node)
            .await
    }
}
