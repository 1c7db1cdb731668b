//! Admin commands that move messages as the HTTP API does: `publish` (route through an
//! exchange and enqueue on every queue it reaches, as a client's confirmed
//! `basic.publish`; answers `{"routed": bool}` once every queue has stored it) and
//! `get_messages` (`basic.get` `count` times, then ack, requeue or discard what was
//! taken, RabbitMQ's `ackmode`s). Properties are RabbitMQ's JSON shape both ways.

use std::time::Duration;

use amq_protocol::types::ShortString;
#[cfg(test)]
use amq_protocol::types::{AMQPValue, FieldTable};
use base64::Engine;
use bytes::Bytes;
use serde_json::{json, Map, Value};
use tokio::sync::mpsc;

use super::control::AppView;
use super::declare::{broker_refusal, options, refused, text};
use crate::amqp::{encode_properties, parse_properties, BasicProperties, ReplyCode};
use crate::broker::{ConfirmTo, ConnEvent, QueueMsg};
use crate::cluster::{CommandOutcome, CommandRequest};
use crate::metadata::definitions::{field_table, table_json};
use crate::queue::Message;

/// How long a publish may wait for its queues to store it.
const CONFIRM_WAIT: Duration = Duration::from_secs(30);
/// Most messages one `get_messages` takes (the HTTP API asks for a few to look at).
const MAX_GET: u64 = 10_000;

/// The commands this module answers.
pub(super) fn handles(command: &str) -> bool {
    matches!(command, "publish" | "get_messages")
}

pub(super) async fn run(view: &AppView, req: &CommandRequest) -> CommandOutcome {
    let result = match req.command.as_str() {
        "publish" => publish(view, req).await,
        _ => get_messages(view, req).await,
    };
    match result {
        Ok(outcome) | Err(outcome) => outcome,
    }
}

fn bad(text: impl Into<String>) -> CommandOutcome {
    refused(ReplyCode::PreconditionFailed, text)
}

async fn publish(view: &AppView, req: &CommandRequest) -> Result<CommandOutcome, CommandOutcome> {
    let vhost = req.vhost.as_str();
    let exchange = req.args.first().map(String::as_str).unwrap_or("");
    let o = options(req, 1)?;
    let routing_key = text(&o, "routing_key")?;
    let payload = text(&o, "payload")?;
    let body: Bytes = match text(&o, "payload_encoding")? {
        "" | "string" => Bytes::copy_from_slice(payload.as_bytes()),
        "base64" => base64::engine::general_purpose::STANDARD
            .decode(payload)
            .map_err(|_| bad("payload is not valid base64"))?
            .into(),
        other => return Err(bad(format!("unknown payload_encoding '{other}'"))),
    };
    let props = properties_from_json(o.get("properties").unwrap_or(&Value::Null)).map_err(bad)?;
    let routed = view
        .broker
        .route(vhost, exchange, routing_key, &[], props.headers().as_ref())
        .await
        .map_err(broker_refusal)?;
    if routed.queues.is_empty() {
        return Ok(CommandOutcome::with_json(
            json!({"routed": false}).to_string(),
        ));
    }
    let message = Message {
        exchange: exchange.to_owned(),
        routing_key: routing_key.to_owned(),
        properties: encode_properties(&props),
        body,
    };
    // A publisher of one message: its own enqueuer id, forgotten once stored.
    let enqueuer = rand::random();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut waiting = 0;
    for queue in &routed.queues {
        let confirm = ConfirmTo {
            conn: tx.clone(),
            channel: 0,
            publish_seq: 1,
        };
        if queue.send(QueueMsg::Publish {
            enqueuer,
            seq: 1,
            message: message.clone(),
            confirm: Some(confirm),
        }) {
            waiting += 1;
        }
    }
    let mut stored = true;
    let confirmed = tokio::time::timeout(CONFIRM_WAIT, async {
        while waiting > 0 {
            match rx.recv().await {
                Some(ConnEvent::Enqueued { ok, .. }) => {
                    stored &= ok;
                    waiting -= 1;
                }
                Some(_) => {}
                None => break,
            }
        }
    })
    .await;
    for queue in &routed.queues {
        queue.send(QueueMsg::Forget { enqueuer });
    }
    if confirmed.is_err() || !stored || routed.unavailable > 0 {
        return Err(refused(
            ReplyCode::InternalError,
            "the message was not stored by every queue it was routed to",
        ));
    }
    Ok(CommandOutcome::with_json(
        json!({"routed": true}).to_string(),
    ))
}

