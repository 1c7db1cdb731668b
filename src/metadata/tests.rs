//! Metadata machine tests: replies, effects and RabbitMQ's texts; a random-log property.

use amq_protocol::types::{AMQPValue, FieldTable, LongString};
use proptest::prelude::*;

use super::*;
use crate::amqp::ReplyCode;

const META: ApplyMeta = ApplyMeta {
    index: 1,
    time_ms: 0,
};

fn boot() -> MetaState {
    let mut s = MetaState::default();
    s.apply(
        META,
        MetaCommand::Bootstrap {
            default_user: "guest".into(),
            password_hash: hash_password("guest", [1, 2, 3, 4]),
        },
    );
    s
}

fn declare_q(name: &str, durable: bool, args: FieldTable) -> MetaCommand {
    MetaCommand::DeclareQueue {
        vhost: "/".into(),
        name: name.into(),
        durable,
        exclusive_owner: None,
        auto_delete: false,
        arguments: args,
        node: 1,
    }
}

fn declare_x(name: &str, kind: ExchangeKind, durable: bool, auto_delete: bool) -> MetaCommand {
    MetaCommand::DeclareExchange {
        vhost: "/".into(),
        name: name.into(),
        kind,
        durable,
        auto_delete,
        internal: false,
        arguments: FieldTable::default(),
    }
}

fn bind(source: &str, q: &str, key: &str) -> MetaCommand {
    MetaCommand::Bind {
        vhost: "/".into(),
        source: source.into(),
        destination: Destination::Queue(q.into()),
        routing_key: key.into(),
        arguments: FieldTable::default(),
    }
}

