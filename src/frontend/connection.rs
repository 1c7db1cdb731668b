//! One client connection: the only code that touches its socket. Reads frames, runs
//! channel methods, writes replies, deliveries and confirms, and keeps heartbeats.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use amq_protocol::protocol::{channel, connection};
use bytes::BytesMut;
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, Instrument};

use super::access::AccessCache;
use super::channel::Channel;
use super::control::connection_info;
use super::error::{AmqpError, AmqpResult, Scope};
use super::handshake::{handshake, open_ok, short, HandshakeEnd, Session};
use super::parked::{ParkedOps, Waiting, MAX_HELD_FRAMES};
use crate::amqp::{decode_frame, encode_heartbeat, encode_method, AMQPClass, Frame, ReplyCode};
use crate::broker::{Broker, ConnEvent, QueueMsg, Registration};
use crate::stats::{Count, LinkCounters, LinkKind};

/// Most events handled before the output is written.
const EVENT_BATCH: usize = 1024;

/// A client connection after the handshake.
pub struct Connection {
    pub(super) id: u64,
    pub(super) broker: Arc<Broker>,
    pub(super) session: Session,
    pub(super) out: Vec<u8>,
    pub(super) channels: HashMap<u16, Channel>,
    pub(super) events: mpsc::UnboundedSender<ConnEvent>,
    /// Set once we sent `connection.close`: only `close-ok` matters from then on.
    closing: bool,
    /// Set when the socket must be closed after the output is written.
    done: bool,
    /// This connection has published since it was opened (alarms block publishers only).
    pub(super) published: bool,
    /// The user's permissions in the vhost, compiled.
    pub(super) access: AccessCache,
    /// This connection's entry in the node's connection registry (removed on drop).
    pub(super) registration: Registration,
    /// Channels waiting for a slow operation, with the frames and events they hold.
    pub(super) waiting: Waiting<Frame, ConnEvent>,
    /// The slow operations in flight (`parked.rs`).
    pub(super) parked: ParkedOps,
    /// The method being handled, named by the error a parked operation may end with.
    pub(super) dispatching: (u16, u16),
    /// Bytes and packets in and out.
    traffic: LinkCounters,
}

/// Serve one accepted socket until it closes or the node shuts down.
pub async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    broker: Arc<Broker>,
    shutdown: watch::Receiver<bool>,
) {
    let id = broker.new_connection_id();
    // Instrumented, not entered: an entered span would leak into whatever else runs on
    // this thread while the connection awaits.
    let span = tracing::info_span!("connection", id, %peer);
    serve_in_span(stream, peer, broker, shutdown, id)
        .instrument(span)
        .await
}

