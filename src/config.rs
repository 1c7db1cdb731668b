//! Configuration from a TOML file, `WARRENMQ_*` environment variables and flags.
//!
//! Precedence: flag, then environment variable, then the `--config` file, then the
//! default. No sockets, no globals: `Config` is plain data handed to `Node::start`.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use clap::Parser;
use serde::Deserialize;

/// Name of the cluster secret file in a node's data dir (when no `secret-file` is set).
pub const SECRET_FILE_NAME: &str = "cluster_secret";

/// Everything a node needs to start.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    /// `warren@HOST`, as RabbitMQ's `rabbit@HOST`.
    pub node_name: String,
    pub data_dir: PathBuf,
    pub bind: IpAddr,
    /// AMQP listener port; 0 picks a free port (tests).
    pub amqp_port: u16,
    pub http_port: u16,
    /// Prometheus metrics (`/metrics`, `/metrics/per-object`), as rabbitmq_prometheus's
    /// 15692; a port that cannot be bound is logged and the node runs without it.
    pub prometheus_port: u16,
    pub cluster_port: u16,
    /// Largest message body accepted, in bytes (RabbitMQ's `max_message_size`).
    pub max_message_size: u64,
    /// Heartbeat interval offered in connection.tune, in seconds.
    pub heartbeat: u16,
    pub frame_max: u32,
    pub channel_max: u16,
    pub default_user: String,
    pub default_pass: String,
    /// Users that may only connect from loopback (RabbitMQ's `loopback_users`); `none`
    /// on the command line, or an empty list, for nobody.
    pub loopback_users: Vec<String>,
    /// Entries applied between two snapshots of a Raft group.
    pub snapshot_every: u64,
    /// Resident memory above which publishers are blocked (`connection.blocked`), in
    /// bytes; 0 = 40% of the machine's memory, as RabbitMQ's default watermark.
    pub memory_high_watermark: u64,
    /// Free bytes on the data dir's file system below which publishers are blocked
    /// (RabbitMQ's `disk_free_limit`, 50 MB by default); 0 = no disk alarm.
    pub disk_free_limit: u64,
    /// The cluster secret (as RabbitMQ's Erlang cookie); default `<data-dir>/cluster_secret`,
    /// created with random content on first start.
    pub secret_file: Option<PathBuf>,
    /// Threads of the node's async runtime; 0 = one per core. Nodes that share a
    /// machine (the local three-node cluster) do better with their share of the cores:
    /// fewer threads than cores means less work stealing and fewer context switches.
    pub worker_threads: usize,
    /// A definitions file (or a directory of them) imported each time the app starts,
    /// as RabbitMQ's `load_definitions`; a file that cannot be imported stops the boot.
    pub load_definitions: Option<PathBuf>,
    /// Most client connections this node serves at once; 0 = no limit (RabbitMQ's
    /// `connection_max`, `infinity` by default). One more is refused at
    /// `connection.open` with 530.
    pub max_connections: u64,
    /// Milliseconds a client has to finish the AMQP handshake (RabbitMQ's
    /// `handshake_timeout`, 10 000 by default); then the socket is closed.
    pub handshake_timeout: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            node_name: "warren@localhost".into(),
            data_dir: PathBuf::from("warrenmq-data"),
            bind: IpAddr::from([127, 0, 0, 1]),
            amqp_port: 5672,
            http_port: 15672,
            prometheus_port: 15692,
            cluster_port: 25672,
            max_message_size: 128 * 1024 * 1024,
            heartbeat: 60,
            frame_max: 131_072,
            channel_max: 2047,
            default_user: "guest".into(),
            default_pass: "guest".into(),
            loopback_users: vec!["guest".into()],
            snapshot_every: 20_000,
            memory_high_watermark: 0,
            disk_free_limit: 50_000_000,
            secret_file: None,
            worker_threads: 0,
            load_definitions: None,
            max_connections: 0,
            handshake_timeout: 10_000,
        }
    }
}

