//! Vhosts, users, permissions and topic permissions: `/api/vhosts`, `/api/users` (+
//! `bulk-delete`, `without-permissions`), `/api/permissions`, `/api/topic-permissions`.
//! Reads come from the node's definitions export (it carries password hashes and
//! limits); changes are warrenctl's commands (`add_user`, `set_permissions`, ...), and a
//! user given by its password hash is imported as a definitions entry.

use axum::http::Method;
use serde_json::{json, Map, Value};

use super::api::Api;
use super::auth::Need;
use super::reply::{Answer, Reply};
use super::request::{need_keys, string, Request};

/// A section of the node's definitions (`users`, `permissions`, ...).
pub(super) async fn definitions_section(api: &Api, section: &str) -> Result<Vec<Value>, Reply> {
    let all = api
        .run("export_definitions", "/", Vec::new(), |o| {
            Reply::internal(o.error.as_str())
        })
        .await?;
    Ok(all[section].as_array().cloned().unwrap_or_default())
}

/// A rabbitmqctl refusal as a 400 with its text.
fn refused(o: &crate::cluster::CommandOutcome) -> Reply {
    Reply::bad_request(o.error.as_str())
}

async fn vhost_row(api: &Api, name: &str, node: &str) -> Result<Value, Reply> {
    let (mut messages, mut ready, mut unacked) = (0, 0, 0);
    for q in api.rows("describe_queues", name, Vec::new()).await? {
        messages += q["messages"].as_u64().unwrap_or(0);
        ready += q["messages_ready"].as_u64().unwrap_or(0);
        unacked += q["messages_unacknowledged"].as_u64().unwrap_or(0);
    }
    let description = if name == "/" {
        "Default virtual host"
    } else {
        ""
    };
    Ok(json!({
        "name": name, "description": description, "tags": [],
        "metadata": {"description": description, "tags": []},
        "default_queue_type": "undefined", "tracing": false,
        "cluster_state": {node: "running"},
        "messages": messages, "messages_details": {"rate": 0.0},
        "messages_ready": ready, "messages_ready_details": {"rate": 0.0},
        "messages_unacknowledged": unacked, "messages_unacknowledged_details": {"rate": 0.0},
    }))
}

pub(super) async fn vhosts(api: &Api, req: &Request) -> Answer {
    let node = api.admin.status().node_name;
    let mut rows = Vec::new();
    for name in api.visible_vhosts(&req.user, None).await? {
        rows.push(vhost_row(api, &name, &node).await?);
    }
    req.list(rows, &["name"])
}

pub(super) async fn vhost(api: &Api, req: &Request, name: &str) -> Answer {
    let exists = api.vhost_exists(name).await?;
    match req.method {
        Method::GET => {
            req.need(api, Need::Vhost(name)).await?;
            if !exists {
                return Err(Reply::not_found());
            }
            let node = api.admin.status().node_name;
            Ok(Reply::json(vhost_row(api, name, &node).await?))
        }
        Method::PUT => {
            req.need(api, Need::Admin).await?;
            req.object()?;
            api.run("add_vhost", "/", vec![name.into()], refused)
                .await?;
            if !exists {
                // RabbitMQ grants the user who creates a vhost full permissions in it.
                let full = vec![req.user.name.clone(), ".*".into(), ".*".into(), ".*".into()];
                api.run("set_permissions", name, full, refused).await?;
            }
            Ok(Reply::put(!exists))
        }
        Method::DELETE => {
            req.need(api, Need::Admin).await?;
            if !exists {
                return Err(Reply::not_found());
            }
            api.run("delete_vhost", "/", vec![name.into()], refused)
                .await?;
            Ok(Reply::status(204))
        }
        _ => Err(Reply::method_not_allowed()),
    }
}

pub(super) async fn users(api: &Api, req: &Request, without_permissions: bool) -> Answer {
    req.need(api, Need::Admin).await?;
    let mut users = definitions_section(api, "users").await?;
    if without_permissions {
        let permissions = definitions_section(api, "permissions").await?;
        users.retain(|u| !permissions.iter().any(|p| p["user"] == u["name"]));
    }
    req.list(users, &["name"])
}

/// Tags as RabbitMQ takes them: a comma-separated string or a list.
fn tags(o: &Map<String, Value>) -> Result<Vec<String>, Reply> {
    match o.get("tags") {
        None => Err(Reply::bad_request("tags_not_present")),
        Some(Value::String(s)) => Ok(s
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect()),
        Some(Value::Array(a)) => Ok(a
            .iter()
            .filter_map(|t| t.as_str().map(str::to_owned))
            .collect()),
        Some(_) => Err(Reply::bad_request("tags must be a string or a list")),
    }
}

