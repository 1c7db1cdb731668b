//! The management web UI: served from the binary on every path outside `/api` (the API
//! itself unchanged), with RabbitMQ 4's quorum-queue member endpoints it uses; and the
//! UI driven in a real headless Chromium (scripts/ui_browser.py, selenium) against a
//! three-node cluster: log in, see the nodes, declare a queue, publish and get a
//! message, add an `ha-mode: all` policy in the Admin form and watch the queue's
//! members grow to three, delete the queue; and, on another cluster, the Cluster tab
//! turning a quorum queue's row into an alert when two of its three nodes are killed.
//! Screenshots go to `TARGET_DIR/ui-screenshots/` (`no-majority/` for the second run).

mod common;

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use common::browser::{require_browser, target_dir, Browser};
use common::cluster::Cluster;
use common::http::Http;
use common::Server;
use serde_json::{json, Value};

/// How long the browser run may take (cluster growth included).
const BROWSER_LIMIT: Duration = Duration::from_secs(300);

#[test]
fn the_ui_is_served_from_the_binary_beside_an_unchanged_api() {
    let server = Server::start();
    let api = Http::ready(server.http_port);
    let anonymous = Http::anonymous(server.http_port);

    for path in ["/", "/index.html"] {
        let r = anonymous.get(path);
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
        assert!(
            r.body.contains("<title>WarrenMQ Management</title>"),
            "{}",
            r.body
        );
    }
    // Every script and stylesheet the page names is served, none from elsewhere.
    let page = anonymous.get("/").body;
    let assets: Vec<&str> = page
        .split(['"', '\''])
        .filter(|s| s.starts_with("js/") || s.starts_with("css/") || s.ends_with(".svg"))
        .collect();
    assert!(assets.len() >= 10, "{assets:?}");
    assert!(!page.contains("http://") && !page.contains("https://"));
    for asset in assets {
        let r = anonymous.get(&format!("/{asset}"));
        assert_eq!(r.status, 200, "{asset}");
        let kind = r.header("content-type").unwrap_or_default().to_owned();
        match asset.rsplit('.').next() {
            Some("js") => assert_eq!(kind, "text/javascript; charset=utf-8", "{asset}"),
            Some("css") => assert_eq!(kind, "text/css; charset=utf-8", "{asset}"),
            _ => assert_eq!(kind, "image/svg+xml", "{asset}"),
        }
    }
    assert!(anonymous
        .get("/js/vendor/uPlot.iife.min.js")
        .body
        .contains("uPlot"));
    assert_eq!(anonymous.get("/js/missing.js").status, 404);
    assert_eq!(anonymous.get("/img/rabbitmqlogo.svg").status, 404);
    assert_eq!(anonymous.post("/", "{}").status, 405);

    // The API answers as before: credentials required, RabbitMQ's 404 body.
    assert_eq!(anonymous.get("/api/overview").status, 401);
    assert_eq!(
        api.get("/api/nope").json(),
        json!({"error": "Object Not Found", "reason": "Not Found"})
    );
    assert_eq!(api.get("/api/overview").status, 200);
}

