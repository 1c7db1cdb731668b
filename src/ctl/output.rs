//! warrenctl's output in rabbitmqctl's shapes: the sectioned text of `status` and
//! `cluster_status`, and their `--formatter json` documents (same keys as rabbitmqctl's);
//! rabbitmq-queues' tables (a title line, a tab-separated header and rows; JSON: an array
//! of objects keyed by the header's names).

use std::fmt::Write;

use serde_json::{json, Value};

use crate::cluster::{
    ClusterStatus, ListenerInfo, MemberChange, MemberStatus, NodeLeaders, NodeStatus, PolicyInfo,
    QueueInfo,
};

/// The RabbitMQ release WarrenMQ is compatible with (`rabbitmq_version` in `status`).
const RABBITMQ_VERSION: &str = "3.10.8";

fn listener_json(node: &str, l: &ListenerInfo) -> Value {
    json!({
        "node": node,
        "interface": l.interface,
        "port": l.port,
        "protocol": l.protocol,
        "purpose": l.purpose,
    })
}

fn listener_line(node: &str, l: &ListenerInfo) -> String {
    format!(
        "Node: {node}, interface: {}, port: {}, protocol: {}, purpose: {}",
        l.interface, l.port, l.protocol, l.purpose
    )
}

/// `status`.
pub fn status(s: &NodeStatus, json: bool) -> String {
    if json {
        let doc = json!({
            "node_name": s.node_name,
            "pid": s.pid,
            "uptime": s.uptime_ms / 1000,
            "product_name": "WarrenMQ",
            "product_version": s.version,
            // The RabbitMQ release whose behaviour WarrenMQ follows, for scripts that
            // read this key.
            "rabbitmq_version": RABBITMQ_VERSION,
            "alarms": s.alarms.iter().map(|a| json!({
                "type": "resource_limit",
                "resource": a,
                "node": s.node_name,
            })).collect::<Vec<_>>(),
            "is_running": s.app_running,
            "data_directory": s.data_dir,
            "memory": { "total": { "rss": s.resident_memory_bytes } },
            "listeners": s.listeners.iter().map(|l| listener_json(&s.node_name, l)).collect::<Vec<_>>(),
            "raft_node_id": s.node_id,
        });
        return format!("{doc}\n");
    }
    let mut out = String::new();
    let _ = writeln!(out, "Status of node {} ...", s.node_name);
    let _ = writeln!(out, "Runtime\n");
    let _ = writeln!(out, "OS PID: {}", s.pid);
    let _ = writeln!(out, "Uptime (seconds): {}", s.uptime_ms / 1000);
    let _ = writeln!(out, "Is under maintenance?: false");
    let _ = writeln!(out, "WarrenMQ version: {}", s.version);
    let _ = writeln!(out, "Node name: {}", s.node_name);
    let _ = writeln!(
        out,
        "AMQP service running: {}",
        if s.app_running { "yes" } else { "no" }
    );
    let _ = writeln!(out, "\nAlarms\n");
    if s.alarms.is_empty() {
        let _ = writeln!(out, "(none)");
    }
    for alarm in &s.alarms {
        let what = if alarm == "disk" {
            "Free disk space"
        } else {
            "Memory"
        };
        let _ = writeln!(out, "{what} alarm on node {}", s.node_name);
    }
    let _ = writeln!(out, "\nData directory\n");
    let _ = writeln!(out, "Node data directory: {}", s.data_dir);
    let _ = writeln!(out, "\nMemory\n");
    let _ = writeln!(
        out,
        "Total memory used: {:.4} gb",
        s.resident_memory_bytes as f64 / 1e9
    );
    let _ = writeln!(out, "\nListeners\n");
    for l in &s.listeners {
        let _ = writeln!(out, "{}", listener_line(&s.node_name, l));
    }
    out
}

