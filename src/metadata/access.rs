//! Who may do what: users, vhosts, permissions, topic permissions and the vhost and user
//! limits, as RabbitMQ's `rabbit_auth_backend_internal` and `rabbit_vhost_limit` keep
//! them. The metadata machine applies the commands here; the frontend reads the result.
//!
//! Topic permissions are per (user, vhost, exchange) write and read regexes over routing
//! keys, checked only on topic exchanges; `{username}` and `{vhost}` in them stand for
//! the connection's user and vhost. Limits are RabbitMQ's JSON objects of integers: a
//! negative value means no limit.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::command::{MetaCommand, MetaError, MetaReply};
use super::state::{MetaState, Permissions, User};
use super::MetaEffect;
use crate::amqp::ReplyCode;

/// A topic permission: write and read regexes over routing keys.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicPermission {
    pub write: String,
    pub read: String,
}

/// A vhost's or a user's limits, by name (`max-connections`, ...).
pub type Limits = BTreeMap<String, i64>;

/// The limits a vhost may have.
pub const VHOST_LIMITS: &[&str] = &["max-connections", "max-queues"];
/// The limits a user may have.
pub const USER_LIMITS: &[&str] = &["max-connections", "max-channels"];

/// The limit called `name`, if one is set and not negative (negative: no limit).
pub fn limit(limits: Option<&Limits>, name: &str) -> Option<u64> {
    limits?.get(name).and_then(|&v| u64::try_from(v).ok())
}

/// Parse a limits definition as `set_vhost_limits` / `set_user_limits` do, with
/// RabbitMQ's texts; `what` is `limits` or `user-limits`, as RabbitMQ names them.
pub fn parse_limits(definition: &str, allowed: &[&str], what: &str) -> Result<Limits, String> {
    let value: serde_json::Value = serde_json::from_str(definition)
        .map_err(|_| "JSON decoding error. Reason: badarg".to_string())?;
    let object = value
        .as_object()
        .ok_or_else(|| "JSON decoding error. Reason: badarg".to_string())?;
    let unknown: Vec<String> = object
        .iter()
        .filter(|(k, _)| !allowed.contains(&k.as_str()))
        .map(|(k, v)| format!("{{<<\"{k}\">>,{}}}", erl_value(v)))
        .collect();
    // A vhost's refusals say "Validation failed", a user's do not (rabbitmqctl 3.10.8).
    let refused = |text: String| match what {
        "limits" => format!("Validation failed\n\n{text}\n"),
        _ => text,
    };
    if !unknown.is_empty() {
        return Err(refused(format!(
            "Unrecognised terms [{}] in {what}",
            unknown.join(",")
        )));
    }
    let mut limits = Limits::new();
    for (k, v) in object {
        let Some(n) = v.as_i64() else {
            return Err(refused(format!(
                "{k} should be a number, actually was {}",
                erl_value(v)
            )));
        };
        limits.insert(k.clone(), n);
    }
    Ok(limits)
}

/// A JSON value as Erlang prints the term it decodes to (`<<"x">>`, `1`, `true`).
fn erl_value(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => format!("<<\"{s}\">>"),
        other => other.to_string(),
    }
}

/// Expand `{username}` and `{vhost}` in a topic permission's regex, as RabbitMQ does
/// before it matches a routing key.
pub fn expand_topic_pattern(pattern: &str, user: &str, vhost: &str) -> String {
    pattern
        .replace("{username}", user)
        .replace("{vhost}", vhost)
}

type Applied = (MetaReply, Vec<MetaEffect>);

fn err(code: ReplyCode, text: impl std::fmt::Display) -> Applied {
    (MetaReply::Error(MetaError::new(code, text)), Vec::new())
}

fn ok() -> Applied {
    (MetaReply::Ok, Vec::new())
}

