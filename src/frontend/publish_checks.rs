//! What RabbitMQ checks and uses in a publish's properties before routing it: the
//! `user_id` and `expiration` checks, and the `CC` / `BCC` headers of sender-selected
//! distribution (extra routing keys; `BCC` is removed before delivery).

use amq_protocol::types::{AMQPValue, FieldTable};
use bytes::Bytes;

use super::error::{AmqpError, AmqpResult};
use crate::amqp::field::type_name;
use crate::amqp::ReplyCode;
use crate::amqp::{encode_properties, parse_properties};

/// RabbitMQ 3.10's longest timer (ms), the largest valid `expiration`: ten years.
const MAX_EXPIRY: i64 = 315_360_000_000;

/// Flag bits, in the first two bytes of the raw properties, of the properties checked here.
const HEADERS_BIT: u8 = 0x20; // first byte
const EXPIRATION_BIT: u8 = 0x01; // first byte
const USER_ID_BIT: u8 = 0x10; // second byte

/// What a publish's properties add to routing it; decoded once, here.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Routing {
    /// `CC` then `BCC` routing keys, routed as well as the publish's own key.
    pub extra_keys: Vec<String>,
    /// The headers (without `BCC`), for headers exchanges.
    pub headers: Option<FieldTable>,
}

/// What the checks found: what routing needs, and the properties to store when they
/// had to change.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Checked {
    pub routing: Routing,
    /// The properties without `BCC`, when it was present.
    pub properties: Option<Bytes>,
}

/// Whether the raw properties carry anything [`check_properties`] looks at (headers,
/// expiration or user id); most publishes do not, and are not decoded.
pub(super) fn inspects(raw: &[u8]) -> bool {
    match raw {
        [first, second, ..] => {
            first & (HEADERS_BIT | EXPIRATION_BIT) != 0 || second & USER_ID_BIT != 0
        }
        _ => false,
    }
}

/// Check a publish's raw properties as `rabbit_channel` does for `basic.publish`.
/// `impersonator` says whether the user may set another user's `user_id`; it is asked
/// only when that happens. Properties without headers, user id and expiration are not
/// decoded at all (the hot path).
pub(super) fn check_properties(
    raw: &[u8],
    user: &str,
    impersonator: impl FnOnce() -> bool,
) -> AmqpResult<Checked> {
    if !inspects(raw) {
        return Ok(Checked::default());
    }
    let Some(props) = parse_properties(raw) else {
        // Undecodable properties are the codec's business (a frame error elsewhere).
        return Ok(Checked::default());
    };
    if let Some(claimed) = props.user_id() {
        let claimed = claimed.as_str();
        if claimed != user && !impersonator() {
            return Err(precondition(format!(
                "user_id property set to '{claimed}' but authenticated user was '{user}'"
            )));
        }
    }
    if let Some(expiration) = props.expiration() {
        let text = expiration.as_str();
        if let Err(why) = parse_expiration(text) {
            return Err(precondition(format!("invalid expiration '{text}': {why}")));
        }
    }
    let Some(headers) = props.headers() else {
        return Ok(Checked::default());
    };
    let mut extra_keys = header_routes(headers, "CC")?;
    extra_keys.extend(header_routes(headers, "BCC")?);
    let (headers, properties) = if headers.inner().contains_key("BCC") {
        let mut stripped = FieldTable::default();
        for (k, v) in headers.inner().iter().filter(|(k, _)| k.as_str() != "BCC") {
            stripped.insert(k.clone(), v.clone());
        }
        let properties = encode_properties(&props.clone().with_headers(stripped.clone()));
        (stripped, Some(properties))
    } else {
        (headers.clone(), None)
    };
    Ok(Checked {
        routing: Routing {
            extra_keys,
            headers: Some(headers),
        },
        properties,
    })
}

fn precondition(text: String) -> AmqpError {
    AmqpError::new(ReplyCode::PreconditionFailed, text).on((60, 40))
}