/// Command-line flags of `warrenmq-server`; each also reads a `WARRENMQ_*` variable.
#[derive(Debug, Default, Parser)]
#[command(name = "warrenmq-server", version, about = "WarrenMQ broker node")]
pub struct Args {
    /// TOML file with the same keys as the flags (kebab-case).
    #[arg(long, env = "WARRENMQ_CONFIG")]
    pub config: Option<PathBuf>,
    #[arg(long, env = "WARRENMQ_NODE_NAME")]
    pub node_name: Option<String>,
    #[arg(long, env = "WARRENMQ_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    #[arg(long, env = "WARRENMQ_BIND")]
    pub bind: Option<IpAddr>,
    #[arg(long, env = "WARRENMQ_AMQP_PORT")]
    pub amqp_port: Option<u16>,
    #[arg(long, env = "WARRENMQ_HTTP_PORT")]
    pub http_port: Option<u16>,
    /// Port of the Prometheus metrics endpoint (default 15692)
    #[arg(long, env = "WARRENMQ_PROMETHEUS_PORT")]
    pub prometheus_port: Option<u16>,
    #[arg(long, env = "WARRENMQ_CLUSTER_PORT")]
    pub cluster_port: Option<u16>,
    #[arg(long, env = "WARRENMQ_MAX_MESSAGE_SIZE")]
    pub max_message_size: Option<u64>,
    #[arg(long, env = "WARRENMQ_HEARTBEAT")]
    pub heartbeat: Option<u16>,
    #[arg(long, env = "WARRENMQ_FRAME_MAX")]
    pub frame_max: Option<u32>,
    #[arg(long, env = "WARRENMQ_CHANNEL_MAX")]
    pub channel_max: Option<u16>,
    #[arg(long, env = "WARRENMQ_DEFAULT_USER")]
    pub default_user: Option<String>,
    #[arg(long, env = "WARRENMQ_DEFAULT_PASS")]
    pub default_pass: Option<String>,
    /// Comma-separated users that may only connect from loopback (`none`: nobody)
    #[arg(long, env = "WARRENMQ_LOOPBACK_USERS", value_delimiter = ',')]
    pub loopback_users: Option<Vec<String>>,
    #[arg(long, env = "WARRENMQ_SNAPSHOT_EVERY")]
    pub snapshot_every: Option<u64>,
    #[arg(long, env = "WARRENMQ_MEMORY_HIGH_WATERMARK")]
    pub memory_high_watermark: Option<u64>,
    /// Free disk bytes below which publishers are blocked (0: no disk alarm)
    #[arg(long, env = "WARRENMQ_DISK_FREE_LIMIT")]
    pub disk_free_limit: Option<u64>,
    #[arg(long, env = "WARRENMQ_SECRET_FILE")]
    pub secret_file: Option<PathBuf>,
    #[arg(long, env = "WARRENMQ_WORKER_THREADS")]
    pub worker_threads: Option<usize>,
    /// A definitions file (or directory of them) to import each time the app starts
    #[arg(long, env = "WARRENMQ_LOAD_DEFINITIONS")]
    pub load_definitions: Option<PathBuf>,
    /// Most client connections this node serves at once (0: no limit)
    #[arg(long, env = "WARRENMQ_MAX_CONNECTIONS")]
    pub max_connections: Option<u64>,
    /// Milliseconds a client has to finish the AMQP handshake
    #[arg(long, env = "WARRENMQ_HANDSHAKE_TIMEOUT")]
    pub handshake_timeout: Option<u64>,
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// Parse a TOML document.
    pub fn from_toml(text: &str, path: &Path) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            source: Box::new(e),
        })
    }

    /// Build the configuration from flags/env, layered over the file they name.
    pub fn from_args(args: Args) -> Result<Config, ConfigError> {
        let mut config = match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                Config::from_toml(&text, path)?
            }
            None => Config::default(),
        };
        macro_rules! overlay {
            ($($field:ident),*) => { $( if let Some(v) = args.$field { config.$field = v; } )* };
        }
        overlay!(
            node_name,
            data_dir,
            bind,
            amqp_port,
            http_port,
            prometheus_port,
            cluster_port,
            max_message_size,
            heartbeat,
            frame_max,
            channel_max,
            default_user,
            default_pass,
            loopback_users,
            snapshot_every,
            memory_high_watermark,
            disk_free_limit,
            worker_threads,
            max_connections,
            handshake_timeout
        );
        if let Some(path) = args.secret_file {
            config.secret_file = Some(path);
        }
        if let Some(path) = args.load_definitions {
            config.load_definitions = Some(path);
        }
        config.validate()?;
        Ok(config)
    }

    /// Whether `user` may only connect from a loopback address.
    pub fn loopback_only(&self, user: &str) -> bool {
        self.loopback_users.iter().any(|u| u == user && u != "none")
    }

    /// The cluster secret file in use.
    pub fn secret_path(&self) -> PathBuf {
        self.secret_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join(SECRET_FILE_NAME))
    }

    fn validate(&self) -> Result<(), ConfigError> {
        match self.node_name.split_once('@') {
            Some((name, host)) if !name.is_empty() && !host.is_empty() => {}
            _ => {
                return Err(ConfigError::Invalid(format!(
                    "node-name '{}' is not of the form warren@HOST",
                    self.node_name
                )))
            }
        }
        if self.frame_max != 0 && self.frame_max < crate::amqp::FRAME_MIN_SIZE {
            return Err(ConfigError::Invalid(format!(
                "frame-max {} is below the minimum {}",
                self.frame_max,
                crate::amqp::FRAME_MIN_SIZE
            )));
        }
        if self.handshake_timeout == 0 {
            return Err(ConfigError::Invalid(
                "handshake-timeout must be at least 1 ms".into(),
            ));
        }
        if self.max_message_size > 512 * 1024 * 1024 {
            return Err(ConfigError::Invalid(
                "max-message-size may not exceed 512 MiB".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_users_default_to_guest_and_can_be_none_or_a_list() {
        let config = Config::default();
        assert!(config.loopback_only("guest"));
        assert!(!config.loopback_only("ys"));
        let parse = |flags: &[&str]| {
            let mut argv = vec!["warrenmq-server"];
            argv.extend_from_slice(flags);
            Config::from_args(<Args as clap::Parser>::parse_from(argv)).unwrap()
        };
        let none = parse(&["--loopback-users", "none"]);
        assert!(!none.loopback_only("guest"));
        let two = parse(&["--loopback-users", "guest,admin"]);
        assert!(two.loopback_only("admin") && two.loopback_only("guest"));
        let file = Config::from_toml("loopback-users = []", Path::new("x.toml")).unwrap();
        assert!(!file.loopback_only("guest"));
    }

    #[test]
    fn load_definitions_comes_from_a_flag_or_the_file() {
        let parse = |flags: &[&str]| {
            let mut argv = vec!["warrenmq-server"];
            argv.extend_from_slice(flags);
            Config::from_args(<Args as clap::Parser>::parse_from(argv)).unwrap()
        };
        assert_eq!(parse(&[]).load_definitions, None);
        let flag = parse(&["--load-definitions", "/etc/defs.json"]);
        assert_eq!(flag.load_definitions, Some(PathBuf::from("/etc/defs.json")));
        let file = Config::from_toml("load-definitions = \"d.json\"", Path::new("x.toml")).unwrap();
        assert_eq!(file.load_definitions, Some(PathBuf::from("d.json")));
    }

    #[test]
    fn flags_override_file_which_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.toml");
        std::fs::write(
            &path,
            "amqp-port = 5999\nhttp-port = 16000\nnode-name = \"warren@a\"\n",
        )
        .unwrap();
        let args = Args::try_parse_from([
            "warrenmq-server",
            "--config",
            path.to_str().unwrap(),
            "--amqp-port",
            "6000",
        ])
        .unwrap();
        let config = Config::from_args(args).unwrap();
        assert_eq!(config.amqp_port, 6000);
        assert_eq!(config.http_port, 16000);
        assert_eq!(config.node_name, "warren@a");
        assert_eq!(config.cluster_port, 25672);
    }

    #[test]
    fn unknown_keys_and_bad_node_names_are_refused() {
        let err = Config::from_toml("amqp_prot = 1", Path::new("x.toml")).unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
        let args = Args {
            node_name: Some("warren".into()),
            ..Args::default()
        };
        assert!(Config::from_args(args)
            .unwrap_err()
            .to_string()
            .contains("warren@HOST"));
    }
}
