//! Where a new durable queue's Raft group lives: how many members, on which nodes, and
//! which of them leads first. Pure and deterministic (ties broken by node id), so every
//! node applying the same log places the same way.

use std::collections::BTreeMap;

use amq_protocol::types::FieldTable;

use super::state::{QueueRecord, QueueType};
use crate::amqp::field::{int_value, str_value};

/// Members of a quorum queue when `x-quorum-initial-group-size` is absent (RabbitMQ's).
pub const DEFAULT_QUORUM_SIZE: usize = 3;

/// `x-queue-leader-locator`: which member leads a new queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaderLocator {
    /// The node the declaring client is connected to (RabbitMQ's default).
    ClientLocal,
    /// The member that leads the fewest queues.
    Balanced,
}

impl LeaderLocator {
    /// Parse the argument; RabbitMQ 3.10 still accepts the older names `random` and
    /// `least-leaders` and treats them as `balanced`.
    pub fn parse(value: &str) -> Option<LeaderLocator> {
        match value {
            "client-local" => Some(LeaderLocator::ClientLocal),
            "balanced" | "random" | "least-leaders" => Some(LeaderLocator::Balanced),
            _ => None,
        }
    }

    /// The `x-queue-leader-locator` argument, if the queue has a valid one.
    pub(super) fn of(arguments: &FieldTable) -> Option<LeaderLocator> {
        arguments
            .inner()
            .get("x-queue-leader-locator")
            .and_then(str_value)
            .and_then(|v| LeaderLocator::parse(&v))
    }
}

/// How many queue groups each node is a member of, and how many it leads.
#[derive(Default)]
struct Load {
    members: BTreeMap<u64, usize>,
    leaders: BTreeMap<u64, usize>,
}

impl Load {
    fn of<'a>(queues: impl Iterator<Item = &'a QueueRecord>) -> Load {
        let mut load = Load::default();
        for q in queues.filter(|q| q.group_id != 0) {
            for m in &q.members {
                *load.members.entry(*m).or_default() += 1;
            }
            *load.leaders.entry(q.leader_node).or_default() += 1;
        }
        load
    }
}

/// Members (declaring node first when it is a cluster node) and first leader of a new
/// durable queue declared on `node`. `nodes` are the cluster's node ids; when the cluster
/// has none recorded yet (a node still starting), the queue lives on `node` alone. The
/// leader locator is the queue's argument, else `policy`'s, else client-local.
pub(super) fn place<'a>(
    queue_type: QueueType,
    arguments: &FieldTable,
    policy: Option<LeaderLocator>,
    node: u64,
    nodes: &[u64],
    existing: impl Iterator<Item = &'a QueueRecord>,
) -> (Vec<u64>, u64) {
    let wanted = match queue_type {
        QueueType::Quorum => arguments
            .inner()
            .get("x-quorum-initial-group-size")
            .and_then(int_value)
            .map(|n| n.max(1) as usize)
            .unwrap_or(DEFAULT_QUORUM_SIZE),
        QueueType::Classic | QueueType::Stream => 1,
    };
    if nodes.is_empty() || (wanted == 1 && nodes.contains(&node)) {
        return (vec![node], node);
    }
    let load = Load::of(existing);
    let mut others: Vec<u64> = nodes.iter().copied().filter(|&n| n != node).collect();
    others.sort_by_key(|n| (load.members.get(n).copied().unwrap_or(0), *n));
    let mut members: Vec<u64> = Vec::with_capacity(wanted);
    if nodes.contains(&node) {
        members.push(node);
    }
    members.extend(others.into_iter().take(wanted - members.len().min(wanted)));
    members.truncate(wanted);
    let locator = LeaderLocator::of(arguments)
        .or(policy)
        .unwrap_or(LeaderLocator::ClientLocal);
    let leader = match locator {
        LeaderLocator::ClientLocal if members.contains(&node) => node,
        _ => *members
            .iter()
            .min_by_key(|m| (load.leaders.get(m).copied().unwrap_or(0), **m))
            .expect("at least one member"),
    };
    (members, leader)
}

#[cfg(test)]
mod tests {
    use super::*;
    use amq_protocol::types::{AMQPValue, LongString};

    fn args(pairs: &[(&str, AMQPValue)]) -> FieldTable {
        let mut t = FieldTable::default();
        for (k, v) in pairs {
            t.insert((*k).into(), v.clone());
        }
        t
    }

    fn record(group_id: u64, members: Vec<u64>, leader: u64) -> QueueRecord {
        QueueRecord {
            name: format!("q{group_id}"),
            durable: true,
            exclusive_owner: None,
            auto_delete: false,
            arguments: FieldTable::default(),
            queue_type: QueueType::Quorum,
            group_id,
            members,
            leader_node: leader,
        }
    }

    #[test]
    fn classic_lives_on_the_declaring_node() {
        let none = FieldTable::default();
        assert_eq!(
            place(QueueType::Classic, &none, None, 2, &[1, 2, 3], [].iter()),
            (vec![2], 2)
        );
        // Before the node knows the cluster, a queue stays local whatever its type.
        assert_eq!(
            place(QueueType::Quorum, &none, None, 7, &[], [].iter()),
            (vec![7], 7)
        );
    }

    #[test]
    fn quorum_takes_three_nodes_client_local_leader_first() {
        let none = FieldTable::default();
        let (members, leader) = place(QueueType::Quorum, &none, None, 2, &[1, 2, 3, 4], [].iter());
        assert_eq!((members, leader), (vec![2, 1, 3], 2));
        // At most the cluster size.
        let (members, _) = place(QueueType::Quorum, &none, None, 1, &[1, 2], [].iter());
        assert_eq!(members, vec![1, 2]);
    }

    #[test]
    fn initial_group_size_and_least_loaded_members() {
        let size2 = args(&[("x-quorum-initial-group-size", AMQPValue::LongInt(2))]);
        let existing = [record(1, vec![1, 3], 1), record(2, vec![3, 4], 3)];
        // Node 2 declares: it is first, then the node with the fewest memberships (4 has 1,
        // 1 has 1 -> lower id wins).
        let (members, leader) = place(
            QueueType::Quorum,
            &size2,
            None,
            2,
            &[1, 2, 3, 4],
            existing.iter(),
        );
        assert_eq!((members, leader), (vec![2, 1], 2));
    }

    #[test]
    fn balanced_locator_picks_the_member_leading_fewest() {
        let balanced = args(&[(
            "x-queue-leader-locator",
            AMQPValue::LongString(LongString::from("balanced")),
        )]);
        let existing = [record(1, vec![1, 2, 3], 1), record(2, vec![1, 2, 3], 2)];
        let (members, leader) = place(
            QueueType::Quorum,
            &balanced,
            None,
            1,
            &[1, 2, 3],
            existing.iter(),
        );
        assert_eq!((members, leader), (vec![1, 2, 3], 3));
        assert_eq!(
            LeaderLocator::parse("least-leaders"),
            Some(LeaderLocator::Balanced)
        );
        assert_eq!(LeaderLocator::parse("nearest"), None);
    }

    #[test]
    fn a_declaring_node_outside_the_cluster_is_not_a_member() {
        let none = FieldTable::default();
        let (members, leader) = place(QueueType::Quorum, &none, None, 9, &[1, 2, 3], [].iter());
        assert_eq!(members, vec![1, 2, 3]);
        assert_eq!(leader, 1);
    }
}