/// `cluster_status`.
pub fn cluster_status(c: &ClusterStatus, json: bool) -> String {
    let disk: Vec<&str> = c.nodes.iter().map(|n| n.name.as_str()).collect();
    let running: Vec<&str> = c
        .nodes
        .iter()
        .filter(|n| n.running)
        .map(|n| n.name.as_str())
        .collect();
    if json {
        let doc = json!({
            "cluster_name": c.cluster_name,
            "disk_nodes": disk,
            "ram_nodes": [],
            "running_nodes": running,
            "alarms": [],
            "partitions": {},
            "maintenance_status": c.nodes.iter().map(|n| (n.name.clone(), json!("not under maintenance"))).collect::<serde_json::Map<_, _>>(),
            "listeners": { c.node_name.clone(): c.listeners.iter().map(|l| listener_json(&c.node_name, l)).collect::<Vec<_>>() },
        });
        return format!("{doc}\n");
    }
    let mut out = String::new();
    let _ = writeln!(out, "Cluster status of node {} ...", c.node_name);
    let _ = writeln!(out, "Basics\n");
    let _ = writeln!(out, "Cluster name: {}", c.cluster_name);
    let _ = writeln!(out, "\nDisk Nodes\n");
    for n in &disk {
        let _ = writeln!(out, "{n}");
    }
    let _ = writeln!(out, "\nRunning Nodes\n");
    for n in &running {
        let _ = writeln!(out, "{n}");
    }
    let _ = writeln!(out, "\nAlarms\n\n(none)");
    let _ = writeln!(out, "\nNetwork Partitions\n\n(none)");
    let _ = writeln!(out, "\nListeners\n");
    for l in &c.listeners {
        let _ = writeln!(out, "{}", listener_line(&c.node_name, l));
    }
    out
}

/// A titled table, or its rows as JSON objects.
fn table(title: &str, header: &[&str], rows: Vec<Vec<Value>>, json: bool) -> String {
    if json {
        let rows: Vec<Value> = rows
            .into_iter()
            .map(|row| {
                let object: serde_json::Map<String, Value> =
                    header.iter().map(|h| h.to_string()).zip(row).collect();
                Value::Object(object)
            })
            .collect();
        return format!("{}\n", Value::Array(rows));
    }
    let mut out = format!("{title}\n{}\n", header.join("\t"));
    for row in rows {
        let cells: Vec<String> = row.iter().map(cell).collect();
        out.push_str(&cells.join("\t"));
        out.push('\n');
    }
    out
}

/// `queues grow` / `queues shrink`.
pub fn member_changes(title: &str, changes: &[MemberChange], json: bool) -> String {
    let rows = changes
        .iter()
        .map(|c| {
            vec![
                json!(c.vhost),
                json!(c.queue),
                json!(c.size),
                json!(c.result),
            ]
        })
        .collect();
    table(title, &["vhost", "name", "size", "result"], rows, json)
}

/// `queues quorum_status`.
pub fn quorum_status(queue: &str, vhost: &str, members: &[MemberStatus], json: bool) -> String {
    let rows = members
        .iter()
        .map(|m| {
            vec![
                json!(m.node),
                json!(m.raft_state),
                json!(m.log_index),
                json!(m.commit_index),
                json!(m.applied_index),
                json!(m.term),
            ]
        })
        .collect();
    let header = [
        "Node Name",
        "Raft State",
        "Log Index",
        "Commit Index",
        "Applied Index",
        "Term",
    ];
    let title = format!("Status of quorum queue {queue} in vhost {vhost} ...");
    table(&title, &header, rows, json)
}

/// `queues rebalance`.
pub fn rebalance(queue_type: &str, leaders: &[NodeLeaders], json: bool) -> String {
    let rows = leaders
        .iter()
        .map(|l| vec![json!(l.node), json!(l.quorum_leaders)])
        .collect();
    let title = format!("Re-balancing leaders of {queue_type} queues...");
    let header = ["Node Name", "Number of quorum queue leaders"];
    table(&title, &header, rows, json)
}

/// `list_policies`: the definition as compact JSON text (a JSON object with
/// `--formatter json`).
pub fn list_policies(policies: &[PolicyInfo], vhost: &str, json: bool) -> String {
    let rows = policies
        .iter()
        .map(|p| {
            let definition = serde_json::from_str(&p.definition)
                .unwrap_or_else(|_| Value::String(p.definition.clone()));
            vec![
                json!(p.vhost),
                json!(p.name),
                json!(p.pattern),
                json!(p.apply_to),
                definition,
                json!(p.priority),
            ]
        })
        .collect();
    let title = format!("Listing policies for vhost \"{vhost}\" ...");
    let header = [
        "vhost",
        "name",
        "pattern",
        "apply-to",
        "definition",
        "priority",
    ];
    table(&title, &header, rows, json)
}

