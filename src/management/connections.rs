//! `/api/connections`, `/api/channels` and `/api/consumers` (+ per vhost): the node's
//! cluster-wide `list_connections` / `list_channels` / `list_consumers` rows reshaped from
//! rabbitmqctl's JSON (addresses as lists, field tables as typed triples) into the HTTP
//! API's (addresses as text, field tables as objects). A user who is not a monitor sees
//! only their own connections and channels, as RabbitMQ shows them.

use axum::http::Method;
use serde_json::{json, Map, Value};

use super::api::Api;
use super::queues::vhost_in_path;
use super::reply::{Answer, Reply};
use super::request::Request;

/// `[127, 0, 0, 1]` (or eight IPv6 segments) as text.
fn address(v: &Value) -> Value {
    let Some(parts) = v.as_array() else {
        return v.clone();
    };
    let numbers: Vec<u64> = parts.iter().filter_map(Value::as_u64).collect();
    match numbers.len() {
        4 => json!(numbers
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(".")),
        8 => {
            let segments: [u16; 8] = std::array::from_fn(|i| numbers[i] as u16);
            json!(std::net::Ipv6Addr::from(segments).to_string())
        }
        _ => v.clone(),
    }
}

/// A typed value (`[type, value]` in arrays, the value of a `[key, type, value]` triple)
/// as plain JSON.
fn plain(kind: &str, v: &Value) -> Value {
    match (kind, v) {
        ("table", Value::Array(triples)) => table(triples),
        ("array", Value::Array(items)) => Value::Array(
            items
                .iter()
                .map(|i| match i.as_array().map(Vec::as_slice) {
                    Some([Value::String(t), v]) => plain(t, v),
                    _ => i.clone(),
                })
                .collect(),
        ),
        _ => v.clone(),
    }
}

/// rabbitmqctl's `[[key, type, value], ...]` as an object.
fn table(triples: &[Value]) -> Value {
    let mut o = Map::new();
    for t in triples {
        if let Some([Value::String(k), Value::String(kind), v]) = t.as_array().map(Vec::as_slice) {
            o.insert(k.clone(), plain(kind, v));
        }
    }
    Value::Object(o)
}

/// The node in a WarrenMQ pid (`<NODE.CREATION.CONNECTION.CHANNEL>`).
fn node_of(pid: &Value) -> Value {
    let text = pid.as_str().unwrap_or("");
    let inner = text.trim_start_matches('<').trim_end_matches('>');
    match inner.rsplitn(4, '.').nth(3) {
        Some(node) => json!(node),
        None => Value::Null,
    }
}

fn reshape_connection(mut row: Value) -> Value {
    if let Some(o) = row.as_object_mut() {
        let pid = o.remove("pid").unwrap_or(Value::Null);
        o.insert("node".into(), node_of(&pid));
        // No TLS listener: RabbitMQ shows these as null for plain TCP.
        for key in [
            "ssl_protocol",
            "ssl_key_exchange",
            "ssl_cipher",
            "ssl_hash",
            "peer_cert_subject",
            "peer_cert_issuer",
            "peer_cert_validity",
        ] {
            o.insert(key.into(), Value::Null);
        }
        for key in ["host", "peer_host"] {
            if let Some(v) = o.get(key) {
                let text = address(v);
                o.insert(key.into(), text);
            }
        }
        o.insert("protocol".into(), json!("AMQP 0-9-1"));
        o.insert("type".into(), json!("network"));
        if let Some(Value::Array(triples)) = o.get("client_properties") {
            let properties = table(triples);
            o.insert("client_properties".into(), properties);
        }
    }
    row
}

/// A channel row with its connection's details instead of pids.
fn reshape_channel(mut row: Value, connections: &[Value]) -> Value {
    if let Some(o) = row.as_object_mut() {
        let pid = o.remove("pid").unwrap_or(Value::Null);
        let conn = o.remove("connection").unwrap_or(Value::Null);
        o.insert("node".into(), node_of(&pid));
        o.insert("state".into(), json!("running"));
        if let Some(c) = connections.iter().find(|c| c["pid"] == conn) {
            o.insert(
                "connection_details".into(),
                json!({"name": c["name"], "peer_host": address(&c["peer_host"]),
                       "peer_port": c["peer_port"]}),
            );
        }
    }
    row
}

fn reshape_consumer(
    mut row: Value,
    vhost: &str,
    channels: &[Value],
    connections: &[Value],
) -> Value {
    if let Some(o) = row.as_object_mut() {
        let channel_pid = o.remove("channel_pid").unwrap_or(Value::Null);
        if let Some(ch) = channels.iter().find(|c| c["pid"] == channel_pid) {
            let conn = connections.iter().find(|c| c["pid"] == ch["connection"]);
            let (peer_host, peer_port) = conn
                .map(|c| (address(&c["peer_host"]), c["peer_port"].clone()))
                .unwrap_or_default();
            o.insert(
                "channel_details".into(),
                json!({"name": ch["name"], "number": ch["number"], "user": ch["user"],
                       "node": node_of(&channel_pid),
                       "connection_name": conn.map(|c| c["name"].clone()),
                       "peer_host": peer_host, "peer_port": peer_port}),
            );
        }
        let queue = o.remove("queue_name").unwrap_or(Value::Null);
        o.insert("queue".into(), json!({"name": queue, "vhost": vhost}));
        if let Some(Value::Array(triples)) = o.get("arguments") {
            let arguments = table(triples);
            o.insert("arguments".into(), arguments);
        }
        o.insert("exclusive".into(), json!(false));
    }
    row
}

