//! The node and cluster endpoints: `/api/overview`, `/api/whoami`, `/api/nodes` (+ one),
//! `/api/cluster-name` (+ PUT), and the health checks (`/api/aliveness-test/VHOST`,
//! `/api/healthchecks/node`, `/api/health/checks/alarms` and `local-alarms`), failing
//! with 503 and RabbitMQ's `{"status": "failed", "reason": ...}`.

use axum::http::Method;
use serde_json::{json, Value};

use super::api::{amqp_refusal, Api};
use super::auth::{Need, Perm};
use super::reply::{Answer, Reply};
use super::request::Request;
use crate::cluster::NodeStatus;

/// The RabbitMQ release whose management API this one answers as.
pub(super) const RABBITMQ_VERSION: &str = "3.10.8";

const EXCHANGE_TYPES: [(&str, &str); 4] = [
    (
        "direct",
        "AMQP direct exchange, as per the AMQP specification",
    ),
    (
        "fanout",
        "AMQP fanout exchange, as per the AMQP specification",
    ),
    (
        "headers",
        "AMQP headers exchange, as per the AMQP specification",
    ),
    (
        "topic",
        "AMQP topic exchange, as per the AMQP specification",
    ),
];

fn exchange_types() -> Value {
    EXCHANGE_TYPES
        .iter()
        .map(|(name, description)| json!({"name": name, "description": description, "enabled": true}))
        .collect()
}

fn listeners(status: &NodeStatus) -> Value {
    status
        .listeners
        .iter()
        .map(|l| {
            json!({"node": status.node_name, "protocol": l.protocol,
                   "ip_address": l.interface, "port": l.port})
        })
        .collect()
}

pub(super) async fn overview(api: &Api, req: &Request) -> Answer {
    let status = api.admin.status();
    let cluster = api.admin.cluster_status();
    let mut totals = (0u64, 0u64, 0u64);
    let mut rates = (0.0, 0.0, 0.0);
    let (mut queues, mut exchanges, mut consumers) = (0, 0, 0);
    for vhost in api.visible_vhosts(&req.user, None).await? {
        for q in api.rows("describe_queues", &vhost, Vec::new()).await? {
            queues += 1;
            totals.0 += q["messages"].as_u64().unwrap_or(0);
            totals.1 += q["messages_ready"].as_u64().unwrap_or(0);
            totals.2 += q["messages_unacknowledged"].as_u64().unwrap_or(0);
            let rate = |k: &str| q[k]["rate"].as_f64().unwrap_or(0.0);
            rates.0 += rate("messages_details");
            rates.1 += rate("messages_ready_details");
            rates.2 += rate("messages_unacknowledged_details");
            consumers += q["consumers"].as_u64().unwrap_or(0);
        }
        exchanges += api
            .rows("describe_exchanges", &vhost, Vec::new())
            .await?
            .len();
    }
    let visible = |rows: Vec<Value>| {
        rows.iter()
            .filter(|r| req.user.is_monitor() || r["user"].as_str() == Some(req.user.name.as_str()))
            .count()
    };
    let connections = visible(api.rows("list_connections", "/", Vec::new()).await?);
    let channels = visible(api.rows("list_channels", "/", Vec::new()).await?);
    let message_stats = api
        .run("overview_stats", "/", Vec::new(), |o| {
            Reply::internal(o.error.as_str())
        })
        .await?;
    Ok(Reply::json(json!({
        "management_version": RABBITMQ_VERSION,
        "rates_mode": "basic",
        "exchange_types": exchange_types(),
        "product_version": status.version,
        "product_name": "WarrenMQ",
        "rabbitmq_version": RABBITMQ_VERSION,
        "cluster_name": cluster.cluster_name,
        "node": status.node_name,
        "disable_stats": false,
        "enable_queue_totals": false,
        "message_stats": message_stats,
        "queue_totals": {
            "messages": totals.0, "messages_details": {"rate": rates.0},
            "messages_ready": totals.1, "messages_ready_details": {"rate": rates.1},
            "messages_unacknowledged": totals.2,
            "messages_unacknowledged_details": {"rate": rates.2},
        },
        "object_totals": {
            "channels": channels, "connections": connections, "consumers": consumers,
            "exchanges": exchanges, "queues": queues,
        },
        "statistics_db_event_queue": 0,
        "listeners": listeners(&status),
        "contexts": [],
    })))
}

