//! Snapshot format tests: every format this build claims to read still loads. Golden
//! files are real snapshots written by the build that introduced their format; a test
//! rebuilds the same state from commands and compares. `WARREN_WRITE_GOLDEN=1` writes a
//! missing golden file (only ever for the current format, never over an existing one).

use std::path::PathBuf;

use amq_protocol::types::{AMQPValue, FieldTable, LongString};

use super::*;

const META: ApplyMeta = ApplyMeta {
    index: 1,
    time_ms: 0,
};

fn text(v: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(v))
}

/// A state that touches every part of format 3 (users, tags, permissions, vhosts,
/// exchanges with arguments, queues of both types with arguments, bindings, nodes,
/// policies), built only from commands format 3 had.
fn format_3_state() -> MetaState {
    let mut s = MetaState::default();
    let mut run = |cmd: MetaCommand| {
        let (reply, _) = s.apply(META, cmd);
        assert!(!matches!(reply, MetaReply::Error(_)), "{reply:?}");
    };
    run(MetaCommand::Bootstrap {
        default_user: "guest".into(),
        password_hash: hash_password("guest", [1, 2, 3, 4]),
    });
    for id in 1..=3 {
        run(MetaCommand::SetNode {
            id,
            name: format!("warren@node{id}"),
            cluster_addr: format!("127.0.0.1:{}", 25671 + id),
        });
    }
    run(MetaCommand::AddVhost { name: "v".into() });
    run(MetaCommand::AddUser {
        name: "ys".into(),
        password_hash: hash_password("ys1234", [9, 8, 7, 6]),
        tags: vec!["administrator".into(), "monitoring".into()],
    });
    run(MetaCommand::SetPermissions {
        user: "ys".into(),
        vhost: "v".into(),
        configure: "^ys-".into(),
        write: ".*".into(),
        read: "".into(),
    });
    let mut xargs = FieldTable::default();
    xargs.insert("alternate-exchange".into(), text("ae"));
    run(MetaCommand::DeclareExchange {
        vhost: "/".into(),
        name: "orders".into(),
        kind: ExchangeKind::Topic,
        durable: true,
        auto_delete: false,
        internal: false,
        arguments: xargs,
    });
    let mut quorum = FieldTable::default();
    quorum.insert("x-queue-type".into(), text("quorum"));
    quorum.insert("x-quorum-initial-group-size".into(), AMQPValue::LongInt(3));
    for (name, args) in [("q.quorum", quorum), ("q.classic", FieldTable::default())] {
        run(MetaCommand::DeclareQueue {
            vhost: "/".into(),
            name: name.into(),
            durable: true,
            exclusive_owner: None,
            auto_delete: false,
            arguments: args,
            node: 2,
        });
        run(MetaCommand::Bind {
            vhost: "/".into(),
            source: "orders".into(),
            destination: Destination::Queue(name.into()),
            routing_key: "eu.#".into(),
            arguments: FieldTable::default(),
        });
    }
    run(MetaCommand::SetPolicy {
        vhost: "/".into(),
        name: "ha".into(),
        policy: Policy {
            pattern: "^q\\.classic$".into(),
            apply_to: PolicyTarget::ClassicQueues,
            priority: 2,
            definition: r#"{"ha-mode":"exactly","ha-params":2}"#.into(),
        },
    });
    run(MetaCommand::SetMirrorMembers {
        vhost: "/".into(),
        name: "q.classic".into(),
        members: vec![2, 3],
    });
    s
}

/// Format 3's state plus what format 4 added: topic permissions, vhost and user limits.
fn format_4_state() -> MetaState {
    let mut s = format_3_state();
    let mut run = |cmd: MetaCommand| {
        let (reply, _) = s.apply(META, cmd);
        assert!(!matches!(reply, MetaReply::Error(_)), "{reply:?}");
    };
    run(MetaCommand::SetTopicPermissions {
        user: "ys".into(),
        vhost: "v".into(),
        exchange: "amq.topic".into(),
        write: "^{username}\\.".into(),
        read: ".*".into(),
    });
    run(MetaCommand::SetVhostLimits {
        vhost: "v".into(),
        limits: Limits::from([("max-queues".into(), 10), ("max-connections".into(), -1)]),
    });
    run(MetaCommand::SetUserLimits {
        user: "ys".into(),
        limits: Limits::from([("max-channels".into(), 5)]),
    });
    s
}

/// Format 4's state plus what format 5 added: the answers of recent requests.
fn format_5_state() -> MetaState {
    let mut s = format_4_state();
    for (id, name) in [(7u128, "v5-a"), (u128::MAX, "v5-b")] {
        let (reply, _) = s.apply(
            META,
            MetaCommand::Request {
                id,
                command: Box::new(MetaCommand::AddVhost { name: name.into() }),
            },
        );
        assert_eq!(reply, MetaReply::Ok);
    }
    s
}

/// Format 5's state plus what format 6 added: a cluster name.
fn format_6_state() -> MetaState {
    let mut s = format_5_state();
    let (reply, _) = s.apply(
        META,
        MetaCommand::SetClusterName {
            name: "warren-golden".into(),
        },
    );
    assert_eq!(reply, MetaReply::Ok);
    assert_eq!(s.cluster_name(), Some("warren-golden"));
    s
}

/// Compare `state` with the golden snapshot `name` of format `version`, writing the
/// file first when asked to and it is missing.
fn check_golden(name: &str, version: u8, state: &MetaState) {
    let path = golden(name);
    if !path.exists() && std::env::var_os("WARREN_WRITE_GOLDEN").is_some() {
        std::fs::write(&path, state.to_snapshot()).unwrap();
    }
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("golden {name}: {e}"));
    assert_eq!(bytes[0], version);
    assert_eq!(&MetaState::from_snapshot(&bytes).unwrap(), state);
}

#[test]
fn a_format_4_snapshot_still_loads() {
    check_golden("meta-v4.bin", 4, &format_4_state());
}

#[test]
fn a_format_5_snapshot_still_loads() {
    check_golden("meta-v5.bin", 5, &format_5_state());
}

#[test]
fn a_format_6_snapshot_loads() {
    check_golden("meta-v6.bin", 6, &format_6_state());
}

fn golden(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("src/metadata/golden")
        .join(name)
}

#[test]
fn a_format_3_snapshot_still_loads() {
    let path = golden("meta-v3.bin");
    let state = format_3_state();
    if !path.exists() && std::env::var_os("WARREN_WRITE_GOLDEN").is_some() {
        std::fs::write(&path, state.to_snapshot()).unwrap();
    }
    let bytes = std::fs::read(&path).expect("the golden format-3 snapshot");
    assert_eq!(bytes[0], 3);
    assert_eq!(MetaState::from_snapshot(&bytes).unwrap(), state);
}
