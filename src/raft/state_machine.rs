//! The openraft state machine of one group: hands committed entries to the group's
//! `GroupApplier`, answers the writer through the apply responder, and keeps the group's
//! snapshot in storage.
//!
//! The machine itself is in memory (transient): on start openraft restores the stored
//! snapshot through [`GroupApplier::restore`], then re-applies the committed entries after
//! it. Snapshots are made durable before openraft is told, so it purges the log only up to
//! a snapshot that is on disk.

use std::io;
use std::sync::{Arc, Mutex};

use futures::{Stream, StreamExt};
use openraft::storage::{EntryResponder, RaftSnapshotBuilder, RaftStateMachine};
use openraft::{EntryPayload, OptionalSend};
use serde::{Deserialize, Serialize};

use super::alive::Alive;
use super::applier::GroupApplier;
use super::types::{
    decode, encode, LogId, Response, Snapshot, SnapshotData, SnapshotMeta, StoredMembership,
    TypeConfig,
};
use crate::storage::{GroupStore, MetaKey};

/// The stored form of a snapshot. Versioned: add fields only in a new variant.
#[derive(Serialize, Deserialize)]
enum StoredSnapshot {
    V1 {
        last_log_id: Option<LogId>,
        membership: StoredMembership,
        data: Vec<u8>,
    },
}

impl StoredSnapshot {
    fn new(meta: &SnapshotMeta, data: Vec<u8>) -> Self {
        StoredSnapshot::V1 {
            last_log_id: meta.last_log_id,
            membership: meta.last_membership.clone(),
            data,
        }
    }

    fn into_snapshot(self) -> Snapshot {
        let StoredSnapshot::V1 {
            last_log_id,
            membership,
            data,
        } = self;
        Snapshot {
            meta: SnapshotMeta {
                last_log_id,
                last_membership: membership,
            },
            snapshot: data,
        }
    }
}

/// One group's state machine adapter.
pub(crate) struct GroupStateMachine {
    applier: Arc<dyn GroupApplier>,
    store: GroupStore,
    last_applied: Option<LogId>,
    membership: StoredMembership,
    /// The log id of the snapshot in storage, shared with the builders: a snapshot is
    /// written only if newer, and restoring the stored one does not rewrite it.
    stored_snapshot: Arc<Mutex<Option<LogId>>>,
    alive: Alive,
}

impl GroupStateMachine {
    pub(crate) fn new(store: GroupStore, applier: Arc<dyn GroupApplier>, alive: Alive) -> Self {
        GroupStateMachine {
            applier,
            store,
            last_applied: None,
            membership: StoredMembership::default(),
            stored_snapshot: Arc::default(),
            alive,
        }
    }

    fn builder(&self) -> GroupSnapshotBuilder {
        GroupSnapshotBuilder {
            meta: SnapshotMeta {
                last_log_id: self.last_applied,
                last_membership: self.membership.clone(),
            },
            data: Some(self.applier.snapshot()),
            store: self.store.clone(),
            stored_snapshot: self.stored_snapshot.clone(),
            _alive: self.alive.clone(),
        }
    }
}

impl RaftStateMachine<TypeConfig> for GroupStateMachine {
    type SnapshotData = SnapshotData;
    type SnapshotBuilder = GroupSnapshotBuilder;

    async fn applied_state(&mut self) -> io::Result<(Option<LogId>, StoredMembership)> {
        Ok((self.last_applied, self.membership.clone()))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> io::Result<()>
    where
        Strm: Stream<Item = io::Result<EntryResponder<TypeConfig>>> + Unpin + OptionalSend,
    {
        while let Some(item) = entries.next().await {
            let (entry, responder) = item?;
            let response = match &entry.payload {
                EntryPayload::Blank => Response::default(),
                EntryPayload::Normal(request) => self.applier.apply(entry.log_id.index(), request),
                EntryPayload::Membership(membership) => {
                    self.membership = StoredMembership::new(Some(entry.log_id), membership.clone());
                    Response::default()
                }
            };
            self.last_applied = Some(entry.log_id);
            if let Some(responder) = responder {
                responder.send(response);
            }
        }
        Ok(())
    }

    async fn try_create_snapshot_builder(&mut self, _force: bool) -> Option<Self::SnapshotBuilder> {
        // Captured here, in the state-machine task, so the state matches `last_applied`
        // although openraft builds the snapshot in another task.
        Some(self.builder())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.builder()
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: SnapshotData,
    ) -> io::Result<()> {
        self.applier.restore(&snapshot)?;
        self.last_applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        // The stored snapshot itself (restart) is not rewritten; a leader's is made durable
        // before openraft purges the log up to it.
        let stored = StoredSnapshot::new(meta, snapshot);
        write_if_newer(
            &self.store,
            &self.stored_snapshot,
            &meta.last_log_id,
            &stored,
        )
        .await
    }

    async fn get_current_snapshot(&mut self) -> io::Result<Option<Snapshot>> {
        let Some(bytes) = self.store.get_meta(MetaKey::Snapshot)? else {
            return Ok(None);
        };
        let snapshot = decode::<StoredSnapshot>(&bytes)?.into_snapshot();
        let mut stored = self
            .stored_snapshot
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if *stored < snapshot.meta.last_log_id {
            *stored = snapshot.meta.last_log_id;
        }
        Ok(Some(snapshot))
    }
}

/// A snapshot captured from the machine, written to storage when openraft builds it.
pub(crate) struct GroupSnapshotBuilder {
    meta: SnapshotMeta,
    data: Option<Vec<u8>>,
    store: GroupStore,
    stored_snapshot: Arc<Mutex<Option<LogId>>>,
    _alive: Alive,
}

impl RaftSnapshotBuilder<TypeConfig> for GroupSnapshotBuilder {
    type SnapshotData = SnapshotData;

    async fn build_snapshot(&mut self) -> io::Result<Snapshot> {
        let data = self.data.take().unwrap_or_default();
        let stored = StoredSnapshot::new(&self.meta, data);
        // Durable before openraft learns of it and purges the log up to it.
        write_if_newer(
            &self.store,
            &self.stored_snapshot,
            &self.meta.last_log_id,
            &stored,
        )
        .await?;
        Ok(stored.into_snapshot())
    }
}

/// Store `snapshot` (taken at `at`) unless storage already holds one at `at` or later, then
/// wait until storage is flushed.
async fn write_if_newer(
    store: &GroupStore,
    stored_at: &Mutex<Option<LogId>>,
    at: &Option<LogId>,
    snapshot: &StoredSnapshot,
) -> io::Result<()> {
    {
        let mut stored = stored_at.lock().unwrap_or_else(|e| e.into_inner());
        if *stored < *at {
            store.put_meta(MetaKey::Snapshot, &encode(snapshot)?)?;
            *stored = *at;
        }
    }
    // Also when skipped: whoever wrote the stored snapshot may still be waiting for its flush.
    store.flush().await
}
