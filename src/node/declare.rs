//! Admin commands that declare, delete and bind a vhost's objects (`declare_queue`,
//! `declare_exchange`, `delete_exchange`, `bind`, `unbind`) through the broker
//! operations a client's `queue.declare` / `exchange.declare` / `queue.bind` use, so the
//! HTTP API changes exactly what AMQP would. Their options come as one JSON object
//! argument; a refusal carries the AMQP reply code as its exit code and RabbitMQ's text.

use amq_protocol::types::FieldTable;
use serde_json::{Map, Value};

use super::control::AppView;
use crate::amqp::ReplyCode;
use crate::broker::BrokerError;
use crate::cluster::{CommandOutcome, CommandRequest};
use crate::metadata::definitions::field_table;

/// The commands this module answers.
pub(super) fn handles(command: &str) -> bool {
    matches!(
        command,
        "declare_queue" | "declare_exchange" | "delete_exchange" | "bind" | "unbind"
    )
}

/// A refusal as the HTTP side reads it: the reply code, then the text.
pub(super) fn refused(code: ReplyCode, text: impl Into<String>) -> CommandOutcome {
    CommandOutcome::refused(i32::from(code.code()), text)
}

/// A broker refusal, its text without the `NAME - ` prefix AMQP shows (RabbitMQ's HTTP
/// reasons have none).
pub(super) fn broker_refusal(e: BrokerError) -> CommandOutcome {
    let prefix = format!("{} - ", e.code.name());
    let text = e.text.strip_prefix(&prefix).unwrap_or(&e.text);
    refused(e.code, text)
}

/// The JSON object argument `i` (an empty object when absent).
pub(super) fn options(
    req: &CommandRequest,
    i: usize,
) -> Result<Map<String, Value>, CommandOutcome> {
    match req.args.get(i).map(|a| serde_json::from_str::<Value>(a)) {
        None => Ok(Map::new()),
        Some(Ok(Value::Object(o))) => Ok(o),
        Some(_) => Err(refused(
            ReplyCode::PreconditionFailed,
            format!("{}: the options must be a JSON object", req.command),
        )),
    }
}

fn flag(o: &Map<String, Value>, key: &str, default: bool) -> Result<bool, CommandOutcome> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        // RabbitMQ's forms post "true"/"false" as strings.
        Some(Value::String(s)) if s == "true" || s == "false" => Ok(s == "true"),
        Some(other) => Err(refused(
            ReplyCode::PreconditionFailed,
            format!("'{key}' must be true or false, not {other}"),
        )),
    }
}

pub(super) fn text<'a>(o: &'a Map<String, Value>, key: &str) -> Result<&'a str, CommandOutcome> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(""),
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(refused(
            ReplyCode::PreconditionFailed,
            format!("'{key}' must be a string, not {other}"),
        )),
    }
}

pub(super) fn arguments(o: &Map<String, Value>) -> Result<FieldTable, CommandOutcome> {
    match o.get("arguments") {
        None | Some(Value::Null) => Ok(FieldTable::default()),
        Some(Value::Object(a)) => {
            field_table(a).map_err(|e| refused(ReplyCode::PreconditionFailed, e))
        }
        // RabbitMQ's UI sends an empty list for no arguments.
        Some(Value::Array(a)) if a.is_empty() => Ok(FieldTable::default()),
        Some(other) => Err(refused(
            ReplyCode::PreconditionFailed,
            format!("'arguments' must be an object, not {other}"),
        )),
    }
}

fn name(req: &CommandRequest) -> Result<&str, CommandOutcome> {
    req.args.first().map(String::as_str).ok_or_else(|| {
        refused(
            ReplyCode::PreconditionFailed,
            format!("{}: a name is needed", req.command),
        )
    })
}

pub(super) async fn run(view: &AppView, req: &CommandRequest) -> CommandOutcome {
    match run_checked(view, req).await {
        Ok(outcome) | Err(outcome) => outcome,
    }
}

async fn run_checked(
    view: &AppView,
    req: &CommandRequest,
) -> Result<CommandOutcome, CommandOutcome> {
    let vhost = req.vhost.as_str();
    let broker = &view.broker;
    match req.command.as_str() {
        "declare_queue" => {
            let o = options(req, 1)?;
            let (durable, auto_delete) =
                (flag(&o, "durable", true)?, flag(&o, "auto_delete", false)?);
            broker
                .declare_queue(
                    vhost,
                    name(req)?,
                    false,
                    durable,
                    None,
                    0,
                    auto_delete,
                    arguments(&o)?,
                )
                .await
                .map_err(broker_refusal)?;
        }
        "declare_exchange" => {
            let o = options(req, 1)?;
            let kind = match text(&o, "type")? {
                "" => "direct",
                kind => kind,
            };
            broker
                .declare_exchange(
                    vhost,
                    name(req)?,
                    kind,
                    false,
                    flag(&o, "durable", true)?,
                    flag(&o, "auto_delete", false)?,
                    flag(&o, "internal", false)?,
                    arguments(&o)?,
                )
                .await
                .map_err(broker_refusal)?;
        }
        "delete_exchange" => {
            let name = name(req)?;
            if broker.read_meta().exchange(vhost, name).is_none() {
                return Err(refused(
                    ReplyCode::NotFound,
                    format!("no exchange '{name}' in vhost '{vhost}'"),
                ));
            }
            let if_unused = req.flags.iter().any(|f| f == "if-unused");
            broker
                .delete_exchange(vhost, name, if_unused)
                .await
                .map_err(broker_refusal)?;
        }
        "bind" | "unbind" => {
            let o = options(req, 0)?;
            let to_exchange = match text(&o, "destination_type")? {
                "queue" | "q" => false,
                "exchange" | "e" => true,
                other => {
                    return Err(refused(
                        ReplyCode::PreconditionFailed,
                        format!("unknown destination type '{other}'"),
                    ))
                }
            };
            broker
                .bind(
                    vhost,
                    text(&o, "source")?,
                    text(&o, "destination")?,
                    to_exchange,
                    text(&o, "routing_key")?,
                    arguments(&o)?,
                    0,
                    req.command == "bind",
                )
                .await
                .map_err(broker_refusal)?;
        }
        other => {
            return Err(refused(
                ReplyCode::NotImplemented,
                format!("unknown command '{other}'"),
            ))
        }
    }
    Ok(CommandOutcome::default())
}
