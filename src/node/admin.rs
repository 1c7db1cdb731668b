//! warrenctl's answers: `status` and `cluster_status` from the node's configuration, the
//! local metadata and the liveness of its peers; the lifecycle and membership commands
//! from [`Control`]. Also the queue links of other nodes, served by the running broker.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::broker::LinkRx;
use crate::cluster::{
    AdminFuture, AdminHandler, ChangesFuture, ClusterNodeInfo, ClusterStatus, CommandFuture,
    CommandRequest, JoiningNode, LeadersFuture, LinkHandler, ListenerInfo, MembersFuture,
    NodeStatus, PeerState, PoliciesFuture, PolicyInfo, QueuesFuture,
};

use super::control::Control;
use super::{
    access, connections, declare, definitions, describe, groups, messages, objects, peer_counts,
    stats,
};

/// [`Control`] as the admin service's handler.
pub(super) struct NodeAdmin(pub Arc<Control>);

impl NodeAdmin {
    fn listeners(&self) -> Vec<ListenerInfo> {
        let listener = |protocol: &str, addr: SocketAddr, purpose: &str| ListenerInfo {
            protocol: protocol.into(),
            interface: addr.ip().to_string(),
            port: addr.port(),
            purpose: purpose.into(),
        };
        let mut listeners = vec![listener(
            "clustering",
            self.0.cluster_addr,
            "inter-node and CLI tool communication",
        )];
        if let Some(view) = self.0.view() {
            listeners.push(listener("amqp", view.amqp_addr, "AMQP 0-9-1"));
        }
        if let Some(&addr) = self.0.http_addr.get() {
            listeners.push(listener("http", addr, "HTTP API"));
        }
        if let Some(&addr) = self.0.prometheus_addr.get() {
            // As RabbitMQ lists rabbitmq_prometheus's listener.
            let purpose = "Prometheus exporter API over HTTP";
            listeners.push(listener("http/prometheus", addr, purpose));
        }
        listeners
    }
}

impl AdminHandler for NodeAdmin {
    fn status(&self) -> NodeStatus {
        let view = self.0.view();
        NodeStatus {
            node_name: self.0.config.node_name.clone(),
            node_id: view.as_ref().map_or(0, |v| v.node_id),
            pid: std::process::id(),
            version: env!("CARGO_PKG_VERSION").into(),
            uptime_ms: self.0.started.elapsed().as_millis() as u64,
            app_running: view.is_some(),
            listeners: self.listeners(),
            data_dir: self.0.config.data_dir.display().to_string(),
            resident_memory_bytes: crate::broker::alarm::resident_bytes(),
            alarms: view
                .as_ref()
                .map(|v| v.broker.alarms().borrow().names())
                .unwrap_or_default(),
        }
    }

    fn cluster_status(&self) -> ClusterStatus {
        let view = self.0.view();
        let me = view.as_ref().map_or(0, |v| v.node_id);
        let up = |id: u64| {
            view.as_ref()
                .is_some_and(|v| v.peer_states.borrow().get(&id) == Some(&PeerState::Up))
        };
        let mut nodes: Vec<ClusterNodeInfo> = view
            .as_ref()
            .map(|v| v.broker.cluster_nodes())
            .unwrap_or_default()
            .into_iter()
            .map(|(id, n)| ClusterNodeInfo {
                running: id == me || up(id),
                name: n.name,
                id,
                cluster_addr: n.cluster_addr,
            })
            .collect();
        if !nodes.iter().any(|n| n.id == me && me != 0) {
            // Not recorded yet, or the app is stopped: list this node all the same.
            nodes.push(ClusterNodeInfo {
                name: self.0.config.node_name.clone(),
                id: me,
                cluster_addr: self.0.advertised_cluster_addr(),
                running: view.is_some(),
            });
        }
        nodes.sort_by(|a, b| a.name.cmp(&b.name));
        // RabbitMQ names a cluster after its first node unless renamed.
        let renamed = view
            .as_ref()
            .and_then(|v| v.broker.read_meta().cluster_name().map(str::to_owned));
        let cluster_name = renamed.unwrap_or_else(|| {
            nodes
                .iter()
                .filter(|n| n.id != 0)
                .min_by_key(|n| n.id)
                .map(|n| n.name.clone())
                .unwrap_or_else(|| self.0.config.node_name.clone())
        });
        ClusterStatus {
            cluster_name,
            node_name: self.0.config.node_name.clone(),
            nodes,
            listeners: self.listeners(),
        }
    }

