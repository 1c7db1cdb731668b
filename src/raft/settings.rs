//! `RaftSettings`: the knobs of the replication layer, and the per-group openraft `Config`
//! derived from them, tuned so that an idle group costs nothing.

use std::time::Duration;

use openraft::{Config, SnapshotPolicy};

use super::error::RaftError;
use super::types::GroupId;

/// Settings shared by every group of a node.
#[derive(Clone, Debug)]
pub struct RaftSettings {
    /// Take a snapshot (and purge the log up to it) every this many applied entries.
    pub snapshot_every: u64,
    /// Entries kept in the log behind the latest snapshot (for lagging followers).
    pub keep_after_snapshot: u64,
    /// How long `start_group` may wait for the group to lead and catch up.
    pub start_timeout: Duration,
    /// How long stopping a group may wait for its tasks to drop its storage.
    pub stop_timeout: Duration,
    /// The deadline of a vote or pre-vote RPC, and the leader lease: a follower refuses to
    /// vote for another candidate until this long after it last heard from its leader.
    /// A dead leader is replaced no sooner than this after its last message, so it bounds
    /// the failover pause from below (the failure detector calls a crashed node down
    /// within a ping period); too short, and votes time out when a node that led
    /// thousands of groups dies (campaigns are then retried, in waves).
    pub election_timeout: Duration,
}

impl Default for RaftSettings {
    fn default() -> Self {
        RaftSettings {
            snapshot_every: 20_000,
            keep_after_snapshot: 100,
            start_timeout: Duration::from_secs(10),
            stop_timeout: Duration::from_secs(10),
            election_timeout: Duration::from_millis(250),
        }
    }
}

impl RaftSettings {
    /// The openraft config of `group`.
    ///
    /// No tick at all: no per-group heartbeat, election timer or lease timer, so an idle
    /// group never wakes up. Elections are triggered explicitly (at start for a
    /// single-member group; by the node's failure detector once groups have peers).
    pub(crate) fn openraft_config(&self, group: GroupId) -> Result<Config, RaftError> {
        // With timers off openraft uses the election timeout only as the vote RPCs' deadline
        // (the minimum) and as the leader lease (the maximum). Its default, 150 ms, is too
        // short for a node that starts a thousand groups at once: every vote times out.
        let election_ms = (self.election_timeout.as_millis() as u64).max(100);
        let config = Config {
            cluster_name: format!("group-{group}"),
            enable_tick: false,
            enable_heartbeat: false,
            enable_elect: false,
            election_timeout_min: election_ms,
            election_timeout_max: election_ms + 1,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(self.snapshot_every.max(1)),
            max_in_snapshot_log_to_keep: self.keep_after_snapshot,
            purge_batch_size: 1,
            // Bounded queues are allocated lazily, but keep them modest per group.
            api_channel_size: Some(4096),
            notification_channel_size: Some(4096),
            ..Config::default()
        };
        config
            .validate()
            .map_err(|e| RaftError::Raft(format!("invalid config: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_validates_and_disables_timers() {
        let config = RaftSettings::default().openraft_config(7).unwrap();
        assert!(!config.enable_tick && !config.enable_heartbeat && !config.enable_elect);
        assert_eq!(
            config.snapshot_policy,
            SnapshotPolicy::LogsSinceLast(20_000)
        );
    }
}
