//! rabbitmq-queues on this node: changing a quorum queue's members (`add_member`,
//! `delete_member`, `grow`, `shrink`), their Raft state (`quorum_status`) and spreading
//! the leaders (`rebalance`).
//!
//! A member change runs on the node leading the queue's group (other nodes forward it
//! there): to add a node, the record gains it first (so the node starts its replica and
//! waits to be added), then the group adds it as a learner, waits for it to catch up, and
//! makes it a voter. To remove one, the group drops it from its voters first (after
//! handing the leadership away if the node leads), then the record (so the node stops its
//! replica and drops its data). The queue serves throughout.

use std::collections::BTreeMap;
use std::time::Duration;

use super::control::{AppView, Control};
use super::membership::find_node;
use crate::cluster::{MemberChange, MemberStatus, NodeLeaders, PeerState};
use crate::metadata::{MetaCommand, QueueRecord, QueueType};
use crate::raft::{GroupHandle, Role};

/// How long a member change waits for the group's leader.
const LEADER_WAIT: Duration = Duration::from_secs(10);
/// How long `forget_cluster_node` waits for each queue's member change.
const EVACUATE_WAIT: Duration = Duration::from_secs(30);

impl Control {
    /// The Raft-replicated queue `vhost`/`queue` (a quorum queue or a durable classic
    /// one), or why not.
    fn replicated_record(view: &AppView, vhost: &str, queue: &str) -> Result<QueueRecord, String> {
        let record = view
            .broker
            .queue_records(vhost)
            .ok_or_else(|| format!("virtual host '{vhost}' does not exist"))?
            .into_iter()
            .find(|q| q.name == queue)
            .ok_or_else(|| format!("queue '{queue}' in vhost '{vhost}' does not exist"))?;
        if record.group_id == 0 {
            return Err(format!(
                "queue '{queue}' in vhost '{vhost}' is not replicated"
            ));
        }
        Ok(record)
    }

    /// The quorum queue `vhost`/`queue`, or why not.
    fn quorum_record(view: &AppView, vhost: &str, queue: &str) -> Result<QueueRecord, String> {
        let record = Self::replicated_record(view, vhost, queue)?;
        if record.queue_type != QueueType::Quorum {
            return Err(format!(
                "queue '{queue}' in vhost '{vhost}' is not a quorum queue"
            ));
        }
        Ok(record)
    }

    /// The group of a queue this node is a member of, once it knows its leader.
    async fn led_group(
        view: &AppView,
        record: &QueueRecord,
    ) -> Result<Option<GroupHandle>, String> {
        let Some(group) = view.broker.queue_group(record.group_id) else {
            return Ok(None);
        };
        group
            .wait_for_leader(LEADER_WAIT)
            .await
            .map_err(|e| format!("queue '{}' has no leader: {e}", record.name))?;
        Ok(Some(group))
    }

