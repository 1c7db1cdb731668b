//! rabbitmqctl's user, vhost and permission commands on the node: checked against the
//! local metadata first (for rabbitmqctl's messages and exit codes), then proposed to the
//! metadata group; lists come from the local metadata. Passwords are hashed here, with a
//! fresh salt, as RabbitMQ's `rabbit_password_hashing_sha256` stores them: the machine
//! never sees a password, and nothing here logs one.

use serde_json::{json, Value};

use super::control::AppView;
use crate::cluster::{CommandOutcome, CommandRequest};
use crate::metadata::{expand_topic_pattern, hash_password, MetaCommand, MetaState};

/// rabbitmqctl's exit codes for refusals (sysexits).
pub(super) mod code {
    pub const DATAERR: i32 = 65;
    pub const NOUSER: i32 = 67;
    pub const UNAVAILABLE: i32 = 69;
    pub const SOFTWARE: i32 = 70;
}

/// A refusal with rabbitmqctl's exit code and message.
pub(super) type Refusal = (i32, String);

/// How rabbitmqctl 3.10.8 reports a missing user or vhost: each command its own way
/// (measured against it).
#[derive(Clone, Copy)]
pub(super) enum Missing {
    /// 67 `User "NAME" does not exist`.
    QuotedUser,
    /// 67 `User NAME does not exist`.
    User,
    /// 69 `{:no_such_user, "NAME"}`.
    UserTerm,
    /// 69 `Virtual host NAME does not exist`.
    Vhost,
    /// 65 `Virtual host 'NAME' does not exist`.
    QuotedVhost,
}

impl Missing {
    fn refusal(self, name: &str) -> Refusal {
        match self {
            Missing::QuotedUser => (code::NOUSER, format!("User \"{name}\" does not exist")),
            Missing::User => (code::NOUSER, format!("User {name} does not exist")),
            Missing::UserTerm => (code::UNAVAILABLE, format!("{{:no_such_user, \"{name}\"}}")),
            Missing::Vhost => (
                code::UNAVAILABLE,
                format!("Virtual host {name} does not exist"),
            ),
            Missing::QuotedVhost => (
                code::DATAERR,
                format!("Virtual host '{name}' does not exist"),
            ),
        }
    }
}

pub(super) fn need_user(meta: &MetaState, name: &str, missing: Missing) -> Result<(), Refusal> {
    meta.user(name)
        .map(|_| ())
        .ok_or_else(|| missing.refusal(name))
}

pub(super) fn need_vhost(meta: &MetaState, name: &str, missing: Missing) -> Result<(), Refusal> {
    match meta.vhost_exists(name) {
        true => Ok(()),
        false => Err(missing.refusal(name)),
    }
}

/// The positional argument `i`, or a usage refusal.
pub(super) fn arg(req: &CommandRequest, i: usize) -> Result<&str, Refusal> {
    req.args.get(i).map(String::as_str).ok_or_else(|| {
        (
            code::SOFTWARE,
            format!("{}: missing argument {}", req.command, i + 1),
        )
    })
}

fn salted(password: &str) -> String {
    hash_password(password, rand::random())
}

/// What a command does: a metadata change to propose, or a list to answer with.
pub(super) enum Action {
    Propose(MetaCommand),
    List(Vec<Value>),
    Nothing,
}

