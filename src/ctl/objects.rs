//! warrenctl's commands on a vhost's objects: `list_exchanges`, `list_bindings`,
//! `purge_queue`, `delete_queue`, with rabbitmqctl's arguments, banners, output and exit
//! codes. The node runs them (`node/objects.rs`).

use clap::Subcommand;

use super::access::send;
use super::output::object_table;
use super::{Failure, Formatter};
use crate::cluster::{AdminClient, CommandRequest};

/// rabbitmqctl's object commands.
#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum ObjectCommand {
    /// List a vhost's exchanges; columns: name type
    #[command(name = "list_exchanges")]
    ListExchanges {
        #[arg(short = 'p', long = "vhost", default_value = "/")]
        vhost: String,
    },
    /// List a vhost's bindings (each queue's binding to the default exchange included)
    #[command(name = "list_bindings")]
    ListBindings {
        #[arg(short = 'p', long = "vhost", default_value = "/")]
        vhost: String,
    },
    /// Remove a queue's ready messages
    #[command(name = "purge_queue")]
    PurgeQueue {
        #[arg(short = 'p', long = "vhost", default_value = "/")]
        vhost: String,
        queue: String,
    },
    /// Delete a queue
    #[command(name = "delete_queue")]
    DeleteQueue {
        #[arg(short = 'p', long = "vhost", default_value = "/")]
        vhost: String,
        /// Only if it has no messages
        #[arg(short = 'e', long = "if-empty")]
        if_empty: bool,
        /// Only if it has no consumers
        #[arg(short = 'u', long = "if-unused")]
        if_unused: bool,
        queue: String,
    },
}

const EXCHANGE_COLUMNS: &[&str] = &["name", "type"];
const BINDING_COLUMNS: &[&str] = &[
    "source_name",
    "source_kind",
    "destination_name",
    "destination_kind",
    "routing_key",
    "arguments",
];

/// Run one object command; returns what to print on stdout.
pub(super) async fn run(
    client: &mut AdminClient,
    cmd: &ObjectCommand,
    formatter: Formatter,
) -> Result<String, Failure> {
    let req = |command: &str, vhost: &str, args: Vec<String>, flags: Vec<String>| CommandRequest {
        command: command.into(),
        args,
        vhost: vhost.into(),
        flags,
    };
    match cmd {
        ObjectCommand::ListExchanges { vhost } => {
            let rows = send(client, req("list_exchanges", vhost, vec![], vec![])).await?;
            let banner = format!("Listing exchanges for vhost {vhost} ...");
            Ok(object_table(
                &banner,
                EXCHANGE_COLUMNS,
                &rows,
                formatter == Formatter::Json,
            ))
        }
        ObjectCommand::ListBindings { vhost } => {
            let rows = send(client, req("list_bindings", vhost, vec![], vec![])).await?;
            let banner = format!("Listing bindings for vhost {vhost}...");
            Ok(object_table(
                &banner,
                BINDING_COLUMNS,
                &rows,
                formatter == Formatter::Json,
            ))
        }
        ObjectCommand::PurgeQueue { vhost, queue } => {
            send(
                client,
                req("purge_queue", vhost, vec![queue.clone()], vec![]),
            )
            .await?;
            Ok(format!("Purging queue '{queue}' in vhost '{vhost}' ...\n"))
        }
        ObjectCommand::DeleteQueue {
            vhost,
            if_empty,
            if_unused,
            queue,
        } => {
            let mut flags = Vec::new();
            if *if_empty {
                flags.push("if-empty".to_owned());
            }
            if *if_unused {
                flags.push("if-unused".to_owned());
            }
            let reply = send(
                client,
                req("delete_queue", vhost, vec![queue.clone()], flags),
            )
            .await?;
            let count = reply["messages"].as_u64().unwrap_or(0);
            Ok(format!(
                "Deleting queue '{queue}' on vhost '{vhost}' ...\nQueue was successfully deleted with {count} ready messages\n"
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn binding_rows_print_in_rabbitmqctl_s_columns() {
        let rows = serde_json::json!([{"source_name": "", "source_kind": "exchange",
            "destination_name": "q", "destination_kind": "queue", "routing_key": "q",
            "arguments": []}]);
        let out = object_table(
            "Listing bindings for vhost /...",
            BINDING_COLUMNS,
            &rows,
            false,
        );
        assert_eq!(
            out,
            "Listing bindings for vhost /...\nsource_name\tsource_kind\tdestination_name\tdestination_kind\trouting_key\targuments\n\texchange\tq\tqueue\tq\t[]\n"
        );
        let json: Value =
            serde_json::from_str(&object_table("", BINDING_COLUMNS, &rows, true)).unwrap();
        assert_eq!(json, rows);
    }
}
