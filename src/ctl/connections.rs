//! warrenctl's connection commands: `list_connections`, `list_channels`,
//! `list_consumers`, `close_connection` and `close_all_connections`, with rabbitmqctl
//! 3.10.8's arguments, columns, defaults, banners, output and exit codes. The node they
//! are sent to answers for the whole cluster (`node/connections.rs`).

use clap::Subcommand;
use serde_json::json;

use super::access::send;
use super::info_table::{render, InfoKeys};
use super::{exit, Failure, Formatter};
use crate::cluster::{AdminClient, CommandRequest};

/// rabbitmqctl's connection commands.
#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum ConnectionCommand {
    /// List the client connections of every node [default columns: user peer_host
    /// peer_port state]
    #[command(name = "list_connections")]
    ListConnections {
        /// Accepted and ignored, as rabbitmqctl does: every vhost's connections are listed
        #[arg(short = 'p', long = "vhost", hide = true)]
        vhost: Option<String>,
        /// Leave out the header line
        #[arg(long = "no-table-headers")]
        no_table_headers: bool,
        /// Columns, among: pid name port host peer_port peer_host ssl ssl_protocol
        /// ssl_key_exchange ssl_cipher ssl_hash peer_cert_subject peer_cert_issuer
        /// peer_cert_validity state channels protocol auth_mechanism user vhost timeout
        /// frame_max channel_max client_properties connected_at
        #[arg(value_name = "COLUMN")]
        columns: Vec<String>,
    },
    /// List the channels of every node [default columns: pid user consumer_count
    /// messages_unacknowledged]
    #[command(name = "list_channels")]
    ListChannels {
        /// Accepted and ignored, as rabbitmqctl does: every vhost's channels are listed
        #[arg(short = 'p', long = "vhost", hide = true)]
        vhost: Option<String>,
        /// Leave out the header line
        #[arg(long = "no-table-headers")]
        no_table_headers: bool,
        /// Columns, among: pid connection name number user vhost transactional confirm
        /// consumer_count messages_unacknowledged messages_uncommitted acks_uncommitted
        /// messages_unconfirmed prefetch_count global_prefetch_count
        #[arg(value_name = "COLUMN")]
        columns: Vec<String>,
    },
    /// List the consumers of a vhost's queues on every node [default columns: queue_name
    /// channel_pid consumer_tag ack_required prefetch_count active arguments]
    #[command(name = "list_consumers")]
    ListConsumers {
        #[arg(short = 'p', long = "vhost", default_value = "/")]
        vhost: String,
        /// Leave out the header line
        #[arg(long = "no-table-headers")]
        no_table_headers: bool,
        /// Columns, among: queue_name channel_pid consumer_tag ack_required
        /// prefetch_count active activity_status arguments
        #[arg(value_name = "COLUMN")]
        columns: Vec<String>,
    },
    /// Close a client connection (320 CONNECTION_FORCED with the explanation)
    #[command(name = "close_connection")]
    CloseConnection {
        /// Its pid, as list_connections' pid column shows it, or its name
        /// ("PEER_IP:PEER_PORT -> LOCAL_IP:LOCAL_PORT")
        connection: String,
        /// The reason the client is given
        explanation: String,
    },
    /// Close a vhost's connections on every node, or with --global every connection of
    /// the node warrenctl talks to
    #[command(name = "close_all_connections")]
    CloseAllConnections {
        /// The vhost whose connections are closed [default: /]
        #[arg(short = 'p', long = "vhost")]
        vhost: Option<String>,
        /// Close up to this many of the vhost's connections (0: all)
        #[arg(long)]
        limit: Option<u64>,
        /// Every connection of this node, in any vhost
        #[arg(long)]
        global: bool,
        /// Milliseconds to wait after each closure
        #[arg(long = "per-connection-delay", default_value_t = 0)]
        per_connection_delay: u64,
        /// The reason the clients are given
        explanation: String,
    },
}

