//! rabbitmqctl's limit and operator-policy commands on the node: `set_vhost_limits`,
//! `clear_vhost_limits`, `list_vhost_limits`, `set_user_limits`, `clear_user_limits`,
//! `list_user_limits`, and `set_operator_policy`, `clear_operator_policy`,
//! `list_operator_policies`, with rabbitmqctl 3.10.8's texts and exit codes (measured).
//!
//! Every key an operator policy may hold in RabbitMQ 3.10 (`expires`, `message-ttl`,
//! `max-length`, `max-length-bytes`, `max-in-memory-length`, `max-in-memory-bytes`,
//! `delivery-limit`) belongs to a feature WarrenMQ does not have yet, so
//! `set_operator_policy` refuses each by name, as `set_policy` does: no operator policy
//! can exist yet, and the list is always empty.

use serde_json::{json, Value};

use super::access::{arg, code, need_user, need_vhost, Action, Missing, Refusal};
use crate::cluster::CommandRequest;
use crate::metadata::{parse_limits, MetaCommand, MetaState, USER_LIMITS, VHOST_LIMITS};

/// The keys RabbitMQ 3.10 allows in an operator policy.
const OPERATOR_POLICY_KEYS: &[&str] = &[
    "expires",
    "message-ttl",
    "max-length",
    "max-length-bytes",
    "max-in-memory-length",
    "max-in-memory-bytes",
    "delivery-limit",
];

/// A JSON value as Erlang prints the term it decodes to (`<<"x">>`, `1`, `true`).
fn erl_value(v: &Value) -> String {
    match v {
        Value::String(s) => format!("<<\"{s}\">>"),
        other => other.to_string(),
    }
}

/// A limits object as rabbitmqctl prints it: compact JSON.
fn limits_text(limits: &crate::metadata::Limits) -> String {
    serde_json::to_string(limits).expect("limits encode")
}

fn flag(req: &CommandRequest, name: &str) -> bool {
    req.flags.iter().any(|f| f == name)
}

