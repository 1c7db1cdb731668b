//! Queue and exchange `x-` arguments: RabbitMQ's validation and equivalence checks, texts included.

use amq_protocol::types::{AMQPValue, FieldTable};

use super::state::QueueType;
use super::MetaError;
use crate::amqp::field::{int_value, type_name};
use crate::amqp::ReplyCode;

/// RabbitMQ 3.10's longest timer (ms) for `x-message-ttl` and `x-expires`: ten years.
const MAX_EXPIRY: i64 = 315_360_000_000;
/// RabbitMQ's highest `x-max-priority`.
const MAX_PRIORITY: i64 = 255;

/// A value as RabbitMQ prints it with `~s`: strings raw, numbers and booleans plainly.
fn plain(v: &AMQPValue) -> String {
    match v {
        AMQPValue::LongString(s) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        AMQPValue::ShortString(s) => s.as_str().to_owned(),
        AMQPValue::Boolean(b) => b.to_string(),
        AMQPValue::Float(f) => f.to_string(),
        AMQPValue::Double(f) => f.to_string(),
        AMQPValue::Timestamp(t) => t.to_string(),
        other => int_value(other).map_or_else(|| format!("{other:?}"), |i| i.to_string()),
    }
}

/// `the value 'V' of type 'T'`, or `none` for a missing value (`rabbit_misc:val/1`).
fn describe(v: Option<&AMQPValue>) -> String {
    match v {
        None => "none".to_owned(),
        Some(v) => format!("the value '{}' of type '{}'", plain(v), type_name(v)),
    }
}

/// Integer types compare by value whatever their width (`rabbit_misc:type_class/1`).
fn type_class(v: &AMQPValue) -> &'static str {
    match int_value(v) {
        Some(_) => "int",
        None => type_name(v),
    }
}

fn equivalent(cur: &AMQPValue, got: &AMQPValue) -> bool {
    cur == got
        || (type_class(cur) == type_class(got)
            && match (int_value(cur), int_value(got)) {
                (Some(a), Some(b)) => a == b,
                _ => plain(cur) == plain(got),
            })
}

/// `rabbit_misc:assert_args_equivalence/4` over `keys`; `what` is e.g. `queue 'q' in vhost '/'`.
pub fn assert_equivalence(
    current: &FieldTable,
    received: &FieldTable,
    what: &str,
    keys: &[&str],
) -> Result<(), MetaError> {
    for key in keys {
        let (cur, got) = (current.inner().get(*key), received.inner().get(*key));
        let text = match (cur, got) {
            (Some(c), Some(g)) if equivalent(c, g) => continue,
            (None, None) => continue,
            (Some(c), Some(g)) => format!(
                "inequivalent arg '{key}' for {what}: received '{}' but current is '{}'",
                plain(g),
                plain(c)
            ),
            _ => format!(
                "inequivalent arg '{key}' for {what}: received {} but current is {}",
                describe(got),
                describe(cur)
            ),
        };
        return Err(MetaError::new(ReplyCode::PreconditionFailed, text));
    }
    Ok(())
}

/// Arguments compared when a classic queue is declared again: RabbitMQ 3.10's
/// `queue_arguments` of `rabbit_classic_queue`.
const CLASSIC_COMPARED_ARGS: &[&str] = &[
    "x-expires",
    "x-message-ttl",
    "x-dead-letter-exchange",
    "x-dead-letter-routing-key",
    "x-max-length",
    "x-max-length-bytes",
    "x-max-priority",
    "x-overflow",
    "x-queue-mode",
    "x-queue-version",
    "x-single-active-consumer",
    "x-queue-type",
    "x-queue-master-locator",
];

/// Arguments compared when a quorum queue is declared again (`rabbit_quorum_queue`'s).
const QUORUM_COMPARED_ARGS: &[&str] = &[
    "x-dead-letter-exchange",
    "x-dead-letter-routing-key",
    "x-dead-letter-strategy",
    "x-expires",
    "x-max-length",
    "x-max-length-bytes",
    "x-max-in-memory-length",
    "x-max-in-memory-bytes",
    "x-overflow",
    "x-single-active-consumer",
    "x-queue-type",
    "x-quorum-initial-group-size",
    "x-delivery-limit",
    "x-message-ttl",
    "x-queue-leader-locator",
];

/// `rabbit_amqqueue:assert_args_equivalence/2` for a redeclared queue of `queue_type`.
/// A classic queue's type may be given or left out on either declare (measured against
/// RabbitMQ 3.10.8); a quorum queue's may not be left out.
pub fn assert_queue_equivalence(
    queue_type: QueueType,
    current: &FieldTable,
    received: &FieldTable,
    what: &str,
) -> Result<(), MetaError> {
    let is_classic = |t: Option<&AMQPValue>| match t {
        None => true,
        Some(v) => plain(v) == "classic",
    };
    let keys: Vec<&str> = match queue_type {
        QueueType::Classic => CLASSIC_COMPARED_ARGS
            .iter()
            .copied()
            .filter(|k| {
                *k != "x-queue-type"
                    || !(is_classic(current.inner().get(*k))
                        && is_classic(received.inner().get(*k)))
            })
            .collect(),
        QueueType::Quorum | QueueType::Stream => QUORUM_COMPARED_ARGS.to_vec(),
    };
    assert_equivalence(current, received, what, &keys)
}

