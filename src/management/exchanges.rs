//! `/api/exchanges` (+ per vhost, + one GET/PUT/DELETE with `if-unused`,
//! `.../publish` answering `{"routed": bool}`, `.../bindings/source` and
//! `.../bindings/destination`). The default exchange is `amq.default` in paths.

use axum::http::Method;
use serde_json::{json, Value};

use super::api::{amqp_refusal, Api};
use super::auth::Perm;
use super::bindings::with_properties_key;
use super::queues::vhost_in_path;
use super::reply::{Answer, Reply};
use super::request::{need_keys, Request};

/// RabbitMQ lists the default exchange with this user; the others with who declared them,
/// which WarrenMQ does not record.
fn shaped(mut x: Value) -> Value {
    if let Some(o) = x.as_object_mut() {
        let by = match o.get("name").and_then(Value::as_str) {
            Some("") => "rmq-internal",
            _ => "",
        };
        if !by.is_empty() {
            o.insert("user_who_performed_action".into(), json!(by));
        }
    }
    x
}

pub(super) async fn list(api: &Api, req: &Request, vhost: Option<&str>) -> Answer {
    if let Some(v) = vhost {
        vhost_in_path(api, req, v).await?;
    }
    let rows = api
        .rows_in("describe_exchanges", &req.user, vhost)
        .await?
        .into_iter()
        .map(shaped)
        .collect();
    req.list(rows, &["vhost", "name"])
}

async fn find(api: &Api, vhost: &str, name: &str) -> Result<Option<Value>, Reply> {
    Ok(api
        .rows("describe_exchanges", vhost, Vec::new())
        .await?
        .into_iter()
        .find(|x| x["name"] == name)
        .map(shaped))
}

pub(super) async fn exchange(api: &Api, req: &Request, vhost: &str, name: &str) -> Answer {
    vhost_in_path(api, req, vhost).await?;
    let existing = find(api, vhost, name).await?;
    match req.method {
        Method::GET => existing.map(Reply::json).ok_or_else(Reply::not_found),
        Method::PUT => {
            let options = Value::Object(req.object()?);
            if name.is_empty() || name.starts_with("amq.") && existing.is_none() {
                return Err(Reply::not_authorised("Access refused."));
            }
            req.permit(vhost, Perm::Configure, name)?;
            api.run(
                "declare_exchange",
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
            if name.is_empty() || name.starts_with("amq.") {
                return Err(Reply::not_authorised("Access refused."));
            }
            req.permit(vhost, Perm::Configure, name)?;
            let flags = match req.flag("if-unused") {
                true => vec!["if-unused".to_owned()],
                false => Vec::new(),
            };
            api.run_flags(
                "delete_exchange",
                vhost,
                vec![name.into()],
                flags,
                amqp_refusal,
            )
            .await?;
            Ok(Reply::status(204))
        }
        _ => Err(Reply::method_not_allowed()),
    }
}

pub(super) async fn publish(api: &Api, req: &Request, vhost: &str, name: &str) -> Answer {
    vhost_in_path(api, req, vhost).await?;
    if req.method != Method::POST {
        return Err(Reply::method_not_allowed());
    }
    let o = req.object()?;
    need_keys(
        &o,
        &["routing_key", "properties", "payload", "payload_encoding"],
    )?;
    if find(api, vhost, name).await?.is_none() {
        // RabbitMQ 3.10.8's answer, the channel error's text with its code.
        return Err(Reply::bad_request(format!(
            "404 NOT_FOUND - no exchange '{name}' in vhost '{vhost}'"
        )));
    }
    // RabbitMQ 3.10.8 answers this one 400, with the channel error's code.
    req.permit_or(vhost, Perm::Write, name, || {
        Reply::bad_request(format!(
            "403 {}",
            req.access_refused("exchange", name, vhost)
        ))
    })?;
    let routed = api
        .run(
            "publish",
            vhost,
            vec![name.into(), Value::Object(o).to_string()],
            amqp_refusal,
        )
        .await?;
    Ok(Reply::json(routed))
}

/// `.../bindings/source` (`source = true`) or `.../bindings/destination`.
pub(super) async fn bindings(
    api: &Api,
    req: &Request,
    vhost: &str,
    name: &str,
    source: bool,
) -> Answer {
    vhost_in_path(api, req, vhost).await?;
    if find(api, vhost, name).await?.is_none() {
        return Err(Reply::not_found());
    }
    let rows: Vec<Value> = api
        .rows("describe_bindings", vhost, Vec::new())
        .await?
        .into_iter()
        .filter(|b| match source {
            true => b["source"] == name,
            false => b["destination"] == name && b["destination_type"] == "exchange",
        })
        .map(with_properties_key)
        .collect();
    req.list(rows, &[])
}
