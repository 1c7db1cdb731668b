//! Command-line options of warrenmq-perf, named after RabbitMQ PerfTest's where PerfTest has one.

use clap::{Parser, ValueEnum};

/// The URI used when no `--uri` is given.
pub const DEFAULT_URI: &str = "amqp://guest:guest@127.0.0.1:5672/%2F";

/// A PerfTest-like AMQP 0-9-1 load generator.
///
/// Declares the queue(s), starts the consumers, then the producers, runs for
/// `--time` seconds while printing one progress line per interval to stderr,
/// and prints a summary: producer and consumer msg/s, end-to-end latency
/// (consumer receive time minus the send timestamp carried in the first
/// 8 bytes of every body) and, with confirms, confirm latency.
#[derive(Parser, Debug, Clone)]
#[command(name = "warrenmq-perf", version)]
pub struct Args {
    /// AMQP URI to connect to; repeat it to spread producers and consumers
    /// round-robin over several nodes; the first one also declares the queues unless
    /// --declare-uri is given
    /// [default: amqp://guest:guest@127.0.0.1:5672/%2F]
    #[arg(long = "uri", value_name = "URI")]
    pub uris: Vec<String>,

    /// AMQP URI for the producers only (repeatable, round-robin); falls back to --uri
    #[arg(long = "producer-uri", value_name = "URI")]
    pub producer_uris: Vec<String>,

    /// AMQP URI for the consumers only (repeatable, round-robin); falls back to --uri
    #[arg(long = "consumer-uri", value_name = "URI")]
    pub consumer_uris: Vec<String>,

    /// AMQP URI through which the queues are declared and deleted (repeatable: queue i
    /// goes through the (i mod n)-th one, e.g. to place quorum queue leaders with a
    /// client-local locator); falls back to the first --uri, then the first
    /// --producer-uri, then the first --consumer-uri
    #[arg(long = "declare-uri", value_name = "URI")]
    pub declare_uris: Vec<String>,

    /// Number of producers (one connection and channel each)
    #[arg(short = 'x', long, default_value_t = 1)]
    pub producers: usize,

    /// Number of consumers (one connection and channel each)
    #[arg(short = 'y', long, default_value_t = 1)]
    pub consumers: usize,

    /// Message body size in bytes; the body starts with an 8-byte big-endian
    /// send timestamp (ns since the Unix epoch), so bodies are at least 8 bytes
    #[arg(short = 's', long, default_value_t = 12)]
    pub size: usize,

    /// Publisher confirms: at most this many unconfirmed messages per producer
    /// (0 = no confirms)
    #[arg(short = 'c', long, default_value_t = 0, value_name = "WINDOW")]
    pub confirm: usize,

    /// Per-producer rate limit in msg/s (0 = unlimited)
    #[arg(short = 'r', long, default_value_t = 0.0)]
    pub rate: f64,

    /// Consumer prefetch (basic.qos prefetch-count; 0 = unlimited)
    #[arg(short = 'q', long, default_value_t = 0)]
    pub qos: u16,

    /// Acknowledge every N deliveries with multiple=true (1 = one basic.ack per delivery)
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub multi_ack_every: u64,

    /// Consume with auto-ack (no-ack) instead of manual acks
    #[arg(short = 'a', long)]
    pub auto_ack: bool,

    /// Message flags (repeatable): persistent (delivery_mode 2), mandatory
    #[arg(short = 'f', long = "flag", value_enum, value_name = "FLAG")]
    pub flags: Vec<Flag>,

    /// Same as `-f persistent`
    #[arg(long)]
    pub persistent: bool,

    /// Run time in seconds (0 = until Ctrl-C)
    #[arg(short = 'z', long, default_value_t = 10.0, value_name = "SECONDS")]
    pub time: f64,

    /// Queue name (the base name with --queues)
    #[arg(short = 'u', long, default_value = "perf-test")]
    pub queue: String,

    /// Use N queues named <queue>-0 .. <queue>-(N-1); producers and consumers
    /// are spread round-robin over them
    #[arg(long, value_name = "N")]
    pub queues: Option<usize>,

    /// Queue type to declare (x-queue-type); left to the broker's default when absent
    #[arg(long, value_enum)]
    pub queue_type: Option<QueueType>,

    /// Declare durable queues (the default)
    #[arg(long, conflicts_with = "transient")]
    pub durable: bool,

    /// Declare non-durable queues
    #[arg(long)]
    pub transient: bool,

    /// Do not declare the queues: they already exist
    #[arg(long)]
    pub predeclared: bool,

    /// Delete the queues this run declared when it ends
    #[arg(long)]
    pub delete_queues: bool,

