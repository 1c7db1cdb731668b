//! Admin commands of the message statistics (`src/stats/`): `overview_stats`, the
//! `message_stats` of `/api/overview` (this node's, plus every peer's unless
//! `local_only`), `node_stats` (the process figures `/api/nodes` shows of each node,
//! likewise) and `metrics`
//! (this node's figures for the Prometheus endpoint); and `message_stats` objects keyed
//! as RabbitMQ 3.10's management API keys them.

use serde_json::{json, Map, Value};

use super::control::{AppView, Control};
use super::process;
use crate::cluster::{CommandOutcome, CommandRequest};
use crate::stats::{Count, Snapshot};

/// Set on the requests one node sends another: answer for yourself only.
const LOCAL_ONLY: &str = "local_only";

/// The commands this module answers.
pub(super) fn handles(command: &str) -> bool {
    matches!(command, "overview_stats" | "node_stats" | "metrics")
}

pub(super) async fn run(control: &Control, view: &AppView, req: &CommandRequest) -> CommandOutcome {
    let body = match req.command.as_str() {
        "overview_stats" => {
            let mut stats = message_stats(&view.broker.stats().node().snapshot(), Shape::Node);
            if !req.flags.iter().any(|f| f == LOCAL_ONLY) {
                for theirs in peer_answers(control, view, "overview_stats").await {
                    stats = sum(&stats, &theirs);
                }
            }
            stats
        }
        "node_stats" => {
            let mut nodes = vec![node_stats(control, view)];
            if !req.flags.iter().any(|f| f == LOCAL_ONLY) {
                nodes.extend(
                    peer_answers(control, view, "node_stats")
                        .await
                        .into_iter()
                        .flat_map(|v| match v {
                            Value::Array(rows) => rows,
                            _ => Vec::new(),
                        }),
                );
            }
            Value::Array(nodes)
        }
        _ => metrics(view).await,
    };
    CommandOutcome::with_json(body.to_string())
}

/// The objects whose `message_stats` have different keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Shape {
    /// `/api/overview`.
    Node,
    /// A channel's: the node's figures but the disk ones.
    Channel,
    Queue,
    Exchange,
}

/// A `message_stats` object: each figure with its `*_details: {"rate": ...}`.
pub(super) fn message_stats(s: &Snapshot, shape: Shape) -> Value {
    let pair = |c: Count| (s.total(c), s.rate(c));
    let add = |a: (u64, f64), b: (u64, f64)| (a.0 + b.0, a.1 + b.1);
    let deliver_get = [
        Count::Deliver,
        Count::DeliverNoAck,
        Count::Get,
        Count::GetNoAck,
    ]
    .into_iter()
    .map(pair)
    .fold((0, 0.0), add);
    let (unroutable, returned) = (pair(Count::Unroutable), pair(Count::ReturnUnroutable));
    let dropped = (
        unroutable.0.saturating_sub(returned.0),
        unroutable.1 - returned.1,
    );
    let mut keys: Vec<(&str, (u64, f64))> = match shape {
        Shape::Exchange => vec![
            ("publish_in", pair(Count::Publish)),
            ("publish_out", pair(Count::PublishOut)),
        ],
        Shape::Node | Shape::Channel | Shape::Queue => vec![
            ("publish", pair(Count::Publish)),
            ("deliver", pair(Count::Deliver)),
            ("deliver_no_ack", pair(Count::DeliverNoAck)),
            ("get", pair(Count::Get)),
            ("get_no_ack", pair(Count::GetNoAck)),
            ("get_empty", pair(Count::GetEmpty)),
            ("deliver_get", deliver_get),
            ("ack", pair(Count::Ack)),
            ("redeliver", pair(Count::Redeliver)),
        ],
    };
    if matches!(shape, Shape::Node | Shape::Channel) {
        keys.extend([
            ("confirm", pair(Count::Confirm)),
            ("return_unroutable", returned),
            ("drop_unroutable", dropped),
        ]);
    }
    if shape == Shape::Node {
        // Nothing is paged to disk and read back, as RabbitMQ's classic queues do.
        keys.extend([("disk_reads", (0, 0.0)), ("disk_writes", (0, 0.0))]);
    }
    if shape == Shape::Exchange && s.total(Count::PublishOut) == 0 {
        // RabbitMQ 3.10.8 shows no publish_out for an exchange nothing was routed from.
        keys.pop();
    }
    let mut o = Map::new();
    for (key, (total, rate)) in keys {
        o.insert(key.into(), json!(total));
        o.insert(format!("{key}_details"), json!({"rate": rate}));
    }
    Value::Object(o)
}