fn error(reply: MetaReply) -> (ReplyCode, String) {
    match reply {
        MetaReply::Error(e) => (e.code, e.text),
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn bootstrap_creates_vhost_user_and_predeclared_exchanges() {
    let s = boot();
    assert!(s.vhost_exists("/"));
    assert!(s.check_password("guest", "guest"));
    assert!(!s.check_password("guest", "wrong"));
    assert!(s.permissions("guest", "/").is_some());
    for x in [
        "",
        "amq.direct",
        "amq.fanout",
        "amq.topic",
        "amq.headers",
        "amq.match",
        "amq.rabbitmq.trace",
    ] {
        assert!(s.exchange("/", x).is_some(), "{x}");
    }
    assert!(s.exchange("/", "amq.rabbitmq.trace").unwrap().internal);
}

#[test]
fn queue_declare_assigns_groups_and_checks_equivalence() {
    let mut s = boot();
    let (reply, effects) = s.apply(META, declare_q("q1", true, FieldTable::default()));
    let MetaReply::QueueDeclared {
        record,
        created: true,
    } = reply
    else {
        panic!("{reply:?}")
    };
    assert_eq!(record.group_id, 1);
    assert_eq!(
        effects,
        vec![MetaEffect::QueueCreated {
            vhost: "/".into(),
            name: "q1".into(),
            group_id: 1
        }]
    );
    let (reply, _) = s.apply(META, declare_q("q1", true, FieldTable::default()));
    assert!(matches!(
        reply,
        MetaReply::QueueDeclared { created: false, .. }
    ));
    let (code, text) = error(
        s.apply(META, declare_q("q1", false, FieldTable::default()))
            .0,
    );
    assert_eq!(code, ReplyCode::PreconditionFailed);
    assert_eq!(text, "PRECONDITION_FAILED - inequivalent arg 'durable' for queue 'q1' in vhost '/': received 'false' but current is 'true'");
    let mut args = FieldTable::default();
    args.insert("x-max-length".into(), AMQPValue::LongLongInt(10));
    let (code, text) = error(s.apply(META, declare_q("q1", true, args)).0);
    assert_eq!(code, ReplyCode::PreconditionFailed);
    assert!(text.contains("inequivalent arg 'x-max-length'"), "{text}");
    let (reply, _) = s.apply(META, declare_q("t1", false, FieldTable::default()));
    let MetaReply::QueueDeclared { record, .. } = reply else {
        panic!()
    };
    assert_eq!(record.group_id, 0, "transient queues have no group");
}

#[test]
fn bad_queue_arguments_and_quorum_constraints() {
    let mut s = boot();
    let mut args = FieldTable::default();
    args.insert("x-max-length".into(), AMQPValue::LongLongInt(-1));
    assert_eq!(
        error(s.apply(META, declare_q("q", true, args)).0).0,
        ReplyCode::PreconditionFailed
    );
    let mut args = FieldTable::default();
    args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString(LongString::from("quorum".to_owned())),
    );
    let (code, text) = error(s.apply(META, declare_q("qq", false, args.clone())).0);
    assert_eq!(
        (code, text.as_str()),
        (
            ReplyCode::PreconditionFailed,
            "PRECONDITION_FAILED - invalid property 'non-durable' for queue 'qq' in vhost '/'"
        )
    );
    let (reply, _) = s.apply(META, declare_q("qq", true, args));
    let MetaReply::QueueDeclared { record, .. } = reply else {
        panic!()
    };
    assert_eq!(record.queue_type, QueueType::Quorum);
    let (code, text) = error(
        s.apply(META, declare_q("amq.mine", true, FieldTable::default()))
            .0,
    );
    assert_eq!(
        (code, text.as_str()),
        (
            ReplyCode::AccessRefused,
            "ACCESS_REFUSED - queue name 'amq.mine' contains reserved prefix 'amq.*'"
        )
    );
}

#[test]
fn exchanges_reserved_names_equivalence_and_auto_delete() {
    let mut s = boot();
    let (code, text) = error(
        s.apply(
            META,
            declare_x("amq.foo", ExchangeKind::Direct, true, false),
        )
        .0,
    );
    assert_eq!(
        (code, text.as_str()),
        (
            ReplyCode::AccessRefused,
            "ACCESS_REFUSED - exchange name 'amq.foo' contains reserved prefix 'amq.*'"
        )
    );
    s.apply(META, declare_x("x", ExchangeKind::Direct, false, false));
    let (code, text) = error(
        s.apply(META, declare_x("x", ExchangeKind::Fanout, false, false))
            .0,
    );
    assert_eq!(code, ReplyCode::PreconditionFailed);
    assert_eq!(text, "PRECONDITION_FAILED - inequivalent arg 'type' for exchange 'x' in vhost '/': received 'fanout' but current is 'direct'");
    // Auto-delete exchange goes with its last binding.
    s.apply(META, declare_x("ad", ExchangeKind::Fanout, false, true));
    s.apply(META, declare_q("q", false, FieldTable::default()));
    assert_eq!(s.apply(META, bind("ad", "q", "")).0, MetaReply::Ok);
    let (_, effects) = s.apply(
        META,
        MetaCommand::DeleteQueue {
            vhost: "/".into(),
            name: "q".into(),
        },
    );
    assert_eq!(
        effects,
        vec![MetaEffect::QueueDeleted {
            vhost: "/".into(),
            name: "q".into(),
            group_id: 0
        }]
    );
    assert!(s.exchange("/", "ad").is_none());
    // if-unused
    s.apply(META, declare_q("q2", false, FieldTable::default()));
    s.apply(META, bind("x", "q2", "k"));
    let (code, text) = error(
        s.apply(
            META,
            MetaCommand::DeleteExchange {
                vhost: "/".into(),
                name: "x".into(),
                if_unused: true,
            },
        )
        .0,
    );
    assert_eq!(
        (code, text.as_str()),
        (
            ReplyCode::PreconditionFailed,
            "PRECONDITION_FAILED - exchange 'x' in vhost '/' in use"
        )
    );
    assert_eq!(s.route("/", "x", "k", None).queues.len(), 1);
    assert_eq!(
        s.apply(
            META,
            MetaCommand::DeleteExchange {
                vhost: "/".into(),
                name: "x".into(),
                if_unused: false
            }
        )
        .0,
        MetaReply::Ok
    );
    assert!(s.route("/", "x", "k", None).queues.is_empty());
}

#[test]
fn binding_errors() {
    let mut s = boot();
    s.apply(META, declare_q("q", true, FieldTable::default()));
    let (code, text) = error(s.apply(META, bind("nope", "q", "")).0);
    assert_eq!(
        (code, text.as_str()),
        (
            ReplyCode::NotFound,
            "NOT_FOUND - no exchange 'nope' in vhost '/'"
        )
    );
    let (code, text) = error(s.apply(META, bind("amq.direct", "nope", "")).0);
    assert_eq!(
        (code, text.as_str()),
        (
            ReplyCode::NotFound,
            "NOT_FOUND - no queue 'nope' in vhost '/'"
        )
    );
    let (code, _) = error(s.apply(META, bind("", "q", "q")).0);
    assert_eq!(code, ReplyCode::AccessRefused);
    // Unbinding answers unbind-ok whatever is missing, as RabbitMQ does.
    for (source, queue) in [("nope", "q"), ("amq.direct", "nope"), ("amq.direct", "q")] {
        let MetaCommand::Bind {
            vhost,
            source,
            destination,
            routing_key,
            arguments,
        } = bind(source, queue, "k")
        else {
            unreachable!()
        };
        let unbind = MetaCommand::Unbind {
            vhost,
            source,
            destination,
            routing_key,
            arguments,
        };
        assert_eq!(s.apply(META, unbind).0, MetaReply::Ok);
    }
}

fn args(pairs: &[(&str, AMQPValue)]) -> FieldTable {
    let mut t = FieldTable::default();
    for (k, v) in pairs {
        t.insert((*k).into(), v.clone());
    }
    t
}

fn text(v: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(v.to_owned()))
}

