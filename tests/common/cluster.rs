//! A cluster of (three, by default) real `warrenmq-server` processes on loopback, each with fixed ports
//! and its own data dir (kept across restarts), sharing a cluster secret; members are
//! joined, killed and restarted by the tests, and driven with `warrenctl`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use super::{free_port, Server};

/// One member's fixed address (it keeps it across restarts).
pub struct Member {
    pub name: String,
    pub dir: PathBuf,
    pub amqp: u16,
    pub cluster: u16,
    pub server: Option<Server>,
    /// Where the member's log goes when not in its data dir.
    pub log_dir: Option<PathBuf>,
}

pub struct Cluster {
    pub secret: PathBuf,
    pub members: Vec<Member>,
    _tmp: tempfile::TempDir,
}

impl Cluster {
    /// Three standalone nodes sharing a cluster secret (not joined yet).
    pub fn start() -> Cluster {
        Cluster::start_n(3)
    }

    /// `n` standalone nodes (`warren@c1` ...) sharing a cluster secret (not joined yet).
    pub fn start_n(n: usize) -> Cluster {
        let tmp = tempfile::tempdir().unwrap();
        let dirs = (1..=n)
            .map(|i| tmp.path().join(format!("node{i}")))
            .collect();
        Cluster::start_in(tmp, dirs, None)
    }

    /// Standalone nodes (not joined yet) on the given data dirs, one a node, with their
    /// logs in `log_dir` if given; the secret lives in `tmp`, which the cluster keeps.
    pub fn start_in(tmp: tempfile::TempDir, dirs: Vec<PathBuf>, log_dir: Option<&Path>) -> Cluster {
        let secret = tmp.path().join("cluster_secret");
        let mut cluster = Cluster {
            secret,
            members: Vec::new(),
            _tmp: tmp,
        };
        for (i, dir) in dirs.into_iter().enumerate() {
            cluster.members.push(Member {
                name: format!("warren@c{}", i + 1),
                dir,
                amqp: free_port(),
                cluster: free_port(),
                server: None,
                log_dir: log_dir.map(Path::to_path_buf),
            });
            cluster.boot(i);
        }
        cluster
    }

    /// Join members 2.. to member 1 and wait until member 1 reports them all running.
    pub fn join_all(&self) {
        for i in 1..self.members.len() {
            self.join(i, 0);
        }
        let names: Vec<String> = self.members.iter().map(|m| m.name.clone()).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        self.wait_running(0, &names);
    }

    /// Three nodes joined into one cluster, all running.
    pub fn joined() -> Cluster {
        Cluster::joined_n(3)
    }

    /// `n` nodes joined into one cluster, all running.
    pub fn joined_n(n: usize) -> Cluster {
        let c = Cluster::start_n(n);
        c.join_all();
        c
    }

