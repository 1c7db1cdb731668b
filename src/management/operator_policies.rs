//! Operator policies: `/api/operator-policies` (+ per vhost) and one GET/PUT/DELETE
//! (`/api/operator-policies/VHOST/NAME`, administrators only), through warrenctl's
//! `list_operator_policies` / `set_operator_policy` / `clear_operator_policy`. The node
//! refuses every key an operator policy may hold until its feature lands (see
//! `node/limits.rs`), in RabbitMQ's words where RabbitMQ refuses too, so a PUT is
//! answered 400 and no operator policy exists yet.

use axum::http::Method;
use serde_json::Value;

use super::api::Api;
use super::auth::Need;
use super::reply::{Answer, Reply};
use super::request::{need_keys, string, Request};

/// A vhost's operator policies as the node lists them (rabbitmqctl's keys, a definition
/// as JSON text), as the API shows them.
async fn in_vhost(api: &Api, vhost: &str) -> Result<Vec<Value>, Reply> {
    Ok(api
        .rows("list_operator_policies", vhost, Vec::new())
        .await?
        .into_iter()
        .map(|mut p| {
            if let Some(text) = p["definition"].as_str() {
                p["definition"] = serde_json::from_str(text).unwrap_or(Value::Null);
            }
            p
        })
        .collect())
}

pub(super) async fn operator_policies(api: &Api, req: &Request, vhost: Option<&str>) -> Answer {
    if let Some(v) = vhost {
        req.need(api, Need::Vhost(v)).await?;
        if !api.vhost_exists(v).await? {
            return Err(Reply::not_found());
        }
    }
    let mut rows = Vec::new();
    for v in api.visible_vhosts(&req.user, vhost).await? {
        rows.extend(in_vhost(api, &v).await?);
    }
    req.list(rows, &["vhost", "name"])
}

/// `GET` / `PUT` / `DELETE /api/operator-policies/VHOST/NAME`.
pub(super) async fn operator_policy(api: &Api, req: &Request, vhost: &str, name: &str) -> Answer {
    if ![Method::GET, Method::PUT, Method::DELETE].contains(&req.method) {
        return Err(Reply::method_not_allowed());
    }
    req.need(api, Need::Admin).await?;
    let exists = api.vhost_exists(vhost).await?;
    let existing = match exists {
        true => in_vhost(api, vhost)
            .await?
            .into_iter()
            .find(|p| p["name"] == name),
        false => None,
    };
    match req.method {
        Method::GET => existing.map(Reply::json).ok_or_else(Reply::not_found),
        Method::DELETE => {
            if existing.is_none() {
                return Err(Reply::not_found());
            }
            api.run("clear_operator_policy", vhost, vec![name.into()], |o| {
                Reply::bad_request(o.error.as_str())
            })
            .await?;
            Ok(Reply::status(204))
        }
        _ => {
            if !exists {
                return Err(Reply::error(404, "not_found", "vhost_not_found"));
            }
            let o = req.object()?;
            need_keys(&o, &["pattern", "definition"])?;
            let Some(definition @ Value::Object(_)) = o.get("definition") else {
                // RabbitMQ fails on a definition that is not an object: a 500, no body.
                return Err(Reply::status(500));
            };
            let pattern = match &o["pattern"] {
                Value::String(p) => p.clone(),
                other => other.to_string(),
            };
            // The node checks priority and apply-to as RabbitMQ does: sent as given.
            let priority = o.get("priority").map_or("0".into(), Value::to_string);
            let apply_to = string(&o, "apply-to").unwrap_or("all").to_owned();
            let args = vec![
                name.to_owned(),
                pattern,
                definition.to_string(),
                priority,
                apply_to,
            ];
            api.run("set_operator_policy", vhost, args, |o| {
                Reply::bad_request(o.error.as_str())
            })
            .await?;
            Ok(Reply::put(existing.is_none()))
        }
    }
}
