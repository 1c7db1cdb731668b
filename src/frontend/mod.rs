//! One task per client connection: handshake, heartbeats, channels, publish assembly,
//! confirms, transactions, consumers, delivery tags and prefetch.

mod access;
mod basic;
mod channel;
mod conn_events;
mod connection;
mod control;
mod declare;
mod error;
mod handshake;
mod methods;
mod parked;
mod publish;
mod publish_checks;

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;

pub use error::{AmqpError, AmqpResult, Scope};
pub use handshake::parse_credentials;

use crate::broker::Broker;

/// Accept AMQP clients until `shutdown` turns true; each gets its own task.
pub async fn serve(
    listener: TcpListener,
    broker: Arc<Broker>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let broker = broker.clone();
                    let shutdown = shutdown.clone();
                    tokio::spawn(connection::serve(stream, peer, broker, shutdown));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            _ = shutdown.changed() => return,
        }
    }
}