impl MetaState {
    /// Apply a user, vhost, permission or limit command.
    pub(super) fn apply_access(&mut self, cmd: MetaCommand) -> Applied {
        match cmd {
            MetaCommand::AddVhost { name } => {
                if self.vhosts.contains_key(&name) {
                    return err(
                        ReplyCode::PreconditionFailed,
                        format!("vhost '{name}' already exists"),
                    );
                }
                self.add_vhost(&name);
                ok()
            }
            MetaCommand::DeleteVhost { name } => {
                let Some(vhost) = self.vhosts.remove(&name) else {
                    return err(ReplyCode::NotFound, format!("vhost '{name}' not found"));
                };
                self.permissions.retain(|(_, v), _| *v != name);
                self.topic_permissions.retain(|(_, v, _), _| *v != name);
                self.policies.retain(|(v, _), _| *v != name);
                self.vhost_limits.remove(&name);
                let effects = vhost
                    .queues
                    .into_values()
                    .map(|q| MetaEffect::QueueDeleted {
                        vhost: name.clone(),
                        name: q.name,
                        group_id: q.group_id,
                    })
                    .collect();
                (MetaReply::Ok, effects)
            }
            MetaCommand::AddUser {
                name,
                password_hash,
                tags,
            } => {
                if self.users.contains_key(&name) {
                    return err(
                        ReplyCode::PreconditionFailed,
                        format!("user '{name}' already exists"),
                    );
                }
                let user = User {
                    password_hash,
                    tags,
                };
                self.users.insert(name, user);
                ok()
            }
            MetaCommand::DeleteUser { name } => {
                if self.users.remove(&name).is_none() {
                    return err(ReplyCode::NotFound, format!("user '{name}' not found"));
                }
                self.permissions.retain(|(u, _), _| *u != name);
                self.topic_permissions.retain(|(u, _, _), _| *u != name);
                self.user_limits.remove(&name);
                ok()
            }
            MetaCommand::ChangePassword {
                name,
                password_hash,
            } => match self.users.get_mut(&name) {
                Some(u) => {
                    u.password_hash = password_hash;
                    ok()
                }
                None => err(ReplyCode::NotFound, format!("user '{name}' not found")),
            },
            MetaCommand::SetUserTags { name, tags } => match self.users.get_mut(&name) {
                Some(u) => {
                    u.tags = tags;
                    ok()
                }
                None => err(ReplyCode::NotFound, format!("user '{name}' not found")),
            },
            MetaCommand::SetPermissions {
                user,
                vhost,
                configure,
                write,
                read,
            } => {
                if let Some(e) = self.missing_user_or_vhost(&user, &vhost) {
                    return e;
                }
                let grant = Permissions {
                    configure,
                    write,
                    read,
                };
                self.permissions.insert((user, vhost), grant);
                ok()
            }
            MetaCommand::ClearPermissions { user, vhost } => {
                self.permissions.remove(&(user, vhost));
                ok()
            }
            MetaCommand::SetTopicPermissions {
                user,
                vhost,
                exchange,
                write,
                read,
            } => {
                if let Some(e) = self.missing_user_or_vhost(&user, &vhost) {
                    return e;
                }
                let grant = TopicPermission { write, read };
                self.topic_permissions
                    .insert((user, vhost, exchange), grant);
                ok()
            }
            MetaCommand::ClearTopicPermissions {
                user,
                vhost,
                exchange,
            } => {
                self.topic_permissions.retain(|(u, v, x), _| {
                    !(*u == user && *v == vhost && exchange.as_ref().is_none_or(|e| e == x))
                });
                ok()
            }
            MetaCommand::SetVhostLimits { vhost, limits } => {
                if !self.vhosts.contains_key(&vhost) {
                    return err(ReplyCode::NotFound, format!("vhost '{vhost}' not found"));
                }
                match limits.is_empty() {
                    true => self.vhost_limits.remove(&vhost),
                    false => self.vhost_limits.insert(vhost, limits),
                };
                ok()
            }
            MetaCommand::SetUserLimits { user, limits } => {
                if !self.users.contains_key(&user) {
                    return err(ReplyCode::NotFound, format!("user '{user}' not found"));
                }
                // New limits are merged into the user's, as RabbitMQ merges them.
                if !limits.is_empty() {
                    self.user_limits.entry(user).or_default().extend(limits);
                }
                ok()
            }
            MetaCommand::ClearUserLimits { user, limit } => {
                if let Some(limits) = self.user_limits.get_mut(&user) {
                    match limit {
                        Some(name) => limits.retain(|k, _| *k != name),
                        None => limits.clear(),
                    }
                    if limits.is_empty() {
                        self.user_limits.remove(&user);
                    }
                }
                ok()
            }
            other => unreachable!("not an access command: {other:?}"),
        }
    }