const CONNECTION_KEYS: InfoKeys = InfoKeys {
    known: &[
        "pid",
        "name",
        "port",
        "host",
        "peer_port",
        "peer_host",
        "ssl",
        "ssl_protocol",
        "ssl_key_exchange",
        "ssl_cipher",
        "ssl_hash",
        "peer_cert_subject",
        "peer_cert_issuer",
        "peer_cert_validity",
        "state",
        "channels",
        "protocol",
        "auth_mechanism",
        "user",
        "vhost",
        "timeout",
        "frame_max",
        "channel_max",
        "client_properties",
        "recv_oct",
        "recv_cnt",
        "send_oct",
        "send_cnt",
        "send_pend",
        "connected_at",
    ],
    refused: &[],
    default: &["user", "peer_host", "peer_port", "state"],
};

const CHANNEL_KEYS: InfoKeys = InfoKeys {
    known: &[
        "pid",
        "connection",
        "name",
        "number",
        "user",
        "vhost",
        "transactional",
        "confirm",
        "consumer_count",
        "messages_unacknowledged",
        "messages_uncommitted",
        "acks_uncommitted",
        "messages_unconfirmed",
        "prefetch_count",
        "global_prefetch_count",
    ],
    refused: &[],
    default: &["pid", "user", "consumer_count", "messages_unacknowledged"],
};

const CONSUMER_KEYS: InfoKeys = InfoKeys {
    known: &[
        "queue_name",
        "channel_pid",
        "consumer_tag",
        "ack_required",
        "prefetch_count",
        "active",
        "activity_status",
        "arguments",
    ],
    refused: &[],
    default: &[
        "queue_name",
        "channel_pid",
        "consumer_tag",
        "ack_required",
        "prefetch_count",
        "active",
        "arguments",
    ],
};

fn request(command: &str, vhost: &str, args: Vec<String>, flags: Vec<String>) -> CommandRequest {
    CommandRequest {
        command: command.into(),
        args,
        vhost: vhost.into(),
        flags,
    }
}

