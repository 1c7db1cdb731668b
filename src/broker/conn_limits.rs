//! Enforcement of the vhost and user limits on connections and channels
//! (`set_vhost_limits ... max-connections`, `set_user_limits ... max-connections` and
//! `max-channels`), with RabbitMQ 3.10's refusals. RabbitMQ counts a limit against the
//! connections and channels tracked on every node of the cluster; so does WarrenMQ: this
//! node's registry plus what the other nodes report through [`PeerCounts`] (set by the
//! node once its cluster side runs). Nothing is counted unless a limit is set, so a
//! broker without limits pays nothing for this.

use std::sync::Arc;

use futures::future::BoxFuture;

use super::{Broker, BrokerError, BrokerResult, LimitCounts};
use crate::amqp::ReplyCode;
use crate::metadata::limit;

/// The other nodes' counts for a vhost and a user, added up. A node that does not
/// answer in time counts nothing (RabbitMQ's tracking tables miss a node that is down).
pub trait PeerCounts: Send + Sync {
    fn counts(&self, vhost: &str, user: &str) -> BoxFuture<'static, LimitCounts>;
}

impl Broker {
    /// Let limits count the connections and channels of the other nodes too.
    pub fn set_peer_counts(&self, peers: Arc<dyn PeerCounts>) {
        // Set once per broker, when its node runs it; a later call changes nothing.
        let _ = self.peer_counts.set(peers);
    }

    /// This node's and every reachable peer's counts for `vhost` and `user`.
    async fn cluster_counts(&self, vhost: &str, user: &str) -> LimitCounts {
        let mut counts = self.connections.counts(vhost, user);
        if let Some(peers) = self.peer_counts.get() {
            counts += peers.counts(vhost, user).await;
        }
        counts
    }

    /// A new connection of `user` to `vhost`, checked against the node's
    /// `--max-connections` and the vhost's and the user's `max-connections` (at
    /// `connection.open`, before it is registered).
    pub async fn check_connection_limits(&self, user: &str, vhost: &str) -> BrokerResult<()> {
        let node_max = self.config.max_connections;
        if node_max > 0 && self.connections.len() as u64 >= node_max {
            return Err(BrokerError::new(
                ReplyCode::NotAllowed,
                format!("connection refused: node connection limit ({node_max}) is reached"),
            ));
        }
        let (vhost_max, user_max) = {
            let meta = self.read_meta();
            (
                limit(meta.vhost_limits(vhost), "max-connections"),
                limit(meta.user_limits(user), "max-connections"),
            )
        };
        if vhost_max.is_none() && user_max.is_none() {
            return Ok(());
        }
        let counts = self.cluster_counts(vhost, user).await;
        if let Some(max) = vhost_max.filter(|&max| counts.vhost_connections >= max) {
            return Err(BrokerError::new(
                ReplyCode::NotAllowed,
                format!(
                    "access to vhost '{vhost}' refused for user '{user}': connection limit ({max}) is reached"
                ),
            ));
        }
        if let Some(max) = user_max.filter(|&max| counts.user_connections >= max) {
            return Err(BrokerError::new(
                ReplyCode::NotAllowed,
                format!("connection refused for user '{user}': user connection limit ({max}) is reached"),
            ));
        }
        Ok(())
    }

    /// A new channel of `user`, checked against the user's `max-channels` (at
    /// `channel.open`; RabbitMQ closes the connection when it is reached).
    pub async fn check_channel_limit(&self, user: &str, vhost: &str) -> BrokerResult<()> {
        let max = limit(self.read_meta().user_limits(user), "max-channels");
        let Some(max) = max else {
            return Ok(());
        };
        let counts = self.cluster_counts(vhost, user).await;
        if counts.user_channels >= max {
            return Err(BrokerError::new(
                ReplyCode::NotAllowed,
                format!(
                    "number of channels opened for user '{user}' has reached the maximum allowed user limit of ({max})"
                ),
            ));
        }
        Ok(())
    }
}
