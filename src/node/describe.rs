//! Admin commands that describe a vhost's objects with every property the HTTP API
//! shows, keyed as RabbitMQ's management plugin keys them: `describe_queues` (cluster-wide
//! counts: this node's queues from their actors, the others' from the nodes running them,
//! asked with `local_only`; with a queue's name as argument, that queue only),
//! `describe_exchanges` and `describe_bindings` (from the local metadata, with the
//! default exchange's implicit bindings as RabbitMQ lists them).
//! Queues and exchanges carry their `message_stats` once they had traffic, as RabbitMQ's.

use std::collections::HashMap;

use futures::future::join_all;
use serde_json::{json, Value};

use super::control::{AppView, Control};
use super::stats::{message_stats, sum, Shape};
use crate::cluster::{CommandOutcome, CommandRequest};
use crate::metadata::definitions::table_json;
use crate::metadata::{Destination, QueueRecord, QueueType};

/// Set on the requests one node sends another: answer for your own queues only.
const LOCAL_ONLY: &str = "local_only";

/// The commands this module answers.
pub(super) fn handles(command: &str) -> bool {
    matches!(
        command,
        "describe_queues" | "describe_exchanges" | "describe_bindings"
    )
}

fn list(rows: Vec<Value>) -> CommandOutcome {
    CommandOutcome::with_json(Value::Array(rows).to_string())
}

pub(super) async fn run(control: &Control, view: &AppView, req: &CommandRequest) -> CommandOutcome {
    let vhost = req.vhost.as_str();
    if !view.broker.read_meta().vhost_exists(vhost) {
        return CommandOutcome::refused(404, format!("no vhost '{vhost}'"));
    }
    match req.command.as_str() {
        "describe_queues" => {
            let local_only = req.flags.iter().any(|f| f == LOCAL_ONLY);
            let only = req.args.first().map(String::as_str);
            list(queue_rows(control, view, vhost, only, local_only).await)
        }
        "describe_exchanges" => {
            let local_only = req.flags.iter().any(|f| f == LOCAL_ONLY);
            list(exchange_rows(control, view, vhost, local_only).await)
        }
        "describe_bindings" => {
            let meta = view.broker.read_meta();
            let defaults = meta.queues(vhost).map(|q| {
                json!({"source": "", "vhost": vhost, "destination": q.name,
                       "destination_type": "queue", "routing_key": q.name, "arguments": {}})
            });
            let explicit = meta.bindings(vhost).map(|b| {
                let (name, kind) = match &b.destination {
                    Destination::Queue(q) => (q, "queue"),
                    Destination::Exchange(x) => (x, "exchange"),
                };
                json!({"source": b.source, "vhost": vhost, "destination": name,
                       "destination_type": kind, "routing_key": b.routing_key,
                       "arguments": table_json(&b.arguments)})
            });
            list(defaults.chain(explicit).collect())
        }
        other => CommandOutcome::refused(70, format!("unknown command '{other}'")),
    }
}

/// The rows of `vhost`'s exchanges, with what was published through each on every node
/// (with `local_only`, on this one).
async fn exchange_rows(
    control: &Control,
    view: &AppView,
    vhost: &str,
    local_only: bool,
) -> Vec<Value> {
    let mut rows: Vec<Value> = view
        .broker
        .read_meta()
        .exchanges(vhost)
        .map(|x| {
            let mut row = json!({"name": x.name, "vhost": vhost, "type": x.kind.as_str(),
                   "durable": x.durable, "auto_delete": x.auto_delete,
                   "internal": x.internal, "arguments": table_json(&x.arguments)});
            let stats = view.broker.stats().exchange(vhost, &x.name);
            if let Some(s) = stats.filter(|s| s.any_traffic()) {
                row["message_stats"] = message_stats(&s, Shape::Exchange);
            }
            row
        })
        .collect();
    if local_only {
        return rows;
    }
    let mut theirs: HashMap<String, Vec<Value>> = HashMap::new();
    for row in peer_rows(control, view, "describe_exchanges", vhost, Vec::new()).await {
        if let (Some(name), Some(stats)) = (row["name"].as_str(), row.get("message_stats")) {
            theirs
                .entry(name.to_owned())
                .or_default()
                .push(stats.clone());
        }
    }
    for row in &mut rows {
        let Some(stats) = row["name"].as_str().and_then(|n| theirs.get(n)) else {
            continue;
        };
        let mut total = row.get("message_stats").cloned().unwrap_or(json!({}));
        for s in stats {
            total = sum(&total, s);
        }
        row["message_stats"] = total;
    }
    rows
}

