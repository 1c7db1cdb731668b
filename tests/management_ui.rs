//! The management web UI: served from the binary on every path outside `/api` (the API
//! itself unchanged), with RabbitMQ 4's quorum-queue member endpoints it uses; and the
//! UI driven in a real headless Chromium (scripts/ui_browser.py, selenium) against a
//! three-node cluster: log in, see the nodes, declare a queue, publish and get a
//! message, add an `ha-mode: all` policy in the Admin form and watch the queue's
//! members grow to three, delete the queue. Screenshots go to
//! `TARGET_DIR/ui-screenshots/`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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

/// The target dir the test binaries were built into (`CARGO_TARGET_DIR` or `target/`).
fn target_dir() -> PathBuf {
    let server = Path::new(env!("CARGO_BIN_EXE_warrenmq-server"));
    server
        .parent()
        .and_then(Path::parent)
        .expect("the server binary is in TARGET/PROFILE/")
        .to_path_buf()
}

fn on_path(name: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
        .unwrap_or(false)
        || Path::new("/usr/bin").join(name).is_file()
}

/// Chromium, its driver and selenium, or a panic saying how to get them.
fn require_browser() {
    let chromium = on_path("chromium") || on_path("chromium-browser");
    let driver = on_path("chromedriver");
    let selenium = Command::new("python3")
        .args(["-c", "import selenium"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        chromium && driver && selenium,
        "the UI browser test needs Debian's chromium ({chromium}) and chromium-driver \
         ({driver}) and selenium for python3 ({selenium}): run scripts/install-test-deps.sh"
    );
}

/// The browser script's process group, killed whole (chromedriver and Chromium with it)
/// when the test ends, also on panic.
struct Browser(Child);

impl Drop for Browser {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let group = format!("-{}", self.0.id());
            let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
            let _ = self.0.wait();
        }
    }
}

#[test]
fn a_browser_mirrors_a_queue_through_the_ui_on_a_three_node_cluster() {
    use std::os::unix::process::CommandExt;

    require_browser();
    let c = Cluster::joined();
    let apis: Vec<Http> = (0..3).map(|i| Http::ready(c.server(i).http_port)).collect();
    // A user who may use AMQP but not the management UI.
    let r = apis[0].put("/api/users/plain", r#"{"password":"plain","tags":""}"#);
    assert_eq!(r.status, 201, "{}", r.body);

    let shots = target_dir().join("ui-screenshots");
    let _ = std::fs::remove_dir_all(&shots);
    let log_path = c.members[0].dir.join("ui-browser.log");
    let log = std::fs::File::create(&log_path).expect("browser log");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/ui_browser.py");
    let base = format!("http://127.0.0.1:{}/", c.server(0).http_port);
    let child = Command::new("python3")
        .arg(&script)
        .args([&base, &shots.display().to_string(), "3"])
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .process_group(0)
        .spawn()
        .expect("run python3 scripts/ui_browser.py");
    let mut browser = Browser(child);
    let started = Instant::now();
    let status = loop {
        if let Some(status) = browser.0.try_wait().expect("wait for the browser") {
            break status;
        }
        if started.elapsed() > BROWSER_LIMIT {
            drop(browser);
            panic!(
                "the browser run did not finish within {BROWSER_LIMIT:?}:\n{}",
                std::fs::read_to_string(&log_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let output = std::fs::read_to_string(&log_path).unwrap_or_default();
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
        let found = std::fs::read_dir(&shots)
            .expect("screenshots dir")
            .filter_map(Result::ok)
            .any(|e| {
                e.file_name()
                    .to_string_lossy()
                    .ends_with(&format!("-{step}.png"))
            });
        assert!(found, "no {step} screenshot in {}", shots.display());
    }
}
