//! Definitions as RabbitMQ 3.10's `export_definitions` / `import_definitions` have them:
//! users, vhosts, permissions, topic permissions, vhost limits, policies, queues,
//! exchanges and bindings. This file holds the typed definitions the metadata machine
//! imports (`MetaCommand::ImportDefinitions`), their checks and their application;
//! `parse.rs` reads RabbitMQ's JSON, `export.rs` writes it.
//!
//! An import is all or nothing: the machine checks every entry on its own first, then
//! applies the entries to a copy of the state, in RabbitMQ's order, through the same
//! commands a client or warrenctl would propose; the first refusal (named after its entry,
//! `queues[3] "orders": ...`) leaves the state as it was. Like RabbitMQ's, an import
//! merges into what exists (measured against 3.10.8): an existing user gets the file's
//! password hash and tags and its limits merged, an existing vhost, queue or exchange is
//! kept as it is (even with other properties), permissions, topic permissions, vhost
//! limits and policies are set over what was there. A binding whose source or destination
//! exists neither in the file nor in the broker is left out and reported, as RabbitMQ
//! leaves it out (its exports list bindings of exclusive queues and internal exchanges,
//! which they do not list).

mod export;
mod fields;
mod parse;

pub use export::export;
pub(crate) use fields::{field_table, table_json};
pub use parse::{parse, ParseError, Parsed};

use amq_protocol::types::FieldTable;
use serde::{Deserialize, Serialize};

use super::access::{expand_topic_pattern, Limits, USER_LIMITS, VHOST_LIMITS};
use super::args::check_new_queue_args;
use super::password::HashingAlgorithm;
use super::{
    ApplyMeta, Destination, ExchangeKind, MetaCommand, MetaEffect, MetaError, MetaReply, MetaState,
    Policy,
};
use crate::amqp::ReplyCode;

/// The RabbitMQ release whose definitions format WarrenMQ reads and writes.
pub const RABBITMQ_VERSION: &str = "3.10.8";

/// RabbitMQ's description of the vhost it creates itself: accepted, as no description.
const DEFAULT_VHOST_DESCRIPTION: &str = "Default virtual host";

