//! rabbitmqctl commands by name: users, vhosts, permissions and objects (`add_user`,
//! `list_exchanges`, `purge_queue`, ...), sent with their arguments (as rabbitmqctl sends
//! commands to a node), answered with rabbitmqctl's exit code or a JSON list. The server
//! side dispatches to [`AdminHandler`](super::AdminHandler).

use super::admin::{refused, AdminClient, AdminError};
use super::pb::admin;

/// One rabbitmqctl command: its name, positional arguments, `-p` vhost and flags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandRequest {
    pub command: String,
    pub args: Vec<String>,
    pub vhost: String,
    /// Flags without their dashes (`if-empty`).
    pub flags: Vec<String>,
}

/// The node's answer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommandOutcome {
    /// 0, or rabbitmqctl's exit code for the refusal, with its message.
    pub exit_code: i32,
    pub error: String,
    /// For list commands: a JSON array of objects with rabbitmqctl's keys.
    pub json: String,
}

impl CommandOutcome {
    /// A success answered with a JSON document.
    pub fn with_json(json: String) -> CommandOutcome {
        CommandOutcome {
            json,
            ..CommandOutcome::default()
        }
    }

    pub fn refused(exit_code: i32, error: impl Into<String>) -> CommandOutcome {
        CommandOutcome {
            exit_code,
            error: error.into(),
            json: String::new(),
        }
    }
}

/// What the handler returns for [`CommandRequest`].
pub type CommandFuture<'a> = futures::future::BoxFuture<'a, Result<CommandOutcome, String>>;

pub(super) fn command_from_pb(r: admin::CommandRequest) -> CommandRequest {
    CommandRequest {
        command: r.command,
        args: r.args,
        vhost: r.vhost,
        flags: r.flags,
    }
}

pub(super) fn outcome_to_pb(o: CommandOutcome) -> admin::CommandReply {
    admin::CommandReply {
        exit_code: o.exit_code,
        error: o.error,
        json: o.json,
    }
}

impl AdminClient {
    pub async fn command(&mut self, request: CommandRequest) -> Result<CommandOutcome, AdminError> {
        let request = admin::CommandRequest {
            command: request.command,
            args: request.args,
            vhost: request.vhost,
            flags: request.flags,
        };
        let reply = self
            .inner
            .command(request)
            .await
            .map_err(refused)?
            .into_inner();
        Ok(CommandOutcome {
            exit_code: reply.exit_code,
            error: reply.error,
            json: reply.json,
        })
    }
}