async fn serve_in_span(
    mut stream: TcpStream,
    peer: SocketAddr,
    broker: Arc<Broker>,
    mut shutdown: watch::Receiver<bool>,
    id: u64,
) {
    let _ = stream.set_nodelay(true);
    let connected_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let Ok(local) = stream.local_addr() else {
        return;
    };
    let mut inbuf = BytesMut::with_capacity(64 * 1024);
    // A client has `handshake_timeout` to open the connection, as in RabbitMQ; then the
    // socket is closed without a word.
    let limit = Duration::from_millis(broker.config().handshake_timeout);
    let handshaking = handshake(&mut stream, peer, &mut inbuf, &broker);
    let Ok(handshaken) = tokio::time::timeout(limit, handshaking).await else {
        info!("handshake not finished within {limit:?}: closing the socket");
        return;
    };
    let session = match handshaken {
        Ok(session) => session,
        Err(HandshakeEnd::Quiet) => return,
        Err(HandshakeEnd::Close(e)) => {
            let mut out = Vec::new();
            encode_close(&mut out, &e);
            let _ = stream.write_all(&out).await;
            // Give the client a moment to read the close before the socket goes.
            let mut scratch = [0u8; 512];
            let _ =
                tokio::time::timeout(Duration::from_millis(500), stream.read(&mut scratch)).await;
            return;
        }
    };
    info!(
        user = session.user,
        vhost = session.vhost,
        "connection open"
    );
    let (events, mut events_rx) = mpsc::unbounded_channel();
    let (control, mut control_rx) = mpsc::unbounded_channel();
    let traffic = broker.stats().links().open(LinkKind::Connection);
    let registration = broker.connections().register(
        connection_info(id, (peer, local), connected_at, &session),
        control,
        traffic.stats().clone(),
    );
    if open_ok(&mut stream).await.is_err() {
        return;
    }
    let mut conn = Connection {
        id,
        broker: broker.clone(),
        session,
        out: Vec::with_capacity(64 * 1024),
        channels: HashMap::new(),
        events,
        closing: false,
        done: false,
        published: false,
        access: AccessCache::default(),
        registration,
        waiting: Waiting::default(),
        parked: ParkedOps::new(),
        dispatching: (0, 0),
        traffic,
    };
    let mut alarm = broker.alarms();
    let mut access = broker.access_changes();
    let mut notified_blocked = false;
    let (mut reader, mut writer) = stream.into_split();
    let heartbeat = Duration::from_secs(conn.session.heartbeat as u64);
    let mut ticker = tokio::time::interval(if heartbeat.is_zero() {
        Duration::from_secs(3600)
    } else {
        heartbeat / 2
    });
    let mut last_read = Instant::now();
    let mut last_write = Instant::now();
    let mut closing_since: Option<Instant> = None;
    loop {
        let alarms = *alarm.borrow_and_update();
        let alarm_on = alarms.any();
        if alarm_on != notified_blocked && conn.session.blocked_capable {
            let m = if alarm_on {
                connection::AMQPMethod::Blocked(connection::Blocked {
                    reason: alarms.reason().as_str().into(),
                })
            } else {
                connection::AMQPMethod::Unblocked(connection::Unblocked {})
            };
            encode_method(&mut conn.out, 0, &AMQPClass::Connection(m));
        }
        notified_blocked = alarm_on;
        // A publishing connection is not read from while a resource alarm is on, nor any
        // connection while its parked channels hold too many frames.
        let blocked = (alarm_on && conn.published && !conn.closing)
            || conn.waiting.held_frames() >= MAX_HELD_FRAMES;
        tokio::select! {
            _ = alarm.changed() => {}
            Ok(()) = access.changed() => {
                // A deleted user's (or vhost's) connections are closed, as RabbitMQ does.
                if let Some(e) = conn.login_revoked().filter(|_| !conn.closing) {
                    conn.close_connection(&e);
                }
            }
            n = read_more(&mut reader, &mut inbuf), if !blocked => {
                match n {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        conn.traffic.add(Count::RecvOct, n as u64);
                        conn.traffic.add(Count::RecvCnt, 1);
                        last_read = Instant::now();
                        conn.process_input(&mut inbuf);
                    }
                }
            }
            Some(resumed) = conn.parked.next(), if !conn.parked.is_empty() => conn.resume(resumed),
            Some(control) = control_rx.recv() => conn.handle_control(control),
            Some(event) = events_rx.recv() => {
                conn.handle_event(event);
                for _ in 0..EVENT_BATCH {
                    match events_rx.try_recv() {
                        Ok(event) => conn.handle_event(event),
                        Err(_) => break,
                    }
                }
            }
            _ = ticker.tick() => {
                if !heartbeat.is_zero() {
                    if last_read.elapsed() > heartbeat * 2 {
                        info!("missed heartbeats from client, timeout: {}s", heartbeat.as_secs());
                        break;
                    }
                    if last_write.elapsed() >= heartbeat / 2 {
                        encode_heartbeat(&mut conn.out);
                    }
                }
                if closing_since.is_some_and(|t| t.elapsed() > Duration::from_secs(10)) {
                    break;
                }
            }
            _ = shutdown.changed() => {
                if !conn.closing {
                    conn.close_connection(&AmqpError::new(ReplyCode::ConnectionForced, "broker forced connection closure with reason 'shutdown'"));
                }
            }
        }
        conn.write_confirms();
        if !conn.out.is_empty() {
            if writer.write_all(&conn.out).await.is_err() {
                break;
            }
            conn.traffic.add(Count::SendOct, conn.out.len() as u64);
            conn.traffic.add(Count::SendCnt, 1);
            last_write = Instant::now();
            conn.out.clear();
            if conn.out.capacity() > 4 * 1024 * 1024 {
                conn.out.shrink_to(64 * 1024);
            }
        }
        if conn.closing && closing_since.is_none() {
            closing_since = Some(Instant::now());
        }
        if conn.done {
            break;
        }
    }
    conn.teardown(&mut events_rx).await;
    debug!("connection closed");
}

async fn read_more(reader: &mut OwnedReadHalf, buf: &mut BytesMut) -> std::io::Result<usize> {
    if buf.capacity() - buf.len() < 16 * 1024 {
        buf.reserve(64 * 1024);
    }
    reader.read_buf(buf).await
}

/// Append `connection.close` for an error.
fn encode_close(out: &mut Vec<u8>, e: &AmqpError) {
    let close = connection::Close {
        reply_code: e.code.code(),
        reply_text: short(&e.text),
        class_id: e.method.0,
        method_id: e.method.1,
    };
    encode_method(
        out,
        0,
        &AMQPClass::Connection(connection::AMQPMethod::Close(close)),
    );
}

