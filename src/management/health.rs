//! RabbitMQ 3.10's fine-grained health checks beyond alarms (those are `overview.rs`'s):
//! `/api/health/checks/node-is-quorum-critical`, `node-is-mirror-sync-critical`,
//! `virtual-hosts`, `port-listener/PORT`, `protocol-listener/PROTOCOL` and
//! `certificate-expiration/WITHIN/UNIT`, each 200 `{"status": "ok", ...}` or 503 with
//! RabbitMQ's `{"status": "failed", "reason": ..., ...}`, for any management user.
//!
//! "Quorum critical" is read off the Raft groups: a replicated queue (a quorum queue, or
//! a classic one an `ha-mode` policy mirrors) with a member on this node whose members
//! now up are no more than a majority, so that stopping this node would leave it
//! without one, as `rabbit_quorum_queue:filter_quorum_critical` counts them.

use serde_json::{json, Map, Value};

use super::api::Api;
use super::reply::{Answer, Reply};
use crate::cluster::QueueInfo;

fn ok(extra: &[(&str, Value)]) -> Answer {
    let mut body = Map::new();
    body.insert("status".into(), json!("ok"));
    body.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
    Ok(Reply::json(Value::Object(body)))
}

fn failed(reason: &str, extra: &[(&str, Value)]) -> Answer {
    let mut body = Map::new();
    body.insert("status".into(), json!("failed"));
    body.insert("reason".into(), json!(reason));
    body.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
    let mut reply = Reply::json(Value::Object(body));
    reply.status = 503;
    Err(reply)
}

/// A queue as RabbitMQ's `*_for_cli` lists name it.
fn queue_entry(q: &QueueInfo) -> Value {
    json!({
        "readable_name": format!("queue '{}' in vhost '{}'", q.name, q.vhost),
        "name": q.name,
        "virtual_host": q.vhost,
        "type": q.queue_type,
    })
}

/// Whether the queue is a Raft group replicated on purpose: a quorum queue, or a
/// classic queue an `ha-mode` policy mirrors.
fn replicated(q: &QueueInfo) -> bool {
    q.queue_type == "quorum" || q.mirroring == "raft"
}

/// Whether stopping `node` would leave `q` without a majority of live members.
pub(super) fn quorum_critical(q: &QueueInfo, node: &str) -> bool {
    replicated(q)
        && q.members.iter().any(|m| m == node)
        && q.online.len() <= q.members.len() / 2 + 1
}

/// Whether `q` is a mirrored classic queue led here with no other member up.
fn mirror_sync_critical(q: &QueueInfo, node: &str) -> bool {
    q.queue_type == "classic"
        && q.mirroring == "raft"
        && q.leader == node
        && !q.online.iter().any(|m| m != node)
}

/// Every queue of every vhost (the checks look at all of them, whoever asks).
async fn all_queues(api: &Api) -> Result<Vec<QueueInfo>, Reply> {
    let mut queues = Vec::new();
    for vhost in api.vhosts().await? {
        // A vhost deleted meanwhile has none.
        queues.extend(
            api.admin
                .list_queues(vhost, false)
                .await
                .unwrap_or_default(),
        );
    }
    Ok(queues)
}

/// The two "would this node's stop hurt" checks: `quorum` (node-is-quorum-critical) or
/// mirror sync (node-is-mirror-sync-critical).
pub(super) async fn node_critical(api: &Api, quorum: bool) -> Answer {
    if api.admin.cluster_status().nodes.len() <= 1 {
        return ok(&[("reason", json!("single node cluster"))]);
    }
    let node = api.admin.status().node_name;
    let critical: Vec<Value> = all_queues(api)
        .await?
        .iter()
        .filter(|q| match quorum {
            true => quorum_critical(q, &node),
            false => mirror_sync_critical(q, &node),
        })
        .map(queue_entry)
        .collect();
    if critical.is_empty() {
        return ok(&[]);
    }
    let reason = match quorum {
        true => {
            "There are quorum queues that would lose their quorum if the target node is shut down"
        }
        false => "There are classic mirrored queues without online synchronised mirrors",
    };
    failed(reason, &[("queues", Value::Array(critical))])
}

