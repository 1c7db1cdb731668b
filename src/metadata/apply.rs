//! `MetaState::apply`: every metadata command with RabbitMQ's checks and reply texts.

use amq_protocol::types::FieldTable;

use super::args::{
    assert_equivalence, assert_queue_equivalence, check_dlx_type, validate_queue_args,
    COMPARED_EXCHANGE_ARGS,
};
use super::placement::place;
use super::state::{
    ClusterNode, ExchangeRecord, MetaState, Permissions, QueueRecord, QueueType, User, VHost,
};
use super::{ApplyMeta, Destination, ExchangeKind, MetaCommand, MetaEffect, MetaError, MetaReply};
use crate::amqp::field::str_value;
use crate::amqp::ReplyCode;
use crate::routing::{Binding, ExchangeRoute};

type Applied = (MetaReply, Vec<MetaEffect>);

fn err(code: ReplyCode, text: impl std::fmt::Display) -> Applied {
    (MetaReply::Error(MetaError::new(code, text)), Vec::new())
}

fn ok() -> Applied {
    (MetaReply::Ok, Vec::new())
}

/// The exchanges RabbitMQ predeclares in every vhost.
const PREDECLARED: &[(&str, ExchangeKind, bool)] = &[
    ("", ExchangeKind::Direct, false),
    ("amq.direct", ExchangeKind::Direct, false),
    ("amq.fanout", ExchangeKind::Fanout, false),
    ("amq.topic", ExchangeKind::Topic, false),
    ("amq.headers", ExchangeKind::Headers, false),
    ("amq.match", ExchangeKind::Headers, false),
    ("amq.rabbitmq.trace", ExchangeKind::Topic, true),
];

impl MetaState {
    /// Apply one committed command. Deterministic: same state + command = same result.
    pub fn apply(&mut self, meta: ApplyMeta, cmd: MetaCommand) -> (MetaReply, Vec<MetaEffect>) {
        match cmd {
            MetaCommand::Request { id, command } => {
                if let Some(first) = self.requests.answer(id) {
                    return (first.clone(), Vec::new());
                }
                let (reply, effects) = self.apply(meta, *command);
                self.requests.record(id, reply.clone());
                (reply, effects)
            }
            MetaCommand::Bootstrap {
                default_user,
                password_hash,
            } => {
                self.add_vhost("/");
                self.users.insert(
                    default_user.clone(),
                    User {
                        password_hash,
                        tags: vec!["administrator".into()],
                    },
                );
                self.permissions.insert(
                    (default_user, "/".into()),
                    Permissions {
                        configure: ".*".into(),
                        write: ".*".into(),
                        read: ".*".into(),
                    },
                );
                ok()
            }
            cmd @ (MetaCommand::AddVhost { .. }
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
            | MetaCommand::ClearUserLimits { .. }) => self.apply_access(cmd),
            MetaCommand::DeclareExchange {
                vhost,
                name,
                kind,
                durable,
                auto_delete,
                internal,
                arguments,
            } => self.declare_exchange(
                &vhost,
                name,
                kind,
                durable,
                auto_delete,
                internal,
                arguments,
            ),
            MetaCommand::DeleteExchange {
                vhost,
                name,
                if_unused,
            } => self.delete_exchange(&vhost, &name, if_unused),
            MetaCommand::DeclareQueue {
                vhost,
                name,
                durable,
                exclusive_owner,
                auto_delete,
                arguments,
                node,
            } => self.declare_queue(
                &vhost,
                name,
                durable,
                exclusive_owner,
                auto_delete,
                arguments,
                node,
            ),
            MetaCommand::DeleteQueue { vhost, name } => {
                let effects = self.delete_queue(&vhost, &name).into_iter().collect();
                (MetaReply::Ok, effects)
            }
            MetaCommand::Bind {
                vhost,
                source,
                destination,
                routing_key,
                arguments,
            } => self.bind(
                &vhost,
                Binding {
                    source,
                    destination,
                    routing_key,
                    arguments,
                },
                true,
            ),
            MetaCommand::Unbind {
                vhost,
                source,
                destination,
                routing_key,
                arguments,
            } => self.bind(
                &vhost,
                Binding {
                    source,
                    destination,
                    routing_key,
                    arguments,
                },
                false,
            ),
            MetaCommand::DeleteQueuesOfOwner { owner } => {
                let effects = self.delete_queues_where(|q| q.exclusive_owner == Some(owner));
                (MetaReply::Ok, effects)
            }
            MetaCommand::DeleteTransientExchanges => {
                for vhost in self.vhosts.values_mut() {
                    let doomed: Vec<String> = vhost
                        .exchanges
                        .iter()
                        .filter(|(_, x)| !x.durable)
                        .map(|(name, _)| name.clone())
                        .collect();
                    for name in doomed {
                        Self::drop_exchange(vhost, &name);
                    }
                }
                ok()
            }
            MetaCommand::SetNode {
                id,
                name,
                cluster_addr,
            } => {
                if let Some(other) = self.node_id(&name).filter(|&other| other != id) {
                    return err(
                        ReplyCode::PreconditionFailed,
                        format!("node name '{name}' is already used by node {other}"),
                    );
                }
                self.nodes.insert(id, ClusterNode { name, cluster_addr });
                ok()
            }
            MetaCommand::RemoveNode { id } => self.remove_node(id),
            MetaCommand::SetQueueMembers {
                vhost,
                name,
                members,
            } => self.set_queue_members(&vhost, &name, members, QueueType::Quorum),
            MetaCommand::SetMirrorMembers {
                vhost,
                name,
                members,
            } => self.set_queue_members(&vhost, &name, members, QueueType::Classic),
            MetaCommand::SetPolicy {
                vhost,
                name,
                policy,
            } => {
                if !self.vhosts.contains_key(&vhost) {
                    return err(ReplyCode::NotFound, format!("no_such_vhost: {vhost}"));
                }
                self.policies.insert((vhost.clone(), name), policy);
                self.refresh_alternates(&vhost);
                (MetaReply::Ok, Vec::new())
            }
            MetaCommand::ClearPolicy { vhost, name } => {
                if self
                    .policies
                    .remove(&(vhost.clone(), name.clone()))
                    .is_none()
                {
                    return err(
                        ReplyCode::NotFound,
                        format!("policy '{name}' not found in vhost '{vhost}'"),
                    );
                }
                self.refresh_alternates(&vhost);
                (MetaReply::Ok, Vec::new())
            }
            MetaCommand::ImportDefinitions { definitions, node } => {
                self.import_definitions(meta, definitions, node)
            }
            MetaCommand::DeleteTransientQueuesOfNode { node } => {
                let effects = self.delete_queues_where(|q| q.dies_with(node));
                (MetaReply::Ok, effects)
            }
            MetaCommand::SetClusterName { name } => {
                self.cluster_name = Some(name);
                ok()
            }
        }
    }

