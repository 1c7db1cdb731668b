//! Definitions tests: a real RabbitMQ 3.10.8 export imports; a bad entry refuses the
//! whole file by name and changes nothing; export -> import -> export is a fixed point;
//! RabbitMQ's three password hashes verify.

use amq_protocol::types::AMQPValue;
use serde_json::{json, Value};

use super::*;
use crate::metadata::{check_password_hash, hash_password, limit, PolicyTarget, QueueType};

const META: ApplyMeta = ApplyMeta {
    index: 1,
    time_ms: 0,
};

/// `rabbitmqctl export_definitions -` of RabbitMQ 3.10.8 (its objects of vhost
/// `defs-shop` and users `defs-*`; see tests/fixtures/README.md).
const FIXTURE: &str = include_str!("../../../tests/fixtures/rabbitmq-3.10.8-definitions.json");

fn boot() -> MetaState {
    let mut s = MetaState::default();
    s.apply(
        META,
        MetaCommand::Bootstrap {
            default_user: "guest".into(),
            password_hash: hash_password("guest", [1, 2, 3, 4]),
        },
    );
    for id in 1..=3 {
        s.apply(
            META,
            MetaCommand::SetNode {
                id,
                name: format!("warren@n{id}"),
                cluster_addr: format!("127.0.0.1:{}", 25671 + id),
            },
        );
    }
    s
}

fn salts() -> impl FnMut() -> [u8; 4] {
    let mut n = 0u8;
    move || {
        n += 1;
        [n, 0, 0, 0]
    }
}

fn parse_ok(text: &str) -> Parsed {
    parse(text, salts()).unwrap_or_else(|e| panic!("{e:?}"))
}

fn import(s: &mut MetaState, definitions: Definitions) -> (MetaReply, Vec<MetaEffect>) {
    s.apply(
        META,
        MetaCommand::ImportDefinitions {
            definitions,
            node: 2,
        },
    )
}

/// The fixture with `edit` applied to its JSON.
fn edited(edit: impl FnOnce(&mut Value)) -> String {
    let mut v: Value = serde_json::from_str(FIXTURE).unwrap();
    edit(&mut v);
    v.to_string()
}

