//! `/api/connections`, `/api/channels` and `/api/consumers` (+ per vhost): the node's
//! cluster-wide `list_connections` / `list_channels` / `list_consumers` rows reshaped from
//! rabbitmqctl's JSON (addresses as lists, field tables as typed triples) into the HTTP
//! API's (addresses as text, field tables as objects). A user who is not a monitor sees
//! only their own connections and channels, as RabbitMQ shows them.

use serde_json::{json, Map, Value};

use super::api::Api;
use super::queues::vhost_in_path;
use super::reply::Answer;
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

fn reshape_connection(mut row: Value) -> Value {
    if let Some(o) = row.as_object_mut() {
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

fn reshape_consumer(mut row: Value, vhost: &str) -> Value {
    if let Some(o) = row.as_object_mut() {
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
    let command = format!("list_{what}");
    let rows: Vec<Value> = api
        .rows(&command, "/", Vec::new())
        .await?
        .into_iter()
        .filter(|r| vhost.is_none_or(|v| r["vhost"] == v))
        .filter(|r| req.user.is_monitor() || r["user"] == req.user.name.as_str())
        .map(|r| match what {
            "connections" => reshape_connection(r),
            _ => r,
        })
        .collect();
    req.list(rows, &["vhost", "name"])
}

pub(super) async fn consumers(api: &Api, req: &Request, vhost: Option<&str>) -> Answer {
    if let Some(v) = vhost {
        vhost_in_path(api, req, v).await?;
    }
    let mut rows = Vec::new();
    for v in api.visible_vhosts(&req.user, vhost).await? {
        rows.extend(
            api.rows("list_consumers", &v, Vec::new())
                .await?
                .into_iter()
                .map(|r| reshape_consumer(r, &v)),
        );
    }
    req.list(rows, &[])
}

#[cfg(test)]
mod tests {
    use super::*;

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
