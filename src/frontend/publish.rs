//! Publish assembly (method + header + body frames), routing, `mandatory` returns and
//! the bookkeeping behind publisher confirms.

use amq_protocol::protocol::basic;
use bytes::{Bytes, BytesMut};

use super::access::{Perm, Resource};
use super::channel::TxPublish;
use super::connection::Connection;
use super::error::{AmqpError, AmqpResult};
use super::handshake::short;
use super::publish_checks;
use crate::amqp::{encode_content, encode_method, AMQPClass, ReplyCode, BASIC_CLASS_ID};
use crate::broker::{Broker, BrokerResult, ConfirmTo, QueueMsg, Routed};
use crate::queue::Message;
use crate::stats::Count;
use std::sync::Arc;

/// RabbitMQ's error for a content frame where only a method may come.
fn method_expected() -> AmqpError {
    AmqpError::new(
        ReplyCode::UnexpectedFrame,
        "expected method frame, got non method frame instead",
    )
}

impl Connection {
    pub(super) fn content_header(
        &mut self,
        ch: u16,
        class_id: u16,
        body_size: u64,
        properties: Bytes,
    ) -> AmqpResult<()> {
        let max = self.broker.config().max_message_size;
        let Some(channel) = self.channels.get_mut(&ch) else {
            // A channel that is not open expects channel.open, a method.
            return Err(method_expected());
        };
        if channel.closing {
            return Ok(());
        }
        let Some(assembly) = channel.assembly.as_mut() else {
            return Err(method_expected());
        };
        if assembly.header.is_some() {
            return Err(AmqpError::new(
                ReplyCode::UnexpectedFrame,
                "expected content body, got non content body frame instead",
            )
            .on((60, 40)));
        }
        if class_id != BASIC_CLASS_ID {
            return Err(AmqpError::new(
                ReplyCode::UnexpectedFrame,
                format!("expected content header for class {BASIC_CLASS_ID}, got one for class {class_id} instead"),
            )
            .on((60, 40)));
        }
        if body_size > max {
            channel.assembly = None;
            return Err(AmqpError::new(
                ReplyCode::PreconditionFailed,
                format!("message size {body_size} is larger than configured max size {max}"),
            ));
        }
        assembly.header = Some((body_size, properties));
        // Nothing is reserved from the declared size: a header may announce up to the
        // max message size and send nothing. The body grows as its frames arrive (the
        // common one-frame body is kept as it came, without a copy).
        assembly.body = BytesMut::new();
        if body_size == 0 {
            let a = channel.assembly.take().expect("assembly");
            return self.publish(ch, a.into_publish(Some(Bytes::new())));
        }
        Ok(())
    }

    pub(super) fn content_body(&mut self, ch: u16, payload: Bytes) -> AmqpResult<()> {
        let Some(channel) = self.channels.get_mut(&ch) else {
            // A channel that is not open expects channel.open, a method.
            return Err(method_expected());
        };
        if channel.closing {
            return Ok(());
        }
        let Some(assembly) = channel.assembly.as_mut() else {
            return Err(method_expected());
        };
        let Some((size, _)) = assembly.header else {
            return Err(AmqpError::new(
                ReplyCode::UnexpectedFrame,
                "expected content header for class 60, got non content header frame instead",
            )
            .on((60, 40)));
        };
        if assembly.body.len() as u64 + payload.len() as u64 > size {
            // RabbitMQ's assembler sees a body frame where none is expected any more.
            return Err(AmqpError::new(
                ReplyCode::UnexpectedFrame,
                "expected content body, got non content body frame instead",
            )
            .on((60, 40)));
        }
        if assembly.body.is_empty() && payload.len() as u64 == size {
            // Common case: the whole body in one frame, kept without a copy.
            let a = channel.assembly.take().expect("assembly");
            return self.publish(ch, a.into_publish(Some(payload)));
        }
        assembly.body.extend_from_slice(&payload);
        if assembly.body.len() as u64 == size {
            let a = channel.assembly.take().expect("assembly");
            return self.publish(ch, a.into_publish(None));
        }
        Ok(())
    }