/// A queue's counts where its actor runs: ready, unacked, consumers.
type Counts = (u64, u64, u32);

/// The keys of a queue's row that its statistics give: `message_stats` and the rates of
/// its depth.
const STATS_KEYS: [&str; 4] = [
    "message_stats",
    "messages_details",
    "messages_ready_details",
    "messages_unacknowledged_details",
];

/// A queue's statistics where its actor runs, as the keys of its row.
fn local_stats(view: &AppView, vhost: &str, name: &str) -> Value {
    use crate::stats::Count;
    let Some(q) = view.broker.stats().find_queue(vhost, name) else {
        return json!({});
    };
    let s = q.snapshot();
    let (ready, unacked) = (s.rate(Count::Ready), s.rate(Count::Unacked));
    let mut o = json!({
        "messages_details": {"rate": ready + unacked},
        "messages_ready_details": {"rate": ready},
        "messages_unacknowledged_details": {"rate": unacked},
    });
    if s.any_traffic() {
        o["message_stats"] = message_stats(&s, Shape::Queue);
    }
    o
}

/// The statistics keys of a queue's row from another node.
fn stats_part(row: &Value) -> Value {
    let mut o = serde_json::Map::new();
    for key in STATS_KEYS {
        if let Some(v) = row.get(key) {
            o.insert(key.into(), v.clone());
        }
    }
    Value::Object(o)
}

/// The rows of `vhost`'s queues (or of the one named `only`: a queue's page need not
/// describe ten thousand); with `local_only`, only those whose actor runs here.
async fn queue_rows(
    control: &Control,
    view: &AppView,
    vhost: &str,
    only: Option<&str>,
    local_only: bool,
) -> Vec<Value> {
    let Some(mut records) = view.broker.queue_records(vhost) else {
        return Vec::new();
    };
    if let Some(name) = only {
        records.retain(|r| r.name == name);
    }
    let nodes = view.broker.cluster_nodes();
    let name_of = |id: u64| AppView::node_name(&nodes, id);
    let policies: Vec<Option<(String, Value)>> = {
        let meta = view.broker.read_meta();
        let set = meta.policy_set(vhost);
        records
            .iter()
            .map(|r| {
                set.effective(&r.name, r.queue_type).map(|(name, p)| {
                    let definition = serde_json::from_str(&p.definition).unwrap_or(json!({}));
                    (name.to_owned(), definition)
                })
            })
            .collect()
    };
    // Every local actor is asked at once, not one after the other (ten thousand queues
    // were ten thousand waits in a row).
    let asks = records.iter().filter_map(|record| {
        let handle = view.broker.local_queue(vhost, &record.name)?;
        Some(async move { (record, handle.status().await) })
    });
    let mut local: HashMap<String, (Counts, u64, Value)> = HashMap::new();
    for (record, status) in join_all(asks).await {
        if let Some(s) = status {
            local.insert(
                record.name.clone(),
                (
                    (s.ready, s.unacked, s.consumers),
                    view.node_id,
                    local_stats(view, vhost, &record.name),
                ),
            );
        }
    }
    let mut remote = if local_only || local.len() == records.len() {
        HashMap::new()
    } else {
        peer_counts(control, view, vhost, only).await
    };
    let mut rows = Vec::new();
    for (record, policy) in records.iter().zip(policies) {
        // Taken out, not cloned: each is read for one row only.
        let here = local.remove(&record.name);
        if local_only && here.is_none() {
            continue;
        }
        let there = match here {
            Some(_) => None,
            None => remote.remove(&record.name),
        };
        let counts = here
            .as_ref()
            .map(|(c, _, _)| *c)
            .or_else(|| there.as_ref().map(|(c, _, _)| *c));
        let leader = if let Some((_, id, _)) = &here {
            Some(name_of(*id))
        } else if let Some((_, leader, _)) = &there {
            Some(leader.clone())
        } else if record.group_id != 0 && record.members.len() > 1 {
            view.broker.queue_group_leader(record.group_id).map(name_of)
        } else {
            Some(name_of(record.leader_node))
        };
        let stats = here.map(|(_, _, s)| s).or(there.map(|(_, _, s)| s));
        let mut row = queue_row(view, vhost, record, counts, leader, policy, &name_of);
        if let (Some(o), Some(Value::Object(stats))) = (row.as_object_mut(), stats) {
            o.extend(stats);
        }
        rows.push(row);
    }
    rows
}

