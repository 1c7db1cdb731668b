//! WarrenMQ: a RabbitMQ-compatible AMQP 0-9-1 broker whose durable state is replicated
//! with Raft (openraft) and stored in sled.
//!
//! # Map
//! - [`amqp`]: the AMQP 0-9-1 wire format only (frames, methods, properties, reply codes).
//! - [`frontend`]: one task per client connection: handshake, channels, publish assembly,
//!   confirms, transactions, consumers, prefetch.
//! - [`routing`]: pure exchange routing (direct, fanout, topic, headers) over a bindings index.
//! - [`queue`]: the pure, deterministic queue machine (`apply(meta, command)`).
//! - [`metadata`]: the pure metadata machine (vhosts, users, exchanges, queues, bindings).
//! - [`broker`]: the node-local runtime that executes the machines' effects: queue actors
//!   with their leader-side consumer registry, and the metadata read model.
//! - [`raft`]: the only user of openraft: one metadata group and one group per durable queue.
//! - [`storage`]: the only user of sled: per-group logs, votes and snapshots, group commit.
//! - [`management`]: the only user of axum: RabbitMQ's management HTTP API (`/api/*`) on
//!   each node, over the node's admin interface.
//! - [`stats`]: message statistics (publish, deliver, ack, ... per node, queue and
//!   exchange, with sampled rates) for the management API and Prometheus.
//! - [`config`] and [`node`]: configuration and the wiring of one node.
//!
//! # Publish flow
//! A client's `basic.publish` is assembled by [`frontend`] from its method, header and body
//! frames; [`routing`] resolves the target queues from the local metadata read model; each
//! target queue's actor in [`broker`] proposes an `Enqueue{enqueuer, seq, message}` to the
//! queue's Raft group (or applies it in memory for a transient queue); once the command is
//! committed (and therefore fsynced by the [`storage`] group commit) the reply flows back and
//! the channel sends `basic.ack` when every target queue has accepted.

pub mod amqp;
pub mod broker;
pub mod cluster;
pub mod config;
pub mod ctl;
pub mod frontend;
pub mod management;
pub mod metadata;
pub mod node;
pub mod queue;
pub mod raft;
pub mod routing;
pub mod stats;
pub mod storage;
