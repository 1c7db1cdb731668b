//! Routing tests: every exchange type, e2e chains, alternate exchanges and cycles.

use amq_protocol::types::{AMQPValue, FieldTable, LongString};
use proptest::prelude::*;

use super::*;

fn table(pairs: &[(&str, AMQPValue)]) -> FieldTable {
    let mut t = FieldTable::default();
    for (k, v) in pairs {
        t.insert((*k).into(), v.clone());
    }
    t
}

fn bind(rt: &mut RoutingTable, source: &str, q: &str, key: &str, args: FieldTable) {
    rt.bind(Binding {
        source: source.into(),
        destination: Destination::Queue(q.into()),
        routing_key: key.into(),
        arguments: args,
    });
}

fn routed(rt: &RoutingTable, x: &str, key: &str, headers: Option<&FieldTable>) -> Vec<String> {
    rt.route(x, key, headers).queues.into_iter().collect()
}

fn table_with(kinds: &[(&str, ExchangeKind)]) -> RoutingTable {
    let mut rt = RoutingTable::default();
    for (name, kind) in kinds {
        rt.add_exchange(
            name,
            ExchangeRoute {
                kind: *kind,
                alternate: None,
            },
        );
    }
    rt
}

#[test]
fn default_exchange_routes_to_the_queue_named_by_the_key() {
    let mut rt = RoutingTable::default();
    rt.add_queue("q1");
    assert_eq!(routed(&rt, "", "q1", None), vec!["q1"]);
    assert!(routed(&rt, "", "q2", None).is_empty());
    rt.remove_queue("q1");
    assert!(routed(&rt, "", "q1", None).is_empty());
}

#[test]
fn direct_fanout_and_topic() {
    let mut rt = table_with(&[
        ("d", ExchangeKind::Direct),
        ("f", ExchangeKind::Fanout),
        ("t", ExchangeKind::Topic),
    ]);
    bind(&mut rt, "d", "a", "k1", FieldTable::default());
    bind(&mut rt, "d", "b", "k2", FieldTable::default());
    bind(&mut rt, "f", "a", "", FieldTable::default());
    bind(&mut rt, "f", "b", "zzz", FieldTable::default());
    bind(&mut rt, "t", "a", "*.error", FieldTable::default());
    bind(&mut rt, "t", "b", "kern.#", FieldTable::default());
    assert_eq!(routed(&rt, "d", "k1", None), vec!["a"]);
    assert_eq!(routed(&rt, "f", "anything", None), vec!["a", "b"]);
    assert_eq!(routed(&rt, "t", "kern.error", None), vec!["a", "b"]);
    assert_eq!(routed(&rt, "t", "kern", None), vec!["b"]);
    assert_eq!(routed(&rt, "t", "app.error", None), vec!["a"]);
    assert!(routed(&rt, "t", "app.error.x", None).is_empty());
}

#[test]
fn topic_edge_cases() {
    assert!(topic_match("#", ""));
    assert!(topic_match("#", "a.b.c"));
    assert!(topic_match("a.#", "a"));
    assert!(topic_match("#.#", "a"));
    assert!(topic_match("#.a.#", "a"));
    assert!(topic_match("*.*", "a.b"));
    assert!(!topic_match("*", ""));
    assert!(!topic_match("*.*", "a"));
    assert!(topic_match("a..b", "a..b"));
    assert!(topic_match("a.*.b", "a..b"));
    assert!(!topic_match("a", "a.b"));
    assert!(topic_match("", ""));
}

#[test]
fn headers_all_any_and_with_x() {
    let mut rt = table_with(&[("h", ExchangeKind::Headers)]);
    let s = |v: &str| AMQPValue::LongString(LongString::from(v.to_owned()));
    bind(
        &mut rt,
        "h",
        "all",
        "",
        table(&[("x-match", s("all")), ("a", s("1")), ("b", s("2"))]),
    );
    bind(
        &mut rt,
        "h",
        "any",
        "",
        table(&[("x-match", s("any")), ("a", s("1")), ("b", s("2"))]),
    );
    bind(
        &mut rt,
        "h",
        "present",
        "",
        table(&[("c", AMQPValue::Void)]),
    );
    bind(
        &mut rt,
        "h",
        "withx",
        "",
        table(&[("x-match", s("all-with-x")), ("x-k", s("v"))]),
    );
    let h = table(&[("a", s("1")), ("b", s("2"))]);
    assert_eq!(routed(&rt, "h", "", Some(&h)), vec!["all", "any"]);
    let h = table(&[("a", s("1")), ("c", s("whatever"))]);
    assert_eq!(routed(&rt, "h", "", Some(&h)), vec!["any", "present"]);
    let h = table(&[("x-k", s("v"))]);
    assert_eq!(routed(&rt, "h", "", Some(&h)), vec!["withx"]);
    assert!(routed(&rt, "h", "", None).is_empty());
}

