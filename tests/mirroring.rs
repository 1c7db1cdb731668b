//! Mirrored classic queues, switched on the way RabbitMQ's guides do it
//! (`set_policy ha-all "^" '{"ha-mode":"all"}'`), on Raft: the queue's group grows to
//! every node, fails over like a quorum queue when its leader is killed, and shrinks
//! back to one member when the policy is cleared, losing nothing.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::amqp::{durable, open, persistent};
use common::cluster::{queues_seen_by, Cluster};
use common::run;
use common::traffic::Traffic;
use futures::StreamExt;
use lapin::options::*;
use lapin::types::FieldTable;

/// Wait (bounded) until node `i` lists `queue` with `n` members; returns them.
fn wait_members(c: &Cluster, i: usize, queue: &str, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = None;
    while Instant::now() < deadline {
        let seen = queues_seen_by(c, i);
        if let Some((_, members)) = seen.get(queue) {
            if members.len() == n {
                return members.clone();
            }
        }
        last = Some(seen);
        std::thread::sleep(Duration::from_millis(200));
    }
    let logs: Vec<String> = (0..c.members.len())
        .filter(|&m| c.members[m].server.is_some())
        .map(|m| c.server(m).log())
        .collect();
    panic!(
        "{queue} never had {n} members; last seen: {last:?}; logs:\n{}",
        logs.join("\n----\n")
    );
}

