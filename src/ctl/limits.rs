//! warrenctl's limit and operator-policy commands, with rabbitmqctl 3.10.8's arguments,
//! banners and output: `set_vhost_limits`, `clear_vhost_limits`, `list_vhost_limits`,
//! `set_user_limits`, `clear_user_limits`, `list_user_limits`, `set_operator_policy`,
//! `clear_operator_policy`, `list_operator_policies`. The node runs them
//! (`node/limits.rs`).

use clap::Subcommand;
use serde_json::{json, Value};

use super::access::send;
use super::output::object_table;
use super::{Failure, Formatter};
use crate::cluster::{AdminClient, CommandRequest};

/// rabbitmqctl's limit and operator-policy commands.
#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum LimitCommand {
    /// Set a vhost's limits: '{"max-connections":N,"max-queues":N}' (negative: none)
    #[command(name = "set_vhost_limits")]
    SetVhostLimits {
        #[arg(short = 'p', long = "vhost", default_value = "/")]
        vhost: String,
        definition: String,
    },
    /// Remove a vhost's limits
    #[command(name = "clear_vhost_limits")]
    ClearVhostLimits {
        #[arg(short = 'p', long = "vhost", default_value = "/")]
        vhost: String,
    },
    /// Show a vhost's limits (--global: every vhost's)
    #[command(name = "list_vhost_limits")]
    ListVhostLimits {
        #[arg(short = 'p', long = "vhost", default_value = "/")]
        vhost: String,
        #[arg(long)]
        global: bool,
    },
    /// Set a user's limits: '{"max-connections":N,"max-channels":N}' (merged into theirs)
    #[command(name = "set_user_limits")]
    SetUserLimits {
        username: String,
        definition: String,
    },
    /// Remove one of a user's limits, or all
    #[command(name = "clear_user_limits")]
    ClearUserLimits {
        username: String,
        /// max-connections, max-channels or all
        limit: String,
    },
    /// Show a user's limits (--global: every user's)
    #[command(name = "list_user_limits")]
    ListUserLimits {
        #[arg(long = "user", default_value = "guest")]
        user: String,
        #[arg(long)]
        global: bool,
    },
    /// Set an operator policy (its keys are refused until their features land)
    #[command(name = "set_operator_policy")]
    SetOperatorPolicy {
        #[arg(short = 'p', long = "vhost", default_value = "/")]
        vhost: String,
        #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
        priority: i64,
        #[arg(long = "apply-to", default_value = "all", value_parser = ["all", "queues", "classic_queues", "quorum_queues", "streams", "exchanges"])]
        apply_to: String,
        name: String,
        pattern: String,
        definition: String,
    },
    /// Remove an operator policy
    #[command(name = "clear_operator_policy")]
    ClearOperatorPolicy {
        #[arg(short = 'p', long = "vhost", default_value = "/")]
        vhost: String,
        name: String,
    },
    /// List a vhost's operator policies
    #[command(name = "list_operator_policies")]
    ListOperatorPolicies {
        #[arg(short = 'p', long = "vhost", default_value = "/")]
        vhost: String,
    },
}

