//! warrenctl's command line: rabbitmqctl's global flags and subcommand names.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use super::access::AccessCommand;
use super::connections::ConnectionCommand;
use super::definitions::DefinitionCommand;
use super::limits::LimitCommand;
use super::objects::ObjectCommand;

/// Manage WarrenMQ nodes, as rabbitmqctl manages RabbitMQ's.
#[derive(Parser, Debug, Clone)]
#[command(name = "warrenctl", version)]
pub struct Args {
    /// The node to talk to: host:cluster-port, or warren@HOST (cluster port 25672)
    #[arg(
        short = 'n',
        long,
        env = "WARRENMQ_NODE",
        default_value = "127.0.0.1:25672",
        global = true
    )]
    pub node: String,

    /// The cluster secret file [default: <data-dir>/cluster_secret]
    #[arg(long, env = "WARRENMQ_SECRET_FILE", global = true)]
    pub secret_file: Option<PathBuf>,

    /// The node's data dir, where its cluster secret file is by default
    #[arg(
        long,
        env = "WARRENMQ_DATA_DIR",
        default_value = "warrenmq-data",
        global = true
    )]
    pub data_dir: PathBuf,

    /// Output format
    #[arg(long, value_enum, default_value_t = Formatter::Table, global = true)]
    pub formatter: Formatter,

    /// Seconds to wait for the node (await_startup waits this long for it to start)
    #[arg(short = 't', long, default_value_t = 60, global = true)]
    pub timeout: u64,

    #[command(subcommand)]
    pub command: Command,
}

/// Output formats, as rabbitmqctl's `--formatter`.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Formatter {
    /// Human-readable text
    Table,
    /// One JSON document
    Json,
}

/// rabbitmqctl's commands WarrenMQ has so far.
#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Show the node's status
    #[command(name = "status")]
    Status,
    /// Show the cluster's nodes, which of them are running, and the listeners
    #[command(name = "cluster_status")]
    ClusterStatus,
    /// Wait until the node runs its AMQP service
    #[command(name = "await_startup")]
    AwaitStartup,
    /// Stop the AMQP service and Raft participation, leaving the process running
    #[command(name = "stop_app")]
    StopApp,
    /// Start what stop_app stopped
    #[command(name = "start_app")]
    StartApp,
    /// Wipe a stopped node's data (it leaves its cluster and becomes a fresh node)
    #[command(name = "reset")]
    Reset,
    /// Make the (stopped) node a member of the cluster NODE is in; the node is reset first
    #[command(name = "join_cluster")]
    JoinCluster {
        /// A member of the cluster: warren@HOST or host:cluster-port
        #[arg(id = "target_node", value_name = "NODE")]
        node: String,
    },
    /// List a vhost's queues; columns: name messages consumers type leader members online
    #[command(name = "list_queues")]
    ListQueues {
        /// The virtual host
        #[arg(short = 'p', long = "vhost", default_value = "/")]
        vhost: String,
        /// Columns to show [default: name messages]
        #[arg(value_name = "COLUMN", value_parser = ["name", "messages", "consumers", "type", "leader", "members", "online", "policy", "effective_policy_definition", "pid", "slave_pids", "synchronised_slave_pids", "mirroring"])]
        columns: Vec<String>,
    },
    /// Remove a stopped node from the cluster
    #[command(name = "forget_cluster_node")]
    ForgetClusterNode {
        /// The node as cluster_status lists it (or host:cluster-port)
        #[arg(id = "target_node", value_name = "NODE")]
        node: String,
    },
    /// Set a policy: queues (or exchanges) of the vhost whose names match PATTERN get
    /// the keys of DEFINITION (a JSON object; so far queue-leader-locator takes effect)
    #[command(name = "set_policy")]
    SetPolicy {
        /// The virtual host
        #[arg(short = 'p', long = "vhost", default_value = "/")]
        vhost: String,
        /// Of several matching policies the highest priority applies
        #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
        priority: i64,
        /// What the policy applies to
        #[arg(long = "apply-to", default_value = "all", value_parser = ["all", "queues", "classic_queues", "quorum_queues", "streams", "exchanges"])]
        apply_to: String,
        /// The policy's name
        name: String,
        /// A regular expression over queue (or exchange) names
        pattern: String,
        /// A JSON object, e.g. '{"queue-leader-locator":"balanced"}'
        definition: String,
    },
    /// Remove a policy
    #[command(name = "clear_policy")]
    ClearPolicy {
        /// The virtual host
        #[arg(short = 'p', long = "vhost", default_value = "/")]
        vhost: String,
        /// The policy's name
        name: String,
    },
    /// List a vhost's policies
    #[command(name = "list_policies")]
    ListPolicies {
        /// The virtual host
        #[arg(short = 'p', long = "vhost", default_value = "/")]
        vhost: String,
    },
    /// Quorum queue replicas and leaders, as rabbitmq-queues
    #[command(name = "queues", subcommand)]
    Queues(QueuesCommand),
    /// Users, vhosts and permissions
    #[command(flatten)]
    Access(AccessCommand),
    /// Exchanges, bindings and queues of a vhost
    #[command(flatten)]
    Objects(ObjectCommand),
    /// Vhost and user limits, operator policies
    #[command(flatten)]
    Limits(LimitCommand),
    /// Client connections, channels and consumers of the cluster
    #[command(flatten)]
    Connections(ConnectionCommand),
    /// Definitions: export and import
    #[command(flatten)]
    Definitions(DefinitionCommand),
}