/// Exchange arguments compared on redeclare.
pub const COMPARED_EXCHANGE_ARGS: &[&str] = &["alternate-exchange"];

/// Why a value is refused, printed as RabbitMQ prints the Erlang error term.
type Check = fn(&AMQPValue, &FieldTable) -> Result<(), String>;

fn check_int(v: &AMQPValue) -> Result<i64, String> {
    int_value(v).ok_or_else(|| format!("\"expected integer, got {}\"", type_name(v)))
}

fn check_non_neg_int(v: &AMQPValue, _: &FieldTable) -> Result<(), String> {
    match check_int(v)? {
        n if n < 0 => Err(format!("{{value_negative,{n}}}")),
        _ => Ok(()),
    }
}

fn check_expiry(n: i64) -> Result<(), String> {
    if n < 0 {
        Err(format!("{{value_negative,{n}}}"))
    } else if n > MAX_EXPIRY {
        Err(format!("{{value_too_large,{n}}}"))
    } else {
        Ok(())
    }
}

fn check_expires(v: &AMQPValue, _: &FieldTable) -> Result<(), String> {
    match check_int(v)? {
        0 => Err("{value_zero,0}".to_owned()),
        n => check_expiry(n),
    }
}

fn check_message_ttl(v: &AMQPValue, _: &FieldTable) -> Result<(), String> {
    check_expiry(check_int(v)?)
}

fn check_max_priority(v: &AMQPValue, args: &FieldTable) -> Result<(), String> {
    check_non_neg_int(v, args)?;
    match check_int(v)? {
        n if n > MAX_PRIORITY => Err(format!("{{max_value_exceeded,{n}}}")),
        _ => Ok(()),
    }
}

fn check_initial_group_size(v: &AMQPValue, args: &FieldTable) -> Result<(), String> {
    check_non_neg_int(v, args)?;
    match check_int(v)? {
        0 => Err("{value_zero,0}".to_owned()),
        _ => Ok(()),
    }
}

