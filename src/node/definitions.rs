//! rabbitmqctl's `export_definitions` and `import_definitions` on the node, and the
//! node's `load_definitions` at boot: the export comes from the local metadata; an import
//! is read here (plain passwords hashed with fresh salts), proposed as one
//! `ImportDefinitions` command the machine applies whole or not at all, and its new queues
//! homed on this node are started, as a declare starts them. Exit codes and texts are
//! rabbitmqctl 3.10.8's (measured): 65 for a file that is not JSON, 70 for JSON that is
//! not an object, 69 for an entry refused.

use std::path::Path;
use std::sync::Arc;

use serde_json::json;
use tracing::{info, warn};

use super::access::{code, Refusal};
use super::control::AppView;
use crate::amqp::ReplyCode;
use crate::broker::Broker;
use crate::cluster::{CommandOutcome, CommandRequest};
use crate::metadata::definitions::{export, parse, ParseError};
use crate::metadata::{MetaCommand, MetaReply};

/// The commands this module answers.
pub(super) fn handles(command: &str) -> bool {
    matches!(command, "export_definitions" | "import_definitions")
}

/// `export_definitions` answers with the definitions JSON; `import_definitions` takes
/// the file's text as its argument and answers with what was skipped.
pub(super) async fn run(view: &AppView, req: &CommandRequest) -> CommandOutcome {
    match req.command.as_str() {
        "export_definitions" => {
            let definitions = export(&view.broker.read_meta(), env!("CARGO_PKG_VERSION"));
            CommandOutcome::with_json(definitions.to_string())
        }
        "import_definitions" => {
            let Some(text) = req.args.first() else {
                return CommandOutcome::refused(64, "import_definitions: no definitions given");
            };
            match import(&view.broker, text).await {
                Ok(skipped) => CommandOutcome::with_json(json!({ "skipped": skipped }).to_string()),
                Err((exit_code, error)) => CommandOutcome::refused(exit_code, error),
            }
        }
        other => CommandOutcome::refused(code::SOFTWARE, format!("unknown command '{other}'")),
    }
}

/// Import a definitions file's text; returns what was skipped, as RabbitMQ skips it.
pub(super) async fn import(broker: &Arc<Broker>, text: &str) -> Result<Vec<String>, Refusal> {
    let parsed = parse(text, rand::random).map_err(|e| match e {
        ParseError::Json(e) => (
            code::DATAERR,
            format!("Failed to deserialise input (format: JSON) (error: {e})"),
        ),
        ParseError::NotAnObject(e) => (code::SOFTWARE, e),
        ParseError::Entry(e) => (code::UNAVAILABLE, e),
    })?;
    let queues: Vec<(String, String)> = parsed
        .definitions
        .queues
        .iter()
        .map(|q| (q.vhost.clone(), q.name.clone()))
        .collect();
    let cmd = MetaCommand::ImportDefinitions {
        definitions: parsed.definitions,
        node: broker.node_id(),
    };
    let reply = broker.propose(cmd).await.map_err(|e| match e.code {
        // The machine's refusal names its entry; anything else is the node's failure.
        ReplyCode::PreconditionFailed => (code::UNAVAILABLE, e.text),
        _ => (code::SOFTWARE, e.text),
    })?;
    let mut skipped = parsed.skipped;
    if let MetaReply::DefinitionsImported { skipped: more } = reply {
        skipped.extend(more);
    }
    for note in &skipped {
        warn!(note, "definitions import skipped an entry");
    }
    // Start the queues that live on this node alone, as a declare does (replicated
    // queues start on each member as the machine's effects arrive there).
    let me = broker.node_id();
    for (vhost, name) in queues {
        let here = broker
            .queue_records(&vhost)
            .and_then(|qs| qs.into_iter().find(|q| q.name == name))
            .is_some_and(|q| q.members == [me]);
        if here {
            if let Err(e) = broker.ensure_queue(&vhost, &name).await {
                warn!(vhost, name, error = ?e, "could not start an imported queue");
            }
        }
    }
    Ok(skipped)
}

/// `load_definitions` at boot: a file, or every `*.json` file of a directory in name
/// order (as RabbitMQ's), imported once the app runs.
pub(super) async fn load(broker: &Arc<Broker>, path: &Path) -> Result<(), String> {
    let files = match path.is_dir() {
        false => vec![path.to_path_buf()],
        true => {
            let entries =
                std::fs::read_dir(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let mut files: Vec<_> = entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect();
            files.sort();
            files
        }
    };
    for file in files {
        let text =
            std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        let skipped = import(broker, &text)
            .await
            .map_err(|(_, e)| format!("{}: {e}", file.display()))?;
        info!(file = %file.display(), skipped = skipped.len(), "definitions loaded");
    }
    Ok(())
}