/// Every vhost of a running node is up (WarrenMQ has no per-vhost process to fail).
pub(super) async fn virtual_hosts(api: &Api) -> Answer {
    api.vhosts().await?;
    ok(&[])
}

/// An integer as Erlang's `binary_to_integer` reads it (an optional sign, then digits,
/// of any size); `None` where it raises `badarg`.
fn erlang_integer(text: &str) -> Option<Value> {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let text = text.strip_prefix('+').unwrap_or(text);
    Some(match text.parse::<i64>() {
        Ok(n) => json!(n),
        // Beyond 64 bits no listener has it: the number is only echoed back.
        Err(_) => json!(text.parse::<f64>().unwrap_or(f64::MAX)),
    })
}

/// `port-listener/PORT`: this node listens on PORT (AMQP, HTTP, Prometheus, cluster).
pub(super) async fn port_listener(api: &Api, port: &str) -> Answer {
    let Some(asked) = erlang_integer(port) else {
        return Err(Reply::bad_request("Invalid port"));
    };
    let listeners = api.admin.status().listeners;
    if listeners.iter().any(|l| asked == json!(l.port)) {
        return ok(&[("port", asked)]);
    }
    let ports: Vec<u16> = listeners.iter().map(|l| l.port).collect();
    failed(
        "No active listener",
        &[("missing", asked), ("ports", json!(ports))],
    )
}

/// RabbitMQ's other names of the protocols WarrenMQ serves (`normalize_protocol`).
fn normalize_protocol(asked: &str) -> String {
    let lower = asked.to_lowercase();
    let same = match lower.as_str() {
        "amqp091" | "amqp0.9.1" | "amqp0-9-1" | "amqp0_9_1" | "amqp10" | "amqp1.0" | "amqp1-0"
        | "amqp1_0" => "amqp",
        "amqps" => "amqp/ssl",
        "mqtt3.1" | "mqtt3.1.1" | "mqtt31" | "mqtt311" | "mqtt3_1" | "mqtt3_1_1" => "mqtt",
        "mqtts" | "mqtt+tls" | "mqtt+ssl" => "mqtt/ssl",
        "stomp1.0" | "stomp1.1" | "stomp1.2" | "stomp10" | "stomp11" | "stomp12" | "stomp1_0"
        | "stomp1_1" | "stomp1_2" => "stomp",
        "stomps" | "stomp+tls" | "stomp+ssl" => "stomp/ssl",
        "http1" | "http1.1" | "http_api" | "management" | "management_ui" | "ui" => "http",
        "cli" | "distribution" => "clustering",
        "webmqtt" | "web-mqtt" | "web_mqtt" => "http/web-mqtt",
        "webstomp" | "web-stomp" | "web_stomp" => "http/web-stomp",
        _ => "",
    };
    match same {
        "" => lower,
        name => name.to_owned(),
    }
}

/// `protocol-listener/PROTOCOL`: this node serves PROTOCOL (`amqp`, `http`,
/// `http/prometheus`, `clustering`, or one of RabbitMQ's other names of them).
pub(super) async fn protocol_listener(api: &Api, protocol: &str) -> Answer {
    let protocol = normalize_protocol(protocol);
    let listeners = api.admin.status().listeners;
    if listeners.iter().any(|l| l.protocol == protocol) {
        return ok(&[("protocol", json!(protocol))]);
    }
    let protocols: Vec<&str> = listeners.iter().map(|l| l.protocol.as_str()).collect();
    failed(
        "No active listener",
        &[
            ("missing", json!(protocol)),
            ("protocols", json!(protocols)),
        ],
    )
}

