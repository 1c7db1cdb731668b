//! The metadata machine: vhosts, users, permissions, exchanges, queues and bindings.
//! (Interface placeholder; replaced by the metadata branch.)
#![allow(dead_code, unused_variables)]

use std::collections::BTreeSet;

use amq_protocol::types::FieldTable;
use serde::{Deserialize, Serialize};

use crate::amqp::ReplyCode;

pub use crate::queue::ApplyMeta;
pub type OwnerId = (u64, u64);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExchangeKind { Direct, Fanout, Topic, Headers }
impl ExchangeKind { pub fn parse(s: &str) -> Option<Self> { todo!() } }
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Destination { Queue(String), Exchange(String) }
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum MetaCommand {
    Bootstrap { default_user: String, password_hash: String },
    DeclareExchange { vhost: String, name: String, kind: ExchangeKind, durable: bool, auto_delete: bool, internal: bool, arguments: FieldTable },
    DeleteExchange { vhost: String, name: String, if_unused: bool },
    DeclareQueue { vhost: String, name: String, durable: bool, exclusive_owner: Option<OwnerId>, auto_delete: bool, arguments: FieldTable, node: u64 },
    DeleteQueue { vhost: String, name: String },
    Bind { vhost: String, source: String, destination: Destination, routing_key: String, arguments: FieldTable },
    Unbind { vhost: String, source: String, destination: Destination, routing_key: String, arguments: FieldTable },
    DeleteQueuesOfOwner { owner: OwnerId },
    DeleteTransientQueuesOfNode { node: u64 },
}
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaError { pub code: ReplyCode, pub text: String }
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum MetaReply { Ok, Error(MetaError) }
pub enum MetaEffect { QueueDeleted { vhost: String, name: String, group_id: u64 } }
#[derive(Clone, Debug)]
pub struct ExchangeRecord { pub internal: bool }
#[derive(Clone, Debug)]
pub struct QueueRecord { pub name: String, pub durable: bool, pub exclusive_owner: Option<OwnerId>, pub auto_delete: bool, pub group_id: u64 }
pub struct RouteResult { pub queues: BTreeSet<String> }
#[derive(Default)]
pub struct MetaState;
pub struct Permissions;
pub fn hash_password(p: &str, salt: [u8; 4]) -> String { todo!() }
impl MetaState {
    pub fn apply(&mut self, meta: ApplyMeta, cmd: MetaCommand) -> (MetaReply, Vec<MetaEffect>) { todo!() }
    pub fn to_snapshot(&self) -> Vec<u8> { todo!() }
    pub fn from_snapshot(b: &[u8]) -> Result<Self, String> { todo!() }
    pub fn vhost_exists(&self, v: &str) -> bool { todo!() }
    pub fn check_password(&self, u: &str, p: &str) -> bool { todo!() }
    pub fn permissions(&self, u: &str, v: &str) -> Option<&Permissions> { todo!() }
    pub fn exchange(&self, v: &str, n: &str) -> Option<&ExchangeRecord> { todo!() }
    pub fn queue(&self, v: &str, n: &str) -> Option<&QueueRecord> { todo!() }
    pub fn route(&self, v: &str, x: &str, rk: &str, h: Option<&FieldTable>) -> RouteResult { todo!() }
    pub fn has_transient_queues_of(&self, node: u64) -> bool { todo!() }
    pub fn has_queues_of_owner(&self, o: OwnerId) -> bool { todo!() }
    pub fn all_queues(&self) -> impl Iterator<Item = (&str, &QueueRecord)> { std::iter::empty() }
}
