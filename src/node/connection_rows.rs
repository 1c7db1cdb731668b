//! The rows of `list_connections`, `list_channels` and `list_consumers` as rabbitmqctl
//! 3.10.8's `--formatter json` has them: every column rabbitmqctl knows that WarrenMQ can
//! answer truthfully, with RabbitMQ's JSON values (addresses as lists of numbers, the
//! protocol as `[0,9,1]`, field tables as `[key, type, value]` triples). warrenctl picks
//! the requested columns and prints the table form.

use std::net::IpAddr;

use amq_protocol::types::{AMQPValue, FieldTable};
use serde_json::{json, Value};

use super::stats::{message_stats, Shape};
use crate::amqp::field::type_name;
use crate::broker::{ChannelInfo, ConnectionRegistry, RegisteredConn};
use crate::stats::Count;

/// An address as RabbitMQ's JSON formatter writes the Erlang tuple: four bytes, or eight
/// 16-bit groups.
fn address(ip: IpAddr) -> Value {
    match ip {
        IpAddr::V4(v4) => json!(v4.octets()),
        IpAddr::V6(v6) => json!(v6.segments()),
    }
}

/// A field value as in RabbitMQ's JSON (nested tables as triples again).
fn field_value(v: &AMQPValue) -> Value {
    match v {
        AMQPValue::Boolean(b) => json!(b),
        AMQPValue::ShortShortInt(n) => json!(n),
        AMQPValue::ShortShortUInt(n) => json!(n),
        AMQPValue::ShortInt(n) => json!(n),
        AMQPValue::ShortUInt(n) => json!(n),
        AMQPValue::LongInt(n) => json!(n),
        AMQPValue::LongUInt(n) => json!(n),
        AMQPValue::LongLongInt(n) => json!(n),
        AMQPValue::Float(f) => json!(f),
        AMQPValue::Double(f) => json!(f),
        AMQPValue::DecimalValue(d) => json!([d.scale, d.value]),
        AMQPValue::ShortString(s) => json!(s.as_str()),
        AMQPValue::LongString(s) => json!(String::from_utf8_lossy(s.as_bytes())),
        AMQPValue::ByteArray(b) => json!(String::from_utf8_lossy(b.as_slice())),
        AMQPValue::Timestamp(t) => json!(t),
        AMQPValue::FieldTable(t) => typed_table(t),
        // rabbitmqctl's JSON writes an array as an object keyed by type, which loses
        // repeated types; WarrenMQ writes `[type, value]` pairs instead.
        AMQPValue::FieldArray(a) => Value::Array(
            a.as_slice()
                .iter()
                .map(|v| json!([type_name(v), field_value(v)]))
                .collect(),
        ),
        AMQPValue::Void => Value::Null,
    }
}

/// A field table as `[[key, type, value], ...]`. The keys come sorted: the table is
/// decoded into a map, so the client's order is not kept (RabbitMQ keeps it).
pub(super) fn typed_table(table: &FieldTable) -> Value {
    Value::Array(
        table
            .inner()
            .iter()
            .map(|(k, v)| json!([k.as_str(), type_name(v), field_value(v)]))
            .collect(),
    )
}

/// A `list_connections` row.
pub(super) fn connection_row(
    registry: &ConnectionRegistry,
    conn: &RegisteredConn,
    alarm: bool,
) -> Value {
    let info = &conn.info;
    let traffic = conn.traffic();
    json!({
        "pid": registry.pid(info.id, 0).to_string(),
        "name": info.name(),
        "port": info.local.port(),
        "host": address(info.local.ip()),
        "peer_port": info.peer.port(),
        "peer_host": address(info.peer.ip()),
        // WarrenMQ has no TLS listener: these are what RabbitMQ shows for plain TCP.
        "ssl": false,
        "ssl_protocol": "",
        "ssl_key_exchange": "",
        "ssl_cipher": "",
        "ssl_hash": "",
        "peer_cert_subject": "",
        "peer_cert_issuer": "",
        "peer_cert_validity": "",
        "state": conn.state(alarm),
        "channels": conn.channels(),
        "protocol": [0, 9, 1],
        "auth_mechanism": info.auth_mechanism,
        "user": info.user,
        "vhost": info.vhost,
        "timeout": info.heartbeat,
        "frame_max": info.frame_max,
        "channel_max": info.channel_max,
        "client_properties": typed_table(&info.client_properties),
        "recv_oct": traffic.total(Count::RecvOct),
        "recv_oct_details": {"rate": traffic.rate(Count::RecvOct)},
        "recv_cnt": traffic.total(Count::RecvCnt),
        "send_oct": traffic.total(Count::SendOct),
        "send_oct_details": {"rate": traffic.rate(Count::SendOct)},
        "send_cnt": traffic.total(Count::SendCnt),
        // Output is written before more input is read: nothing waits to be sent.
        "send_pend": 0,
        "connected_at": info.connected_at,
    })
}

