//! The management HTTP API of one real node, over HTTP, with RabbitMQ 3.10.8's paths,
//! keys, status codes and error bodies (measured against it), and checked with a real
//! AMQP client (lapin): what the API declares, binds and publishes is what AMQP sees, and
//! what AMQP publishes is what the API counts and gets.

mod common;

use std::time::Duration;

use common::http::{names, wait_for, Http};
use common::{run, Server};
use futures::StreamExt;
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use serde_json::json;

#[test]
fn what_the_api_declares_binds_and_publishes_is_real_amqp() {
    let server = Server::start();
    let api = Http::ready(server.http_port);

    // Declare a queue, an exchange and a binding over HTTP.
    let r = api.put(
        "/api/queues/%2F/orders",
        r#"{"durable":true,"arguments":{}}"#,
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(
        api.put("/api/queues/%2F/orders", r#"{"durable":true}"#)
            .status,
        204
    );
    let r = api.put("/api/queues/%2F/orders", r#"{"durable":false}"#);
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json(),
        json!({"error": "bad_request", "reason": "inequivalent arg 'durable' for queue 'orders' in vhost '/': received 'false' but current is 'true'"})
    );
    assert_eq!(
        api.put(
            "/api/exchanges/%2F/shop",
            r#"{"type":"topic","durable":true}"#
        )
        .status,
        201
    );
    let r = api.post(
        "/api/bindings/%2F/e/shop/q/orders",
        r#"{"routing_key":"order.*","arguments":{}}"#,
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.header("location"), Some("orders/order.%252A"));

    let q = api.get("/api/queues/%2F/orders").json();
    for key in [
        "name",
        "vhost",
        "durable",
        "auto_delete",
        "exclusive",
        "arguments",
        "type",
        "node",
        "state",
        "messages",
        "messages_ready",
        "messages_unacknowledged",
        "consumers",
        "policy",
        "leader",
        "members",
        "online",
    ] {
        assert!(q.get(key).is_some(), "queue JSON without '{key}': {q}");
    }
    assert_eq!(q["type"], "classic");
    assert_eq!(q["state"], "running");
    assert_eq!(q["members"].as_array().unwrap().len(), 1);
    assert!(q["raft_term"].as_u64().is_some(), "{q}");

    // An AMQP client publishes through the binding the API made...
    run(Duration::from_secs(30), "publish with lapin", async {
        let conn = Connection::connect(&server.uri(), ConnectionProperties::default())
            .await
            .unwrap();
        let ch = conn.create_channel().await.unwrap();
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        ch.basic_publish(
            "shop".into(),
            "order.new".into(),
            BasicPublishOptions::default(),
            b"from amqp",
            BasicProperties::default().with_content_type("text/plain".into()),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    });
    // ... the API counts and gets it (requeued), and its properties.
    wait_for(&api, "/api/queues/%2F/orders", "1 message", |q| {
        q["messages"] == 1 && q["messages_ready"] == 1
    });
    let r = api.post(
        "/api/queues/%2F/orders/get",
        r#"{"count":5,"ackmode":"ack_requeue_true","encoding":"auto"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.json(),
        json!([{"payload_bytes": 9, "redelivered": false, "exchange": "shop",
                "routing_key": "order.new", "message_count": 0,
                "properties": {"content_type": "text/plain"},
                "payload": "from amqp", "payload_encoding": "string"}])
    );

    // The API publishes (routed or not), and AMQP gets what it published.
    let publish = |exchange: &str, key: &str, payload: &str, encoding: &str| {
        let body = json!({"properties": {"delivery_mode": 2, "headers": {"h": "v"}},
                          "routing_key": key, "payload": payload,
                          "payload_encoding": encoding});
        api.post(
            &format!("/api/exchanges/%2F/{exchange}/publish"),
            &body.to_string(),
        )
    };
    assert_eq!(
        publish("shop", "order.paid", "aGk=", "base64").json(),
        json!({"routed": true})
    );
    assert_eq!(
        publish("shop", "nothing", "x", "string").json(),
        json!({"routed": false})
    );
    assert_eq!(
        publish("amq.default", "orders", "third", "string").json(),
        json!({"routed": true})
    );
    let bodies = common::run_value(Duration::from_secs(30), "get with lapin", async {
        let conn = Connection::connect(&server.uri(), ConnectionProperties::default())
            .await
            .unwrap();
        let ch = conn.create_channel().await.unwrap();
        let mut bodies = Vec::new();
        while let Some(m) = ch
            .basic_get("orders".into(), BasicGetOptions { no_ack: true })
            .await
            .unwrap()
        {
            if m.delivery.routing_key.as_str() == "order.paid" {
                assert_eq!(m.delivery.properties.delivery_mode(), &Some(2));
                let headers = m.delivery.properties.headers().clone().unwrap();
                assert!(headers.inner().contains_key("h"));
            }
            bodies.push(String::from_utf8(m.delivery.data.clone()).unwrap());
        }
        bodies
    });
    assert_eq!(bodies, vec!["from amqp", "hi", "third"]);

    // Unbind by properties key; purge; delete with if-empty; all seen by AMQP.
    let b = api.get("/api/bindings/%2F/e/shop/q/orders").json();
    assert_eq!(b[0]["properties_key"], "order.%2A");
    assert_eq!(
        api.delete("/api/bindings/%2F/e/shop/q/orders/order.%252A")
            .status,
        204
    );
    assert_eq!(
        publish("shop", "order.x", "x", "string").json(),
        json!({"routed": false})
    );
    assert_eq!(
        publish("amq.default", "orders", "x", "string").json(),
        json!({"routed": true})
    );
    let r = api.delete("/api/queues/%2F/orders?if-empty=true");
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["reason"], "queue 'orders' in vhost '/' not empty");
    assert_eq!(api.delete("/api/queues/%2F/orders/contents").status, 204);
    wait_for(&api, "/api/queues/%2F/orders", "purged", |q| {
        q["messages"] == 0
    });
    assert_eq!(
        api.delete("/api/queues/%2F/orders?if-empty=true").status,
        204
    );
    assert_eq!(api.delete("/api/exchanges/%2F/shop").status, 204);
    let (queue_gone, exchange_gone) =
        common::run_value(Duration::from_secs(30), "passive declares", async {
            let conn = Connection::connect(&server.uri(), ConnectionProperties::default())
                .await
                .unwrap();
            let ch = conn.create_channel().await.unwrap();
            let passive = QueueDeclareOptions {
                passive: true,
                ..Default::default()
            };
            let q = common::amqp::refusal(
                ch.queue_declare("orders".into(), passive, FieldTable::default())
                    .await,
            )
            .0;
            let ch = conn.create_channel().await.unwrap();
            let passive = ExchangeDeclareOptions {
                passive: true,
                ..Default::default()
            };
            let x = common::amqp::refusal(
                ch.exchange_declare(
                    "shop".into(),
                    lapin::ExchangeKind::Topic,
                    passive,
                    FieldTable::default(),
                )
                .await,
            )
            .0;
            (q, x)
        });
    assert_eq!((queue_gone, exchange_gone), (404, 404));
    assert_eq!(
        api.get("/api/queues/%2F/orders").json(),
        json!({"error": "Object Not Found", "reason": "Not Found"})
    );
}

#[test]
fn lists_page_sort_filter_and_cut_columns_as_rabbitmq_does() {
    let server = Server::start();
    let api = Http::ready(server.http_port);
    for name in ["q-a", "q-b", "other", "q-c", "Q-D"] {
        assert_eq!(
            api.put(&format!("/api/queues/%2F/{name}"), "{}").status,
            201
        );
    }
    assert_eq!(
        names(&api.get("/api/queues").json()),
        vec!["Q-D", "other", "q-a", "q-b", "q-c"]
    );
    assert_eq!(
        names(&api.get("/api/queues?sort=name&sort_reverse=true").json()),
        vec!["q-c", "q-b", "q-a", "other", "Q-D"]
    );
    let page = api.get("/api/queues?page=2&page_size=2").json();
    assert_eq!(names(&page), vec!["q-a", "q-b"]);
    for (key, want) in [
        ("page", 2),
        ("page_size", 2),
        ("page_count", 3),
        ("item_count", 2),
        ("filtered_count", 5),
        ("total_count", 5),
    ] {
        assert_eq!(page[key], want, "{key} in {page}");
    }
    let filtered = api.get("/api/queues?page=1&name=q-&use_regex=false").json();
    assert_eq!(names(&filtered), vec!["Q-D", "q-a", "q-b", "q-c"]);
    assert_eq!(filtered["filtered_count"], 4);
    let regex = api
        .get("/api/queues?page=1&name=%5Eq-%5Bab%5D%24&use_regex=true")
        .json();
    assert_eq!(names(&regex), vec!["q-a", "q-b"]);
    assert_eq!(
        api.get("/api/queues/%2F?columns=name,durable&sort=name")
            .json()[0],
        json!({"name": "Q-D", "durable": true})
    );
    let r = api.get("/api/queues?page=0");
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json(),
        json!({"error": "invalid_pagination_parameters",
               "reason": "Invalid pagination parameters: page number 0, page size undefined"})
    );
    assert_eq!(api.get("/api/queues?page=1&page_size=501").status, 400);
    // Exchanges list the default exchange and amq.*, sorted by name.
    let x = names(&api.get("/api/exchanges/%2F").json());
    assert_eq!(x[0], "");
    assert!(x.contains(&"amq.topic".to_string()), "{x:?}");
}

#[test]
fn health_checks_overview_nodes_and_definitions() {
    let server = Server::start();
    let api = Http::ready(server.http_port);
    assert_eq!(
        api.get("/api/aliveness-test/%2F").json(),
        json!({"status": "ok"})
    );
    assert_eq!(api.get("/api/aliveness-test/nope").status, 404);
    assert_eq!(
        api.get("/api/healthchecks/node").json(),
        json!({"status": "ok"})
    );
    assert_eq!(
        api.get("/api/health/checks/alarms").json(),
        json!({"status": "ok"})
    );
    assert_eq!(
        api.get("/api/health/checks/local-alarms").json(),
        json!({"status": "ok"})
    );
    let overview = api.get("/api/overview").json();
    assert_eq!(overview["rabbitmq_version"], "3.10.8");
    assert_eq!(
        overview["object_totals"]["queues"], 1,
        "aliveness-test: {overview}"
    );
    let node_name = overview["node"].as_str().unwrap().to_owned();
    assert_eq!(
        api.get("/api/cluster-name").json(),
        json!({"name": node_name})
    );
    let nodes = api.get("/api/nodes").json();
    assert_eq!(names(&nodes), vec![node_name.clone()]);
    assert_eq!(nodes[0]["running"], true);
    let one = api.get(&format!("/api/nodes/{node_name}")).json();
    assert_eq!(one["os_pid"], server.pid().to_string());
    assert!(overview["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l["protocol"] == "http" && l["port"] == server.http_port));

    // Definitions out and back in (into a vhost of their own).
    assert_eq!(api.put("/api/vhosts/src", "").status, 201);
    assert_eq!(
        api.put("/api/queues/src/kept", r#"{"durable":true}"#)
            .status,
        201
    );
    let defs = api.get("/api/definitions/src").json();
    assert_eq!(names(&json!(defs["queues"])), vec!["kept"]);
    assert!(defs["queues"][0].get("vhost").is_none());
    assert_eq!(api.put("/api/vhosts/dst", "").status, 201);
    let r = api.post("/api/definitions/dst", &defs.to_string());
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(names(&api.get("/api/queues/dst").json()), vec!["kept"]);
    let all = api.get("/api/definitions").json();
    assert!(all["users"]
        .as_array()
        .unwrap()
        .iter()
        .any(|u| u["name"] == "guest"));
    let r = api.post("/api/definitions", "{not json");
    assert_eq!(r.status, 400, "{}", r.body);
}

#[test]
fn bad_requests_are_answered_and_never_take_the_node_down() {
    let server = Server::start();
    let api = Http::ready(server.http_port);
    let not_found = json!({"error": "Object Not Found", "reason": "Not Found"});
    assert_eq!(api.get("/api/nope").json(), not_found);
    assert_eq!(api.get("/api/queues/%2F/missing").json(), not_found);
    assert_eq!(api.delete("/api/queues/%2F/missing").status, 404);
    assert_eq!(api.get("/api/queues/%FF%FE/x").status, 404);
    let r = api.put("/api/queues/nov/q", "{}");
    assert_eq!(
        r.json(),
        json!({"error": "not_found", "reason": "vhost_not_found"})
    );
    for body in [
        "{durable",
        "[1,2]",
        "\"x\"",
        "{\"durable\": 12}",
        "{\"arguments\": 5}",
    ] {
        let r = api.put("/api/queues/%2F/bad", body);
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        assert_eq!(r.json()["error"], "bad_request", "{body}");
    }
    assert_eq!(
        api.put("/api/queues/%2F/bad", "{durable").json()["reason"],
        "not_json"
    );
    let r = api.put(
        "/api/queues/%2F/bad",
        r#"{"arguments":{"x-max-length":"many"}}"#,
    );
    assert_eq!(r.status, 400, "{}", r.body);
    let r = api.put("/api/exchanges/%2F/x", r#"{"type":"bogus"}"#);
    assert_eq!(
        r.json(),
        json!({"error": "bad_request", "reason": "unknown exchange type 'bogus'"})
    );
    assert_eq!(
        api.put("/api/exchanges/%2F/amq.mine", r#"{"type":"direct"}"#)
            .json(),
        json!({"error": "not_authorised", "reason": "Access refused."})
    );
    assert_eq!(api.delete("/api/exchanges/%2F/amq.direct").status, 401);
    for body in [
        r#"{"count":"x","ackmode":"ack_requeue_true","encoding":"auto"}"#,
        r#"{"count":1,"ackmode":"bogus","encoding":"auto"}"#,
        r#"{"count":1,"ackmode":"ack_requeue_true","encoding":"rot13"}"#,
        r#"{"count":1}"#,
    ] {
        assert_eq!(api.put("/api/queues/%2F/g", "{}").status / 100, 2);
        let r = api.post("/api/queues/%2F/g/get", body);
        assert_eq!(r.status, 400, "{body}: {}", r.body);
    }
    for body in [
        r#"{"routing_key":"g","payload":"x","payload_encoding":"base64","properties":{}}"#,
        r#"{"routing_key":"g","payload":"x","payload_encoding":"string","properties":{"delivery_mode":999}}"#,
        r#"{"routing_key":"g","payload":"x","payload_encoding":"string","properties":{"bogus":1}}"#,
        r#"{"routing_key":"g"}"#,
    ] {
        let r = api.post("/api/exchanges/%2F/amq.default/publish", body);
        assert_eq!(r.status, 400, "{body}: {}", r.body);
    }
    for path in [
        "/api/queues?page=x",
        "/api/queues?page=1&page_size=0",
        "/api/queues?page=1&name=(&use_regex=true",
        "/api/queues?sort=a.b.c.d&columns=,,,.",
        "/api/bindings/%2F/e/x/z/q",
        "/api/policies/%2F/p",
    ] {
        let status = api.get(path).status;
        assert!((200..500).contains(&status), "{path}: {status}");
    }
    for body in [
        r#"{"pattern":"(","definition":{"ha-mode":"all"}}"#,
        r#"{"pattern":"x","definition":{"bogus":1}}"#,
        r#"{"pattern":"x","definition":"ha"}"#,
        r#"{"definition":{"ha-mode":"all"}}"#,
    ] {
        let r = api.put("/api/policies/%2F/p", body);
        assert_eq!(r.status, 400, "{body}: {}", r.body);
    }
    let r = api.request("PATCH", "/api/queues/%2F/g", Some("{}"));
    assert_eq!(r.status, 405);
    // Still serving, over HTTP and AMQP.
    assert_eq!(
        api.get("/api/aliveness-test/%2F").json(),
        json!({"status": "ok"})
    );
    run(Duration::from_secs(20), "AMQP still up", async {
        common::amqp::open(&server).await;
    });
}

#[test]
fn connections_channels_and_consumers_are_listed_in_rabbitmq_s_shape() {
    let server = Server::start();
    let api = Http::ready(server.http_port);
    assert_eq!(api.get("/api/connections").json(), json!([]));
    let r = api.put(
        "/api/users/watcher",
        r#"{"password":"pw","tags":"management"}"#,
    );
    assert_eq!(r.status, 201);
    let uri = server.uri();
    let http_port = server.http_port;
    run(
        Duration::from_secs(30),
        "a consumer while the API looks",
        async move {
            let conn = Connection::connect(&uri, ConnectionProperties::default())
                .await
                .unwrap();
            let channel = conn.create_channel().await.unwrap();
            channel
                .queue_declare(
                    "watched".into(),
                    QueueDeclareOptions::default(),
                    FieldTable::default(),
                )
                .await
                .unwrap();
            channel
                .basic_qos(7, BasicQosOptions::default())
                .await
                .unwrap();
            let _consumer = channel
                .basic_consume(
                    "watched".into(),
                    "ctag-1".into(),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await
                .unwrap();
            let looked = tokio::task::spawn_blocking(move || {
                let api = Http::new(http_port);
                let conns = wait_for(&api, "/api/connections", "a connection", |v| {
                    v.as_array().is_some_and(|a| a.len() == 1)
                });
                let channels = wait_for(&api, "/api/channels", "a channel", |v| {
                    v.as_array().is_some_and(|a| a.len() == 1)
                });
                let consumers = wait_for(&api, "/api/consumers", "a consumer", |v| {
                    v.as_array().is_some_and(|a| a.len() == 1)
                });
                let watcher = Http::as_user(http_port, "watcher", "pw");
                (
                    conns,
                    channels,
                    consumers,
                    watcher.get("/api/connections").json(),
                )
            })
            .await
            .unwrap();
            let (conns, channels, consumers, not_theirs) = looked;
            let c = &conns[0];
            assert_eq!(c["user"], "guest");
            assert_eq!(c["vhost"], "/");
            assert_eq!(c["protocol"], "AMQP 0-9-1");
            assert_eq!(c["peer_host"], "127.0.0.1");
            assert_eq!(c["state"], "running");
            assert_eq!(c["client_properties"]["product"], "lapin");
            let ch = &channels[0];
            assert_eq!(ch["prefetch_count"], 7);
            assert_eq!(ch["consumer_count"], 1);
            assert_eq!(ch["connection_details"]["name"], c["name"]);
            let consumer = &consumers[0];
            assert_eq!(consumer["consumer_tag"], "ctag-1");
            assert_eq!(consumer["queue"], json!({"name": "watched", "vhost": "/"}));
            assert_eq!(consumer["channel_details"]["name"], ch["name"]);
            // A management user sees only its own connections.
            assert_eq!(not_theirs, json!([]));
            // Closed through the API: the client is told 320 with RabbitMQ's reason.
            let path = format!(
                "/api/connections/{}",
                c["name"]
                    .as_str()
                    .unwrap()
                    .replace(' ', "%20")
                    .replace('>', "%3E")
            );
            let mut events = conn.events_listener();
            let status = tokio::task::spawn_blocking(move || {
                let watcher = Http::as_user(http_port, "watcher", "pw");
                assert_eq!(watcher.delete(&path).status, 401);
                assert_eq!(Http::new(http_port).get(&path).status, 200);
                Http::new(http_port).delete(&path).status
            })
            .await
            .unwrap();
            assert_eq!(status, 204);
            let closed = loop {
                match tokio::time::timeout(Duration::from_secs(10), events.next()).await {
                    Ok(Some(lapin::Event::Error(e))) => match e.kind() {
                        lapin::ErrorKind::ProtocolError(amqp) => {
                            break (amqp.get_id(), amqp.get_message().to_string())
                        }
                        other => panic!("expected the broker's connection.close, got {other:?}"),
                    },
                    Ok(Some(_)) => continue,
                    other => panic!("the connection was not closed by the broker: {other:?}"),
                }
            };
            assert_eq!(
                closed,
                (
                    320,
                    "CONNECTION_FORCED - Closed via management plugin".into()
                )
            );
        },
    );
    wait_for(&api, "/api/connections", "no connection", |v| {
        v == &json!([])
    });
}