pub(super) async fn user(api: &Api, req: &Request, name: &str) -> Answer {
    req.need(api, Need::Admin).await?;
    let existing = definitions_section(api, "users")
        .await?
        .into_iter()
        .find(|u| u["name"] == name);
    match req.method {
        Method::GET => existing.map(Reply::json).ok_or_else(Reply::not_found),
        Method::PUT => {
            let o = req.object()?;
            let tags = tags(&o)?;
            if let Some(hash) = string(&o, "password_hash") {
                let algorithm =
                    string(&o, "hashing_algorithm").unwrap_or("rabbit_password_hashing_sha256");
                import_user(api, name, hash, algorithm, &tags).await?;
            } else if let Some(password) = string(&o, "password") {
                let command = match existing {
                    Some(_) => "change_password",
                    None => "add_user",
                };
                api.run(command, "/", vec![name.into(), password.into()], refused)
                    .await?;
            } else if existing.is_none() {
                // A user without a password (it signs in with other mechanisms only).
                import_user(api, name, "", "rabbit_password_hashing_sha256", &tags).await?;
            }
            let mut args = vec![name.to_owned()];
            args.extend(tags);
            api.run("set_user_tags", "/", args, refused).await?;
            Ok(Reply::put(existing.is_none()))
        }
        Method::DELETE => {
            if existing.is_none() {
                return Err(Reply::not_found());
            }
            api.run("delete_user", "/", vec![name.into()], refused)
                .await?;
            Ok(Reply::status(204))
        }
        _ => Err(Reply::method_not_allowed()),
    }
}

async fn import_user(
    api: &Api,
    name: &str,
    hash: &str,
    algorithm: &str,
    tags: &[String],
) -> Result<(), Reply> {
    let definitions = json!({"users": [{"name": name, "password_hash": hash,
                                         "hashing_algorithm": algorithm, "tags": tags}]});
    api.run(
        "import_definitions",
        "/",
        vec![definitions.to_string()],
        refused,
    )
    .await
    .map(|_| ())
}

pub(super) async fn bulk_delete(api: &Api, req: &Request) -> Answer {
    req.need(api, Need::Admin).await?;
    if req.method != Method::POST {
        return Err(Reply::method_not_allowed());
    }
    let o = req.object()?;
    let Some(names) = o.get("users").and_then(Value::as_array) else {
        return Err(Reply::bad_request("[{key_missing,users}]"));
    };
    let mut missing = None;
    for name in names.iter().filter_map(Value::as_str) {
        let outcome = api
            .command("delete_user", "/", vec![name.into()], Vec::new())
            .await?;
        if outcome.exit_code != 0 && missing.is_none() {
            missing = Some(name.to_owned());
        }
    }
    match missing {
        Some(name) => Err(Reply::bad_request(json!(["no_such_user", name]))),
        None => Ok(Reply::status(204)),
    }
}

pub(super) async fn permissions(api: &Api, req: &Request, topic: bool) -> Answer {
    req.need(api, Need::Admin).await?;
    let section = if topic {
        "topic_permissions"
    } else {
        "permissions"
    };
    req.list(definitions_section(api, section).await?, &["vhost", "user"])
}

pub(super) async fn permission(
    api: &Api,
    req: &Request,
    vhost: &str,
    user: &str,
    topic: bool,
) -> Answer {
    req.need(api, Need::Admin).await?;
    let section = if topic {
        "topic_permissions"
    } else {
        "permissions"
    };
    let existing: Vec<Value> = definitions_section(api, section)
        .await?
        .into_iter()
        .filter(|p| p["vhost"] == vhost && p["user"] == user)
        .collect();
    match req.method {
        Method::GET if topic => match existing.is_empty() {
            true => Err(Reply::not_found()),
            false => Ok(Reply::json(Value::Array(existing))),
        },
        Method::GET => existing
            .into_iter()
            .next()
            .map(Reply::json)
            .ok_or_else(Reply::not_found),
        Method::PUT => {
            let o = req.object()?;
            let keys: &[&str] = match topic {
                true => &["exchange", "write", "read"],
                false => &["configure", "write", "read"],
            };
            need_keys(&o, keys)?;
            let exists =
                api.vhost_exists(vhost).await? && api.users().await?.iter().any(|(n, _)| n == user);
            if !exists {
                return Err(Reply::bad_request("vhost_or_user_not_found"));
            }
            let mut args = vec![user.to_owned()];
            args.extend(keys.iter().map(|k| string(&o, k).unwrap_or("").to_owned()));
            let command = match topic {
                true => "set_topic_permissions",
                false => "set_permissions",
            };
            api.run(command, vhost, args, refused).await?;
            Ok(Reply::put(existing.is_empty()))
        }
        Method::DELETE => {
            if existing.is_empty() {
                return Err(Reply::not_found());
            }
            let command = match topic {
                true => "clear_topic_permissions",
                false => "clear_permissions",
            };
            let mut args = vec![user.to_owned()];
            if let (true, Some(x)) = (topic, req.param("exchange")) {
                args.push(x.to_owned());
            }
            api.run(command, vhost, args, refused).await?;
            Ok(Reply::status(204))
        }
        _ => Err(Reply::method_not_allowed()),
    }
}
