//! Applies a durable queue's committed Raft entries to its queue machine.

use std::sync::{Arc, Mutex};

use bytes::Bytes;

use crate::queue::{ApplyMeta, QueueCommand, QueueMachine, QueueReply};
use crate::raft::{GroupApplier, Request, RequestBody, Response};

/// The queue machine of one durable queue, shared with its actor for reads.
pub(crate) struct QueueApplier {
    pub machine: Arc<Mutex<QueueMachine>>,
}

impl QueueApplier {
    /// A fresh queue machine and the applier that feeds it.
    pub(crate) fn with_new_machine() -> (Arc<Mutex<QueueMachine>>, Arc<QueueApplier>) {
        let machine = Arc::new(Mutex::new(QueueMachine::default()));
        let applier = Arc::new(QueueApplier {
            machine: machine.clone(),
        });
        (machine, applier)
    }
}

impl GroupApplier for QueueApplier {
    fn apply(&self, index: u64, request: &Request) -> Response {
        let RequestBody::Queue(bytes) = &request.body else {
            tracing::error!(index, "metadata command in a queue group");
            return Response(Bytes::new());
        };
        let cmds: Vec<QueueCommand> = match postcard::from_bytes(bytes) {
            Ok(cmds) => cmds,
            Err(e) => {
                // Every member fails the same way, so replicas stay equal.
                tracing::error!(index, error = %e, "undecodable queue command");
                Vec::new()
            }
        };
        let meta = ApplyMeta {
            index,
            time_ms: request.time_ms,
        };
        let mut machine = self.machine.lock().expect("queue machine lock");
        let replies: Vec<QueueReply> = cmds
            .into_iter()
            .map(|cmd| machine.apply(meta, cmd).0)
            .collect();
        Response(
            postcard::to_allocvec(&replies)
                .expect("encode queue replies")
                .into(),
        )
    }

    fn snapshot(&self) -> Vec<u8> {
        self.machine
            .lock()
            .expect("queue machine lock")
            .to_snapshot()
    }

    fn restore(&self, snapshot: &[u8]) -> std::io::Result<()> {
        let machine = QueueMachine::from_snapshot(snapshot)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?;
        *self.machine.lock().expect("queue machine lock") = machine;
        Ok(())
    }
}
