//! `/api/bindings` (+ per vhost, `e/EX/q/Q` and `e/EX/e/EX2` GET/POST, one by its
//! `properties_key` GET/DELETE). A binding's `properties_key` is RabbitMQ's
//! `pack_binding_props`: the routing key URL-quoted (`~` as `%7E`), then `~` and a hash
//! of the arguments when it has any; `~` alone for an empty key without arguments. The
//! hash is WarrenMQ's own (RabbitMQ's is Erlang's `phash2`): clients read keys from
//! listings and send them back, they do not compute them.

use axum::http::Method;
use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::api::{amqp_refusal, Api};
use super::auth::Perm;
use super::queues::vhost_in_path;
use super::reply::{Answer, Reply};
use super::request::Request;

/// `rabbit_http_util:quote_plus`, then `~` escaped.
fn quote(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'.' | b'-' => out.push(b as char),
            b' ' => out.push('+'),
            b'~' => out.push_str("%7E"),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

/// A short stable hash of the arguments (their canonical JSON), URL-safe.
fn args_hash(arguments: &Value) -> String {
    let digest = Sha256::digest(arguments.to_string().as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..6])
}

pub(super) fn properties_key(routing_key: &str, arguments: &Value) -> String {
    let no_args = arguments.as_object().is_none_or(|o| o.is_empty());
    match (routing_key, no_args) {
        ("", true) => "~".into(),
        (key, true) => quote(key),
        (key, false) => format!("{}~{}", quote(key), quote(&args_hash(arguments))),
    }
}

/// A `describe_bindings` row with its `properties_key`.
pub(super) fn with_properties_key(mut b: Value) -> Value {
    let key = properties_key(b["routing_key"].as_str().unwrap_or(""), &b["arguments"]);
    if let Some(o) = b.as_object_mut() {
        o.insert("properties_key".into(), json!(key));
    }
    b
}

pub(super) async fn list(api: &Api, req: &Request, vhost: Option<&str>) -> Answer {
    if let Some(v) = vhost {
        vhost_in_path(api, req, v).await?;
    }
    let rows = api
        .rows_in("describe_bindings", &req.user, vhost)
        .await?
        .into_iter()
        .map(with_properties_key)
        .collect();
    req.list(rows, &[])
}

/// RabbitMQ's name for the default exchange in paths.
pub(super) fn exchange_name(segment: &str) -> &str {
    match segment {
        "amq.default" => "",
        other => other,
    }
}

/// The bindings of `vhost` from exchange `source` to `destination` of kind `kind`.
async fn between(
    api: &Api,
    vhost: &str,
    source: &str,
    destination: &str,
    kind: &str,
) -> Result<Vec<Value>, Reply> {
    Ok(api
        .rows("describe_bindings", vhost, Vec::new())
        .await?
        .into_iter()
        .filter(|b| {
            b["source"] == source
                && b["destination"] == destination
                && b["destination_type"] == kind
        })
        .map(with_properties_key)
        .collect())
}

/// One binding path: `/api/bindings/V/e/SOURCE/{q,e}/DESTINATION[/PROPS]`.
pub(super) struct BindingPath<'a> {
    pub vhost: &'a str,
    pub source: &'a str,
    /// `queue` or `exchange`.
    pub kind: &'static str,
    pub destination: &'a str,
    pub props: Option<&'a str>,
}

async fn objects_exist(api: &Api, p: &BindingPath<'_>) -> Result<bool, Reply> {
    let exchanges = api.rows("describe_exchanges", p.vhost, Vec::new()).await?;
    let has_exchange = |name: &str| exchanges.iter().any(|x| x["name"] == name);
    let destination = match p.kind {
        "queue" => api
            .rows("describe_queues", p.vhost, Vec::new())
            .await?
            .iter()
            .any(|q| q["name"] == p.destination),
        _ => has_exchange(p.destination),
    };
    Ok(destination && (p.source.is_empty() || has_exchange(p.source)))
}

pub(super) async fn binding(api: &Api, req: &Request, p: BindingPath<'_>) -> Answer {
    vhost_in_path(api, req, p.vhost).await?;
    // Listing the bindings between objects that do not exist is an empty list, as
    // RabbitMQ answers; creating one or reading one by its key needs both.
    let listing = p.props.is_none() && req.method == Method::GET;
    if !listing && !objects_exist(api, &p).await? {
        return Err(Reply::not_found());
    }
    if !listing && req.method != Method::GET {
        // queue.bind / exchange.bind: write on the destination, read on the source.
        req.permit(p.vhost, Perm::Write, p.destination)?;
        req.permit(p.vhost, Perm::Read, p.source)?;
    }
    let found = between(api, p.vhost, p.source, p.destination, p.kind).await?;
    match (p.props, &req.method) {
        (None, &Method::GET) => req.list(found, &[]),
        (None, &Method::POST) => {
            let o = req.object()?;
            let routing_key = o.get("routing_key").and_then(Value::as_str).unwrap_or("");
            let arguments = o.get("arguments").cloned().unwrap_or(json!({}));
            let arguments = match arguments {
                Value::Array(a) if a.is_empty() => json!({}),
                other => other,
            };
            let spec = json!({"source": p.source, "destination": p.destination,
                              "destination_type": p.kind, "routing_key": routing_key,
                              "arguments": arguments});
            api.run("bind", p.vhost, vec![spec.to_string()], amqp_refusal)
                .await?;
            let key = properties_key(routing_key, &arguments);
            // The key quoted once more, as RabbitMQ's Location header has it.
            let location = format!("{}/{}", quote(p.destination), quote(&key));
            Ok(Reply::status(201).with_header("location", location))
        }
        (Some(props), method) => {
            let Some(b) = found.into_iter().find(|b| b["properties_key"] == props) else {
                return Err(Reply::not_found());
            };
            match *method {
                Method::GET => Ok(Reply::json(b)),
                Method::DELETE => {
                    let spec = json!({"source": p.source, "destination": p.destination,
                                      "destination_type": p.kind,
                                      "routing_key": b["routing_key"],
                                      "arguments": b["arguments"]});
                    api.run("unbind", p.vhost, vec![spec.to_string()], amqp_refusal)
                        .await?;
                    Ok(Reply::status(204))
                }
                _ => Err(Reply::method_not_allowed()),
            }
        }
        _ => Err(Reply::method_not_allowed()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_keys_as_rabbitmq_packs_them() {
        assert_eq!(properties_key("", &json!({})), "~");
        assert_eq!(properties_key("a.b", &json!({})), "a.b");
        assert_eq!(properties_key("a b/c~d", &json!({})), "a+b%2Fc%7Ed");
        let with_args = properties_key("a.b", &json!({"k": "v"}));
        let (key, hash) = with_args.split_once('~').unwrap();
        assert_eq!(key, "a.b");
        assert_eq!(hash.len(), 8);
        // Stable, and different arguments give a different key.
        assert_eq!(with_args, properties_key("a.b", &json!({"k": "v"})));
        assert_ne!(with_args, properties_key("a.b", &json!({"k": "w"})));
    }
}
