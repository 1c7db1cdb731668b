//! warrenctl's commands: rabbitmqctl's names, flags, output shapes and exit codes, as a
//! client of a node's admin service (`cluster::AdminClient`).
//!
//! Exit codes (as rabbitmqctl's): 0 success, 64 usage error, 69 node unreachable or
//! not running, 70 the node failed the command, 75 timed out, 77 refused (bad secret).

mod access;
mod cli;
mod connections;
mod definitions;
mod info_table;
mod limits;
mod objects;
mod output;

pub use access::AccessCommand;
pub use cli::{Args, Command, Formatter, QueuesCommand};
pub use connections::ConnectionCommand;
pub use definitions::DefinitionCommand;
pub use limits::LimitCommand;
pub use objects::ObjectCommand;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::cluster::{AdminClient, AdminError, ClusterSecret, PolicyInfo};
use crate::config::SECRET_FILE_NAME;

/// Exit codes.
pub mod exit {
    pub const OK: u8 = 0;
    pub const USAGE: u8 = 64;
    pub const DATAERR: u8 = 65;
    pub const UNAVAILABLE: u8 = 69;
    pub const SOFTWARE: u8 = 70;
    pub const CANTCREAT: u8 = 73;
    pub const TEMPFAIL: u8 = 75;
    pub const NOPERM: u8 = 77;
}

/// A failed command: its exit code, the message for stderr, and what it printed on
/// stdout before it failed (a banner, as rabbitmqctl prints one).
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
    /// What stderr shows before the message (rabbitmqctl's `Error: `, or its
    /// `Error (argument validation): `).
    pub heading: &'static str,
    /// What stdout shows before the failure (an import's warnings).
    pub stdout: String,
}

impl Failure {
    fn new(code: u8, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
            heading: "Error: ",
            stdout: String::new(),
        }
    }

    fn with_heading(self, heading: &'static str) -> Failure {
        Failure { heading, ..self }
    }

    fn with_stdout(self, stdout: String) -> Failure {
        Failure { stdout, ..self }
    }
}

impl From<AdminError> for Failure {
    fn from(e: AdminError) -> Failure {
        let code = match &e {
            AdminError::Unreachable { .. } => exit::UNAVAILABLE,
            AdminError::Refused(text) if text.contains("cluster secret") => exit::NOPERM,
            AdminError::Refused(_) => exit::SOFTWARE,
        };
        Failure::new(code, e.to_string())
    }
}

/// Where `-n NODE` points: `host:port`, or `name@HOST` (the default cluster port on HOST).
pub fn resolve_node(node: &str) -> Result<SocketAddr, Failure> {
    crate::cluster::resolve_node(node).map_err(|e| Failure::new(exit::USAGE, e))
}

/// The secret file: `--secret-file`, else `<data-dir>/cluster_secret`.
fn secret_path(args: &Args) -> PathBuf {
    args.secret_file
        .clone()
        .unwrap_or_else(|| args.data_dir.join(SECRET_FILE_NAME))
}

