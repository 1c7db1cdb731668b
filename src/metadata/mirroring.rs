//! `ha-mode` / `ha-params` of a policy, RabbitMQ's mirrored classic queues, as Raft
//! membership: which nodes a durable classic queue's group should have, and the next
//! single change (add first, remove after) that brings it there. Pure: the node that
//! leads the queue executes the change.

use serde_json::{Map, Value};

/// A policy's mirroring.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HaMode {
    /// A member on every node of the cluster (and on nodes that join later).
    All,
    /// This many members in all.
    Exactly(usize),
    /// Members on these nodes (by name).
    Nodes(Vec<String>),
}

/// The `ha-*` keys of a policy definition, checked as RabbitMQ checks them; `None`
/// without `ha-mode`.
pub fn parse(definition: &Map<String, Value>) -> Result<Option<HaMode>, String> {
    let params = definition.get("ha-params");
    if let Some(sync) = definition.get("ha-sync-mode") {
        if !matches!(sync.as_str(), Some("manual" | "automatic")) {
            return Err(format!(
                "ha-sync-mode {sync} is not valid (manual or automatic)"
            ));
        }
    }
    let Some(mode) = definition.get("ha-mode") else {
        return match params {
            Some(_) => Err("ha-params specified but ha-mode not specified".into()),
            None => Ok(None),
        };
    };
    match (mode.as_str(), params) {
        (Some("all"), None) => Ok(Some(HaMode::All)),
        (Some("all"), Some(_)) => Err("ha-params must not be specified when ha-mode is all".into()),
        (Some("exactly"), Some(p)) => match p.as_u64() {
            Some(n) if n >= 1 => Ok(Some(HaMode::Exactly(n as usize))),
            _ => Err(format!(
                "ha-params {p} is not valid: ha-mode exactly needs a positive integer"
            )),
        },
        (Some("nodes"), Some(Value::Array(names))) if !names.is_empty() => names
            .iter()
            .map(|n| n.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .map(|names| Some(HaMode::Nodes(names)))
            .ok_or_else(|| "ha-params of ha-mode nodes must be a list of node names".into()),
        (Some("exactly" | "nodes"), _) => Err(format!(
            "ha-mode {mode} needs ha-params (a positive integer for exactly, a non-empty list of node names for nodes)"
        )),
        _ => Err(format!("ha-mode {mode} is not valid (all, exactly or nodes)")),
    }
}

/// A node as mirroring sees it.
#[derive(Clone, Copy, Debug)]
pub struct Node<'a> {
    pub id: u64,
    pub name: &'a str,
    pub live: bool,
}