/// Two nodes' `message_stats` added up, figure by figure and rate by rate.
pub(super) fn sum(a: &Value, b: &Value) -> Value {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut o = x.clone();
            for (k, v) in y {
                let total = match x.get(k) {
                    Some(mine) => sum(mine, v),
                    None => v.clone(),
                };
                o.insert(k.clone(), total);
            }
            Value::Object(o)
        }
        (Value::Number(x), Value::Number(y)) => match (x.as_u64(), y.as_u64()) {
            (Some(x), Some(y)) => json!(x + y),
            _ => json!(x.as_f64().unwrap_or(0.0) + y.as_f64().unwrap_or(0.0)),
        },
        _ => a.clone(),
    }
}

/// Every peer's answer to `command`, asked `local_only` (one that fails adds nothing).
async fn peer_answers(control: &Control, view: &AppView, command: &str) -> Vec<Value> {
    let mut all = Vec::new();
    for mut client in control.peer_admins(view).await {
        let request = CommandRequest {
            command: command.into(),
            args: Vec::new(),
            vhost: "/".into(),
            flags: vec![LOCAL_ONLY.into()],
        };
        if let Ok(outcome) = client.command(request).await {
            if let Ok(v) = serde_json::from_str::<Value>(&outcome.json) {
                all.push(v);
            }
        }
    }
    all
}

/// What `/api/nodes` shows of this node's process and limits (RabbitMQ's `fd_used`,
/// `proc_used`, `sockets_used`, `mem_limit`, `disk_free`, `uptime` ...).
fn node_stats(control: &Control, view: &AppView) -> Value {
    let mut figures = process_stats(view);
    let config = view.broker.config();
    let alarms = view.broker.alarms().borrow().names();
    let extra = json!({
        "name": config.node_name,
        "uptime": control.started.elapsed().as_millis() as u64,
        "mem_alarm": alarms.iter().any(|a| a == "memory"),
        "disk_free_alarm": alarms.iter().any(|a| a == "disk"),
        "disk_free": crate::broker::alarm::free_disk_bytes(&config.data_dir),
        "disk_free_limit": config.disk_free_limit,
        "os_pid": std::process::id().to_string(),
        "processors": std::thread::available_parallelism().map_or(1, |n| n.get()),
    });
    if let (Some(o), Value::Object(extra)) = (figures.as_object_mut(), extra) {
        o.extend(extra);
    }
    figures
}

/// This node's process figures and limits.
fn process_stats(view: &AppView) -> Value {
    let p = process::figures();
    let connections = view.broker.connections().len() as u64;
    json!({
        "mem_used": p.resident_memory_bytes,
        "mem_limit": crate::broker::alarm::watermark(view.broker.config().memory_high_watermark),
        "fd_used": p.open_fds,
        "fd_total": p.max_fds,
        // As RabbitMQ counts them: its client connections, of a share of the fds.
        "sockets_used": connections,
        "sockets_total": p.max_fds / 10 * 9,
        // WarrenMQ's processes are its threads (RabbitMQ's, Erlang processes).
        "proc_used": p.threads,
        "proc_total": p.max_threads,
    })
}

/// Every total of a snapshot, by name.
fn totals(s: &Snapshot) -> Map<String, Value> {
    crate::stats::ALL
        .iter()
        .map(|&c| (c.name().to_owned(), json!(s.total(c))))
        .collect()
}

/// The node's connections and channels with their figures (a channel whose connection
/// does not answer within a second, busy or closing, is left out).
async fn link_figures(view: &AppView) -> Value {
    let registry = view.broker.connections();
    let conns = registry.list();
    let wait = std::time::Duration::from_secs(1);
    let infos = futures::future::join_all(conns.iter().map(|c| c.channel_infos(wait))).await;
    let mut connections = Vec::new();
    let mut channels = Vec::new();
    for (conn, infos) in conns.iter().zip(infos) {
        let id = conn.info.id;
        connections.push(json!({"pid": registry.pid(id, 0).to_string(),
            "channels": conn.channels(), "counts": totals(&conn.traffic())}));
        for ch in infos.unwrap_or_default() {
            let counts = totals(ch.stats.as_ref().unwrap_or(&Snapshot::zero()));
            channels.push(json!({"pid": registry.pid(id, ch.number).to_string(),
                "consumers": ch.consumers.len(), "unacked": ch.messages_unacknowledged,
                "unconfirmed": ch.messages_unconfirmed, "uncommitted": ch.messages_uncommitted,
                "acks_uncommitted": ch.acks_uncommitted, "prefetch": ch.prefetch_count,
                "counts": counts}));
        }
    }
    json!({"connections": connections, "channels": channels})
}

