//! warrenctl against a real node: await_startup, status, cluster_status (text and JSON),
//! and the exit codes and messages of a wrong secret and an unreachable node.

mod common;

use std::process::{Command, Output};

use common::{free_port, Server};

fn warrenctl(server: &Server, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_warrenctl"))
        .args(["-n", &format!("127.0.0.1:{}", server.cluster_port)])
        .arg("--data-dir")
        .arg(&server.data_dir)
        .args(["--timeout", "20"])
        .args(args)
        .env_remove("WARRENMQ_SECRET_FILE")
        .env_remove("WARRENMQ_NODE")
        .output()
        .expect("run warrenctl")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn status_and_cluster_status_of_a_single_node() {
    let server = Server::start_with(&["--node-name", "warren@ctltest"]);
    let out = warrenctl(&server, &["await_startup"]);
    assert!(out.status.success(), "await_startup: {}", stderr(&out));

    let out = warrenctl(&server, &["cluster_status", "--formatter", "json"]);
    assert!(out.status.success(), "cluster_status: {}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    assert_eq!(v["running_nodes"], serde_json::json!(["warren@ctltest"]));
    assert_eq!(v["disk_nodes"], serde_json::json!(["warren@ctltest"]));
    let ports: Vec<u64> = v["listeners"]["warren@ctltest"]
        .as_array()
        .expect("listeners")
        .iter()
        .map(|l| l["port"].as_u64().unwrap())
        .collect();
    assert!(ports.contains(&u64::from(server.port)), "{v}");

    let out = warrenctl(&server, &["cluster_status"]);
    let text = stdout(&out);
    assert!(
        text.starts_with("Cluster status of node warren@ctltest ..."),
        "{text}"
    );
    assert!(text.contains("Running Nodes\n\nwarren@ctltest\n"), "{text}");

    let out = warrenctl(&server, &["status", "--formatter", "json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    assert_eq!(v["pid"].as_u64(), Some(u64::from(server.pid())));
    // rabbitmqctl's keys that scripts read.
    assert_eq!(v["rabbitmq_version"], serde_json::json!("3.10.8"));
    assert_eq!(v["alarms"], serde_json::json!([]));
    assert!(v["listeners"].as_array().is_some_and(|l| l
        .iter()
        .any(|l| l["protocol"] == "amqp" && l["port"] == server.port)));
    assert_eq!(v["is_running"], serde_json::json!(true));
}

#[test]
fn a_wrong_secret_is_refused_and_logged_and_a_dead_node_is_unreachable() {
    let server = Server::start();
    let bad = server.data_dir.join("wrong_secret");
    std::fs::write(&bad, "not-the-secret\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&bad, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let out = warrenctl(&server, &["status", "--secret-file", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(77), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("wrong cluster secret"),
        "{}",
        stderr(&out)
    );
    assert!(
        server.log().contains("refused a cluster call"),
        "the node logs the refusal:\n{}",
        server.log()
    );

    let out = Command::new(env!("CARGO_BIN_EXE_warrenctl"))
        .args(["-n", &format!("127.0.0.1:{}", free_port())])
        .arg("--data-dir")
        .arg(&server.data_dir)
        .args(["--timeout", "5", "status"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(69), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("unable to connect"),
        "{}",
        stderr(&out)
    );

    let out = Command::new(env!("CARGO_BIN_EXE_warrenctl"))
        .args(["no_such_command"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
}

/// Declare (or with `passive`, look up) the durable fanout exchange `kept` on `server`.
fn declare_kept(server: &Server, passive: bool) -> Result<(), String> {
    let uri = server.uri();
    let mut outcome = Err("not run".to_string());
    common::run(
        std::time::Duration::from_secs(30),
        "declare an exchange",
        async {
            let conn = lapin::Connection::connect(&uri, Default::default())
                .await
                .expect("connect");
            let ch = conn.create_channel().await.unwrap();
            let options = lapin::options::ExchangeDeclareOptions {
                passive,
                durable: true,
                ..Default::default()
            };
            outcome = ch
                .exchange_declare(
                    "kept".into(),
                    lapin::ExchangeKind::Fanout,
                    options,
                    Default::default(),
                )
                .await
                .map_err(|e| e.to_string());
        },
    );
    outcome
}

#[test]
fn stop_app_closes_amqp_start_app_serves_the_same_data_and_reset_needs_a_stopped_app() {
    use std::net::TcpStream;
    let server = Server::start();
    let out = warrenctl(&server, &["reset"]);
    assert_eq!(out.status.code(), Some(70), "reset of a running app fails");
    assert!(stderr(&out).contains("stop_app"), "{}", stderr(&out));
    declare_kept(&server, false).unwrap();

    let out = warrenctl(&server, &["stop_app"]);
    assert!(out.status.success(), "stop_app: {}", stderr(&out));
    assert!(
        TcpStream::connect(("127.0.0.1", server.port)).is_err(),
        "AMQP is closed while the app is stopped"
    );
    let out = warrenctl(&server, &["status", "--formatter", "json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    assert_eq!(v["is_running"], serde_json::json!(false), "{v}");

    let out = warrenctl(&server, &["start_app"]);
    assert!(out.status.success(), "start_app: {}", stderr(&out));
    declare_kept(&server, true).expect("the exchange survived stop_app/start_app");

    // Reset wipes the definitions: after it the exchange is gone.
    assert!(warrenctl(&server, &["stop_app"]).status.success());
    let out = warrenctl(&server, &["reset"]);
    assert!(out.status.success(), "reset: {}", stderr(&out));
    assert!(warrenctl(&server, &["start_app"]).status.success());
    let err = declare_kept(&server, true).unwrap_err();
    assert!(err.contains("NOT_FOUND"), "{err}");
}

#[test]
fn exchanges_bindings_and_queues_are_listed_purged_and_deleted_as_rabbitmqctl_does() {
    let server = Server::start();
    let ok = |args: &[&str]| {
        let out = warrenctl(&server, args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        stdout(&out)
    };
    // The AMQP port accepts before the app counts as running.
    ok(&["await_startup"]);
    common::run(
        std::time::Duration::from_secs(30),
        "a queue with a message and a binding",
        async {
            use lapin::options::*;
            let conn = lapin::Connection::connect(&server.uri(), Default::default())
                .await
                .unwrap();
            let ch = conn.create_channel().await.unwrap();
            let args = lapin::types::FieldTable::default();
            ch.queue_declare("ctl-q".into(), QueueDeclareOptions::default(), args.clone())
                .await
                .unwrap();
            ch.queue_bind(
                "ctl-q".into(),
                "amq.direct".into(),
                "k".into(),
                QueueBindOptions::default(),
                args,
            )
            .await
            .unwrap();
            ch.confirm_select(ConfirmSelectOptions::default())
                .await
                .unwrap();
            ch.basic_publish(
                "".into(),
                "ctl-q".into(),
                BasicPublishOptions::default(),
                b"m",
                Default::default(),
            )
            .await
            .unwrap()
            .await
            .unwrap();
        },
    );
    let exchanges: serde_json::Value =
        serde_json::from_str(&ok(&["list_exchanges", "--formatter", "json"])).unwrap();
    for (name, kind) in [
        ("", "direct"),
        ("amq.topic", "topic"),
        ("amq.match", "headers"),
    ] {
        assert!(
            exchanges
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x["name"] == name && x["type"] == kind),
            "{name}: {exchanges}"
        );
    }
    let table = ok(&["list_bindings"]);
    assert!(
        table.starts_with("Listing bindings for vhost /...\nsource_name\tsource_kind"),
        "{table}"
    );
    assert!(
        table.contains("\texchange\tctl-q\tqueue\tctl-q\t[]\n"),
        "the default binding: {table}"
    );
    assert!(
        table.contains("amq.direct\texchange\tctl-q\tqueue\tk\t[]\n"),
        "{table}"
    );
    assert_eq!(
        ok(&["purge_queue", "ctl-q"]),
        "Purging queue 'ctl-q' in vhost '/' ...\n"
    );
    let out = ok(&["delete_queue", "ctl-q"]);
    assert!(
        out.ends_with("Queue was successfully deleted with 0 ready messages\n"),
        "{out}"
    );
    let out = warrenctl(&server, &["delete_queue", "ctl-q"]);
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
    assert!(stderr(&out).contains("Queue not found"));
}
