//! The only user of openraft: the metadata group and one group per durable queue.
//! (Temporary in-memory placeholder used to exercise the node until the raft branch lands.)
#![allow(dead_code, unused_variables)]
use crate::storage::Store;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
pub type GroupId = u64;
pub type NodeId = u64;
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Request {
    pub time_ms: u64,
    pub body: RequestBody,
}
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum RequestBody {
    Meta(Vec<u8>),
    Queue(Vec<u8>),
}
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Response(pub Vec<u8>);
pub trait GroupApplier: Send + Sync + 'static {
    fn apply(&self, index: u64, request: &Request) -> Response;
    fn snapshot(&self) -> Vec<u8>;
    fn restore(&self, snapshot: &[u8]) -> std::io::Result<()>;
}
#[derive(Debug)]
pub enum RaftError {
    X,
}
#[derive(Debug)]
pub enum WriteError {
    NotLeader { leader: Option<NodeId> },
    Unknown(String),
    Fatal(String),
}
#[derive(Clone, Default)]
pub struct RaftRegistry {
    groups: Arc<Mutex<HashMap<GroupId, GroupHandle>>>,
}
impl RaftRegistry {
    pub fn new(store: Store, node_id: NodeId) -> Self {
        RaftRegistry::default()
    }
    pub async fn start_group(
        &self,
        group: GroupId,
        applier: Arc<dyn GroupApplier>,
    ) -> Result<GroupHandle, RaftError> {
        let h = GroupHandle {
            applier,
            index: Arc::new(Mutex::new(0)),
        };
        self.groups.lock().unwrap().insert(group, h.clone());
        Ok(h)
    }
    pub async fn remove_group(&self, group: GroupId) -> Result<(), RaftError> {
        self.groups.lock().unwrap().remove(&group);
        Ok(())
    }
    pub async fn shutdown(&self) {}
}
#[derive(Clone)]
pub struct GroupHandle {
    applier: Arc<dyn GroupApplier>,
    index: Arc<Mutex<u64>>,
}
impl GroupHandle {
    pub async fn write(&self, request: Request) -> Result<Response, WriteError> {
        let mut i = self.index.lock().unwrap();
        *i += 1;
        Ok(self.applier.apply(*i, &request))
    }
}