/// The text of the error `cmd` gets (every one of these is 406 PRECONDITION_FAILED).
fn failed(s: &mut MetaState, cmd: MetaCommand) -> String {
    let (code, text) = error(s.apply(META, cmd).0);
    assert_eq!(code, ReplyCode::PreconditionFailed, "{text}");
    text
}

#[test]
fn queue_argument_texts_match_rabbitmq() {
    let mut s = boot();
    let cases: &[(&str, AMQPValue, &str)] = &[
        (
            "x-max-length",
            AMQPValue::LongInt(-1),
            "{value_negative,-1}",
        ),
        (
            "x-max-length",
            text("ten"),
            "\"expected integer, got longstr\"",
        ),
        (
            "x-message-ttl",
            text("5"),
            "\"expected integer, got longstr\"",
        ),
        (
            "x-message-ttl",
            AMQPValue::LongLongInt(1 << 40),
            "{value_too_large,1099511627776}",
        ),
        ("x-expires", AMQPValue::LongInt(0), "{value_zero,0}"),
        ("x-expires", AMQPValue::LongInt(-3), "{value_negative,-3}"),
        (
            "x-max-priority",
            AMQPValue::LongInt(300),
            "{max_value_exceeded,300}",
        ),
        ("x-overflow", text("bogus"), "invalid_overflow"),
        ("x-queue-mode", text("eager"), "invalid_queue_mode"),
        (
            "x-single-active-consumer",
            AMQPValue::LongInt(1),
            "{unacceptable_type,signedint}",
        ),
        (
            "x-queue-type",
            text("bogus"),
            "\"unsupported queue type 'bogus'\"",
        ),
        (
            "x-queue-type",
            AMQPValue::LongInt(5),
            "{unacceptable_type,signedint}",
        ),
        (
            "x-dead-letter-routing-key",
            text("k"),
            "routing_key_but_no_dlx_defined",
        ),
    ];
    for (arg, value, why) in cases {
        assert_eq!(
            failed(&mut s, declare_q("q", true, args(&[(arg, value.clone())]))),
            format!("PRECONDITION_FAILED - invalid arg '{arg}' for queue 'q' in vhost '/': {why}")
        );
    }
    // The dead-letter exchange's type is checked first, with its own text.
    assert_eq!(
        failed(
            &mut s,
            declare_q("q", true, args(&[("x-dead-letter-exchange", AMQPValue::LongInt(5))]))
        ),
        "PRECONDITION_FAILED - invalid type 'signedint' for arg 'x-dead-letter-exchange' in queue 'q' in vhost '/'"
    );
    let mut cmd = declare_q("qq", true, args(&[("x-queue-type", text("quorum"))]));
    if let MetaCommand::DeclareQueue {
        exclusive_owner, ..
    } = &mut cmd
    {
        *exclusive_owner = Some((1, 1));
    }
    assert_eq!(
        failed(&mut s, cmd),
        "PRECONDITION_FAILED - invalid property 'exclusive-owner' for queue 'qq' in vhost '/'"
    );
}

