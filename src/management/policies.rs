//! Policies: `/api/policies` (+ per vhost, + one GET/PUT/DELETE, through the admin
//! interface's `set_policy` / `clear_policy` / `list_policies`, as warrenctl's
//! `set_policy`, so an `ha-mode` policy grows queues as warrenctl's does). Operator
//! policies are `operator_policies.rs`'s, limits `limits.rs`'s.

use axum::http::Method;
use serde_json::{json, Value};

use super::api::Api;
use super::auth::Need;
use super::reply::{Answer, Reply};
use super::request::{need_keys, Request};
use crate::cluster::PolicyInfo;

fn policy_json(p: &PolicyInfo) -> Value {
    json!({
        "vhost": p.vhost, "name": p.name, "pattern": p.pattern, "apply-to": p.apply_to,
        "definition": serde_json::from_str::<Value>(&p.definition).unwrap_or(json!({})),
        "priority": p.priority,
    })
}

async fn policies_in(
    api: &Api,
    req: &Request,
    only: Option<&str>,
) -> Result<Vec<PolicyInfo>, Reply> {
    let mut all = Vec::new();
    for vhost in api.visible_vhosts(&req.user, only).await? {
        // A vhost deleted meanwhile has none.
        all.extend(api.admin.list_policies(vhost).await.unwrap_or_default());
    }
    Ok(all)
}

pub(super) async fn policies(api: &Api, req: &Request, vhost: Option<&str>) -> Answer {
    match vhost {
        Some(v) => req.need(api, Need::Vhost(v)).await?,
        None => req.need(api, Need::Any).await?,
    }
    if let Some(v) = vhost {
        if !api.vhost_exists(v).await? {
            return Err(Reply::not_found());
        }
    }
    let rows = policies_in(api, req, vhost).await?;
    // Policymakers (and administrators) see policies; other users an empty list.
    let rows = match req.user.is_policymaker() {
        true => rows.iter().map(policy_json).collect(),
        false => Vec::new(),
    };
    req.list(rows, &["vhost", "name"])
}

pub(super) async fn policy(api: &Api, req: &Request, vhost: &str, name: &str) -> Answer {
    req.need(api, Need::Policies(Some(vhost))).await?;
    if !api.vhost_exists(vhost).await? {
        return Err(Reply::not_found());
    }
    let existing = policies_in(api, req, Some(vhost))
        .await?
        .into_iter()
        .find(|p| p.name == name);
    match req.method {
        Method::GET => existing
            .as_ref()
            .map(|p| Reply::json(policy_json(p)))
            .ok_or_else(Reply::not_found),
        Method::PUT => {
            let o = req.object()?;
            need_keys(&o, &["pattern", "definition"])?;
            let pattern = o["pattern"]
                .as_str()
                .ok_or_else(|| Reply::bad_request("pattern must be a string"))?;
            let definition = match &o["definition"] {
                Value::Object(d) => Value::Object(d.clone()).to_string(),
                _ => return Err(Reply::bad_request("definition must be an object")),
            };
            let priority = match o.get("priority") {
                None | Some(Value::Null) => 0,
                Some(Value::Number(n)) => n
                    .as_i64()
                    .ok_or_else(|| Reply::bad_request("priority must be an integer"))?,
                Some(Value::String(s)) => s
                    .parse()
                    .map_err(|_| Reply::bad_request("priority must be an integer"))?,
                Some(_) => return Err(Reply::bad_request("priority must be an integer")),
            };
            let apply_to = o
                .get("apply-to")
                .and_then(Value::as_str)
                .unwrap_or("all")
                .to_owned();
            let policy = PolicyInfo {
                vhost: vhost.into(),
                name: name.into(),
                pattern: pattern.into(),
                apply_to,
                definition,
                priority,
            };
            api.admin
                .set_policy(policy)
                .await
                .map_err(Reply::bad_request)?;
            Ok(Reply::put(existing.is_none()))
        }
        Method::DELETE => {
            if existing.is_none() {
                return Err(Reply::not_found());
            }
            api.admin
                .clear_policy(vhost.into(), name.into())
                .await
                .map_err(Reply::bad_request)?;
            Ok(Reply::status(204))
        }
        _ => Err(Reply::method_not_allowed()),
    }
}