/// The members a classic queue led by `leader` should have under `mode` (`None`: not
/// mirrored, one member). Current members on nodes that are down are kept (they come
/// back and catch up); new members are only placed on live nodes.
pub fn wanted(mode: Option<&HaMode>, current: &[u64], leader: u64, nodes: &[Node]) -> Vec<u64> {
    let live = |id: u64| nodes.iter().any(|n| n.id == id && n.live);
    let mut out = vec![leader];
    match mode {
        None => {}
        Some(HaMode::All) => {
            out.extend(current.iter().copied());
            out.extend(nodes.iter().filter(|n| n.live).map(|n| n.id));
        }
        Some(HaMode::Exactly(n)) => {
            // Live members first, then down ones, then live non-members.
            let others = current.iter().copied().filter(|&m| m != leader);
            let (up, down): (Vec<u64>, Vec<u64>) = others.partition(|&m| live(m));
            let fresh = nodes.iter().filter(|n| n.live).map(|n| n.id);
            for id in up.into_iter().chain(down).chain(fresh) {
                if out.len() >= *n {
                    break;
                }
                if !out.contains(&id) {
                    out.push(id);
                }
            }
        }
        Some(HaMode::Nodes(names)) => {
            let listed: Vec<u64> = names
                .iter()
                .filter_map(|name| nodes.iter().find(|n| n.name == name).map(|n| n.id))
                .collect();
            // No listed node exists: the queue stays where it is.
            if !listed.is_empty() {
                out = listed
                    .into_iter()
                    .filter(|&id| current.contains(&id) || live(id))
                    .collect();
                if out.is_empty() {
                    out.push(leader);
                }
            }
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    out.retain(|id| seen.insert(*id));
    out
}

/// One membership change: add (`true`) or remove (`false`) a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Change {
    pub node: u64,
    pub add: bool,
}

/// The next change from `current` towards `wanted`: additions first (so a queue never
/// shrinks below what it has before the new members caught up), then removals, the
/// leader's own last.
pub fn next_change(current: &[u64], wanted: &[u64], leader: u64) -> Option<Change> {
    if let Some(&node) = wanted.iter().find(|m| !current.contains(m)) {
        return Some(Change { node, add: true });
    }
    let mut extra: Vec<u64> = current
        .iter()
        .copied()
        .filter(|m| !wanted.contains(m))
        .collect();
    extra.sort_by_key(|&m| m == leader);
    extra.first().map(|&node| Change { node, add: false })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn def(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn nodes(live: &[bool]) -> Vec<Node<'static>> {
        const NAMES: [&str; 4] = ["warren@n1", "warren@n2", "warren@n3", "warren@n4"];
        live.iter()
            .enumerate()
            .map(|(i, &live)| Node {
                id: i as u64 + 1,
                name: NAMES[i],
                live,
            })
            .collect()
    }

    #[test]
    fn ha_keys_are_checked_as_rabbitmq_checks_them() {
        assert_eq!(
            parse(&def(json!({"ha-mode": "all"}))),
            Ok(Some(HaMode::All))
        );
        assert_eq!(
            parse(&def(json!({"ha-mode": "exactly", "ha-params": 2}))),
            Ok(Some(HaMode::Exactly(2)))
        );
        assert_eq!(
            parse(&def(
                json!({"ha-mode": "nodes", "ha-params": ["warren@n1"]})
            )),
            Ok(Some(HaMode::Nodes(vec!["warren@n1".into()])))
        );
        assert_eq!(
            parse(&def(json!({"queue-leader-locator": "balanced"}))),
            Ok(None)
        );
        for bad in [
            json!({"ha-mode": "some"}),
            json!({"ha-mode": "exactly"}),
            json!({"ha-mode": "exactly", "ha-params": 0}),
            json!({"ha-mode": "nodes", "ha-params": []}),
            json!({"ha-mode": "all", "ha-params": 2}),
            json!({"ha-params": 2}),
            json!({"ha-mode": "all", "ha-sync-mode": "sometimes"}),
        ] {
            assert!(parse(&def(bad.clone())).is_err(), "{bad}");
        }
    }

    #[test]
    fn all_adds_every_live_node_and_keeps_members_that_are_down() {
        let n = nodes(&[true, true, false, true]);
        assert_eq!(wanted(Some(&HaMode::All), &[1], 1, &n), [1, 2, 4]);
        assert_eq!(wanted(Some(&HaMode::All), &[2, 3], 2, &n), [2, 3, 1, 4]);
    }

    #[test]
    fn exactly_keeps_live_members_first_and_fills_up_with_live_nodes() {
        let n = nodes(&[true, true, true, true]);
        assert_eq!(wanted(Some(&HaMode::Exactly(2)), &[1], 1, &n), [1, 2]);
        assert_eq!(wanted(Some(&HaMode::Exactly(2)), &[3, 1, 4], 3, &n), [3, 1]);
        let n = nodes(&[true, false, true, true]);
        assert_eq!(wanted(Some(&HaMode::Exactly(3)), &[1, 2], 1, &n), [1, 2, 3]);
        assert_eq!(wanted(Some(&HaMode::Exactly(9)), &[1], 1, &n), [1, 3, 4]);
    }

    #[test]
    fn nodes_names_the_members_and_the_leader_may_move() {
        let n = nodes(&[true, true, true, false]);
        let mode = HaMode::Nodes(vec!["warren@n2".into(), "warren@n3".into()]);
        assert_eq!(wanted(Some(&mode), &[1], 1, &n), [2, 3]);
        // A listed node that is down and not a member yet is not added.
        let mode = HaMode::Nodes(vec!["warren@n4".into()]);
        assert_eq!(wanted(Some(&mode), &[1], 1, &n), [1]);
        let mode = HaMode::Nodes(vec!["warren@nowhere".into()]);
        assert_eq!(wanted(Some(&mode), &[1, 2], 1, &n), [1]);
    }

    #[test]
    fn without_a_policy_a_queue_shrinks_to_its_leader() {
        let n = nodes(&[true, true, true]);
        assert_eq!(wanted(None, &[2, 1, 3], 2, &n), [2]);
    }

    #[test]
    fn changes_add_first_and_remove_the_leader_last() {
        assert_eq!(
            next_change(&[1], &[1, 2, 3], 1),
            Some(Change { node: 2, add: true })
        );
        assert_eq!(
            next_change(&[1, 2], &[2, 3], 1),
            Some(Change { node: 3, add: true })
        );
        assert_eq!(
            next_change(&[1, 2, 3], &[2, 3], 1),
            Some(Change {
                node: 1,
                add: false
            })
        );
        assert_eq!(
            next_change(&[1, 2, 3], &[1], 1),
            Some(Change {
                node: 2,
                add: false
            })
        );
        assert_eq!(next_change(&[1, 2], &[1, 2], 1), None);
    }
}