#[test]
fn queue_redeclare_compares_arguments_like_rabbitmq() {
    let mut s = boot();
    let ten = args(&[("x-max-length", AMQPValue::LongInt(10))]);
    s.apply(META, declare_q("q", true, ten.clone()));
    let what = "PRECONDITION_FAILED - inequivalent arg 'x-max-length' for queue 'q' in vhost '/'";
    let redeclare = |v: AMQPValue| declare_q("q", true, args(&[("x-max-length", v)]));
    // Both present: plain values. One missing: typed descriptions.
    assert_eq!(
        failed(&mut s, redeclare(AMQPValue::LongInt(20))),
        format!("{what}: received '20' but current is '10'")
    );
    assert_eq!(
        failed(&mut s, redeclare(text("10"))),
        format!("{what}: received '10' but current is '10'")
    );
    assert_eq!(
        failed(&mut s, declare_q("q", true, FieldTable::default())),
        format!("{what}: received none but current is the value '10' of type 'signedint'")
    );
    // Integer widths are one type class; unknown arguments are not compared.
    for same in [
        args(&[("x-max-length", AMQPValue::LongLongInt(10))]),
        args(&[
            ("x-max-length", AMQPValue::ShortShortUInt(10)),
            ("x-other", AMQPValue::Boolean(true)),
        ]),
    ] {
        let reply = s.apply(META, declare_q("q", true, same)).0;
        assert!(
            matches!(reply, MetaReply::QueueDeclared { created: false, .. }),
            "{reply:?}"
        );
    }
    s.apply(
        META,
        declare_q("qq", true, args(&[("x-queue-type", text("quorum"))])),
    );
    assert_eq!(
        failed(&mut s, declare_q("qq", true, args(&[("x-queue-type", text("classic"))]))),
        "PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue 'qq' in vhost '/': received 'classic' but current is 'quorum'"
    );
}

#[test]
fn exchange_texts_match_rabbitmq() {
    let mut s = boot();
    let mut with_ae = declare_x("x", ExchangeKind::Direct, false, false);
    if let MetaCommand::DeclareExchange { arguments, .. } = &mut with_ae {
        *arguments = args(&[("alternate-exchange", text("a"))]);
    }
    s.apply(META, with_ae.clone());
    if let MetaCommand::DeclareExchange { arguments, .. } = &mut with_ae {
        *arguments = args(&[("alternate-exchange", text("b"))]);
    }
    assert_eq!(
        failed(&mut s, with_ae),
        "PRECONDITION_FAILED - inequivalent arg 'alternate-exchange' for exchange 'x' in vhost '/': received 'b' but current is 'a'"
    );
    let (code, text) = error(
        s.apply(META, declare_x("", ExchangeKind::Direct, true, false))
            .0,
    );
    assert_eq!(
        (code, text.as_str()),
        (
            ReplyCode::AccessRefused,
            "ACCESS_REFUSED - operation not permitted on the default exchange"
        )
    );
    let delete = MetaCommand::DeleteExchange {
        vhost: "/".into(),
        name: "amq.direct".into(),
        if_unused: false,
    };
    let (code, text) = error(s.apply(META, delete).0);
    assert_eq!(
        (code, text.as_str()),
        (
            ReplyCode::AccessRefused,
            "ACCESS_REFUSED - deletion of system exchange 'amq.direct' in vhost '/' not allowed"
        )
    );
}