fn refusal(text: &str) -> String {
    match parse(text, salts()) {
        Err(ParseError::Entry(e)) => e,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn a_rabbitmq_3_10_8_export_imports_whole() {
    let mut s = boot();
    let parsed = parse_ok(FIXTURE);
    assert!(parsed.skipped.is_empty(), "{:?}", parsed.skipped);
    let (reply, effects) = import(&mut s, parsed.definitions);
    // RabbitMQ's export lists two bindings of `internal.audit`, an internal exchange it
    // does not list itself: they are skipped, as RabbitMQ skips them.
    let MetaReply::DefinitionsImported { skipped } = reply else {
        panic!("{reply:?}");
    };
    assert_eq!(skipped.len(), 2, "{skipped:?}");
    assert!(
        skipped.iter().all(|s| s.contains("'internal.audit'")),
        "{skipped:?}"
    );
    assert!(skipped[0]
        .starts_with("bindings[1] \"internal.audit\" -> \"lazy.archive\": source exchange"));

    // Users log in with their RabbitMQ passwords; tags and limits came along.
    assert!(s.check_password("defs-alice", "alice-secret-1"));
    assert!(!s.check_password("defs-alice", "wrong"));
    assert!(s.check_password("defs-bob", "bob-secret-2"));
    assert!(s.check_password("defs-carol", "carol-secret-3"));
    assert_eq!(s.user("defs-dave").unwrap().password_hash, "", "cleared");
    assert_eq!(
        s.user("defs-bob").unwrap().tags,
        ["monitoring", "management"]
    );
    assert_eq!(limit(s.user_limits("defs-carol"), "max-channels"), Some(20));
    // The vhost, its limits, permissions and topic permissions.
    assert!(s.vhost_exists("defs-shop"));
    assert_eq!(limit(s.vhost_limits("defs-shop"), "max-queues"), Some(50));
    assert_eq!(
        s.permissions("defs-carol", "defs-shop").unwrap().write,
        "^orders$"
    );
    assert_eq!(
        s.permissions("defs-bob", "defs-shop").unwrap().configure,
        ""
    );
    let tp = s
        .topic_permission("defs-carol", "defs-shop", "amq.topic")
        .unwrap();
    assert_eq!(tp.write, "^orders\\.{username}\\.");
    // Policies take effect: the AE policy routes `orders`' unroutable messages.
    let (_, ae) = s
        .policies("defs-shop")
        .find(|(n, _)| *n == "defs-ae")
        .unwrap();
    assert_eq!(ae.apply_to, PolicyTarget::Exchanges);
    let routed = s.route("defs-shop", "orders", "nowhere", None);
    assert_eq!(
        routed.queues.into_iter().collect::<Vec<_>>(),
        ["unrouted.log"]
    );
    // Queues, with their types, groups and arguments; exchanges; bindings.
    let qq = s.queue("defs-shop", "qq.payments").unwrap();
    assert_eq!(qq.queue_type, QueueType::Quorum);
    assert_eq!(qq.members.len(), 3);
    assert!(qq.group_id != 0);
    let lazy = s.queue("defs-shop", "lazy.archive").unwrap();
    assert_eq!(
        lazy.members,
        [2],
        "a classic queue lives on the importing node"
    );
    assert!(lazy.arguments.inner().contains_key("x-queue-mode"));
    let events = s.exchange("defs-shop", "events").unwrap();
    assert_eq!(events.kind, ExchangeKind::Headers);
    assert!(events.arguments.inner().contains_key("alternate-exchange"));
    assert_eq!(s.bindings("defs-shop").count(), 4);
    let headers = s
        .bindings("defs-shop")
        .find(|b| b.source == "events")
        .unwrap();
    assert_eq!(
        headers.arguments.inner().get("level"),
        Some(&AMQPValue::LongLongInt(3))
    );
    // Each new queue is announced, as a declare announces it.
    let created: Vec<&str> = effects
        .iter()
        .filter_map(|e| match e {
            MetaEffect::QueueCreated { name, .. } => Some(name.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        created,
        [
            "unrouted.log",
            "qq.payments",
            "lazy.archive",
            "orders.created"
        ]
    );
}

#[test]
fn a_bad_entry_refuses_the_whole_file_by_name_and_changes_nothing() {
    // Refused while reading: what WarrenMQ cannot represent, named.
    let text = edited(|v| v["queues"][2]["arguments"]["x-max-length"] = json!(10));
    let e = refusal(&text);
    assert!(
        e.starts_with("queues[2] \"lazy.archive\": invalid arg 'x-max-length'"),
        "{e}"
    );
    assert!(e.contains("not supported by WarrenMQ yet"), "{e}");
    type Edit = Box<dyn FnOnce(&mut Value)>;
    let cases: Vec<(Edit, &str)> = vec![
        (
            Box::new(|v| v["exchanges"][1]["type"] = json!("x-consistent-hash")),
            "exchanges[1] \"events\": unknown exchange type 'x-consistent-hash'",
        ),
        (
            Box::new(|v| v["policies"][0]["definition"] = json!({"max-length": 5})),
            "policies[0] \"defs-ae\": policy key 'max-length' is not supported",
        ),
        (
            Box::new(|v| {
                v["parameters"].as_array_mut().unwrap().push(json!({"vhost": "defs-shop",
                    "component": "operator_policy", "name": "op",
                    "value": {"apply-to": "queues", "definition": [["max-length", 10]],
                              "pattern": "^", "priority": 0}}))
            }),
            "parameters[1] \"op\": operator policies are not supported by WarrenMQ yet: every key one can hold, here 'max-length',",
        ),
        (
            Box::new(|v| {
                v["parameters"][0] = json!({"vhost": "defs-shop", "component": "federation-upstream",
                    "name": "up", "value": {"uri": "amqp://"}})
            }),
            "parameters[0] \"up\": component 'federation-upstream' is not supported",
        ),
        (
            Box::new(|v| v["global_parameters"] = json!([{"name": "cluster_name", "value": "x"}])),
            "global_parameters[0] \"cluster_name\": WarrenMQ names its cluster",
        ),
        (
            Box::new(|v| v["vhosts"][0]["metadata"]["description"] = json!("shop")),
            "vhosts[0] \"defs-shop\": vhost descriptions",
        ),
        (
            Box::new(|v| v["vhosts"][0]["limits"] = json!([["max-queues", 1]])),
            "vhosts[0] \"defs-shop\": its limits",
        ),
        (
            Box::new(|v| v["users"][1]["hashing_algorithm"] = json!("rabbit_password_hashing_sha512")),
            "users[1] \"defs-bob\": password_hash is not a rabbit_password_hashing_sha512 hash",
        ),
        (
            Box::new(|v| v["permissions"][0]["write"] = json!("(")),
            "permissions[0] \"defs-carol\": regular expression '(' is invalid",
        ),
        (
            Box::new(|v| v["queues"][0]["exclusive"] = json!(true)),
            "queues[0] \"unrouted.log\": key 'exclusive' is not known to WarrenMQ",
        ),
        (
            Box::new(|v| v["shovels"] = json!([])),
            "definitions key 'shovels' is not known to WarrenMQ",
        ),
        (
            Box::new(|v| v["queues"][0]["durable"] = json!("yes")),
            "queues[0] \"unrouted.log\": 'durable' must be true or false",
        ),
    ];
    for (edit, want) in cases {
        let e = refusal(&edited(edit));
        assert!(e.starts_with(want), "{e}\n  wanted: {want}");
    }
    // Two bad entries: the first in import order is named, whether its fault is found by
    // reading (a later binding's type) or by checking (an earlier permission's regex).
    let e = refusal(&edited(|v| {
        v["permissions"][1]["read"] = json!("[");
        v["bindings"][0]["destination_type"] = json!("topic");
    }));
    assert!(
        e.starts_with("permissions[1] \"defs-bob\": regular expression '[' is invalid"),
        "{e}"
    );
    assert!(matches!(
        parse("not json", salts()),
        Err(ParseError::Json(_))
    ));
    assert!(matches!(
        parse("[1,2]", salts()),
        Err(ParseError::NotAnObject(_))
    ));

    // Refused by the machine, after earlier entries applied to its copy: nothing stays.
    let mut s = boot();
    let before = s.clone();
    let text = edited(|v| {
        v["queues"][3]["vhost"] = json!("defs-nowhere");
    });
    let (reply, effects) = import(&mut s, parse_ok(&text).definitions);
    let MetaReply::Error(e) = reply else {
        panic!("{reply:?}");
    };
    assert_eq!(
        e.text,
        "queues[3] \"orders.created\": no vhost 'defs-nowhere'"
    );
    assert!(effects.is_empty());
    assert_eq!(
        s, before,
        "the users, vhost and queues before it are not kept"
    );
    // A machine that is handed an unchecked entry checks it itself.
    let mut d = parse_ok(FIXTURE).definitions;
    d.policies[1].policy.definition = r#"{"message-ttl":1}"#.into();
    let (reply, _) = import(&mut s, d);
    assert!(
        matches!(&reply, MetaReply::Error(e) if e.text.starts_with("policies[1] \"defs-balance\": policy key 'message-ttl'")),
        "{reply:?}"
    );
    assert_eq!(s, before);
}

#[test]
fn what_rabbitmq_skips_is_skipped_and_reported() {
    let text = edited(|v| {
        v["queues"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "amq.gen-x", "vhost": "defs-shop",
            "durable": false, "auto_delete": true, "arguments": {}}));
        v["exchanges"].as_array_mut().unwrap().push(json!({"name": "amq.direct", "vhost": "defs-shop",
            "type": "direct", "durable": true, "auto_delete": false, "internal": false, "arguments": {}}));
        v["global_parameters"] =
            json!([{"name": "internal_cluster_id", "value": "rabbitmq-cluster-id-x"}]);
    });
    let parsed = parse_ok(&text);
    assert_eq!(parsed.skipped.len(), 3, "{:?}", parsed.skipped);
    assert!(parsed.skipped[0].starts_with("global_parameters[0] \"internal_cluster_id\""));
    assert!(parsed.skipped[1].starts_with("queues[4] \"amq.gen-x\""));
    assert!(parsed.skipped[2].starts_with("exchanges[3] \"amq.direct\""));
}

#[test]
fn an_import_merges_as_rabbitmq_s_does() {
    let mut s = boot();
    // An existing queue of other properties is kept as it is (RabbitMQ 3.10.8 keeps it).
    s.apply(
        META,
        MetaCommand::AddVhost {
            name: "defs-shop".into(),
        },
    );
    s.apply(
        META,
        MetaCommand::DeclareQueue {
            vhost: "defs-shop".into(),
            name: "lazy.archive".into(),
            durable: false,
            exclusive_owner: None,
            auto_delete: true,
            arguments: Default::default(),
            node: 1,
        },
    );
    s.apply(
        META,
        MetaCommand::AddUser {
            name: "defs-carol".into(),
            password_hash: hash_password("old", [1, 1, 1, 1]),
            tags: vec!["administrator".into()],
        },
    );
    let mut limits = Limits::new();
    limits.insert("max-connections".into(), 1);
    limits.insert("max-channels".into(), 1);
    s.apply(
        META,
        MetaCommand::SetUserLimits {
            user: "defs-carol".into(),
            limits,
        },
    );
    let text = edited(|v| v["users"][3]["limits"] = json!({"max-channels": 20}));
    let (reply, _) = import(&mut s, parse_ok(&text).definitions);
    assert!(
        matches!(reply, MetaReply::DefinitionsImported { .. }),
        "{reply:?}"
    );
    let q = s.queue("defs-shop", "lazy.archive").unwrap();
    assert!(!q.durable && q.auto_delete && q.arguments.inner().is_empty());
    // An existing user gets the file's hash and tags; limits are merged into theirs.
    assert!(s.check_password("defs-carol", "carol-secret-3"));
    assert!(s.user("defs-carol").unwrap().tags.is_empty());
    assert_eq!(limit(s.user_limits("defs-carol"), "max-channels"), Some(20));
    assert_eq!(
        limit(s.user_limits("defs-carol"), "max-connections"),
        Some(1)
    );
    // Importing the same file again changes nothing.
    let once = s.clone();
    let (reply, effects) = import(&mut s, parse_ok(&text).definitions);
    assert!(matches!(reply, MetaReply::DefinitionsImported { .. }));
    assert!(effects.is_empty());
    assert_eq!(s, once);
}

#[test]
fn export_then_import_gives_the_same_state() {
    let mut s = boot();
    import(&mut s, parse_ok(FIXTURE).definitions);
    s.apply(
        META,
        MetaCommand::ChangePassword {
            name: "defs-bob".into(),
            password_hash: String::new(),
        },
    );
    let exported = export(&s, "0.1.0");
    // The cleared password as RabbitMQ exports it; the default vhost's description.
    let bob = exported["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "defs-bob")
        .unwrap();
    assert_eq!(bob["password_hash"], "");
    assert_eq!(bob["hashing_algorithm"], "rabbit_password_hashing_sha256");
    assert_eq!(exported["rabbitmq_version"], "3.10.8");
    assert_eq!(exported["product_name"], "WarrenMQ");
    let vhosts = exported["vhosts"].as_array().unwrap();
    assert!(vhosts.contains(&json!({"name": "/", "limits": [],
        "metadata": {"description": "Default virtual host", "tags": []}})));
    assert!(vhosts.contains(&json!({"name": "defs-shop",
        "limits": [["max-connections", 100], ["max-queues", 50]],
        "metadata": {"description": "", "tags": []}})));

    let mut fresh = boot();
    let parsed = parse_ok(&exported.to_string());
    assert!(parsed.skipped.is_empty(), "{:?}", parsed.skipped);
    let (reply, _) = import(&mut fresh, parsed.definitions);
    assert_eq!(reply, MetaReply::DefinitionsImported { skipped: vec![] });
    assert_eq!(export(&fresh, "0.1.0"), exported);
    // Beyond the export: the same records, but for the group ids and members of the
    // queues (handed out in the file's order, which the export sorts).
    assert_eq!(without_groups(fresh), without_groups(s));
}

fn without_groups(mut s: MetaState) -> MetaState {
    s.last_group_id = 0;
    for v in s.vhosts.values_mut() {
        for q in v.queues.values_mut() {
            (q.group_id, q.members, q.leader_node) = (0, Vec::new(), 0);
        }
    }
    s
}

#[test]
fn sha512_and_md5_hashes_verify_and_export_with_their_algorithm() {
    // Hashes RabbitMQ 3.10.8 accepted (authenticate_user) after importing them.
    let text = json!({"users": [
        {"name": "u512", "password_hash": "AQIDBC7ycYuFch8KXPKvr7VeqRVbYxPSprRvfyRAwF7dUlG5QkPMvK8D/53FksiTH4ERz3rNdHcpAziWiUd4pn0fWTI=",
         "hashing_algorithm": "rabbit_password_hashing_sha512", "tags": [], "limits": {}},
        {"name": "umd5", "password_hash": "AQIDBLS2/xHiPQ252ze35ZtSjBQ=",
         "hashing_algorithm": "rabbit_password_hashing_md5", "tags": "monitoring,policymaker"},
        {"name": "uplain", "password": "plain", "tags": []},
    ]})
    .to_string();
    let mut s = boot();
    let (reply, _) = import(&mut s, parse_ok(&text).definitions);
    assert!(
        matches!(reply, MetaReply::DefinitionsImported { .. }),
        "{reply:?}"
    );
    assert!(s.check_password("u512", "pw512"));
    assert!(s.check_password("umd5", "pwmd5"));
    assert!(s.check_password("uplain", "plain"));
    assert!(!s.user("uplain").unwrap().password_hash.contains("plain"));
    assert!(check_password_hash(
        &s.user("uplain").unwrap().password_hash,
        "plain"
    ));
    assert_eq!(s.user("umd5").unwrap().tags, ["monitoring", "policymaker"]);
    let exported = export(&s, "0.1.0");
    let algorithm = |name: &str| {
        exported["users"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["name"] == name)
            .unwrap()["hashing_algorithm"]
            .clone()
    };
    assert_eq!(algorithm("u512"), "rabbit_password_hashing_sha512");
    assert_eq!(algorithm("umd5"), "rabbit_password_hashing_md5");
    assert_eq!(algorithm("uplain"), "rabbit_password_hashing_sha256");
    let both = json!({"users": [{"name": "x", "password": "a", "password_hash": ""}]});
    assert!(refusal(&both.to_string()).contains("both password and password_hash"));
}

#[test]
fn the_command_is_an_on_disk_format_that_round_trips() {
    let cmd = MetaCommand::ImportDefinitions {
        definitions: parse_ok(FIXTURE).definitions,
        node: 2,
    };
    let bytes = postcard::to_allocvec(&cmd).unwrap();
    assert_eq!(postcard::from_bytes::<MetaCommand>(&bytes).unwrap(), cmd);
}
