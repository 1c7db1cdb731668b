//! `LivenessDetector`: failure detection per node, never per Raft group. This node pings
//! every peer every `ping_every`; a peer that has not answered for `down_after` is down,
//! and so at once is one whose address refuses connections after a failed ping (its
//! process is gone: nothing is gained by waiting).
//! When a peer goes down, and on a slow periodic sweep, the detector has this node
//! campaign in the groups that lost their leader (`election.rs`).
//!
//! This is what lets every group run with openraft's timers off: ten thousand idle groups
//! cost nothing, and the cost of detection is one ping per peer, whatever the group count.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;
use tracing::{info, warn};

use super::election::Elections;
use super::pb::cluster::PingRequest;
use super::peers::Peers;
use crate::raft::{NodeId, RaftRegistry};

/// Timers of failure detection and of the elections it triggers.
#[derive(Clone, Debug)]
pub struct LivenessSettings {
    /// How often each peer is pinged.
    pub ping_every: Duration,
    /// How long one ping may take.
    pub ping_timeout: Duration,
    /// A peer not heard from for this long is down.
    pub down_after: Duration,
    /// How often groups with no live leader are looked for (besides at each peer loss).
    pub sweep_every: Duration,
    /// Each campaign waits a random time up to this before starting, so that the
    /// surviving members of a group rarely campaign at the same moment (split votes).
    pub election_jitter: Duration,
    /// How long one campaign waits for a leader before trying again (doubling, up to
    /// eight times this, while it keeps failing).
    pub election_wait: Duration,
    /// Most campaigns of this node in flight at once: when a peer that led thousands of
    /// groups dies, electing them in waves is faster than all at once, when every vote
    /// would time out in the queue.
    pub max_campaigns: usize,
}

impl Default for LivenessSettings {
    fn default() -> Self {
        LivenessSettings {
            ping_every: Duration::from_millis(150),
            ping_timeout: Duration::from_millis(500),
            down_after: Duration::from_secs(1),
            sweep_every: Duration::from_secs(1),
            election_jitter: Duration::from_millis(100),
            election_wait: Duration::from_millis(100),
            max_campaigns: 64,
        }
    }
}

/// Whether a peer answers pings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerState {
    /// Answered within `down_after` (or was added less than `down_after` ago).
    Up,
    /// Silent for `down_after` or more.
    Down,
}

/// The states of all peers, by node id.
pub type PeerStates = BTreeMap<NodeId, PeerState>;

/// The running detector of this node.
pub struct LivenessDetector {
    states: watch::Receiver<PeerStates>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl LivenessDetector {
    /// Start pinging the peers in `peers` (including ones added later) and campaigning in
    /// `registry`'s groups whose leader is down.
    pub fn start(peers: Peers, registry: RaftRegistry, settings: LivenessSettings) -> Self {
        let (states_tx, states) = watch::channel(PeerStates::new());
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(run(peers, registry, settings, states_tx, stop_rx));
        LivenessDetector { states, stop, task }
    }

    /// Every known peer's state.
    pub fn peer_states(&self) -> PeerStates {
        self.states.borrow().clone()
    }

    /// Follows the peers' states.
    pub fn watch(&self) -> watch::Receiver<PeerStates> {
        self.states.clone()
    }

    /// Stop pinging and campaigning.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// What the detector knows of one peer.
struct Tracked {
    last_ok: Instant,
    /// Pings that failed or timed out since the last answer. Silence alone is no proof:
    /// if this node's own runtime stalled, no ping could even be sent.
    failures: u32,
    in_flight: bool,
    state: PeerState,
    incarnation: Option<u64>,
}

/// Failed pings needed (besides `down_after` of silence) to call a peer down.
const FAILURES_FOR_DOWN: u32 = 2;

/// Why a ping failed.
struct PingFailure {
    /// Nothing listens on the peer's address any more: its process is gone (a crash or
    /// `kill -9`), which needs no waiting to be sure of.
    refused: bool,
    message: String,
}

type PingResult = (NodeId, Result<u64, PingFailure>);

/// What one ping's outcome changed.
#[derive(PartialEq, Eq)]
enum Change {
    None,
    /// Up again, or restarted: it may not know the leaders of its groups.
    Back,
    /// Down at once (its address refuses connections).
    Gone,
}

async fn run(
    peers: Peers,
    registry: RaftRegistry,
    settings: LivenessSettings,
    states: watch::Sender<PeerStates>,
    mut stop: watch::Receiver<bool>,
) {
    let mut elections = Elections::new(registry.clone(), states.subscribe(), settings.clone());
    let (acks, mut ack_rx) = mpsc::unbounded_channel::<PingResult>();
    let mut tracked: HashMap<NodeId, Tracked> = HashMap::new();
    let mut tick = tokio::time::interval(settings.ping_every);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut next_sweep = Instant::now() + settings.sweep_every;
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            Some((node, result)) = ack_rx.recv() => {
                if heard(&registry, &mut tracked, node, result) {
                    publish(&tracked, &states);
                    elections.sweep();
                }
            }
            _ = tick.tick() => {
                // Answers that arrived while this task waited count before any verdict.
                while let Ok((node, result)) = ack_rx.try_recv() {
                    if heard(&registry, &mut tracked, node, result) {
                        next_sweep = Instant::now();
                    }
                }
                let now = Instant::now();
                let addresses = peers.addresses();
                tracked.retain(|node, _| addresses.contains_key(node));
                let mut newly_down = false;
                for &node in addresses.keys() {
                    let peer = tracked.entry(node).or_insert(Tracked {
                        last_ok: now,
                        failures: 0,
                        in_flight: false,
                        state: PeerState::Up,
                        incarnation: None,
                    });
                    if peer.state == PeerState::Up
                        && now.duration_since(peer.last_ok) >= settings.down_after
                        && peer.failures >= FAILURES_FOR_DOWN
                    {
                        warn!(node, silent_ms = now.duration_since(peer.last_ok).as_millis() as u64,
                            "peer is down");
                        peer.state = PeerState::Down;
                        newly_down = true;
                    }
                    if !peer.in_flight {
                        peer.in_flight = true;
                        tokio::spawn(ping(peers.clone(), node, settings.ping_timeout, acks.clone()));
                    }
                }
                publish(&tracked, &states);
                if newly_down || now >= next_sweep {
                    next_sweep = now + settings.sweep_every;
                    elections.sweep();
                }
            }
        }
    }
}

