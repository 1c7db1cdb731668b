//! rabbitmqctl's connection commands against real nodes and lapin clients:
//! `list_connections`, `list_channels` and `list_consumers` from any node of a
//! three-node cluster show every node's clients with rabbitmqctl 3.10.8's columns and
//! JSON keys; `close_connection` (by pid or by name) and `close_all_connections` close
//! them with 320 CONNECTION_FORCED and the operator's reason; unknown connections and
//! columns get rabbitmqctl's exit codes and messages.

mod common;

use std::time::{Duration, Instant};

use common::cluster::{warrenctl, Cluster};
use common::{run, Server};
use futures::StreamExt;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Connection, ConnectionProperties};
use serde_json::{json, Value};

/// How long a listing may take to show what a client just did.
const SETTLE: Duration = Duration::from_secs(20);

fn json_of(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

async fn connect(port: u16, name: &str) -> Connection {
    let uri = format!("amqp://guest:guest@127.0.0.1:{port}/%2F");
    let props = ConnectionProperties::default().with_connection_name(name.into());
    Connection::connect(&uri, props).await.expect("connect")
}

async fn connect_vhost(port: u16, vhost: &str) -> Connection {
    let uri = format!("amqp://guest:guest@127.0.0.1:{port}/{vhost}");
    Connection::connect(&uri, ConnectionProperties::default())
        .await
        .expect("connect")
}

/// The reply code and text of the `connection.close` the broker sends, within 10 s.
async fn closed_by_broker(
    events: &mut (impl futures::Stream<Item = lapin::Event> + Unpin),
) -> (u16, String) {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), events.next()).await {
            Ok(Some(lapin::Event::Error(e))) => match e.kind() {
                lapin::ErrorKind::ProtocolError(amqp) => {
                    return (amqp.get_id(), amqp.get_message().to_string())
                }
                other => panic!("expected the broker's connection.close, got {other:?}"),
            },
            Ok(Some(_)) => continue,
            other => panic!("the connection was not closed by the broker: {other:?}"),
        }
    }
}

/// Poll `list` until `done` holds of its JSON, or fail with the last listing.
fn wait_for(what: &str, mut list: impl FnMut() -> String, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + SETTLE;
    loop {
        let v = json_of(&list());
        if done(&v) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not seen within {SETTLE:?}; last listing: {v}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn rows(v: &Value) -> &Vec<Value> {
    v.as_array().expect("a JSON list")
}

/// The row whose `key` is `value`.
fn row<'a>(v: &'a Value, key: &str, value: &str) -> &'a Value {
    rows(v)
        .iter()
        .find(|r| r[key] == value)
        .unwrap_or_else(|| panic!("no row with {key} = {value} in {v}"))
}

