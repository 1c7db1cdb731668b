//! Cluster membership on the metadata group's leader: adding a joining node (recorded,
//! then a learner, then a voter) and forgetting a stopped one (out of the voters, then out
//! of the records, which drops it from every queue's members). A node that does not lead
//! the metadata group hands the request to the one that does.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use tracing::info;

use super::control::{AppView, Control};
use crate::cluster::{resolve_node, AdminClient, JoiningNode};
use crate::metadata::{ClusterNode, MetaCommand};

/// How long the leader waits for a new node's address to reach its peer table.
const PEER_ADDRESS_WAIT: Duration = Duration::from_secs(2);

impl Control {
    pub(super) fn running_view(&self) -> Result<AppView, String> {
        self.view().ok_or_else(|| {
            "the app is not running on this node; start it with 'warrenctl start_app'".to_string()
        })
    }

    /// The metadata leader's admin client, when this node does not lead; `None` when it does.
    async fn leader_client(&self, view: &AppView) -> Result<Option<AdminClient>, String> {
        let group = view.broker.meta_group();
        let leader = group
            .wait_for_leader(Duration::from_secs(10))
            .await
            .map_err(|e| format!("the cluster has no metadata leader: {e}"))?;
        if leader == view.node_id {
            return Ok(None);
        }
        let node = view
            .broker
            .cluster_nodes()
            .remove(&leader)
            .ok_or_else(|| format!("the metadata leader (node id {leader}) is not recorded"))?;
        let client = self
            .admin_of(&node)
            .await
            .map_err(|e| format!("the metadata leader: {e}"))?;
        Ok(Some(client))
    }

    /// Add a joining node to the cluster (on the leader; forwarded there otherwise).
    pub(crate) async fn add_node(&self, joining: JoiningNode) -> Result<(), String> {
        let view = self.running_view()?;
        if let Some(mut leader) = self.leader_client(&view).await? {
            return leader.add_node(&joining).await.map_err(|e| e.to_string());
        }
        let broker = &view.broker;
        let nodes = broker.cluster_nodes();
        if let Some((id, _)) = nodes
            .iter()
            .find(|(&id, n)| n.name == joining.name && id != joining.id)
        {
            return Err(format!(
                "a node named {} is already a member of the cluster (node id {id}); forget it first with 'warrenctl forget_cluster_node {}'",
                joining.name, joining.name
            ));
        }
        let group = broker.meta_group();
        if group.voters().contains(&joining.id) {
            return Ok(());
        }
        info!(
            node = joining.name,
            id = joining.id,
            "adding a node to the cluster"
        );
        broker
            .propose(MetaCommand::SetNode {
                id: joining.id,
                name: joining.name.clone(),
                cluster_addr: joining.cluster_addr.clone(),
            })
            .await
            .map_err(|e| e.text)?;
        let deadline = Instant::now() + PEER_ADDRESS_WAIT;
        while !view.peers.addresses().contains_key(&joining.id) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        group
            .add_learner(joining.id)
            .await
            .map_err(|e| format!("adding {} as a learner: {e}", joining.name))?;
        let mut voters = group.voters();
        voters.insert(joining.id);
        group
            .change_membership(voters, false)
            .await
            .map_err(|e| format!("making {} a voter: {e}", joining.name))?;
        info!(node = joining.name, "node added to the cluster");
        Ok(())
    }

    /// Remove a stopped node from the cluster (on the leader; forwarded there otherwise).
    pub(crate) async fn forget_cluster_node(&self, node: &str) -> Result<(), String> {
        let view = self.running_view()?;
        let (id, record) = find_node(&view, node)?;
        if id == view.node_id {
            return Err(format!(
                "cannot forget node {}: it is the node this command runs on; run it on another member",
                record.name
            ));
        }
        if let Ok(mut client) = self.admin_of(&record).await {
            if client.status().await.is_ok_and(|s| s.app_running) {
                return Err(format!(
                    "node {} is running; stop it first ('warrenctl -n {} stop_app')",
                    record.name, record.cluster_addr
                ));
            }
        }
        if let Some(mut leader) = self.leader_client(&view).await? {
            return leader
                .forget_cluster_node(&record.name)
                .await
                .map_err(|e| e.to_string());
        }
        // Out of every quorum queue's group first (while its name still resolves), each
        // replica re-homed on a free node where there is one.
        self.evacuate_queues(&view, id).await;
        let group = view.broker.meta_group();
        let voters: BTreeSet<u64> = group.voters();
        let status = group.status();
        if voters.contains(&id) || status.learners.contains(&id) {
            let remaining: BTreeSet<u64> = voters.into_iter().filter(|&v| v != id).collect();
            group
                .change_membership(remaining, false)
                .await
                .map_err(|e| format!("removing {} from the metadata group: {e}", record.name))?;
        }
        view.broker
            .propose(MetaCommand::RemoveNode { id })
            .await
            .map_err(|e| e.text)?;
        info!(node = record.name, id, "node forgotten");
        Ok(())
    }
}

/// The recorded node `node` names: by name, by its recorded cluster address, or by an
/// address that resolves to it.
pub(super) fn find_node(view: &AppView, node: &str) -> Result<(u64, ClusterNode), String> {
    let nodes = view.broker.cluster_nodes();
    let by_name = nodes
        .iter()
        .find(|(_, n)| n.name == node || n.cluster_addr == node);
    let found = by_name.map(|(&id, n)| (id, n.clone())).or_else(|| {
        let addr = resolve_node(node).ok()?.to_string();
        nodes
            .iter()
            .find(|(_, n)| n.cluster_addr == addr)
            .map(|(&id, n)| (id, n.clone()))
    });
    found.ok_or_else(|| {
        let names: Vec<&str> = nodes.values().map(|n| n.name.as_str()).collect();
        format!(
            "node {node} is not a member of the cluster (members: {})",
            names.join(", ")
        )
    })
}