#[test]
fn exclusive_and_transient_queues_go_with_their_owner_and_node() {
    let mut s = boot();
    let excl = MetaCommand::DeclareQueue {
        vhost: "/".into(),
        name: "e".into(),
        durable: false,
        exclusive_owner: Some((1, 7)),
        auto_delete: false,
        arguments: FieldTable::default(),
        node: 1,
    };
    s.apply(META, excl);
    let other = MetaCommand::DeclareQueue {
        vhost: "/".into(),
        name: "e".into(),
        durable: false,
        exclusive_owner: Some((1, 8)),
        auto_delete: false,
        arguments: FieldTable::default(),
        node: 1,
    };
    assert_eq!(error(s.apply(META, other).0).0, ReplyCode::ResourceLocked);
    assert!(s.has_queues_of_owner((1, 7)));
    let (_, effects) = s.apply(META, MetaCommand::DeleteQueuesOfOwner { owner: (1, 7) });
    assert_eq!(effects.len(), 1);
    s.apply(META, declare_q("t", false, FieldTable::default()));
    s.apply(META, declare_q("d", true, FieldTable::default()));
    assert!(s.has_transient_queues_of(1));
    s.apply(META, MetaCommand::DeleteTransientQueuesOfNode { node: 1 });
    assert!(s.queue("/", "t").is_none());
    assert!(s.queue("/", "d").is_some());
}

fn arb_command() -> impl Strategy<Value = MetaCommand> {
    let q = prop_oneof!["q1", "q2", "q3"].prop_map(String::from);
    let x = prop_oneof!["x1", "x2", "amq.direct"].prop_map(String::from);
    prop_oneof![
        (q.clone(), any::<bool>()).prop_map(|(n, d)| declare_q(&n, d, FieldTable::default())),
        (q.clone()).prop_map(|n| MetaCommand::DeleteQueue {
            vhost: "/".into(),
            name: n
        }),
        (x.clone(), any::<bool>()).prop_map(|(n, ad)| declare_x(
            &n,
            ExchangeKind::Direct,
            true,
            ad
        )),
        (x.clone(), any::<bool>()).prop_map(|(n, u)| MetaCommand::DeleteExchange {
            vhost: "/".into(),
            name: n,
            if_unused: u
        }),
        (x.clone(), q.clone()).prop_map(|(x, q)| bind(&x, &q, "k")),
        (x, q.clone()).prop_map(|(x, q)| MetaCommand::Unbind {
            vhost: "/".into(),
            source: x,
            destination: Destination::Queue(q),
            routing_key: "k".into(),
            arguments: FieldTable::default()
        }),
        (1u64..5).prop_map(set_node),
        (1u64..5).prop_map(|id| MetaCommand::RemoveNode { id }),
        (q.clone(), proptest::collection::vec(1u64..5, 0..4)).prop_map(|(name, members)| {
            MetaCommand::SetQueueMembers {
                vhost: "/".into(),
                name,
                members,
            }
        }),
        q.prop_map(|n| declare_q(&n, true, quorum_args())),
        (
            prop_oneof![Just("p1"), Just("p2")],
            prop_oneof![Just("^q"), Just("q1"), Just(".*")],
            0i64..3,
            prop_oneof![Just("balanced"), Just("client-local")]
        )
            .prop_map(|(name, pattern, priority, locator)| set_policy(
                "/",
                name,
                pattern,
                priority,
                &format!(r#"{{"queue-leader-locator":"{locator}"}}"#)
            )),
        prop_oneof![Just("p1"), Just("p2")].prop_map(|name| MetaCommand::ClearPolicy {
            vhost: "/".into(),
            name: name.into()
        }),
        (-1i64..3).prop_map(|n| MetaCommand::SetVhostLimits {
            vhost: "/".into(),
            limits: [("max-queues".to_string(), n)].into_iter().collect(),
        }),
        prop_oneof![Just("amq.topic"), Just("x1")].prop_map(|x| {
            MetaCommand::SetTopicPermissions {
                user: "guest".into(),
                vhost: "/".into(),
                exchange: x.into(),
                write: "^w".into(),
                read: "^r".into(),
            }
        }),
    ]
}

proptest! {
    #[test]
    fn random_logs_keep_invariants_and_snapshots_replay(cmds in proptest::collection::vec(arb_command(), 0..60), cut in 0usize..60) {
        let mut s = boot();
        let mut snap = None;
        for (i, cmd) in cmds.iter().enumerate() {
            if i == cut.min(cmds.len()) { snap = Some(s.to_snapshot()); }
            s.apply(META, cmd.clone());
            // No binding refers to a missing exchange or queue.
            for b in s.bindings("/") {
                prop_assert!(s.exchange("/", &b.source).is_some());
                match &b.destination {
                    Destination::Queue(q) => prop_assert!(s.queue("/", q).is_some()),
                    Destination::Exchange(x) => prop_assert!(s.exchange("/", x).is_some()),
                }
            }
            let groups: Vec<u64> = s.queues("/").map(|q| q.group_id).filter(|g| *g != 0).collect();
            let unique: std::collections::BTreeSet<u64> = groups.iter().copied().collect();
            prop_assert_eq!(groups.len(), unique.len());
            // Every queue group has members, all distinct, led by one of them, and (once
            // the cluster lists nodes) only on listed nodes.
            for q in s.queues("/").filter(|q| q.group_id != 0) {
                prop_assert!(q.members.contains(&q.leader_node), "{:?}", q);
                let distinct: std::collections::BTreeSet<u64> = q.members.iter().copied().collect();
                prop_assert_eq!(distinct.len(), q.members.len());
            }
        }
        let snap = snap.unwrap_or_else(|| s.to_snapshot());
        let mut replay = MetaState::from_snapshot(&snap).unwrap();
        let start = cut.min(cmds.len());
        if start < cmds.len() || !cmds.is_empty() {
            for cmd in &cmds[start..] { replay.apply(META, cmd.clone()); }
            if start < cmds.len() { prop_assert_eq!(&replay, &s); }
        }
    }
}

#[test]
fn transient_exchanges_and_their_bindings_go_durable_ones_stay() {
    let mut s = boot();
    s.apply(META, declare_x("keep", ExchangeKind::Direct, true, false));
    s.apply(META, declare_x("gone", ExchangeKind::Fanout, false, false));
    s.apply(META, declare_q("q", true, FieldTable::default()));
    s.apply(META, bind("keep", "q", "k"));
    s.apply(META, bind("gone", "q", "k"));
    // keep -> gone (exchange-to-exchange), from a durable exchange to a transient one.
    s.apply(
        META,
        MetaCommand::Bind {
            vhost: "/".into(),
            source: "keep".into(),
            destination: Destination::Exchange("gone".into()),
            routing_key: "e".into(),
            arguments: FieldTable::default(),
        },
    );
    assert!(s.has_transient_exchanges());
    let (reply, effects) = s.apply(META, MetaCommand::DeleteTransientExchanges);
    assert_eq!((reply, effects), (MetaReply::Ok, vec![]));
    assert!(!s.has_transient_exchanges());
    assert!(s.exchange("/", "keep").is_some());
    assert!(s.exchange("/", "gone").is_none());
    assert!(s.exchange("/", "amq.direct").is_some());
    let left: Vec<_> = s
        .bindings("/")
        .map(|b| (b.source.clone(), b.routing_key.clone()))
        .collect();
    assert_eq!(left, vec![("keep".to_string(), "k".to_string())]);
}

fn set_node(id: u64) -> MetaCommand {
    MetaCommand::SetNode {
        id,
        name: format!("warren@node{id}"),
        cluster_addr: format!("127.0.0.1:{}", 25671 + id),
    }
}

fn quorum_args() -> FieldTable {
    let mut args = FieldTable::default();
    args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString(LongString::from("quorum")),
    );
    args
}