    /// Give each exchange of `vhost_name` its alternate exchange again after its policies
    /// changed: its own `alternate-exchange` argument, else its policy's (the default
    /// exchange has none, as in RabbitMQ).
    fn refresh_alternates(&mut self, vhost_name: &str) {
        let Some(vhost) = self.vhosts.get(vhost_name) else {
            return;
        };
        let policies = self.policy_set(vhost_name);
        let routes: Vec<(String, ExchangeRoute)> = vhost
            .exchanges
            .values()
            .filter(|x| !x.name.is_empty())
            .map(|x| {
                let alternate = x
                    .arguments
                    .inner()
                    .get("alternate-exchange")
                    .and_then(str_value)
                    .or_else(|| {
                        policies
                            .effective_exchange(&x.name)
                            .and_then(|(_, p)| p.alternate_exchange())
                    });
                let route = ExchangeRoute {
                    kind: x.kind,
                    alternate,
                };
                (x.name.clone(), route)
            })
            .collect();
        let vhost = self.vhosts.get_mut(vhost_name).expect("vhost checked");
        for (name, route) in routes {
            vhost.routing.add_exchange(&name, route);
        }
    }

    pub(super) fn add_vhost(&mut self, name: &str) {
        let mut vhost = VHost::default();
        for (x, kind, internal) in PREDECLARED {
            vhost.exchanges.insert(
                (*x).to_owned(),
                ExchangeRecord {
                    name: (*x).to_owned(),
                    kind: *kind,
                    durable: true,
                    auto_delete: false,
                    internal: *internal,
                    arguments: FieldTable::default(),
                },
            );
            vhost.routing.add_exchange(
                x,
                ExchangeRoute {
                    kind: *kind,
                    alternate: None,
                },
            );
        }
        self.vhosts.insert(name.to_owned(), vhost);
    }

