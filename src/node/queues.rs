//! `list_queues`: every queue of a vhost with its type, leader, members and which of them
//! run, from the local metadata; message and consumer counts come from the node running
//! the queue's actor (this one, or a peer asked for the queues it runs).

use std::collections::HashMap;

use super::control::{AppView, Control};
use crate::cluster::QueueInfo;
use crate::metadata::{QueueRecord, QueueType};

impl Control {
    pub(crate) async fn list_queues(
        &self,
        vhost: &str,
        local_only: bool,
    ) -> Result<Vec<QueueInfo>, String> {
        let view = self.running_view()?;
        let records = view
            .broker
            .queue_records(vhost)
            .ok_or_else(|| format!("virtual host '{vhost}' does not exist"))?;
        let nodes = view.broker.cluster_nodes();
        let name_of = |id: u64| AppView::node_name(&nodes, id);
        let up = |id: u64| view.is_live(id);
        // Each queue's policy (name, definition, has ha-mode), the vhost's patterns
        // compiled once.
        let policies: Vec<Option<(String, String, bool)>> = {
            let meta = view.broker.read_meta();
            let set = meta.policy_set(vhost);
            records
                .iter()
                .map(|r| {
                    set.effective(&r.name, r.queue_type).map(|(name, p)| {
                        (name.to_owned(), p.definition.clone(), p.ha_mode().is_some())
                    })
                })
                .collect()
        };
        let mut queues = Vec::new();
        for (record, policy) in records.into_iter().zip(policies) {
            let local = view.broker.local_queue(vhost, &record.name);
            if local_only && local.is_none() {
                continue;
            }
            let status = match &local {
                Some(handle) => handle.status().await,
                None => None,
            };
            let leader = if local.is_some() {
                Some(view.node_id)
            } else if record.group_id != 0 && record.members.len() > 1 {
                view.broker.queue_group_leader(record.group_id)
            } else {
                Some(record.leader_node)
            };
            queues.push(QueueInfo {
                vhost: vhost.to_string(),
                name: record.name.clone(),
                queue_type: record.queue_type.as_str().to_string(),
                leader: leader.map(name_of).unwrap_or_default(),
                members: record.members.iter().map(|&m| name_of(m)).collect(),
                online: record
                    .members
                    .iter()
                    .filter(|&&m| up(m))
                    .map(|&m| name_of(m))
                    .collect(),
                messages: status.map(|s| s.ready + s.unacked),
                consumers: status.map(|s| s.consumers),
                mirroring: mirroring(&record, policy.as_ref().is_some_and(|p| p.2)).into(),
                policy: policy.as_ref().map(|p| p.0.clone()).unwrap_or_default(),
                effective_policy_definition: policy.map(|p| p.1).unwrap_or_default(),
            });
        }
        if !local_only && queues.iter().any(|q| q.messages.is_none()) {
            let remote = self.peer_counts(&view, vhost).await;
            for q in &mut queues {
                if let Some((leader, messages, consumers)) = remote.get(&q.name) {
                    if q.messages.is_none() {
                        q.leader.clone_from(leader);
                        q.messages = *messages;
                        q.consumers = *consumers;
                    }
                }
            }
        }
        Ok(queues)
    }

    /// What the running peers report of the queues they run: leader, messages, consumers.
    async fn peer_counts(
        &self,
        view: &AppView,
        vhost: &str,
    ) -> HashMap<String, (String, Option<u64>, Option<u32>)> {
        let mut counts = HashMap::new();
        for mut client in self.peer_admins(view).await {
            if let Ok(queues) = client.list_queues(vhost, true).await {
                for q in queues {
                    counts.insert(q.name, (q.leader, q.messages, q.consumers));
                }
            }
        }
        counts
    }
}

/// How a queue is replicated, for `list_queues mirroring`: quorum queues and classic
/// queues under an `ha-mode` policy are Raft groups; a classic queue the policy cannot
/// mirror says why (RabbitMQ 3.10 mirrors non-durable queues; WarrenMQ does not yet).
fn mirroring(record: &QueueRecord, ha_policy: bool) -> &'static str {
    if record.queue_type == QueueType::Quorum {
        "raft"
    } else if !ha_policy {
        ""
    } else if record.exclusive_owner.is_some() {
        "not mirrored: exclusive"
    } else if !record.durable {
        "not mirrored: non-durable"
    } else {
        "raft"
    }
}
