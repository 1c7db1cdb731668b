//! Headers exchange matching: `x-match` all / any / all-with-x / any-with-x.

use amq_protocol::types::{AMQPValue, FieldTable};

/// Whether a headers binding with `args` matches a message's `headers`.
pub fn headers_match(args: &FieldTable, headers: Option<&FieldTable>) -> bool {
    let mode = match args.inner().get("x-match") {
        Some(AMQPValue::LongString(s)) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        Some(AMQPValue::ShortString(s)) => s.as_str().to_owned(),
        _ => "all".to_owned(),
    };
    let (any, with_x) = match mode.as_str() {
        "any" => (true, false),
        "any-with-x" => (true, true),
        "all-with-x" => (false, true),
        _ => (false, false),
    };
    let empty = FieldTable::default();
    let headers = headers.unwrap_or(&empty).inner();
    let mut considered = 0;
    let mut matched = 0;
    for (key, want) in args.inner() {
        let key = key.as_str();
        if key == "x-match" || (!with_x && key.starts_with("x-")) {
            continue;
        }
        considered += 1;
        let ok = match (want, headers.get(key)) {
            (_, None) => false,
            (AMQPValue::Void, Some(_)) => true,
            (want, Some(have)) => want == have,
        };
        if ok {
            matched += 1;
        }
    }
    if any {
        matched > 0
    } else {
        matched == considered
    }
}
