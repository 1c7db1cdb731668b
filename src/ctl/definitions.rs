//! warrenctl's `export_definitions` and `import_definitions`, with rabbitmqctl 3.10.8's
//! arguments, banners, output and exit codes (measured). warrenctl reads and writes the
//! file; the node exports and imports (`node/definitions.rs`).
//!
//! `export_definitions -` prints the JSON alone (no banner, no newline); with
//! `--formatter json` it is wrapped as `{"message": "<the JSON>"}`. `import_definitions`
//! without a file (or with `-`, which 3.10.8 refuses as a missing file) reads standard
//! input. What an import skips, as RabbitMQ skips it, is said on stderr.

use std::path::Path;

use clap::Subcommand;
use serde_json::{json, Value};

use super::access::send;
use super::{exit, Failure, Formatter};
use crate::cluster::{AdminClient, CommandRequest};

/// rabbitmqctl's definitions commands.
#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum DefinitionCommand {
    /// Export users, vhosts, permissions, limits, policies, queues, exchanges and
    /// bindings as RabbitMQ's definitions JSON, to FILE or ("-") to standard output
    #[command(name = "export_definitions")]
    ExportDefinitions {
        #[arg(value_name = "FILE")]
        file: String,
        /// Only json
        #[arg(long, default_value = "json", value_parser = ["json"])]
        format: String,
    },
    /// Import a definitions file (RabbitMQ's JSON; standard input without FILE or with
    /// "-"): all of it, or nothing if an entry is refused
    #[command(name = "import_definitions")]
    ImportDefinitions {
        #[arg(value_name = "FILE")]
        file: Option<String>,
        /// Only json
        #[arg(long, default_value = "json", value_parser = ["json"])]
        format: String,
    },
}

/// rabbitmqctl's refusal of a path argument (exit 65).
fn bad_argument(what: &str, path: &Path) -> Failure {
    Failure::new(
        exit::DATAERR,
        format!("Bad argument: {what} {} does not exist", path.display()),
    )
    .with_heading("Error (argument validation): ")
}

/// Run one definitions command; returns what to print on stdout.
pub(super) async fn run(
    client: &mut AdminClient,
    cmd: &DefinitionCommand,
    formatter: Formatter,
) -> Result<String, Failure> {
    let json = formatter == Formatter::Json;
    let request = |command: &str, args: Vec<String>| CommandRequest {
        command: command.into(),
        args,
        vhost: "/".into(),
        flags: Vec::new(),
    };
    match cmd {
        DefinitionCommand::ExportDefinitions { file, .. } => {
            let to_file = (file != "-").then(|| Path::new(file));
            if let Some(path) = to_file {
                let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
                if let Some(dir) = dir.filter(|d| !d.is_dir()) {
                    return Err(bad_argument("Directory", dir));
                }
            }
            let definitions = send(client, request("export_definitions", Vec::new())).await?;
            let text = definitions.to_string();
            let Some(path) = to_file else {
                return Ok(match json {
                    true => json!({ "message": text }).to_string(),
                    false => text,
                });
            };
            std::fs::write(path, text)
                .map_err(|e| Failure::new(exit::CANTCREAT, format!("cannot write {file}: {e}")))?;
            Ok(match json {
                true => String::new(),
                false => format!("Exporting definitions in JSON to a file at \"{file}\" ...\n"),
            })
        }
        DefinitionCommand::ImportDefinitions { file, .. } => {
            let from_file = file.as_deref().filter(|f| *f != "-").map(Path::new);
            let (banner, text) = match from_file {
                Some(path) => {
                    if !path.is_file() {
                        return Err(bad_argument("File", path));
                    }
                    let text = std::fs::read_to_string(path).map_err(|e| {
                        Failure::new(
                            exit::DATAERR,
                            format!("cannot read {}: {e}", path.display()),
                        )
                    })?;
                    let banner = format!(
                        "Importing definitions in JSON from a file at \"{}\" ...\n",
                        path.display()
                    );
                    (banner, text)
                }
                None => {
                    let text = std::io::read_to_string(std::io::stdin()).map_err(|e| {
                        Failure::new(exit::DATAERR, format!("cannot read standard input: {e}"))
                    })?;
                    let banner = "Importing definitions in JSON from standard input ...\n";
                    (banner.to_owned(), text)
                }
            };
            // rabbitmqctl prints its banner before the node answers, refusal or not.
            let banner = if json { String::new() } else { banner };
            let reply = send(client, request("import_definitions", vec![text]))
                .await
                .map_err(|f| f.with_stdout(banner.clone()))?;
            for note in reply["skipped"].as_array().into_iter().flatten() {
                eprintln!("Warning: {}", note.as_str().unwrap_or_default());
            }
            Ok(match json {
                true => json!({"node": node_name(client).await, "result": "ok"}).to_string(),
                false => format!("{banner}Successfully started definition import. This process is asynchronous and can take some time.\n"),
            })
        }
    }
}

/// The node's name, as rabbitmqctl's JSON result names it.
async fn node_name(client: &mut AdminClient) -> Value {
    match client.status().await {
        Ok(status) => json!(status.node_name),
        Err(_) => Value::Null,
    }
}
