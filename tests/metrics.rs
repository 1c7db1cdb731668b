//! Message statistics of a real node, driven by a real AMQP client (lapin): the counters
//! of `/metrics` (checked by Prometheus's own `promtool`), `/metrics/per-object`, and the
//! `message_stats` of `/api/overview`, `/api/queues/VHOST/NAME` and
//! `/api/exchanges/VHOST/NAME` move by exactly what the client did, with RabbitMQ
//! 3.10.8's keys; and Debian's Nagios checks (nagios-plugins-rabbitmq) pass against it.

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::http::{wait_for, Http};
use common::Server;
use futures::StreamExt;
use lapin::options::*;
use lapin::types::{FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use serde_json::Value;
use tokio::runtime::Runtime;

/// Where `scripts/install-test-deps.sh` puts the tools these tests run.
const PROMTOOL: &str = "promtool";
const NAGIOS_CHECKS: &str = "/usr/bin";

fn s(text: &str) -> ShortString {
    text.into()
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Run `f` on `rt`, bounded; the runtime (and the connections on it) outlive the call.
fn block<T>(rt: &Runtime, what: &str, f: impl std::future::Future<Output = T>) -> T {
    let limit = Duration::from_secs(60);
    rt.block_on(async { tokio::time::timeout(limit, f).await })
        .unwrap_or_else(|_| panic!("timed out after {limit:?}: {what}"))
}

async fn open(server: &Server) -> (Connection, Channel) {
    let conn = Connection::connect(&server.uri(), ConnectionProperties::default())
        .await
        .expect("connect");
    let ch = conn.create_channel().await.expect("channel");
    (conn, ch)
}

/// The samples of a text exposition: series (name and labels) -> value.
fn samples(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

fn scrape(prometheus: &Http, path: &str) -> String {
    let r = prometheus.get(path);
    assert_eq!(r.status, 200, "GET {path}: {}", r.body);
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4"),
        "{path}"
    );
    r.body
}

fn global(name: &str) -> String {
    format!("rabbitmq_global_messages_{name}_total{{protocol=\"amqp091\"}}")
}

/// A consumer-side global counter, labelled by queue type as RabbitMQ's.
fn typed(name: &str, queue_type: &str) -> String {
    format!(
        "rabbitmq_global_messages_{name}_total{{protocol=\"amqp091\",queue_type=\"rabbit_{queue_type}_queue\"}}"
    )
}

/// `promtool check metrics` on `text`: it must find nothing to complain about.
fn promtool_accepts(text: &str) {
    let mut child = Command::new(PROMTOOL)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run {PROMTOOL} ({e}): install it with scripts/install-test-deps.sh")
        });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Publish with confirms: 10 to `Q` by the default exchange, 3 through `X`, 2 more to `Q`
/// later, 1 unroutable mandatory (returned), 2 unroutable (dropped); consume `Q`'s first
/// 13 with acks, 3 of them nacked back once (redelivered, then acked); get one with ack,
/// one without, and one from the empty queue.
async fn traffic(ch: &Channel) {
    ch.queue_declare(
        s("Q"),
        QueueDeclareOptions {
            durable: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .unwrap();
    ch.exchange_declare(
        s("X"),
        ExchangeKind::Direct,
        ExchangeDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    ch.queue_bind(
        s("Q"),
        s("X"),
        s("k"),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let publish = |exchange: &'static str, key: &'static str, mandatory: bool| async move {
        let options = BasicPublishOptions {
            mandatory,
            ..Default::default()
        };
        ch.basic_publish(
            s(exchange),
            s(key),
            options,
            b"m",
            BasicProperties::default(),
        )
        .await
        .unwrap()
        .await
        .unwrap()
    };
    for _ in 0..10 {
        assert!(publish("", "Q", false).await.is_ack());
    }
    for _ in 0..3 {
        assert!(publish("X", "k", false).await.is_ack());
    }
    assert!(publish("", "nowhere", true).await.is_ack());
    for _ in 0..2 {
        assert!(publish("X", "nowhere", false).await.is_ack());
    }
    let mut consumer = ch
        .basic_consume(
            s("Q"),
            s("c"),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let (mut delivered, mut redelivered) = (0, 0);
    while delivered < 16 {
        let d = consumer.next().await.expect("a delivery").expect("ok");
        delivered += 1;
        if d.redelivered {
            redelivered += 1;
        }
        // The first three are sent back once; everything else is acked.
        if delivered <= 3 {
            d.nack(BasicNackOptions {
                requeue: true,
                ..Default::default()
            })
            .await
            .unwrap();
        } else {
            d.ack(BasicAckOptions::default()).await.unwrap();
        }
    }
    assert_eq!(redelivered, 3, "the nacked messages come back redelivered");
    ch.basic_cancel(s("c"), BasicCancelOptions::default())
        .await
        .unwrap();
    for _ in 0..2 {
        assert!(publish("", "Q", false).await.is_ack());
    }
    let got = ch
        .basic_get(s("Q"), BasicGetOptions { no_ack: false })
        .await
        .unwrap()
        .expect("a message");
    got.ack(BasicAckOptions::default()).await.unwrap();
    let got = ch
        .basic_get(s("Q"), BasicGetOptions { no_ack: true })
        .await
        .unwrap();
    assert!(got.is_some());
    let empty = ch
        .basic_get(s("Q"), BasicGetOptions { no_ack: true })
        .await
        .unwrap();
    assert!(empty.is_none());
}

/// A path segment with everything but unreserved characters percent-encoded.
fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn stat(v: &Value, key: &str) -> u64 {
    v["message_stats"][key]
        .as_u64()
        .unwrap_or_else(|| panic!("no message_stats.{key} in {v}"))
}

#[test]
fn counters_move_by_what_a_client_does() {
    let server = Server::start();
    let api = Http::ready(server.http_port);
    let prometheus = Http::anonymous(server.prometheus_port);
    let before = samples(&scrape(&prometheus, "/metrics"));
    let rt = runtime();
    let (conn, ch) = block(&rt, "open a connection", open(&server));
    block(&rt, "the client's traffic", traffic(&ch));
    // Rates come from samples every 5 s: the publishes show as a rate in the first
    // sample after them (for 5 s: so this is asked first).
    wait_for(&api, "/api/overview", "a publish rate", |o| {
        o["message_stats"]["publish_details"]["rate"].as_f64() > Some(0.0)
    });

    // Prometheus, while the client's connection is open.
    let text = scrape(&prometheus, "/metrics");
    promtool_accepts(&text);
    let after = samples(&text);
    let moved = |series: &str| {
        let now = after.get(series).copied();
        let now = now.unwrap_or_else(|| panic!("no {series} in /metrics:\n{text}"));
        now - before.get(series).copied().unwrap_or(0.0)
    };
    for (name, by) in [
        ("received", 18.0),
        ("confirmed", 18.0),
        ("routed", 15.0),
        ("unroutable_returned", 1.0),
        ("unroutable_dropped", 2.0),
    ] {
        assert_eq!(moved(&global(name)), by, "{name}");
    }
    // `Q` is a classic queue: the consumer side counts under its type.
    for (name, by) in [
        ("delivered", 18.0),
        ("delivered_consume_manual_ack", 16.0),
        ("delivered_get_manual_ack", 1.0),
        ("delivered_get_auto_ack", 1.0),
        ("get_empty", 1.0),
        ("redelivered", 3.0),
        ("acknowledged", 14.0),
    ] {
        assert_eq!(moved(&typed(name, "classic")), by, "{name}");
        assert_eq!(moved(&typed(name, "quorum")), 0.0, "{name}");
        assert_eq!(moved(&typed(name, "stream")), 0.0, "{name}");
    }
    // The one channel's counters, and its connection's traffic.
    for (name, n) in [
        ("messages_published", 18.0),
        ("messages_confirmed", 18.0),
        ("messages_unroutable_returned", 1.0),
        ("messages_unroutable_dropped", 2.0),
        ("messages_delivered_ack", 16.0),
        ("messages_delivered", 0.0),
        ("get_ack", 1.0),
        ("get", 1.0),
        ("get_empty", 1.0),
        ("messages_redelivered", 3.0),
        ("messages_acked", 14.0),
    ] {
        assert_eq!(
            after[&format!("rabbitmq_channel_{name}_total")],
            n,
            "{name}"
        );
    }
    assert_eq!(after["rabbitmq_channel_messages_unacked"], 0.0);
    assert_eq!(moved("rabbitmq_channels_opened_total"), 1.0);
    assert_eq!(moved("rabbitmq_connections_opened_total"), 1.0);
    assert_eq!(after["rabbitmq_connection_channels"], 1.0);
    assert!(
        after["rabbitmq_connection_incoming_bytes_total"] > 18.0 * 20.0,
        "{text}"
    );
    assert!(
        after["rabbitmq_connection_outgoing_bytes_total"] > 18.0 * 20.0,
        "{text}"
    );
    assert!(after["rabbitmq_connection_incoming_packets_total"] >= 1.0);
    assert_eq!(moved("rabbitmq_queue_messages_published_total"), 15.0);
    assert_eq!(after["rabbitmq_connections"], 1.0);
    assert_eq!(after["rabbitmq_channels"], 1.0);
    assert_eq!(after["rabbitmq_queue_messages_ready"], 0.0);
    assert_eq!(after["rabbitmq_queue_messages_unacked"], 0.0);
    assert!(after["rabbitmq_queues"] >= 1.0);
    // `Q` is durable: a Raft group of one, elected and committing.
    assert!(after["rabbitmq_raft_term_total"] >= 1.0, "{text}");
    assert!(after["rabbitmq_raft_log_commit_index"] >= 15.0, "{text}");
    assert!(after["rabbitmq_raft_entry_commit_latency_seconds"] > 0.0);
    assert!(after["rabbitmq_process_resident_memory_bytes"] > 1e6);
    assert!(after["rabbitmq_process_open_fds"] > 0.0);
    for name in [
        "rabbitmq_global_messages_received_total",
        "rabbitmq_queue_messages_ready",
        "rabbitmq_raft_term_total",
        "rabbitmq_process_open_fds",
    ] {
        assert!(text.contains(&format!("# HELP {name} ")), "{name}");
        let kind = if name.ends_with("_total") {
            "counter"
        } else {
            "gauge"
        };
        assert!(text.contains(&format!("# TYPE {name} {kind}\n")), "{name}");
    }
    let per_object = scrape(&prometheus, "/metrics/per-object");
    promtool_accepts(&per_object);
    let per_queue = samples(&per_object);
    let q = |name: &str| format!("{name}{{queue=\"Q\",vhost=\"/\"}}");
    assert_eq!(
        per_queue[&q("rabbitmq_queue_messages_published_total")],
        15.0
    );
    assert_eq!(per_queue[&q("rabbitmq_queue_messages_ready")], 0.0);
    assert!(per_queue[&q("rabbitmq_raft_term_total")] >= 1.0);
    let per_channel: Vec<f64> = per_queue
        .iter()
        .filter(|(k, _)| k.starts_with("rabbitmq_channel_messages_published_total{channel=\"<"))
        .map(|(_, v)| *v)
        .collect();
    assert_eq!(per_channel, [18.0], "one channel's series:\n{per_object}");

    // The management API's message_stats, with RabbitMQ's keys.
    let overview = api.get("/api/overview").json();
    for (key, n) in [
        ("publish", 18),
        ("confirm", 18),
        ("deliver", 16),
        ("deliver_no_ack", 0),
        ("get", 1),
        ("get_no_ack", 1),
        ("get_empty", 1),
        ("deliver_get", 18),
        ("ack", 14),
        ("redeliver", 3),
        ("return_unroutable", 1),
        ("drop_unroutable", 2),
        ("disk_reads", 0),
    ] {
        assert_eq!(stat(&overview, key), n, "overview {key}: {overview}");
        let rate = &overview["message_stats"][format!("{key}_details")]["rate"];
        assert!(rate.is_f64(), "overview {key}_details: {overview}");
    }
    let queue = api.get("/api/queues/%2F/Q").json();
    for (key, n) in [
        ("publish", 15),
        ("deliver", 16),
        ("get", 1),
        ("get_no_ack", 1),
        ("get_empty", 1),
        ("deliver_get", 18),
        ("ack", 14),
        ("redeliver", 3),
    ] {
        assert_eq!(stat(&queue, key), n, "queue {key}: {queue}");
    }
    // A queue has no confirms or returns: they are its publishers'.
    assert!(queue["message_stats"].get("confirm").is_none(), "{queue}");
    assert!(queue["messages_details"]["rate"].is_f64(), "{queue}");
    let x = api.get("/api/exchanges/%2F/X").json();
    assert_eq!((stat(&x, "publish_in"), stat(&x, "publish_out")), (5, 3));
    let default = api.get("/api/exchanges/%2F/amq.default").json();
    assert_eq!(stat(&default, "publish_in"), 13);
    assert_eq!(stat(&default, "publish_out"), 12);

    // The channel's message_stats, as RabbitMQ keys a channel's (no disk figures), in the
    // list and on the channel's own page; the connection's traffic with its rates.
    let channels = api.get("/api/channels").json();
    let channel = &channels.as_array().expect("a list")[0];
    for (key, n) in [
        ("publish", 18),
        ("confirm", 18),
        ("return_unroutable", 1),
        ("drop_unroutable", 2),
        ("deliver", 16),
        ("deliver_no_ack", 0),
        ("get", 1),
        ("get_no_ack", 1),
        ("get_empty", 1),
        ("deliver_get", 18),
        ("ack", 14),
        ("redeliver", 3),
    ] {
        assert_eq!(stat(channel, key), n, "channel {key}: {channel}");
        let rate = &channel["message_stats"][format!("{key}_details")]["rate"];
        assert!(rate.is_f64(), "channel {key}_details: {channel}");
    }
    assert!(channel["message_stats"].get("disk_reads").is_none());
    let name = channel["name"].as_str().unwrap();
    let one = api
        .get(&format!("/api/channels/{}", urlencode(name)))
        .json();
    assert_eq!(one["message_stats"], channel["message_stats"], "{one}");
    assert_eq!(one["consumer_details"], serde_json::json!([]), "{one}");
    assert_eq!(api.get("/api/channels/nope%20(1)").status, 404);
    let connections = api.get("/api/connections").json();
    let c = &connections.as_array().expect("a list")[0];
    for key in ["recv_oct", "recv_cnt", "send_oct", "send_cnt"] {
        assert!(c[key].as_u64() > Some(0), "connection {key}: {c}");
    }
    assert_eq!(c["send_pend"], 0);
    assert!(c["recv_oct_details"]["rate"].is_f64(), "{c}");
    assert!(c["send_oct_details"]["rate"].is_f64(), "{c}");
    let listens = overview["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l["protocol"] == "http/prometheus" && l["port"] == server.prometheus_port);
    assert!(listens, "the Prometheus listener in {overview}");
    // A declared exchange nothing went through shows no message_stats, as RabbitMQ's.
    let idle = api.get("/api/exchanges/%2F/amq.topic").json();
    assert!(idle.get("message_stats").is_none(), "{idle}");

    // A quorum queue's consumer side counts under its own type.
    block(&rt, "a quorum queue's traffic", async {
        let mut args = FieldTable::default();
        args.insert(
            s("x-queue-type"),
            lapin::types::AMQPValue::LongString("quorum".into()),
        );
        let opts = QueueDeclareOptions {
            durable: true,
            ..Default::default()
        };
        ch.queue_declare(s("QQ"), opts, args).await.unwrap();
        for _ in 0..2 {
            let confirm = ch
                .basic_publish(
                    s(""),
                    s("QQ"),
                    Default::default(),
                    b"q",
                    BasicProperties::default(),
                )
                .await
                .unwrap();
            assert!(confirm.await.unwrap().is_ack());
        }
        for _ in 0..2 {
            let got = ch
                .basic_get(s("QQ"), BasicGetOptions { no_ack: false })
                .await
                .unwrap()
                .expect("a message");
            got.ack(BasicAckOptions::default()).await.unwrap();
        }
    });
    let quorum = samples(&scrape(&prometheus, "/metrics"));
    assert_eq!(quorum[&typed("acknowledged", "quorum")], 2.0);
    assert_eq!(quorum[&typed("delivered_get_manual_ack", "quorum")], 2.0);
    assert_eq!(
        quorum[&typed("acknowledged", "classic")],
        after[&typed("acknowledged", "classic")]
    );

    block(&rt, "close", conn.close(200, s("bye"))).unwrap();
}

/// Run one of Debian's nagios-plugins-rabbitmq checks; it must say OK (exit 0).
fn nagios(check: &str, args: &[&str]) {
    let path = format!("{NAGIOS_CHECKS}/check_rabbitmq_{check}");
    let out = Command::new(&path)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {path} ({e}): install nagios-plugins-rabbitmq with scripts/install-test-deps.sh")
        });
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && said.contains(" OK"),
        "{check}: exit {:?}: {said}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn nagios_checks_pass_against_a_node() {
    let server = Server::start();
    let _api = Http::ready(server.http_port);
    let rt = runtime();
    // A client stays connected: check_rabbitmq_server fails on a node with no sockets in
    // use (as it does against RabbitMQ).
    let (conn, ch) = block(&rt, "open a connection", open(&server));
    block(&rt, "declare a queue", async {
        ch.queue_declare(
            s("watched"),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
        ch.basic_publish(
            s(""),
            s("watched"),
            BasicPublishOptions::default(),
            b"m",
            BasicProperties::default(),
        )
        .await
        .unwrap();
    });
    let port = server.http_port.to_string();
    let common = [
        "-H",
        "127.0.0.1",
        "--port",
        &port,
        "-u",
        "guest",
        "-p",
        "guest",
    ];
    let with = |more: &[&'static str]| -> Vec<&str> {
        common.iter().copied().chain(more.iter().copied()).collect()
    };
    let started = Instant::now();
    nagios("aliveness", &with(&["--vhost", "/"]));
    nagios("overview", &with(&[]));
    nagios("queue", &with(&["--vhost", "/", "--queue", "watched"]));
    // It asks for `rabbit@NODE`; the node is `warren@localhost`.
    nagios("server", &with(&["--node", "localhost"]));
    assert!(started.elapsed() < Duration::from_secs(60));
    block(&rt, "close", conn.close(200, s("bye"))).unwrap();
}