/// One queue as RabbitMQ's `/api/queues` shows it, with WarrenMQ's Raft state.
fn queue_row(
    view: &AppView,
    vhost: &str,
    record: &QueueRecord,
    counts: Option<Counts>,
    leader: Option<String>,
    policy: Option<(String, Value)>,
    name_of: &dyn Fn(u64) -> String,
) -> Value {
    let (policy, definition) = match policy {
        Some((name, definition)) => (json!(name), definition),
        None => (Value::Null, json!({})),
    };
    let mut row = json!({
        "name": record.name,
        "vhost": vhost,
        "durable": record.durable,
        "auto_delete": record.auto_delete,
        "exclusive": record.exclusive_owner.is_some(),
        "arguments": table_json(&record.arguments),
        "type": record.queue_type.as_str(),
        "node": leader.clone().unwrap_or_else(|| name_of(record.leader_node)),
        "state": if counts.is_some() { "running" } else { "down" },
        "policy": policy,
        "operator_policy": Value::Null,
        "effective_policy_definition": definition,
    });
    let o = row.as_object_mut().expect("object");
    if let Some((ready, unacked, consumers)) = counts {
        o.insert("messages".into(), json!(ready + unacked));
        o.insert("messages_ready".into(), json!(ready));
        o.insert("messages_unacknowledged".into(), json!(unacked));
        o.insert("consumers".into(), json!(consumers));
        for key in ["messages", "messages_ready", "messages_unacknowledged"] {
            o.insert(format!("{key}_details"), json!({"rate": 0.0}));
        }
    }
    if record.group_id != 0 {
        // Raft-replicated (a quorum queue, or a durable classic one, WarrenMQ's group of
        // one or its mirrors): RabbitMQ's quorum-queue keys, and the group's state here.
        o.insert("leader".into(), json!(leader.unwrap_or_default()));
        o.insert(
            "members".into(),
            json!(record
                .members
                .iter()
                .map(|&m| name_of(m))
                .collect::<Vec<_>>()),
        );
        o.insert(
            "online".into(),
            json!(record
                .members
                .iter()
                .filter(|&&m| view.is_live(m))
                .map(|&m| name_of(m))
                .collect::<Vec<_>>()),
        );
        o.insert("raft_group".into(), json!(record.group_id));
        if let Some(group) = view.broker.queue_group(record.group_id) {
            let s = group.status();
            o.insert("raft_term".into(), json!(s.term));
            o.insert("raft_commit_index".into(), json!(s.committed.unwrap_or(0)));
        }
    }
    if record.queue_type == QueueType::Classic {
        o.insert("exclusive_consumer_tag".into(), Value::Null);
    }
    row
}

/// What the other nodes report of the queues whose actors they run: counts and leader.
async fn peer_counts(
    control: &Control,
    view: &AppView,
    vhost: &str,
    only: Option<&str>,
) -> HashMap<String, (Counts, String, Value)> {
    let mut counts = HashMap::new();
    let args = only.map(str::to_owned).into_iter().collect();
    for row in peer_rows(control, view, "describe_queues", vhost, args).await {
        let number = |k: &str| row[k].as_u64().unwrap_or(0);
        if let Some(name) = row["name"].as_str() {
            let c = (
                number("messages_ready"),
                number("messages_unacknowledged"),
                number("consumers") as u32,
            );
            counts.insert(
                name.to_owned(),
                (
                    c,
                    row["node"].as_str().unwrap_or("").into(),
                    stats_part(&row),
                ),
            );
        }
    }
    counts
}

/// Every peer's rows of `command` with `args` in `vhost`, asked `local_only` (a peer that
/// does not answer adds none).
async fn peer_rows(
    control: &Control,
    view: &AppView,
    command: &str,
    vhost: &str,
    args: Vec<String>,
) -> Vec<Value> {
    let mut all = Vec::new();
    for mut client in control.peer_admins(view).await {
        let request = CommandRequest {
            command: command.into(),
            args: args.clone(),
            vhost: vhost.into(),
            flags: vec![LOCAL_ONLY.into()],
        };
        let Ok(outcome) = client.command(request).await else {
            continue;
        };
        if let Ok(Value::Array(rows)) = serde_json::from_str::<Value>(&outcome.json) {
            all.extend(rows);
        }
    }
    all
}