#[test]
fn a_classic_queue_under_ha_all_is_mirrored_and_survives_its_leader_s_kill() {
    let mut c = Cluster::joined();
    let n1 = c.server(0).uri();
    run(Duration::from_secs(30), "declare on node 1", async {
        let (_conn, ch) = open(c.server(0)).await;
        ch.queue_declare("ha.orders".into(), durable(), FieldTable::default())
            .await
            .unwrap();
    });
    assert_eq!(
        wait_members(&c, 2, "ha.orders", 1).len(),
        1,
        "one member before"
    );
    c.ctl_ok(
        1,
        &["set_policy", "ha-all", "^ha\\.", r#"{"ha-mode":"all"}"#],
    );
    let members = wait_members(&c, 2, "ha.orders", 3);
    assert_eq!(members.len(), 3, "{members:?}");
    // rabbitmqctl's columns for where a mirrored queue lives.
    let out = c.ctl_ok(
        2,
        &[
            "list_queues",
            "name",
            "policy",
            "pid",
            "slave_pids",
            "effective_policy_definition",
            "--formatter",
            "json",
        ],
    );
    let rows: serde_json::Value = serde_json::from_str(&out).unwrap();
    let row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "ha.orders")
        .expect("listed");
    assert_eq!(row["policy"], "ha-all");
    assert_eq!(row["pid"], "warren@c1");
    assert_eq!(row["slave_pids"].as_array().unwrap().len(), 2, "{row}");
    assert_eq!(row["effective_policy_definition"]["ha-mode"], "all");

    // 1,000 confirmed persistent messages, published through the leader's node.
    run(Duration::from_secs(60), "publish 1,000", async {
        let conn = lapin::Connection::connect(&n1, Default::default())
            .await
            .unwrap();
        let ch = conn.create_channel().await.unwrap();
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        let mut confirms = Vec::new();
        for i in 0..1000u32 {
            let c = ch
                .basic_publish(
                    "".into(),
                    "ha.orders".into(),
                    BasicPublishOptions::default(),
                    format!("m{i}").as_bytes(),
                    persistent(),
                )
                .await
                .unwrap();
            confirms.push(c);
        }
        for c in confirms {
            assert!(c.await.unwrap().is_ack(), "confirmed");
        }
    });
    c.kill(0);
    let n3 = c.server(2).uri();
    run(Duration::from_secs(60), "consume all from node 3", async {
        let conn = lapin::Connection::connect(&n3, Default::default())
            .await
            .unwrap();
        let ch = conn.create_channel().await.unwrap();
        ch.basic_qos(100, BasicQosOptions::default()).await.unwrap();
        let mut consumer = ch
            .basic_consume(
                "ha.orders".into(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        let mut got = BTreeSet::new();
        while got.len() < 1000 {
            let d = tokio::time::timeout(Duration::from_secs(20), consumer.next())
                .await
                .unwrap_or_else(|_| panic!("only {} of 1,000 after the leader died", got.len()))
                .unwrap()
                .unwrap();
            got.insert(String::from_utf8_lossy(&d.data).into_owned());
            d.ack(BasicAckOptions::default()).await.unwrap();
        }
        let want: BTreeSet<String> = (0..1000).map(|i| format!("m{i}")).collect();
        assert_eq!(got, want, "every confirmed message, once each");
    });
}

#[test]
fn clearing_the_policy_under_traffic_shrinks_the_queue_and_loses_nothing() {
    let c = Cluster::joined();
    c.ctl_ok(
        0,
        &[
            "set_policy",
            "ha-two",
            "^ha\\.",
            r#"{"ha-mode":"exactly","ha-params":2}"#,
        ],
    );
    let traffic = Traffic::start_with(&c, "ha.flow", FieldTable::default(), 1, 2);
    wait_members(&c, 0, "ha.flow", 2);
    traffic.wait_more_confirms(500, Duration::from_secs(30));
    let since = Instant::now();
    c.ctl_ok(0, &["clear_policy", "ha-two"]);
    wait_members(&c, 0, "ha.flow", 1);
    traffic.wait_more_confirms(500, Duration::from_secs(30));
    traffic.finish(since);
}

#[test]
fn policy_keys_without_a_feature_are_refused_by_name() {
    let c = Cluster::start_n(1);
    // The AMQP port accepts before the app counts as running.
    c.ctl_ok(0, &["await_startup"]);
    for (def, says) in [
        (r#"{"max-length":10}"#, "'max-length' is not supported"),
        (r#"{"message-ttl":10}"#, "'message-ttl' is not supported"),
        (r#"{"nonsense":1}"#, "not recognised policy settings"),
        (r#"{"ha-mode":"some"}"#, "ha-mode"),
        (r#"{"ha-mode":"exactly"}"#, "ha-params"),
    ] {
        let err = c.ctl_err(0, &["set_policy", "p", "^", def]);
        assert!(err.contains(says), "{def}: {err}");
    }
    c.ctl_ok(
        0,
        &[
            "set_policy",
            "p",
            "^",
            r#"{"ha-mode":"all","ha-sync-mode":"automatic"}"#,
        ],
    );
    // A queue the policy matches but cannot mirror says so in list_queues.
    run(Duration::from_secs(60), "queues under ha-all", async {
        let (conn, ch) = open(c.server(0)).await;
        for (name, durable, exclusive) in [
            ("hq-durable", true, false),
            ("hq-transient", false, false),
            ("hq-exclusive", false, true),
        ] {
            let opts = QueueDeclareOptions {
                durable,
                exclusive,
                ..Default::default()
            };
            ch.queue_declare(name.into(), opts, FieldTable::default())
                .await
                .unwrap();
        }
        let listed = c.ctl_ok(
            0,
            &[
                "list_queues",
                "name",
                "policy",
                "mirroring",
                "--formatter",
                "json",
            ],
        );
        let rows: serde_json::Value = serde_json::from_str(&listed).unwrap();
        let mut rows = rows.as_array().unwrap().clone();
        rows.sort_by_key(|r| r["name"].as_str().unwrap().to_owned());
        assert_eq!(
            serde_json::Value::Array(rows),
            serde_json::json!([
                {"name": "hq-durable", "policy": "p", "mirroring": "raft"},
                {"name": "hq-exclusive", "policy": "p", "mirroring": "not mirrored: exclusive"},
                {"name": "hq-transient", "policy": "p", "mirroring": "not mirrored: non-durable"},
            ])
        );
        conn.close(200, "bye".into()).await.unwrap();
    });
}
