//! Definitions' JSON values as AMQP field tables and back, as RabbitMQ converts them
//! (`rabbit_misc:to_amqp_table` on import, its JSON encoder on export), and limits in
//! either of the shapes RabbitMQ writes them (an object, or a list of pairs).

use amq_protocol::types::{AMQPValue, FieldTable, ShortString};
use serde_json::{json, Map, Value};

use crate::metadata::Limits;

/// A JSON value as RabbitMQ's `rabbit_misc:to_amqp_table` types it.
pub(crate) fn amqp_value(v: &Value) -> Result<AMQPValue, String> {
    Ok(match v {
        Value::String(s) => AMQPValue::LongString(s.as_str().into()),
        Value::Bool(b) => AMQPValue::Boolean(*b),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => AMQPValue::LongLongInt(i),
            (None, Some(f)) if n.is_f64() => AMQPValue::Double(f),
            _ => return Err(format!("{n} is out of a signed 64-bit integer's range")),
        },
        Value::Array(items) => AMQPValue::FieldArray(
            items
                .iter()
                .map(amqp_value)
                .collect::<Result<Vec<_>, _>>()?
                .into(),
        ),
        Value::Object(o) => AMQPValue::FieldTable(field_table(o)?),
        Value::Null => return Err("null is not a field value".into()),
    })
}

pub(crate) fn field_table(o: &Map<String, Value>) -> Result<FieldTable, String> {
    let mut table = FieldTable::default();
    for (k, v) in o {
        let key = ShortString::try_new(k.as_str())
            .map_err(|_| format!("argument name '{k}' is longer than 255 bytes"))?;
        let value = amqp_value(v).map_err(|e| format!("argument '{k}': {e}"))?;
        table.insert(key, value);
    }
    Ok(table)
}

/// A field value as RabbitMQ's export writes it.
pub(super) fn json_value(v: &AMQPValue) -> Value {
    match v {
        AMQPValue::Boolean(b) => json!(b),
        AMQPValue::ShortShortInt(i) => json!(i),
        AMQPValue::ShortShortUInt(i) => json!(i),
        AMQPValue::ShortInt(i) => json!(i),
        AMQPValue::ShortUInt(i) => json!(i),
        AMQPValue::LongInt(i) => json!(i),
        AMQPValue::LongUInt(i) => json!(i),
        AMQPValue::LongLongInt(i) => json!(i),
        AMQPValue::Float(f) => json!(f),
        AMQPValue::Double(f) => json!(f),
        AMQPValue::DecimalValue(d) => json!(d.value as f64 / 10f64.powi(d.scale as i32)),
        AMQPValue::ShortString(s) => json!(s.as_str()),
        AMQPValue::LongString(s) => json!(String::from_utf8_lossy(s.as_bytes())),
        AMQPValue::FieldArray(a) => Value::Array(a.as_slice().iter().map(json_value).collect()),
        AMQPValue::Timestamp(t) => json!(t),
        AMQPValue::FieldTable(t) => table_json(t),
        AMQPValue::ByteArray(b) => json!(String::from_utf8_lossy(b.as_slice())),
        AMQPValue::Void => Value::Null,
    }
}

pub(crate) fn table_json(t: &FieldTable) -> Value {
    Value::Object(
        t.inner()
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), json_value(v)))
            .collect(),
    )
}

/// A limits object (`{"max-queues": 10}`) or RabbitMQ's list of pairs.
pub(super) fn limits_of(v: &Value) -> Result<Limits, String> {
    let pairs: Vec<(String, &Value)> = match v {
        Value::Object(o) => o.iter().map(|(k, v)| (k.clone(), v)).collect(),
        Value::Array(items) => items
            .iter()
            .map(|pair| match pair.as_array().map(Vec::as_slice) {
                Some([Value::String(k), v]) => Ok((k.clone(), v)),
                _ => Err(format!("limits must be [name, value] pairs, not {pair}")),
            })
            .collect::<Result<_, _>>()?,
        other => return Err(format!("limits must be an object, not {other}")),
    };
    pairs
        .into_iter()
        .map(|(k, v)| match v.as_i64() {
            Some(n) => Ok((k, n)),
            None => Err(format!("{k} should be a number, actually was {v}")),
        })
        .collect()
}