#[test]
fn any_node_lists_and_closes_the_connections_of_every_node() {
    let c = Cluster::joined();
    for i in 0..3 {
        c.ctl_ok(i, &["await_startup"]);
    }
    let (port1, port3) = (c.server(0).port, c.server(2).port);
    run(
        Duration::from_secs(180),
        "connections on a cluster",
        async {
            // Node 1: a consumer with a prefetch, a priority and one unacknowledged delivery.
            let a = connect(port1, "conn-a").await;
            let ch_a = a.create_channel().await.unwrap();
            let q = QueueDeclareOptions::default();
            ch_a.queue_declare("lc-a".into(), q, FieldTable::default())
                .await
                .unwrap();
            ch_a.basic_qos(5, Default::default()).await.unwrap();
            let mut args = FieldTable::default();
            args.insert("x-priority".into(), AMQPValue::LongInt(4));
            let mut consumer = ch_a
                .basic_consume("lc-a".into(), "tag-a".into(), Default::default(), args)
                .await
                .unwrap();
            ch_a.basic_publish(
                "".into(),
                "lc-a".into(),
                Default::default(),
                b"m",
                Default::default(),
            )
            .await
            .unwrap();
            let delivery = consumer
                .next()
                .await
                .expect("a delivery")
                .expect("delivery ok");
            assert_eq!(delivery.data, b"m");
            // Node 3: a confirm channel and a no-ack consumer of a queue node 1 runs.
            let b = connect(port3, "conn-b").await;
            let ch_b = b.create_channel().await.unwrap();
            ch_b.confirm_select(Default::default()).await.unwrap();
            let no_ack = BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            };
            let _consumer_b = ch_b
                .basic_consume("lc-a".into(), "tag-b".into(), no_ack, FieldTable::default())
                .await
                .unwrap();

            // Listed via node 2, which has no client at all.
            let columns = [
                "name",
                "user",
                "vhost",
                "peer_host",
                "peer_port",
                "state",
                "channels",
                "protocol",
                "auth_mechanism",
                "client_properties",
                "connected_at",
                "pid",
                "timeout",
            ];
            let mut args = vec!["list_connections", "--formatter", "json"];
            args.extend(columns);
            let out = c.ctl_ok(1, &args);
            assert!(
                out.starts_with("[\n{\"name\":\"127.0.0.1:"),
                "rabbitmqctl's layout and key order: {out}"
            );
            let conns = json_of(&out);
            assert_eq!(rows(&conns).len(), 2, "{conns}");
            for (node, port, name) in [
                ("warren@c1", port1, "conn-a"),
                ("warren@c3", port3, "conn-b"),
            ] {
                let r = rows(&conns)
                    .iter()
                    .find(|r| r["pid"].as_str().unwrap().starts_with(&format!("<{node}.")))
                    .unwrap_or_else(|| panic!("no connection of {node}: {conns}"));
                let keys: Vec<&String> = r.as_object().unwrap().keys().collect();
                assert_eq!(keys.len(), columns.len(), "exactly the columns asked: {r}");
                let peer_port = r["peer_port"].as_u64().unwrap();
                assert_eq!(
                    r["name"],
                    format!("127.0.0.1:{peer_port} -> 127.0.0.1:{port}")
                );
                assert_eq!(r["user"], "guest");
                assert_eq!(r["vhost"], "/");
                assert_eq!(r["peer_host"], json!([127, 0, 0, 1]));
                assert_eq!(r["state"], "running");
                assert_eq!(r["channels"], 1);
                assert_eq!(r["protocol"], json!([0, 9, 1]));
                assert_eq!(r["auth_mechanism"], "PLAIN");
                assert!(
                    r["connected_at"].as_u64().unwrap() > 1_600_000_000_000,
                    "{r}"
                );
                let props = r["client_properties"].as_array().unwrap();
                assert!(
                    props.contains(&json!(["connection_name", "longstr", name])),
                    "{r}"
                );
            }
            // The default columns, as a table.
            let table = c.ctl_ok(1, &["list_connections"]);
            let lines: Vec<&str> = table.lines().collect();
            assert_eq!(
                lines[..2],
                [
                    "Listing connections ...",
                    "user\tpeer_host\tpeer_port\tstate"
                ],
                "{table}"
            );
            assert_eq!(lines.len(), 4, "{table}");
            assert!(
                lines[2].starts_with("guest\t127.0.0.1\t") && lines[2].ends_with("\trunning"),
                "{table}"
            );

            let channels = wait_for(
                "the unacknowledged delivery",
                || {
                    c.ctl_ok(
                        1,
                        &[
                            "list_channels",
                            "--formatter",
                            "json",
                            "name",
                            "connection",
                            "number",
                            "user",
                            "vhost",
                            "consumer_count",
                            "messages_unacknowledged",
                            "prefetch_count",
                            "confirm",
                            "transactional",
                        ],
                    )
                },
                |v| {
                    v.as_array()
                        .is_some_and(|r| r.iter().any(|r| r["messages_unacknowledged"] == 1))
                },
            );
            assert_eq!(rows(&channels).len(), 2, "{channels}");
            let chan_a = rows(&channels)
                .iter()
                .find(|r| r["connection"].as_str().unwrap().starts_with("<warren@c1."))
                .expect("node 1's channel");
            assert_eq!(
                (
                    &chan_a["number"],
                    &chan_a["consumer_count"],
                    &chan_a["prefetch_count"],
                    &chan_a["confirm"],
                    &chan_a["transactional"]
                ),
                (
                    &json!(1),
                    &json!(1),
                    &json!(5),
                    &json!(false),
                    &json!(false)
                ),
                "{chan_a}"
            );
            assert!(
                chan_a["name"]
                    .as_str()
                    .unwrap()
                    .ends_with(&format!(":{port1} (1)")),
                "{chan_a}"
            );
            let chan_b = rows(&channels)
                .iter()
                .find(|r| r["connection"].as_str().unwrap().starts_with("<warren@c3."))
                .expect("node 3's channel");
            assert_eq!(
                (&chan_b["confirm"], &chan_b["messages_unacknowledged"]),
                (&json!(true), &json!(0)),
                "{chan_b}"
            );

            let consumers = json_of(&c.ctl_ok(
                1,
                &[
                    "list_consumers",
                    "-p",
                    "/",
                    "--formatter",
                    "json",
                    "queue_name",
                    "channel_pid",
                    "consumer_tag",
                    "ack_required",
                    "prefetch_count",
                    "active",
                    "arguments",
                ],
            ));
            let tag_a = row(&consumers, "consumer_tag", "tag-a");
            assert_eq!(
                tag_a,
                &json!({"queue_name": "lc-a", "channel_pid": tag_a["channel_pid"], "consumer_tag": "tag-a",
                    "ack_required": true, "prefetch_count": 5, "active": true,
                    "arguments": [["x-priority", "signedint", 4]]})
            );
            assert!(tag_a["channel_pid"]
                .as_str()
                .unwrap()
                .starts_with("<warren@c1."));
            let tag_b = row(&consumers, "consumer_tag", "tag-b");
            assert_eq!(
                (&tag_b["ack_required"], &tag_b["prefetch_count"]),
                (&json!(false), &json!(0))
            );
            assert!(tag_b["channel_pid"]
                .as_str()
                .unwrap()
                .starts_with("<warren@c3."));
            let table = c.ctl_ok(0, &["list_consumers"]);
            assert!(table.starts_with("Listing consumers in vhost / ...\nqueue_name\tchannel_pid\tconsumer_tag\tack_required\tprefetch_count\tactive\targuments\n"), "{table}");
            assert!(
                table.contains("\ttag-a\ttrue\t5\ttrue\t[{\"x-priority\",4}]\n"),
                "{table}"
            );
            assert!(
                json_of(&c.ctl_ok(
                    2,
                    &["list_consumers", "-p", "nosuch", "--formatter", "json"]
                )) == json!([])
            );

            // close_connection by pid, through node 2, of node 1's connection.
            let pid_a = rows(&conns)
                .iter()
                .map(|r| r["pid"].as_str().unwrap().to_owned())
                .find(|p| p.starts_with("<warren@c1."))
                .expect("node 1's connection");
            let mut events_a = a.events_listener();
            let out = c.ctl_ok(1, &["close_connection", &pid_a, "maintenance window"]);
            assert_eq!(
                out,
                format!("Closing connection {pid_a}, reason: maintenance window...\n")
            );
            assert_eq!(
                closed_by_broker(&mut events_a).await,
                (320, "CONNECTION_FORCED - maintenance window".to_string())
            );
            // By name, through node 1, of node 3's connection (JSON answer).
            let name_b = rows(&conns)
                .iter()
                .find(|r| r["pid"].as_str().unwrap().starts_with("<warren@c3."))
                .map(|r| r["name"].as_str().unwrap().to_owned())
                .unwrap();
            let mut events_b = b.events_listener();
            let out = c.ctl_ok(
                0,
                &["close_connection", "--formatter", "json", &name_b, "bye"],
            );
            assert_eq!(json_of(&out), json!({"node": "warren@c1", "result": "ok"}));
            assert_eq!(
                closed_by_broker(&mut events_b).await,
                (320, "CONNECTION_FORCED - bye".to_string())
            );
            wait_for(
                "the closed connections to go",
                || c.ctl_ok(2, &["list_connections", "--formatter", "json"]),
                |v| v == &json!([]),
            );
            assert_eq!(
                c.ctl_ok(2, &["list_connections"]),
                "Listing connections ...\n",
                "no header without rows"
            );
        },
    );
}