/// `connections` or `channels`, cluster-wide.
pub(super) async fn list(api: &Api, req: &Request, what: &str, vhost: Option<&str>) -> Answer {
    if let Some(v) = vhost {
        vhost_in_path(api, req, v).await?;
    }
    let connections = api.rows("list_connections", "/", Vec::new()).await?;
    let rows = match what {
        "connections" => connections.clone(),
        _ => api.rows("list_channels", "/", Vec::new()).await?,
    };
    let rows: Vec<Value> = rows
        .into_iter()
        .filter(|r| vhost.is_none_or(|v| r["vhost"] == v))
        .filter(|r| req.user.is_monitor() || r["user"] == req.user.name.as_str())
        .map(|r| match what {
            "connections" => reshape_connection(r),
            _ => reshape_channel(r, &connections),
        })
        .collect();
    req.list(rows, &["vhost", "name"])
}

/// One connection: GET (a monitor's, or the user's own), DELETE closes it with 320 and
/// the `X-Reason` header's text (an administrator's, or the user's own), as RabbitMQ.
pub(super) async fn connection(api: &Api, req: &Request, name: &str) -> Answer {
    let found = api
        .rows("list_connections", "/", Vec::new())
        .await?
        .into_iter()
        .find(|c| c["name"] == name)
        .map(reshape_connection)
        .ok_or_else(Reply::not_found)?;
    let own = found["user"] == req.user.name.as_str();
    let allowed = match req.method {
        Method::DELETE => own || req.user.is_admin(),
        _ => own || req.user.is_monitor(),
    };
    if !allowed {
        return Err(Reply::not_authorised(
            "User not authorised to access object",
        ));
    }
    match req.method {
        Method::GET => Ok(Reply::json(found)),
        Method::DELETE => {
            let reason = req
                .reason
                .clone()
                .unwrap_or_else(|| "Closed via management plugin".into());
            api.run("close_connection", "/", vec![name.into(), reason], |o| {
                Reply::bad_request(o.error.as_str())
            })
            .await?;
            Ok(Reply::status(204))
        }
        _ => Err(Reply::method_not_allowed()),
    }
}

/// One channel (GET: a monitor's, or the user's own), with its consumers.
pub(super) async fn channel(api: &Api, req: &Request, name: &str) -> Answer {
    if !req.is(Method::GET) {
        return Err(Reply::method_not_allowed());
    }
    let connections = api.rows("list_connections", "/", Vec::new()).await?;
    let channels = api.rows("list_channels", "/", Vec::new()).await?;
    let row = channels
        .iter()
        .find(|c| c["name"] == name)
        .cloned()
        .ok_or_else(Reply::not_found)?;
    if row["user"] != req.user.name.as_str() && !req.user.is_monitor() {
        return Err(Reply::not_authorised(
            "User not authorised to access object",
        ));
    }
    let vhost = row["vhost"].as_str().unwrap_or("/").to_owned();
    let consumers: Vec<Value> = api
        .rows("list_consumers", &vhost, Vec::new())
        .await?
        .into_iter()
        .filter(|c| c["channel_pid"] == row["pid"])
        .map(|c| reshape_consumer(c, &vhost, &channels, &connections))
        .collect();
    let mut found = reshape_channel(row, &connections);
    found["consumer_details"] = Value::Array(consumers);
    Ok(Reply::json(found))
}

pub(super) async fn consumers(api: &Api, req: &Request, vhost: Option<&str>) -> Answer {
    if let Some(v) = vhost {
        vhost_in_path(api, req, v).await?;
    }
    let connections = api.rows("list_connections", "/", Vec::new()).await?;
    let channels = api.rows("list_channels", "/", Vec::new()).await?;
    let mut rows = Vec::new();
    for v in api.visible_vhosts(&req.user, vhost).await? {
        rows.extend(
            api.rows("list_consumers", &v, Vec::new())
                .await?
                .into_iter()
                .map(|r| reshape_consumer(r, &v, &channels, &connections)),
        );
    }
    req.list(rows, &[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_node_is_read_from_a_pid() {
        assert_eq!(node_of(&json!("<warren@t1.17.1.0>")), json!("warren@t1"));
        assert_eq!(
            node_of(&json!("<warren@host.example.com.17.1.2>")),
            json!("warren@host.example.com")
        );
        assert_eq!(node_of(&json!("nonsense")), Value::Null);
    }

    #[test]
    fn rabbitmqctl_rows_become_http_rows() {
        assert_eq!(address(&json!([127, 0, 0, 1])), json!("127.0.0.1"));
        assert_eq!(address(&json!([0, 0, 0, 0, 0, 0, 0, 1])), json!("::1"));
        let t = json!([
            ["product", "longstr", "lapin"],
            [
                "capabilities",
                "table",
                [["publisher_confirms", "bool", true]]
            ],
            ["list", "array", [["long", 1], ["longstr", "x"]]]
        ]);
        assert_eq!(
            table(t.as_array().unwrap()),
            json!({"product": "lapin", "capabilities": {"publisher_confirms": true},
                   "list": [1, "x"]})
        );
    }
}