    /// The node to make a change on: the queue's leader as known here, once it is a live
    /// node (a dead leader's group elects another within the wait); where this node is no
    /// member, a live member, which knows the leader.
    async fn leader_node(view: &AppView, record: &QueueRecord, group: Option<&GroupHandle>) -> u64 {
        let Some(group) = group else {
            return record
                .members
                .iter()
                .copied()
                .find(|&m| view.is_live(m))
                .unwrap_or(record.members[0]);
        };
        let deadline = tokio::time::Instant::now() + LEADER_WAIT;
        loop {
            let leader = group.current_leader().unwrap_or(record.members[0]);
            if view.is_live(leader) || tokio::time::Instant::now() >= deadline {
                return leader;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `add_member` (`add`) or `delete_member` of `node` for one quorum queue.
    pub(crate) async fn change_member(
        &self,
        vhost: &str,
        queue: &str,
        node: &str,
        add: bool,
    ) -> Result<(), String> {
        let view = self.running_view()?;
        let record = Self::quorum_record(&view, vhost, queue)?;
        let (id, target) = find_node(&view, node)?;
        if add && record.members.contains(&id) {
            return Err(format!(
                "{} is already a member of queue '{queue}' in vhost '{vhost}'",
                target.name
            ));
        }
        if !add && !record.members.contains(&id) {
            return Err(format!(
                "{} is not a member of queue '{queue}' in vhost '{vhost}'",
                target.name
            ));
        }
        if !add && record.members.len() == 1 {
            return Err(format!(
                "{} is the last member of queue '{queue}' in vhost '{vhost}': delete the queue instead",
                target.name
            ));
        }
        let group = Self::led_group(&view, &record).await?;
        let leader = Self::leader_node(&view, &record, group.as_ref()).await;
        let group = match group {
            Some(group) if leader == view.node_id => group,
            _ => {
                return self
                    .forward_change(&view, leader, vhost, queue, node, add)
                    .await
            }
        };
        if add {
            self.add_member_here(&view, vhost, &record, &group, id)
                .await
        } else if id == view.node_id {
            // The leader leaves last: hand the leadership to another member, which then
            // makes the change.
            let to = *record
                .members
                .iter()
                .find(|&&m| m != id)
                .expect("more than one member");
            hand_leadership(&group, to)
                .await
                .map_err(|e| format!("could not hand the leadership over: {e}"))?;
            let now = group.current_leader().unwrap_or(to);
            self.forward_change(&view, now, vhost, queue, node, add)
                .await
        } else {
            self.delete_member_here(&view, vhost, &record, &group, id)
                .await
        }
    }

    async fn forward_change(
        &self,
        view: &AppView,
        leader: u64,
        vhost: &str,
        queue: &str,
        node: &str,
        add: bool,
    ) -> Result<(), String> {
        let mut client = self.admin_of_id_slow(view, leader).await?;
        client
            .change_member(vhost, queue, node, add)
            .await
            .map_err(|e| e.to_string())
    }

    pub(super) async fn add_member_here(
        &self,
        view: &AppView,
        vhost: &str,
        record: &QueueRecord,
        group: &GroupHandle,
        id: u64,
    ) -> Result<(), String> {
        let mut members = record.members.clone();
        members.push(id);
        let set_members = |members: Vec<u64>| members_command(vhost, record, members);
        view.broker
            .propose(set_members(members))
            .await
            .map_err(|e| e.text)?;
        let mut voters = group.voters();
        voters.insert(id);
        let joined = match group.add_learner(id).await {
            Ok(()) => group
                .change_membership(voters, false)
                .await
                .map_err(|e| format!("could not make the new member a voter: {e:?}")),
            Err(e) => Err(format!("could not add the new member as a learner: {e:?}")),
        };
        if let Err(e) = joined {
            // The record names only the group's voters: take the node out again (it
            // stops its replica), unless the change went through after all.
            if !group.voters().contains(&id) {
                let _ = view
                    .broker
                    .propose(set_members(record.members.clone()))
                    .await;
            }
            return Err(e);
        }
        Ok(())
    }

    pub(super) async fn delete_member_here(
        &self,
        view: &AppView,
        vhost: &str,
        record: &QueueRecord,
        group: &GroupHandle,
        id: u64,
    ) -> Result<(), String> {
        let mut voters = group.voters();
        voters.remove(&id);
        group
            .change_membership(voters, false)
            .await
            .map_err(|e| format!("could not remove the member from the group: {e:?}"))?;
        let members = record
            .members
            .iter()
            .copied()
            .filter(|&m| m != id)
            .collect();
        view.broker
            .propose(members_command(vhost, record, members))
            .await
            .map(|_| ())
            .map_err(|e| e.text)
    }

    /// `grow NODE all|even` (`grow`) or `shrink NODE`: every quorum queue of every vhost.
    pub(crate) async fn grow_shrink(
        &self,
        node: &str,
        grow: bool,
        strategy: &str,
    ) -> Result<Vec<MemberChange>, String> {
        let view = self.running_view()?;
        let (id, target) = find_node(&view, node)?;
        if grow && !matches!(strategy, "all" | "even") {
            return Err(format!(
                "unknown strategy '{strategy}': use 'all' or 'even'"
            ));
        }
        let queues = quorum_queues(&view, |_| true);
        let mut changes = Vec::new();
        for (vhost, q) in queues {
            let has = q.members.contains(&id);
            let wanted = if grow {
                !has && (strategy == "all" || q.members.len() % 2 == 0)
            } else {
                has && q.members.len() > 1
            };
            if !wanted {
                continue;
            }
            let outcome = self
                .change_member(&vhost, &q.name, &target.name, grow)
                .await;
            let size = q.members.len() as u32;
            changes.push(MemberChange {
                vhost,
                queue: q.name.clone(),
                size: match (&outcome, grow) {
                    (Ok(()), true) => size + 1,
                    (Ok(()), false) => size - 1,
                    (Err(_), _) => size,
                },
                result: outcome.map_or_else(|e| e, |()| "ok".to_string()),
            });
        }
        Ok(changes)
    }

    /// For `forget_cluster_node`: take the stopped node `id` out of every quorum queue
    /// it is a member of (not the last member: those go with the node) and give each
    /// such queue a replica on a running node that has none, so the queue keeps its
    /// size where the cluster has room. Best effort: a queue that cannot change (it has
    /// lost its majority) is logged and skipped.
    pub(crate) async fn evacuate_queues(&self, view: &AppView, id: u64) {
        let nodes = view.broker.cluster_nodes();
        let Some(gone) = nodes.get(&id).map(|n| n.name.clone()) else {
            return;
        };
        let queues = quorum_queues(view, |q| q.members.len() > 1 && q.members.contains(&id));
        // Wait (bounded) until the failure detector has the node down, so the groups it
        // led have elected other leaders to make the changes.
        let mut states = view.peer_states.clone();
        let down = states.wait_for(|s| s.get(&id) != Some(&PeerState::Up));
        let _ = tokio::time::timeout(LEADER_WAIT, down).await;
        for (vhost, q) in queues {
            let removed = tokio::time::timeout(
                EVACUATE_WAIT,
                self.change_member(&vhost, &q.name, &gone, false),
            )
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {EVACUATE_WAIT:?}")));
            if let Err(e) = removed {
                tracing::warn!(vhost, queue = q.name, node = gone, error = %e, "forget: could not remove the node from the queue");
                continue;
            }
            // Replicas per running node, to pick the least loaded free one.
            let records = view.broker.all_queue_records();
            let free = nodes
                .iter()
                .filter(|(&n, _)| n != id && !q.members.contains(&n) && view.is_live(n))
                .min_by_key(|(&n, _)| {
                    records
                        .iter()
                        .filter(|(_, r)| r.members.contains(&n))
                        .count()
                });
            let Some((_, home)) = free else { continue };
            let added = tokio::time::timeout(
                EVACUATE_WAIT,
                self.change_member(&vhost, &q.name, &home.name, true),
            )
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {EVACUATE_WAIT:?}")));
            match added {
                Ok(()) => tracing::info!(
                    vhost,
                    queue = q.name,
                    from = gone,
                    to = home.name,
                    "forget: replica re-homed"
                ),
                Err(e) => {
                    tracing::warn!(vhost, queue = q.name, node = home.name, error = %e, "forget: could not re-home the replica")
                }
            }
        }
    }

    /// Every member's Raft state (`local_only`: this node's only), of any replicated
    /// queue: a mirrored classic queue's group is as much a Raft group as a quorum one's.
    pub(crate) async fn quorum_status(
        &self,
        vhost: &str,
        queue: &str,
        local_only: bool,
    ) -> Result<Vec<MemberStatus>, String> {
        let view = self.running_view()?;
        let record = Self::replicated_record(&view, vhost, queue)?;
        let nodes = view.broker.cluster_nodes();
        let name_of = |id: u64| AppView::node_name(&nodes, id);
        let mut members = Vec::new();
        for &member in &record.members {
            if member == view.node_id {
                members.push(local_status(&view, &record, name_of(member)));
                continue;
            }
            if local_only {
                continue;
            }
            let answer = match nodes.get(&member) {
                Some(node) if view.is_live(member) => match self.admin_of(node).await {
                    Ok(mut client) => client.quorum_status(vhost, queue, true).await.ok(),
                    Err(_) => None,
                },
                _ => None,
            };
            members.push(
                answer
                    .and_then(|mut a| a.pop())
                    .unwrap_or_else(|| MemberStatus::down(name_of(member))),
            );
        }
        Ok(members)
    }

    /// Spread the quorum queues' leaders: while a node leads more than its share, hand
    /// one of its queues to the member that leads the fewest. Returns the leaders per
    /// node afterwards.
    pub(crate) async fn rebalance(&self) -> Result<Vec<NodeLeaders>, String> {
        let view = self.running_view()?;
        let nodes = view.broker.cluster_nodes();
        let queues = quorum_queues(&view, |_| true);
        // Leaders as the members report them (this node may not be a member of all).
        let mut led: BTreeMap<u64, Vec<(String, QueueRecord)>> =
            nodes.keys().map(|&id| (id, Vec::new())).collect();
        for (vhost, q) in queues {
            if let Some(leader) = self.queue_leader(&view, &vhost, &q).await {
                led.entry(leader).or_default().push((vhost, q));
            }
        }
        let total: usize = led.values().map(Vec::len).sum();
        let share = total.div_ceil(led.len().max(1));
        let most_over_share = |led: &BTreeMap<u64, Vec<(String, QueueRecord)>>| {
            led.iter()
                .filter(|(_, qs)| qs.len() > share)
                .max_by_key(|(_, qs)| qs.len())
                .map(|(&n, _)| n)
        };
        while let Some(from) = most_over_share(&led) {
            // One of its queues whose least-loaded member is under its share.
            let counts: BTreeMap<u64, usize> = led.iter().map(|(&n, qs)| (n, qs.len())).collect();
            let pick = led[&from].iter().enumerate().find_map(|(i, (_, q))| {
                q.members
                    .iter()
                    .filter(|&&m| m != from && counts.get(&m).is_some_and(|&c| c < share))
                    .min_by_key(|&&m| counts[&m])
                    .map(|&to| (i, to))
            });
            let Some((i, to)) = pick else { break };
            let (vhost, q) = led.get_mut(&from).expect("listed").remove(i);
            match self.transfer_to(&view, from, &vhost, &q.name, to).await {
                Ok(()) => led.entry(to).or_default().push((vhost, q)),
                Err(e) => {
                    tracing::warn!(queue = q.name, error = %e, "rebalance: transfer failed");
                    break;
                }
            }
        }
        Ok(led
            .into_iter()
            .map(|(id, qs)| NodeLeaders {
                node: AppView::node_name(&nodes, id),
                quorum_leaders: qs.len() as u32,
            })
            .collect())
    }

    /// The queue's leader: as this node's replica knows it, else as a member reports it.
    async fn queue_leader(&self, view: &AppView, vhost: &str, q: &QueueRecord) -> Option<u64> {
        if let Some(group) = view.broker.queue_group(q.group_id) {
            return group.wait_for_leader(LEADER_WAIT).await.ok();
        }
        let status = self.quorum_status(vhost, &q.name, false).await.ok()?;
        let nodes = view.broker.cluster_nodes();
        let leader = status.iter().find(|m| m.raft_state == "leader")?;
        nodes
            .iter()
            .find(|(_, n)| n.name == leader.node)
            .map(|(&id, _)| id)
    }

    /// Have node `from` (the queue's leader) hand the queue to `to`.
    async fn transfer_to(
        &self,
        view: &AppView,
        from: u64,
        vhost: &str,
        queue: &str,
        to: u64,
    ) -> Result<(), String> {
        if from == view.node_id {
            return self.transfer_queue_leader(vhost, queue, to).await;
        }
        let mut client = self.admin_of_id_slow(view, from).await?;
        client
            .transfer_queue_leader(vhost, queue, to)
            .await
            .map_err(|e| e.to_string())
    }

    /// On the queue's leader: hand the leadership to member `to` and wait until it leads.
    pub(crate) async fn transfer_queue_leader(
        &self,
        vhost: &str,
        queue: &str,
        to: u64,
    ) -> Result<(), String> {
        let view = self.running_view()?;
        let record = Self::quorum_record(&view, vhost, queue)?;
        let group = view
            .broker
            .queue_group(record.group_id)
            .ok_or_else(|| format!("this node is not a member of queue '{queue}'"))?;
        if !record.members.contains(&to) {
            return Err(format!("node {to} is not a member of queue '{queue}'"));
        }
        if hand_leadership(&group, to).await? {
            Ok(())
        } else {
            Err(format!(
                "node {to} did not take the leadership within {LEADER_WAIT:?}"
            ))
        }
    }
}

/// The quorum queues (with their vhosts) that `keep` picks.
fn quorum_queues(
    view: &AppView,
    keep: impl Fn(&QueueRecord) -> bool,
) -> Vec<(String, QueueRecord)> {
    view.broker
        .all_queue_records()
        .into_iter()
        .filter(|(_, q)| q.group_id != 0 && q.queue_type == QueueType::Quorum && keep(q))
        .collect()
}

/// On the group's leader: hand the leadership to member `to` and wait (bounded) until it
/// leads. `Ok(false)` when it had not taken over within the wait.
pub(super) async fn hand_leadership(group: &GroupHandle, to: u64) -> Result<bool, String> {
    group.transfer_leader(to).await.map_err(|e| e.to_string())?;
    let mut watch = group.leader_watch();
    let moved = watch.wait_for(|l| *l == Some(to));
    let outcome = match tokio::time::timeout(LEADER_WAIT, moved).await {
        Ok(Ok(_)) => Ok(true),
        Ok(Err(_)) => Err("the queue's group stopped".to_string()),
        Err(_) => Ok(false),
    };
    outcome
}

/// The record change for new members: of a quorum queue, or of a mirrored classic one.
fn members_command(vhost: &str, record: &QueueRecord, members: Vec<u64>) -> MetaCommand {
    let (vhost, name) = (vhost.to_owned(), record.name.clone());
    match record.queue_type {
        QueueType::Classic => MetaCommand::SetMirrorMembers {
            vhost,
            name,
            members,
        },
        _ => MetaCommand::SetQueueMembers {
            vhost,
            name,
            members,
        },
    }
}

/// This node's member of the queue.
fn local_status(view: &AppView, record: &QueueRecord, node: String) -> MemberStatus {
    match view.broker.queue_group(record.group_id) {
        Some(group) => {
            let s = group.status();
            MemberStatus {
                node,
                raft_state: match s.role {
                    Role::Leader => "leader",
                    Role::Follower => "follower",
                    Role::Candidate => "candidate",
                    Role::Learner => "learner",
                    Role::Shutdown => "down",
                }
                .into(),
                log_index: s.last_log_index.unwrap_or(0),
                commit_index: s.committed.unwrap_or(0),
                applied_index: s.last_applied.unwrap_or(0),
                term: s.term,
            }
        }
        None => MemberStatus::down(node),
    }
}