#[test]
fn queue_members_are_listed_and_changed_as_rabbitmq_4_does() {
    let server = Server::start();
    let api = Http::ready(server.http_port);
    let r = api.put(
        "/api/queues/%2F/qq",
        r#"{"durable":true,"arguments":{"x-queue-type":"quorum"}}"#,
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(
        api.put("/api/queues/%2F/cq", r#"{"durable":true}"#).status,
        201
    );
    assert_eq!(
        api.put("/api/queues/%2F/tq", r#"{"durable":false}"#).status,
        201
    );

    // Every member's Raft state; a mirrored-able durable classic queue too.
    for queue in ["qq", "cq"] {
        let status = common::http::wait_for(
            &api,
            &format!("/api/queues/quorum/%2F/{queue}/status"),
            "a leader",
            |v| v[0]["Raft State"] == "leader",
        );
        let rows = status.as_array().expect("a list");
        assert_eq!(rows.len(), 1, "{status}");
        let m = &rows[0];
        assert_eq!(m["Node Name"], api.get("/api/overview").json()["node"]);
        assert_eq!(m["Membership"], "voter");
        for key in ["Term", "Last Log Index", "Commit Index", "Last Applied"] {
            assert!(m[key].as_u64().is_some_and(|n| n > 0), "{key}: {m}");
        }
    }
    // A transient queue has no Raft group; a missing queue is 404.
    let r = api.get("/api/queues/quorum/%2F/tq/status");
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("not replicated"), "{}", r.body);
    assert_eq!(api.get("/api/queues/quorum/%2F/nope/status").status, 404);

    // Member changes: administrators only, a node required, refusals as 503.
    let add = "/api/queues/quorum/%2F/qq/replicas/add";
    assert_eq!(
        api.put(
            "/api/users/watcher",
            r#"{"password":"w","tags":"monitoring"}"#
        )
        .status,
        201
    );
    let watcher = Http::as_user(server.http_port, "watcher", "w");
    assert_eq!(watcher.post(add, r#"{"node":"warren@x"}"#).status, 401);
    let r = api.post(add, "{}");
    assert_eq!(r.status, 400, "{}", r.body);
    let r = api.post(add, r#"{"node":"warren@nowhere"}"#);
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(api.get(add).status, 405);
    let r = api.request(
        "DELETE",
        "/api/queues/quorum/%2F/cq/replicas/delete",
        Some(r#"{"node":"warren@x"}"#),
    );
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(r.body.contains("not a quorum queue"), "{}", r.body);
}

/// The browser tests, one at a time: each runs a three-node cluster and a Chromium on a
/// small machine, and they share the screenshots dir.
static BROWSER_TESTS: Mutex<()> = Mutex::new(());

fn one_browser_test() -> MutexGuard<'static, ()> {
    BROWSER_TESTS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether `dir` holds a screenshot of `step` (`NN-STEP.png`).
fn has_screenshot(dir: &Path, step: &str) -> bool {
    std::fs::read_dir(dir)
        .expect("screenshots dir")
        .filter_map(Result::ok)
        .any(|e| {
            e.file_name()
                .to_string_lossy()
                .ends_with(&format!("-{step}.png"))
        })
}

#[test]
fn a_browser_mirrors_a_queue_through_the_ui_on_a_three_node_cluster() {
    require_browser();
    let _one = one_browser_test();
    let c = Cluster::joined();
    let apis: Vec<Http> = (0..3).map(|i| Http::ready(c.server(i).http_port)).collect();
    // A user who may use AMQP but not the management UI.
    let r = apis[0].put("/api/users/plain", r#"{"password":"plain","tags":""}"#);
    assert_eq!(r.status, 201, "{}", r.body);

    let shots = target_dir().join("ui-screenshots");
    // This run's screenshots only: other scenarios keep theirs in subdirectories.
    if let Ok(entries) = std::fs::read_dir(&shots) {
        for e in entries
            .filter_map(Result::ok)
            .filter(|e| e.path().is_file())
        {
            let _ = std::fs::remove_file(e.path());
        }
    }
    let base = format!("http://127.0.0.1:{}/", c.server(0).http_port);
    let log_path = c.members[0].dir.join("ui-browser.log");
    let mut browser = Browser::start(&base, &shots, 3, "tour", &log_path, BROWSER_LIMIT);
    let (status, output) = browser.finish();
    assert!(
        status.success(),
        "the browser run failed ({status}); screenshots in {}:\n{output}\nlog of node 1:\n{}",
        shots.display(),
        c.server(0).log()
    );
    println!("{output}");
    assert!(output.contains("ui-browser: ok"), "{output}");

    // What the browser did, as another node's API sees it.
    assert_eq!(apis[2].get("/api/queues/%2F/ui.orders").status, 404);
    let policy = apis[2].get("/api/policies/%2F/ui-ha").json();
    assert_eq!(policy["definition"], json!({"ha-mode": "all"}), "{policy}");
    assert_eq!(policy["apply-to"], "queues");
    let users: Value = apis[1].get("/api/users/plain").json();
    assert_eq!(users["name"], "plain");
    for step in [
        "login",
        "overview",
        "message-got",
        "members-grown",
        "cluster-tab",
    ] {
        assert!(
            has_screenshot(&shots, step),
            "no {step} screenshot in {}",
            shots.display()
        );
    }
}

/// A quorum queue on three nodes loses two of them: the survivor's Cluster tab, open in
/// the browser all along, turns the queue's row into an alert ("no majority", 1 of 3
/// online, the dead members shown down) by its own refresh.
#[test]
fn the_cluster_tab_marks_a_queue_whose_majority_died() {
    require_browser();
    let _one = one_browser_test();
    let mut c = Cluster::joined();
    let api = Http::ready(c.server(0).http_port);
    let r = api.put(
        "/api/queues/%2F/ui.quorum",
        r#"{"durable":true,"arguments":{"x-queue-type":"quorum"}}"#,
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let names: Vec<String> = c.members.iter().map(|m| m.name.clone()).collect();
    common::http::wait_for(
        &api,
        "/api/queues/%2F/ui.quorum",
        "the queue on all three nodes, all online, with a leader",
        |q| {
            let sorted = |k: &str| {
                let mut v: Vec<String> = q[k]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|n| n.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                v.sort();
                v
            };
            sorted("members") == names
                && sorted("online") == names
                && q["leader"].as_str().is_some_and(|l| !l.is_empty())
        },
    );

    let shots = target_dir().join("ui-screenshots").join("no-majority");
    let _ = std::fs::remove_dir_all(&shots);
    std::fs::create_dir_all(&shots).expect("screenshots dir");
    let base = format!("http://127.0.0.1:{}/", c.server(0).http_port);
    let log_path = c.members[0].dir.join("ui-browser-no-majority.log");
    let mut browser = Browser::start(&base, &shots, 3, "no-majority", &log_path, BROWSER_LIMIT);
    // The page shows the queue healthy first; then two of its three nodes die.
    browser.wait_for_line("ui-browser: waiting for the kill");
    c.kill(1);
    c.kill(2);
    std::fs::write(shots.join("nodes-killed"), "").expect("tell the browser");
    let (status, output) = browser.finish();
    assert!(
        status.success(),
        "the browser run failed ({status}); screenshots in {}:\n{output}\nlog of node 1:\n{}",
        shots.display(),
        c.server(0).log()
    );
    println!("{output}");
    assert!(output.contains("ui-browser: ok"), "{output}");
    for step in ["cluster-healthy", "no-majority"] {
        assert!(
            has_screenshot(&shots, step),
            "no {step} screenshot in {}",
            shots.display()
        );
    }
    // What the page showed is what the survivor's API says.
    let q = api.get("/api/queues/%2F/ui.quorum").json();
    assert_eq!(q["online"], json!([names[0]]), "{q}");
}