/// Check a limit or operator-policy command against the metadata and decide what it does.
pub(super) fn plan(meta: &MetaState, req: &CommandRequest) -> Result<Action, Refusal> {
    let vhost = req.vhost.as_str();
    Ok(match req.command.as_str() {
        "set_vhost_limits" => {
            let definition = arg(req, 0)?;
            need_vhost(meta, vhost, Missing::QuotedVhost)?;
            let limits = parse_limits(definition, VHOST_LIMITS, "limits")
                .map_err(|e| (code::UNAVAILABLE, e))?;
            Action::Propose(MetaCommand::SetVhostLimits {
                vhost: vhost.into(),
                limits,
            })
        }
        "clear_vhost_limits" => {
            if !meta.vhost_exists(vhost) {
                return Err((code::UNAVAILABLE, "Parameter does not exist".into()));
            }
            Action::Propose(MetaCommand::SetVhostLimits {
                vhost: vhost.into(),
                limits: Default::default(),
            })
        }
        "list_vhost_limits" => {
            let global = flag(req, "global");
            if !global {
                need_vhost(meta, vhost, Missing::QuotedVhost)?;
            }
            Action::List(
                meta.all_vhost_limits()
                    .filter(|(v, _)| global || *v == vhost)
                    .map(|(v, l)| json!({"vhost": v, "limits": limits_text(l)}))
                    .collect(),
            )
        }
        "set_user_limits" => {
            let user = arg(req, 0)?;
            let definition = arg(req, 1)?;
            // The definition is checked before the user exists, as RabbitMQ checks it.
            let limits = parse_limits(definition, USER_LIMITS, "user-limits")
                .map_err(|e| (code::UNAVAILABLE, e))?;
            need_user(meta, user, Missing::UserTerm)?;
            Action::Propose(MetaCommand::SetUserLimits {
                user: user.into(),
                limits,
            })
        }
        "clear_user_limits" => {
            let user = arg(req, 0)?;
            let which = arg(req, 1)?;
            need_user(meta, user, Missing::UserTerm)?;
            Action::Propose(MetaCommand::ClearUserLimits {
                user: user.into(),
                limit: (which != "all").then(|| which.to_owned()),
            })
        }
        "list_user_limits" => {
            let global = flag(req, "global");
            let user = req.args.first().map_or("guest", String::as_str);
            if !global {
                need_user(meta, user, Missing::UserTerm)?;
            }
            let rows: Vec<Value> = match global {
                true => meta
                    .all_user_limits()
                    .map(|(u, l)| json!({"user": u, "limits": limits_text(l)}))
                    .collect(),
                // One user: their limits, `{}` when they have none, as rabbitmqctl prints.
                false => vec![json!({
                    "user": user,
                    "limits": meta.user_limits(user).map_or("{}".into(), limits_text),
                })],
            };
            Action::List(rows)
        }
        "set_operator_policy" => {
            let (pattern, definition) = (arg(req, 1)?, arg(req, 2)?);
            // Priority (JSON: a number) and apply-to, as warrenctl and the HTTP API send
            // them; absent from older clients.
            let priority = req.args.get(3).map_or("0", String::as_str);
            let apply_to = req.args.get(4).map_or("all", String::as_str);
            need_vhost(meta, vhost, Missing::QuotedVhost)?;
            let refused =
                |text: String| (code::UNAVAILABLE, format!("Validation failed\n\n{text}\n"));
            let value: Value = serde_json::from_str(definition).map_err(|_| {
                (
                    code::UNAVAILABLE,
                    "JSON decoding error. Reason: badarg".into(),
                )
            })?;
            // RabbitMQ's order: priority, pattern, apply-to, definition.
            match serde_json::from_str::<Value>(priority) {
                Ok(Value::Number(_)) => {}
                Ok(other) => {
                    return Err(refused(format!(
                        "priority should be a number, actually was {}",
                        erl_value(&other)
                    )))
                }
                Err(_) => {
                    return Err(refused(format!(
                        "priority should be a number, actually was <<\"{priority}\">>"
                    )))
                }
            }
            if let Err(e) = regex::Regex::new(pattern) {
                return Err(refused(format!(
                    "pattern should be regular expression but is invalid: {e}"
                )));
            }
            if !["all", "queues", "exchanges"].contains(&apply_to) {
                return Err(refused(format!(
                    "apply-to '{apply_to}' unrecognised; should be 'queues', 'exchanges' or 'all'"
                )));
            }
            let Some(object) = value.as_object().filter(|o| !o.is_empty()) else {
                return Err(refused("no policy provided".into()));
            };
            let unknown: Vec<String> = object
                .iter()
                .filter(|(k, _)| !OPERATOR_POLICY_KEYS.contains(&k.as_str()))
                .map(|(k, v)| match v {
                    Value::String(s) => format!("{{<<\"{k}\">>,<<\"{s}\">>}}"),
                    other => format!("{{<<\"{k}\">>,{other}}}"),
                })
                .collect();
            if !unknown.is_empty() {
                return Err(refused(format!(
                    "[{}] are not recognised policy settings",
                    unknown.join(",")
                )));
            }
            let key = object.keys().next().expect("not empty");
            return Err(refused(format!(
                "policy key '{key}' is not supported by WarrenMQ yet (refused rather than ignored)"
            )));
        }
        "clear_operator_policy" => {
            arg(req, 0)?;
            return Err((code::UNAVAILABLE, "Parameter does not exist".into()));
        }
        "list_operator_policies" => {
            need_vhost(meta, vhost, Missing::QuotedVhost)?;
            Action::List(Vec::new())
        }
        other => return Err((code::SOFTWARE, format!("unknown command '{other}'"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::{hash_password, ApplyMeta};

    fn state() -> MetaState {
        let mut s = MetaState::default();
        let meta = ApplyMeta {
            index: 1,
            time_ms: 0,
        };
        let boot = MetaCommand::Bootstrap {
            default_user: "guest".into(),
            password_hash: hash_password("guest", [1, 2, 3, 4]),
        };
        s.apply(meta, boot);
        s
    }

    fn req(command: &str, args: &[&str], vhost: &str) -> CommandRequest {
        CommandRequest {
            command: command.into(),
            args: args.iter().map(|a| a.to_string()).collect(),
            vhost: vhost.into(),
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
    fn limit_commands_refuse_as_rabbitmqctl_does() {
        let s = state();
        let set = |def: &str, vhost: &str| plan(&s, &req("set_vhost_limits", &[def], vhost));
        assert!(matches!(
            set(r#"{"max-queues":1}"#, "/"),
            Ok(Action::Propose(_))
        ));
        assert_eq!(
            refusal(set(r#"{"max-queues":1}"#, "nov")),
            (65, "Virtual host 'nov' does not exist".into())
        );
        assert_eq!(refusal(set("notjson", "/")).0, 69);
        assert_eq!(
            refusal(plan(
                &s,
                &req("set_user_limits", &["nobody", r#"{"max-channels":1}"#], "/")
            )),
            (69, "{:no_such_user, \"nobody\"}".into())
        );
        // A bad definition is refused before a missing user, as RabbitMQ checks them.
        assert_eq!(
            refusal(plan(
                &s,
                &req(
                    "set_user_limits",
                    &["nobody", r#"{"max-channels":"5"}"#],
                    "/"
                )
            )),
            (
                69,
                "max-channels should be a number, actually was <<\"5\">>".into()
            )
        );
        assert_eq!(
            refusal(plan(&s, &req("clear_vhost_limits", &[], "nov"))),
            (69, "Parameter does not exist".into())
        );
    }

    #[test]
    fn operator_policies_refuse_every_key_by_name_until_its_feature_lands() {
        let s = state();
        let set = |def: &str| {
            refusal(plan(
                &s,
                &req("set_operator_policy", &["op", "^", def], "/"),
            ))
        };
        assert!(set(r#"{"max-length":10}"#)
            .1
            .contains("policy key 'max-length' is not supported by WarrenMQ yet"));
        assert_eq!(
            set(r#"{"ha-mode":"all"}"#).1,
            "Validation failed\n\n[{<<\"ha-mode\">>,<<\"all\">>}] are not recognised policy settings\n"
        );
        assert_eq!(set("{}").1, "Validation failed\n\nno policy provided\n");
        // Priority, pattern, apply-to and definition are checked in RabbitMQ's order.
        let full = |pattern: &str, priority: &str, apply_to: &str| {
            let args = ["op", pattern, r#"{"max-length":1}"#, priority, apply_to];
            refusal(plan(&s, &req("set_operator_policy", &args, "/"))).1
        };
        assert_eq!(
            full("(", "\"x\"", "foo"),
            "Validation failed\n\npriority should be a number, actually was <<\"x\">>\n"
        );
        assert!(full("(", "1", "foo").contains("pattern should be regular expression"));
        assert_eq!(
            full("^a", "1.5", "foo"),
            "Validation failed\n\napply-to 'foo' unrecognised; should be 'queues', 'exchanges' or 'all'\n"
        );
        assert!(full("^a", "1", "queues").contains("policy key 'max-length' is not supported"));
        let Ok(Action::List(rows)) = plan(&s, &req("list_operator_policies", &[], "/")) else {
            panic!("a list");
        };
        assert!(rows.is_empty());
    }
}
