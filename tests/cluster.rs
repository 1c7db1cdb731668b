//! Three real `warrenmq-server` processes made a cluster with `warrenctl join_cluster`:
//! metadata declared on any node is seen on every node, a SIGKILLed node catches up when
//! it restarts, the metadata group survives its leader's death, and a stopped node is
//! forgotten and rejoins after `reset`.

mod common;

use std::time::{Duration, Instant};

use common::cluster::Cluster;
use common::{run, run_value, Server};
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties, ExchangeKind};

async fn channel(server: &Server) -> (Connection, lapin::Channel) {
    let conn = Connection::connect(&server.uri(), ConnectionProperties::default())
        .await
        .expect("connect");
    let ch = conn.create_channel().await.expect("channel");
    (conn, ch)
}

async fn declare_exchange(server: &Server, name: &str, passive: bool) -> Result<(), String> {
    let (conn, ch) = channel(server).await;
    let options = ExchangeDeclareOptions {
        passive,
        durable: true,
        ..Default::default()
    };
    let result = ch
        .exchange_declare(
            name.into(),
            ExchangeKind::Topic,
            options,
            FieldTable::default(),
        )
        .await
        .map_err(|e| e.to_string());
    let _ = conn.close(200, "bye".into()).await;
    result
}

#[test]
fn nodes_join_share_metadata_catch_up_survive_the_leader_and_are_forgotten() {
    let mut c = Cluster::start();
    c.join(1, 0);
    c.join(2, 0);
    let all = ["warren@c1", "warren@c2", "warren@c3"];
    c.wait_running(0, &all);
    c.wait_running(2, &all);

    run(
        Duration::from_secs(120),
        "cluster metadata scenario",
        async {
            // Declared on node 2, seen on node 3 and node 1.
            declare_exchange(c.server(1), "x.shared", false)
                .await
                .unwrap();
            declare_exchange(c.server(2), "x.shared", true)
                .await
                .unwrap();
            declare_exchange(c.server(0), "x.shared", true)
                .await
                .unwrap();
            let err = declare_exchange(c.server(2), "x.never", true)
                .await
                .unwrap_err();
            assert!(err.contains("NOT_FOUND"), "{err}");

            // A classic durable queue on node 3, bound to the shared exchange from node 3.
            let (conn, ch) = channel(c.server(2)).await;
            let durable = QueueDeclareOptions {
                durable: true,
                ..Default::default()
            };
            ch.queue_declare("q.c3".into(), durable, FieldTable::default())
                .await
                .unwrap();
            ch.queue_bind(
                "q.c3".into(),
                "x.shared".into(),
                "orders.#".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
            ch.confirm_select(ConfirmSelectOptions::default())
                .await
                .unwrap();
            let confirm = ch
                .basic_publish(
                    "x.shared".into(),
                    "orders.eu".into(),
                    BasicPublishOptions::default(),
                    b"routed by the replicated binding",
                    BasicProperties::default().with_delivery_mode(2),
                )
                .await
                .unwrap();
            assert!(confirm.await.unwrap().is_ack());
            let got = ch
                .basic_get("q.c3".into(), BasicGetOptions { no_ack: true })
                .await
                .unwrap()
                .expect("the message");
            assert_eq!(got.delivery.data, b"routed by the replicated binding");
            let _ = conn.close(200, "bye".into()).await;
        },
    );

    // Node 2 dies; the other two carry on; node 2 restarts and has caught up.
    c.kill(1);
    run(
        Duration::from_secs(60),
        "declare while node 2 is down",
        async {
            declare_exchange(c.server(0), "x.while-down", false)
                .await
                .unwrap();
        },
    );
    c.boot(1);
    c.wait_running(0, &all);
    run(Duration::from_secs(60), "restarted node caught up", async {
        declare_exchange(c.server(1), "x.while-down", true)
            .await
            .unwrap();
    });

    // A running node cannot be forgotten; a stopped one can, and rejoins after a reset.
    let out = c.ctl(0, &["forget_cluster_node", "warren@c3"]);
    assert_eq!(
        out.status.code(),
        Some(70),
        "forgetting a running node fails"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is running"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    c.ctl_ok(2, &["stop_app"]);
    c.ctl_ok(0, &["forget_cluster_node", "warren@c3"]);
    c.wait_running(0, &["warren@c1", "warren@c2"]);
    let status = c.ctl_ok(1, &["cluster_status", "--formatter", "json"]);
    assert!(!status.contains("warren@c3"), "{status}");
    c.ctl_ok(2, &["reset"]);
    c.ctl_ok(
        2,
        &[
            "join_cluster",
            &format!("127.0.0.1:{}", c.members[1].cluster),
        ],
    );
    c.ctl_ok(2, &["start_app"]);
    c.wait_running(0, &all);
    run(
        Duration::from_secs(60),
        "rejoined node has the metadata",
        async {
            declare_exchange(c.server(2), "x.while-down", true)
                .await
                .unwrap();
        },
    );

    // Whichever node led the metadata, killing node 1 leaves a majority that elects one.
    c.kill(0);
    run(
        Duration::from_secs(60),
        "metadata after node 1's death",
        async {
            declare_exchange(c.server(1), "x.after-kill", false)
                .await
                .unwrap();
            declare_exchange(c.server(2), "x.after-kill", true)
                .await
                .unwrap();
        },
    );
}

#[test]
fn a_quorum_queue_is_replicated_and_served_by_its_new_leader_after_a_kill() {
    let mut c = Cluster::start();
    c.join(1, 0);
    c.join(2, 0);
    c.wait_running(0, &["warren@c1", "warren@c2", "warren@c3"]);
    const COUNT: usize = 200;
    let mut quorum = FieldTable::default();
    quorum.insert(
        "x-queue-type".into(),
        lapin::types::AMQPValue::LongString("quorum".into()),
    );
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    let node1 = c.server(0).uri();
    // Published and confirmed on node 1 (the queue's leader: client-local placement); one
    // message delivered and not acked when node 1 dies.
    let (conn1, _ch1) = run_value(Duration::from_secs(60), "publish on node 1", async {
        let conn = Connection::connect(&node1, ConnectionProperties::default())
            .await
            .unwrap();
        let ch = conn.create_channel().await.unwrap();
        ch.queue_declare("qq".into(), durable, quorum.clone())
            .await
            .unwrap();
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        let mut confirms = Vec::new();
        for i in 0..COUNT {
            confirms.push(
                ch.basic_publish(
                    "".into(),
                    "qq".into(),
                    BasicPublishOptions::default(),
                    format!("m{i}").as_bytes(),
                    BasicProperties::default().with_delivery_mode(2),
                )
                .await
                .unwrap(),
            );
        }
        for confirm in confirms {
            assert!(confirm.await.unwrap().is_ack());
        }
        let first = ch
            .basic_get("qq".into(), BasicGetOptions { no_ack: false })
            .await
            .unwrap()
            .expect("a message");
        assert_eq!(first.delivery.data, b"m0");
        assert!(!first.delivery.redelivered);
        (conn, ch)
    });
    // Any node lists the queue with its leader's counts.
    let columns = ["name", "messages", "type", "leader", "members", "online"];
    let list = |c: &Cluster, i: usize| -> serde_json::Value {
        let mut args = vec!["list_queues", "--formatter", "json"];
        args.extend(columns);
        serde_json::from_str(&c.ctl_ok(i, &args)).expect("JSON")
    };
    // Polled: under load a peer's ping can be late and the peer briefly called down.
    let list_until = |c: &Cluster, i: usize, done: &dyn Fn(&serde_json::Value) -> bool| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let listed = list(c, i);
            if done(&listed[0]) || Instant::now() > deadline {
                return listed;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let online = |q: &serde_json::Value| q["online"].as_array().map(Vec::len);
    let listed = list_until(&c, 2, &|q| online(q) == Some(3));
    let qq = &listed[0];
    assert_eq!(qq["name"], "qq", "{listed}");
    assert_eq!(qq["messages"], COUNT, "{listed}");
    assert_eq!(qq["type"], "quorum", "{listed}");
    assert_eq!(qq["leader"], "warren@c1", "{listed}");
    assert_eq!(qq["members"].as_array().map(Vec::len), Some(3), "{listed}");
    assert_eq!(qq["online"].as_array().map(Vec::len), Some(3), "{listed}");
    let text = c.ctl_ok(1, &["list_queues", "name", "leader"]);
    assert!(text.contains("name\tleader\nqq\twarren@c1\n"), "{text}");

    c.kill(0);
    drop(conn1);

    // One of the two survivors is elected and serves every confirmed message, in order,
    // the one delivered before the kill flagged redelivered.
    run(
        Duration::from_secs(90),
        "consume from the new leader",
        async {
            let deadline = Instant::now() + Duration::from_secs(60);
            let (conn, ch) = loop {
                let mut served = None;
                for i in [1, 2] {
                    let (conn, ch) = channel(c.server(i)).await;
                    let passive = QueueDeclareOptions {
                        passive: true,
                        ..Default::default()
                    };
                    if let Ok(q) = ch
                        .queue_declare("qq".into(), passive, FieldTable::default())
                        .await
                    {
                        assert_eq!(q.message_count() as usize, COUNT, "every confirmed message");
                        served = Some((conn, ch));
                        break;
                    }
                }
                if let Some(found) = served {
                    break found;
                }
                assert!(Instant::now() < deadline, "no survivor serves the queue");
                tokio::time::sleep(Duration::from_millis(200)).await;
            };
            for i in 0..COUNT {
                let got = ch
                    .basic_get("qq".into(), BasicGetOptions { no_ack: true })
                    .await
                    .unwrap()
                    .unwrap_or_else(|| panic!("message {i} is missing"));
                assert_eq!(got.delivery.data, format!("m{i}").as_bytes());
                assert_eq!(got.delivery.redelivered, i == 0, "redelivered flag of m{i}");
            }
            let empty = ch
                .basic_get("qq".into(), BasicGetOptions { no_ack: true })
                .await
                .unwrap();
            assert!(empty.is_none(), "nothing unpublished appears");
            let _ = conn.close(200, "bye".into()).await;
        },
    );
    // Node 2 reports the dead member offline once its failure detector has seen it die.
    let listed = list_until(&c, 1, &|q| online(q) == Some(2));
    let qq = &listed[0];
    assert_eq!(qq["online"].as_array().map(Vec::len), Some(2), "{listed}");
    assert_eq!(qq["messages"], 0, "{listed}");
    assert_ne!(qq["leader"], "warren@c1", "{listed}");
}