/// Run one connection command; returns what to print on stdout.
pub(super) async fn run(
    client: &mut AdminClient,
    cmd: &ConnectionCommand,
    formatter: Formatter,
) -> Result<String, Failure> {
    let json = formatter == Formatter::Json;
    match cmd {
        ConnectionCommand::ListConnections {
            no_table_headers,
            columns,
            ..
        } => {
            let columns = CONNECTION_KEYS.columns(columns)?;
            let rows = send(client, request("list_connections", "/", vec![], vec![])).await?;
            let banner = "Listing connections ...";
            Ok(render(banner, &columns, &rows, json, !no_table_headers))
        }
        ConnectionCommand::ListChannels {
            no_table_headers,
            columns,
            ..
        } => {
            let columns = CHANNEL_KEYS.columns(columns)?;
            let rows = send(client, request("list_channels", "/", vec![], vec![])).await?;
            let banner = "Listing channels ...";
            Ok(render(banner, &columns, &rows, json, !no_table_headers))
        }
        ConnectionCommand::ListConsumers {
            vhost,
            no_table_headers,
            columns,
        } => {
            let columns = CONSUMER_KEYS.columns(columns)?;
            let rows = send(client, request("list_consumers", vhost, vec![], vec![])).await?;
            let banner = format!("Listing consumers in vhost {vhost} ...");
            Ok(render(&banner, &columns, &rows, json, !no_table_headers))
        }
        ConnectionCommand::CloseConnection {
            connection,
            explanation,
        } => {
            let args = vec![connection.clone(), explanation.clone()];
            let reply = send(client, request("close_connection", "/", args, vec![]))
                .await
                .map_err(|f| match f.code {
                    // rabbitmqctl prints the refused pid's term on a line of its own.
                    exit::UNAVAILABLE if f.message.starts_with("{:") => f.with_heading("Error:\n"),
                    _ => f,
                })?;
            Ok(match json {
                true => format!("{}\n", json!({"node": reply["node"], "result": "ok"})),
                false => format!("Closing connection {connection}, reason: {explanation}...\n"),
            })
        }
        ConnectionCommand::CloseAllConnections {
            vhost,
            limit,
            global,
            per_connection_delay,
            explanation,
        } => {
            if *global && (vhost.is_some() || limit.is_some()) {
                // rabbitmqctl ignores them with --global; refused rather than ignored.
                return Err(Failure::new(
                    exit::USAGE,
                    "--global closes every connection of the node, in any vhost: -p/--vhost and --limit do not apply to it (rabbitmqctl ignores them; WarrenMQ refuses them rather than ignore them)",
                ));
            }
            let vhost = vhost.as_deref().unwrap_or("/");
            let limit = limit.unwrap_or(0);
            let mut flags = vec![format!("per-connection-delay={per_connection_delay}")];
            if *global {
                flags.push("global".into());
            } else {
                flags.push(format!("limit={limit}"));
            }
            let args = vec![explanation.clone()];
            let reply = send(client, request("close_all_connections", vhost, args, flags)).await?;
            let node = reply["node"].as_str().unwrap_or_default();
            let value = format!(
                "Closed {} connections",
                reply["closed"].as_u64().unwrap_or(0)
            );
            if json {
                return Ok(format!(
                    "{}\n",
                    json!({"node": node, "result": "ok", "value": value})
                ));
            }
            let banner = match (*global, limit) {
                (true, _) => format!(
                    "Closing all connections to node {node} (across all vhosts), reason: {explanation}..."
                ),
                (false, 0) => {
                    format!("Closing all connections in vhost {vhost}, reason: {explanation}...")
                }
                (false, n) => {
                    format!("Closing {n} connections in vhost {vhost}, reason: {explanation}...")
                }
            };
            Ok(format!("{banner}\n{value}\n"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctl::{Args, Command};
    use clap::Parser;

    #[test]
    fn rabbitmqctl_s_command_lines_parse() {
        let a = Args::try_parse_from(["warrenctl", "list_connections", "name", "user"]).unwrap();
        assert_eq!(
            a.command,
            Command::Connections(ConnectionCommand::ListConnections {
                vhost: None,
                no_table_headers: false,
                columns: vec!["name".into(), "user".into()]
            })
        );
        let a = Args::try_parse_from([
            "warrenctl",
            "close_all_connections",
            "--global",
            "--per-connection-delay",
            "10",
            "maintenance",
        ])
        .unwrap();
        assert_eq!(
            a.command,
            Command::Connections(ConnectionCommand::CloseAllConnections {
                vhost: None,
                limit: None,
                global: true,
                per_connection_delay: 10,
                explanation: "maintenance".into()
            })
        );
        for bad in [
            &["warrenctl", "close_connection", "<warren@n.1.2.0>"][..],
            &["warrenctl", "close_all_connections"],
            &["warrenctl", "close_all_connections", "a", "b"],
            &["warrenctl", "close_all_connections", "--limit", "-1", "a"],
        ] {
            assert!(Args::try_parse_from(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_default_columns_are_rabbitmqctl_s() {
        assert_eq!(
            CONNECTION_KEYS.columns(&[]).unwrap(),
            ["user", "peer_host", "peer_port", "state"]
        );
        assert_eq!(
            CHANNEL_KEYS.columns(&[]).unwrap(),
            ["pid", "user", "consumer_count", "messages_unacknowledged"]
        );
        assert!(!CONSUMER_KEYS.default.contains(&"activity_status"));
        for keys in [&CONNECTION_KEYS, &CHANNEL_KEYS, &CONSUMER_KEYS] {
            assert!(keys.default.iter().all(|c| keys.known.contains(c)));
            assert!(keys.refused.iter().all(|c| keys.known.contains(c)));
        }
    }
}
