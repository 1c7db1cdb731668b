//! Basic-class methods other than content: publish (its method frame), qos, consume,
//! cancel, get, ack / nack / reject and recover. `basic.consume` and `basic.get` wait for
//! their queue parked (`parked.rs`), so a queue that is starting or has no leader does not
//! stall the connection's other channels.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use amq_protocol::protocol::basic;

use super::access::{Perm, Resource};
use super::channel::{Assembly, Channel, ChannelConsumer, TxAck};
use super::connection::Connection;
use super::error::{AmqpError, AmqpResult};
use super::handshake::short;
use super::methods::random_name;
use crate::amqp::{encode_content, encode_method, AMQPClass, ReplyCode};
use crate::broker::{ConsumerInfo, QueueHandle, QueueMsg};
use crate::stats::Count;

fn reply(out: &mut Vec<u8>, ch: u16, m: AMQPClass) {
    encode_method(out, ch, &m);
}

impl Connection {
    pub(super) fn basic_method(
        &mut self,
        ch: u16,
        vhost: &str,
        m: basic::AMQPMethod,
    ) -> AmqpResult<()> {
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
                let (vhost, conn_id) = (vhost.to_owned(), self.id);
                let fut = async move {
                    let found = broker.lookup_queue(&vhost, &name, conn_id).await;
                    (found, vhost, name)
                };
                self.park(ch, fut, move |conn, (found, vhost, name)| {
                    conn.consume(ch, &vhost, name, found?, c)
                })?;
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
                let (vhost, conn_id, no_ack) = (vhost.to_owned(), self.id, g.no_ack);
                let fut = async move {
                    let queue = broker.lookup_queue(&vhost, &name, conn_id).await?;
                    let (tx, rx) = tokio::sync::oneshot::channel();
                    let got = match queue.send(QueueMsg::Get { no_ack, reply: tx }) {
                        true => rx.await.ok().flatten(),
                        false => None,
                    };
                    Ok::<_, crate::broker::BrokerError>((queue, got))
                };
                self.park(ch, fut, move |conn, found| {
                    let (queue, got) = found?;
                    conn.got(ch, no_ack, queue, got)
                })?;
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

    /// `basic.consume` once its queue was found: register the consumer with the queue,
    /// then (parked again while the queue answers) with the channel.
    fn consume(
        &mut self,
        ch: u16,
        vhost: &str,
        name: String,
        queue: QueueHandle,
        c: basic::Consume,
    ) -> AmqpResult<()> {
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
        let key = self.broker.new_consumer_key();
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
        let not_found = AmqpError::new(
            ReplyCode::NotFound,
            format!("no queue '{name}' in vhost '{vhost}'"),
        );
        if !queue.send(msg) {
            return Err(not_found);
        }
        self.park(ch, rx, move |conn, answer| {
            match answer {
                Ok(Ok(())) => {}
                Ok(Err((code, text))) => return Err(AmqpError::prefixed(code, text)),
                Err(_) => return Err(not_found),
            }
            let channel = conn.channel(ch)?;
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
                let ok = basic::ConsumeOk {
                    consumer_tag: short(&tag),
                };
                reply(
                    &mut conn.out,
                    ch,
                    AMQPClass::Basic(basic::AMQPMethod::ConsumeOk(ok)),
                );
            }
            Ok(())
        })
    }

    /// Answer `basic.get` with what the queue gave (or `get-empty`).
    fn got(
        &mut self,
        ch: u16,
        no_ack: bool,
        queue: QueueHandle,
        got: Option<crate::broker::GetReply>,
    ) -> AmqpResult<()> {
        let Some(got) = got else {
            self.channel(ch)?.stats.add(Count::GetEmpty, 1);
            let empty = AMQPClass::Basic(basic::AMQPMethod::GetEmpty(basic::GetEmpty {}));
            reply(&mut self.out, ch, empty);
            return Ok(());
        };
        let frame_max = self.session.frame_max;
        let channel = self.channel(ch)?;
        channel.next_tag += 1;
        let tag = channel.next_tag;
        let kind = match no_ack {
            true => Count::GetNoAck,
            false => Count::Get,
        };
        channel.stats.add(kind, 1);
        channel
            .stats
            .add(Count::Redeliver, u64::from(got.redelivered));
        if !no_ack {
            let unacked = super::channel::Unacked {
                queue,
                msg_id: got.msg_id,
            };
            channel.unacked.insert(tag, unacked);
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
        let message = &got.message;
        encode_content(
            &mut self.out,
            ch,
            &message.properties,
            &message.body,
            frame_max,
        );
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
        if let TxAck::Ack { .. } = op {
            channel.stats.add(Count::Ack, items.len() as u64);
        }
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
}
