//! The memory alarm: when the process's resident memory passes the high watermark,
//! publishing connections are blocked until it falls below again (RabbitMQ's
//! `vm_memory_high_watermark` and `connection.blocked`).

use std::time::Duration;

use tokio::sync::watch;

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

/// Check memory every `period` and publish whether the alarm is on.
pub fn spawn_monitor(limit: u64, period: Duration) -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(resident_bytes() > limit);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        loop {
            tick.tick().await;
            let on = resident_bytes() > limit;
            if *tx.borrow() != on {
                tracing::warn!(
                    resident = resident_bytes(),
                    limit,
                    alarm = on,
                    "memory alarm"
                );
                if tx.send(on).is_err() {
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
    fn reads_own_memory() {
        assert!(resident_bytes() > 0);
        assert_eq!(watermark(123), 123);
        assert!(watermark(0) > 0);
    }
}