impl LimitCommand {
    /// The request to the node, and the banner rabbitmqctl prints first.
    fn request(&self) -> (CommandRequest, String) {
        let req = |command: &str, args: &[&str], vhost: &str, global: bool| CommandRequest {
            command: command.into(),
            args: args.iter().map(|a| a.to_string()).collect(),
            vhost: vhost.into(),
            flags: global.then(|| "global".to_string()).into_iter().collect(),
        };
        match self {
            Self::SetVhostLimits { vhost, definition } => (
                req("set_vhost_limits", &[definition], vhost, false),
                format!("Setting vhost limits to \"{definition}\" for vhost \"{vhost}\" ..."),
            ),
            Self::ClearVhostLimits { vhost } => (
                req("clear_vhost_limits", &[], vhost, false),
                format!("Clearing vhost \"{vhost}\" limits ..."),
            ),
            Self::ListVhostLimits { vhost, global } => (
                req("list_vhost_limits", &[], vhost, *global),
                match global {
                    true => "Listing limits for all vhosts ...".into(),
                    false => format!("Listing limits for vhost \"{vhost}\" ..."),
                },
            ),
            Self::SetUserLimits {
                username,
                definition,
            } => (
                req("set_user_limits", &[username, definition], "/", false),
                format!("Setting user limits to \"{definition}\" for user \"{username}\" ..."),
            ),
            Self::ClearUserLimits { username, limit } => (
                req("clear_user_limits", &[username, limit], "/", false),
                match limit.as_str() {
                    "all" => format!("Clearing all limits for user \"{username}\" ..."),
                    _ => format!("Clearing \"{limit}\" limit for user \"{username}\" ..."),
                },
            ),
            Self::ListUserLimits { user, global } => (
                req("list_user_limits", &[user], "/", *global),
                match global {
                    true => "Listing limits for all users ...".into(),
                    false => format!("Listing limits for user \"{user}\" ..."),
                },
            ),
            Self::SetOperatorPolicy {
                vhost,
                priority,
                apply_to,
                name,
                pattern,
                definition,
            } => (
                req(
                    "set_operator_policy",
                    &[name, pattern, definition, &priority.to_string(), apply_to],
                    vhost,
                    false,
                ),
                format!("Setting operator policy override \"{name}\" for pattern \"{pattern}\" to \"{definition}\" with priority \"{priority}\" for vhost \"{vhost}\" ..."),
            ),
            Self::ClearOperatorPolicy { vhost, name } => (
                req("clear_operator_policy", &[name], vhost, false),
                format!("Clearing operator policy \"{name}\" on vhost \"{vhost}\" ..."),
            ),
            Self::ListOperatorPolicies { vhost } => (
                req("list_operator_policies", &[], vhost, false),
                format!("Listing operator policy overrides for vhost \"{vhost}\" ..."),
            ),
        }
    }
}

/// Run one limit or operator-policy command; returns what to print on stdout.
pub(super) async fn run(
    client: &mut AdminClient,
    cmd: &LimitCommand,
    formatter: Formatter,
) -> Result<String, Failure> {
    let json = formatter == Formatter::Json;
    let (request, banner) = cmd.request();
    let rows = send(client, request).await?;
    Ok(print(cmd, &banner, &rows, json))
}

/// What rabbitmqctl 3.10.8 prints for each command (measured; its shapes differ).
fn print(cmd: &LimitCommand, banner: &str, rows: &Value, json: bool) -> String {
    let first_limits = || rows[0]["limits"].as_str().map(str::to_owned);
    match cmd {
        LimitCommand::ListVhostLimits { global: true, .. } => {
            object_table(banner, &["vhost", "limits"], rows, json)
        }
        LimitCommand::ListUserLimits { global: true, .. } => {
            object_table(banner, &["user", "limits"], rows, json)
        }
        LimitCommand::ListVhostLimits { .. } => match (first_limits(), json) {
            (None, true) => "[]\n".into(),
            (None, false) => format!("{banner}\n\n"),
            (Some(l), true) => format!("{}\n", json!({"result": "ok", "value": l})),
            (Some(l), false) => format!("{banner}\n{l}\n"),
        },
        LimitCommand::ListUserLimits { .. } => {
            let limits = first_limits().unwrap_or_else(|| "{}".into());
            match json {
                true => format!("{}\n", json!({ "message": limits })),
                false => format!("{banner}\n{limits}\n"),
            }
        }
        LimitCommand::ListOperatorPolicies { .. } => object_table(
            banner,
            &[
                "vhost",
                "name",
                "pattern",
                "apply-to",
                "definition",
                "priority",
            ],
            rows,
            json,
        ),
        _ if json => String::new(),
        _ => format!("{banner}\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_lists_print_as_rabbitmqctl_does() {
        let one = json!([{"vhost": "/", "limits": "{\"max-queues\":2}"}]);
        let cmd = LimitCommand::ListVhostLimits {
            vhost: "/".into(),
            global: false,
        };
        let (_, banner) = cmd.request();
        assert_eq!(
            print(&cmd, &banner, &one, false),
            "Listing limits for vhost \"/\" ...\n{\"max-queues\":2}\n"
        );
        assert_eq!(
            print(&cmd, &banner, &one, true),
            "{\"result\":\"ok\",\"value\":\"{\\\"max-queues\\\":2}\"}\n"
        );
        assert_eq!(print(&cmd, &banner, &json!([]), true), "[]\n");
        let user = LimitCommand::ListUserLimits {
            user: "tp".into(),
            global: false,
        };
        let rows = json!([{"user": "tp", "limits": "{}"}]);
        assert_eq!(print(&user, "b", &rows, true), "{\"message\":\"{}\"}\n");
    }
}