fn longstr(v: &AMQPValue) -> Result<String, String> {
    match v {
        AMQPValue::LongString(s) => Ok(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        other => Err(format!("{{unacceptable_type,{}}}", type_name(other))),
    }
}

fn check_dlx_name(v: &AMQPValue, _: &FieldTable) -> Result<(), String> {
    longstr(v).map(|_| ())
}

fn check_dlx_routing_key(v: &AMQPValue, args: &FieldTable) -> Result<(), String> {
    longstr(v)?;
    match args.inner().get("x-dead-letter-exchange") {
        None => Err("routing_key_but_no_dlx_defined".to_owned()),
        Some(_) => Ok(()),
    }
}

fn one_of(v: &AMQPValue, allowed: &[&str], error: &str) -> Result<(), String> {
    match allowed.contains(&longstr(v)?.as_str()) {
        true => Ok(()),
        false => Err(error.to_owned()),
    }
}

fn check_overflow(v: &AMQPValue, _: &FieldTable) -> Result<(), String> {
    one_of(
        v,
        &["drop-head", "reject-publish", "reject-publish-dlx"],
        "invalid_overflow",
    )
}

fn check_queue_mode(v: &AMQPValue, _: &FieldTable) -> Result<(), String> {
    one_of(v, &["default", "lazy"], "invalid_queue_mode")
}

fn check_bool(v: &AMQPValue, _: &FieldTable) -> Result<(), String> {
    match v {
        AMQPValue::Boolean(_) => Ok(()),
        other => Err(format!("{{unacceptable_type,{}}}", type_name(other))),
    }
}

fn check_queue_type(v: &AMQPValue, _: &FieldTable) -> Result<(), String> {
    match longstr(v)?.as_str() {
        "classic" | "quorum" => Ok(()),
        "stream" => Err("\"stream queues are not supported by WarrenMQ\"".to_owned()),
        other => Err(format!("\"unsupported queue type '{other}'\"")),
    }
}

/// RabbitMQ's `declare_args()` validators, in its order (the first failure is reported).
const QUEUE_ARG_CHECKS: &[(&str, Check)] = &[
    ("x-expires", check_expires),
    ("x-message-ttl", check_message_ttl),
    ("x-dead-letter-exchange", check_dlx_name),
    ("x-dead-letter-routing-key", check_dlx_routing_key),
    ("x-max-length", check_non_neg_int),
    ("x-max-length-bytes", check_non_neg_int),
    ("x-max-in-memory-length", check_non_neg_int),
    ("x-max-in-memory-bytes", check_non_neg_int),
    ("x-max-priority", check_max_priority),
    ("x-overflow", check_overflow),
    ("x-queue-mode", check_queue_mode),
    ("x-single-active-consumer", check_bool),
    ("x-queue-type", check_queue_type),
    ("x-quorum-initial-group-size", check_initial_group_size),
];

/// The dead-letter exchange must be a long string; RabbitMQ checks this before anything else,
/// even when the queue already exists.
pub fn check_dlx_type(args: &FieldTable, what: &str) -> Result<(), MetaError> {
    match args.inner().get("x-dead-letter-exchange") {
        None | Some(AMQPValue::LongString(_)) => Ok(()),
        Some(v) => Err(MetaError::new(
            ReplyCode::PreconditionFailed,
            format!(
                "invalid type '{}' for arg 'x-dead-letter-exchange' in {what}",
                type_name(v)
            ),
        )),
    }
}

/// Validate the arguments of a queue about to be created; returns its type.
pub fn validate_queue_args(args: &FieldTable, what: &str) -> Result<QueueType, MetaError> {
    for (key, check) in QUEUE_ARG_CHECKS {
        if let Some(v) = args.inner().get(*key) {
            check(v, args).map_err(|why| {
                MetaError::new(
                    ReplyCode::PreconditionFailed,
                    format!("invalid arg '{key}' for {what}: {why}"),
                )
            })?;
        }
    }
    Ok(match args.inner().get("x-queue-type") {
        Some(AMQPValue::LongString(s)) if s.as_bytes() == b"quorum" => QueueType::Quorum,
        _ => QueueType::Classic,
    })
}

/// Queue arguments RabbitMQ honours that WarrenMQ does not implement yet. A queue
/// declared with one would silently behave otherwise than the application asked, so a
/// new queue carrying one is refused (the README's compatibility table lists them).
pub const UNSUPPORTED_QUEUE_ARGS: &[&str] = &[
    "x-message-ttl",
    "x-expires",
    "x-max-length",
    "x-max-length-bytes",
    "x-overflow",
    "x-dead-letter-exchange",
    "x-dead-letter-routing-key",
    "x-dead-letter-strategy",
    "x-max-priority",
    "x-single-active-consumer",
    "x-delivery-limit",
    "x-max-in-memory-length",
    "x-max-in-memory-bytes",
];

/// The checks on the arguments of a queue about to be created, before it is proposed:
/// RabbitMQ's own checks and texts first (a bad value is reported as RabbitMQ reports
/// it), then a refusal of the first argument WarrenMQ does not implement yet.
pub fn check_new_queue_args(args: &FieldTable, what: &str) -> Result<(), MetaError> {
    check_dlx_type(args, what)?;
    validate_queue_args(args, what)?;
    match UNSUPPORTED_QUEUE_ARGS
        .iter()
        .find(|key| args.inner().contains_key(**key))
    {
        Some(key) => Err(MetaError::new(
            ReplyCode::PreconditionFailed,
            format!(
                "invalid arg '{key}' for {what}: not supported by WarrenMQ yet (refused rather than ignored)"
            ),
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(pairs: &[(&str, &str)]) -> FieldTable {
        let mut t = FieldTable::default();
        for (k, v) in pairs {
            t.insert((*k).into(), AMQPValue::LongString((*v).into()));
        }
        t
    }

    fn check(t: QueueType, current: &[(&str, &str)], received: &[(&str, &str)]) -> bool {
        assert_queue_equivalence(t, &args(current), &args(received), "queue 'q' in vhost '/'")
            .is_ok()
    }

    #[test]
    fn a_classic_queue_s_type_may_be_given_or_left_out() {
        let classic = [("x-queue-type", "classic")];
        assert!(check(QueueType::Classic, &[], &classic));
        assert!(check(QueueType::Classic, &classic, &[]));
        assert!(!check(
            QueueType::Classic,
            &[],
            &[("x-queue-type", "quorum")]
        ));
    }

    #[test]
    fn a_quorum_queue_s_type_may_not_be_left_out() {
        let quorum = [("x-queue-type", "quorum")];
        assert!(check(QueueType::Quorum, &quorum, &quorum));
        assert!(!check(QueueType::Quorum, &quorum, &[]));
    }

    #[test]
    fn each_type_compares_its_own_arguments() {
        let quorum = [("x-queue-type", "quorum")];
        let lazy = [("x-queue-type", "quorum"), ("x-queue-mode", "lazy")];
        assert!(
            check(QueueType::Quorum, &quorum, &lazy),
            "not a quorum argument"
        );
        assert!(!check(QueueType::Classic, &[], &[("x-queue-mode", "lazy")]));
        let locator = [
            ("x-queue-type", "quorum"),
            ("x-queue-leader-locator", "balanced"),
        ];
        assert!(!check(QueueType::Quorum, &quorum, &locator));
        assert!(!check(
            QueueType::Classic,
            &[],
            &[("x-queue-master-locator", "min-masters")]
        ));
    }
}
