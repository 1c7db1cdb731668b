//! `raft_groups`: the Raft groups running on this node (the metadata group and every
//! queue group it holds a member of), each with what it serves and its state here:
//! members, leader, term, log, commit and applied index, this node's role. The
//! management API serves it as `GET /api/warren/groups`.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use super::control::AppView;
use crate::cluster::CommandOutcome;
use crate::metadata::ClusterNode;
use crate::raft::{GroupStatus, Role, META_GROUP};

/// The command's name.
pub(super) const COMMAND: &str = "raft_groups";

fn role(role: Role) -> &'static str {
    match role {
        Role::Leader => "leader",
        Role::Follower => "follower",
        Role::Candidate => "candidate",
        Role::Learner => "learner",
        Role::Shutdown => "down",
    }
}

/// What a group serves: the metadata, or a queue (vhost, name, type).
enum Serves<'a> {
    Metadata,
    Queue(Option<&'a (String, String, &'static str)>),
}

fn row(s: &GroupStatus, serves: Serves<'_>, nodes: &BTreeMap<u64, ClusterNode>) -> Value {
    let names = |ids: &BTreeSet<u64>| -> Vec<String> {
        ids.iter()
            .map(|&id| AppView::node_name(nodes, id))
            .collect()
    };
    let (kind, vhost, queue, queue_type) = match serves {
        Serves::Metadata => ("metadata", None, None, None),
        Serves::Queue(Some((vhost, name, kind))) => (
            "queue",
            Some(vhost.as_str()),
            Some(name.as_str()),
            Some(*kind),
        ),
        // A queue deleted meanwhile: its group is being stopped.
        Serves::Queue(None) => ("queue", None, None, None),
    };
    json!({
        "group": s.group,
        "serves": kind,
        "vhost": vhost,
        "queue": queue,
        "type": queue_type,
        "node": AppView::node_name(nodes, s.node),
        "role": role(s.role),
        "members": names(&s.voters),
        "learners": names(&s.learners),
        "leader": s.leader.map(|id| AppView::node_name(nodes, id)),
        "term": s.term,
        "last_log_index": s.last_log_index.unwrap_or(0),
        "commit_index": s.committed.unwrap_or(0),
        "last_applied": s.last_applied.unwrap_or(0),
    })
}

/// Every group running here, by group id.
pub(super) fn run(view: &AppView) -> CommandOutcome {
    let nodes = view.broker.cluster_nodes();
    let queues: BTreeMap<u64, (String, String, &'static str)> = view
        .broker
        .all_queue_records()
        .into_iter()
        .filter(|(_, q)| q.group_id != 0)
        .map(|(vhost, q)| (q.group_id, (vhost, q.name, q.queue_type.as_str())))
        .collect();
    let rows: Vec<Value> = view
        .broker
        .group_statuses()
        .iter()
        .map(|s| {
            let serves = match s.group == META_GROUP {
                true => Serves::Metadata,
                false => Serves::Queue(queues.get(&s.group)),
            };
            row(s, serves, &nodes)
        })
        .collect();
    CommandOutcome::with_json(Value::Array(rows).to_string())
}
