//! Channel-level methods: dispatch to their class (exchange and queue in `declare.rs`,
//! basic in `basic.rs`), and the channel, confirm and tx classes.

use amq_protocol::protocol::{access, channel, confirm, tx};

use super::channel::{Channel, TxAck, TxPublish};
use super::connection::Connection;
use super::error::{AmqpError, AmqpResult};
use crate::amqp::{encode_method, AMQPClass, ReplyCode};
use crate::broker::{BrokerResult, Routed};
use crate::stats::LinkKind;

fn reply(out: &mut Vec<u8>, ch: u16, m: AMQPClass) {
    encode_method(out, ch, &m);
}

pub(super) fn random_name(prefix: &str) -> String {
    use base64::Engine;
    let bytes: [u8; 16] = rand::random();
    format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

impl Connection {
    pub(super) fn channel(&mut self, ch: u16) -> AmqpResult<&mut Channel> {
        match self.channels.get_mut(&ch) {
            Some(c) => Ok(c),
            None => Err(AmqpError::new(
                ReplyCode::ChannelError,
                "expected 'channel.open'",
            )),
        }
    }

    /// An empty queue name means the channel's last declared queue (RabbitMQ's shortcut).
    pub(super) fn queue_name(&mut self, ch: u16, name: &str) -> AmqpResult<String> {
        if !name.is_empty() {
            return Ok(name.to_owned());
        }
        self.channel(ch)?
            .last_queue
            .clone()
            .ok_or_else(|| AmqpError::new(ReplyCode::NotFound, "no previously declared queue"))
    }

    /// The queue and routing key a queue.bind / queue.unbind means: an empty queue name is
    /// the last declared queue, and with both names empty the key is that queue's name.
    pub(super) fn binding_names(
        &mut self,
        ch: u16,
        queue: &str,
        key: &str,
    ) -> AmqpResult<(String, String)> {
        let name = self.queue_name(ch, queue)?;
        let key = match (queue, key) {
            ("", "") => name.clone(),
            (_, key) => key.to_owned(),
        };
        Ok((name, key))
    }

    pub(super) fn handle_channel_method(&mut self, ch: u16, method: AMQPClass) -> AmqpResult<()> {
        if let AMQPClass::Channel(channel::AMQPMethod::Open(_)) = method {
            if self.channels.contains_key(&ch) {
                return Err(AmqpError::new(
                    ReplyCode::ChannelError,
                    "second 'channel.open' seen",
                ));
            }
            // A user's `max-channels` closes the connection, as RabbitMQ does.
            let broker = self.broker.clone();
            let (user, vhost) = (self.session.user.clone(), self.session.vhost.clone());
            let fut = async move { broker.check_channel_limit(&user, &vhost).await };
            return self.park(ch, fut, move |conn, allowed| {
                allowed.map_err(|e| AmqpError::from(e).on((20, 10)))?;
                let enqueuer = rand::random();
                let stats = conn.broker.stats().links().open(LinkKind::Channel);
                conn.channels.insert(ch, Channel::new(enqueuer, stats));
                conn.registration.set_channels(conn.channels.len());
                let ok = AMQPClass::Channel(channel::AMQPMethod::OpenOk(channel::OpenOk {}));
                reply(&mut conn.out, ch, ok);
                Ok(())
            });
        }
        let channel = self.channel(ch)?;
        if channel.closing {
            // Awaiting close-ok: everything else is dropped, as RabbitMQ does.
            match method {
                AMQPClass::Channel(channel::AMQPMethod::CloseOk(_)) => {
                    self.channels.remove(&ch);
                    self.registration.set_channels(self.channels.len());
                }
                AMQPClass::Channel(channel::AMQPMethod::Close(_)) => {
                    self.channels.remove(&ch);
                    self.registration.set_channels(self.channels.len());
                    reply(
                        &mut self.out,
                        ch,
                        AMQPClass::Channel(channel::AMQPMethod::CloseOk(channel::CloseOk {})),
                    );
                }
                _ => {}
            }
            return Ok(());
        }
        if let Some(assembly) = &channel.assembly {
            // RabbitMQ names the publish whose content was interrupted, not the new method.
            let text = match assembly.header {
                None => {
                    "expected content header for class 60, got non content header frame instead"
                }
                Some(_) => "expected content body, got non content body frame instead",
            };
            return Err(AmqpError::new(ReplyCode::UnexpectedFrame, text).on((60, 40)));
        }
        let vhost = self.session.vhost.clone();
        match method {
            AMQPClass::Channel(m) => self.channel_method(ch, m),
            AMQPClass::Exchange(m) => self.exchange_method(ch, &vhost, m),
            AMQPClass::Queue(m) => self.queue_method(ch, &vhost, m),
            AMQPClass::Basic(m) => self.basic_method(ch, &vhost, m),
            AMQPClass::Confirm(confirm::AMQPMethod::Select(sel)) => {
                let channel = self.channel(ch)?;
                if channel.tx.is_some() {
                    return Err(AmqpError::new(
                        ReplyCode::PreconditionFailed,
                        "cannot switch from tx to confirm mode",
                    ));
                }
                channel.confirm = true;
                if !sel.nowait {
                    reply(
                        &mut self.out,
                        ch,
                        AMQPClass::Confirm(confirm::AMQPMethod::SelectOk(confirm::SelectOk {})),
                    );
                }
                Ok(())
            }
            AMQPClass::Tx(m) => self.tx_method(ch, m),
            // Deprecated in 0-9-1; RabbitMQ still answers it with ticket 1.
            AMQPClass::Access(access::AMQPMethod::Request(_)) => {
                reply(
                    &mut self.out,
                    ch,
                    AMQPClass::Access(access::AMQPMethod::RequestOk(access::RequestOk {})),
                );
                Ok(())
            }
            other => Err(AmqpError::new(
                ReplyCode::CommandInvalid,
                format!(
                    "method {}.{} is not valid here",
                    other.get_amqp_class_id(),
                    other.get_amqp_method_id()
                ),
            )),
        }
    }

    fn channel_method(&mut self, ch: u16, m: channel::AMQPMethod) -> AmqpResult<()> {
        match m {
            channel::AMQPMethod::Close(_) => {
                if let Some(mut c) = self.channels.remove(&ch) {
                    self.release_channel(&mut c);
                }
                self.registration.set_channels(self.channels.len());
                reply(
                    &mut self.out,
                    ch,
                    AMQPClass::Channel(channel::AMQPMethod::CloseOk(channel::CloseOk {})),
                );
                Ok(())
            }
            channel::AMQPMethod::CloseOk(_) => Ok(()),
            channel::AMQPMethod::Flow(flow) => {
                if !flow.active {
                    return Err(AmqpError::new(ReplyCode::NotImplemented, "active=false"));
                }
                reply(
                    &mut self.out,
                    ch,
                    AMQPClass::Channel(channel::AMQPMethod::FlowOk(channel::FlowOk {
                        active: true,
                    })),
                );
                Ok(())
            }
            channel::AMQPMethod::FlowOk(_) => Ok(()),
            _ => Err(AmqpError::new(
                ReplyCode::CommandInvalid,
                "unexpected channel method",
            )),
        }
    }

    fn tx_method(&mut self, ch: u16, m: tx::AMQPMethod) -> AmqpResult<()> {
        match m {
            tx::AMQPMethod::Select(_) => {
                let channel = self.channel(ch)?;
                if channel.confirm {
                    return Err(AmqpError::new(
                        ReplyCode::PreconditionFailed,
                        "cannot switch from confirm to tx mode",
                    ));
                }
                if channel.tx.is_none() {
                    channel.tx = Some((Vec::new(), Vec::new()));
                }
                reply(
                    &mut self.out,
                    ch,
                    AMQPClass::Tx(tx::AMQPMethod::SelectOk(tx::SelectOk {})),
                );
            }
            tx::AMQPMethod::Commit(_) => {
                let channel = self.channel(ch)?;
                let Some((publishes, acks)) = channel.tx.replace((Vec::new(), Vec::new())) else {
                    return Err(AmqpError::new(
                        ReplyCode::PreconditionFailed,
                        "channel is not transactional",
                    ));
                };
                // Routed first (parked while a queue starts), then enqueued in order.
                let broker = self.broker.clone();
                let vhost = self.session.vhost.clone();
                let fut = async move {
                    let mut routed = Vec::with_capacity(publishes.len());
                    for p in publishes {
                        routed.push(super::publish::route(broker.clone(), vhost.clone(), p).await);
                    }
                    routed
                };
                return self.park(ch, fut, move |conn, routed| conn.commit(ch, routed, acks));
            }
            tx::AMQPMethod::Rollback(_) => {
                let channel = self.channel(ch)?;
                if channel.tx.is_none() {
                    return Err(AmqpError::new(
                        ReplyCode::PreconditionFailed,
                        "channel is not transactional",
                    ));
                }
                channel.tx = Some((Vec::new(), Vec::new()));
                reply(
                    &mut self.out,
                    ch,
                    AMQPClass::Tx(tx::AMQPMethod::RollbackOk(tx::RollbackOk {})),
                );
            }
            _ => {
                return Err(AmqpError::new(
                    ReplyCode::CommandInvalid,
                    "unexpected tx method",
                ))
            }
        }
        Ok(())
    }

    /// `tx.commit` once its publishes are routed: enqueue them, settle the held acks, and
    /// answer `commit-ok` when the queues stored everything.
    fn commit(
        &mut self,
        ch: u16,
        routed: Vec<(TxPublish, BrokerResult<Routed>)>,
        acks: Vec<TxAck>,
    ) -> AmqpResult<()> {
        for (p, routed) in routed {
            self.enqueue_routed(ch, p, routed?)?;
        }
        let channel = self.channel(ch)?;
        let saved = channel.tx.take();
        let mut result = Ok(());
        for op in acks {
            result = result.and(self.settle(ch, op));
        }
        let channel = self.channel(ch)?;
        channel.tx = saved;
        result?;
        let upto = channel.publish_seq;
        if channel.unconfirmed.range(..=upto).next().is_none() {
            let ok = AMQPClass::Tx(tx::AMQPMethod::CommitOk(tx::CommitOk {}));
            reply(&mut self.out, ch, ok);
        } else {
            channel.commit_waiting = Some(upto);
        }
        Ok(())
    }
}