/// Check a command against the metadata and decide what it does.
fn plan(meta: &MetaState, req: &CommandRequest) -> Result<Action, Refusal> {
    let vhost = req.vhost.as_str();
    Ok(match req.command.as_str() {
        "add_user" => {
            let name = arg(req, 0)?;
            if meta.user(name).is_some() {
                return Err((code::SOFTWARE, format!("User \"{name}\" already exists")));
            }
            Action::Propose(MetaCommand::AddUser {
                name: name.into(),
                password_hash: salted(arg(req, 1)?),
                tags: Vec::new(),
            })
        }
        "delete_user" => {
            let name = arg(req, 0)?;
            need_user(meta, name, Missing::QuotedUser)?;
            Action::Propose(MetaCommand::DeleteUser { name: name.into() })
        }
        "change_password" | "clear_password" => {
            let name = arg(req, 0)?;
            let missing = match req.command.as_str() {
                "change_password" => Missing::QuotedUser,
                _ => Missing::UserTerm,
            };
            need_user(meta, name, missing)?;
            // A cleared password is an empty hash: no password matches it.
            let password_hash = match req.command.as_str() {
                "change_password" => salted(arg(req, 1)?),
                _ => String::new(),
            };
            Action::Propose(MetaCommand::ChangePassword {
                name: name.into(),
                password_hash,
            })
        }
        "authenticate_user" => {
            let name = arg(req, 0)?;
            if !meta.check_password(name, arg(req, 1)?) {
                return Err((
                    code::DATAERR,
                    format!(
                        "Error: failed to authenticate user \"{name}\"\nuser '{name}' - invalid credentials"
                    ),
                ));
            }
            Action::Nothing
        }
        "set_user_tags" => {
            let name = arg(req, 0)?;
            need_user(meta, name, Missing::QuotedUser)?;
            Action::Propose(MetaCommand::SetUserTags {
                name: name.into(),
                tags: req.args[1..].to_vec(),
            })
        }
        "list_users" => Action::List(
            meta.users()
                .map(|(name, u)| json!({"user": name, "tags": u.tags}))
                .collect(),
        ),
        "set_cluster_name" => Action::Propose(MetaCommand::SetClusterName {
            name: arg(req, 0)?.into(),
        }),
        "add_vhost" => {
            let name = arg(req, 0)?;
            if meta.vhost_exists(name) {
                return Ok(Action::Nothing);
            }
            Action::Propose(MetaCommand::AddVhost { name: name.into() })
        }
        "delete_vhost" => {
            let name = arg(req, 0)?;
            need_vhost(meta, name, Missing::QuotedVhost)?;
            Action::Propose(MetaCommand::DeleteVhost { name: name.into() })
        }
        "list_vhosts" => Action::List(meta.vhosts().map(|name| json!({"name": name})).collect()),
        "set_permissions" => {
            let user = arg(req, 0)?;
            let perms = [arg(req, 1)?, arg(req, 2)?, arg(req, 3)?];
            need_vhost(meta, vhost, Missing::Vhost)?;
            need_user(meta, user, Missing::User)?;
            if let Some(bad) = perms.iter().find(|p| regex::Regex::new(p).is_err()) {
                return Err((
                    code::UNAVAILABLE,
                    format!("regular expression '{bad}' is invalid"),
                ));
            }
            Action::Propose(MetaCommand::SetPermissions {
                user: user.into(),
                vhost: vhost.into(),
                configure: perms[0].into(),
                write: perms[1].into(),
                read: perms[2].into(),
            })
        }
        "clear_permissions" => {
            let user = arg(req, 0)?;
            need_vhost(meta, vhost, Missing::Vhost)?;
            need_user(meta, user, Missing::User)?;
            Action::Propose(MetaCommand::ClearPermissions {
                user: user.into(),
                vhost: vhost.into(),
            })
        }
        "list_permissions" => {
            need_vhost(meta, vhost, Missing::QuotedVhost)?;
            Action::List(
                meta.all_permissions()
                    .filter(|(_, v, _)| *v == vhost)
                    .map(|(user, _, p)| {
                        json!({"user": user, "configure": p.configure, "write": p.write, "read": p.read})
                    })
                    .collect(),
            )
        }
        "list_user_permissions" => {
            let user = arg(req, 0)?;
            need_user(meta, user, Missing::UserTerm)?;
            Action::List(
                meta.all_permissions()
                    .filter(|(u, _, _)| *u == user)
                    .map(|(_, vhost, p)| {
                        json!({"vhost": vhost, "configure": p.configure, "write": p.write, "read": p.read})
                    })
                    .collect(),
            )
        }
        "set_topic_permissions" => {
            let user = arg(req, 0)?;
            let exchange = arg(req, 1)?;
            let (write, read) = (arg(req, 2)?, arg(req, 3)?);
            need_user(meta, user, Missing::User)?;
            need_vhost(meta, vhost, Missing::Vhost)?;
            // `{username}` and `{vhost}` are expanded before a regex is used.
            let invalid =
                |p: &&&str| regex::Regex::new(&expand_topic_pattern(p, "u", "v")).is_err();
            if let Some(bad) = [write, read].iter().find(invalid) {
                return Err((code::UNAVAILABLE, format!("{{:invalid_regexp, \"{bad}\"}}")));
            }
            Action::Propose(MetaCommand::SetTopicPermissions {
                user: user.into(),
                vhost: vhost.into(),
                exchange: exchange.into(),
                write: write.into(),
                read: read.into(),
            })
        }
        "clear_topic_permissions" => {
            let user = arg(req, 0)?;
            need_user(meta, user, Missing::User)?;
            need_vhost(meta, vhost, Missing::Vhost)?;
            Action::Propose(MetaCommand::ClearTopicPermissions {
                user: user.into(),
                vhost: vhost.into(),
                exchange: req.args.get(1).cloned(),
            })
        }
        "list_topic_permissions" => {
            need_vhost(meta, vhost, Missing::QuotedVhost)?;
            Action::List(
                meta.all_topic_permissions()
                    .filter(|(_, v, _, _)| *v == vhost)
                    .map(|(user, _, exchange, p)| {
                        json!({"user": user, "exchange": exchange, "write": p.write, "read": p.read})
                    })
                    .collect(),
            )
        }
        "list_user_topic_permissions" => {
            let user = arg(req, 0)?;
            need_user(meta, user, Missing::UserTerm)?;
            Action::List(
                meta.all_topic_permissions()
                    .filter(|(u, _, _, _)| *u == user)
                    .map(|(_, vhost, exchange, p)| {
                        json!({"vhost": vhost, "exchange": exchange, "write": p.write, "read": p.read})
                    })
                    .collect(),
            )
        }
        _ => return super::limits::plan(meta, req),
    })
}