/// `certificate-expiration/WITHIN/UNIT`: WarrenMQ has no TLS listener, so no certificate
/// expires; the arguments are checked as RabbitMQ checks them.
pub(super) async fn certificate_expiration(within: &str, unit: &str) -> Answer {
    if erlang_integer(within).is_none() {
        return Err(Reply::bad_request("Invalid expiration value."));
    }
    if !["days", "weeks", "months", "years"].contains(&unit.to_lowercase().as_str()) {
        return Err(Reply::bad_request(
            "Time unit not recognised. Supported units: days, weeks, months, years.",
        ));
    }
    ok(&[])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(kind: &str, mirroring: &str, members: &[&str], online: &[&str]) -> QueueInfo {
        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect();
        QueueInfo {
            vhost: "/".into(),
            name: "q".into(),
            queue_type: kind.into(),
            leader: members.first().map_or(String::new(), |m| m.to_string()),
            members: names(members),
            online: names(online),
            messages: None,
            consumers: None,
            policy: String::new(),
            effective_policy_definition: String::new(),
            mirroring: mirroring.into(),
        }
    }

    #[test]
    fn a_queue_is_quorum_critical_when_its_live_members_are_a_bare_majority() {
        let all = ["a", "b", "c"];
        let q = |online: &[&str]| queue("quorum", "raft", &all, online);
        assert!(!quorum_critical(&q(&all), "a"));
        assert!(quorum_critical(&q(&["a", "b"]), "a"));
        // Not a member here: stopping this node costs it nothing.
        assert!(!quorum_critical(&q(&["a", "b"]), "d"));
        // Five members, four up: one more may go.
        let five = ["a", "b", "c", "d", "e"];
        assert!(!quorum_critical(
            &queue("quorum", "raft", &five, &five[..4]),
            "a"
        ));
        assert!(quorum_critical(
            &queue("quorum", "raft", &five, &five[..3]),
            "a"
        ));
        // A group of one is always critical, as RabbitMQ counts a one-member quorum queue.
        assert!(quorum_critical(
            &queue("quorum", "raft", &["a"], &["a"]),
            "a"
        ));
        // A mirrored classic queue is a Raft group too; an unmirrored one is not replicated.
        assert!(quorum_critical(
            &queue("classic", "raft", &all, &["a", "c"]),
            "a"
        ));
        assert!(!quorum_critical(&queue("classic", "", &["a"], &["a"]), "a"));
    }

    #[test]
    fn mirror_sync_critical_is_a_mirrored_queue_led_here_alone() {
        let q = |online: &[&str]| queue("classic", "raft", &["a", "b"], online);
        assert!(mirror_sync_critical(&q(&["a"]), "a"));
        assert!(!mirror_sync_critical(&q(&["a", "b"]), "a"));
        assert!(!mirror_sync_critical(&q(&["a"]), "b"));
        assert!(!mirror_sync_critical(
            &queue("quorum", "raft", &["a", "b"], &["a"]),
            "a"
        ));
    }

    #[test]
    fn ports_and_protocols_are_read_as_rabbitmq_reads_them() {
        assert_eq!(erlang_integer("5672"), Some(json!(5672)));
        assert_eq!(erlang_integer("+5672"), Some(json!(5672)));
        assert_eq!(erlang_integer("-1"), Some(json!(-1)));
        assert_eq!(erlang_integer("abc"), None);
        assert_eq!(erlang_integer(" 5672"), None);
        assert_eq!(erlang_integer("+"), None);
        assert_eq!(erlang_integer(""), None);
        assert_eq!(normalize_protocol("AMQP091"), "amqp");
        assert_eq!(normalize_protocol("amqp0-9-1"), "amqp");
        assert_eq!(normalize_protocol("management"), "http");
        assert_eq!(normalize_protocol("HTTP/Prometheus"), "http/prometheus");
        assert_eq!(normalize_protocol("distribution"), "clustering");
        assert_eq!(normalize_protocol("mqtt311"), "mqtt");
    }
}
