//! Vhost and user limits: `/api/vhost-limits` (+ per vhost) and `/api/user-limits` (+
//! per user) read from the node's definitions, and one limit set or cleared with
//! `PUT` (`{"value": N}`) / `DELETE` on `/api/vhost-limits/VHOST/NAME` and
//! `/api/user-limits/USER/NAME` (administrators only), through warrenctl's
//! `set_vhost_limits` / `clear_vhost_limits` / `set_user_limits` / `clear_user_limits`,
//! so their refusals are the node's, in RabbitMQ's words.
//!
//! RabbitMQ sets one vhost limit by merging it into the vhost's definition and setting
//! the whole again (`rabbit_vhost_limit:update_limit`); so does this, over
//! `set_vhost_limits`, which replaces a vhost's limits as rabbitmqctl's does.

use axum::http::Method;
use serde_json::{json, Map, Value};

use super::access::definitions_section;
use super::api::Api;
use super::auth::Need;
use super::reply::{Answer, Reply};
use super::request::Request;

pub(super) async fn vhost_limits(api: &Api, req: &Request, vhost: Option<&str>) -> Answer {
    if let Some(v) = vhost {
        req.need(api, Need::Vhost(v)).await?;
        if !api.vhost_exists(v).await? {
            return Err(Reply::not_found());
        }
    }
    let visible = api.visible_vhosts(&req.user, vhost).await?;
    let rows: Vec<Value> = definitions_section(api, "parameters")
        .await?
        .into_iter()
        .filter(|p| p["component"] == "vhost-limits")
        .filter(|p| visible.iter().any(|v| p["vhost"] == v.as_str()))
        .map(|p| json!({"vhost": p["vhost"], "value": p["value"]}))
        .collect();
    req.list(rows, &["vhost"])
}

/// Any management user may read every user's limits (RabbitMQ's
/// `is_authorized_vhost_visible` without a vhost).
pub(super) async fn user_limits(api: &Api, req: &Request, user: Option<&str>) -> Answer {
    let rows: Vec<Value> = definitions_section(api, "users")
        .await?
        .into_iter()
        .filter(|u| user.is_none_or(|name| u["name"] == name))
        .filter(|u| u["limits"].as_object().is_some_and(|l| !l.is_empty()))
        .map(|u| json!({"user": u["name"], "value": u["limits"]}))
        .collect();
    req.list(rows, &["user"])
}

/// The `value` of a limit's body, or RabbitMQ's 400.
fn limit_value(req: &Request) -> Result<Value, Reply> {
    req.object()?
        .remove("value")
        .ok_or_else(|| Reply::bad_request("[{key_missing,value}]"))
}

/// PUT and DELETE only, as RabbitMQ's `rabbit_mgmt_wm_limit` allows (checked before the
/// user's tags, as cowboy checks methods first).
fn put_or_delete(req: &Request) -> Result<(), Reply> {
    match req.method {
        Method::PUT | Method::DELETE => Ok(()),
        _ => Err(Reply::method_not_allowed()),
    }
}

/// A vhost's limits as the node has them (none: an empty object).
async fn current_vhost_limits(api: &Api, vhost: &str) -> Result<Map<String, Value>, Reply> {
    let rows = api.rows("list_vhost_limits", vhost, Vec::new()).await?;
    let text = rows
        .first()
        .and_then(|r| r["limits"].as_str())
        .unwrap_or("{}");
    match serde_json::from_str(text) {
        Ok(Value::Object(limits)) => Ok(limits),
        _ => Err(Reply::internal(format!(
            "bad limits of vhost '{vhost}': {text}"
        ))),
    }
}

/// `PUT` / `DELETE /api/vhost-limits/VHOST/NAME`.
pub(super) async fn vhost_limit(api: &Api, req: &Request, vhost: &str, name: &str) -> Answer {
    put_or_delete(req)?;
    req.need(api, Need::Admin).await?;
    let exists = api.vhost_exists(vhost).await?;
    if !exists {
        return Err(match req.method {
            Method::PUT => Reply::error(404, "not_found", "vhost_not_found"),
            // RabbitMQ's clear_limit fails on a missing vhost: a 500 without a body.
            _ => Reply::status(500),
        });
    }
    let mut limits = current_vhost_limits(api, vhost).await?;
    if req.method == Method::PUT {
        limits.insert(name.to_owned(), limit_value(req)?);
    } else if limits.remove(name).is_none() {
        // Clearing a limit the vhost does not have is a success.
        return Ok(Reply::status(204));
    }
    let (command, args) = match limits.is_empty() {
        true => ("clear_vhost_limits", Vec::new()),
        false => ("set_vhost_limits", vec![Value::Object(limits).to_string()]),
    };
    api.run(command, vhost, args, |o| {
        Reply::bad_request(o.error.as_str())
    })
    .await?;
    Ok(Reply::status(204))
}

/// `PUT` / `DELETE /api/user-limits/USER/NAME`.
pub(super) async fn user_limit(api: &Api, req: &Request, user: &str, name: &str) -> Answer {
    put_or_delete(req)?;
    req.need(api, Need::Admin).await?;
    if req.method == Method::DELETE {
        if !api.users().await?.iter().any(|(u, _)| u == user) {
            // RabbitMQ's clear_user_limits fails on a missing user: a 500 without a body.
            return Err(Reply::status(500));
        }
        let args = vec![user.to_owned(), name.to_owned()];
        api.run("clear_user_limits", "/", args, |o| {
            Reply::bad_request(o.error.as_str())
        })
        .await?;
        return Ok(Reply::status(204));
    }
    let value = limit_value(req)?;
    let definition = Value::Object(Map::from_iter([(name.to_owned(), value)]));
    let args = vec![user.to_owned(), definition.to_string()];
    let outcome = api
        .command("set_user_limits", "/", args, Vec::new())
        .await?;
    if outcome.exit_code == 0 {
        return Ok(Reply::status(204));
    }
    // The node checks the definition first, then the user (rabbitmqctl's
    // `{:no_such_user, "U"}`), answered as RabbitMQ's API answers it.
    match outcome.error.starts_with("{:no_such_user") {
        true => Err(Reply::bad_request(json!(["no_such_user", user]))),
        false => Err(Reply::bad_request(outcome.error.as_str())),
    }
}
