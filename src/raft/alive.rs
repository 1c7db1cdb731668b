//! `Alive`: a token held by every piece of a group that openraft's tasks own (log store,
//! log readers, state machine, snapshot builders), so that stopping a group can wait until
//! those tasks are gone before the group's data is deleted or the database reopened.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;

/// Held by a group's storage adapters; the group is gone once every clone is dropped.
#[derive(Clone)]
pub(crate) struct Alive(#[allow(dead_code)] Arc<oneshot::Sender<()>>);

/// Resolves once every [`Alive`] clone of the group is dropped.
pub(crate) struct AliveWatch(oneshot::Receiver<()>);

/// A new token and its watch.
pub(crate) fn alive() -> (Alive, AliveWatch) {
    let (tx, rx) = oneshot::channel();
    (Alive(Arc::new(tx)), AliveWatch(rx))
}

impl AliveWatch {
    /// Wait until every token is dropped; false on timeout.
    pub(crate) async fn all_dropped(self, timeout: Duration) -> bool {
        // The sender is never used: the receiver resolves (with an error) when it drops.
        tokio::time::timeout(timeout, self.0).await.is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn resolves_when_the_last_clone_drops() {
        let (token, watch) = alive();
        let clone = token.clone();
        drop(token);
        let handle = tokio::spawn(watch.all_dropped(Duration::from_secs(5)));
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(!handle.is_finished());
        drop(clone);
        assert!(handle.await.unwrap());
    }
}