/// One user: a password hash of any of RabbitMQ's algorithms (empty: no password).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserDef {
    /// Position in the file's list (for messages), here and in every entry below.
    pub index: u32,
    pub name: String,
    pub password_hash: String,
    pub tags: Vec<String>,
    /// `None` when the file has no `limits` (nothing changes then).
    pub limits: Option<Limits>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VhostDef {
    pub index: u32,
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PermissionDef {
    pub index: u32,
    pub user: String,
    pub vhost: String,
    pub configure: String,
    pub write: String,
    pub read: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TopicPermissionDef {
    pub index: u32,
    pub user: String,
    pub vhost: String,
    pub exchange: String,
    pub write: String,
    pub read: String,
}

/// A `vhost-limits` parameter (its index is in the file's `parameters`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VhostLimitsDef {
    pub index: u32,
    pub vhost: String,
    pub limits: Limits,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PolicyDef {
    pub index: u32,
    pub vhost: String,
    pub name: String,
    pub policy: Policy,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QueueDef {
    pub index: u32,
    pub vhost: String,
    pub name: String,
    pub durable: bool,
    pub auto_delete: bool,
    pub arguments: FieldTable,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExchangeDef {
    pub index: u32,
    pub vhost: String,
    pub name: String,
    pub kind: ExchangeKind,
    pub durable: bool,
    pub auto_delete: bool,
    pub internal: bool,
    pub arguments: FieldTable,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BindingDef {
    pub index: u32,
    pub vhost: String,
    pub source: String,
    pub destination: Destination,
    pub routing_key: String,
    pub arguments: FieldTable,
}

/// A definitions file, as the metadata machine imports it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Definitions {
    pub users: Vec<UserDef>,
    pub vhosts: Vec<VhostDef>,
    pub permissions: Vec<PermissionDef>,
    pub topic_permissions: Vec<TopicPermissionDef>,
    pub vhost_limits: Vec<VhostLimitsDef>,
    pub policies: Vec<PolicyDef>,
    pub queues: Vec<QueueDef>,
    pub exchanges: Vec<ExchangeDef>,
    pub bindings: Vec<BindingDef>,
}

/// `section[index] "name"`: how a refusal names its entry.
pub(crate) fn label(section: &str, index: u32, name: &str) -> String {
    format!("{section}[{index}] \"{name}\"")
}

fn binding_label(b: &BindingDef) -> String {
    let to = match &b.destination {
        Destination::Queue(q) | Destination::Exchange(q) => q,
    };
    format!("bindings[{}] \"{}\" -> \"{to}\"", b.index, b.source)
}

fn check_regex(pattern: &str) -> Result<(), String> {
    regex::Regex::new(pattern)
        .map(|_| ())
        .map_err(|_| format!("regular expression '{pattern}' is invalid"))
}

fn check_limits(limits: &Limits, allowed: &[&str], what: &str) -> Result<(), String> {
    match limits.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(format!("unrecognised {what} '{k}' (known: {allowed:?})")),
        None => Ok(()),
    }
}

/// A refusal of the whole import, naming its entry.
fn refused(text: String) -> MetaError {
    // The operator reads this as it is: no AMQP reply-code prefix.
    MetaError {
        code: ReplyCode::PreconditionFailed,
        text,
    }
}

/// A sub-command's refusal without its `CODE - ` prefix.
fn reason(e: MetaError) -> String {
    let prefix = format!("{} - ", e.code.name());
    e.text
        .strip_prefix(&prefix)
        .map(str::to_owned)
        .unwrap_or(e.text)
}

impl UserDef {
    /// The checks of this entry on its own (no state needed); here and below.
    pub fn check(&self) -> Result<(), String> {
        let at = || label("users", self.index, &self.name);
        if self.name.is_empty() {
            return Err(format!("{}: a user needs a name", at()));
        }
        if !self.password_hash.is_empty() && HashingAlgorithm::of(&self.password_hash).is_none() {
            return Err(format!(
                "{}: password_hash is not a base64 SHA-256, SHA-512 or MD5 hash",
                at()
            ));
        }
        match &self.limits {
            Some(limits) => check_limits(limits, USER_LIMITS, "user limit")
                .map_err(|e| format!("{}: {e}", at())),
            None => Ok(()),
        }
    }
}

impl VhostDef {
    pub fn check(&self) -> Result<(), String> {
        match self.name.is_empty() {
            true => Err(format!(
                "{}: a vhost needs a name",
                label("vhosts", self.index, "")
            )),
            false => Ok(()),
        }
    }
}

impl PermissionDef {
    pub fn check(&self) -> Result<(), String> {
        for re in [&self.configure, &self.write, &self.read] {
            check_regex(re)
                .map_err(|e| format!("{}: {e}", label("permissions", self.index, &self.user)))?;
        }
        Ok(())
    }
}

impl TopicPermissionDef {
    pub fn check(&self) -> Result<(), String> {
        for re in [&self.write, &self.read] {
            // As matched: `{username}` and `{vhost}` expanded (literal in RabbitMQ's PCRE).
            let expanded = expand_topic_pattern(re, "user", "vhost");
            check_regex(&expanded).map_err(|e| {
                format!(
                    "{}: {e}",
                    label("topic_permissions", self.index, &self.user)
                )
            })?;
        }
        Ok(())
    }
}

impl VhostLimitsDef {
    pub fn check(&self) -> Result<(), String> {
        check_limits(&self.limits, VHOST_LIMITS, "vhost limit")
            .map_err(|e| format!("{}: {e}", label("parameters", self.index, "limits")))
    }
}

impl PolicyDef {
    pub fn check(&self) -> Result<(), String> {
        Policy::validate(&self.policy.pattern, &self.policy.definition)
            .map_err(|e| format!("{}: {e}", label("policies", self.index, &self.name)))
    }
}

impl QueueDef {
    pub fn check(&self) -> Result<(), String> {
        let what = format!("queue '{}' in vhost '{}'", self.name, self.vhost);
        check_new_queue_args(&self.arguments, &what)
            .map_err(|e| format!("{}: {}", label("queues", self.index, &self.name), reason(e)))
    }
}

impl Definitions {
    /// Every check of an entry on its own (no state needed), in RabbitMQ's import order;
    /// the first failure names its entry. (`parse` runs the same checks entry by entry as
    /// it reads them, so a file's first bad entry is the one named, whatever its fault.)
    pub fn check(&self) -> Result<(), String> {
        self.users.iter().try_for_each(UserDef::check)?;
        self.vhosts.iter().try_for_each(VhostDef::check)?;
        self.permissions.iter().try_for_each(PermissionDef::check)?;
        self.topic_permissions
            .iter()
            .try_for_each(TopicPermissionDef::check)?;
        self.vhost_limits
            .iter()
            .try_for_each(VhostLimitsDef::check)?;
        self.policies.iter().try_for_each(PolicyDef::check)?;
        self.queues.iter().try_for_each(QueueDef::check)
    }
}

impl MetaState {
    /// `MetaCommand::ImportDefinitions`: check, apply to a copy, keep the copy only if
    /// every entry applied.
    pub(super) fn import_definitions(
        &mut self,
        meta: ApplyMeta,
        definitions: Definitions,
        node: u64,
    ) -> (MetaReply, Vec<MetaEffect>) {
        if let Err(text) = definitions.check() {
            return (MetaReply::Error(refused(text)), Vec::new());
        }
        let mut next = self.clone();
        match next.apply_definitions(meta, definitions, node) {
            Ok((skipped, effects)) => {
                *self = next;
                (MetaReply::DefinitionsImported { skipped }, effects)
            }
            Err(text) => (MetaReply::Error(refused(text)), Vec::new()),
        }
    }

    /// Apply every entry in RabbitMQ's order: users, vhosts, permissions, topic
    /// permissions, parameters, policies, queues, exchanges, bindings.
    fn apply_definitions(
        &mut self,
        meta: ApplyMeta,
        d: Definitions,
        node: u64,
    ) -> Result<(Vec<String>, Vec<MetaEffect>), String> {
        let mut effects = Vec::new();
        let mut run = |state: &mut MetaState, at: &dyn Fn() -> String, cmd: MetaCommand| {
            let (reply, mut more) = state.apply(meta, cmd);
            effects.append(&mut more);
            match reply {
                MetaReply::Error(e) => Err(format!("{}: {}", at(), reason(e))),
                _ => Ok(()),
            }
        };
        for u in d.users {
            let at = || label("users", u.index, &u.name);
            let cmds = match self.users.contains_key(&u.name) {
                true => vec![
                    MetaCommand::ChangePassword {
                        name: u.name.clone(),
                        password_hash: u.password_hash,
                    },
                    MetaCommand::SetUserTags {
                        name: u.name.clone(),
                        tags: u.tags,
                    },
                ],
                false => vec![MetaCommand::AddUser {
                    name: u.name.clone(),
                    password_hash: u.password_hash,
                    tags: u.tags,
                }],
            };
            let limits =
                u.limits
                    .filter(|l| !l.is_empty())
                    .map(|limits| MetaCommand::SetUserLimits {
                        user: u.name.clone(),
                        limits,
                    });
            for cmd in cmds.into_iter().chain(limits) {
                run(self, &at, cmd)?;
            }
        }
        for v in d.vhosts {
            if !self.vhosts.contains_key(&v.name) {
                let at = || label("vhosts", v.index, &v.name);
                run(
                    self,
                    &at,
                    MetaCommand::AddVhost {
                        name: v.name.clone(),
                    },
                )?;
            }
        }
        for p in d.permissions {
            let at = || label("permissions", p.index, &p.user);
            let cmd = MetaCommand::SetPermissions {
                user: p.user.clone(),
                vhost: p.vhost,
                configure: p.configure,
                write: p.write,
                read: p.read,
            };
            run(self, &at, cmd)?;
        }
        for p in d.topic_permissions {
            let at = || label("topic_permissions", p.index, &p.user);
            let cmd = MetaCommand::SetTopicPermissions {
                user: p.user.clone(),
                vhost: p.vhost,
                exchange: p.exchange,
                write: p.write,
                read: p.read,
            };
            run(self, &at, cmd)?;
        }
        for l in d.vhost_limits {
            let at = || label("parameters", l.index, "limits");
            let cmd = MetaCommand::SetVhostLimits {
                vhost: l.vhost,
                limits: l.limits,
            };
            run(self, &at, cmd)?;
        }
        for p in d.policies {
            let at = || label("policies", p.index, &p.name);
            let cmd = MetaCommand::SetPolicy {
                vhost: p.vhost,
                name: p.name.clone(),
                policy: p.policy,
            };
            run(self, &at, cmd)?;
        }
        for q in d.queues {
            if self.queue(&q.vhost, &q.name).is_some() {
                continue;
            }
            let at = || label("queues", q.index, &q.name);
            let cmd = MetaCommand::DeclareQueue {
                vhost: q.vhost,
                name: q.name.clone(),
                durable: q.durable,
                exclusive_owner: None,
                auto_delete: q.auto_delete,
                arguments: q.arguments,
                node,
            };
            run(self, &at, cmd)?;
        }
        for x in d.exchanges {
            if self.exchange(&x.vhost, &x.name).is_some() {
                continue;
            }
            let at = || label("exchanges", x.index, &x.name);
            let cmd = MetaCommand::DeclareExchange {
                vhost: x.vhost,
                name: x.name.clone(),
                kind: x.kind,
                durable: x.durable,
                auto_delete: x.auto_delete,
                internal: x.internal,
                arguments: x.arguments,
            };
            run(self, &at, cmd)?;
        }
        let mut skipped = Vec::new();
        for b in d.bindings {
            let at = || binding_label(&b);
            if let Some(missing) = self.missing_end(&b) {
                skipped.push(format!(
                    "{}: {missing} does not exist; skipped, as RabbitMQ skips it",
                    at()
                ));
                continue;
            }
            let cmd = MetaCommand::Bind {
                vhost: b.vhost.clone(),
                source: b.source.clone(),
                destination: b.destination.clone(),
                routing_key: b.routing_key.clone(),
                arguments: b.arguments.clone(),
            };
            run(self, &at, cmd)?;
        }
        Ok((skipped, effects))
    }

    /// The end of a binding that does not exist, if one does not (the default exchange
    /// exists for this: binding it is refused by name).
    fn missing_end(&self, b: &BindingDef) -> Option<String> {
        if !self.vhost_exists(&b.vhost) {
            return None;
        }
        let exchange = |name: &str| name.is_empty() || self.exchange(&b.vhost, name).is_some();
        if !exchange(&b.source) {
            return Some(format!(
                "source exchange '{}' in vhost '{}'",
                b.source, b.vhost
            ));
        }
        match &b.destination {
            Destination::Queue(q) if self.queue(&b.vhost, q).is_none() => {
                Some(format!("destination queue '{q}' in vhost '{}'", b.vhost))
            }
            Destination::Exchange(x) if !exchange(x) => {
                Some(format!("destination exchange '{x}' in vhost '{}'", b.vhost))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests;