    /// RabbitMQ's refusal when `user` or `vhost` does not exist.
    fn missing_user_or_vhost(&self, user: &str, vhost: &str) -> Option<Applied> {
        if !self.users.contains_key(user) {
            return Some(err(ReplyCode::NotFound, format!("user '{user}' not found")));
        }
        if !self.vhosts.contains_key(vhost) {
            return Some(err(
                ReplyCode::NotFound,
                format!("vhost '{vhost}' not found"),
            ));
        }
        None
    }

    /// The topic permission of `user` on `exchange` of `vhost`, if one is set.
    pub fn topic_permission(
        &self,
        user: &str,
        vhost: &str,
        exchange: &str,
    ) -> Option<&TopicPermission> {
        self.topic_permissions
            .get(&(user.to_owned(), vhost.to_owned(), exchange.to_owned()))
    }

    /// Every topic permission as (user, vhost, exchange, permission).
    pub fn all_topic_permissions(
        &self,
    ) -> impl Iterator<Item = (&str, &str, &str, &TopicPermission)> {
        self.topic_permissions
            .iter()
            .map(|((u, v, x), p)| (u.as_str(), v.as_str(), x.as_str(), p))
    }

    /// Whether `user` has any topic permission in `vhost` (else none is ever checked).
    pub fn has_topic_permissions(&self, user: &str, vhost: &str) -> bool {
        self.topic_permissions
            .keys()
            .any(|(u, v, _)| u == user && v == vhost)
    }

    pub fn vhost_limits(&self, vhost: &str) -> Option<&Limits> {
        self.vhost_limits.get(vhost)
    }

    pub fn all_vhost_limits(&self) -> impl Iterator<Item = (&str, &Limits)> {
        self.vhost_limits.iter().map(|(v, l)| (v.as_str(), l))
    }

    pub fn user_limits(&self, user: &str) -> Option<&Limits> {
        self.user_limits.get(user)
    }

    pub fn all_user_limits(&self) -> impl Iterator<Item = (&str, &Limits)> {
        self.user_limits.iter().map(|(u, l)| (u.as_str(), l))
    }