#[test]
fn exchange_to_exchange_chains_and_cycles() {
    let mut rt = table_with(&[
        ("a", ExchangeKind::Fanout),
        ("b", ExchangeKind::Direct),
        ("c", ExchangeKind::Fanout),
    ]);
    rt.bind(Binding {
        source: "a".into(),
        destination: Destination::Exchange("b".into()),
        routing_key: "".into(),
        arguments: FieldTable::default(),
    });
    rt.bind(Binding {
        source: "b".into(),
        destination: Destination::Exchange("c".into()),
        routing_key: "k".into(),
        arguments: FieldTable::default(),
    });
    rt.bind(Binding {
        source: "c".into(),
        destination: Destination::Exchange("a".into()),
        routing_key: "".into(),
        arguments: FieldTable::default(),
    });
    bind(&mut rt, "c", "q", "", FieldTable::default());
    assert_eq!(routed(&rt, "a", "k", None), vec!["q"]);
    assert!(routed(&rt, "a", "other", None).is_empty());
    rt.remove_exchange("b");
    assert!(routed(&rt, "a", "k", None).is_empty());
    assert!(!rt.is_destination("b"));
}

#[test]
fn alternate_exchange_takes_unroutable_messages() {
    let mut rt = RoutingTable::default();
    rt.add_exchange(
        "main",
        ExchangeRoute {
            kind: ExchangeKind::Direct,
            alternate: Some("ae".into()),
        },
    );
    rt.add_exchange(
        "ae",
        ExchangeRoute {
            kind: ExchangeKind::Fanout,
            alternate: Some("main".into()),
        },
    );
    bind(&mut rt, "main", "routed", "k", FieldTable::default());
    assert_eq!(routed(&rt, "main", "k", None), vec!["routed"]);
    // AE without bindings, pointing back: the cycle ends, nothing routed.
    assert!(routed(&rt, "main", "x", None).is_empty());
    bind(&mut rt, "ae", "unrouted", "", FieldTable::default());
    assert_eq!(routed(&rt, "main", "x", None), vec!["unrouted"]);
}

#[test]
fn bindings_are_idempotent_and_removed_with_their_queue() {
    let mut rt = table_with(&[("d", ExchangeKind::Direct)]);
    let b = Binding {
        source: "d".into(),
        destination: Destination::Queue("q".into()),
        routing_key: "k".into(),
        arguments: FieldTable::default(),
    };
    assert!(rt.bind(b.clone()));
    assert!(!rt.bind(b.clone()));
    assert_eq!(rt.bindings_from("d").len(), 1);
    assert_eq!(
        rt.remove_queue("q").into_iter().collect::<Vec<_>>(),
        vec!["d".to_string()]
    );
    assert!(rt.bindings_from("d").is_empty());
    assert!(!rt.unbind(&b));
}

/// Reference topic matcher: plain recursion.
fn reference(p: &[&str], k: &[&str]) -> bool {
    match p.split_first() {
        None => k.is_empty(),
        Some((&"#", rest)) => (0..=k.len()).any(|i| reference(rest, &k[i..])),
        Some((&"*", rest)) => !k.is_empty() && reference(rest, &k[1..]),
        Some((w, rest)) => k.first() == Some(w) && reference(rest, &k[1..]),
    }
}

proptest! {
    #[test]
    fn topic_matches_the_reference(p in proptest::collection::vec(prop_oneof!["#", "\\*", "a", "b"], 0..6),
                                   k in proptest::collection::vec(prop_oneof!["a", "b", "c"], 0..6)) {
        let pattern = p.join(".");
        let key = k.join(".");
        let pw: Vec<&str> = p.iter().map(String::as_str).collect();
        let kw: Vec<&str> = k.iter().map(String::as_str).collect();
        prop_assert_eq!(topic_match(&pattern, &key), reference(&pw, &kw), "pattern {} key {}", pattern, key);
    }
}
