//! warrenctl's user, vhost and permission commands, with rabbitmqctl's names, arguments,
//! banners, table and JSON output, and exit codes. The node checks and runs them
//! (`node/access.rs`); this side parses and prints.

use clap::Subcommand;
use serde_json::Value;

use super::output::object_table;
use super::{Failure, Formatter};
use crate::cluster::{AdminClient, CommandRequest};

/// rabbitmqctl's access commands.
#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum AccessCommand {
    /// Create a user (with no tags and no permissions)
    #[command(name = "add_user")]
    AddUser { username: String, password: String },
    /// Delete a user; its connections are closed
    #[command(name = "delete_user")]
    DeleteUser { username: String },
    /// Change a user's password
    #[command(name = "change_password")]
    ChangePassword { username: String, password: String },
    /// Remove a user's password: it can no longer log in with one
    #[command(name = "clear_password")]
    ClearPassword { username: String },
    /// Check a user's password
    #[command(name = "authenticate_user")]
    AuthenticateUser { username: String, password: String },
    /// Set a user's tags (administrator, monitoring, policymaker, management,
    /// impersonator, or any other word); none clears them
    #[command(name = "set_user_tags")]
    SetUserTags { username: String, tags: Vec<String> },
    /// List users and their tags
    #[command(name = "list_users")]
    ListUsers,
    /// Name the cluster (instead of after its first node)
    #[command(name = "set_cluster_name")]
    SetClusterName { name: String },
    /// Create a virtual host
    #[command(name = "add_vhost")]
    AddVhost { vhost: String },
    /// Delete a virtual host with its exchanges, queues and their Raft groups
    #[command(name = "delete_vhost")]
    DeleteVhost { vhost: String },
    /// List virtual hosts
    #[command(name = "list_vhosts")]
    ListVhosts,
    /// Grant a user configure, write and read regexes in a virtual host
    #[command(name = "set_permissions")]
    SetPermissions {
        #[arg(short = 'p', long = "vhost", default_value = "/")]
        vhost: String,
        username: String,
        conf: String,
        write: String,
        read: String,
    },
    /// Revoke a user's permissions in a virtual host
    #[command(name = "clear_permissions")]
    ClearPermissions {
        #[arg(short = 'p', long = "vhost", default_value = "/")]
        vhost: String,
        username: String,
    },
    /// List the permissions granted in a virtual host
    #[command(name = "list_permissions")]
    ListPermissions {
        #[arg(short = 'p', long = "vhost", default_value = "/")]
        vhost: String,
    },
    /// List a user's permissions in every virtual host
    #[command(name = "list_user_permissions")]
    ListUserPermissions { username: String },
    /// Grant a user write and read regexes over routing keys on a topic exchange
    /// (`{username}` and `{vhost}` in them stand for the connection's)
    #[command(name = "set_topic_permissions")]
    SetTopicPermissions {
        #[arg(short = 'p', long = "vhost", default_value = "/")]
        vhost: String,
        username: String,
        exchange: String,
        write: String,
        read: String,
    },
    /// Revoke a user's topic permissions on one exchange, or on all
    #[command(name = "clear_topic_permissions")]
    ClearTopicPermissions {
        #[arg(short = 'p', long = "vhost", default_value = "/")]
        vhost: String,
        username: String,
        exchange: Option<String>,
    },
    /// List the topic permissions granted in a virtual host
    #[command(name = "list_topic_permissions")]
    ListTopicPermissions {
        #[arg(short = 'p', long = "vhost", default_value = "/")]
        vhost: String,
    },
    /// List a user's topic permissions in every virtual host
    #[command(name = "list_user_topic_permissions")]
    ListUserTopicPermissions { username: String },
}

