//! Exchange and queue methods: declare, delete, bind, unbind, purge. Each checks what it
//! can on the connection, then runs its broker operation parked (`parked.rs`), so a
//! declare waiting for the metadata leader does not stall the connection's other channels.

use amq_protocol::protocol::{exchange, queue};
use amq_protocol::types::{AMQPValue, FieldTable};

use super::access::{Perm, Resource};
use super::connection::Connection;
use super::error::{AmqpError, AmqpResult};
use super::handshake::short;
use crate::amqp::{encode_method, AMQPClass, ReplyCode};

fn reply(out: &mut Vec<u8>, ch: u16, m: AMQPClass) {
    encode_method(out, ch, &m);
}

/// Sends `ok` on `ch` once the operation succeeded, unless the client asked for nowait.
fn answer<T>(nowait: bool, ok: AMQPClass) -> impl FnOnce(&mut Connection, u16, T) {
    move |conn, ch, _| {
        if !nowait {
            reply(&mut conn.out, ch, ok);
        }
    }
}

/// A binding to add or remove (`exchange.bind` / `unbind`, `queue.bind` / `unbind`).
struct Binding {
    source: String,
    destination: String,
    /// The destination is an exchange (else a queue).
    to_exchange: bool,
    key: String,
    arguments: FieldTable,
    /// Add it (else remove it).
    bind: bool,
}

impl Connection {
    /// Add or remove a binding once the user may, then answer with `then`.
    fn change_binding(
        &mut self,
        ch: u16,
        vhost: String,
        b: Binding,
        then: impl FnOnce(&mut Connection, u16, ()) + Send + 'static,
    ) -> AmqpResult<()> {
        let destination = match b.to_exchange {
            true => Resource::Exchange(&b.destination),
            false => Resource::Queue(&b.destination),
        };
        self.allow_binding(destination, &b.source, &b.key)?;
        let (broker, conn_id) = (self.broker.clone(), self.id);
        let fut = async move {
            let (source, destination, key) = (&b.source, &b.destination, &b.key);
            broker
                .bind(
                    &vhost,
                    source,
                    destination,
                    b.to_exchange,
                    key,
                    b.arguments,
                    conn_id,
                    b.bind,
                )
                .await
        };
        self.run_op(ch, fut, then)
    }

    /// Run a broker operation for `ch` and answer it with `then` once it succeeded.
    fn run_op<T, Fut, K>(&mut self, ch: u16, fut: Fut, then: K) -> AmqpResult<()>
    where
        Fut: std::future::Future<Output = crate::broker::BrokerResult<T>> + Send + 'static,
        T: Send + 'static,
        K: FnOnce(&mut Connection, u16, T) + Send + 'static,
    {
        self.park(ch, fut, move |conn, result| {
            then(conn, ch, result?);
            Ok(())
        })
    }

    pub(super) fn exchange_method(
        &mut self,
        ch: u16,
        vhost: &str,
        m: exchange::AMQPMethod,
    ) -> AmqpResult<()> {
        let broker = self.broker.clone();
        let vhost = vhost.to_owned();
        match m {
            exchange::AMQPMethod::Declare(d) => {
                if !d.passive && !d.exchange.as_str().is_empty() {
                    self.allow(Perm::Configure, Resource::Exchange(d.exchange.as_str()))?;
                }
                let then = answer(
                    d.nowait,
                    AMQPClass::Exchange(exchange::AMQPMethod::DeclareOk(exchange::DeclareOk {})),
                );
                let fut = async move {
                    broker
                        .declare_exchange(
                            &vhost,
                            d.exchange.as_str(),
                            d.kind.as_str(),
                            d.passive,
                            d.durable,
                            d.auto_delete,
                            d.internal,
                            d.arguments,
                        )
                        .await
                };
                self.run_op(ch, fut, then)
            }
            exchange::AMQPMethod::Delete(d) => {
                // The default and the system (`amq.*`) exchanges are refused first, later.
                let name = d.exchange.as_str();
                if !name.is_empty() && !name.starts_with("amq.") {
                    self.allow(Perm::Configure, Resource::Exchange(name))?;
                }
                let then = answer(
                    d.nowait,
                    AMQPClass::Exchange(exchange::AMQPMethod::DeleteOk(exchange::DeleteOk {})),
                );
                let fut = async move {
                    broker
                        .delete_exchange(&vhost, d.exchange.as_str(), d.if_unused)
                        .await
                };
                self.run_op(ch, fut, then)
            }
            exchange::AMQPMethod::Bind(b) => {
                let change = Binding {
                    source: b.source.to_string(),
                    destination: b.destination.to_string(),
                    to_exchange: true,
                    key: b.routing_key.to_string(),
                    arguments: b.arguments,
                    bind: true,
                };
                let ok = AMQPClass::Exchange(exchange::AMQPMethod::BindOk(exchange::BindOk {}));
                self.change_binding(ch, vhost, change, answer(b.nowait, ok))
            }
            exchange::AMQPMethod::Unbind(b) => {
                let change = Binding {
                    source: b.source.to_string(),
                    destination: b.destination.to_string(),
                    to_exchange: true,
                    key: b.routing_key.to_string(),
                    arguments: b.arguments,
                    bind: false,
                };
                let ok = AMQPClass::Exchange(exchange::AMQPMethod::UnbindOk(exchange::UnbindOk {}));
                self.change_binding(ch, vhost, change, answer(b.nowait, ok))
            }
            _ => Err(AmqpError::new(
                ReplyCode::CommandInvalid,
                "unexpected exchange method",
            )),
        }
    }