/// What `get_messages` does with the messages it took.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AckMode {
    Ack,
    Requeue,
    Discard,
}

fn ack_mode(mode: &str) -> Option<AckMode> {
    Some(match mode {
        "ack_requeue_false" => AckMode::Ack,
        "ack_requeue_true" | "reject_requeue_true" => AckMode::Requeue,
        "reject_requeue_false" => AckMode::Discard,
        _ => return None,
    })
}

async fn get_messages(
    view: &AppView,
    req: &CommandRequest,
) -> Result<CommandOutcome, CommandOutcome> {
    let vhost = req.vhost.as_str();
    let queue = req.args.first().map(String::as_str).unwrap_or("");
    let o = options(req, 1)?;
    let count = match o.get("count") {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    }
    .ok_or_else(|| bad("'count' must be a number"))?
    .min(MAX_GET);
    let mode = ack_mode(text(&o, "ackmode")?).ok_or_else(|| bad("unknown ackmode"))?;
    let base64_only = match text(&o, "encoding")? {
        "auto" => false,
        "base64" => true,
        other => return Err(bad(format!("unknown encoding '{other}'"))),
    };
    let truncate = match o.get("truncate") {
        Some(Value::Number(n)) => n.as_u64().map(|n| n as usize),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    };
    let handle = view
        .broker
        .lookup_queue(vhost, queue, 0)
        .await
        .map_err(broker_refusal)?;
    let mut rows = Vec::new();
    let mut taken = Vec::new();
    for _ in 0..count {
        let (reply, rx) = tokio::sync::oneshot::channel();
        if !handle.send(QueueMsg::Get {
            no_ack: false,
            reply,
        }) {
            break;
        }
        let Some(got) = rx.await.ok().flatten() else {
            break;
        };
        taken.push(got.msg_id);
        rows.push(message_json(
            &got.message,
            got.redelivered,
            got.remaining,
            base64_only,
            truncate,
        ));
    }
    if !taken.is_empty() {
        let msg_ids = taken;
        handle.send(match mode {
            AckMode::Ack => QueueMsg::Settle { msg_ids },
            AckMode::Requeue => QueueMsg::Requeue { msg_ids },
            AckMode::Discard => QueueMsg::Discard { msg_ids },
        });
    }
    Ok(CommandOutcome::with_json(Value::Array(rows).to_string()))
}

/// One message as `/api/queues/V/Q/get` shows it.
fn message_json(
    m: &Message,
    redelivered: bool,
    remaining: u32,
    base64_only: bool,
    truncate: Option<usize>,
) -> Value {
    let body = match truncate {
        Some(n) if n < m.body.len() => &m.body[..n],
        _ => &m.body[..],
    };
    let (payload, encoding) = match std::str::from_utf8(body) {
        Ok(s) if !base64_only => (s.to_owned(), "string"),
        _ => (
            base64::engine::general_purpose::STANDARD.encode(body),
            "base64",
        ),
    };
    json!({
        "payload_bytes": m.body.len(),
        "redelivered": redelivered,
        "exchange": m.exchange,
        "routing_key": m.routing_key,
        "message_count": remaining,
        "properties": properties_json(&m.properties),
        "payload": payload,
        "payload_encoding": encoding,
    })
}

/// Properties as RabbitMQ's JSON has them: the set ones only (`[]` when none, as
/// RabbitMQ's encoder writes an empty property list).
pub(super) fn properties_json(raw: &[u8]) -> Value {
    let Some(p) = parse_properties(raw) else {
        return json!([]);
    };
    let mut o = Map::new();
    let mut short = |k: &str, v: &Option<ShortString>| {
        if let Some(v) = v {
            o.insert(k.into(), json!(v.as_str()));
        }
    };
    short("content_type", p.content_type());
    short("content_encoding", p.content_encoding());
    short("correlation_id", p.correlation_id());
    short("reply_to", p.reply_to());
    short("expiration", p.expiration());
    short("message_id", p.message_id());
    short("type", p.kind());
    short("user_id", p.user_id());
    short("app_id", p.app_id());
    short("cluster_id", p.cluster_id());
    if let Some(h) = p.headers() {
        o.insert("headers".into(), table_json(h));
    }
    if let Some(d) = p.delivery_mode() {
        o.insert("delivery_mode".into(), json!(d));
    }
    if let Some(n) = p.priority() {
        o.insert("priority".into(), json!(n));
    }
    if let Some(t) = p.timestamp() {
        o.insert("timestamp".into(), json!(t));
    }
    if o.is_empty() {
        return json!([]);
    }
    Value::Object(o)
}