impl AccessCommand {
    /// The request to the node, and the banner rabbitmqctl prints first.
    fn request(&self) -> (CommandRequest, String) {
        let req = |command: &str, args: &[&str], vhost: &str| CommandRequest {
            command: command.into(),
            args: args.iter().map(|a| a.to_string()).collect(),
            vhost: vhost.into(),
            flags: Vec::new(),
        };
        match self {
            Self::AddUser { username, password } => (
                req("add_user", &[username, password], "/"),
                format!("Adding user \"{username}\" ..."),
            ),
            Self::DeleteUser { username } => (
                req("delete_user", &[username], "/"),
                format!("Deleting user \"{username}\" ..."),
            ),
            Self::ChangePassword { username, password } => (
                req("change_password", &[username, password], "/"),
                format!("Changing password for user \"{username}\" ..."),
            ),
            Self::ClearPassword { username } => (
                req("clear_password", &[username], "/"),
                format!("Clearing password for user \"{username}\" ..."),
            ),
            Self::AuthenticateUser { username, password } => (
                req("authenticate_user", &[username, password], "/"),
                format!("Authenticating user \"{username}\" ..."),
            ),
            Self::SetUserTags { username, tags } => {
                let mut args = vec![username.as_str()];
                args.extend(tags.iter().map(String::as_str));
                (
                    req("set_user_tags", &args, "/"),
                    format!(
                        "Setting tags for user \"{username}\" to [{}] ...",
                        tags.join(", ")
                    ),
                )
            }
            Self::ListUsers => (req("list_users", &[], "/"), "Listing users ...".into()),
            Self::SetClusterName { name } => (
                req("set_cluster_name", &[name], "/"),
                format!("Setting cluster name to {name} ..."),
            ),
            Self::AddVhost { vhost } => (
                req("add_vhost", &[vhost], "/"),
                format!("Adding vhost \"{vhost}\" ..."),
            ),
            Self::DeleteVhost { vhost } => (
                req("delete_vhost", &[vhost], "/"),
                format!("Deleting vhost \"{vhost}\" ..."),
            ),
            Self::ListVhosts => (req("list_vhosts", &[], "/"), "Listing vhosts ...".into()),
            Self::SetPermissions {
                vhost,
                username,
                conf,
                write,
                read,
            } => (
                req("set_permissions", &[username, conf, write, read], vhost),
                format!("Setting permissions for user \"{username}\" in vhost \"{vhost}\" ..."),
            ),
            Self::ClearPermissions { vhost, username } => (
                req("clear_permissions", &[username], vhost),
                format!("Clearing permissions for user \"{username}\" in vhost \"{vhost}\" ..."),
            ),
            Self::ListPermissions { vhost } => (
                req("list_permissions", &[], vhost),
                format!("Listing permissions for vhost \"{vhost}\" ..."),
            ),
            Self::ListUserPermissions { username } => (
                req("list_user_permissions", &[username], "/"),
                format!("Listing permissions for user \"{username}\" ..."),
            ),
            Self::SetTopicPermissions {
                vhost,
                username,
                exchange,
                write,
                read,
            } => (
                req("set_topic_permissions", &[username, exchange, write, read], vhost),
                format!("Setting topic permissions on \"{exchange}\" for user \"{username}\" in vhost \"{vhost}\" ..."),
            ),
            Self::ClearTopicPermissions {
                vhost,
                username,
                exchange,
            } => match exchange {
                Some(exchange) => (
                    req("clear_topic_permissions", &[username, exchange], vhost),
                    format!("Clearing topic permissions on \"{exchange}\" for user \"{username}\" in vhost \"{vhost}\" ..."),
                ),
                None => (
                    req("clear_topic_permissions", &[username], vhost),
                    format!("Clearing topic permissions for user \"{username}\" in vhost \"{vhost}\" ..."),
                ),
            },
            Self::ListTopicPermissions { vhost } => (
                req("list_topic_permissions", &[], vhost),
                format!("Listing topic permissions for vhost \"{vhost}\" ..."),
            ),
            Self::ListUserTopicPermissions { username } => (
                req("list_user_topic_permissions", &[username], "/"),
                format!("Listing topic permissions for user \"{username}\" ..."),
            ),
        }
    }

    /// The columns of a list command's table, in rabbitmqctl's order.
    fn columns(&self) -> &'static [&'static str] {
        match self {
            Self::ListUsers => &["user", "tags"],
            Self::ListVhosts => &["name"],
            Self::ListPermissions { .. } => &["user", "configure", "write", "read"],
            Self::ListUserPermissions { .. } => &["vhost", "configure", "write", "read"],
            Self::ListTopicPermissions { .. } => &["user", "exchange", "write", "read"],
            Self::ListUserTopicPermissions { .. } => &["vhost", "exchange", "write", "read"],
            _ => &[],
        }
    }
}

/// Send a command; its JSON reply (`null` when it has none), or the refusal with
/// rabbitmqctl's exit code.
pub(super) async fn send(
    client: &mut AdminClient,
    request: CommandRequest,
) -> Result<Value, Failure> {
    let outcome = client.command(request).await?;
    if outcome.exit_code != 0 {
        let code = u8::try_from(outcome.exit_code).unwrap_or(super::exit::SOFTWARE);
        return Err(Failure::new(code, outcome.error));
    }
    if outcome.json.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(&outcome.json)
        .map_err(|e| Failure::new(super::exit::SOFTWARE, format!("bad reply: {e}")))
}

/// Run one access command; returns what to print on stdout.
pub(super) async fn run(
    client: &mut AdminClient,
    cmd: &AccessCommand,
    formatter: Formatter,
) -> Result<String, Failure> {
    let (request, banner) = cmd.request();
    let rows = send(client, request).await?;
    let columns = cmd.columns();
    if columns.is_empty() {
        return Ok(match (cmd, formatter) {
            (_, Formatter::Json) => String::new(),
            (AccessCommand::AuthenticateUser { .. }, _) => format!("{banner}\nSuccess\n"),
            _ => format!("{banner}\n"),
        });
    }
    let json = formatter == Formatter::Json;
    let table = object_table(&banner, columns, &rows, json);
    if matches!(cmd, AccessCommand::ListUserTopicPermissions { .. }) && !json {
        // rabbitmqctl 3.10.8 prints this list without its header line.
        let mut lines = table.lines();
        let banner = lines.next().unwrap_or_default();
        let rows: Vec<&str> = lines.skip(1).collect();
        return Ok(format!(
            "{banner}\n{}",
            rows.iter().map(|r| format!("{r}\n")).collect::<String>()
        ));
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn banners_and_requests_follow_rabbitmqctl() {
        let cmd = AccessCommand::SetPermissions {
            vhost: "v".into(),
            username: "ys".into(),
            conf: ".*".into(),
            write: "w".into(),
            read: "r".into(),
        };
        let (req, banner) = cmd.request();
        assert_eq!(req.command, "set_permissions");
        assert_eq!(req.args, ["ys", ".*", "w", "r"]);
        assert_eq!(req.vhost, "v");
        assert_eq!(
            banner,
            "Setting permissions for user \"ys\" in vhost \"v\" ..."
        );
        let tags = AccessCommand::SetUserTags {
            username: "admin".into(),
            tags: vec!["administrator".into(), "monitoring".into()],
        };
        assert_eq!(
            tags.request().1,
            "Setting tags for user \"admin\" to [administrator, monitoring] ..."
        );
    }
}