    pub(super) fn queue_method(
        &mut self,
        ch: u16,
        vhost: &str,
        m: queue::AMQPMethod,
    ) -> AmqpResult<()> {
        let broker = self.broker.clone();
        let vhost = vhost.to_owned();
        let conn_id = self.id;
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
                    name = super::methods::random_name("amq.gen-");
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
                let owner = d.exclusive.then_some(conn_id);
                let declared = name.clone();
                let nowait = d.nowait;
                let fut = async move {
                    broker
                        .declare_queue(
                            &vhost,
                            &declared,
                            d.passive,
                            d.durable,
                            owner,
                            conn_id,
                            d.auto_delete,
                            d.arguments,
                        )
                        .await
                };
                self.run_op(ch, fut, move |conn, ch, status| {
                    if let Some(channel) = conn.channels.get_mut(&ch) {
                        channel.last_queue = Some(name.clone());
                    }
                    if !nowait {
                        let ok = queue::DeclareOk {
                            queue: short(&name),
                            message_count: status.ready as u32,
                            consumer_count: status.consumers,
                        };
                        reply(
                            &mut conn.out,
                            ch,
                            AMQPClass::Queue(queue::AMQPMethod::DeclareOk(ok)),
                        );
                    }
                })
            }
            queue::AMQPMethod::Bind(b) => {
                let (queue, key) =
                    self.binding_names(ch, b.queue.as_str(), b.routing_key.as_str())?;
                let change = Binding {
                    source: b.exchange.to_string(),
                    destination: queue,
                    to_exchange: false,
                    key,
                    arguments: b.arguments,
                    bind: true,
                };
                let ok = AMQPClass::Queue(queue::AMQPMethod::BindOk(queue::BindOk {}));
                self.change_binding(ch, vhost, change, answer(b.nowait, ok))
            }
            queue::AMQPMethod::Unbind(b) => {
                let (queue, key) =
                    self.binding_names(ch, b.queue.as_str(), b.routing_key.as_str())?;
                let change = Binding {
                    source: b.exchange.to_string(),
                    destination: queue,
                    to_exchange: false,
                    key,
                    arguments: b.arguments,
                    bind: false,
                };
                let ok = AMQPClass::Queue(queue::AMQPMethod::UnbindOk(queue::UnbindOk {}));
                // queue.unbind has no nowait.
                self.change_binding(ch, vhost, change, answer(false, ok))
            }
            queue::AMQPMethod::Purge(p) => {
                let queue = self.queue_name(ch, p.queue.as_str())?;
                self.allow(Perm::Read, Resource::Queue(&queue))?;
                let fut = async move { broker.purge_queue(&vhost, &queue, conn_id).await };
                self.run_op(ch, fut, move |conn, ch, count| {
                    if !p.nowait {
                        let ok = queue::PurgeOk {
                            message_count: count as u32,
                        };
                        reply(
                            &mut conn.out,
                            ch,
                            AMQPClass::Queue(queue::AMQPMethod::PurgeOk(ok)),
                        );
                    }
                })
            }
            queue::AMQPMethod::Delete(d) => {
                let queue = self.queue_name(ch, d.queue.as_str())?;
                self.allow(Perm::Configure, Resource::Queue(&queue))?;
                let nowait = d.nowait;
                let fut = async move {
                    broker
                        .delete_queue(&vhost, &queue, d.if_unused, d.if_empty, conn_id)
                        .await
                };
                self.run_op(ch, fut, move |conn, ch, count| {
                    if !nowait {
                        let ok = queue::DeleteOk {
                            message_count: count as u32,
                        };
                        reply(
                            &mut conn.out,
                            ch,
                            AMQPClass::Queue(queue::AMQPMethod::DeleteOk(ok)),
                        );
                    }
                })
            }
            _ => Err(AmqpError::new(
                ReplyCode::CommandInvalid,
                "unexpected queue method",
            )),
        }
    }
}
