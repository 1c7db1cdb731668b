//! The only user of openraft: the metadata group and one group per durable queue.
//! (Interface placeholder; replaced by the raft branch.)
#![allow(dead_code, unused_variables)]
use std::sync::Arc;
use serde::{Deserialize, Serialize};
use crate::storage::Store;
pub type GroupId = u64;
pub type NodeId = u64;
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Request { pub time_ms: u64, pub body: RequestBody }
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum RequestBody { Meta(Vec<u8>), Queue(Vec<u8>) }
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Response(pub Vec<u8>);
pub trait GroupApplier: Send + Sync + 'static {
    fn apply(&self, index: u64, request: &Request) -> Response;
    fn snapshot(&self) -> Vec<u8>;
    fn restore(&self, snapshot: &[u8]) -> std::io::Result<()>;
}
#[derive(Debug)]
pub enum RaftError { X }
#[derive(Debug)]
pub enum WriteError { NotLeader { leader: Option<NodeId> }, Unknown(String), Fatal(String) }
#[derive(Clone)]
pub struct RaftRegistry;
impl RaftRegistry {
    pub fn new(store: Store, node_id: NodeId) -> Self { todo!() }
    pub async fn start_group(&self, group: GroupId, applier: Arc<dyn GroupApplier>) -> Result<GroupHandle, RaftError> { todo!() }
    pub async fn remove_group(&self, group: GroupId) -> Result<(), RaftError> { todo!() }
    pub async fn shutdown(&self) { todo!() }
}
#[derive(Clone)]
pub struct GroupHandle;
impl GroupHandle { pub async fn write(&self, request: Request) -> Result<Response, WriteError> { todo!() } }