    /// Send `signal` (`STOP`, `CONT`) to member `i`'s process.
    pub fn signal(&self, i: usize, signal: &str) {
        let pid = self.server(i).pid().to_string();
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} {pid}");
    }

    /// (Re)start member `i`'s process on its data dir and ports.
    pub fn boot(&mut self, i: usize) {
        let secret = self.secret.display().to_string();
        let m = &mut self.members[i];
        let args = ["--node-name", &m.name, "--secret-file", &secret];
        let log_dir = m.log_dir.clone().unwrap_or_else(|| m.dir.clone());
        m.server = Some(Server::start_on_ports_logged(
            &m.dir, &log_dir, m.amqp, m.cluster, &args,
        ));
    }

    /// Stop member `i` and start it again on its data dir and ports with `extra` options.
    #[allow(dead_code)]
    pub fn restart_with(&mut self, i: usize, extra: &[&str]) {
        self.kill(i);
        let secret = self.secret.display().to_string();
        let m = &mut self.members[i];
        let mut args = vec!["--node-name", &m.name, "--secret-file", &secret];
        args.extend_from_slice(extra);
        let log_dir = m.log_dir.clone().unwrap_or_else(|| m.dir.clone());
        m.server = Some(Server::start_on_ports_logged(
            &m.dir, &log_dir, m.amqp, m.cluster, &args,
        ));
    }

    pub fn kill(&mut self, i: usize) {
        if let Some(mut s) = self.members[i].server.take() {
            s.kill();
        }
    }

    pub fn server(&self, i: usize) -> &Server {
        self.members[i].server.as_ref().expect("member runs")
    }

    pub fn ctl(&self, i: usize, args: &[&str]) -> Output {
        warrenctl(&self.secret, self.members[i].cluster, args)
    }

    /// Run warrenctl on member `i` and require success.
    pub fn ctl_ok(&self, i: usize, args: &[&str]) -> String {
        let out = self.ctl(i, args);
        assert!(
            out.status.success(),
            "warrenctl {args:?} on {}: {}\nlog:\n{}",
            self.members[i].name,
            String::from_utf8_lossy(&out.stderr),
            self.server(i).log()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Run warrenctl on member `i`, require it to fail, and return its stderr.
    pub fn ctl_err(&self, i: usize, args: &[&str]) -> String {
        let out = self.ctl(i, args);
        assert!(
            !out.status.success(),
            "warrenctl {args:?} must fail: {out:?}"
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    pub fn join(&self, i: usize, to: usize) {
        let target = format!("127.0.0.1:{}", self.members[to].cluster);
        self.ctl_ok(i, &["stop_app"]);
        self.ctl_ok(i, &["join_cluster", &target]);
        self.ctl_ok(i, &["start_app"]);
    }

    /// The running nodes member `i` reports, waiting (bounded) until they are `want`.
    pub fn wait_running(&self, i: usize, want: &[&str]) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut last = String::new();
        while Instant::now() < deadline {
            let out = self.ctl(i, &["cluster_status", "--formatter", "json"]);
            if out.status.success() {
                let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
                let mut running: Vec<String> = v["running_nodes"]
                    .as_array()
                    .expect("running_nodes")
                    .iter()
                    .map(|n| n.as_str().unwrap().to_string())
                    .collect();
                running.sort();
                if running == want {
                    return;
                }
                last = v.to_string();
            } else {
                last = String::from_utf8_lossy(&out.stderr).into_owned();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "{} never reported running nodes {want:?}; last: {last}",
            self.members[i].name
        );
    }
}

pub fn warrenctl(secret: &Path, cluster_port: u16, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_warrenctl"))
        .args(["-n", &format!("127.0.0.1:{cluster_port}")])
        .arg("--secret-file")
        .arg(secret)
        .args(["--timeout", "60"])
        .args(args)
        .env_remove("WARRENMQ_SECRET_FILE")
        .env_remove("WARRENMQ_NODE")
        .output()
        .expect("run warrenctl")
}

/// `name -> (leader, members)` as `warrenctl list_queues` on member `i` reports them.
pub fn queues_seen_by(c: &Cluster, i: usize) -> BTreeMap<String, (String, Vec<String>)> {
    let out = c.ctl_ok(
        i,
        &[
            "list_queues",
            "--formatter",
            "json",
            "name",
            "leader",
            "members",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    v.as_array()
        .expect("queues")
        .iter()
        .map(|q| {
            let mut members: Vec<String> = q["members"]
                .as_array()
                .expect("members")
                .iter()
                .map(|m| m.as_str().unwrap().to_string())
                .collect();
            members.sort();
            (
                q["name"].as_str().unwrap().to_string(),
                (
                    q["leader"].as_str().unwrap_or_default().to_string(),
                    members,
                ),
            )
        })
        .collect()
}

/// The leader of `queue` as `warrenctl list_queues` on member `i` reports it (empty when
/// none is known or the queue is not listed).
pub fn leader_seen_by(c: &Cluster, i: usize, queue: &str) -> String {
    queues_seen_by(c, i)
        .remove(queue)
        .map(|(leader, _)| leader)
        .unwrap_or_default()
}