    #[allow(clippy::too_many_arguments)]
    fn declare_exchange(
        &mut self,
        vhost_name: &str,
        name: String,
        kind: ExchangeKind,
        durable: bool,
        auto_delete: bool,
        internal: bool,
        arguments: FieldTable,
    ) -> Applied {
        let policy_alternate = self
            .policy_set(vhost_name)
            .effective_exchange(&name)
            .and_then(|(_, p)| p.alternate_exchange());
        let Some(vhost) = self.vhosts.get_mut(vhost_name) else {
            return err(ReplyCode::NotFound, format!("no vhost '{vhost_name}'"));
        };
        if name.is_empty() {
            return err(
                ReplyCode::AccessRefused,
                "operation not permitted on the default exchange",
            );
        }
        if let Some(x) = vhost.exchanges.get(&name) {
            let mismatch = |arg: &str, got: String, cur: String| {
                err(
                    ReplyCode::PreconditionFailed,
                    format!("inequivalent arg '{arg}' for exchange '{name}' in vhost '{vhost_name}': received '{got}' but current is '{cur}'"),
                )
            };
            if x.kind != kind {
                return mismatch("type", kind.as_str().into(), x.kind.as_str().into());
            }
            if x.durable != durable {
                return mismatch("durable", durable.to_string(), x.durable.to_string());
            }
            if x.auto_delete != auto_delete {
                return mismatch(
                    "auto_delete",
                    auto_delete.to_string(),
                    x.auto_delete.to_string(),
                );
            }
            if x.internal != internal {
                return mismatch("internal", internal.to_string(), x.internal.to_string());
            }
            let what = format!("exchange '{name}' in vhost '{vhost_name}'");
            if let Err(e) =
                assert_equivalence(&x.arguments, &arguments, &what, COMPARED_EXCHANGE_ARGS)
            {
                return (MetaReply::Error(e), Vec::new());
            }
            return (MetaReply::ExchangeDeclared { created: false }, Vec::new());
        }
        if name.starts_with("amq.") {
            return err(
                ReplyCode::AccessRefused,
                format!("exchange name '{name}' contains reserved prefix 'amq.*'"),
            );
        }
        let alternate = arguments
            .inner()
            .get("alternate-exchange")
            .and_then(str_value)
            .or(policy_alternate);
        vhost
            .routing
            .add_exchange(&name, ExchangeRoute { kind, alternate });
        vhost.exchanges.insert(
            name.clone(),
            ExchangeRecord {
                name,
                kind,
                durable,
                auto_delete,
                internal,
                arguments,
            },
        );
        (MetaReply::ExchangeDeclared { created: true }, Vec::new())
    }

    fn delete_exchange(&mut self, vhost_name: &str, name: &str, if_unused: bool) -> Applied {
        let Some(vhost) = self.vhosts.get_mut(vhost_name) else {
            return err(ReplyCode::NotFound, format!("no vhost '{vhost_name}'"));
        };
        if name.is_empty() {
            return err(
                ReplyCode::AccessRefused,
                "operation not permitted on the default exchange",
            );
        }
        if name.starts_with("amq.") {
            return err(
                ReplyCode::AccessRefused,
                format!("deletion of system exchange '{name}' in vhost '{vhost_name}' not allowed"),
            );
        }
        if !vhost.exchanges.contains_key(name) {
            // RabbitMQ 3.x answers delete-ok for an exchange that does not exist.
            return ok();
        }
        if if_unused && !vhost.routing.bindings_from(name).is_empty() {
            return err(
                ReplyCode::PreconditionFailed,
                format!("exchange '{name}' in vhost '{vhost_name}' in use"),
            );
        }
        Self::drop_exchange(vhost, name);
        ok()
    }

    /// Remove an exchange and its bindings; auto-delete exchanges it was bound to go too
    /// when that was their last binding.
    fn drop_exchange(vhost: &mut VHost, name: &str) {
        if vhost.exchanges.remove(name).is_none() {
            return;
        }
        let sources: Vec<String> = vhost
            .routing
            .all_bindings()
            .filter(|b| b.destination == Destination::Exchange(name.to_owned()))
            .map(|b| b.source.clone())
            .collect();
        vhost.routing.remove_exchange(name);
        for s in sources {
            Self::auto_delete_exchange(vhost, &s);
        }
    }

