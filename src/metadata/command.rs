//! Metadata commands, replies and effects. Commands are an on-disk format: variants are
//! only ever appended, never reordered or changed.

use amq_protocol::types::FieldTable;
use serde::{Deserialize, Serialize};

use super::access::Limits;
use super::definitions::Definitions;
use super::{Destination, ExchangeKind, OwnerId, Policy, QueueRecord};
use crate::amqp::ReplyCode;

/// A change to the metadata.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum MetaCommand {
    /// First command of a fresh cluster: vhost "/", the default user with full rights.
    Bootstrap {
        default_user: String,
        password_hash: String,
    },
    AddVhost {
        name: String,
    },
    DeleteVhost {
        name: String,
    },
    AddUser {
        name: String,
        password_hash: String,
        tags: Vec<String>,
    },
    DeleteUser {
        name: String,
    },
    ChangePassword {
        name: String,
        password_hash: String,
    },
    SetUserTags {
        name: String,
        tags: Vec<String>,
    },
    SetPermissions {
        user: String,
        vhost: String,
        configure: String,
        write: String,
        read: String,
    },
    ClearPermissions {
        user: String,
        vhost: String,
    },
    DeclareExchange {
        vhost: String,
        name: String,
        kind: ExchangeKind,
        durable: bool,
        auto_delete: bool,
        internal: bool,
        arguments: FieldTable,
    },
    DeleteExchange {
        vhost: String,
        name: String,
        if_unused: bool,
    },
    DeclareQueue {
        vhost: String,
        name: String,
        durable: bool,
        exclusive_owner: Option<OwnerId>,
        auto_delete: bool,
        arguments: FieldTable,
        node: u64,
    },
    DeleteQueue {
        vhost: String,
        name: String,
    },
    Bind {
        vhost: String,
        source: String,
        destination: Destination,
        routing_key: String,
        arguments: FieldTable,
    },
    Unbind {
        vhost: String,
        source: String,
        destination: Destination,
        routing_key: String,
        arguments: FieldTable,
    },
    /// The exclusive queues of a closed connection.
    DeleteQueuesOfOwner {
        owner: OwnerId,
    },
    /// Non-durable (and exclusive) queues die with their node.
    DeleteTransientQueuesOfNode {
        node: u64,
    },
    /// Non-durable exchanges (and their bindings) do not survive a restart of the whole
    /// cluster, as in RabbitMQ.
    DeleteTransientExchanges,
    /// Add a node to the cluster, or change its name or address.
    SetNode {
        id: u64,
        name: String,
        cluster_addr: String,
    },
    /// Remove a node: it leaves every queue group it was a member of, its transient and
    /// exclusive queues are deleted.
    RemoveNode {
        id: u64,
    },
    /// A quorum queue's members after `warrenctl queues add_member / delete_member /
    /// grow / shrink` (its Raft group's membership changes alongside).
    SetQueueMembers {
        vhost: String,
        name: String,
        members: Vec<u64>,
    },
    /// `rabbitmqctl set_policy` (checked by `Policy::validate` before it is proposed).
    SetPolicy {
        vhost: String,
        name: String,
        policy: Policy,
    },
    /// `rabbitmqctl clear_policy`.
    ClearPolicy {
        vhost: String,
        name: String,
    },
    /// A mirrored classic queue's members, as its `ha-mode` policy wants them (its Raft
    /// group's membership changes alongside), as `SetQueueMembers` for quorum queues.
    SetMirrorMembers {
        vhost: String,
        name: String,
        members: Vec<u64>,
    },
    /// `rabbitmqctl set_topic_permissions`.
    SetTopicPermissions {
        user: String,
        vhost: String,
        exchange: String,
        write: String,
        read: String,
    },
    /// `rabbitmqctl clear_topic_permissions`: one exchange's, or (`None`) all of the
    /// user's in the vhost.
    ClearTopicPermissions {
        user: String,
        vhost: String,
        exchange: Option<String>,
    },
    /// `rabbitmqctl set_vhost_limits` (replaces the vhost's limits; empty clears them).
    SetVhostLimits {
        vhost: String,
        limits: Limits,
    },
    /// `rabbitmqctl set_user_limits` (merged into the user's limits).
    SetUserLimits {
        user: String,
        limits: Limits,
    },
    /// `rabbitmqctl clear_user_limits USER NAME|all` (`None` is all).
    ClearUserLimits {
        user: String,
        limit: Option<String>,
    },
    /// `rabbitmqctl import_definitions` (and a node's `load_definitions` at boot): checked
    /// whole, then applied whole or not at all, merged into what exists as RabbitMQ
    /// merges it; durable queues are created on `node`, as if declared there.
    ImportDefinitions {
        definitions: Definitions,
        node: u64,
    },
    /// `command`, proposed under the request id `id` (random, chosen by the proposer and
    /// kept across its retries): applied once, and a retry of an id applied recently
    /// gets the first answer and changes nothing (`requests.rs`).
    Request {
        id: u128,
        command: Box<MetaCommand>,
    },
    /// `rabbitmqctl set_cluster_name` (and `PUT /api/cluster-name`): the name the cluster
    /// reports from then on, instead of its first node's.
    SetClusterName {
        name: String,
    },
}

impl MetaCommand {
    /// Whether applying this changes who may do what (users, vhosts, permissions,
    /// limits): open connections re-read their access then.
    pub fn changes_access(&self) -> bool {
        match self {
            MetaCommand::Request { command, .. } => command.changes_access(),
            cmd => matches!(
                cmd,
                MetaCommand::Bootstrap { .. }
                    | MetaCommand::AddVhost { .. }
                    | MetaCommand::DeleteVhost { .. }
                    | MetaCommand::AddUser { .. }
                    | MetaCommand::DeleteUser { .. }
                    | MetaCommand::ChangePassword { .. }
                    | MetaCommand::SetUserTags { .. }
                    | MetaCommand::SetPermissions { .. }
                    | MetaCommand::ClearPermissions { .. }
                    | MetaCommand::SetTopicPermissions { .. }
                    | MetaCommand::ClearTopicPermissions { .. }
                    | MetaCommand::SetVhostLimits { .. }
                    | MetaCommand::SetUserLimits { .. }
                    | MetaCommand::ClearUserLimits { .. }
                    | MetaCommand::ImportDefinitions { .. }
            ),
        }
    }
}

/// A refusal, with RabbitMQ's code and full text (`NOT_FOUND - ...`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaError {
    pub code: ReplyCode,
    pub text: String,
}

impl MetaError {
    pub fn new(code: ReplyCode, text: impl std::fmt::Display) -> Self {
        MetaError {
            code,
            text: format!("{} - {}", code.name(), text),
        }
    }
}

/// The machine's answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum MetaReply {
    Ok,
    ExchangeDeclared {
        created: bool,
    },
    QueueDeclared {
        record: QueueRecord,
        created: bool,
    },
    Error(MetaError),
    /// Definitions imported; what was left out as RabbitMQ leaves it out (a binding of an
    /// object the file does not define), each with why.
    DefinitionsImported {
        skipped: Vec<String>,
    },
}

/// What a node must do after a command was applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetaEffect {
    QueueCreated {
        vhost: String,
        name: String,
        group_id: u64,
    },
    /// Stop the queue's actor and, when `group_id != 0`, remove its Raft group.
    QueueDeleted {
        vhost: String,
        name: String,
        group_id: u64,
    },
    /// A queue group's recorded members changed (a node left the cluster, or an operator
    /// added or removed one).
    QueueMembersChanged {
        vhost: String,
        name: String,
        group_id: u64,
        members: Vec<u64>,
    },
}