/// A `list_channels` row.
pub(super) fn channel_row(
    registry: &ConnectionRegistry,
    conn: &RegisteredConn,
    ch: &ChannelInfo,
) -> Value {
    let info = &conn.info;
    let mut row = json!({
        "pid": registry.pid(info.id, ch.number).to_string(),
        "connection": registry.pid(info.id, 0).to_string(),
        "name": format!("{} ({})", info.name(), ch.number),
        "number": ch.number,
        "user": info.user,
        "vhost": info.vhost,
        "transactional": ch.transactional,
        "confirm": ch.confirm,
        "consumer_count": ch.consumers.len(),
        "messages_unacknowledged": ch.messages_unacknowledged,
        "messages_uncommitted": ch.messages_uncommitted,
        "acks_uncommitted": ch.acks_uncommitted,
        "messages_unconfirmed": ch.messages_unconfirmed,
        "prefetch_count": ch.prefetch_count,
        "global_prefetch_count": ch.global_prefetch_count,
    });
    if let Some(s) = ch.stats.as_ref().filter(|s| s.any_traffic()) {
        row["message_stats"] = message_stats(s, Shape::Channel);
    }
    row
}

/// The `list_consumers` rows of one channel. WarrenMQ has no single-active-consumer
/// queues (the argument is refused), so every consumer is active.
pub(super) fn consumer_rows(
    registry: &ConnectionRegistry,
    conn: &RegisteredConn,
    ch: &ChannelInfo,
) -> Vec<Value> {
    let channel_pid = registry.pid(conn.info.id, ch.number).to_string();
    ch.consumers
        .iter()
        .map(|c| {
            json!({
                "queue_name": c.queue,
                "channel_pid": channel_pid,
                "consumer_tag": c.tag,
                "ack_required": c.ack_required,
                "prefetch_count": c.prefetch_count,
                "active": true,
                "activity_status": "up",
                "arguments": typed_table(&c.arguments),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use amq_protocol::types::{FieldArray, LongString};

    #[test]
    fn field_tables_are_typed_triples_as_rabbitmqctl_s_json() {
        let mut caps = FieldTable::default();
        caps.insert("basic.nack".into(), AMQPValue::Boolean(true));
        let mut t = FieldTable::default();
        t.insert(
            "product".into(),
            AMQPValue::LongString(LongString::from("pika")),
        );
        t.insert("x-priority".into(), AMQPValue::LongInt(3));
        t.insert("capabilities".into(), AMQPValue::FieldTable(caps));
        t.insert(
            "arr".into(),
            AMQPValue::FieldArray(FieldArray::from(vec![
                AMQPValue::LongString(LongString::from("a")),
                AMQPValue::LongInt(1),
            ])),
        );
        assert_eq!(
            typed_table(&t),
            json!([
                ["arr", "array", [["longstr", "a"], ["signedint", 1]]],
                ["capabilities", "table", [["basic.nack", "bool", true]]],
                ["product", "longstr", "pika"],
                ["x-priority", "signedint", 3]
            ])
        );
        assert_eq!(typed_table(&FieldTable::default()), json!([]));
    }

    #[test]
    fn addresses_are_lists_of_numbers() {
        assert_eq!(address("127.0.0.1".parse().unwrap()), json!([127, 0, 0, 1]));
        assert_eq!(
            address("::1".parse().unwrap()),
            json!([0, 0, 0, 0, 0, 0, 0, 1])
        );
    }
}
