//! A connection as operators see it (`warrenctl list_connections`, `list_channels`,
//! `list_consumers`, `close_connection`): its entry in the node's connection registry,
//! a forced close, and a report of its channels read from the connection's own state
//! when asked, so nothing is kept up to date per message.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use super::connection::Connection;
use super::error::AmqpError;
use super::handshake::Session;
use crate::amqp::ReplyCode;
use crate::broker::{ChannelInfo, ConnControl, ConnectionInfo};

impl Connection {
    pub(super) fn handle_control(&mut self, control: ConnControl) {
        match control {
            // As `rabbit_reader:shutdown`: 320 with the operator's reason.
            ConnControl::Close { reason } => {
                tracing::info!(reason, "closing the connection at an operator's request");
                self.close_connection(&AmqpError::new(ReplyCode::ConnectionForced, reason));
            }
            ConnControl::Channels { reply } => {
                let _ = reply.send(self.channel_infos());
            }
        }
    }

    /// The open channels, by number.
    fn channel_infos(&self) -> Vec<ChannelInfo> {
        let mut infos: Vec<ChannelInfo> = self
            .channels
            .iter()
            .map(|(&number, ch)| {
                let (messages_uncommitted, acks_uncommitted) = ch
                    .tx
                    .as_ref()
                    .map_or((0, 0), |(publishes, acks)| (publishes.len(), acks.len()));
                let mut consumers: Vec<_> = ch.consumers.values().map(|c| c.info.clone()).collect();
                consumers.sort_by(|a, b| a.tag.cmp(&b.tag));
                ChannelInfo {
                    number,
                    confirm: ch.confirm,
                    transactional: ch.tx.is_some(),
                    messages_unacknowledged: ch.unacked.len() as u64,
                    messages_unconfirmed: ch.unconfirmed.len() as u64,
                    messages_uncommitted: messages_uncommitted as u64,
                    acks_uncommitted: acks_uncommitted as u64,
                    prefetch_count: ch.prefetch,
                    global_prefetch_count: ch.credit.limit.load(Ordering::Relaxed),
                    consumers,
                    stats: Some(ch.stats.snapshot()),
                }
            })
            .collect();
        infos.sort_by_key(|c| c.number);
        infos
    }
}

/// What the connection registry shows of a connection that finished its handshake.
pub(super) fn connection_info(
    id: u64,
    (peer, local): (SocketAddr, SocketAddr),
    connected_at: u64,
    session: &Session,
) -> ConnectionInfo {
    ConnectionInfo {
        id,
        peer,
        local,
        user: session.user.clone(),
        vhost: session.vhost.clone(),
        auth_mechanism: session.auth_mechanism.clone(),
        client_properties: session.client_properties.clone(),
        connected_at,
        frame_max: session.frame_max,
        channel_max: session.channel_max,
        heartbeat: session.heartbeat,
    }
}