    /// An auto-delete exchange goes when its last binding (as source) is gone.
    fn auto_delete_exchange(vhost: &mut VHost, name: &str) {
        let gone = vhost.exchanges.get(name).is_some_and(|x| x.auto_delete)
            && vhost.routing.bindings_from(name).is_empty();
        if gone {
            vhost.exchanges.remove(name);
            vhost.routing.remove_exchange(name);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn declare_queue(
        &mut self,
        vhost_name: &str,
        name: String,
        durable: bool,
        exclusive_owner: Option<(u64, u64)>,
        auto_delete: bool,
        arguments: FieldTable,
        node: u64,
    ) -> Applied {
        if !self.vhosts.contains_key(vhost_name) {
            return err(ReplyCode::NotFound, format!("no vhost '{vhost_name}'"));
        }
        let what = format!("queue '{name}' in vhost '{vhost_name}'");
        if let Err(e) = check_dlx_type(&arguments, &what) {
            return (MetaReply::Error(e), Vec::new());
        }
        let vhost = self.vhosts.get_mut(vhost_name).expect("vhost checked");
        if let Some(q) = vhost.queues.get(&name) {
            if q.exclusive_owner.is_some() && q.exclusive_owner != exclusive_owner {
                return err(
                    ReplyCode::ResourceLocked,
                    format!("cannot obtain exclusive access to locked queue '{name}' in vhost '{vhost_name}'. It could be originally declared on another connection or the exclusive property value does not match that of the original declaration."),
                );
            }
            let mismatch = |arg: &str, got: bool, cur: bool| {
                err(
                    ReplyCode::PreconditionFailed,
                    format!("inequivalent arg '{arg}' for queue '{name}' in vhost '{vhost_name}': received '{got}' but current is '{cur}'"),
                )
            };
            if q.durable != durable {
                return mismatch("durable", durable, q.durable);
            }
            if q.auto_delete != auto_delete {
                return mismatch("auto_delete", auto_delete, q.auto_delete);
            }
            if q.exclusive_owner.is_some() != exclusive_owner.is_some() {
                return mismatch(
                    "exclusive",
                    exclusive_owner.is_some(),
                    q.exclusive_owner.is_some(),
                );
            }
            if let Err(e) = assert_queue_equivalence(q.queue_type, &q.arguments, &arguments, &what)
            {
                return (MetaReply::Error(e), Vec::new());
            }
            return (
                MetaReply::QueueDeclared {
                    record: q.clone(),
                    created: false,
                },
                Vec::new(),
            );
        }
        if name.starts_with("amq.") && !name.starts_with("amq.gen-") {
            return err(
                ReplyCode::AccessRefused,
                format!("queue name '{name}' contains reserved prefix 'amq.*'"),
            );
        }
        let queue_type = match validate_queue_args(&arguments, &what) {
            Ok(t) => t,
            Err(e) => return (MetaReply::Error(e), Vec::new()),
        };
        if queue_type == QueueType::Quorum {
            let bad = if exclusive_owner.is_some() {
                Some("exclusive-owner")
            } else if !durable {
                Some("non-durable")
            } else if auto_delete {
                Some("auto-delete")
            } else {
                None
            };
            if let Some(prop) = bad {
                return err(
                    ReplyCode::PreconditionFailed,
                    format!("invalid property '{prop}' for queue '{name}' in vhost '{vhost_name}'"),
                );
            }
        }
        if let Some(e) = self.over_queue_limit(vhost_name, &name) {
            return (MetaReply::Error(e), Vec::new());
        }
        let group_id = if durable && exclusive_owner.is_none() {
            self.last_group_id += 1;
            self.last_group_id
        } else {
            0
        };
        let (members, leader_node) = if group_id == 0 {
            (vec![node], node)
        } else {
            let nodes: Vec<u64> = self.nodes.keys().copied().collect();
            let policy = self
                .effective_policy(vhost_name, &name, queue_type)
                .and_then(|p| p.leader_locator());
            let existing = self.vhosts.values().flat_map(|v| v.queues.values());
            place(queue_type, &arguments, policy, node, &nodes, existing)
        };
        let record = QueueRecord {
            name: name.clone(),
            durable,
            exclusive_owner,
            auto_delete,
            arguments,
            queue_type,
            group_id,
            members,
            leader_node,
        };
        let vhost = self.vhosts.get_mut(vhost_name).expect("vhost checked");
        vhost.routing.add_queue(&name);
        vhost.queues.insert(name.clone(), record.clone());
        let effect = MetaEffect::QueueCreated {
            vhost: vhost_name.to_owned(),
            name,
            group_id,
        };
        (
            MetaReply::QueueDeclared {
                record,
                created: true,
            },
            vec![effect],
        )
    }

    /// New members of a replicated queue of `queue_type` (a quorum queue, or a mirrored
    /// classic queue: durable, not exclusive): known nodes, at least one, no repeats.
    fn set_queue_members(
        &mut self,
        vhost_name: &str,
        name: &str,
        members: Vec<u64>,
        queue_type: QueueType,
    ) -> Applied {
        if let Some(unknown) = members.iter().find(|m| !self.nodes.contains_key(m)) {
            return err(
                ReplyCode::PreconditionFailed,
                format!("node {unknown} is not a member of the cluster"),
            );
        }
        let distinct: std::collections::BTreeSet<u64> = members.iter().copied().collect();
        if members.is_empty() || distinct.len() != members.len() {
            return err(
                ReplyCode::PreconditionFailed,
                format!("a queue needs one or more distinct members, not {members:?}"),
            );
        }
        let Some(q) = self
            .vhosts
            .get_mut(vhost_name)
            .and_then(|v| v.queues.get_mut(name))
        else {
            return err(
                ReplyCode::NotFound,
                format!("no queue '{name}' in vhost '{vhost_name}'"),
            );
        };
        if q.group_id == 0 || q.queue_type != queue_type {
            let kind = match queue_type {
                QueueType::Classic => "a durable classic",
                _ => "a quorum",
            };
            return err(
                ReplyCode::PreconditionFailed,
                format!("queue '{name}' in vhost '{vhost_name}' is not {kind} queue"),
            );
        }
        (MetaReply::Ok, vec![replace_members(vhost_name, q, members)])
    }

    /// A node leaves: its transient queues and queues with no other member go, every
    /// other queue group loses it as a member (and as recorded leader).
    fn remove_node(&mut self, id: u64) -> Applied {
        if self.nodes.remove(&id).is_none() {
            return ok();
        }
        let mut effects = self.delete_queues_where(|q| q.members == [id] || q.dies_with(id));
        for (vhost_name, vhost) in &mut self.vhosts {
            for q in vhost.queues.values_mut() {
                if !q.members.contains(&id) {
                    continue;
                }
                let members = q.members.iter().copied().filter(|&m| m != id).collect();
                effects.push(replace_members(vhost_name, q, members));
            }
        }
        (MetaReply::Ok, effects)
    }

    /// Delete every queue `doomed` picks; returns their effects.
    fn delete_queues_where(&mut self, doomed: impl Fn(&QueueRecord) -> bool) -> Vec<MetaEffect> {
        self.queues_where(doomed)
            .into_iter()
            .filter_map(|(v, q)| self.delete_queue(&v, &q))
            .collect()
    }

    fn delete_queue(&mut self, vhost_name: &str, name: &str) -> Option<MetaEffect> {
        let vhost = self.vhosts.get_mut(vhost_name)?;
        let q = vhost.queues.remove(name)?;
        for source in vhost.routing.remove_queue(name) {
            Self::auto_delete_exchange(vhost, &source);
        }
        Some(MetaEffect::QueueDeleted {
            vhost: vhost_name.to_owned(),
            name: q.name,
            group_id: q.group_id,
        })
    }

    fn bind(&mut self, vhost_name: &str, binding: Binding, add: bool) -> Applied {
        let Some(vhost) = self.vhosts.get_mut(vhost_name) else {
            return err(ReplyCode::NotFound, format!("no vhost '{vhost_name}'"));
        };
        if binding.source.is_empty() || binding.destination == Destination::Exchange(String::new())
        {
            return err(
                ReplyCode::AccessRefused,
                "operation not permitted on the default exchange",
            );
        }
        if !add {
            // RabbitMQ answers unbind-ok whatever is missing.
            let source = binding.source.clone();
            if vhost.routing.unbind(&binding) {
                Self::auto_delete_exchange(vhost, &source);
            }
            return ok();
        }
        if !vhost.exchanges.contains_key(&binding.source) {
            return err(
                ReplyCode::NotFound,
                format!("no exchange '{}' in vhost '{vhost_name}'", binding.source),
            );
        }
        match &binding.destination {
            Destination::Queue(q) if !vhost.queues.contains_key(q) => {
                return err(
                    ReplyCode::NotFound,
                    format!("no queue '{q}' in vhost '{vhost_name}'"),
                );
            }
            Destination::Exchange(x) if !vhost.exchanges.contains_key(x) => {
                return err(
                    ReplyCode::NotFound,
                    format!("no exchange '{x}' in vhost '{vhost_name}'"),
                );
            }
            _ => {}
        }
        vhost.routing.bind(binding);
        ok()
    }
}

/// Give queue `q` (of `vhost`) new, non-empty `members`: a first leader that left falls
/// back to the first member (the node that creates the group if it is started afresh).
fn replace_members(vhost: &str, q: &mut QueueRecord, members: Vec<u64>) -> MetaEffect {
    q.members = members;
    if !q.members.contains(&q.leader_node) {
        q.leader_node = q.members[0];
    }
    MetaEffect::QueueMembersChanged {
        vhost: vhost.to_owned(),
        name: q.name.clone(),
        group_id: q.group_id,
        members: q.members.clone(),
    }
}
