//! Resource alarms, as RabbitMQ has them: the memory alarm (resident memory above the
//! high watermark, `vm_memory_high_watermark`) and the disk alarm (free space on the
//! data dir's file system below `disk_free_limit`, 50 MB by default). While either is
//! on, publishing connections are blocked (`connection.blocked`, then not read from)
//! until every alarm is off again.

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::watch;

/// Which alarms are on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Alarms {
    pub memory: bool,
    pub disk: bool,
}

impl Alarms {
    /// Whether publishers are blocked.
    pub fn any(&self) -> bool {
        self.memory || self.disk
    }

    /// The alarms' names as `status` lists them (`memory`, `disk`).
    pub fn names(&self) -> Vec<String> {
        let mut names = Vec::new();
        if self.memory {
            names.push("memory".to_owned());
        }
        if self.disk {
            names.push("disk".to_owned());
        }
        names
    }

    /// RabbitMQ's `connection.blocked` reason: `low on memory`, `low on disk`, or both
    /// joined with ` & `.
    pub fn reason(&self) -> String {
        format!("low on {}", self.names().join(" & "))
    }
}

/// Resident set size of this process, in bytes.
pub fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
        })
        .map(|pages| pages * 4096)
        .unwrap_or(0)
}

fn total_memory_bytes() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| {
                    l.split_whitespace()
                        .nth(1)
                        .and_then(|kb| kb.parse::<u64>().ok())
                })
        })
        .map(|kb| kb * 1024)
        .unwrap_or(u64::MAX)
}

/// The watermark in bytes for a configured value (0 = 40% of total memory).
pub fn watermark(configured: u64) -> u64 {
    if configured != 0 {
        configured
    } else {
        total_memory_bytes() / 10 * 4
    }
}

/// Bytes an unprivileged writer may still use on the file system holding `path`
/// (`statvfs`'s available blocks, as RabbitMQ's disk monitor reads `df`); `None` when
/// it cannot be read.
pub fn free_disk_bytes(path: &std::path::Path) -> Option<u64> {
    let stat = rustix::fs::statvfs(path).ok()?;
    Some(stat.f_bavail.saturating_mul(stat.f_frsize))
}

/// What the monitor watches.
#[derive(Clone, Debug)]
pub struct AlarmLimits {
    /// Resident bytes above which the memory alarm is on.
    pub memory: u64,
    /// Free bytes below which the disk alarm is on (0: never).
    pub disk_free: u64,
    /// Where the node keeps its data.
    pub data_dir: PathBuf,
}

impl AlarmLimits {
    fn check(&self) -> Alarms {
        Alarms {
            memory: resident_bytes() > self.memory,
            // Unreadable free space raises no alarm (RabbitMQ logs and carries on).
            disk: free_disk_bytes(&self.data_dir).is_some_and(|free| free < self.disk_free),
        }
    }
}

/// Check the limits every `period` and publish which alarms are on.
pub fn spawn_monitor(limits: AlarmLimits, period: Duration) -> watch::Receiver<Alarms> {
    let (tx, rx) = watch::channel(limits.check());
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        loop {
            tick.tick().await;
            let now = limits.check();
            if *tx.borrow() != now {
                tracing::warn!(
                    resident = resident_bytes(),
                    memory_limit = limits.memory,
                    disk_free = free_disk_bytes(&limits.data_dir),
                    disk_free_limit = limits.disk_free,
                    memory_alarm = now.memory,
                    disk_alarm = now.disk,
                    "resource alarm"
                );
                if tx.send(now).is_err() {
                    return;
                }
            }
            if tx.is_closed() {
                return;
            }
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_memory_and_free_disk() {
        assert!(resident_bytes() > 0);
        assert_eq!(watermark(123), 123);
        assert!(watermark(0) > 0);
        let dir = tempfile::tempdir().unwrap();
        assert!(free_disk_bytes(dir.path()).is_some_and(|free| free > 0));
        assert_eq!(free_disk_bytes(&dir.path().join("missing")), None);
    }

    #[test]
    fn limits_raise_each_alarm() {
        let dir = tempfile::tempdir().unwrap();
        let limits = |memory, disk_free| AlarmLimits {
            memory,
            disk_free,
            data_dir: dir.path().to_owned(),
        };
        assert_eq!(limits(u64::MAX, 0).check(), Alarms::default());
        let both = limits(1, u64::MAX).check();
        assert_eq!(
            both,
            Alarms {
                memory: true,
                disk: true
            }
        );
        assert_eq!(both.reason(), "low on memory & disk");
        assert_eq!(both.names(), ["memory", "disk"]);
        let disk = limits(u64::MAX, u64::MAX).check();
        assert_eq!((disk.any(), disk.reason().as_str()), (true, "low on disk"));
    }
}
