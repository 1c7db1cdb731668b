//! rabbitmq-queues on a three-node cluster of real `warrenmq-server` processes:
//! `add_member`, `delete_member` (of the leader too), `grow` and `shrink` change a quorum
//! queue's members while a publisher and a consumer on other nodes use it, without loss;
//! `quorum_status` shows every member's Raft state; `rebalance` spreads the leaders; and
//! `forget_cluster_node` takes a stopped node out of every queue group and re-homes its
//! replicas on a free node.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::amqp::{durable, open, persistent, quorum};
use common::cluster::{leader_seen_by, queues_seen_by, Cluster};
use common::run;
use common::traffic::Traffic;
use lapin::options::BasicGetOptions;
use lapin::types::AMQPValue;

/// A quorum queue declaration with `size` initial members.
fn quorum_of(size: i32) -> lapin::types::FieldTable {
    let mut args = quorum();
    args.insert(
        "x-quorum-initial-group-size".into(),
        AMQPValue::LongInt(size),
    );
    args
}

fn members_of(c: &Cluster, queue: &str) -> Vec<String> {
    queues_seen_by(c, 0)
        .remove(queue)
        .unwrap_or_else(|| panic!("queue {queue} is listed"))
        .1
}

/// The Raft states `quorum_status` reports, as `node -> state`, waiting (bounded) until
/// `want` names exactly the members and one of them leads.
fn wait_quorum_status(c: &Cluster, queue: &str, want: &[&str]) -> BTreeMap<String, String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = c.ctl_ok(
            1,
            &["queues", "quorum_status", "--formatter", "json", queue],
        );
        let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
        let states: BTreeMap<String, String> = v
            .as_array()
            .expect("members")
            .iter()
            .map(|m| {
                (
                    m["Node Name"].as_str().unwrap().to_string(),
                    m["Raft State"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let names: Vec<&str> = states.keys().map(String::as_str).collect();
        let leaders = states.values().filter(|s| *s == "leader").count();
        if names == want && leaders == 1 {
            return states;
        }
        assert!(
            Instant::now() < deadline,
            "quorum_status of {queue} never showed members {want:?} with one leader; last: {states:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn members_change_under_load_without_loss() {
    let c = Cluster::joined();
    // Two members: node 1 (client-local) and one other.
    let traffic = Traffic::start_with(&c, "grown", quorum_of(2), 1, 2);
    traffic.wait_for(
        "traffic before the changes",
        Duration::from_secs(30),
        &|s| s.confirmed.len() >= 1000 && s.delivered.len() >= 500,
    );
    let started = Instant::now();
    let members = members_of(&c, "grown");
    assert_eq!(members.len(), 2, "x-quorum-initial-group-size: {members:?}");
    assert!(members.contains(&"warren@c1".to_string()));
    let third = ["warren@c2", "warren@c3"]
        .into_iter()
        .find(|n| !members.iter().any(|m| m == n))
        .unwrap();

    // add_member the third node: it catches up and votes.
    let out = c.ctl_ok(2, &["queues", "add_member", "grown", third]);
    assert!(out.contains("Adding a replica"), "{out}");
    assert_eq!(members_of(&c, "grown").len(), 3);
    wait_quorum_status(&c, "grown", &["warren@c1", "warren@c2", "warren@c3"]);
    let again = c.ctl(0, &["queues", "add_member", "grown", third]);
    assert!(!again.status.success(), "adding a member twice fails");
    assert!(String::from_utf8_lossy(&again.stderr).contains("already a member"));
    traffic.wait_more_confirms(1000, Duration::from_secs(60));

    // delete_member the leader (node 1): it hands the leadership over first.
    assert_eq!(leader_seen_by(&c, 0, "grown"), "warren@c1");
    c.ctl_ok(1, &["queues", "delete_member", "grown", "warren@c1"]);
    assert_eq!(members_of(&c, "grown"), ["warren@c2", "warren@c3"]);
    wait_quorum_status(&c, "grown", &["warren@c2", "warren@c3"]);
    traffic.wait_more_confirms(1000, Duration::from_secs(60));

    // grow node 1 back onto every queue, then shrink node 2 off them.
    let out = c.ctl_ok(0, &["queues", "grow", "warren@c1", "all"]);
    assert!(out.contains("grown") && out.contains("ok"), "{out}");
    wait_quorum_status(&c, "grown", &["warren@c1", "warren@c2", "warren@c3"]);
    traffic.wait_more_confirms(1000, Duration::from_secs(60));
    let out = c.ctl_ok(0, &["queues", "shrink", "warren@c2"]);
    assert!(out.contains("grown") && out.contains("ok"), "{out}");
    assert_eq!(members_of(&c, "grown"), ["warren@c1", "warren@c3"]);
    wait_quorum_status(&c, "grown", &["warren@c1", "warren@c3"]);
    // Node 2 is no member now, yet its publisher and consumer go on through links.
    traffic.wait_more_confirms(1000, Duration::from_secs(60));
    traffic.finish(started);
}

#[test]
fn rebalance_spreads_leaders_and_forget_rehomes_replicas() {
    // Four nodes, so that a forgotten node's replicas have somewhere to go.
    let mut c = Cluster::joined_n(4);
    let names: Vec<String> = (0..6).map(|i| format!("r{i}")).collect();
    // All declared on node 1, so node 1 leads them all; three members each.
    run(Duration::from_secs(60), "declare and fill", async {
        let (conn, ch) = open(c.server(0)).await;
        ch.confirm_select(Default::default()).await.unwrap();
        for q in &names {
            ch.queue_declare(q.as_str().into(), durable(), quorum_of(3))
                .await
                .unwrap();
            for m in 0..10 {
                ch.basic_publish(
                    "".into(),
                    q.as_str().into(),
                    Default::default(),
                    format!("{q}-{m}").as_bytes(),
                    persistent(),
                )
                .await
                .unwrap()
                .await
                .unwrap();
            }
        }
        conn.close(200, "bye".into()).await.unwrap();
    });
    let before = queues_seen_by(&c, 0);
    assert!(before.values().all(|(l, _)| l == "warren@c1"), "{before:?}");

    let out = c.ctl_ok(2, &["queues", "rebalance", "all"]);
    assert!(out.contains("warren@c1"), "{out}");
    let after = queues_seen_by(&c, 0);
    let mut per_node: BTreeMap<&str, usize> = BTreeMap::new();
    for (leader, members) in after.values() {
        assert!(
            members.contains(leader),
            "the leader is a member: {after:?}"
        );
        *per_node.entry(leader.as_str()).or_default() += 1;
    }
    assert!(
        per_node.values().all(|&n| n <= 2) && per_node.len() >= 3,
        "six leaders spread at most two per node: {per_node:?}"
    );

    // Stop node 4 and forget it: its replicas move to the node each queue lacks.
    let on_c4 = after
        .values()
        .filter(|(_, m)| m.contains(&"warren@c4".to_string()))
        .count();
    assert!(on_c4 > 0, "{after:?}");
    c.kill(3);
    c.ctl_ok(0, &["forget_cluster_node", "warren@c4"]);
    let forgotten = queues_seen_by(&c, 0);
    for q in &names {
        assert_eq!(
            forgotten[q].1,
            ["warren@c1", "warren@c2", "warren@c3"],
            "{q} keeps three members, none on node 4: {forgotten:?}"
        );
        wait_quorum_status(&c, q, &["warren@c1", "warren@c2", "warren@c3"]);
    }
    // Every message is still there, served by the remaining nodes.
    run(Duration::from_secs(60), "drain", async {
        let (conn, ch) = open(c.server(1)).await;
        for q in &names {
            for m in 0..10 {
                let got = ch
                    .basic_get(q.as_str().into(), BasicGetOptions { no_ack: true })
                    .await
                    .unwrap()
                    .unwrap_or_else(|| panic!("{q}: message {m} is there"));
                assert_eq!(got.delivery.data, format!("{q}-{m}").as_bytes());
            }
        }
        conn.close(200, "bye".into()).await.unwrap();
    });
}

#[test]
fn the_balanced_leader_locator_spreads_new_leaders() {
    let c = Cluster::joined();
    run(Duration::from_secs(60), "declare balanced queues", async {
        let (conn, ch) = open(c.server(0)).await;
        for i in 0..6 {
            let mut args = quorum();
            args.insert(
                "x-queue-leader-locator".into(),
                AMQPValue::LongString("balanced".into()),
            );
            ch.queue_declare(format!("b{i}").as_str().into(), durable(), args)
                .await
                .unwrap();
        }
        conn.close(200, "bye".into()).await.unwrap();
    });
    wait_two_leaders_per_node(&c, "b", "six balanced queues declared on node 1");
}

/// Each queue's Raft group elects the member the record names: wait until the six queues
/// named `prefix` + digit are led two per node.
fn wait_two_leaders_per_node(c: &Cluster, prefix: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let queues = queues_seen_by(c, 0);
        let mut per_node: BTreeMap<String, usize> = BTreeMap::new();
        for (name, (leader, _)) in &queues {
            let ours = name
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.parse::<u32>().is_ok());
            if ours {
                *per_node.entry(leader.clone()).or_default() += 1;
            }
        }
        let want: BTreeMap<String, usize> = ["warren@c1", "warren@c2", "warren@c3"]
            .into_iter()
            .map(|n| (n.to_string(), 2))
            .collect();
        if per_node == want {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{what} are led two per node: {queues:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_policy_sets_the_leader_locator_of_queues_without_the_argument() {
    let c = Cluster::joined();
    let said = c.ctl_ok(
        0,
        &[
            "set_policy",
            "--apply-to",
            "queues",
            "--priority",
            "1",
            "bal",
            "^pol\\.",
            r#"{"queue-leader-locator":"balanced"}"#,
        ],
    );
    assert!(
        said.starts_with("Setting policy \"bal\" for pattern"),
        "{said}"
    );
    // Refused as RabbitMQ refuses them: a bad pattern, a bad locator, a missing policy.
    let balanced = r#"{"queue-leader-locator":"balanced"}"#;
    let bad = c.ctl_err(0, &["set_policy", "x", "(", balanced]);
    assert!(bad.contains("regular expression"), "{bad}");
    c.ctl_err(
        0,
        &[
            "set_policy",
            "x",
            ".*",
            r#"{"queue-leader-locator":"anywhere"}"#,
        ],
    );
    let gone = c.ctl_err(0, &["clear_policy", "nope"]);
    assert!(gone.contains("not found"), "{gone}");
    // Every node lists it (from its own copy of the metadata).
    let listed = c.ctl_ok(2, &["list_policies", "--formatter", "json"]);
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(
        listed,
        serde_json::json!([{"vhost": "/", "name": "bal", "pattern": "^pol\\.", "apply-to": "queues",
            "definition": {"queue-leader-locator": "balanced"}, "priority": 1}])
    );
    run(
        Duration::from_secs(60),
        "declare queues a policy places",
        async {
            let (conn, ch) = open(c.server(0)).await;
            for name in [
                "pol.0", "pol.1", "pol.2", "pol.3", "pol.4", "pol.5", "local",
            ] {
                ch.queue_declare(name.into(), durable(), quorum())
                    .await
                    .unwrap();
            }
            conn.close(200, "bye".into()).await.unwrap();
        },
    );
    wait_two_leaders_per_node(
        &c,
        "pol.",
        "six queues the policy matches, declared on node 1,",
    );
    let queues = queues_seen_by(&c, 0);
    assert_eq!(queues["local"].0, "warren@c1", "not matched: client-local");
    c.ctl_ok(1, &["clear_policy", "bal"]);
    let listed = c.ctl_ok(0, &["list_policies"]);
    assert_eq!(
        listed,
        "Listing policies for vhost \"/\" ...\nvhost\tname\tpattern\tapply-to\tdefinition\tpriority\n"
    );
}