/// Everything the Prometheus endpoint shows of this node.
async fn metrics(view: &AppView) -> Value {
    let broker = &view.broker;
    let node = broker.stats().node().snapshot();
    let quorum = broker.stats().quorum_queues().snapshot();
    let churn = broker.stats().links().churn();
    let conns = broker.connections().list();
    let channels: u64 = conns.iter().map(|c| u64::from(c.channels())).sum();
    let groups: std::collections::HashMap<(String, String), u64> = broker
        .all_queue_records()
        .into_iter()
        .map(|(vhost, q)| ((vhost, q.name), q.group_id))
        .collect();
    let mut queues: Vec<Value> = broker
        .stats()
        .queues()
        .into_iter()
        .map(|(vhost, name, q)| {
            let s = q.snapshot();
            let group = groups.get(&(vhost.clone(), name.clone())).copied();
            let raft = group
                .filter(|&g| g != 0)
                .and_then(|g| broker.queue_group(g))
                .map(|g| {
                    let st = g.status();
                    json!({"term": st.term, "commit_index": st.committed.unwrap_or(0),
                           "last_applied": st.last_applied.unwrap_or(0),
                           "last_written": st.last_log_index.unwrap_or(0),
                           "commit_latency": q.commit_latency()})
                });
            json!({"vhost": vhost, "name": name, "ready": s.total(Count::Ready),
                   "unacked": s.total(Count::Unacked), "consumers": s.total(Count::Consumers),
                   "published": s.total(Count::Publish), "raft": raft})
        })
        .collect();
    let key = |q: &Value| (q["vhost"].to_string(), q["name"].to_string());
    queues.sort_by_key(key);
    json!({
        "node": broker.config().node_name,
        "counts": totals(&node),
        "quorum_counts": totals(&quorum),
        "churn": {"connections_opened": churn.connections_opened,
                  "connections_closed": churn.connections_closed,
                  "channels_opened": churn.channels_opened,
                  "channels_closed": churn.channels_closed},
        "links": link_figures(view).await,
        "connections": conns.len(),
        "channels": channels,
        "queues": queues,
        "process": process_stats(view),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_stats_keys_are_rabbitmq_s() {
        let mut s = Snapshot::zero();
        s.totals[Count::Publish as usize] = 10;
        s.totals[Count::Deliver as usize] = 4;
        s.totals[Count::GetNoAck as usize] = 1;
        s.totals[Count::Unroutable as usize] = 3;
        s.totals[Count::ReturnUnroutable as usize] = 1;
        s.rates[Count::Publish as usize] = 2.0;
        let node = message_stats(&s, Shape::Node);
        assert_eq!(node["publish"], 10);
        assert_eq!(node["publish_details"], json!({"rate": 2.0}));
        assert_eq!(node["deliver_get"], 5);
        assert_eq!(node["drop_unroutable"], 2);
        assert_eq!(node["return_unroutable"], 1);
        assert_eq!(node["disk_writes"], 0);
        assert_eq!(node.as_object().unwrap().len(), 28);
        let queue = message_stats(&s, Shape::Queue);
        assert!(queue.get("confirm").is_none() && queue.get("disk_reads").is_none());
        assert_eq!(queue.as_object().unwrap().len(), 18);
        let x = message_stats(&s, Shape::Exchange);
        assert_eq!(x.as_object().unwrap().len(), 2);
        s.totals[Count::PublishOut as usize] = 7;
        let x = message_stats(&s, Shape::Exchange);
        assert_eq!(x.as_object().unwrap().len(), 4);
        assert_eq!(x["publish_out"], 7);
        assert_eq!(x["publish_in"], 10);
        let both = sum(&node, &node);
        assert_eq!(both["publish"], 20);
        assert_eq!(both["publish_details"]["rate"], 4.0);
    }
}