    /// RabbitMQ's refusal of a new queue once the vhost holds `max-queues` of them.
    pub(super) fn over_queue_limit(&self, vhost: &str, name: &str) -> Option<MetaError> {
        let max = limit(self.vhost_limits(vhost), "max-queues")?;
        let count = self.vhosts.get(vhost).map_or(0, |v| v.queues.len()) as u64;
        (count >= max).then(|| {
            MetaError::new(
                ReplyCode::PreconditionFailed,
                format!(
                    "cannot declare queue '{name}': queue limit in vhost '{vhost}' ({max}) is reached"
                ),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::{hash_password, ApplyMeta};

    const META: ApplyMeta = ApplyMeta {
        index: 1,
        time_ms: 0,
    };

    fn boot() -> MetaState {
        let mut s = MetaState::default();
        s.apply(
            META,
            MetaCommand::Bootstrap {
                default_user: "guest".into(),
                password_hash: hash_password("guest", [1, 2, 3, 4]),
            },
        );
        s
    }

    fn topic(user: &str, vhost: &str, exchange: &str) -> MetaCommand {
        MetaCommand::SetTopicPermissions {
            user: user.into(),
            vhost: vhost.into(),
            exchange: exchange.into(),
            write: "^a".into(),
            read: "^r".into(),
        }
    }

    #[test]
    fn topic_permissions_are_set_cleared_and_go_with_their_user_and_vhost() {
        let mut s = boot();
        s.apply(META, MetaCommand::AddVhost { name: "v".into() });
        assert_eq!(
            s.apply(META, topic("guest", "/", "amq.topic")).0,
            MetaReply::Ok
        );
        assert_eq!(s.apply(META, topic("guest", "/", "t2")).0, MetaReply::Ok);
        assert_eq!(s.apply(META, topic("guest", "v", "t2")).0, MetaReply::Ok);
        assert!(matches!(
            s.apply(META, topic("nobody", "/", "t")).0,
            MetaReply::Error(_)
        ));
        assert_eq!(s.topic_permission("guest", "/", "t2").unwrap().write, "^a");
        s.apply(
            META,
            MetaCommand::ClearTopicPermissions {
                user: "guest".into(),
                vhost: "/".into(),
                exchange: Some("t2".into()),
            },
        );
        assert!(s.topic_permission("guest", "/", "t2").is_none());
        assert!(s.topic_permission("guest", "/", "amq.topic").is_some());
        s.apply(META, MetaCommand::DeleteVhost { name: "v".into() });
        assert!(s.topic_permission("guest", "v", "t2").is_none());
        s.apply(
            META,
            MetaCommand::ClearTopicPermissions {
                user: "guest".into(),
                vhost: "/".into(),
                exchange: None,
            },
        );
        assert!(!s.has_topic_permissions("guest", "/"));
    }

    #[test]
    fn limits_parse_with_rabbitmq_s_texts() {
        let parsed = parse_limits(
            r#"{"max-queues":2,"max-connections":-1}"#,
            VHOST_LIMITS,
            "limits",
        );
        assert_eq!(parsed.unwrap().len(), 2);
        assert_eq!(
            parse_limits(r#"{"max-foo":1}"#, VHOST_LIMITS, "limits").unwrap_err(),
            "Validation failed\n\nUnrecognised terms [{<<\"max-foo\">>,1}] in limits\n"
        );
        assert_eq!(
            parse_limits(r#"{"max-queues":"x"}"#, VHOST_LIMITS, "limits").unwrap_err(),
            "Validation failed\n\nmax-queues should be a number, actually was <<\"x\">>\n"
        );
        assert_eq!(
            parse_limits("notjson", USER_LIMITS, "user-limits").unwrap_err(),
            "JSON decoding error. Reason: badarg"
        );
        assert_eq!(
            parse_limits(r#"{"max-queues":1}"#, USER_LIMITS, "user-limits").unwrap_err(),
            "Unrecognised terms [{<<\"max-queues\">>,1}] in user-limits"
        );
    }

    #[test]
    fn vhost_limits_replace_user_limits_merge_and_max_queues_is_enforced() {
        let mut s = boot();
        let set_v = |limits: &[(&str, i64)]| MetaCommand::SetVhostLimits {
            vhost: "/".into(),
            limits: limits.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        };
        s.apply(META, set_v(&[("max-connections", 2)]));
        s.apply(META, set_v(&[("max-queues", 1)]));
        assert_eq!(limit(s.vhost_limits("/"), "max-connections"), None);
        assert_eq!(limit(s.vhost_limits("/"), "max-queues"), Some(1));
        assert!(s.over_queue_limit("/", "q").is_none());
        let declare = |name: &str| MetaCommand::DeclareQueue {
            vhost: "/".into(),
            name: name.into(),
            durable: false,
            exclusive_owner: None,
            auto_delete: false,
            arguments: Default::default(),
            node: 1,
        };
        assert!(matches!(
            s.apply(META, declare("q1")).0,
            MetaReply::QueueDeclared { .. }
        ));
        // Redeclaring an existing queue is not a new queue.
        assert!(matches!(
            s.apply(META, declare("q1")).0,
            MetaReply::QueueDeclared { .. }
        ));
        assert_eq!(
            s.apply(META, declare("q2")).0,
            MetaReply::Error(MetaError::new(
                ReplyCode::PreconditionFailed,
                "cannot declare queue 'q2': queue limit in vhost '/' (1) is reached"
            ))
        );
        s.apply(META, set_v(&[("max-queues", -1)]));
        assert!(matches!(
            s.apply(META, declare("q2")).0,
            MetaReply::QueueDeclared { .. }
        ));
        s.apply(META, set_v(&[]));
        assert!(s.vhost_limits("/").is_none());

        let set_u = |k: &str, v: i64| MetaCommand::SetUserLimits {
            user: "guest".into(),
            limits: [(k.to_string(), v)].into_iter().collect(),
        };
        s.apply(META, set_u("max-connections", 1));
        s.apply(META, set_u("max-channels", 2));
        assert_eq!(limit(s.user_limits("guest"), "max-connections"), Some(1));
        assert_eq!(limit(s.user_limits("guest"), "max-channels"), Some(2));
        let clear = |limit: Option<&str>| MetaCommand::ClearUserLimits {
            user: "guest".into(),
            limit: limit.map(str::to_owned),
        };
        s.apply(META, clear(Some("max-channels")));
        assert_eq!(limit(s.user_limits("guest"), "max-channels"), None);
        s.apply(META, clear(None));
        assert!(s.user_limits("guest").is_none());
        s.apply(META, set_u("max-channels", 2));
        s.apply(
            META,
            MetaCommand::DeleteUser {
                name: "guest".into(),
            },
        );
        assert!(
            s.user_limits("guest").is_none(),
            "limits go with their user"
        );
    }
}