/// The members of `of` other than the queue's leader.
fn followers<'a>(q: &QueueInfo, of: &'a [String]) -> Vec<&'a String> {
    of.iter().filter(|m| **m != q.leader).collect()
}

/// `list_queues`: rabbitmqctl's header lines and tab-separated columns, or a JSON array
/// of objects with the requested keys. Unknown counts print empty (JSON null).
pub fn list_queues(queues: &[QueueInfo], vhost: &str, columns: &[String], json: bool) -> String {
    let default = ["name".to_string(), "messages".to_string()];
    let columns = if columns.is_empty() {
        &default[..]
    } else {
        columns
    };
    let value = |q: &QueueInfo, column: &str| -> Value {
        match column {
            "name" => json!(q.name),
            "messages" => json!(q.messages),
            "consumers" => json!(q.consumers),
            "type" => json!(q.queue_type),
            "leader" => json!(q.leader),
            "members" => json!(q.members),
            "online" => json!(q.online),
            "policy" => json!(q.policy),
            "effective_policy_definition" => {
                serde_json::from_str(&q.effective_policy_definition).unwrap_or(json!({}))
            }
            // As rabbitmqctl names a mirrored queue's master and mirrors: the leader,
            // the other members, and those of them that run.
            "pid" => json!(q.leader),
            "slave_pids" => json!(followers(q, &q.members)),
            "synchronised_slave_pids" => json!(followers(q, &q.online)),
            "mirroring" => json!(q.mirroring),
            _ => Value::Null,
        }
    };
    let rows = queues
        .iter()
        .map(|q| columns.iter().map(|c| value(q, c)).collect())
        .collect();
    let header: Vec<&str> = columns.iter().map(String::as_str).collect();
    let title = format!("Listing queues for vhost {vhost} ...");
    table(&title, &header, rows, json)
}

/// A table cell as rabbitmqctl prints it: strings raw, lists as `[a, b]`, nothing for
/// a missing value.
fn cell(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(cell).collect::<Vec<_>>().join(", ")
        ),
        other => other.to_string(),
    }
}

/// [`table`] of a node's JSON list of objects, in `columns`' order.
pub(super) fn object_table(banner: &str, columns: &[&str], rows: &Value, json: bool) -> String {
    let rows = rows
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|row| columns.iter().map(|c| row[*c].clone()).collect())
        .collect();
    table(banner, columns, rows, json)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_print_lists_as_rabbitmqctl_does() {
        assert_eq!(cell(&serde_json::json!(["a", "b"])), "[a, b]");
        assert_eq!(cell(&serde_json::json!([])), "[]");
        assert_eq!(cell(&serde_json::json!(".*")), ".*");
    }
    use crate::cluster::ClusterNodeInfo;

    fn cluster() -> ClusterStatus {
        let node = |name: &str, id, running| ClusterNodeInfo {
            name: name.into(),
            id,
            cluster_addr: String::new(),
            running,
        };
        ClusterStatus {
            cluster_name: "warren@node1".into(),
            node_name: "warren@node1".into(),
            nodes: vec![
                node("warren@node1", 5, true),
                node("warren@node2", 9, false),
            ],
            listeners: vec![ListenerInfo {
                protocol: "amqp".into(),
                interface: "127.0.0.1".into(),
                port: 5672,
                purpose: "AMQP 0-9-1".into(),
            }],
        }
    }

    #[test]
    fn cluster_status_json_has_rabbitmqctl_keys() {
        let v: Value = serde_json::from_str(&cluster_status(&cluster(), true)).unwrap();
        assert_eq!(v["running_nodes"], json!(["warren@node1"]));
        assert_eq!(v["disk_nodes"], json!(["warren@node1", "warren@node2"]));
        assert_eq!(v["cluster_name"], json!("warren@node1"));
        assert_eq!(v["listeners"]["warren@node1"][0]["port"], json!(5672));
    }

    #[test]
    fn cluster_status_text_has_rabbitmqctl_sections() {
        let text = cluster_status(&cluster(), false);
        let running = text.split("Running Nodes\n\n").nth(1).unwrap();
        assert!(running.starts_with("warren@node1\n\nAlarms"), "{text}");
        assert!(
            text.contains("Node: warren@node1, interface: 127.0.0.1, port: 5672, protocol: amqp")
        );
    }
}