fn record(s: &MetaState, name: &str) -> QueueRecord {
    s.queue("/", name).expect("queue").clone()
}

#[test]
fn nodes_are_named_uniquely_and_place_quorum_queues() {
    let mut s = boot();
    for id in 1..=3 {
        assert_eq!(s.apply(META, set_node(id)).0, MetaReply::Ok);
    }
    let clash = MetaCommand::SetNode {
        id: 4,
        name: "warren@node2".into(),
        cluster_addr: "127.0.0.1:1".into(),
    };
    assert_eq!(
        error(s.apply(META, clash).0).0,
        ReplyCode::PreconditionFailed
    );
    assert_eq!(s.node_id("warren@node3"), Some(3));
    s.apply(META, declare_q("qq", true, quorum_args()));
    let q = record(&s, "qq");
    assert_eq!((q.members.clone(), q.leader_node), (vec![1, 2, 3], 1));
    s.apply(META, declare_q("classic", true, FieldTable::default()));
    assert_eq!(record(&s, "classic").members, vec![1]);
}

#[test]
fn quorum_queue_members_change_and_bad_member_lists_are_refused() {
    let mut s = boot();
    for id in 1..=3 {
        s.apply(META, set_node(id));
    }
    s.apply(META, declare_q("qq", true, quorum_args()));
    s.apply(META, declare_q("classic", true, FieldTable::default()));
    let set = |name: &str, members: Vec<u64>| MetaCommand::SetQueueMembers {
        vhost: "/".into(),
        name: name.into(),
        members,
    };
    let (reply, effects) = s.apply(META, set("qq", vec![2, 3]));
    assert_eq!(reply, MetaReply::Ok);
    let q = record(&s, "qq");
    assert_eq!((q.members.clone(), q.leader_node), (vec![2, 3], 2));
    assert!(matches!(
        &effects[..],
        [MetaEffect::QueueMembersChanged { members, .. }] if members == &vec![2, 3]
    ));
    for (name, members, code) in [
        ("qq", vec![], ReplyCode::PreconditionFailed),
        ("qq", vec![2, 2], ReplyCode::PreconditionFailed),
        ("qq", vec![2, 9], ReplyCode::PreconditionFailed),
        ("classic", vec![1, 2], ReplyCode::PreconditionFailed),
        ("missing", vec![1], ReplyCode::NotFound),
    ] {
        let (reply, effects) = s.apply(META, set(name, members.clone()));
        assert_eq!(error(reply).0, code, "{name} {members:?}");
        assert!(effects.is_empty());
    }
    assert_eq!(
        record(&s, "qq").members,
        vec![2, 3],
        "refusals change nothing"
    );
}