/// RabbitMQ's JSON properties as AMQP properties (unknown keys refused by name).
pub(super) fn properties_from_json(v: &Value) -> Result<BasicProperties, String> {
    let o = match v {
        Value::Null => return Ok(BasicProperties::default()),
        Value::Array(a) if a.is_empty() => return Ok(BasicProperties::default()),
        Value::Object(o) => o,
        other => return Err(format!("'properties' must be an object, not {other}")),
    };
    let mut p = BasicProperties::default();
    for (k, v) in o {
        let short = || match v {
            Value::String(s) => ShortString::try_new(s.as_str())
                .map_err(|_| format!("property '{k}' is longer than 255 bytes")),
            other => Err(format!("property '{k}' must be a string, not {other}")),
        };
        let octet = || {
            v.as_u64()
                .filter(|n| *n <= 255)
                .map(|n| n as u8)
                .ok_or_else(|| format!("property '{k}' must be a number from 0 to 255"))
        };
        p = match k.as_str() {
            "content_type" => p.with_content_type(short()?),
            "content_encoding" => p.with_content_encoding(short()?),
            "correlation_id" => p.with_correlation_id(short()?),
            "reply_to" => p.with_reply_to(short()?),
            "expiration" => p.with_expiration(short()?),
            "message_id" => p.with_message_id(short()?),
            "type" => p.with_type(short()?),
            "user_id" => p.with_user_id(short()?),
            "app_id" => p.with_app_id(short()?),
            "cluster_id" => p.with_cluster_id(short()?),
            "delivery_mode" => p.with_delivery_mode(octet()?),
            "priority" => p.with_priority(octet()?),
            "timestamp" => p.with_timestamp(
                v.as_u64()
                    .ok_or_else(|| format!("property '{k}' must be a number"))?,
            ),
            "headers" => match v {
                Value::Object(h) => p.with_headers(field_table(h)?),
                other => return Err(format!("'headers' must be an object, not {other}")),
            },
            other => return Err(format!("unknown property '{other}'")),
        };
    }
    Ok(p)
}

/// A headers table with only the given entries (for tests and callers building one).
#[cfg(test)]
fn table(entries: &[(&str, AMQPValue)]) -> FieldTable {
    let mut t = FieldTable::default();
    for (k, v) in entries {
        t.insert(ShortString::from(*k), v.clone());
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_round_trip_in_rabbitmq_s_json_shape() {
        let v = json!({"delivery_mode": 2, "content_type": "text/plain",
                       "headers": {"h": 1, "s": "x"}});
        let p = properties_from_json(&v).unwrap();
        assert_eq!(
            p.headers().as_ref(),
            Some(&table(&[
                ("h", AMQPValue::LongLongInt(1)),
                ("s", AMQPValue::LongString("x".into()))
            ]))
        );
        assert_eq!(properties_json(&encode_properties(&p)), v);
        assert_eq!(
            properties_json(&encode_properties(&BasicProperties::default())),
            json!([])
        );
        assert!(properties_from_json(&json!({"bogus": 1})).is_err());
        assert!(properties_from_json(&json!({"delivery_mode": 300})).is_err());
    }

    #[test]
    fn ack_modes_are_rabbitmq_s() {
        assert_eq!(ack_mode("ack_requeue_true"), Some(AckMode::Requeue));
        assert_eq!(ack_mode("ack_requeue_false"), Some(AckMode::Ack));
        assert_eq!(ack_mode("reject_requeue_false"), Some(AckMode::Discard));
        assert_eq!(ack_mode("bogus"), None);
    }
}