pub(super) async fn whoami(req: &Request) -> Answer {
    Ok(Reply::json(
        json!({"name": req.user.name, "tags": req.user.tags}),
    ))
}

/// Every node of the cluster; the answering one with its own figures (and its process's:
/// `fd_used`, `sockets_used`, `proc_used`, `mem_limit` ..., which Nagios's
/// `check_rabbitmq_server` reads).
async fn node_rows(api: &Api) -> Vec<Value> {
    let status = api.admin.status();
    // Each running node's figures (memory, fds, disk, uptime, alarms), asked of it;
    // empty while this node's app is stopped: it still answers for itself then.
    let figures = api
        .run("node_stats", "/", Vec::new(), |o| {
            Reply::internal(o.error.as_str())
        })
        .await
        .unwrap_or(Value::Null);
    let figures_of = |name: &str| {
        figures
            .as_array()
            .and_then(|nodes| nodes.iter().find(|n| n["name"] == name))
            .and_then(Value::as_object)
            .cloned()
    };
    api.admin
        .cluster_status()
        .nodes
        .into_iter()
        .map(|n| {
            let mut row = json!({"name": n.name, "type": "disc", "running": n.running,
                                 "cluster_addr": n.cluster_addr});
            let o = row.as_object_mut().expect("object");
            if n.name == status.node_name {
                let alarm = |a: &str| status.alarms.iter().any(|x| x == a);
                o.insert("uptime".into(), json!(status.uptime_ms));
                o.insert("mem_used".into(), json!(status.resident_memory_bytes));
                o.insert("mem_alarm".into(), json!(alarm("memory")));
                o.insert("disk_free_alarm".into(), json!(alarm("disk")));
                o.insert("os_pid".into(), json!(status.pid.to_string()));
            }
            let figures = figures_of(&n.name).filter(|_| n.running);
            if n.name == status.node_name || figures.is_some() {
                o.insert("partitions".into(), json!([]));
                o.insert("rates_mode".into(), json!("basic"));
                o.insert("exchange_types".into(), exchange_types());
                o.insert("being_drained".into(), json!(false));
            }
            o.extend(figures.unwrap_or_default());
            row
        })
        .collect()
}

/// Whether `asked` names node `name`: exactly, or as `rabbit@HOST` for `NODE@HOST`
/// (Nagios's `check_rabbitmq_server` asks for `rabbit@` its `--node`).
fn names(name: &Value, asked: &str) -> bool {
    let Some(name) = name.as_str() else {
        return false;
    };
    let host = |n: &str| n.split_once('@').map(|(_, h)| h.to_owned());
    name == asked || (asked.starts_with("rabbit@") && host(asked) == host(name))
}

pub(super) async fn nodes(api: &Api, req: &Request, name: Option<&str>) -> Answer {
    req.need(api, Need::Monitor).await?;
    let rows = node_rows(api).await;
    match name {
        None => req.list(rows, &["name"]),
        Some(name) => rows
            .iter()
            .find(|n| n["name"] == name)
            .or_else(|| rows.iter().find(|n| names(&n["name"], name)))
            .cloned()
            .map(Reply::json)
            .ok_or_else(Reply::not_found),
    }
}

/// `GET /api/cluster-name`, and `PUT` of `{"name": NAME}` (administrators only) through
/// warrenctl's `set_cluster_name`: 204, as RabbitMQ answers even an empty name.
pub(super) async fn cluster_name(api: &Api, req: &Request) -> Answer {
    match req.method {
        Method::GET => Ok(Reply::json(
            json!({"name": api.admin.cluster_status().cluster_name}),
        )),
        Method::PUT => {
            req.need(api, Need::Admin).await?;
            let name = match req.object()?.remove("name") {
                Some(Value::String(name)) => name,
                None => return Err(Reply::bad_request("[{key_missing,name}]")),
                // RabbitMQ fails on a name that is not a string: a 500 without a body.
                Some(_) => return Err(Reply::status(500)),
            };
            api.run("set_cluster_name", "/", vec![name], |o| {
                Reply::bad_request(o.error.as_str())
            })
            .await?;
            Ok(Reply::status(204))
        }
        _ => Err(Reply::method_not_allowed()),
    }
}