/// Run one command; returns what to print on stdout.
pub async fn run(args: Args) -> Result<String, Failure> {
    let addr = resolve_node(&args.node)?;
    let path = secret_path(&args);
    let timeout = Duration::from_secs(args.timeout);
    if args.command == Command::AwaitStartup {
        // A node starting on a fresh data dir creates its secret file as it starts.
        let deadline = Instant::now() + timeout;
        while !path.exists() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let secret = ClusterSecret::load(&path).map_err(|e| {
        Failure::new(
            exit::NOPERM,
            format!(
                "cannot read the cluster secret file {}: {e} (use --secret-file or WARRENMQ_SECRET_FILE)",
                path.display()
            ),
        )
    })?;
    if args.command == Command::AwaitStartup {
        return await_startup(addr, &secret, timeout).await;
    }
    let json = args.formatter == Formatter::Json;
    let mut client = AdminClient::connect(addr, &secret, timeout).await?;
    match &args.command {
        Command::Status => Ok(output::status(&client.status().await?, json)),
        Command::ClusterStatus => Ok(output::cluster_status(
            &client.cluster_status().await?,
            json,
        )),
        Command::AwaitStartup => unreachable!("handled above"),
        Command::StopApp => {
            let name = client.status().await?.node_name;
            client.stop_app().await?;
            Ok(format!("Stopping warren application on node {name} ...\n"))
        }
        Command::StartApp => {
            let name = client.status().await?.node_name;
            client.start_app().await?;
            Ok(format!("Starting node {name} ...\n"))
        }
        Command::Reset => {
            let name = client.status().await?.node_name;
            client.reset().await?;
            Ok(format!("Resetting node {name} ...\n"))
        }
        Command::JoinCluster { node } => {
            let name = client.status().await?.node_name;
            client.join_cluster(node).await?;
            Ok(format!("Clustering node {name} with {node}\n"))
        }
        Command::ListQueues { vhost, columns } => {
            let queues = client.list_queues(vhost, false).await?;
            Ok(output::list_queues(&queues, vhost, columns, json))
        }
        Command::ForgetClusterNode { node } => {
            client.forget_cluster_node(node).await?;
            Ok(format!("Removing node {node} from the cluster\n"))
        }
        Command::SetPolicy {
            vhost,
            priority,
            apply_to,
            name,
            pattern,
            definition,
        } => {
            client
                .set_policy(PolicyInfo {
                    vhost: vhost.clone(),
                    name: name.clone(),
                    pattern: pattern.clone(),
                    apply_to: apply_to.clone(),
                    definition: definition.clone(),
                    priority: *priority,
                })
                .await?;
            Ok(format!(
                "Setting policy \"{name}\" for pattern \"{pattern}\" to \"{definition}\" with priority \"{priority}\" for vhost \"{vhost}\" ...\n"
            ))
        }
        Command::ClearPolicy { vhost, name } => {
            client.clear_policy(vhost, name).await?;
            Ok(format!(
                "Clearing policy \"{name}\" on vhost \"{vhost}\" ...\n"
            ))
        }
        Command::ListPolicies { vhost } => {
            let policies = client.list_policies(vhost).await?;
            Ok(output::list_policies(&policies, vhost, json))
        }
        Command::Queues(cmd) => queues(&mut client, cmd, json).await,
        Command::Access(cmd) => access::run(&mut client, cmd, args.formatter).await,
        Command::Objects(cmd) => objects::run(&mut client, cmd, args.formatter).await,
        Command::Limits(cmd) => limits::run(&mut client, cmd, args.formatter).await,
        Command::Connections(cmd) => connections::run(&mut client, cmd, args.formatter).await,
        Command::Definitions(cmd) => definitions::run(&mut client, cmd, args.formatter).await,
    }
}

/// `warrenctl queues ...`.
async fn queues(
    client: &mut AdminClient,
    cmd: &QueuesCommand,
    json: bool,
) -> Result<String, Failure> {
    match cmd {
        QueuesCommand::AddMember { vhost, queue, node } => {
            client.change_member(vhost, queue, node, true).await?;
            Ok(format!(
                "Adding a replica for queue {queue} in vhost {vhost} on node {node}...\n"
            ))
        }
        QueuesCommand::DeleteMember { vhost, queue, node } => {
            client.change_member(vhost, queue, node, false).await?;
            Ok(format!(
                "Removing a replica for queue {queue} in vhost {vhost} on node {node}...\n"
            ))
        }
        QueuesCommand::Grow { node, strategy } => {
            let changes = client.grow_shrink(node, true, strategy).await?;
            let title = format!("Growing {strategy} quorum queues on {node}...");
            Ok(output::member_changes(&title, &changes, json))
        }
        QueuesCommand::Shrink { node } => {
            let changes = client.grow_shrink(node, false, "").await?;
            let title = format!("Shrinking quorum queues on {node}...");
            Ok(output::member_changes(&title, &changes, json))
        }
        QueuesCommand::QuorumStatus { vhost, queue } => {
            let members = client.quorum_status(vhost, queue, false).await?;
            Ok(output::quorum_status(queue, vhost, &members, json))
        }
        QueuesCommand::Rebalance { queue_type } => {
            let leaders = if queue_type == "classic" {
                // Classic queues have one member: nothing can move.
                Vec::new()
            } else {
                client.rebalance().await?
            };
            Ok(output::rebalance(queue_type, &leaders, json))
        }
    }
}

/// Wait until the node runs its AMQP service, retrying while it cannot be reached.
async fn await_startup(
    addr: SocketAddr,
    secret: &ClusterSecret,
    timeout: Duration,
) -> Result<String, Failure> {
    let deadline = Instant::now() + timeout;
    let mut last = String::from("not contacted yet");
    while Instant::now() < deadline {
        let left = deadline.saturating_duration_since(Instant::now());
        match AdminClient::connect(addr, secret, left.min(Duration::from_secs(2))).await {
            Ok(mut client) => match client.status().await {
                Ok(status) if status.app_running => return Ok(String::new()),
                Ok(_) => last = "the node is up but its AMQP service is not running".into(),
                Err(e @ AdminError::Refused(_)) => return Err(e.into()),
                Err(e) => last = e.to_string(),
            },
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(Failure::new(
        exit::TEMPFAIL,
        format!(
            "the node at {addr} did not start within {}s: {last}",
            timeout.as_secs()
        ),
    ))
}
