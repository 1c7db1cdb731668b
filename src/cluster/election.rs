//! `Elections`: campaigning in the groups whose leader is gone. openraft's election timers
//! are off (idle groups cost nothing), so the node's failure detector decides when a group
//! needs a new leader: when its leader is a peer that is down, or when it knows no leader
//! at all (a new group whose first campaign failed, or every member restarted).
//!
//! Only voters campaign, and only when it is needed, because with the timers off a
//! follower's leader lease lapses while its group is idle: any campaign would win and
//! depose a healthy leader. So a group whose leader is a down peer campaigns at once, but
//! one that merely knows no leader campaigns only once it has been leaderless for a sweep
//! period in the same term (an election that moves the term is still going on). A campaign
//! starts after a random delay, uses pre-vote, and retries with exponential backoff until
//! a live leader is known, the node stops voting in the group, or the group stops.
//!
//! # Followers' commit index
//! No heartbeat is needed after writes go idle: openraft (0.10.0-alpha.37) sends an
//! entry-less AppendEntries carrying the new commit index whenever the leader's commit
//! advances and no entries are pending (`replication/stream_state.rs`, "committed_rx
//! changed"), so followers apply the last write of a burst without any timer.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use tokio::sync::{watch, Semaphore};
use tracing::{debug, info};

use super::liveness::{LivenessSettings, PeerState, PeerStates};
use crate::raft::{GroupHandle, GroupId, NodeId, RaftRegistry};

/// A campaign waits at most this many times `election_wait` between attempts.
const MAX_BACKOFF_FACTOR: u32 = 8;

/// Campaigns of this node's groups.
pub(crate) struct Elections {
    registry: RaftRegistry,
    states: watch::Receiver<PeerStates>,
    settings: LivenessSettings,
    /// Groups with a campaign running, so a sweep does not start a second one.
    active: Arc<Mutex<HashSet<GroupId>>>,
    /// Groups without a leader: their term, and since when they are leaderless in it.
    leaderless: HashMap<GroupId, (u64, Instant)>,
    /// Bounds the campaigns in flight (`LivenessSettings::max_campaigns`).
    permits: Arc<Semaphore>,
}

impl Elections {
    pub(crate) fn new(
        registry: RaftRegistry,
        states: watch::Receiver<PeerStates>,
        settings: LivenessSettings,
    ) -> Self {
        Elections {
            registry,
            states,
            active: Arc::default(),
            leaderless: HashMap::new(),
            permits: Arc::new(Semaphore::new(settings.max_campaigns.max(1))),
            settings,
        }
    }

    /// Start a campaign in every running group here in which this node votes and whose
    /// leader is a down peer, or that has had no leader for `sweep_every` in one term
    /// (skipping groups that already have a campaign running).
    pub(crate) fn sweep(&mut self) {
        let me = self.registry.node_id();
        let mut leaderless = HashMap::new();
        let mut started = 0usize;
        for group in self.registry.running_groups() {
            let Some(handle) = self.registry.group(group) else {
                continue;
            };
            let due = match handle.current_leader() {
                Some(leader) => leader != me && is_down(leader, &self.states.borrow()),
                None => {
                    // Also a candidate here: with timers off a failed election never ends.
                    let term = handle.status().term;
                    let since = match self.leaderless.get(&group) {
                        Some(&(seen, since)) if seen == term => since,
                        _ => Instant::now(),
                    };
                    leaderless.insert(group, (term, since));
                    since.elapsed() >= self.settings.sweep_every
                }
            };
            if !due || !handle.is_voter() || !self.lock_active().insert(group) {
                continue;
            }
            started += 1;
            let campaign = Campaign {
                handle,
                states: self.states.clone(),
                settings: self.settings.clone(),
                active: self.active.clone(),
                permits: self.permits.clone(),
            };
            tokio::spawn(campaign.run());
        }
        self.leaderless = leaderless;
        if started > 0 {
            info!(
                groups = started,
                "campaigning in groups without a live leader"
            );
        }
    }

    fn lock_active(&self) -> std::sync::MutexGuard<'_, HashSet<GroupId>> {
        self.active.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Whether `node` is a peer known to be down.
fn is_down(node: NodeId, states: &PeerStates) -> bool {
    states.get(&node) == Some(&PeerState::Down)
}

/// Whether a group whose leader (as known here) is `leader` needs a new one.
fn needs_leader(leader: Option<NodeId>, states: &PeerStates) -> bool {
    leader.is_none_or(|node| is_down(node, states))
}

/// One group's campaign on this node.
struct Campaign {
    handle: GroupHandle,
    states: watch::Receiver<PeerStates>,
    settings: LivenessSettings,
    active: Arc<Mutex<HashSet<GroupId>>>,
    permits: Arc<Semaphore>,
}

impl Campaign {
    async fn run(self) {
        let group = self.handle.group();
        let me = self.handle.status().node;
        let mut attempts = 0u32;
        loop {
            tokio::time::sleep(random_up_to(self.settings.election_jitter)).await;
            let leader = self.handle.current_leader();
            let settled = leader == Some(me) || !needs_leader(leader, &self.states.borrow());
            if settled || !self.handle.is_voter() {
                break;
            }
            let Ok(_permit) = self.permits.acquire().await else {
                break;
            };
            let leader = self.handle.current_leader();
            if leader == Some(me) || !needs_leader(leader, &self.states.borrow()) {
                break;
            }
            attempts += 1;
            if let Err(e) = self.handle.trigger_elect(true).await {
                debug!(group, error = %e, "campaign ended: group stopped");
                break;
            }
            let mut watch = self.handle.leader_watch();
            let states = self.states.clone();
            // Back off: under load votes are slow, and retrying at a fixed pace only adds to it.
            let factor = (1u32 << (attempts - 1).min(3)).min(MAX_BACKOFF_FACTOR);
            let wait =
                self.settings.election_wait * factor + random_up_to(self.settings.election_jitter);
            let _ = tokio::time::timeout(
                wait,
                watch.wait_for(|l| !needs_leader(*l, &states.borrow())),
            )
            .await;
        }
        debug!(group, attempts, leader = ?self.handle.current_leader(), "campaign done");
        self.active
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&group);
    }
}

fn random_up_to(max: Duration) -> Duration {
    let max_ms = max.as_millis() as u64;
    Duration::from_millis(rand::rng().random_range(0..=max_ms))
}