/// A frame's type and payload as they were on the wire, for RabbitMQ's frame-error texts.
fn frame_on_wire(frame: &Frame) -> (u8, Vec<u8>) {
    match frame {
        Frame::Header {
            class_id,
            body_size,
            properties,
            ..
        } => {
            let mut payload = Vec::with_capacity(12 + properties.len());
            payload.extend_from_slice(&class_id.to_be_bytes());
            payload.extend_from_slice(&[0, 0]);
            payload.extend_from_slice(&body_size.to_be_bytes());
            payload.extend_from_slice(properties);
            (2, payload)
        }
        Frame::Body { payload, .. } => (3, payload.to_vec()),
        Frame::Heartbeat { .. } => (8, Vec::new()),
        Frame::Method { method, .. } => {
            let mut out = Vec::new();
            encode_method(&mut out, 0, method);
            (1, out[7..out.len() - 1].to_vec())
        }
    }
}

/// RabbitMQ's `unexpected_frame`: a well-formed frame where it may not be.
fn unexpected_frame((kind, payload): &(u8, Vec<u8>)) -> AmqpError {
    AmqpError::new(
        ReplyCode::UnexpectedFrame,
        crate::amqp::erl::frame_snippet(*kind, payload),
    )
}

fn method_id(m: &AMQPClass) -> (u16, u16) {
    (m.get_amqp_class_id(), m.get_amqp_method_id())
}

impl Connection {
    fn process_input(&mut self, inbuf: &mut BytesMut) {
        while !self.done {
            let frame = match decode_frame(inbuf, self.session.frame_max) {
                Ok(Some(frame)) => frame,
                Ok(None) => return,
                Err(e) => {
                    self.close_connection(&AmqpError::prefixed(e.code, e.text).on(e.method));
                    self.done = true;
                    return;
                }
            };
            if let Err(e) = self.handle_frame(frame) {
                self.fail(e);
            }
        }
    }

    pub(super) fn is_closing(&self) -> bool {
        self.closing || self.done
    }

    /// Report the outcome of a channel's method: a channel error closes the channel, any
    /// other the connection.
    pub(super) fn report(&mut self, ch: u16, method: (u16, u16), result: AmqpResult<()>) {
        match result {
            Err(e) if e.scope() == Scope::Channel => self.close_channel(ch, e.on(method)),
            Err(e) => self.fail(e.on(method)),
            Ok(()) => {}
        }
    }

    /// Report an error the way its reply code demands.
    pub(super) fn fail(&mut self, e: AmqpError) {
        debug!(code = e.code.code(), text = e.text, "connection error");
        self.close_connection(&e);
    }

    pub(super) fn close_connection(&mut self, e: &AmqpError) {
        if self.closing {
            return;
        }
        self.closing = true;
        self.registration.set_closing();
        encode_close(&mut self.out, e);
    }

    pub(super) fn handle_frame(&mut self, frame: Frame) -> AmqpResult<()> {
        let ch = frame.channel();
        if self.closing {
            // After connection.close only close-ok (or close) is looked at.
            if let Frame::Method { method, .. } = &frame {
                match **method {
                    AMQPClass::Connection(connection::AMQPMethod::CloseOk(_)) => self.done = true,
                    AMQPClass::Connection(connection::AMQPMethod::Close(_)) => {
                        encode_method(
                            &mut self.out,
                            0,
                            &AMQPClass::Connection(connection::AMQPMethod::CloseOk(
                                connection::CloseOk {},
                            )),
                        );
                        self.done = true;
                    }
                    _ => {}
                }
            }
            return Ok(());
        }
        if ch == 0 {
            return self.handle_channel_zero(frame);
        }
        // A parked channel's frames wait, in order, for its slow operation to finish.
        let frame = match self.waiting.is_empty() {
            true => frame,
            false => match self.waiting.hold_frame(ch, frame) {
                Ok(()) => return Ok(()),
                Err(frame) => frame,
            },
        };
        // As RabbitMQ: channel_max bounds how many channels are open, not their numbers.
        let max = usize::from(self.session.channel_max);
        if max != 0 && self.channels.len() >= max && !self.channels.contains_key(&ch) {
            return Err(AmqpError::new(
                ReplyCode::NotAllowed,
                format!(
                    "number of channels opened ({}) has reached the negotiated channel_max ({max})",
                    self.channels.len()
                ),
            ));
        }
        match frame {
            Frame::Method { method, .. } => {
                let id = method_id(&method);
                self.dispatching = id;
                let result = self.handle_channel_method(ch, *method);
                self.report(ch, id, result);
                Ok(())
            }
            Frame::Header {
                class_id,
                body_size,
                properties,
                ..
            } => {
                self.dispatching = (60, 40);
                match self.content_header(ch, class_id, body_size, properties) {
                    Err(e) if e.scope() == Scope::Channel => {
                        self.close_channel(ch, e.on((60, 40)));
                        Ok(())
                    }
                    other => other,
                }
            }
            Frame::Body { payload, .. } => {
                self.dispatching = (60, 40);
                match self.content_body(ch, payload) {
                    Err(e) if e.scope() == Scope::Channel => {
                        self.close_channel(ch, e.on((60, 40)));
                        Ok(())
                    }
                    other => other,
                }
            }
            Frame::Heartbeat { .. } => Err(unexpected_frame(&frame_on_wire(&frame))),
        }
    }

