//! Channel-level methods: channel, exchange, queue, basic (except content), confirm, tx.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use amq_protocol::protocol::{access, basic, channel, confirm, exchange, queue, tx};
use amq_protocol::types::AMQPValue;

use super::access::{Perm, Resource};
use super::channel::{Assembly, Channel, ChannelConsumer, TxAck};
use super::connection::Connection;
use super::error::{AmqpError, AmqpResult};
use super::handshake::short;
use crate::amqp::{encode_content, encode_method, AMQPClass, ReplyCode};
use crate::broker::{ConsumerInfo, QueueMsg};

fn reply(out: &mut Vec<u8>, ch: u16, m: AMQPClass) {
    encode_method(out, ch, &m);
}

fn random_name(prefix: &str) -> String {
    use base64::Engine;
    let bytes: [u8; 16] = rand::random();
    format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

impl Connection {
    fn channel(&mut self, ch: u16) -> AmqpResult<&mut Channel> {
        match self.channels.get_mut(&ch) {
            Some(c) => Ok(c),
            None => Err(AmqpError::new(
                ReplyCode::ChannelError,
                "expected 'channel.open'",
            )),
        }
    }

    /// An empty queue name means the channel's last declared queue (RabbitMQ's shortcut).
    fn queue_name(&mut self, ch: u16, name: &str) -> AmqpResult<String> {
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
    fn binding_names(&mut self, ch: u16, queue: &str, key: &str) -> AmqpResult<(String, String)> {
        let name = self.queue_name(ch, queue)?;
        let key = match (queue, key) {
            ("", "") => name.clone(),
            (_, key) => key.to_owned(),
        };
        Ok((name, key))
    }

    pub(super) async fn handle_channel_method(
        &mut self,
        ch: u16,
        method: AMQPClass,
    ) -> AmqpResult<()> {
        if let AMQPClass::Channel(channel::AMQPMethod::Open(_)) = method {
            if self.channels.contains_key(&ch) {
                return Err(AmqpError::new(
                    ReplyCode::ChannelError,
                    "second 'channel.open' seen",
                ));
            }
            // A user's `max-channels` closes the connection, as RabbitMQ does.
            self.broker
                .check_channel_limit(&self.session.user, &self.session.vhost)
                .await
                .map_err(|e| AmqpError::from(e).on((20, 10)))?;
            let enqueuer = rand::random();
            self.channels.insert(ch, Channel::new(enqueuer));
            self.registration.set_channels(self.channels.len());
            reply(
                &mut self.out,
                ch,
                AMQPClass::Channel(channel::AMQPMethod::OpenOk(channel::OpenOk {})),
            );
            return Ok(());
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
            AMQPClass::Exchange(m) => self.exchange_method(ch, &vhost, m).await,
            AMQPClass::Queue(m) => self.queue_method(ch, &vhost, m).await,
            AMQPClass::Basic(m) => self.basic_method(ch, &vhost, m).await,
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
            AMQPClass::Tx(m) => self.tx_method(ch, m).await,
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

    async fn exchange_method(
        &mut self,
        ch: u16,
        vhost: &str,
        m: exchange::AMQPMethod,
    ) -> AmqpResult<()> {
        let broker = self.broker.clone();
        match m {
            exchange::AMQPMethod::Declare(d) => {
                if !d.passive && !d.exchange.as_str().is_empty() {
                    self.allow(Perm::Configure, Resource::Exchange(d.exchange.as_str()))?;
                }
                broker
                    .declare_exchange(
                        vhost,
                        d.exchange.as_str(),
                        d.kind.as_str(),
                        d.passive,
                        d.durable,
                        d.auto_delete,
                        d.internal,
                        d.arguments,
                    )
                    .await?;
                if !d.nowait {
                    reply(
                        &mut self.out,
                        ch,
                        AMQPClass::Exchange(exchange::AMQPMethod::DeclareOk(
                            exchange::DeclareOk {},
                        )),
                    );
                }
            }
            exchange::AMQPMethod::Delete(d) => {
                // The default and the system (`amq.*`) exchanges are refused first, later.
                let name = d.exchange.as_str();
                if !name.is_empty() && !name.starts_with("amq.") {
                    self.allow(Perm::Configure, Resource::Exchange(d.exchange.as_str()))?;
                }
                broker
                    .delete_exchange(vhost, d.exchange.as_str(), d.if_unused)
                    .await?;
                if !d.nowait {
                    reply(
                        &mut self.out,
                        ch,
                        AMQPClass::Exchange(exchange::AMQPMethod::DeleteOk(exchange::DeleteOk {})),
                    );
                }
            }
            exchange::AMQPMethod::Bind(b) => {
                self.allow_binding(
                    Resource::Exchange(b.destination.as_str()),
                    b.source.as_str(),
                    b.routing_key.as_str(),
                )?;
                broker
                    .bind(
                        vhost,
                        b.source.as_str(),
                        b.destination.as_str(),
                        true,
                        b.routing_key.as_str(),
                        b.arguments,
                        self.id,
                        true,
                    )
                    .await?;
                if !b.nowait {
                    reply(
                        &mut self.out,
                        ch,
                        AMQPClass::Exchange(exchange::AMQPMethod::BindOk(exchange::BindOk {})),
                    );
                }
            }
            exchange::AMQPMethod::Unbind(b) => {
                self.allow_binding(
                    Resource::Exchange(b.destination.as_str()),
                    b.source.as_str(),
                    b.routing_key.as_str(),
                )?;
                broker
                    .bind(
                        vhost,
                        b.source.as_str(),
                        b.destination.as_str(),
                        true,
                        b.routing_key.as_str(),
                        b.arguments,
                        self.id,
                        false,
                    )
                    .await?;
                if !b.nowait {
                    reply(
                        &mut self.out,
                        ch,
                        AMQPClass::Exchange(exchange::AMQPMethod::UnbindOk(exchange::UnbindOk {})),
                    );
                }
            }
            _ => {
                return Err(AmqpError::new(
                    ReplyCode::CommandInvalid,
                    "unexpected exchange method",
                ))
            }
        }
        Ok(())
    }

    async fn queue_method(&mut self, ch: u16, vhost: &str, m: queue::AMQPMethod) -> AmqpResult<()> {
        let broker = self.broker.clone();
        match m {
            queue::AMQPMethod::Declare(d) => {
                let mut name = d.queue.as_str().to_owned();
                // A passive declare does not take the last-declared-queue shortcut.
                if name.is_empty() && !d.passive {
                    // RabbitMQ refuses this before looking at any other argument.
                    if let Some(AMQPValue::LongString(t)) = d.arguments.inner().get("x-queue-type")
                    {
                        if t.as_bytes() == b"quorum" {
                            return Err(AmqpError::new(
                                ReplyCode::PreconditionFailed,
                                "Cannot declare a server-named queue for type rabbit_quorum_queue",
                            ));
                        }
                    }
                    name = random_name("amq.gen-");
                } else if !d.passive && name.starts_with("amq.") {
                    // RabbitMQ's `check_name`, before any lookup: even the connection's
                    // own server-named queue cannot be declared again by its name.
                    return Err(AmqpError::new(
                        ReplyCode::AccessRefused,
                        format!("queue name '{name}' contains reserved prefix 'amq.*'"),
                    ));
                }
                if !d.passive {
                    self.allow(Perm::Configure, Resource::Queue(&name))?;
                }
                let owner = d.exclusive.then_some(self.id);
                let status = broker
                    .declare_queue(
                        vhost,
                        &name,
                        d.passive,
                        d.durable,
                        owner,
                        self.id,
                        d.auto_delete,
                        d.arguments,
                    )
                    .await?;
                self.channel(ch)?.last_queue = Some(name.clone());
                if !d.nowait {
                    let ok = queue::DeclareOk {
                        queue: short(&name),
                        message_count: status.ready as u32,
                        consumer_count: status.consumers,
                    };
                    reply(
                        &mut self.out,
                        ch,
                        AMQPClass::Queue(queue::AMQPMethod::DeclareOk(ok)),
                    );
                }
            }
            queue::AMQPMethod::Bind(b) => {
                let (queue, key) =
                    self.binding_names(ch, b.queue.as_str(), b.routing_key.as_str())?;
                self.allow_binding(Resource::Queue(&queue), b.exchange.as_str(), &key)?;
                broker
                    .bind(
                        vhost,
                        b.exchange.as_str(),
                        &queue,
                        false,
                        &key,
                        b.arguments,
                        self.id,
                        true,
                    )
                    .await?;
                if !b.nowait {
                    reply(
                        &mut self.out,
                        ch,
                        AMQPClass::Queue(queue::AMQPMethod::BindOk(queue::BindOk {})),
                    );
                }
            }
            queue::AMQPMethod::Unbind(b) => {
                let (queue, key) =
                    self.binding_names(ch, b.queue.as_str(), b.routing_key.as_str())?;
                self.allow_binding(Resource::Queue(&queue), b.exchange.as_str(), &key)?;
                broker
                    .bind(
                        vhost,
                        b.exchange.as_str(),
                        &queue,
                        false,
                        &key,
                        b.arguments,
                        self.id,
                        false,
                    )
                    .await?;
                reply(
                    &mut self.out,
                    ch,
                    AMQPClass::Queue(queue::AMQPMethod::UnbindOk(queue::UnbindOk {})),
                );
            }
            queue::AMQPMethod::Purge(p) => {
                let queue = self.queue_name(ch, p.queue.as_str())?;
                self.allow(Perm::Read, Resource::Queue(&queue))?;
                let count = broker.purge_queue(vhost, &queue, self.id).await?;
                if !p.nowait {
                    reply(
                        &mut self.out,
                        ch,
                        AMQPClass::Queue(queue::AMQPMethod::PurgeOk(queue::PurgeOk {
                            message_count: count as u32,
                        })),
                    );
                }
            }
            queue::AMQPMethod::Delete(d) => {
                let queue = self.queue_name(ch, d.queue.as_str())?;
                self.allow(Perm::Configure, Resource::Queue(&queue))?;
                let count = broker
                    .delete_queue(vhost, &queue, d.if_unused, d.if_empty, self.id)
                    .await?;
                if !d.nowait {
                    reply(
                        &mut self.out,
                        ch,
                        AMQPClass::Queue(queue::AMQPMethod::DeleteOk(queue::DeleteOk {
                            message_count: count as u32,
                        })),
                    );
                }
            }
            _ => {
                return Err(AmqpError::new(
                    ReplyCode::CommandInvalid,
                    "unexpected queue method",
                ))
            }
        }
        Ok(())
    }

    async fn basic_method(&mut self, ch: u16, vhost: &str, m: basic::AMQPMethod) -> AmqpResult<()> {
        let broker = self.broker.clone();
        match m {
            basic::AMQPMethod::Publish(p) => {
                if p.immediate {
                    return Err(AmqpError::new(ReplyCode::NotImplemented, "immediate=true"));
                }
                if !self.published {
                    self.published = true;
                    self.registration.set_published();
                }
                let channel = self.channel(ch)?;
                channel.assembly = Some(Assembly {
                    exchange: p.exchange.as_str().to_owned(),
                    routing_key: p.routing_key.as_str().to_owned(),
                    mandatory: p.mandatory,
                    header: None,
                    body: Default::default(),
                });
            }
            basic::AMQPMethod::Qos(q) => {
                let channel = self.channel(ch)?;
                if q.global {
                    channel
                        .credit
                        .limit
                        .store(q.prefetch_count as u32, Ordering::Relaxed);
                    // A raised shared limit lets the channel's consumers take more now.
                    for c in channel.consumers.values() {
                        c.queue.send(QueueMsg::Wake);
                    }
                } else {
                    channel.prefetch = q.prefetch_count as u32;
                }
                reply(
                    &mut self.out,
                    ch,
                    AMQPClass::Basic(basic::AMQPMethod::QosOk(basic::QosOk {})),
                );
            }
            basic::AMQPMethod::Consume(c) => {
                let name = self.queue_name(ch, c.queue.as_str())?;
                self.allow(Perm::Read, Resource::Queue(&name))?;
                let queue = broker.lookup_queue(vhost, &name, self.id).await?;
                let mut tag = c.consumer_tag.as_str().to_owned();
                if tag.is_empty() {
                    tag = random_name("amq.ctag-");
                }
                let tag: Arc<str> = tag.into();
                let channel = self.channel(ch)?;
                if channel.consumers.contains_key(&tag) {
                    return Err(AmqpError::new(
                        ReplyCode::NotAllowed,
                        format!("attempt to reuse consumer tag '{tag}'"),
                    ));
                }
                let priority = match c.arguments.inner().get("x-priority") {
                    None => 0,
                    Some(v) => crate::amqp::field::int_value(v).ok_or_else(|| {
                        AmqpError::new(
                            ReplyCode::PreconditionFailed,
                            format!(
                                "invalid arg 'x-priority' for queue '{name}' in vhost '{vhost}': \"expected integer, got {}\"",
                                crate::amqp::field::type_name(v)
                            ),
                        )
                    })?,
                };
                let key = broker.new_consumer_key();
                let conn = self.events.clone();
                let channel = self.channel(ch)?;
                let (tx, rx) = tokio::sync::oneshot::channel();
                let msg = QueueMsg::Consume {
                    key,
                    tag: tag.clone(),
                    channel: ch,
                    conn,
                    no_ack: c.no_ack,
                    prefetch: channel.prefetch,
                    channel_credit: channel.credit.clone(),
                    priority,
                    exclusive: c.exclusive,
                    reply: tx,
                };
                if !queue.send(msg) {
                    return Err(AmqpError::new(
                        ReplyCode::NotFound,
                        format!("no queue '{name}' in vhost '{vhost}'"),
                    ));
                }
                match rx.await {
                    Ok(Ok(())) => {}
                    Ok(Err((code, text))) => return Err(AmqpError::prefixed(code, text)),
                    Err(_) => {
                        return Err(AmqpError::new(
                            ReplyCode::NotFound,
                            format!("no queue '{name}' in vhost '{vhost}'"),
                        ))
                    }
                }
                let channel = self.channel(ch)?;
                let info = ConsumerInfo {
                    queue: name,
                    tag: tag.to_string(),
                    ack_required: !c.no_ack,
                    prefetch_count: channel.prefetch,
                    arguments: c.arguments,
                };
                channel
                    .consumers
                    .insert(tag.clone(), ChannelConsumer { key, queue, info });
                if !c.nowait {
                    reply(
                        &mut self.out,
                        ch,
                        AMQPClass::Basic(basic::AMQPMethod::ConsumeOk(basic::ConsumeOk {
                            consumer_tag: short(&tag),
                        })),
                    );
                }
            }
            basic::AMQPMethod::Cancel(c) => {
                let channel = self.channel(ch)?;
                if let Some(consumer) = channel.consumers.remove(c.consumer_tag.as_str()) {
                    consumer.queue.send(QueueMsg::Cancel { key: consumer.key });
                }
                if !c.nowait {
                    reply(
                        &mut self.out,
                        ch,
                        AMQPClass::Basic(basic::AMQPMethod::CancelOk(basic::CancelOk {
                            consumer_tag: c.consumer_tag,
                        })),
                    );
                }
            }
            basic::AMQPMethod::Get(g) => {
                let name = self.queue_name(ch, g.queue.as_str())?;
                self.allow(Perm::Read, Resource::Queue(&name))?;
                let queue = broker.lookup_queue(vhost, &name, self.id).await?;
                let (tx, rx) = tokio::sync::oneshot::channel();
                let got = if queue.send(QueueMsg::Get {
                    no_ack: g.no_ack,
                    reply: tx,
                }) {
                    rx.await.ok().flatten()
                } else {
                    None
                };
                match got {
                    None => reply(
                        &mut self.out,
                        ch,
                        AMQPClass::Basic(basic::AMQPMethod::GetEmpty(basic::GetEmpty {})),
                    ),
                    Some(got) => {
                        let frame_max = self.session.frame_max;
                        let channel = self.channel(ch)?;
                        channel.next_tag += 1;
                        let tag = channel.next_tag;
                        if !g.no_ack {
                            channel.unacked.insert(
                                tag,
                                super::channel::Unacked {
                                    queue,
                                    msg_id: got.msg_id,
                                },
                            );
                        }
                        let ok = basic::GetOk {
                            delivery_tag: tag,
                            redelivered: got.redelivered,
                            exchange: short(&got.message.exchange),
                            routing_key: short(&got.message.routing_key),
                            message_count: got.remaining,
                        };
                        reply(
                            &mut self.out,
                            ch,
                            AMQPClass::Basic(basic::AMQPMethod::GetOk(ok)),
                        );
                        encode_content(
                            &mut self.out,
                            ch,
                            &got.message.properties,
                            &got.message.body,
                            frame_max,
                        );
                    }
                }
            }
            basic::AMQPMethod::Ack(a) => self.settle(
                ch,
                TxAck::Ack {
                    tag: a.delivery_tag,
                    multiple: a.multiple,
                },
            )?,
            basic::AMQPMethod::Nack(n) => self.settle(
                ch,
                TxAck::Reject {
                    tag: n.delivery_tag,
                    multiple: n.multiple,
                    requeue: n.requeue,
                },
            )?,
            basic::AMQPMethod::Reject(r) => self.settle(
                ch,
                TxAck::Reject {
                    tag: r.delivery_tag,
                    multiple: false,
                    requeue: r.requeue,
                },
            )?,
            basic::AMQPMethod::Recover(r) => {
                self.recover(ch, r.requeue)?;
                reply(
                    &mut self.out,
                    ch,
                    AMQPClass::Basic(basic::AMQPMethod::RecoverOk(basic::RecoverOk {})),
                );
            }
            basic::AMQPMethod::RecoverAsync(r) => self.recover(ch, r.requeue)?,
            _ => {
                return Err(AmqpError::new(
                    ReplyCode::CommandInvalid,
                    "unexpected basic method",
                ))
            }
        }
        Ok(())
    }

    fn recover(&mut self, ch: u16, requeue: bool) -> AmqpResult<()> {
        if !requeue {
            return Err(AmqpError::new(ReplyCode::NotImplemented, "requeue=false"));
        }
        let channel = self.channel(ch)?;
        let unacked = std::mem::take(&mut channel.unacked).into_values().collect();
        for (queue, msg_ids) in Channel::by_queue(unacked) {
            queue.send(QueueMsg::Requeue { msg_ids });
        }
        Ok(())
    }

    /// `basic.ack` / `nack` / `reject`, or their deferred form inside a transaction.
    pub(super) fn settle(&mut self, ch: u16, op: TxAck) -> AmqpResult<()> {
        let channel = self.channel(ch)?;
        if let Some((_, acks)) = channel.tx.as_mut() {
            acks.push(op);
            return Ok(());
        }
        let (tag, multiple) = match op {
            TxAck::Ack { tag, multiple } | TxAck::Reject { tag, multiple, .. } => (tag, multiple),
        };
        let Some(items) = channel.take_tags(tag, multiple) else {
            return Err(AmqpError::new(
                ReplyCode::PreconditionFailed,
                format!("unknown delivery tag {tag}"),
            ));
        };
        let global = channel.credit.limit.load(Ordering::Relaxed) != 0;
        let woken: Vec<_> = if global {
            channel
                .consumers
                .values()
                .map(|c| c.queue.clone())
                .collect()
        } else {
            Vec::new()
        };
        for (queue, msg_ids) in Channel::by_queue(items) {
            let msg = match op {
                TxAck::Ack { .. } => QueueMsg::Settle { msg_ids },
                TxAck::Reject { requeue: true, .. } => QueueMsg::Requeue { msg_ids },
                TxAck::Reject { requeue: false, .. } => QueueMsg::Discard { msg_ids },
            };
            queue.send(msg);
        }
        // Shared channel credit was freed: other queues of this channel may deliver again.
        for queue in woken {
            queue.send(QueueMsg::Wake);
        }
        Ok(())
    }

    async fn tx_method(&mut self, ch: u16, m: tx::AMQPMethod) -> AmqpResult<()> {
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
                for p in publishes {
                    self.route_and_enqueue(ch, p).await?;
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
                    reply(
                        &mut self.out,
                        ch,
                        AMQPClass::Tx(tx::AMQPMethod::CommitOk(tx::CommitOk {})),
                    );
                } else {
                    channel.commit_waiting = Some(upto);
                }
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
}
