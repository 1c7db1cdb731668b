//! rabbitmqctl's connection commands for the whole cluster, as rabbitmqctl runs them on
//! any node: `list_connections`, `list_channels` and `list_consumers` merge this node's
//! rows with every other node's (asked with the `local_only` flag); `close_connection`
//! finds the connection by pid (rabbitmqctl's syntax) or by name and has its node close
//! it with 320; `close_all_connections` closes a vhost's connections cluster-wide, or with
//! `global` every connection of this node, as rabbitmqctl 3.10.8 does.

use std::time::Duration;

use futures::future::join_all;
use serde_json::{json, Value};
use tracing::warn;

use super::connection_rows::{channel_row, connection_row, consumer_rows};
use super::control::{AppView, Control};
use crate::broker::{Pid, RegisteredConn};
use crate::cluster::{CommandOutcome, CommandRequest};
use crate::metadata::ClusterNode;

/// Set on the requests one node sends another: answer for your own connections only.
const LOCAL_ONLY: &str = "local_only";
/// How long a connection task may take to report its channels; one that does not answer
/// in time (busy with a slow operation) is left out, as RabbitMQ leaves out a channel
/// that does not answer `emit_info` in time.
const CHANNEL_WAIT: Duration = Duration::from_secs(2);

/// The commands this module answers.
pub(super) fn handles(command: &str) -> bool {
    matches!(
        command,
        "list_connections"
            | "list_channels"
            | "list_consumers"
            | "close_connection"
            | "close_all_connections"
    )
}

fn flag(req: &CommandRequest, name: &str) -> bool {
    req.flags.iter().any(|f| f == name)
}

/// A numeric flag `name=N`; 0 when absent.
fn number_flag(req: &CommandRequest, name: &str) -> Result<u64, CommandOutcome> {
    let prefix = format!("{name}=");
    match req.flags.iter().find_map(|f| f.strip_prefix(&prefix)) {
        None => Ok(0),
        Some(n) => n
            .parse()
            .map_err(|_| CommandOutcome::refused(64, format!("--{name} must be a number"))),
    }
}

pub(super) async fn run(control: &Control, view: &AppView, req: &CommandRequest) -> CommandOutcome {
    match req.command.as_str() {
        "list_connections" | "list_channels" | "list_consumers" => {
            let mut rows = local_rows(view, req).await;
            if !flag(req, LOCAL_ONLY) {
                rows = cluster_rows(control, view, req, rows).await;
            }
            CommandOutcome::with_json(Value::Array(rows).to_string())
        }
        "close_connection" => close_connection(control, view, req).await,
        "close_all_connections" => close_all(control, view, req).await,
        other => CommandOutcome::refused(70, format!("unknown command '{other}'")),
    }
}

/// This node's rows for a list command.
async fn local_rows(view: &AppView, req: &CommandRequest) -> Vec<Value> {
    let registry = view.broker.connections();
    let mut conns = registry.list();
    if req.command == "list_connections" {
        let alarm = view.broker.alarms().borrow().any();
        return conns
            .iter()
            .map(|c| connection_row(registry, c, alarm))
            .collect();
    }
    if req.command == "list_consumers" {
        // Consumers are listed per vhost (their queues'), as rabbitmqctl's `-p`.
        conns.retain(|c| c.info.vhost == req.vhost);
    }
    let reports = join_all(conns.iter().map(|c| c.channel_infos(CHANNEL_WAIT))).await;
    let mut rows = Vec::new();
    for (conn, channels) in conns.iter().zip(reports) {
        let Some(channels) = channels else {
            warn!(
                connection = conn.info.name(),
                "left out of {}: it did not report its channels in time", req.command
            );
            continue;
        };
        for ch in &channels {
            if req.command == "list_channels" {
                rows.push(channel_row(registry, conn, ch));
            } else {
                rows.extend(consumer_rows(registry, conn, ch));
            }
        }
    }
    rows
}

/// The rows of every node, by node name, this node's (`mine`) among them. A node that
/// cannot be reached is left out, as rabbitmqctl lists the running nodes only.
async fn cluster_rows(
    control: &Control,
    view: &AppView,
    req: &CommandRequest,
    mine: Vec<Value>,
) -> Vec<Value> {
    let peers = peers(view);
    let answers = join_all(peers.iter().map(|n| ask_peer(control, n, req))).await;
    let me = view.broker.connections().node_name().to_owned();
    let mut by_node: Vec<(String, Vec<Value>)> = vec![(me, mine)];
    for (node, answer) in peers.into_iter().zip(answers) {
        match answer.map(|o| rows_of(&o)) {
            Ok(Ok(rows)) => by_node.push((node.name, rows)),
            Ok(Err(e)) | Err(e) => {
                warn!(
                    node = node.name,
                    error = e,
                    "{} left a node out",
                    req.command
                )
            }
        }
    }
    by_node.sort_by(|a, b| a.0.cmp(&b.0));
    by_node.into_iter().flat_map(|(_, rows)| rows).collect()
}

/// `req` run by another node for its own connections only.
async fn ask_peer(
    control: &Control,
    node: &ClusterNode,
    req: &CommandRequest,
) -> Result<CommandOutcome, String> {
    let mut req = req.clone();
    req.flags.push(LOCAL_ONLY.to_owned());
    let mut client = control.admin_of(node).await?;
    client.command(req).await.map_err(|e| e.to_string())
}

