//! The metadata state and its read functions (the node's local read model).

use std::collections::{BTreeMap, BTreeSet};

use amq_protocol::types::FieldTable;
use serde::{Deserialize, Serialize};

use super::access::{Limits, TopicPermission};
use super::policy::{self, Policy, PolicySet};
use super::requests::RecentRequests;
use super::{check_password_hash, ExchangeKind, RouteResult};
use crate::routing::RoutingTable;

/// The connection that owns an exclusive queue: (node id, connection id).
pub type OwnerId = (u64, u64);

/// `x-queue-type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum QueueType {
    Classic,
    Quorum,
    Stream,
}

impl QueueType {
    pub fn as_str(self) -> &'static str {
        match self {
            QueueType::Classic => "classic",
            QueueType::Quorum => "quorum",
            QueueType::Stream => "stream",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub password_hash: String,
    pub tags: Vec<String>,
}

/// configure / write / read regular expressions, as RabbitMQ's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Permissions {
    pub configure: String,
    pub write: String,
    pub read: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExchangeRecord {
    pub name: String,
    pub kind: ExchangeKind,
    pub durable: bool,
    pub auto_delete: bool,
    pub internal: bool,
    pub arguments: FieldTable,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QueueRecord {
    pub name: String,
    pub durable: bool,
    pub exclusive_owner: Option<OwnerId>,
    pub auto_delete: bool,
    pub arguments: FieldTable,
    pub queue_type: QueueType,
    /// Raft group of a durable queue; 0 for transient queues (no group).
    pub group_id: u64,
    pub members: Vec<u64>,
    pub leader_node: u64,
}

impl QueueRecord {
    /// A non-durable or exclusive queue lives in memory on its node and dies with it.
    pub fn dies_with(&self, node: u64) -> bool {
        (!self.durable || self.exclusive_owner.is_some()) && self.leader_node == node
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct VHost {
    pub exchanges: BTreeMap<String, ExchangeRecord>,
    pub queues: BTreeMap<String, QueueRecord>,
    pub routing: RoutingTable,
}

/// A node of the cluster: its name (`warren@HOST`, unique) and the address of its
/// cluster (gRPC) listener.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterNode {
    pub name: String,
    pub cluster_addr: String,
}

/// The whole replicated metadata.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MetaState {
    pub(super) vhosts: BTreeMap<String, VHost>,
    pub(super) users: BTreeMap<String, User>,
    /// (user, vhost) -> permissions.
    pub(super) permissions: BTreeMap<(String, String), Permissions>,
    /// Last queue group id handed out (the metadata group is 0).
    pub(super) last_group_id: u64,
    /// The cluster's nodes by Raft node id (snapshot format 2 and later).
    pub(super) nodes: BTreeMap<u64, ClusterNode>,
    /// (vhost, policy name) -> policy (snapshot format 3 and later).
    pub(super) policies: BTreeMap<(String, String), Policy>,
    /// (user, vhost, exchange) -> topic permission (snapshot format 4 and later).
    pub(super) topic_permissions: BTreeMap<(String, String, String), TopicPermission>,
    /// vhost -> its limits (format 4 and later).
    pub(super) vhost_limits: BTreeMap<String, Limits>,
    /// user -> their limits (format 4 and later).
    pub(super) user_limits: BTreeMap<String, Limits>,
    /// The answers of the last requests, for retries (format 5 and later).
    pub(super) requests: RecentRequests,
    /// The name set with `set_cluster_name`, if any (format 6 and later).
    pub(super) cluster_name: Option<String>,
}

/// Snapshot format 5: [`MetaState`] before it kept a cluster name.
#[derive(Deserialize)]
struct MetaStateV5 {
    vhosts: BTreeMap<String, VHost>,
    users: BTreeMap<String, User>,
    permissions: BTreeMap<(String, String), Permissions>,
    last_group_id: u64,
    nodes: BTreeMap<u64, ClusterNode>,
    policies: BTreeMap<(String, String), Policy>,
    topic_permissions: BTreeMap<(String, String, String), TopicPermission>,
    vhost_limits: BTreeMap<String, Limits>,
    user_limits: BTreeMap<String, Limits>,
    requests: RecentRequests,
}

/// Snapshot format 4: [`MetaState`] before it kept the answers of recent requests.
#[derive(Deserialize)]
struct MetaStateV4 {
    vhosts: BTreeMap<String, VHost>,
    users: BTreeMap<String, User>,
    permissions: BTreeMap<(String, String), Permissions>,
    last_group_id: u64,
    nodes: BTreeMap<u64, ClusterNode>,
    policies: BTreeMap<(String, String), Policy>,
    topic_permissions: BTreeMap<(String, String, String), TopicPermission>,
    vhost_limits: BTreeMap<String, Limits>,
    user_limits: BTreeMap<String, Limits>,
}

/// Snapshot format 3: [`MetaState`] before topic permissions and limits.
#[derive(Deserialize)]
struct MetaStateV3 {
    vhosts: BTreeMap<String, VHost>,
    users: BTreeMap<String, User>,
    permissions: BTreeMap<(String, String), Permissions>,
    last_group_id: u64,
    nodes: BTreeMap<u64, ClusterNode>,
    policies: BTreeMap<(String, String), Policy>,
}

/// Snapshot format 2: [`MetaState`] before policies.
#[derive(Deserialize)]
struct MetaStateV2 {
    vhosts: BTreeMap<String, VHost>,
    users: BTreeMap<String, User>,
    permissions: BTreeMap<(String, String), Permissions>,
    last_group_id: u64,
    nodes: BTreeMap<u64, ClusterNode>,
}

/// Snapshot format 1: [`MetaState`] before it listed the cluster's nodes.
#[derive(Deserialize)]
struct MetaStateV1 {
    vhosts: BTreeMap<String, VHost>,
    users: BTreeMap<String, User>,
    permissions: BTreeMap<(String, String), Permissions>,
    last_group_id: u64,
}

/// Each older format becomes the next one: what it lacked starts empty.
impl From<MetaStateV1> for MetaStateV2 {
    fn from(v1: MetaStateV1) -> Self {
        MetaStateV2 {
            vhosts: v1.vhosts,
            users: v1.users,
            permissions: v1.permissions,
            last_group_id: v1.last_group_id,
            nodes: BTreeMap::new(),
        }
    }
}

impl From<MetaStateV2> for MetaStateV3 {
    fn from(v2: MetaStateV2) -> Self {
        MetaStateV3 {
            vhosts: v2.vhosts,
            users: v2.users,
            permissions: v2.permissions,
            last_group_id: v2.last_group_id,
            nodes: v2.nodes,
            policies: BTreeMap::new(),
        }
    }
}

impl From<MetaStateV3> for MetaStateV4 {
    fn from(v3: MetaStateV3) -> Self {
        MetaStateV4 {
            vhosts: v3.vhosts,
            users: v3.users,
            permissions: v3.permissions,
            last_group_id: v3.last_group_id,
            nodes: v3.nodes,
            policies: v3.policies,
            topic_permissions: BTreeMap::new(),
            vhost_limits: BTreeMap::new(),
            user_limits: BTreeMap::new(),
        }
    }
}

impl From<MetaStateV4> for MetaStateV5 {
    fn from(v4: MetaStateV4) -> Self {
        MetaStateV5 {
            vhosts: v4.vhosts,
            users: v4.users,
            permissions: v4.permissions,
            last_group_id: v4.last_group_id,
            nodes: v4.nodes,
            policies: v4.policies,
            topic_permissions: v4.topic_permissions,
            vhost_limits: v4.vhost_limits,
            user_limits: v4.user_limits,
            requests: RecentRequests::default(),
        }
    }
}

impl From<MetaStateV5> for MetaState {
    fn from(v5: MetaStateV5) -> Self {
        MetaState {
            vhosts: v5.vhosts,
            users: v5.users,
            permissions: v5.permissions,
            last_group_id: v5.last_group_id,
            nodes: v5.nodes,
            policies: v5.policies,
            topic_permissions: v5.topic_permissions,
            vhost_limits: v5.vhost_limits,
            user_limits: v5.user_limits,
            requests: v5.requests,
            cluster_name: None,
        }
    }
}

/// A snapshot that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("empty metadata snapshot")]
    Empty,
    #[error("metadata snapshot format version {0} is unknown (this build reads 1 to 6)")]
    UnsupportedVersion(u8),
    #[error("undecodable metadata snapshot: {0}")]
    Decode(#[from] postcard::Error),
}

const SNAPSHOT_VERSION: u8 = 6;

impl MetaState {
    pub fn to_snapshot(&self) -> Vec<u8> {
        let mut out = vec![SNAPSHOT_VERSION];
        out.extend(postcard::to_allocvec(self).expect("encode metadata"));
        out
    }

    pub fn from_snapshot(bytes: &[u8]) -> Result<Self, SnapshotError> {
        match bytes.split_first() {
            None => Err(SnapshotError::Empty),
            Some((&SNAPSHOT_VERSION, rest)) => Ok(postcard::from_bytes(rest)?),
            Some((5, rest)) => Ok(postcard::from_bytes::<MetaStateV5>(rest)?.into()),
            Some((4, rest)) => {
                let v4: MetaStateV4 = postcard::from_bytes(rest)?;
                Ok(MetaStateV5::from(v4).into())
            }
            Some((3, rest)) => {
                let v3: MetaStateV3 = postcard::from_bytes(rest)?;
                Ok(MetaStateV5::from(MetaStateV4::from(v3)).into())
            }
            Some((2, rest)) => {
                let v2: MetaStateV2 = postcard::from_bytes(rest)?;
                Ok(MetaStateV5::from(MetaStateV4::from(MetaStateV3::from(v2))).into())
            }
            Some((1, rest)) => {
                let v1: MetaStateV1 = postcard::from_bytes(rest)?;
                let v2 = MetaStateV2::from(v1);
                Ok(MetaStateV5::from(MetaStateV4::from(MetaStateV3::from(v2))).into())
            }
            Some((&v, _)) => Err(SnapshotError::UnsupportedVersion(v)),
        }
    }

    /// The policies of `vhost`, by name.
    pub fn policies<'a>(&'a self, vhost: &'a str) -> impl Iterator<Item = (&'a str, &'a Policy)> {
        self.policies
            .iter()
            .filter(move |((v, _), _)| v == vhost)
            .map(|((_, name), p)| (name.as_str(), p))
    }

    /// The policies of `vhost`, compiled to choose the policy of many of its queues.
    pub fn policy_set<'a>(&'a self, vhost: &'a str) -> PolicySet<'a> {
        PolicySet::new(self.policies(vhost))
    }

    /// The policy that applies to queue `name` of `vhost`, if any.
    pub fn effective_policy<'a>(
        &'a self,
        vhost: &'a str,
        name: &str,
        queue_type: QueueType,
    ) -> Option<&'a Policy> {
        policy::effective(self.policies(vhost), name, queue_type)
    }

    pub fn vhost_exists(&self, vhost: &str) -> bool {
        self.vhosts.contains_key(vhost)
    }

    pub fn vhosts(&self) -> impl Iterator<Item = &str> {
        self.vhosts.keys().map(String::as_str)
    }

    pub fn user(&self, name: &str) -> Option<&User> {
        self.users.get(name)
    }

    /// Every user, by name.
    pub fn users(&self) -> impl Iterator<Item = (&str, &User)> {
        self.users.iter().map(|(n, u)| (n.as_str(), u))
    }

    /// Every grant as (user, vhost, permissions), by user then vhost.
    pub fn all_permissions(&self) -> impl Iterator<Item = (&str, &str, &Permissions)> {
        self.permissions
            .iter()
            .map(|((u, v), p)| (u.as_str(), v.as_str(), p))
    }

    pub fn check_password(&self, user: &str, password: &str) -> bool {
        self.users
            .get(user)
            .is_some_and(|u| check_password_hash(&u.password_hash, password))
    }

    pub fn permissions(&self, user: &str, vhost: &str) -> Option<&Permissions> {
        self.permissions.get(&(user.to_owned(), vhost.to_owned()))
    }

    /// The exchanges of `vhost`, by name.
    pub fn exchanges(&self, vhost: &str) -> impl Iterator<Item = &ExchangeRecord> {
        self.vhosts
            .get(vhost)
            .into_iter()
            .flat_map(|v| v.exchanges.values())
    }

    pub fn exchange(&self, vhost: &str, name: &str) -> Option<&ExchangeRecord> {
        self.vhosts.get(vhost)?.exchanges.get(name)
    }

    pub fn queue(&self, vhost: &str, name: &str) -> Option<&QueueRecord> {
        self.vhosts.get(vhost)?.queues.get(name)
    }

    pub fn queues(&self, vhost: &str) -> impl Iterator<Item = &QueueRecord> {
        self.vhosts
            .get(vhost)
            .into_iter()
            .flat_map(|v| v.queues.values())
    }

    /// Every queue with its vhost.
    pub fn all_queues(&self) -> impl Iterator<Item = (&str, &QueueRecord)> {
        self.vhosts
            .iter()
            .flat_map(|(name, v)| v.queues.values().map(move |q| (name.as_str(), q)))
    }

    pub fn has_transient_queues_of(&self, node: u64) -> bool {
        self.all_queues().any(|(_, q)| q.dies_with(node))
    }

    /// The cluster's nodes, by Raft node id.
    pub fn nodes(&self) -> &BTreeMap<u64, ClusterNode> {
        &self.nodes
    }

    /// The name `set_cluster_name` gave the cluster, if any.
    pub fn cluster_name(&self) -> Option<&str> {
        self.cluster_name.as_deref()
    }

    /// The id of the node called `name`.
    pub fn node_id(&self, name: &str) -> Option<u64> {
        self.nodes
            .iter()
            .find(|(_, n)| n.name == name)
            .map(|(id, _)| *id)
    }

    pub fn has_transient_exchanges(&self) -> bool {
        self.vhosts
            .values()
            .any(|v| v.exchanges.values().any(|x| !x.durable))
    }

    pub fn has_queues_of_owner(&self, owner: OwnerId) -> bool {
        self.all_queues()
            .any(|(_, q)| q.exclusive_owner == Some(owner))
    }

    pub fn bindings(&self, vhost: &str) -> impl Iterator<Item = &crate::routing::Binding> {
        self.vhosts
            .get(vhost)
            .into_iter()
            .flat_map(|v| v.routing.all_bindings())
    }

    pub fn route(
        &self,
        vhost: &str,
        exchange: &str,
        routing_key: &str,
        headers: Option<&FieldTable>,
    ) -> RouteResult {
        self.route_keys(vhost, exchange, std::iter::once(routing_key), headers)
    }

    /// Route with several routing keys (`CC` / `BCC`), as `RoutingTable::route_keys`.
    pub fn route_keys<'k>(
        &self,
        vhost: &str,
        exchange: &str,
        keys: impl Iterator<Item = &'k str> + Clone,
        headers: Option<&FieldTable>,
    ) -> RouteResult {
        match self.vhosts.get(vhost) {
            Some(v) => v.routing.route_keys(exchange, keys, headers),
            None => RouteResult::default(),
        }
    }

    /// Names of queues matching a predicate (used by bulk deletes).
    pub(super) fn queues_where(
        &self,
        keep: impl Fn(&QueueRecord) -> bool,
    ) -> BTreeSet<(String, String)> {
        self.all_queues()
            .filter(|(_, q)| keep(q))
            .map(|(v, q)| (v.to_owned(), q.name.clone()))
            .collect()
    }
}