    /// Seconds between progress lines on stderr
    #[arg(short = 'i', long, default_value_t = 1.0, value_name = "SECONDS")]
    pub interval: f64,

    /// Print the summary as one JSON object on stdout
    #[arg(long)]
    pub json: bool,

    /// Label of this run, shown in progress lines and the summary
    #[arg(long)]
    pub id: Option<String>,
}

/// A message flag, as PerfTest's `-f`.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flag {
    /// delivery_mode 2
    Persistent,
    /// basic.publish mandatory=true (unroutable messages are returned)
    Mandatory,
}

/// The `x-queue-type` argument.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueType {
    Classic,
    Quorum,
}

impl QueueType {
    pub fn as_str(self) -> &'static str {
        match self {
            QueueType::Classic => "classic",
            QueueType::Quorum => "quorum",
        }
    }
}

/// The validated settings of one run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Producer i connects to `producer_uris[i % len]`.
    pub producer_uris: Vec<String>,
    /// Consumer j connects to `consumer_uris[j % len]`.
    pub consumer_uris: Vec<String>,
    /// Queue k is declared (and deleted) through `declare_uris[k % len]`.
    pub declare_uris: Vec<String>,
    pub producers: usize,
    pub consumers: usize,
    pub size: usize,
    pub confirm: usize,
    pub rate: f64,
    pub qos: u16,
    pub multi_ack_every: u64,
    pub auto_ack: bool,
    pub persistent: bool,
    pub mandatory: bool,
    /// `None` = until Ctrl-C.
    pub time: Option<f64>,
    pub queue_names: Vec<String>,
    pub queue_type: Option<QueueType>,
    pub durable: bool,
    pub predeclared: bool,
    pub delete_queues: bool,
    pub interval: f64,
    pub json: bool,
    pub id: String,
}

impl Args {
    /// Checks the combination of options and resolves the defaults.
    pub fn into_settings(self) -> Result<Settings, String> {
        if !(self.rate >= 0.0 && self.rate.is_finite()) {
            return Err("--rate must be a finite number >= 0".into());
        }
        if !(self.time >= 0.0 && self.time.is_finite()) {
            return Err("--time must be a finite number of seconds >= 0".into());
        }
        if !(self.interval > 0.0 && self.interval.is_finite()) {
            return Err("--interval must be > 0".into());
        }
        if self.multi_ack_every == 0 {
            return Err("--multi-ack-every must be >= 1".into());
        }
        if self.producers == 0 && self.consumers == 0 {
            return Err("nothing to do: --producers and --consumers are both 0".into());
        }
        if !self.auto_ack && self.qos > 0 && self.multi_ack_every > u64::from(self.qos) {
            return Err(format!(
                "--multi-ack-every {} is larger than --qos {}: consumers would stall waiting \
                 for deliveries the broker will not send before they ack",
                self.multi_ack_every, self.qos
            ));
        }
        let durable = !self.transient;
        if self.queue_type == Some(QueueType::Quorum) && !durable {
            return Err("quorum queues are always durable: drop --transient".into());
        }
        let queue_names = match self.queues {
            None => vec![self.queue.clone()],
            Some(0) => return Err("--queues must be >= 1".into()),
            Some(n) => (0..n).map(|i| format!("{}-{i}", self.queue)).collect(),
        };
        let uris = if self.uris.is_empty() {
            vec![DEFAULT_URI.to_string()]
        } else {
            self.uris.clone()
        };
        let or_uris = |v: Vec<String>| if v.is_empty() { uris.clone() } else { v };
        let declare_uris = if !self.declare_uris.is_empty() {
            self.declare_uris
        } else {
            let first = self
                .uris
                .iter()
                .chain(&self.producer_uris)
                .chain(&self.consumer_uris)
                .next()
                .cloned()
                .unwrap_or_else(|| DEFAULT_URI.to_string());
            vec![first]
        };
        let producer_uris = or_uris(self.producer_uris);
        let consumer_uris = or_uris(self.consumer_uris);
        let id = self.id.unwrap_or_else(|| "perf-test".to_string());
        Ok(Settings {
            producer_uris,
            consumer_uris,
            declare_uris,
            producers: self.producers,
            consumers: self.consumers,
            size: self.size.max(8),
            confirm: self.confirm,
            rate: self.rate,
            qos: self.qos,
            multi_ack_every: self.multi_ack_every,
            auto_ack: self.auto_ack,
            persistent: self.persistent || self.flags.contains(&Flag::Persistent),
            mandatory: self.flags.contains(&Flag::Mandatory),
            time: (self.time > 0.0).then_some(self.time),
            queue_names,
            queue_type: self.queue_type,
            durable,
            predeclared: self.predeclared,
            delete_queues: self.delete_queues,
            interval: self.interval,
            json: self.json,
            id,
        })
    }
}