#[test]
fn removing_a_node_shrinks_groups_and_drops_its_only_copies() {
    let mut s = boot();
    for id in 1..=3 {
        s.apply(META, set_node(id));
    }
    s.apply(META, declare_q("qq", true, quorum_args()));
    s.apply(META, declare_q("classic", true, FieldTable::default()));
    s.apply(META, declare_q("transient", false, FieldTable::default()));
    let qq_group = record(&s, "qq").group_id;
    let classic_group = record(&s, "classic").group_id;
    let (reply, effects) = s.apply(META, MetaCommand::RemoveNode { id: 1 });
    assert_eq!(reply, MetaReply::Ok);
    assert_eq!(
        effects,
        vec![
            MetaEffect::QueueDeleted {
                vhost: "/".into(),
                name: "classic".into(),
                group_id: classic_group,
            },
            MetaEffect::QueueDeleted {
                vhost: "/".into(),
                name: "transient".into(),
                group_id: 0,
            },
            MetaEffect::QueueMembersChanged {
                vhost: "/".into(),
                name: "qq".into(),
                group_id: qq_group,
                members: vec![2, 3],
            },
        ]
    );
    let q = record(&s, "qq");
    assert_eq!((q.members, q.leader_node), (vec![2, 3], 2));
    assert!(s.nodes().keys().eq([2, 3].iter()));
    // Removing an unknown node is a no-op.
    assert_eq!(
        s.apply(META, MetaCommand::RemoveNode { id: 1 }),
        (MetaReply::Ok, vec![])
    );
}

#[test]
fn a_format_1_snapshot_still_loads() {
    #[derive(serde::Serialize)]
    struct V1<'a> {
        vhosts: &'a std::collections::BTreeMap<String, VHost>,
        users: std::collections::BTreeMap<String, User>,
        permissions: std::collections::BTreeMap<(String, String), Permissions>,
        last_group_id: u64,
    }
    let mut s = boot();
    s.apply(META, declare_q("q", true, FieldTable::default()));
    let vhosts = s.vhosts.clone();
    let mut bytes = vec![1u8];
    bytes.extend(
        postcard::to_allocvec(&V1 {
            vhosts: &vhosts,
            users: s.users.clone(),
            permissions: s.permissions.clone(),
            last_group_id: s.last_group_id,
        })
        .unwrap(),
    );
    let loaded = MetaState::from_snapshot(&bytes).unwrap();
    assert_eq!(loaded, s);
    assert_eq!(MetaState::from_snapshot(&s.to_snapshot()).unwrap(), s);
}

