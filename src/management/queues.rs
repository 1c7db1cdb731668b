//! `/api/queues` (+ per vhost, + one GET/PUT/DELETE with `if-empty` / `if-unused`,
//! `.../contents` purge, `.../get`, `.../bindings`, `.../actions`). Rows come from the node's
//! `describe_queues` (cluster-wide counts, Raft members and leader); changes are the
//! broker operations a client's `queue.declare` / `queue.delete` / `queue.purge` /
//! `basic.get` use, sent as admin commands.

use axum::http::Method;
use serde_json::{json, Value};

use super::api::{amqp_refusal, Api};
use super::auth::{Need, Perm};
use super::bindings::with_properties_key;
use super::reply::{Answer, Reply};
use super::request::{need_keys, Request};
use crate::cluster::CommandOutcome;

/// A rabbitmqctl-coded refusal of `delete_queue` / `purge_queue`, as RabbitMQ's 400.
fn ctl_refusal(o: &CommandOutcome) -> Reply {
    let text = o
        .error
        .split_once(" - ")
        .map_or(o.error.as_str(), |(_, t)| t);
    Reply::bad_request(text)
}

/// 404 unless the vhost exists (after the user's access to it is checked).
pub(super) async fn vhost_in_path(api: &Api, req: &Request, vhost: &str) -> Result<(), Reply> {
    req.need(api, Need::Vhost(vhost)).await?;
    match api.vhost_exists(vhost).await? {
        true => Ok(()),
        false => Err(Reply::not_found()),
    }
}

pub(super) async fn list(api: &Api, req: &Request, vhost: Option<&str>) -> Answer {
    if let Some(v) = vhost {
        vhost_in_path(api, req, v).await?;
    }
    let rows = api
        .row_texts_in("describe_queues", &req.user, vhost)
        .await?;
    req.list_texts(rows, &["vhost", "name"])
}

/// A queue's row, as `describe_queues` gives it.
pub(super) async fn find(api: &Api, vhost: &str, name: &str) -> Result<Option<Value>, Reply> {
    Ok(api
        .rows("describe_queues", vhost, vec![name.into()])
        .await?
        .into_iter()
        .find(|q| q["name"] == name))
}

pub(super) async fn queue(api: &Api, req: &Request, vhost: &str, name: &str) -> Answer {
    req.need(api, Need::Vhost(vhost)).await?;
    if !api.vhost_exists(vhost).await? {
        return Err(match req.method {
            Method::PUT => Reply::error(404, "not_found", "vhost_not_found"),
            _ => Reply::not_found(),
        });
    }
    let existing = find(api, vhost, name).await?;
    match req.method {
        Method::GET => existing.map(Reply::json).ok_or_else(Reply::not_found),
        Method::PUT => {
            let options = Value::Object(req.object()?);
            req.permit(vhost, Perm::Configure, name)?;
            api.run(
                "declare_queue",
                vhost,
                vec![name.into(), options.to_string()],
                amqp_refusal,
            )
            .await?;
            Ok(Reply::put(existing.is_none()))
        }
        Method::DELETE => {
            if existing.is_none() {
                return Err(Reply::not_found());
            }
            req.permit(vhost, Perm::Configure, name)?;
            let flags = ["if-empty", "if-unused"]
                .iter()
                .filter(|f| req.flag(f))
                .map(|f| f.to_string())
                .collect();
            api.run_flags("delete_queue", vhost, vec![name.into()], flags, ctl_refusal)
                .await?;
            Ok(Reply::status(204))
        }
        _ => Err(Reply::method_not_allowed()),
    }
}

pub(super) async fn purge(api: &Api, req: &Request, vhost: &str, name: &str) -> Answer {
    vhost_in_path(api, req, vhost).await?;
    if req.method != Method::DELETE {
        return Err(Reply::method_not_allowed());
    }
    if find(api, vhost, name).await?.is_none() {
        return Err(Reply::not_found());
    }
    req.permit(vhost, Perm::Read, name)?;
    api.run("purge_queue", vhost, vec![name.into()], ctl_refusal)
        .await?;
    Ok(Reply::status(204))
}

pub(super) async fn get(api: &Api, req: &Request, vhost: &str, name: &str) -> Answer {
    vhost_in_path(api, req, vhost).await?;
    if req.method != Method::POST {
        return Err(Reply::method_not_allowed());
    }
    let o = req.object()?;
    need_keys(&o, &["count", "ackmode", "encoding"])?;
    if find(api, vhost, name).await?.is_none() {
        return Err(Reply::not_found());
    }
    req.permit_or(vhost, Perm::Read, name, || {
        Reply::not_authorised(&req.access_refused("queue", name, vhost))
    })?;
    let messages = api
        .run(
            "get_messages",
            vhost,
            vec![name.into(), Value::Object(o).to_string()],
            amqp_refusal,
        )
        .await?;
    Ok(Reply::json(messages))
}

pub(super) async fn bindings(api: &Api, req: &Request, vhost: &str, name: &str) -> Answer {
    vhost_in_path(api, req, vhost).await?;
    if find(api, vhost, name).await?.is_none() {
        return Err(Reply::not_found());
    }
    let rows: Vec<Value> = api
        .rows("describe_bindings", vhost, Vec::new())
        .await?
        .into_iter()
        .filter(|b| b["destination"] == name && b["destination_type"] == "queue")
        .map(with_properties_key)
        .collect();
    req.list(rows, &[])
}

/// `POST /api/queues/VHOST/NAME/actions` with `{"action": "sync"}` or `"cancel_sync"`
/// (administrators only). RabbitMQ syncs a classic queue's unsynchronised mirrors; a
/// WarrenMQ queue's members are Raft replicas that take every entry as it commits, so
/// there is nothing to start or cancel, and the answers are RabbitMQ 3.10.8's
/// (measured): 204 for both on a classic queue and for `sync` on a quorum queue, 500
/// without a body for `cancel_sync` on a quorum queue and for a queue or vhost that
/// does not exist (its handler fails there), 400 `["unknown", ACTION]` otherwise.
pub(super) async fn actions(api: &Api, req: &Request, vhost: &str, name: &str) -> Answer {
    if req.method != Method::POST {
        return Err(Reply::method_not_allowed());
    }
    req.need(api, Need::Admin).await?;
    let o = req.object()?;
    let Some(action) = o.get("action") else {
        return Err(Reply::bad_request("[{key_missing,action}]"));
    };
    let queue = match api.vhost_exists(vhost).await? {
        true => find(api, vhost, name).await?,
        false => None,
    };
    let Some(queue) = queue else {
        return Err(Reply::status(500));
    };
    match action.as_str() {
        Some("sync") => Ok(Reply::status(204)),
        Some("cancel_sync") if queue["type"] == "quorum" => Err(Reply::status(500)),
        Some("cancel_sync") => Ok(Reply::status(204)),
        _ => Err(Reply::bad_request(json!(["unknown", action]))),
    }
}
