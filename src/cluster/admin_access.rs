//! The access part of the admin service: rabbitmqctl's user, vhost and permission
//! commands, sent by name with their arguments (as rabbitmqctl sends commands to a
//! node), answered with rabbitmqctl's exit code or a JSON list. The server side
//! dispatches to [`AdminHandler`](super::AdminHandler).

use super::admin::{refused, AdminClient, AdminError};
use super::pb::admin;

/// One access command: its rabbitmqctl name, positional arguments and `-p` vhost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessRequest {
    pub command: String,
    pub args: Vec<String>,
    pub vhost: String,
}

/// The node's answer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccessOutcome {
    /// 0, or rabbitmqctl's exit code for the refusal, with its message.
    pub exit_code: i32,
    pub error: String,
    /// For list commands: a JSON array of objects with rabbitmqctl's keys.
    pub json: String,
}

impl AccessOutcome {
    pub fn refused(exit_code: i32, error: impl Into<String>) -> AccessOutcome {
        AccessOutcome {
            exit_code,
            error: error.into(),
            json: String::new(),
        }
    }
}

/// What the handler returns for [`AccessRequest`].
pub type AccessFuture<'a> = futures::future::BoxFuture<'a, Result<AccessOutcome, String>>;

pub(super) fn access_from_pb(r: admin::AccessRequest) -> AccessRequest {
    AccessRequest {
        command: r.command,
        args: r.args,
        vhost: r.vhost,
    }
}

pub(super) fn outcome_to_pb(o: AccessOutcome) -> admin::AccessReply {
    admin::AccessReply {
        exit_code: o.exit_code,
        error: o.error,
        json: o.json,
    }
}

impl AdminClient {
    pub async fn access(&mut self, request: AccessRequest) -> Result<AccessOutcome, AdminError> {
        let request = admin::AccessRequest {
            command: request.command,
            args: request.args,
            vhost: request.vhost,
        };
        let reply = self
            .inner
            .access(request)
            .await
            .map_err(refused)?
            .into_inner();
        Ok(AccessOutcome {
            exit_code: reply.exit_code,
            error: reply.error,
            json: reply.json,
        })
    }
}
