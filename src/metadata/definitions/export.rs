//! The metadata as RabbitMQ 3.10.8 exports it: the keys of `rabbitmqctl
//! export_definitions` (sorted, as it writes them) plus `product_name` and
//! `product_version`, as the HTTP API's export has them.

use serde_json::{json, Value};

use super::fields::table_json;
use super::{DEFAULT_VHOST_DESCRIPTION, RABBITMQ_VERSION};
use crate::metadata::password::HashingAlgorithm;
use crate::metadata::{Destination, MetaState};

/// The metadata as RabbitMQ 3.10.8 exports it (keys sorted, as rabbitmqctl writes them).
/// Exclusive queues and the predeclared exchanges are left out, as RabbitMQ leaves them
/// out; internal exchanges are written (as the HTTP API's export writes them).
pub fn export(state: &MetaState, product_version: &str) -> Value {
    let users: Vec<Value> = state
        .users
        .iter()
        .map(|(name, u)| {
            // A cleared password exports as RabbitMQ's: empty, with the default algorithm.
            let algorithm =
                HashingAlgorithm::of(&u.password_hash).unwrap_or(HashingAlgorithm::Sha256);
            json!({
                "name": name,
                "password_hash": u.password_hash,
                "hashing_algorithm": algorithm.name(),
                "tags": u.tags,
                "limits": state.user_limits(name).cloned().unwrap_or_default(),
            })
        })
        .collect();
    let vhosts: Vec<Value> = state
        .vhosts
        .keys()
        .map(|name| {
            let limits: Vec<Value> = state
                .vhost_limits(name)
                .into_iter()
                .flatten()
                .map(|(k, v)| json!([k, v]))
                .collect();
            let description = if name == "/" {
                DEFAULT_VHOST_DESCRIPTION
            } else {
                ""
            };
            json!({
                "name": name,
                "limits": limits,
                "metadata": {"description": description, "tags": []},
            })
        })
        .collect();
    let permissions: Vec<Value> = state
        .all_permissions()
        .map(|(user, vhost, p)| {
            json!({"user": user, "vhost": vhost, "configure": p.configure, "write": p.write, "read": p.read})
        })
        .collect();
    let topic_permissions: Vec<Value> = state
        .all_topic_permissions()
        .map(|(user, vhost, exchange, p)| {
            json!({"user": user, "vhost": vhost, "exchange": exchange, "write": p.write, "read": p.read})
        })
        .collect();
    let parameters: Vec<Value> = state
        .all_vhost_limits()
        .map(|(vhost, limits)| {
            json!({"vhost": vhost, "component": "vhost-limits", "name": "limits", "value": limits})
        })
        .collect();
    let policies: Vec<Value> = state
        .policies
        .iter()
        .map(|((vhost, name), p)| {
            let definition: Value = serde_json::from_str(&p.definition).unwrap_or(Value::Null);
            json!({"vhost": vhost, "name": name, "pattern": p.pattern, "apply-to": p.apply_to.as_str(),
                   "definition": definition, "priority": p.priority})
        })
        .collect();
    let mut queues = Vec::new();
    let mut exchanges = Vec::new();
    let mut bindings = Vec::new();
    for vhost in state.vhosts.keys() {
        queues.extend(state.queues(vhost).filter(|q| q.exclusive_owner.is_none()).map(|q| {
            json!({"name": q.name, "vhost": vhost, "durable": q.durable, "auto_delete": q.auto_delete,
                   "arguments": table_json(&q.arguments), "type": q.queue_type.as_str()})
        }));
        exchanges.extend(
            state
                .exchanges(vhost)
                .filter(|x| !x.name.is_empty() && !x.name.starts_with("amq."))
                .map(|x| {
                    json!({"name": x.name, "vhost": vhost, "type": x.kind.as_str(), "durable": x.durable,
                           "auto_delete": x.auto_delete, "internal": x.internal,
                           "arguments": table_json(&x.arguments)})
                }),
        );
        bindings.extend(state.bindings(vhost).map(|b| {
            let (destination, kind) = match &b.destination {
                Destination::Queue(q) => (q, "queue"),
                Destination::Exchange(x) => (x, "exchange"),
            };
            json!({"source": b.source, "vhost": vhost, "destination": destination,
                   "destination_type": kind, "routing_key": b.routing_key,
                   "arguments": table_json(&b.arguments)})
        }));
    }
    json!({
        "rabbit_version": RABBITMQ_VERSION,
        "rabbitmq_version": RABBITMQ_VERSION,
        "product_name": "WarrenMQ",
        "product_version": product_version,
        "users": users,
        "vhosts": vhosts,
        "permissions": permissions,
        "topic_permissions": topic_permissions,
        "parameters": parameters,
        "global_parameters": [],
        "policies": policies,
        "queues": queues,
        "exchanges": exchanges,
        "bindings": bindings,
    })
}
