//! Definitions with real `warrenmq-server` processes: a RabbitMQ 3.10.8 export imports and
//! its users log in over AMQP with their old passwords; its objects are there (warrenctl's
//! lists) and route as they did; an export imports into a fresh cluster, through a node
//! that may not lead its metadata, as equal definitions; a bad file is refused whole,
//! naming its first bad entry; `--load-definitions` / `WARRENMQ_LOAD_DEFINITIONS` import
//! at boot, and a bad file stops the boot.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::cluster::{warrenctl, Cluster};
use common::{free_port, run, Server};
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Connection, ConnectionProperties};
use serde_json::{json, Value};

/// `rabbitmqctl export_definitions -` of a RabbitMQ 3.10.8 node (tests/fixtures/README.md).
const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/rabbitmq-3.10.8-definitions.json"
);
const IMPORTED: &str = "Successfully started definition import. This process is asynchronous and can take some time.\n";

/// A node as warrenctl reaches it: its process and the cluster secret file.
struct Node<'a> {
    server: &'a Server,
    secret: PathBuf,
}

/// A standalone node (its secret in its data dir).
fn node(server: &Server) -> Node<'_> {
    let secret = server.data_dir.join("cluster_secret");
    Node { server, secret }
}

/// Member `i` of a cluster (the cluster's shared secret).
fn member(c: &Cluster, i: usize) -> Node<'_> {
    let secret = c.secret.clone();
    Node {
        server: c.server(i),
        secret,
    }
}

