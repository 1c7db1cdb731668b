//! A cheap, cloneable address of a running queue actor.

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
    tx: mpsc::UnboundedSender<QueueMsg>,
}

impl QueueHandle {
    pub(crate) fn new(vhost: String, name: String, tx: mpsc::UnboundedSender<QueueMsg>) -> Self {
        QueueHandle {
            inner: Arc::new(Inner { vhost, name, tx }),
        }
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
}