fn set_policy(vhost: &str, name: &str, pattern: &str, priority: i64, def: &str) -> MetaCommand {
    MetaCommand::SetPolicy {
        vhost: vhost.into(),
        name: name.into(),
        policy: Policy {
            pattern: pattern.into(),
            apply_to: PolicyTarget::Queues,
            priority,
            definition: def.into(),
        },
    }
}

#[test]
fn a_policy_s_leader_locator_places_queues_without_the_argument() {
    let mut s = boot();
    for id in 1..=3 {
        s.apply(META, set_node(id));
    }
    let balanced = r#"{"queue-leader-locator":"balanced"}"#;
    let local = r#"{"queue-leader-locator":"client-local"}"#;
    assert_eq!(
        s.apply(META, set_policy("/", "bal", "^bal\\.", 1, balanced))
            .0,
        MetaReply::Ok
    );
    for i in 0..6 {
        s.apply(META, declare_q(&format!("bal.{i}"), true, quorum_args()));
    }
    let mut leaders: Vec<u64> = (0..6)
        .map(|i| record(&s, &format!("bal.{i}")).leader_node)
        .collect();
    leaders.sort();
    assert_eq!(
        leaders,
        vec![1, 1, 2, 2, 3, 3],
        "declared on node 1, spread"
    );
    // Not matched, or overridden by a higher priority or by the queue's argument: local.
    s.apply(META, declare_q("other", true, quorum_args()));
    assert_eq!(record(&s, "other").leader_node, 1);
    s.apply(META, set_policy("/", "pin", "^bal\\.pinned", 2, local));
    s.apply(META, declare_q("bal.pinned", true, quorum_args()));
    assert_eq!(record(&s, "bal.pinned").leader_node, 1);
    let mut args = quorum_args();
    args.insert("x-queue-leader-locator".into(), text("client-local"));
    s.apply(META, declare_q("bal.arg", true, args));
    assert_eq!(record(&s, "bal.arg").leader_node, 1);

    let names: Vec<&str> = s.policies("/").map(|(n, _)| n).collect();
    assert_eq!(names, vec!["bal", "pin"]);
    let snap = MetaState::from_snapshot(&s.to_snapshot()).unwrap();
    assert_eq!(snap, s, "policies survive a snapshot");

    let clear = |name: &str| MetaCommand::ClearPolicy {
        vhost: "/".into(),
        name: name.into(),
    };
    assert_eq!(s.apply(META, clear("bal")).0, MetaReply::Ok);
    assert_eq!(error(s.apply(META, clear("bal")).0).0, ReplyCode::NotFound);
    let missing_vhost = set_policy("nope", "p", ".*", 0, balanced);
    assert_eq!(error(s.apply(META, missing_vhost).0).0, ReplyCode::NotFound);
    s.apply(META, MetaCommand::AddVhost { name: "v".into() });
    s.apply(META, set_policy("v", "p", ".*", 0, balanced));
    s.apply(META, MetaCommand::DeleteVhost { name: "v".into() });
    assert_eq!(s.policies("v").count(), 0, "a vhost's policies go with it");
}

#[test]
fn a_format_2_snapshot_still_loads() {
    #[derive(serde::Serialize)]
    struct V2<'a> {
        vhosts: &'a std::collections::BTreeMap<String, VHost>,
        users: std::collections::BTreeMap<String, User>,
        permissions: std::collections::BTreeMap<(String, String), Permissions>,
        last_group_id: u64,
        nodes: std::collections::BTreeMap<u64, ClusterNode>,
    }
    let mut s = boot();
    s.apply(META, set_node(1));
    s.apply(META, declare_q("q", true, FieldTable::default()));
    let vhosts = s.vhosts.clone();
    let mut bytes = vec![2u8];
    bytes.extend(
        postcard::to_allocvec(&V2 {
            vhosts: &vhosts,
            users: s.users.clone(),
            permissions: s.permissions.clone(),
            last_group_id: s.last_group_id,
            nodes: s.nodes.clone(),
        })
        .unwrap(),
    );
    assert_eq!(MetaState::from_snapshot(&bytes).unwrap(), s);
}
