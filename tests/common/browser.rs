//! The web UI in a real headless Chromium: `scripts/ui_browser.py` (selenium, Debian's
//! chromium and chromium-driver) run as its own process group, its output in a log file
//! the test reads while it runs, the whole group killed when the run ends (also on
//! panic). Screenshots go under `TARGET_DIR/ui-screenshots/`.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The target dir the test binaries were built into (`CARGO_TARGET_DIR` or `target/`).
pub fn target_dir() -> PathBuf {
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
pub fn require_browser() {
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

/// One run of `scripts/ui_browser.py`.
pub struct Browser {
    child: Child,
    log_path: PathBuf,
    started: Instant,
    limit: Duration,
}

impl Browser {
    /// Start `ui_browser.py BASE SHOTS NODES SCENARIO`, its output to `log_path`; the
    /// whole run may take `limit`.
    pub fn start(
        base: &str,
        shots: &Path,
        nodes: usize,
        scenario: &str,
        log_path: &Path,
        limit: Duration,
    ) -> Browser {
        let log = std::fs::File::create(log_path).expect("browser log");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/ui_browser.py");
        let child = Command::new("python3")
            .arg(&script)
            .args([
                base,
                &shots.display().to_string(),
                &nodes.to_string(),
                scenario,
            ])
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("run python3 scripts/ui_browser.py");
        Browser {
            child,
            log_path: log_path.to_path_buf(),
            started: Instant::now(),
            limit,
        }
    }

    /// What the script printed so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    fn overdue(&self) -> bool {
        self.started.elapsed() > self.limit
    }

    /// Wait until the script prints `line` (panics if it ends or the run's time is up
    /// first).
    pub fn wait_for_line(&mut self, line: &str) {
        loop {
            if self.output().contains(line) {
                return;
            }
            if let Some(status) = self.child.try_wait().expect("wait for the browser") {
                panic!(
                    "the browser run ended ({status}) before printing {line:?}:\n{}",
                    self.output()
                );
            }
            assert!(
                !self.overdue(),
                "the browser run did not print {line:?} within {:?}:\n{}",
                self.limit,
                self.output()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Wait for the script to end; its exit status and output (panics when the run's
    /// time is up first).
    pub fn finish(&mut self) -> (ExitStatus, String) {
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for the browser") {
                return (status, self.output());
            }
            assert!(
                !self.overdue(),
                "the browser run did not finish within {:?}:\n{}",
                self.limit,
                self.output()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let group = format!("-{}", self.child.id());
            let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
            let _ = self.child.wait();
        }
    }
}