/// `warrenctl queues ...`: rabbitmq-queues' commands.
#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum QueuesCommand {
    /// Add a replica (member) on NODE to a quorum queue
    #[command(name = "add_member")]
    AddMember {
        /// The virtual host
        #[arg(short = 'p', long = "vhost", default_value = "/")]
        vhost: String,
        /// The quorum queue
        queue: String,
        /// The node as cluster_status lists it (or host:cluster-port)
        #[arg(id = "target_node", value_name = "NODE")]
        node: String,
    },
    /// Remove the replica (member) on NODE from a quorum queue
    #[command(name = "delete_member")]
    DeleteMember {
        /// The virtual host
        #[arg(short = 'p', long = "vhost", default_value = "/")]
        vhost: String,
        /// The quorum queue
        queue: String,
        /// The node as cluster_status lists it (or host:cluster-port)
        #[arg(id = "target_node", value_name = "NODE")]
        node: String,
    },
    /// Add NODE as a member of every quorum queue (all), or of those with an even number of members (even)
    #[command(name = "grow")]
    Grow {
        /// The node as cluster_status lists it (or host:cluster-port)
        #[arg(id = "target_node", value_name = "NODE")]
        node: String,
        /// all or even
        #[arg(value_parser = ["all", "even"])]
        strategy: String,
    },
    /// Remove NODE from every quorum queue it is a member of (never the last member)
    #[command(name = "shrink")]
    Shrink {
        /// The node as cluster_status lists it (or host:cluster-port)
        #[arg(id = "target_node", value_name = "NODE")]
        node: String,
    },
    /// The Raft state of every member of a quorum queue
    #[command(name = "quorum_status")]
    QuorumStatus {
        /// The virtual host
        #[arg(short = 'p', long = "vhost", default_value = "/")]
        vhost: String,
        /// The quorum queue
        queue: String,
    },
    /// Spread queue leaders evenly over the nodes (quorum queues; classic queues do not move)
    #[command(name = "rebalance")]
    Rebalance {
        /// all, quorum or classic
        #[arg(value_parser = ["all", "quorum", "classic"])]
        queue_type: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rabbitmqctl_style_command_lines_parse() {
        let a = Args::try_parse_from([
            "warrenctl",
            "-n",
            "127.0.0.1:25673",
            "cluster_status",
            "--formatter",
            "json",
        ])
        .unwrap();
        assert_eq!(a.command, Command::ClusterStatus);
        assert_eq!(a.formatter, Formatter::Json);
        assert_eq!(a.node, "127.0.0.1:25673");
        assert!(Args::try_parse_from(["warrenctl", "cluster-status"]).is_err());
        let a = Args::try_parse_from(["warrenctl", "-n", "h:1", "join_cluster", "warren@node1"])
            .unwrap();
        assert_eq!(a.node, "h:1", "the target must not replace -n");
        assert_eq!(
            a.command,
            Command::JoinCluster {
                node: "warren@node1".into()
            }
        );
        assert!(Args::try_parse_from(["warrenctl", "forget_cluster_node"]).is_err());
        let a = Args::try_parse_from(["warrenctl", "list_queues", "-p", "v", "name", "leader"])
            .unwrap();
        assert_eq!(
            a.command,
            Command::ListQueues {
                vhost: "v".into(),
                columns: vec!["name".into(), "leader".into()]
            }
        );
        assert!(Args::try_parse_from(["warrenctl", "list_queues", "colour"]).is_err());
        let a = Args::try_parse_from([
            "warrenctl",
            "-n",
            "warren@n1",
            "queues",
            "add_member",
            "--vhost",
            "v",
            "qq",
            "warren@n3",
        ])
        .unwrap();
        assert_eq!(a.node, "warren@n1");
        assert_eq!(
            a.command,
            Command::Queues(QueuesCommand::AddMember {
                vhost: "v".into(),
                queue: "qq".into(),
                node: "warren@n3".into()
            })
        );
        let a = Args::try_parse_from(["warrenctl", "queues", "grow", "warren@n3", "even"]).unwrap();
        assert_eq!(
            a.command,
            Command::Queues(QueuesCommand::Grow {
                node: "warren@n3".into(),
                strategy: "even".into()
            })
        );
        assert!(Args::try_parse_from(["warrenctl", "queues", "grow", "n", "some"]).is_err());
    }
}