fn ctl(node: &Node, args: &[&str]) -> Output {
    warrenctl(&node.secret, node.server.cluster_port, args)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn ctl_ok(node: &Node, args: &[&str]) -> String {
    let out = ctl(node, args);
    assert!(
        out.status.success(),
        "warrenctl {args:?}: {}\nlog:\n{}",
        text(&out.stderr),
        node.server.log()
    );
    text(&out.stdout)
}

fn json_of(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

/// A `--formatter json` list, sorted by `key` (lists need not come in one order).
fn list(server: &Node, args: &[&str], key: &str) -> Vec<Value> {
    let mut args = args.to_vec();
    args.extend(["--formatter", "json"]);
    let mut rows = json_of(&ctl_ok(server, &args))
        .as_array()
        .expect("a JSON list")
        .clone();
    rows.sort_by_key(|r| r[key].to_string());
    rows
}

fn export(server: &Node) -> Value {
    json_of(&ctl_ok(server, &["export_definitions", "-"]))
}

async fn login(port: u16, user: &str, pass: &str) -> Result<Connection, lapin::Error> {
    let uri = format!("amqp://{user}:{pass}@127.0.0.1:{port}/defs-shop");
    Connection::connect(&uri, ConnectionProperties::default()).await
}

/// Whether `user` logs in to vhost defs-shop with `pass` (the connection is closed again).
fn logs_in(port: u16, user: &str, pass: &str) -> bool {
    common::run_value(Duration::from_secs(30), "log in", async {
        match login(port, user, pass).await {
            Ok(conn) => {
                let _ = conn.close(200, "bye".into()).await;
                true
            }
            Err(_) => false,
        }
    })
}

/// The fixture's objects exist, as warrenctl lists them.
fn assert_fixture_objects(server: &Node) {
    let users: Vec<(String, Value)> = list(server, &["list_users"], "user")
        .into_iter()
        .map(|u| (u["user"].as_str().unwrap().to_owned(), u["tags"].clone()))
        .collect();
    for (name, tags) in [
        ("defs-alice", json!(["administrator"])),
        ("defs-bob", json!(["monitoring", "management"])),
        ("defs-carol", json!([])),
        ("defs-dave", json!(["policymaker"])),
    ] {
        assert!(users.contains(&(name.into(), tags.clone())), "{users:?}");
    }
    let p = ["-p", "defs-shop"];
    // What the file holds (a test may have added more).
    let perms = list(server, &["list_permissions", p[0], p[1]], "user");
    for want in [
        json!({"user": "defs-alice", "configure": ".*", "write": ".*", "read": ".*"}),
        json!({"user": "defs-bob", "configure": "", "write": "", "read": ".*"}),
        json!({"user": "defs-carol", "configure": "^carol\\.", "write": "^orders$", "read": "^carol\\."}),
    ] {
        assert!(perms.contains(&want), "{want} in {perms:?}");
    }
    let topic = list(server, &["list_topic_permissions", p[0], p[1]], "user");
    assert_eq!(
        topic,
        vec![
            json!({"user": "defs-carol", "exchange": "amq.topic", "write": "^orders\\.{username}\\.", "read": "^orders\\."})
        ]
    );
    let policies = list(server, &["list_policies", p[0], p[1]], "name");
    let policy = |name: &str| {
        let found = policies.iter().find(|p| p["name"] == name);
        found
            .unwrap_or_else(|| panic!("policy {name} in {policies:?}"))
            .clone()
    };
    assert_eq!(policy("defs-ae")["pattern"], "^orders$");
    assert_eq!(
        policy("defs-ae")["definition"],
        json!({"alternate-exchange": "unrouted"})
    );
    assert_eq!(policy("defs-balance")["apply-to"], "queues");
    assert_eq!(policy("defs-balance")["priority"], 2);
    let queues = list(server, &["list_queues", p[0], p[1], "name", "type"], "name");
    assert_eq!(
        queues,
        vec![
            json!({"name": "lazy.archive", "type": "classic"}),
            json!({"name": "orders.created", "type": "classic"}),
            json!({"name": "qq.payments", "type": "quorum"}),
            json!({"name": "unrouted.log", "type": "classic"}),
        ]
    );
    let exchanges = list(server, &["list_exchanges", p[0], p[1]], "name");
    for x in [
        json!({"name": "events", "type": "headers"}),
        json!({"name": "orders", "type": "topic"}),
        json!({"name": "unrouted", "type": "fanout"}),
    ] {
        assert!(exchanges.contains(&x), "{x} in {exchanges:?}");
    }
    // The bindings of the file, but for the two of the internal exchange RabbitMQ left out.
    let bindings: Vec<(String, String, String)> =
        list(server, &["list_bindings", p[0], p[1]], "destination_name")
            .into_iter()
            .filter(|b| b["source_name"] != "")
            .map(|b| {
                let s = |k: &str| b[k].as_str().unwrap().to_owned();
                (s("source_name"), s("destination_name"), s("routing_key"))
            })
            .collect();
    let mut bindings = bindings;
    bindings.sort();
    let want = [
        ("events", "lazy.archive", ""),
        ("orders", "orders.created", "orders.created.#"),
        ("orders", "qq.payments", "orders.*.paid"),
        ("unrouted", "unrouted.log", ""),
    ];
    let want: Vec<(String, String, String)> = want
        .iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect();
    assert_eq!(bindings, want);
    let limits = json_of(&ctl_ok(
        server,
        &["list_vhost_limits", p[0], p[1], "--formatter", "json"],
    ));
    let limits = json_of(limits["value"].as_str().expect("limits"));
    assert_eq!(limits, json!({"max-connections": 100, "max-queues": 50}));
}

/// As defs-alice: publish through the file's exchanges (a topic binding, the alternate
/// exchange its policy sets, a headers binding) and get each message from its queue.
async fn route_as_alice(port: u16) {
    let conn = login(port, "defs-alice", "alice-secret-1")
        .await
        .expect("defs-alice logs in with her RabbitMQ password");
    let ch = conn.create_channel().await.unwrap();
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let mut archive = FieldTable::default();
    archive.insert("kind".into(), AMQPValue::LongString("archive".into()));
    let sends = [
        (
            "orders",
            "orders.created.eu",
            FieldTable::default(),
            "orders.created",
        ),
        (
            "orders",
            "orders.eu.paid",
            FieldTable::default(),
            "qq.payments",
        ),
        (
            "orders",
            "no.binding",
            FieldTable::default(),
            "unrouted.log",
        ),
        ("events", "", archive, "lazy.archive"),
    ];
    for (exchange, key, headers, queue) in &sends {
        let confirm = ch
            .basic_publish(
                (*exchange).into(),
                (*key).into(),
                BasicPublishOptions::default(),
                queue.as_bytes(),
                BasicProperties::default()
                    .with_delivery_mode(2)
                    .with_headers(headers.clone()),
            )
            .await
            .unwrap();
        assert!(confirm.await.unwrap().is_ack(), "{exchange} {key}");
    }
    for (_, _, _, queue) in &sends {
        let got = ch
            .basic_get((*queue).into(), BasicGetOptions { no_ack: true })
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("a message in {queue}"));
        assert_eq!(got.delivery.data, queue.as_bytes());
    }
    let _ = conn.close(200, "bye".into()).await;
}

#[test]
fn a_rabbitmq_3_10_export_imports_and_its_users_log_in_with_their_old_passwords() {
    let server = Server::start();
    let n = node(&server);
    ctl_ok(&n, &["await_startup"]);
    let out = ctl(&n, &["import_definitions", FIXTURE]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        text(&out.stdout),
        format!("Importing definitions in JSON from a file at \"{FIXTURE}\" ...\n{IMPORTED}")
    );
    // The two bindings of the internal exchange RabbitMQ left out of its own export.
    let warnings = text(&out.stderr);
    assert_eq!(warnings.matches("skipped, as RabbitMQ skips it").count(), 2);
    assert!(
        warnings.contains("bindings[1] \"internal.audit\""),
        "{warnings}"
    );
    assert_fixture_objects(&n);

    for (user, pass) in [
        ("defs-alice", "alice-secret-1"),
        ("defs-bob", "bob-secret-2"),
        ("defs-carol", "carol-secret-3"),
    ] {
        assert!(logs_in(server.port, user, pass), "{user} logs in");
        let out = ctl_ok(&n, &["authenticate_user", user, pass]);
        assert!(out.contains("Success"), "{out}");
    }
    assert!(!logs_in(server.port, "defs-alice", "bob-secret-2"));
    assert!(
        !logs_in(server.port, "defs-dave", ""),
        "a cleared password lets nobody in"
    );
    run(
        Duration::from_secs(60),
        "route as alice",
        route_as_alice(server.port),
    );
}

#[test]
fn an_export_imports_into_a_fresh_cluster_as_equal_definitions() {
    let a_server = Server::start();
    let a = node(&a_server);
    ctl_ok(&a, &["await_startup"]);
    ctl_ok(&a, &["import_definitions", FIXTURE]);
    // Made on WarrenMQ: a user with a password hashed here, permissions, limits, a policy.
    ctl_ok(&a, &["add_user", "defs-erin", "erin-secret-5"]);
    let perms = ["-p", "defs-shop", "defs-erin", ".*", ".*", ".*"];
    ctl_ok(&a, &[&["set_permissions"][..], &perms].concat());
    ctl_ok(
        &a,
        &["set_user_limits", "defs-erin", r#"{"max-channels":7}"#],
    );
    ctl_ok(
        &a,
        &[
            "set_policy",
            "-p",
            "defs-shop",
            "defs-ha",
            "^lazy",
            r#"{"ha-mode":"all"}"#,
        ],
    );

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("warren.json");
    let path_text = path.to_str().unwrap();
    let out = ctl_ok(&a, &["export_definitions", path_text]);
    assert_eq!(
        out,
        format!("Exporting definitions in JSON to a file at \"{path_text}\" ...\n")
    );
    let file = json_of(&std::fs::read_to_string(&path).unwrap());
    assert_eq!(export(&a), file, "to a file and to standard output alike");
    let wrapped = json_of(&ctl_ok(
        &a,
        &["export_definitions", "-", "--formatter", "json"],
    ));
    assert_eq!(json_of(wrapped["message"].as_str().expect("message")), file);
    let erin = file["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "defs-erin")
        .expect("erin exported");
    assert_eq!(erin["hashing_algorithm"], "rabbit_password_hashing_sha256");
    assert!(!erin["password_hash"]
        .as_str()
        .unwrap()
        .contains("erin-secret"));
    assert_eq!(erin["limits"], json!({"max-channels": 7}));

    let c = Cluster::joined_n(2);
    let out = c.ctl_ok(1, &["import_definitions", path_text]);
    assert!(out.ends_with(IMPORTED), "{out}");
    for i in 0..2 {
        assert_eq!(
            export(&member(&c, i)),
            file,
            "node {i} exports what was imported"
        );
    }
    assert_fixture_objects(&member(&c, 0));
    assert!(logs_in(c.server(0).port, "defs-erin", "erin-secret-5"));
    assert!(logs_in(c.server(1).port, "defs-carol", "carol-secret-3"));
    run(
        Duration::from_secs(60),
        "route on the cluster",
        route_as_alice(c.server(0).port),
    );
    // Importing it again changes nothing.
    c.ctl_ok(0, &["import_definitions", path_text]);
    assert_eq!(export(&member(&c, 1)), file);
}

/// The fixture with `edit` applied to its JSON.
fn edited(edit: impl FnOnce(&mut Value)) -> String {
    let mut v = json_of(&std::fs::read_to_string(FIXTURE).unwrap());
    edit(&mut v);
    v.to_string()
}

#[test]
fn a_bad_file_is_refused_whole_naming_its_first_bad_entry() {
    let server = Server::start();
    let n = node(&server);
    ctl_ok(&n, &["await_startup"]);
    let before = export(&n);
    let fixture = std::fs::read_to_string(FIXTURE).unwrap();
    let missing_vhost = json!({"user": "defs-alice", "vhost": "defs-nowhere",
                               "configure": ".*", "write": ".*", "read": ".*"});
    let cases: Vec<(&str, String, i32, &str)> = vec![
        ("malformed JSON", fixture[..300].to_owned(), 65, "Failed to deserialise input"),
        ("not an object", "[1, 2]".into(), 70, "{:badmap, [1,2]}"),
        (
            "unknown hashing algorithm",
            edited(|v| v["users"][1]["hashing_algorithm"] = json!("rabbit_password_hashing_bcrypt")),
            69,
            "users[1] \"defs-bob\": hashing_algorithm 'rabbit_password_hashing_bcrypt' is not one WarrenMQ knows",
        ),
        (
            "permission for a missing vhost",
            edited(|v| v["permissions"].as_array_mut().unwrap().push(missing_vhost)),
            69,
            "permissions[3] \"defs-alice\": vhost 'defs-nowhere' not found",
        ),
        (
            "a queue in a missing vhost, after every other entry",
            edited(|v| v["queues"][3]["vhost"] = json!("defs-nowhere")),
            69,
            "queues[3] \"orders.created\": no vhost 'defs-nowhere'",
        ),
        (
            "two bad entries",
            edited(|v| {
                v["permissions"][1]["read"] = json!("[");
                v["bindings"][0]["destination_type"] = json!("topic");
            }),
            69,
            "permissions[1] \"defs-bob\": regular expression '[' is invalid",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (what, contents, code, message) in cases {
        let path = dir.path().join("bad.json");
        std::fs::write(&path, contents).unwrap();
        let path = path.to_str().unwrap();
        let out = ctl(&n, &["import_definitions", path]);
        assert_eq!(out.status.code(), Some(code), "{what}: {out:?}");
        assert_eq!(
            text(&out.stdout),
            format!("Importing definitions in JSON from a file at \"{path}\" ...\n"),
            "{what}"
        );
        let stderr = text(&out.stderr);
        assert!(stderr.contains(message), "{what}: {stderr}");
        assert_eq!(export(&n), before, "{what}: nothing of it stays");
        assert!(
            !logs_in(server.port, "defs-alice", "alice-secret-1"),
            "{what}"
        );
    }
    let vhosts = list(&n, &["list_vhosts"], "name");
    assert_eq!(vhosts, vec![json!({"name": "/"})]);
    // The node is none the worse: the good file imports.
    ctl_ok(&n, &["import_definitions", FIXTURE]);
    assert!(logs_in(server.port, "defs-alice", "alice-secret-1"));
}

#[test]
fn definitions_load_at_boot_from_a_flag_each_start_or_from_a_directory_in_the_environment() {
    let flag = ["--load-definitions", FIXTURE];
    let mut server = Server::start_with(&flag);
    let port = server.port;
    // No await_startup: the node serves AMQP only once the file is imported.
    run(Duration::from_secs(60), "publish as alice", async {
        let conn = login(port, "defs-alice", "alice-secret-1")
            .await
            .expect("defs-alice logs in as soon as AMQP is served");
        let ch = conn.create_channel().await.unwrap();
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        let confirm = ch
            .basic_publish(
                "orders".into(),
                "orders.created.kept".into(),
                BasicPublishOptions::default(),
                b"kept",
                BasicProperties::default().with_delivery_mode(2),
            )
            .await
            .unwrap();
        assert!(confirm.await.unwrap().is_ack());
    });
    assert_fixture_objects(&node(&server));
    // A restart imports the file again, over what it made: kept, message and all.
    let tmp = server._tmp_take();
    let (dir, cluster_port) = (server.data_dir.clone(), server.cluster_port);
    server.kill();
    let server = Server::start_on_ports(&dir, port, cluster_port, &flag);
    run(Duration::from_secs(60), "the message survives", async {
        let conn = login(port, "defs-alice", "alice-secret-1").await.unwrap();
        let ch = conn.create_channel().await.unwrap();
        let got = ch
            .basic_get("orders.created".into(), BasicGetOptions { no_ack: true })
            .await
            .unwrap()
            .expect("the message published before the restart");
        assert_eq!(got.delivery.data, b"kept");
    });
    assert_eq!(server.log().matches("definitions loaded").count(), 2);
    drop(server);
    drop(tmp);

    // A directory: its *.json files in name order (the second needs the first's vhost).
    let defs = tempfile::tempdir().unwrap();
    std::fs::copy(FIXTURE, defs.path().join("10-shop.json")).unwrap();
    let frank = json!({
        "users": [{"name": "defs-frank", "password": "frank-pw", "tags": []}],
        "permissions": [{"user": "defs-frank", "vhost": "defs-shop",
                         "configure": ".*", "write": ".*", "read": ".*"}],
    });
    std::fs::write(defs.path().join("20-frank.json"), frank.to_string()).unwrap();
    std::fs::write(defs.path().join("notes.txt"), "not definitions").unwrap();
    let env = [("WARRENMQ_LOAD_DEFINITIONS", defs.path().to_str().unwrap())];
    let server = Server::start_with_env(&[], &env);
    assert!(logs_in(server.port, "defs-frank", "frank-pw"));
    assert!(logs_in(server.port, "defs-carol", "carol-secret-3"));
    let export = export(&node(&server));
    let frank_hash = export["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "defs-frank")
        .expect("frank")["password_hash"]
        .clone();
    assert!(
        !frank_hash.as_str().unwrap().contains("frank-pw"),
        "a plain password is stored hashed"
    );
}

/// A child process killed when dropped (also when an assertion fails).
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn boot_with_bad_file(dir: &Path, flags: &[&str]) -> (Option<i32>, String) {
    let log = dir.join("server.log");
    let child = Command::new(env!("CARGO_BIN_EXE_warrenmq-server"))
        .arg("--data-dir")
        .arg(dir.join("node"))
        .args(["--amqp-port", &free_port().to_string()])
        .args(["--http-port", &free_port().to_string()])
        .args(["--cluster-port", &free_port().to_string()])
        .args(flags)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("spawn warrenmq-server");
    let mut child = Killed(child);
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "a bad definitions file must stop the boot, not hang it:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    (status.code(), std::fs::read_to_string(&log).unwrap())
}

#[test]
fn a_bad_file_at_boot_stops_the_node_with_its_first_bad_entry_named() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    let text = edited(|v| v["queues"][1]["arguments"]["x-message-ttl"] = json!(1000));
    std::fs::write(&bad, text).unwrap();
    let (code, log) =
        boot_with_bad_file(dir.path(), &["--load-definitions", bad.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{log}");
    let want = format!(
        "cannot load definitions from {}: queues[1] \"qq.payments\": invalid arg 'x-message-ttl'",
        bad.display()
    );
    assert!(log.contains(&want), "{want}\nin:\n{log}");
    let (code, log) = boot_with_bad_file(dir.path(), &["--load-definitions", "/no/such/file.json"]);
    assert_eq!(code, Some(1), "{log}");
    assert!(
        log.contains("cannot load definitions from /no/such/file.json"),
        "{log}"
    );
}
