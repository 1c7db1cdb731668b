//! A cheap, cloneable address of a running queue actor, or of the remote side of a link
//! to the node that runs it (the frontend cannot tell them apart).

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::events::{QueueMsg, QueueStatus};

/// The address of one queue's actor on this node.
#[derive(Clone, Debug)]
pub struct QueueHandle {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    vhost: String,
    name: String,
    /// True for a link to another node's actor (`remote_queue.rs`).
    remote: bool,
    tx: mpsc::UnboundedSender<QueueMsg>,
}

impl QueueHandle {
    pub(crate) fn new(vhost: String, name: String, tx: mpsc::UnboundedSender<QueueMsg>) -> Self {
        Self::with_kind(vhost, name, tx, false)
    }

    pub(crate) fn with_kind(
        vhost: String,
        name: String,
        tx: mpsc::UnboundedSender<QueueMsg>,
        remote: bool,
    ) -> Self {
        QueueHandle {
            inner: Arc::new(Inner {
                vhost,
                name,
                remote,
                tx,
            }),
        }
    }

    /// A link to the actor on another node, not the actor itself.
    pub fn is_remote(&self) -> bool {
        self.inner.remote
    }

    /// Resolves once the actor (or link) has stopped.
    pub async fn closed(&self) {
        self.inner.tx.closed().await
    }

    pub fn vhost(&self) -> &str {
        &self.inner.vhost
    }

    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Send a request; false when the actor has stopped (the queue was deleted).
    pub fn send(&self, msg: QueueMsg) -> bool {
        self.inner.tx.send(msg).is_ok()
    }

    pub fn is_closed(&self) -> bool {
        self.inner.tx.is_closed()
    }

    /// Ready/unacked/consumer counts; `None` if the actor has stopped.
    pub async fn status(&self) -> Option<QueueStatus> {
        let (reply, rx) = oneshot::channel();
        if !self.send(QueueMsg::Status { reply }) {
            return None;
        }
        rx.await.ok()
    }

    /// Same actor?
    pub fn same(&self, other: &QueueHandle) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// A key that is equal for two handles exactly when they are [`Self::same`] (while
    /// both live).
    pub fn key(&self) -> usize {
        Arc::as_ptr(&self.inner) as usize
    }
}
