//! The node's side of connection and channel limits: answers another node's
//! `connection_counts` with this node's counts, and asks every live peer for theirs when
//! a limit is checked here (the broker's [`PeerCounts`]). A peer that is down or slow to
//! answer counts nothing, so a limit never blocks a connection for longer than
//! [`ANSWER_WAIT`].

use std::sync::{Arc, Weak};
use std::time::Duration;

use futures::future::{join_all, BoxFuture};
use serde_json::Value;
use tokio::sync::watch;
use tracing::warn;

use super::control::AppView;
use crate::broker::{Broker, LimitCounts, PeerCounts};
use crate::cluster::{
    AdminClient, ClusterSecret, CommandOutcome, CommandRequest, PeerState, PeerStates,
};

/// The admin command one node sends another for its counts.
pub(super) const COMMAND: &str = "connection_counts";
/// How long a peer may take to connect and answer.
const ANSWER_WAIT: Duration = Duration::from_secs(1);

/// `connection_counts` with the vhost in the request and the user as its one argument:
/// this node's counts as JSON.
pub(super) fn run(view: &AppView, req: &CommandRequest) -> CommandOutcome {
    let [user] = req.args.as_slice() else {
        return CommandOutcome::refused(64, "connection_counts takes a user");
    };
    let counts = view.broker.connections().counts(&req.vhost, user);
    match serde_json::to_string(&counts) {
        Ok(json) => CommandOutcome::with_json(json),
        Err(e) => CommandOutcome::refused(70, e.to_string()),
    }
}

/// Asks the live peers of a running node.
pub(super) struct ClusterCounts {
    pub node_id: u64,
    pub broker: Weak<Broker>,
    pub secret: ClusterSecret,
    pub peer_states: watch::Receiver<PeerStates>,
}

impl ClusterCounts {
    pub(super) fn install(view: &AppView, secret: &ClusterSecret) {
        let counts = ClusterCounts {
            node_id: view.node_id,
            broker: Arc::downgrade(&view.broker),
            secret: secret.clone(),
            peer_states: view.peer_states.clone(),
        };
        view.broker.set_peer_counts(Arc::new(counts));
    }
}

impl PeerCounts for ClusterCounts {
    fn counts(&self, vhost: &str, user: &str) -> BoxFuture<'static, LimitCounts> {
        let Some(broker) = self.broker.upgrade() else {
            return Box::pin(async { LimitCounts::default() });
        };
        let states = self.peer_states.borrow().clone();
        let peers: Vec<_> = broker
            .cluster_nodes()
            .into_iter()
            // A node the failure detector has not judged yet (just joined) is asked too.
            .filter(|(id, _)| *id != self.node_id && states.get(id) != Some(&PeerState::Down))
            .map(|(_, node)| node)
            .collect();
        let request = CommandRequest {
            command: COMMAND.into(),
            args: vec![user.to_owned()],
            vhost: vhost.to_owned(),
            flags: Vec::new(),
        };
        let secret = self.secret.clone();
        Box::pin(async move {
            let asks = peers.into_iter().map(|node| {
                let (request, secret) = (request.clone(), secret.clone());
                async move {
                    let ask = async {
                        let addr = node.cluster_addr.parse().map_err(|e| format!("{e}"))?;
                        let mut client = AdminClient::connect(addr, &secret, ANSWER_WAIT)
                            .await
                            .map_err(|e| e.to_string())?;
                        let outcome = client.command(request).await.map_err(|e| e.to_string())?;
                        parse(&outcome)
                    };
                    match tokio::time::timeout(ANSWER_WAIT, ask).await {
                        Ok(Ok(counts)) => counts,
                        Ok(Err(e)) => {
                            warn!(
                                node = node.name,
                                error = e,
                                "no connection counts from a peer"
                            );
                            LimitCounts::default()
                        }
                        Err(_) => {
                            warn!(node = node.name, "no connection counts from a peer in time");
                            LimitCounts::default()
                        }
                    }
                }
            });
            let mut total = LimitCounts::default();
            for counts in join_all(asks).await {
                total += counts;
            }
            total
        })
    }
}

fn parse(outcome: &CommandOutcome) -> Result<LimitCounts, String> {
    if outcome.exit_code != 0 {
        return Err(outcome.error.clone());
    }
    serde_json::from_str::<Value>(&outcome.json)
        .and_then(serde_json::from_value)
        .map_err(|e| e.to_string())
}