/// Every tracked peer's state, to the watchers (when it changed).
fn publish(tracked: &HashMap<NodeId, Tracked>, states: &watch::Sender<PeerStates>) {
    let current: PeerStates = tracked.iter().map(|(&n, p)| (n, p.state)).collect();
    states.send_if_modified(|s| {
        let changed = *s != current;
        *s = current;
        changed
    });
}

/// A ping's outcome for a peer still tracked; a peer that is back hears from the leaders.
/// Returns true when the peer has just gone down.
fn heard(
    registry: &RaftRegistry,
    tracked: &mut HashMap<NodeId, Tracked>,
    node: NodeId,
    result: Result<u64, PingFailure>,
) -> bool {
    let Some(peer) = tracked.get_mut(&node) else {
        return false;
    };
    match record(node, peer, result) {
        Change::Back => {
            tokio::spawn(announce_leaders(registry.clone(), node));
            false
        }
        Change::Gone => true,
        Change::None => false,
    }
}

/// Apply one ping's outcome to what is known of the peer.
fn record(node: NodeId, peer: &mut Tracked, result: Result<u64, PingFailure>) -> Change {
    peer.in_flight = false;
    match result {
        Ok(incarnation) => {
            let mut back = false;
            peer.last_ok = Instant::now();
            peer.failures = 0;
            if peer.state == PeerState::Down {
                info!(node, "peer is up");
                peer.state = PeerState::Up;
                back = true;
            }
            if peer.incarnation.is_some_and(|i| i != incarnation) {
                info!(node, "peer restarted");
                back = true;
            }
            peer.incarnation = Some(incarnation);
            if back {
                Change::Back
            } else {
                Change::None
            }
        }
        Err(e) => {
            peer.failures += 1;
            tracing::debug!(node, error = %e.message, refused = e.refused, "ping failed");
            if e.refused && peer.state == PeerState::Up {
                warn!(node, "peer is down (its address refuses connections)");
                peer.state = PeerState::Down;
                return Change::Gone;
            }
            Change::None
        }
    }
}

/// A peer is back: in every group this node leads and the peer is a member of, send a
/// heartbeat, so the peer learns its leader at once instead of campaigning (idle groups
/// send nothing by themselves).
async fn announce_leaders(registry: RaftRegistry, node: NodeId) {
    for group in registry.running_groups() {
        let Some(handle) = registry.group(group) else {
            continue;
        };
        if !handle.is_leader() {
            continue;
        }
        let status = handle.status();
        if status.voters.contains(&node) || status.learners.contains(&node) {
            let _ = handle.trigger_heartbeat().await;
        }
    }
}

/// Ping `node` once; report its incarnation or why not.
async fn ping(
    peers: Peers,
    node: NodeId,
    timeout: Duration,
    acks: mpsc::UnboundedSender<PingResult>,
) {
    let result = async {
        let mut client = peers
            .liveness_client(node)
            .ok_or_else(|| "no address".to_string())?;
        let mut request = tonic::Request::new(PingRequest {
            from_node: peers.me(),
        });
        request.set_timeout(timeout);
        let reply = tokio::time::timeout(timeout, client.ping(request))
            .await
            .map_err(|_| format!("no answer within {timeout:?}"))?
            .map_err(|s| format!("{:?}: {}", s.code(), s.message()))?
            .into_inner();
        if reply.node_id != node {
            return Err(format!(
                "the address of node {node} answers as node {}",
                reply.node_id
            ));
        }
        Ok(reply.incarnation)
    }
    .await;
    let result = match result {
        Ok(incarnation) => Ok(incarnation),
        Err(message) => Err(PingFailure {
            refused: refuses_connections(&peers, node).await,
            message,
        }),
    };
    let _ = acks.send((node, result));
}

/// Whether the peer's cluster address refuses a TCP connection: its process has exited
/// (a paused or overloaded peer still accepts, or times out).
async fn refuses_connections(peers: &Peers, node: NodeId) -> bool {
    let Some(addr) = peers.addresses().get(&node).copied() else {
        return false;
    };
    let connect = tokio::net::TcpStream::connect(addr);
    matches!(
        tokio::time::timeout(Duration::from_millis(200), connect).await,
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused
    )
}
