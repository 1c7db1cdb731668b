//! What queues send a connection, written out on its channels: deliveries (with their
//! delivery tags), publisher confirms and finished `tx.commit`s, and consumer
//! cancellations. A parked channel's events wait for it (`parked.rs`).

use amq_protocol::protocol::basic;

use super::connection::Connection;
use super::handshake::short;
use crate::amqp::{encode_content, encode_method, AMQPClass};
use crate::broker::{ConnEvent, QueueMsg};
use crate::stats::Count;

impl Connection {
    pub(super) fn handle_event(&mut self, event: ConnEvent) {
        // A parked channel's events wait for it, after its operation's continuation.
        let event = match self.waiting.is_empty() {
            true => event,
            false => match self.waiting.hold_event(event.channel(), event) {
                Ok(()) => return,
                Err(event) => event,
            },
        };
        match event {
            ConnEvent::Deliver(d) => {
                let frame_max = self.session.frame_max;
                let Some(channel) = self
                    .channels
                    .get_mut(&d.channel)
                    .filter(|c| !c.closing && c.consumers.contains_key(&d.consumer_tag))
                else {
                    if d.needs_ack {
                        d.queue.send(QueueMsg::Requeue {
                            msg_ids: vec![d.msg_id],
                        });
                    }
                    return;
                };
                channel.next_tag += 1;
                let tag = channel.next_tag;
                let kind = match d.needs_ack {
                    true => Count::Deliver,
                    false => Count::DeliverNoAck,
                };
                channel.stats.add(kind, 1);
                channel
                    .stats
                    .add(Count::Redeliver, u64::from(d.redelivered));
                if d.needs_ack {
                    channel.unacked.insert(
                        tag,
                        super::channel::Unacked {
                            queue: d.queue.clone(),
                            msg_id: d.msg_id,
                        },
                    );
                }
                let deliver = basic::Deliver {
                    consumer_tag: short(&d.consumer_tag),
                    delivery_tag: tag,
                    redelivered: d.redelivered,
                    exchange: short(&d.message.exchange),
                    routing_key: short(&d.message.routing_key),
                };
                encode_method(
                    &mut self.out,
                    d.channel,
                    &AMQPClass::Basic(basic::AMQPMethod::Deliver(deliver)),
                );
                encode_content(
                    &mut self.out,
                    d.channel,
                    &d.message.properties,
                    &d.message.body,
                    frame_max,
                );
            }
            ConnEvent::Enqueued {
                channel,
                publish_seq,
                ok,
            } => {
                if let Some(ch) = self.channels.get_mut(&channel) {
                    ch.enqueued(publish_seq, ok);
                }
            }
            ConnEvent::ConsumerCancelled {
                channel,
                consumer_tag,
            } => {
                if let Some(ch) = self.channels.get_mut(&channel) {
                    if ch.consumers.remove(&consumer_tag).is_some() && !ch.closing {
                        let cancel = basic::Cancel {
                            consumer_tag: short(&consumer_tag),
                            nowait: true,
                        };
                        encode_method(
                            &mut self.out,
                            channel,
                            &AMQPClass::Basic(basic::AMQPMethod::Cancel(cancel)),
                        );
                    }
                }
            }
        }
    }

    /// Write publisher confirms and finished `tx.commit`s.
    pub(super) fn write_confirms(&mut self) {
        for (id, ch) in self.channels.iter_mut() {
            if ch.decided.is_empty() {
                continue;
            }
            if let Some(upto) = ch.commit_waiting {
                if ch.unconfirmed.range(..=upto).next().is_none() {
                    ch.commit_waiting = None;
                    ch.decided.clear();
                    encode_method(
                        &mut self.out,
                        *id,
                        &AMQPClass::Tx(amq_protocol::protocol::tx::AMQPMethod::CommitOk(
                            amq_protocol::protocol::tx::CommitOk {},
                        )),
                    );
                }
                continue;
            }
            if !ch.confirm {
                ch.decided.clear();
                continue;
            }
            let acked = ch.decided.iter().filter(|(_, ok)| *ok).count() as u64;
            self.broker.stats().confirmed(acked);
            ch.stats.add(Count::Confirm, acked);
            for (tag, multiple, ack) in ch.take_confirms() {
                let method = if ack {
                    basic::AMQPMethod::Ack(basic::Ack {
                        delivery_tag: tag,
                        multiple,
                    })
                } else {
                    basic::AMQPMethod::Nack(basic::Nack {
                        delivery_tag: tag,
                        multiple,
                        requeue: false,
                    })
                };
                encode_method(&mut self.out, *id, &AMQPClass::Basic(method));
            }
        }
    }
}