fn failed(reason: impl Into<Value>) -> Reply {
    let mut reply = Reply::json(json!({"status": "failed", "reason": reason.into()}));
    reply.status = 503;
    reply
}

/// Declare `aliveness-test`, publish to it and get the message back, as RabbitMQ does.
pub(super) async fn aliveness(api: &Api, req: &Request, vhost: &str) -> Answer {
    req.need(api, Need::Vhost(vhost)).await?;
    if !api.vhost_exists(vhost).await? {
        return Err(Reply::not_found());
    }
    const QUEUE: &str = "aliveness-test";
    for perm in [Perm::Configure, Perm::Write, Perm::Read] {
        req.permit_or(vhost, perm, QUEUE, || {
            Reply::not_authorised(&req.access_refused("queue", QUEUE, vhost))
        })?;
    }
    req.permit_or(vhost, Perm::Write, "", || {
        Reply::not_authorised(&req.access_refused("exchange", "", vhost))
    })?;
    api.run(
        "declare_queue",
        vhost,
        vec![QUEUE.into(), json!({"durable": false}).to_string()],
        amqp_refusal,
    )
    .await?;
    let publish = json!({"routing_key": QUEUE, "payload": "test_message"});
    api.run(
        "publish",
        vhost,
        vec![String::new(), publish.to_string()],
        amqp_refusal,
    )
    .await?;
    let get = json!({"count": 1, "ackmode": "ack_requeue_false", "encoding": "auto"});
    let got = api
        .run(
            "get_messages",
            vhost,
            vec![QUEUE.into(), get.to_string()],
            amqp_refusal,
        )
        .await?;
    match got.as_array().map(Vec::len) {
        Some(n) if n > 0 => Ok(Reply::json(json!({"status": "ok"}))),
        _ => Err(failed("aliveness-test queue is empty")),
    }
}

pub(super) async fn node_health(api: &Api) -> Answer {
    let status = api.admin.status();
    match status.app_running {
        true => Ok(Reply::json(json!({"status": "ok"}))),
        false => Err(failed("the app is not running")),
    }
}

/// The node's resource alarms (WarrenMQ knows its own only: both checks report them).
/// The resource alarms in effect on this node, or (not `local`) on any running node of
/// the cluster, as RabbitMQ's health checks list them.
pub(super) async fn alarms(api: &Api, local: bool) -> Answer {
    let status = api.admin.status();
    let mut alarms: Vec<Value> = status
        .alarms
        .iter()
        .map(|a| json!({"node": status.node_name, "resource": a}))
        .collect();
    if !local {
        let figures = api
            .run("node_stats", "/", Vec::new(), |o| {
                Reply::internal(o.error.as_str())
            })
            .await
            .unwrap_or(Value::Null);
        let peers = figures.as_array().into_iter().flatten();
        for node in peers.filter(|n| n["name"] != status.node_name.as_str()) {
            for (key, resource) in [("mem_alarm", "memory"), ("disk_free_alarm", "disk")] {
                if node[key] == true {
                    alarms.push(json!({"node": node["name"], "resource": resource}));
                }
            }
        }
    }
    if alarms.is_empty() {
        return Ok(Reply::json(json!({"status": "ok"})));
    }
    let reason = match local {
        true => "There are alarms in effect on the node",
        false => "There are alarms in effect in the cluster",
    };
    let mut reply = failed(reason);
    if let Some(o) = reply.body.as_mut().and_then(Value::as_object_mut) {
        o.insert("alarms".into(), Value::Array(alarms));
    }
    Err(reply)
}
