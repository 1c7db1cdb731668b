//! `GroupApplier`: the node runtime's side of a group, which applies committed commands to
//! the group's pure machine.

use super::types::{Request, Response};

/// Implemented by the node's runtime for each group: applies committed commands to the
/// group's pure machine. Called in log order on every member; must be deterministic.
///
/// Calls come from the group's state-machine task, one at a time. After a restart the
/// machine is rebuilt by [`GroupApplier::restore`] from the latest snapshot and then
/// [`GroupApplier::apply`] of every committed entry after it, each exactly once, in order.
pub trait GroupApplier: Send + Sync + 'static {
    /// Apply the command committed at log `index`; the reply goes back to the writer.
    fn apply(&self, index: u64, request: &Request) -> Response;
    /// The machine's whole state, serialized (a versioned format).
    fn snapshot(&self) -> Vec<u8>;
    /// Replace the machine's state with a snapshot made by [`GroupApplier::snapshot`].
    fn restore(&self, snapshot: &[u8]) -> std::io::Result<()>;
}