#[test]
fn close_all_connections_by_vhost_limit_and_node_and_rabbitmqctl_s_refusals() {
    let server = Server::start_with(&["--node-name", "warren@lc"]);
    let secret = server.data_dir.join("cluster_secret");
    let ctl = |args: &[&str]| warrenctl(&secret, server.cluster_port, args);
    let ok = |args: &[&str]| {
        let out = ctl(args);
        assert!(out.status.success(), "warrenctl {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let err = |args: &[&str], code: i32| {
        let out = ctl(args);
        assert_eq!(out.status.code(), Some(code), "warrenctl {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    ok(&["await_startup"]);
    ok(&["add_vhost", "other"]);
    ok(&["set_permissions", "-p", "other", "guest", ".*", ".*", ".*"]);

    // Unknown columns, as rabbitmqctl's argument validation.
    let e = err(&["list_connections", "colour"], 64);
    assert_eq!(
        e,
        "Error (argument validation): Info key(s) colour are not supported\n"
    );
    let e = err(&["list_channels", "zeta,name", "alpha"], 64);
    assert_eq!(
        e,
        "Error (argument validation): Info key(s) alpha,zeta are not supported\n"
    );
    err(&["list_consumers", "--formatter", "json", "nope"], 64);
    // Socket counters are kept (tests/link_stats.rs checks their values).
    ok(&["list_connections", "name", "recv_oct"]);
    // Not a pid nor a connection's name: rabbitmqctl's invalid_pid_syntax, 69.
    let e = err(&["close_connection", "127.0.0.1:1 -> 127.0.0.1:2", "x"], 69);
    assert!(
        e.starts_with("Error:\n{:invalid_pid_syntax, \"127.0.0.1:1 -> 127.0.0.1:2\"}\n"),
        "{e}"
    );
    // A pid that names no open connection is not an error (rabbitmqctl logs it).
    let out = ok(&["close_connection", "<warren@lc.1.999.0>", "x"]);
    assert_eq!(
        out,
        "Closing connection <warren@lc.1.999.0>, reason: x...\n"
    );
    // --global closes the whole node: a vhost or a limit with it is refused, not ignored.
    let e = err(
        &["close_all_connections", "--global", "--limit", "1", "x"],
        64,
    );
    assert!(e.contains("--global"), "{e}");
    err(&["close_all_connections", "--global", "-p", "/", "x"], 64);

    let port = server.port;
    run(Duration::from_secs(120), "close_all_connections", async {
        let c1 = connect(port, "one").await;
        let c2 = connect(port, "two").await;
        let c3 = connect_vhost(port, "other").await;
        let mut events: Vec<_> = [&c1, &c2, &c3]
            .iter()
            .map(|c| c.events_listener())
            .collect();
        let out = ok(&["close_all_connections", "-p", "/", "--limit", "1", "first"]);
        assert_eq!(
            out,
            "Closing 1 connections in vhost /, reason: first...\nClosed 1 connections\n"
        );
        // The oldest of the vhost's connections goes first, as rabbitmqctl's list order.
        assert_eq!(
            closed_by_broker(&mut events[0]).await,
            (320, "CONNECTION_FORCED - first".to_string())
        );
        let out = ok(&["close_all_connections", "-p", "nosuch", "none"]);
        assert_eq!(
            out,
            "Closing all connections in vhost nosuch, reason: none...\nClosed 0 connections\n"
        );
        wait_for(
            "the first closed connection to go",
            || ok(&["list_connections", "--formatter", "json", "vhost"]),
            |v| v.as_array().is_some_and(|r| r.len() == 2),
        );
        let out = ok(&[
            "close_all_connections",
            "--formatter",
            "json",
            "--global",
            "--per-connection-delay",
            "10",
            "second",
        ]);
        assert_eq!(
            json_of(&out),
            json!({"node": "warren@lc", "result": "ok", "value": "Closed 2 connections"})
        );
        for e in &mut events[1..] {
            assert_eq!(
                closed_by_broker(e).await,
                (320, "CONNECTION_FORCED - second".to_string())
            );
        }
        let out = ok(&["close_all_connections", "--global", "third"]);
        assert!(
            out.starts_with(
                "Closing all connections to node warren@lc (across all vhosts), reason: third...\n"
            ),
            "{out}"
        );
    });
}
