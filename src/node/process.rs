//! This process's figures from Linux's `/proc`: resident memory, open and allowed file
//! descriptors, threads (0 where `/proc` does not tell).

/// What the process uses and may use.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Figures {
    pub resident_memory_bytes: u64,
    pub open_fds: u64,
    pub max_fds: u64,
    pub threads: u64,
    pub max_threads: u64,
}

/// The first number after `key` on a line of `text` that starts with it.
fn field(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

pub(super) fn figures() -> Figures {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let open_fds = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64);
    Figures {
        resident_memory_bytes: crate::broker::alarm::resident_bytes(),
        open_fds,
        max_fds: field(&read("/proc/self/limits"), "Max open files").unwrap_or(0),
        threads: field(&read("/proc/self/status"), "Threads:").unwrap_or(0),
        max_threads: read("/proc/sys/kernel/threads-max")
            .trim()
            .parse()
            .unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_of_this_process() {
        let f = figures();
        assert!(f.open_fds > 0 && f.max_fds >= f.open_fds, "{f:?}");
        assert!(f.threads >= 1 && f.max_threads >= f.threads, "{f:?}");
        assert!(f.resident_memory_bytes > 0);
        assert_eq!(
            field("Max open files  1024  4096  files", "Max open files"),
            Some(1024)
        );
    }
}