    /// A complete publish: its properties checked, then held in a transaction or routed now.
    pub(super) fn publish(&mut self, ch: u16, mut p: TxPublish) -> AmqpResult<()> {
        self.allow(Perm::Write, Resource::Exchange(&p.exchange))?;
        self.allow_topic(Perm::Write, &p.exchange, &p.routing_key)?;
        let in_tx = self.channels.get(&ch).is_some_and(|c| c.tx.is_some());
        let inspects = publish_checks::inspects(&p.properties);
        if in_tx || inspects {
            // RabbitMQ checks the exchange before the properties, and in a transaction
            // at publish although it routes at commit.
            self.broker
                .check_publish(&self.session.vhost, &p.exchange)?;
        }
        if inspects {
            let user = &self.session.user;
            let broker = &self.broker;
            let checked = publish_checks::check_properties(&p.properties, user, || {
                broker.is_impersonator(user)
            })?;
            if let Some(properties) = checked.properties {
                p.properties = properties;
            }
            p.routing = checked.routing;
        }
        if in_tx {
            let channel = self.channels.get_mut(&ch).expect("channel");
            channel.tx.as_mut().expect("tx").0.push(p);
            return Ok(());
        }
        self.route_and_enqueue(ch, p)
    }

    /// Route a publish and hand it to its queues (parked while a routed queue starts).
    fn route_and_enqueue(&mut self, ch: u16, p: TxPublish) -> AmqpResult<()> {
        let vhost = &self.session.vhost;
        let (exchange, key, routing) = (&p.exchange, &p.routing_key, &p.routing);
        let now = (self.broker).try_route(
            vhost,
            exchange,
            key,
            &routing.extra_keys,
            routing.headers.as_ref(),
        );
        if let Some(routed) = now {
            return self.enqueue_routed(ch, p, routed?);
        }
        let fut = route(self.broker.clone(), self.session.vhost.clone(), p);
        self.park(ch, fut, move |conn, (p, routed)| {
            conn.enqueue_routed(ch, p, routed?)
        })
    }

    /// Hand a routed publish to its queues; register it for confirms.
    pub(super) fn enqueue_routed(
        &mut self,
        ch: u16,
        p: TxPublish,
        routed: Routed,
    ) -> AmqpResult<()> {
        let frame_max = self.session.frame_max;
        let channel = self.channels.get_mut(&ch).expect("channel");
        let tracked = channel.confirm || channel.tx.is_some();
        if tracked {
            channel.publish_seq += 1;
        }
        let seq = channel.publish_seq;
        let queues = routed.queues;
        channel.stats.add(Count::Publish, 1);
        if queues.is_empty() && routed.unavailable > 0 {
            // Routed only to queues that cannot take it: refused (nack), not returned.
            if tracked {
                channel.decided.push((seq, false));
            }
            return Ok(());
        }
        if queues.is_empty() {
            channel.stats.add(Count::Unroutable, 1);
            if p.mandatory {
                channel.stats.add(Count::ReturnUnroutable, 1);
                self.broker.stats().returned();
                let ret = basic::Return {
                    reply_code: ReplyCode::NoRoute.code(),
                    reply_text: short("NO_ROUTE"),
                    exchange: short(&p.exchange),
                    routing_key: short(&p.routing_key),
                };
                encode_method(
                    &mut self.out,
                    ch,
                    &AMQPClass::Basic(basic::AMQPMethod::Return(ret)),
                );
                encode_content(&mut self.out, ch, &p.properties, &p.body, frame_max);
            }
            if tracked {
                channel.decided.push((seq, true));
            }
            return Ok(());
        }
        if tracked {
            // A queue that could not take it fails the publish (a nack once the others
            // answered).
            channel
                .unconfirmed
                .insert(seq, (queues.len() as u32, routed.unavailable > 0));
        }
        let message = Message {
            exchange: p.exchange,
            routing_key: p.routing_key,
            properties: p.properties,
            body: p.body,
        };
        for queue in queues {
            let confirm = tracked.then(|| ConfirmTo {
                conn: self.events.clone(),
                channel: ch,
                publish_seq: seq,
            });
            let sent = queue.send(QueueMsg::Publish {
                enqueuer: channel.enqueuer,
                seq: channel.next_enqueue_seq(&queue),
                message: message.clone(),
                confirm,
            });
            channel.note_published(&queue);
            if !sent {
                channel.unsend_enqueue_seq(&queue);
            }
            if !sent && tracked {
                // The queue was deleted while routing: like RabbitMQ, the message is dropped
                // for that queue and the publish still confirmed.
                channel.enqueued(seq, true);
            }
        }
        Ok(())
    }
}

/// Route `p` in `vhost` (an owned future, to run parked), handing the publish back.
pub(super) async fn route(
    broker: Arc<Broker>,
    vhost: String,
    p: TxPublish,
) -> (TxPublish, BrokerResult<Routed>) {
    let routed = broker
        .route(
            &vhost,
            &p.exchange,
            &p.routing_key,
            &p.routing.extra_keys,
            p.routing.headers.as_ref(),
        )
        .await;
    (p, routed)
}