/// `uri` with its password replaced by `***`, for messages.
pub fn redact(uri: &str) -> String {
    let Some(scheme_end) = uri.find("://") else {
        return uri.to_string();
    };
    let rest = &uri[scheme_end + 3..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match (authority.rfind('@'), authority.find(':')) {
        (Some(at), Some(colon)) if colon < at => format!(
            "{}{}:***{}",
            &uri[..scheme_end + 3],
            &authority[..colon],
            &rest[at..]
        ),
        _ => uri.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Settings, String> {
        let mut argv = vec!["warrenmq-perf"];
        argv.extend_from_slice(args);
        Args::try_parse_from(argv)
            .map_err(|e| e.to_string())?
            .into_settings()
    }

    #[test]
    fn defaults() {
        let s = parse(&[]).unwrap();
        assert_eq!(s.producer_uris, vec![DEFAULT_URI.to_string()]);
        assert_eq!(s.consumer_uris, vec![DEFAULT_URI.to_string()]);
        assert_eq!(s.declare_uris, vec![DEFAULT_URI.to_string()]);
        assert_eq!(s.queue_names, vec!["perf-test".to_string()]);
        assert!(s.durable);
        assert!(!s.persistent);
        assert_eq!(s.size, 12);
        assert_eq!(s.time, Some(10.0));
    }

    #[test]
    fn perftest_style_flags() {
        let s = parse(&[
            "-x",
            "2",
            "-y",
            "3",
            "-s",
            "16",
            "-c",
            "100",
            "-f",
            "persistent",
            "-z",
            "5",
            "-u",
            "q",
            "--queues",
            "3",
            "--transient",
            "-q",
            "50",
        ])
        .unwrap();
        assert_eq!(
            (s.producers, s.consumers, s.size, s.confirm),
            (2, 3, 16, 100)
        );
        assert!(s.persistent && !s.durable);
        assert_eq!(s.queue_names, vec!["q-0", "q-1", "q-2"]);
        assert_eq!(s.qos, 50);
    }

    #[test]
    fn producer_and_consumer_uris_fall_back_to_uri() {
        let s = parse(&["--uri", "amqp://a", "--uri", "amqp://b"]).unwrap();
        assert_eq!(s.producer_uris, vec!["amqp://a", "amqp://b"]);
        assert_eq!(s.consumer_uris, vec!["amqp://a", "amqp://b"]);
        assert_eq!(s.declare_uris, vec!["amqp://a"]);

        let s = parse(&[
            "--uri",
            "amqp://n1",
            "--producer-uri",
            "amqp://n2",
            "--consumer-uri",
            "amqp://n3",
        ])
        .unwrap();
        assert_eq!(s.producer_uris, vec!["amqp://n2"]);
        assert_eq!(s.consumer_uris, vec!["amqp://n3"]);
        assert_eq!(s.declare_uris, vec!["amqp://n1"]);

        // Without --uri, the queues are declared through the producers' first node
        // rather than the default URI.
        let s = parse(&["--producer-uri", "amqp://p", "--consumer-uri", "amqp://c"]).unwrap();
        assert_eq!(s.declare_uris, vec!["amqp://p"]);
        let s = parse(&["--consumer-uri", "amqp://c"]).unwrap();
        assert_eq!(s.producer_uris, vec![DEFAULT_URI.to_string()]);
        assert_eq!(s.declare_uris, vec!["amqp://c"]);

        let s = parse(&[
            "--uri",
            "amqp://x",
            "--declare-uri",
            "amqp://d1",
            "--declare-uri",
            "amqp://d2",
        ])
        .unwrap();
        assert_eq!(s.declare_uris, vec!["amqp://d1", "amqp://d2"]);
        assert_eq!(s.producer_uris, vec!["amqp://x"]);
    }

    #[test]
    fn rejects_stalling_multi_ack() {
        assert!(parse(&["-q", "10", "--multi-ack-every", "20"]).is_err());
        assert!(parse(&["-q", "10", "--multi-ack-every", "20", "-a"]).is_ok());
    }

    #[test]
    fn rejects_transient_quorum() {
        assert!(parse(&["--queue-type", "quorum", "--transient"]).is_err());
        assert!(parse(&["--durable", "--transient"]).is_err());
    }

    #[test]
    fn small_bodies_hold_the_timestamp() {
        assert_eq!(parse(&["-s", "0"]).unwrap().size, 8);
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact("amqp://guest:secret@host:5672/%2F"),
            "amqp://guest:***@host:5672/%2F"
        );
        assert_eq!(redact("amqp://host:5672/%2F"), "amqp://host:5672/%2F");
    }
}