/// Run one user, vhost or permission command.
pub(super) async fn run(view: &AppView, req: &CommandRequest) -> CommandOutcome {
    let planned = plan(&view.broker.read_meta(), req);
    match planned {
        Err((exit_code, error)) => CommandOutcome::refused(exit_code, error),
        Ok(Action::Nothing) => CommandOutcome::default(),
        Ok(Action::List(rows)) => CommandOutcome::with_json(Value::Array(rows).to_string()),
        Ok(Action::Propose(cmd)) => match view.broker.propose(cmd).await {
            Ok(_) => CommandOutcome::default(),
            // Lost a race with another change (the machine checks again).
            Err(e) => CommandOutcome::refused(code::SOFTWARE, e.text),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::ApplyMeta;

    fn state() -> MetaState {
        let mut s = MetaState::default();
        let meta = ApplyMeta {
            index: 1,
            time_ms: 0,
        };
        s.apply(
            meta,
            MetaCommand::Bootstrap {
                default_user: "guest".into(),
                password_hash: hash_password("guest", [1, 2, 3, 4]),
            },
        );
        s
    }

    fn req(command: &str, args: &[&str]) -> CommandRequest {
        CommandRequest {
            command: command.into(),
            args: args.iter().map(|a| a.to_string()).collect(),
            vhost: "/".into(),
            flags: Vec::new(),
        }
    }

    fn refusal(r: Result<Action, Refusal>) -> Refusal {
        match r {
            Err(e) => e,
            Ok(_) => panic!("expected a refusal"),
        }
    }

    #[test]
    fn refusals_carry_rabbitmqctl_s_exit_codes_and_texts() {
        let s = state();
        assert_eq!(
            refusal(plan(&s, &req("add_user", &["guest", "x"]))),
            (70, "User \"guest\" already exists".into())
        );
        assert_eq!(
            refusal(plan(&s, &req("delete_user", &["nobody"]))),
            (67, "User \"nobody\" does not exist".into())
        );
        assert_eq!(
            refusal(plan(&s, &req("authenticate_user", &["guest", "bad"]))).0,
            65
        );
        let mut r = req("set_permissions", &["guest", ".*", ".*", ".*"]);
        r.vhost = "nov".into();
        assert_eq!(
            refusal(plan(&s, &r)),
            (69, "Virtual host nov does not exist".into())
        );
        assert_eq!(
            refusal(plan(
                &s,
                &req("set_permissions", &["guest", "(", ".*", ".*"])
            )),
            (69, "regular expression '(' is invalid".into())
        );
    }

    #[test]
    fn a_new_user_s_password_is_stored_salted_never_in_clear() {
        let s = state();
        let Ok(Action::Propose(MetaCommand::AddUser {
            password_hash,
            tags,
            ..
        })) = plan(&s, &req("add_user", &["ys", "ys1234"]))
        else {
            panic!("add_user proposes AddUser");
        };
        assert!(tags.is_empty());
        assert!(!password_hash.contains("ys1234"));
        assert!(crate::metadata::check_password_hash(
            &password_hash,
            "ys1234"
        ));
        // Two hashes of one password differ by their salt.
        let Ok(Action::Propose(MetaCommand::AddUser {
            password_hash: other,
            ..
        })) = plan(&s, &req("add_user", &["ys", "ys1234"]))
        else {
            panic!();
        };
        assert_ne!(password_hash, other);
    }

    #[test]
    fn lists_use_rabbitmqctl_s_keys() {
        let s = state();
        let Ok(Action::List(users)) = plan(&s, &req("list_users", &[])) else {
            panic!();
        };
        assert_eq!(
            users,
            vec![json!({"user": "guest", "tags": ["administrator"]})]
        );
        let Ok(Action::List(perms)) = plan(&s, &req("list_user_permissions", &["guest"])) else {
            panic!();
        };
        assert_eq!(
            perms,
            vec![json!({"vhost": "/", "configure": ".*", "write": ".*", "read": ".*"})]
        );
    }
}
