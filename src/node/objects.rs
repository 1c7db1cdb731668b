//! rabbitmqctl's commands on a vhost's objects: `list_exchanges` and `list_bindings` from
//! the local metadata (with rabbitmqctl's keys; every queue's binding to the default
//! exchange listed as RabbitMQ lists it), `purge_queue` and `delete_queue` through the
//! broker, as a client's `queue.purge` / `queue.delete` would.

use serde_json::{json, Value};

use super::control::AppView;
use crate::amqp::field::{int_value, str_value, type_name};
use crate::cluster::{CommandOutcome, CommandRequest};
use crate::metadata::Destination;

/// The commands this module answers.
pub(super) fn handles(command: &str) -> bool {
    matches!(
        command,
        "list_exchanges" | "list_bindings" | "purge_queue" | "delete_queue"
    )
}

fn list(rows: Vec<Value>) -> CommandOutcome {
    CommandOutcome::with_json(Value::Array(rows).to_string())
}

/// Lists of a vhost that does not exist are empty, as rabbitmqctl 3.10.8 has them; a
/// missing queue is refused with its exit codes and texts.
pub(super) async fn run(view: &AppView, req: &CommandRequest) -> CommandOutcome {
    let vhost = req.vhost.as_str();
    match req.command.as_str() {
        "list_exchanges" => list(
            view.broker
                .read_meta()
                .exchanges(vhost)
                .map(|x| json!({"name": x.name, "type": x.kind.as_str()}))
                .collect(),
        ),
        "list_bindings" => {
            let meta = view.broker.read_meta();
            let defaults = meta.queues(vhost).map(|q| {
                json!({"source_name": "", "source_kind": "exchange", "destination_name": q.name,
                       "destination_kind": "queue", "routing_key": q.name, "arguments": []})
            });
            let explicit = meta.bindings(vhost).map(|b| {
                let (name, kind) = match &b.destination {
                    Destination::Queue(q) => (q, "queue"),
                    Destination::Exchange(x) => (x, "exchange"),
                };
                let arguments: Vec<Value> = b
                    .arguments
                    .inner()
                    .iter()
                    .map(|(k, v)| {
                        let value = str_value(v)
                            .map(Value::from)
                            .or_else(|| int_value(v).map(Value::from))
                            .unwrap_or(Value::Null);
                        json!([k.as_str(), type_name(v), value])
                    })
                    .collect();
                json!({"source_name": b.source, "source_kind": "exchange",
                       "destination_name": name, "destination_kind": kind,
                       "routing_key": b.routing_key, "arguments": arguments})
            });
            list(defaults.chain(explicit).collect())
        }
        "purge_queue" | "delete_queue" => {
            let Some(queue) = req.args.first() else {
                return CommandOutcome::refused(
                    64,
                    format!("{}: a queue name is needed", req.command),
                );
            };
            if view.broker.read_meta().queue(vhost, queue).is_none() {
                return match req.command.as_str() {
                    "purge_queue" => CommandOutcome::refused(69, "not_found"),
                    _ => CommandOutcome::refused(64, "Queue not found"),
                };
            }
            // An admin acts for nobody's connection: exclusive queues stay their owner's.
            let result = if req.command == "purge_queue" {
                view.broker.purge_queue(vhost, queue, 0).await
            } else {
                let flag = |f: &str| req.flags.iter().any(|g| g == f);
                view.broker
                    .delete_queue(vhost, queue, flag("if-unused"), flag("if-empty"), 0)
                    .await
            };
            match result {
                Ok(count) => CommandOutcome::with_json(json!({"messages": count}).to_string()),
                Err(e) => CommandOutcome::refused(70, e.text),
            }
        }
        other => CommandOutcome::refused(70, format!("unknown command '{other}'")),
    }
}