    fn stop_app(&self) -> AdminFuture<'_> {
        Box::pin(async move {
            self.0.stop_app().await;
            Ok(())
        })
    }

    fn start_app(&self) -> AdminFuture<'_> {
        Box::pin(async move { self.0.start_app().await.map_err(|e| e.to_string()) })
    }

    fn reset(&self) -> AdminFuture<'_> {
        Box::pin(self.0.reset())
    }

    fn join_cluster(&self, node: String) -> AdminFuture<'_> {
        Box::pin(async move { self.0.join_cluster(&node).await })
    }

    fn forget_cluster_node(&self, node: String) -> AdminFuture<'_> {
        Box::pin(async move { self.0.forget_cluster_node(&node).await })
    }

    fn add_node(&self, node: JoiningNode) -> AdminFuture<'_> {
        Box::pin(self.0.add_node(node))
    }

    fn list_queues(&self, vhost: String, local_only: bool) -> QueuesFuture<'_> {
        Box::pin(async move { self.0.list_queues(&vhost, local_only).await })
    }

    fn change_member(
        &self,
        vhost: String,
        queue: String,
        node: String,
        add: bool,
    ) -> AdminFuture<'_> {
        Box::pin(async move { self.0.change_member(&vhost, &queue, &node, add).await })
    }

    fn grow_shrink(&self, node: String, grow: bool, strategy: String) -> ChangesFuture<'_> {
        Box::pin(async move { self.0.grow_shrink(&node, grow, &strategy).await })
    }

    fn quorum_status(&self, vhost: String, queue: String, local_only: bool) -> MembersFuture<'_> {
        Box::pin(async move { self.0.quorum_status(&vhost, &queue, local_only).await })
    }

    fn rebalance(&self) -> LeadersFuture<'_> {
        Box::pin(self.0.rebalance())
    }

    fn transfer_queue_leader(&self, vhost: String, queue: String, to: u64) -> AdminFuture<'_> {
        Box::pin(async move { self.0.transfer_queue_leader(&vhost, &queue, to).await })
    }

    fn set_policy(&self, policy: PolicyInfo) -> AdminFuture<'_> {
        Box::pin(self.0.set_policy(policy))
    }

    fn clear_policy(&self, vhost: String, name: String) -> AdminFuture<'_> {
        Box::pin(async move { self.0.clear_policy(&vhost, &name).await })
    }

    fn list_policies(&self, vhost: String) -> PoliciesFuture<'_> {
        Box::pin(async move { self.0.list_policies(&vhost).await })
    }

    fn command(&self, request: CommandRequest) -> CommandFuture<'_> {
        Box::pin(async move {
            let view = self.0.running_view()?;
            Ok(if objects::handles(&request.command) {
                objects::run(&view, &request).await
            } else if request.command == groups::COMMAND {
                groups::run(&view)
            } else if request.command == peer_counts::COMMAND {
                peer_counts::run(&view, &request)
            } else if connections::handles(&request.command) {
                connections::run(&self.0, &view, &request).await
            } else if declare::handles(&request.command) {
                declare::run(&view, &request).await
            } else if describe::handles(&request.command) {
                describe::run(&self.0, &view, &request).await
            } else if stats::handles(&request.command) {
                stats::run(&self.0, &view, &request).await
            } else if messages::handles(&request.command) {
                messages::run(&view, &request).await
            } else if definitions::handles(&request.command) {
                definitions::run(&view, &request).await
            } else {
                access::run(&view, &request).await
            })
        })
    }
}

impl LinkHandler for NodeAdmin {
    fn serve(&self, incoming: LinkRx) -> Result<LinkRx, String> {
        let view = self
            .0
            .view()
            .ok_or_else(|| "the node's app is stopped".to_string())?;
        Ok(view.broker.serve_link(incoming))
    }
}