fn rows_of(outcome: &CommandOutcome) -> Result<Vec<Value>, String> {
    if outcome.exit_code != 0 {
        return Err(outcome.error.clone());
    }
    match serde_json::from_str(&outcome.json) {
        Ok(Value::Array(rows)) => Ok(rows),
        _ => Err(format!("not a list: {}", outcome.json)),
    }
}

fn closed(view: &AppView, count: usize) -> CommandOutcome {
    let node = view.broker.connections().node_name();
    CommandOutcome::with_json(json!({"node": node, "closed": count}).to_string())
}

/// `close_connection PID-OR-NAME EXPLANATION`. A pid that names no open connection is not
/// an error (rabbitmqctl: the node logs a warning); text that is neither a pid nor the
/// name of an open connection is refused as rabbitmqctl refuses a bad pid.
async fn close_connection(
    control: &Control,
    view: &AppView,
    req: &CommandRequest,
) -> CommandOutcome {
    let [target, reason] = req.args.as_slice() else {
        return CommandOutcome::refused(64, "close_connection takes a connection and a reason");
    };
    let registry = view.broker.connections();
    let local_only = flag(req, LOCAL_ONLY);
    if let Some(pid) = Pid::parse(target) {
        if pid.node == registry.node_name() {
            let found = registry.by_pid(&pid);
            if found.is_none() {
                warn!(%pid, reason, "asked to close a connection that is not open here");
            }
            return closed(view, found.map_or(0, |c| usize::from(c.close(reason))));
        }
        let owner = view
            .broker
            .cluster_nodes()
            .into_values()
            .find(|n| n.name == pid.node);
        return match owner {
            Some(node) if !local_only => match ask_peer(control, &node, req).await {
                Ok(outcome) => outcome,
                Err(e) => CommandOutcome::refused(69, e),
            },
            _ => {
                warn!(%pid, reason, "asked to close a connection of a node not in the cluster");
                closed(view, 0)
            }
        };
    }
    let mut count = close_all_of(&registry.by_name(target), reason);
    if count == 0 && !local_only {
        for node in peers(view) {
            match ask_peer(control, &node, req).await {
                Ok(o) if o.exit_code == 0 => count += closed_count(&o),
                Ok(_) => {}
                Err(e) => warn!(
                    node = node.name,
                    error = e,
                    "close_connection skipped a node"
                ),
            }
        }
    }
    if count == 0 && !local_only {
        return CommandOutcome::refused(
            69,
            format!(
                "{{:invalid_pid_syntax, {target:?}}}\n(not a pid, nor the name of an open connection: see list_connections pid name)"
            ),
        );
    }
    closed(view, count)
}

fn close_all_of(conns: &[std::sync::Arc<RegisteredConn>], reason: &str) -> usize {
    conns.iter().filter(|c| c.close(reason)).count()
}

fn closed_count(outcome: &CommandOutcome) -> usize {
    serde_json::from_str::<Value>(&outcome.json)
        .ok()
        .and_then(|v| v["closed"].as_u64())
        .unwrap_or(0) as usize
}

/// The other nodes of the cluster.
fn peers(view: &AppView) -> Vec<ClusterNode> {
    view.broker
        .cluster_nodes()
        .into_iter()
        .filter(|(id, _)| *id != view.node_id)
        .map(|(_, n)| n)
        .collect()
}

/// `close_all_connections [-p VHOST] [--limit N] [--global] [--per-connection-delay MS]
/// EXPLANATION`: without `global`, the vhost's connections on every node (the first N
/// with a limit); with it, every connection of this node. The reply counts the
/// connections chosen, as rabbitmqctl's "Closed N connections".
async fn close_all(control: &Control, view: &AppView, req: &CommandRequest) -> CommandOutcome {
    let [reason] = req.args.as_slice() else {
        return CommandOutcome::refused(64, "close_all_connections takes one reason");
    };
    let (limit, delay) = match (
        number_flag(req, "limit"),
        number_flag(req, "per-connection-delay"),
    ) {
        (Ok(limit), Ok(delay)) => (limit, Duration::from_millis(delay)),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    let global = flag(req, "global");
    let listing = CommandRequest {
        command: "list_connections".into(),
        args: Vec::new(),
        vhost: req.vhost.clone(),
        flags: Vec::new(),
    };
    let mut rows = local_rows(view, &listing).await;
    if !global {
        rows = cluster_rows(control, view, &listing, rows).await;
        rows.retain(|row| row["vhost"] == req.vhost.as_str());
        if limit > 0 {
            rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        }
    }
    let targets: Vec<String> = rows
        .iter()
        .filter_map(|row| row["pid"].as_str().map(str::to_owned))
        .collect();
    for pid in &targets {
        let one = CommandRequest {
            command: "close_connection".into(),
            args: vec![pid.clone(), reason.clone()],
            vhost: req.vhost.clone(),
            flags: Vec::new(),
        };
        // A connection gone meanwhile is no error, as in rabbitmqctl.
        let outcome = close_connection(control, view, &one).await;
        if outcome.exit_code != 0 {
            warn!(
                pid,
                error = outcome.error,
                "close_all_connections could not close one"
            );
        }
        tokio::time::sleep(delay).await;
    }
    closed(view, targets.len())
}