    fn handle_channel_zero(&mut self, frame: Frame) -> AmqpResult<()> {
        match frame {
            Frame::Heartbeat { .. } => Ok(()),
            Frame::Method { method, .. } => match *method {
                AMQPClass::Connection(connection::AMQPMethod::Close(_)) => {
                    encode_method(
                        &mut self.out,
                        0,
                        &AMQPClass::Connection(connection::AMQPMethod::CloseOk(
                            connection::CloseOk {},
                        )),
                    );
                    self.done = true;
                    Ok(())
                }
                AMQPClass::Connection(connection::AMQPMethod::CloseOk(_)) => {
                    self.done = true;
                    Ok(())
                }
                AMQPClass::Connection(connection::AMQPMethod::UpdateSecret(_)) => {
                    encode_method(
                        &mut self.out,
                        0,
                        &AMQPClass::Connection(connection::AMQPMethod::UpdateSecretOk(
                            connection::UpdateSecretOk {},
                        )),
                    );
                    Ok(())
                }
                AMQPClass::Connection(connection::AMQPMethod::Blocked(_))
                | AMQPClass::Connection(connection::AMQPMethod::Unblocked(_)) => Ok(()),
                other => Err(AmqpError::new(
                    ReplyCode::ChannelError,
                    "unexpected method in connection state running",
                )
                .on(method_id(&other))),
            },
            content => Err(unexpected_frame(&frame_on_wire(&content))),
        }
    }

    /// Close one channel with a soft error: clean it up and send `channel.close`.
    pub(super) fn close_channel(&mut self, ch: u16, e: AmqpError) {
        if let Some(mut channel) = self.channels.remove(&ch) {
            self.release_channel(&mut channel);
            channel.closing = true;
            self.channels.insert(ch, channel);
        }
        let close = channel::Close {
            reply_code: e.code.code(),
            reply_text: short(&e.text),
            class_id: e.method.0,
            method_id: e.method.1,
        };
        encode_method(
            &mut self.out,
            ch,
            &AMQPClass::Channel(channel::AMQPMethod::Close(close)),
        );
    }

    /// Cancel a channel's consumers and return its unacknowledged deliveries.
    pub(super) fn release_channel(&mut self, channel: &mut Channel) {
        for (_, c) in channel.consumers.drain() {
            c.queue.send(QueueMsg::Cancel { key: c.key });
        }
        let unacked = std::mem::take(&mut channel.unacked).into_values().collect();
        for (queue, msg_ids) in Channel::by_queue(unacked) {
            queue.send(QueueMsg::Requeue { msg_ids });
        }
        channel.assembly = None;
        channel.tx = None;
        // Its publishes are all sent: the queues may forget it once they stored them.
        for (_, queue) in channel.published_to.drain() {
            queue.send(QueueMsg::Forget {
                enqueuer: channel.enqueuer,
            });
        }
    }

    /// Give everything this connection held back to its queues.
    async fn teardown(&mut self, events_rx: &mut mpsc::UnboundedReceiver<ConnEvent>) {
        // Operations still parked are dropped; what their channels held goes back below.
        self.parked = ParkedOps::new();
        let held: Vec<ConnEvent> = std::mem::take(&mut self.waiting).into_events().collect();
        let mut channels: Vec<Channel> = self.channels.drain().map(|(_, c)| c).collect();
        for ch in channels.iter_mut() {
            self.release_channel(ch);
        }
        events_rx.close();
        let queued = std::iter::from_fn(|| events_rx.try_recv().ok());
        for event in held.into_iter().chain(queued) {
            if let ConnEvent::Deliver(d) = event {
                if d.needs_ack {
                    d.queue.send(QueueMsg::Requeue {
                        msg_ids: vec![d.msg_id],
                    });
                }
            }
        }
        self.broker.connection_closed(self.id).await;
    }
}
