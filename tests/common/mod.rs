//! Test support: spawn a real `warrenmq-server` process on free ports with its own data
//! dir, wait until it accepts AMQP, and kill it when the handle drops (also on panic).

#![allow(dead_code)]

pub mod amqp;
pub mod browser;
pub mod cluster;
pub mod http;
pub mod traffic;

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// First port and size of the range test servers listen in: below Linux's ephemeral
/// range (32768-60999), so no outgoing connection's local port can take a port between
/// the moment it is picked and the moment the server binds it (an OS-assigned free port
/// could be: a spawned server then failed with "Address already in use").
const PORT_BASE: u32 = 20_000;
const PORT_RANGE: u32 = 12_000;
/// Each test process gets its own slice of the range (by PID), and hands out each port
/// of it once, in turn.
const PORT_SLICE: u32 = 400;

/// A TCP port on 127.0.0.1 that is free now and that no other caller in this process
/// gets (unless the process asks for more than `PORT_SLICE` ports).
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let slices = PORT_RANGE / PORT_SLICE;
    let slice_start = PORT_BASE + (std::process::id() % slices) * PORT_SLICE;
    for _ in 0..PORT_SLICE {
        let port = (slice_start + NEXT.fetch_add(1, Ordering::Relaxed) % PORT_SLICE) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in 127.0.0.1:{slice_start}+{PORT_SLICE}");
}

/// A spawned broker process.
pub struct Server {
    pub child: Option<Child>,
    pub port: u16,
    /// The cluster (gRPC) port: peers and warrenctl.
    #[allow(dead_code)] // Used by some test crates only.
    pub cluster_port: u16,
    /// The management HTTP API's port.
    pub http_port: u16,
    /// The Prometheus endpoint's port.
    pub prometheus_port: u16,
    pub data_dir: PathBuf,
    /// Where its log is written: the data dir unless a test put it elsewhere.
    pub log_dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

impl Server {
    /// Start a node on a fresh temp data dir.
    pub fn start() -> Server {
        Server::start_with(&[])
    }

    /// Start a node on a fresh temp data dir with extra flags.
    pub fn start_with(extra: &[&str]) -> Server {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let mut s = Server::spawn(&dir, free_port(), extra);
        s._tmp = Some(tmp);
        s
    }

    /// Start a node on a fresh temp data dir with extra flags and environment variables.
    pub fn start_with_env(extra: &[&str], env: &[(&str, &str)]) -> Server {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let mut s = Server::spawn_env(&dir, free_port(), free_port(), extra, env);
        s._tmp = Some(tmp);
        s
    }

    /// Start a node on a given data dir and port (restarts reuse both).
    pub fn start_on(data_dir: &Path, port: u16) -> Server {
        Server::spawn(data_dir, port, &[])
    }

    /// Start a node on a given data dir, AMQP and cluster port (a cluster member's
    /// restart keeps its cluster address).
    pub fn start_on_ports(data_dir: &Path, port: u16, cluster_port: u16, extra: &[&str]) -> Server {
        Server::spawn_on(data_dir, port, cluster_port, extra)
    }

    /// [`Server::start_on_ports`] with the log in `log_dir` instead of the data dir (the
    /// power-loss tests keep it off the simulated disk).
    pub fn start_on_ports_logged(
        data_dir: &Path,
        log_dir: &Path,
        port: u16,
        cluster_port: u16,
        extra: &[&str],
    ) -> Server {
        Server::spawn_logged(data_dir, log_dir, port, cluster_port, extra, &[])
    }

    fn spawn(data_dir: &Path, port: u16, extra: &[&str]) -> Server {
        Server::spawn_on(data_dir, port, free_port(), extra)
    }

    fn spawn_on(data_dir: &Path, port: u16, cluster_port: u16, extra: &[&str]) -> Server {
        Server::spawn_env(data_dir, port, cluster_port, extra, &[])
    }

    fn spawn_env(
        data_dir: &Path,
        port: u16,
        cluster_port: u16,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Server {
        Server::spawn_logged(data_dir, data_dir, port, cluster_port, extra, env)
    }

    fn spawn_logged(
        data_dir: &Path,
        log_dir: &Path,
        port: u16,
        cluster_port: u16,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Server {
        std::fs::create_dir_all(data_dir).unwrap();
        std::fs::create_dir_all(log_dir).unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_dir.join(format!("server-{port}.log")))
            .unwrap();
        let http_port = free_port();
        let prometheus_port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_warrenmq-server"))
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--amqp-port", &port.to_string()])
            .args(["--http-port", &http_port.to_string()])
            .args(["--prometheus-port", &prometheus_port.to_string()])
            .args(["--cluster-port", &cluster_port.to_string()])
            .args(extra)
            .env("WARRENMQ_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn warrenmq-server");
        let mut server = Server {
            child: Some(child),
            port,
            cluster_port,
            http_port,
            prometheus_port,
            data_dir: data_dir.to_path_buf(),
            log_dir: log_dir.to_path_buf(),
            _tmp: None,
        };
        server.wait_ready(Duration::from_secs(20));
        server
    }

    fn wait_ready(&mut self, limit: Duration) {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "warrenmq-server exited ({status}) before accepting AMQP on port {}; log:\n{}",
                    self.port,
                    self.log()
                );
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "warrenmq-server did not accept AMQP on port {} within {limit:?}; log:\n{}",
            self.port,
            self.log()
        );
    }

    pub fn uri(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2F", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_dir.join(format!("server-{}.log", self.port)))
            .unwrap_or_default()
    }

    /// SIGKILL the process and wait for it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Keep the data dir alive beyond this handle (for restarts on the same dir).
    pub fn _tmp_take(&mut self) -> Option<tempfile::TempDir> {
        self._tmp.take()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Run an async test body with a bounded wait and a clear timeout message.
pub fn run<F: std::future::Future<Output = ()>>(limit: Duration, what: &str, f: F) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        if tokio::time::timeout(limit, f).await.is_err() {
            panic!("timed out after {limit:?}: {what}");
        }
    });
}

/// [`run`] for a body that returns a value.
pub fn run_value<T, F: std::future::Future<Output = T>>(limit: Duration, what: &str, f: F) -> T {
    let mut out = None;
    run(limit, what, async {
        out = Some(f.await);
    });
    out.expect("finished")
}