/// `rabbit_basic:parse_expiration/1`: Erlang's `string:to_integer` and then RabbitMQ's
/// timer bounds; the error is printed as Erlang prints the term.
fn parse_expiration(text: &str) -> Result<i64, String> {
    let bytes = text.as_bytes();
    let sign_len = usize::from(matches!(bytes.first(), Some(b'+' | b'-')));
    let digits = bytes[sign_len..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    if digits == 0 {
        return Err("no_integer".to_owned());
    }
    let end = sign_len + digits;
    if end < bytes.len() {
        return Err(format!("{{leftover_string,\"{}\"}}", &text[end..]));
    }
    let negative = bytes[0] == b'-';
    // Erlang's integers have no bound: print the value as it would, beyond i64 too.
    let magnitude = text[sign_len..end].trim_start_matches('0');
    let printed = match (negative, magnitude.is_empty()) {
        (_, true) => "0".to_owned(),
        (true, false) => format!("-{magnitude}"),
        (false, false) => magnitude.to_owned(),
    };
    match text[..end].parse::<i64>() {
        Ok(n) if (0..=MAX_EXPIRY).contains(&n) => Ok(n),
        _ if negative && !magnitude.is_empty() => Err(format!("{{value_negative,{printed}}}")),
        _ => Err(format!("{{value_too_large,{printed}}}")),
    }
}

/// The routing keys of a `CC` or `BCC` header: an array whose long strings are keys
/// (other elements ignored, as RabbitMQ does); any other type refuses the message.
fn header_routes(headers: &FieldTable, key: &str) -> AmqpResult<Vec<String>> {
    match headers.inner().get(key) {
        None => Ok(Vec::new()),
        Some(AMQPValue::FieldArray(items)) => Ok(items
            .as_slice()
            .iter()
            .filter_map(|v| match v {
                AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into()),
                _ => None,
            })
            .collect()),
        Some(other) => Err(precondition(format!(
            "invalid message: {{unacceptable_type_in_header,\"{key}\",{}}}",
            type_name(other)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::amqp::BasicProperties;
    use amq_protocol::types::{FieldArray, LongString, ShortString};

    fn raw(props: BasicProperties) -> Bytes {
        encode_properties(&props)
    }

    fn text(e: AmqpError) -> String {
        e.text
    }

    #[test]
    fn plain_properties_are_not_decoded_or_changed() {
        let p = raw(BasicProperties::default().with_delivery_mode(2));
        assert_eq!(
            check_properties(&p, "guest", || panic!("not asked")),
            Ok(Checked::default())
        );
        assert_eq!(
            check_properties(&[], "guest", || panic!()),
            Ok(Checked::default())
        );
    }

    #[test]
    fn user_id_must_be_the_user_unless_impersonating() {
        let p = raw(BasicProperties::default().with_user_id(ShortString::from("bob")));
        assert!(check_properties(&p, "bob", || panic!("not asked")).is_ok());
        assert!(check_properties(&p, "alice", || true).is_ok());
        let e = check_properties(&p, "alice", || false).unwrap_err();
        assert_eq!(e.code, ReplyCode::PreconditionFailed);
        assert_eq!(e.method, (60, 40));
        assert_eq!(
            text(e),
            "PRECONDITION_FAILED - user_id property set to 'bob' but authenticated user was 'alice'"
        );
    }

    #[test]
    fn expiration_is_a_non_negative_integer_string() {
        for ok in ["0", "-0", "60000", "+5", "4294967296", "315360000000"] {
            assert_eq!(parse_expiration(ok).map(|_| ()), Ok(()), "{ok}");
        }
        for (bad, why) in [
            ("abc", "no_integer"),
            ("", "no_integer"),
            ("-5", "{value_negative,-5}"),
            ("10s", "{leftover_string,\"s\"}"),
            ("315360000001", "{value_too_large,315360000001}"),
            (
                "99999999999999999999",
                "{value_too_large,99999999999999999999}",
            ),
        ] {
            assert_eq!(parse_expiration(bad), Err(why.to_owned()), "{bad}");
        }
        let p = raw(BasicProperties::default().with_expiration(ShortString::from("soon")));
        assert_eq!(
            text(check_properties(&p, "guest", || false).unwrap_err()),
            "PRECONDITION_FAILED - invalid expiration 'soon': no_integer"
        );
    }

    fn keys(items: &[&str]) -> AMQPValue {
        AMQPValue::FieldArray(FieldArray::from(
            items
                .iter()
                .map(|k| AMQPValue::LongString(LongString::from(*k)))
                .collect::<Vec<_>>(),
        ))
    }

    #[test]
    fn cc_and_bcc_add_routing_keys_and_bcc_is_removed() {
        let mut headers = FieldTable::default();
        headers.insert("CC".into(), keys(&["a", "b"]));
        headers.insert("BCC".into(), keys(&["c"]));
        headers.insert("x".into(), AMQPValue::LongInt(1));
        let p = raw(BasicProperties::default().with_headers(headers));
        let checked = check_properties(&p, "guest", || false).unwrap();
        assert_eq!(checked.routing.extra_keys, ["a", "b", "c"]);
        let kept = parse_properties(&checked.properties.unwrap()).unwrap();
        let kept = kept.headers().clone().unwrap();
        assert!(kept.inner().contains_key("CC"));
        assert!(kept.inner().contains_key("x"));
        assert!(!kept.inner().contains_key("BCC"));
    }

    #[test]
    fn cc_alone_keeps_the_properties_as_they_are() {
        let mut headers = FieldTable::default();
        headers.insert("CC".into(), keys(&["a"]));
        let p = raw(BasicProperties::default().with_headers(headers));
        let checked = check_properties(&p, "guest", || false).unwrap();
        assert_eq!(checked.routing.extra_keys, ["a"]);
        assert_eq!(checked.properties, None);
    }

    #[test]
    fn a_cc_that_is_not_an_array_refuses_the_message() {
        let mut headers = FieldTable::default();
        headers.insert("CC".into(), AMQPValue::LongString(LongString::from("a")));
        let p = raw(BasicProperties::default().with_headers(headers));
        assert_eq!(
            text(check_properties(&p, "guest", || false).unwrap_err()),
            "PRECONDITION_FAILED - invalid message: {unacceptable_type_in_header,\"CC\",longstr}"
        );
    }
}
