//! Bad input over real sockets: wrong header, oversize frames, frames on unopened
//! channels, content without a method, unknown methods and random bytes. Each gets
//! RabbitMQ's reply code; none crashes the node or disturbs another connection.

mod common;

use std::time::Duration;

use amq_protocol::protocol::{basic, channel, connection, exchange, queue, AMQPClass};
use bytes::BytesMut;
use common::{run, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use warrenmq::amqp::{decode_frame, encode_method, Frame};

/// A raw connection after a successful handshake.
struct Raw {
    stream: TcpStream,
    buf: BytesMut,
}

impl Raw {
    async fn open(port: u16) -> Raw {
        Raw::open_with(port, Default::default()).await
    }

    async fn open_with(port: u16, client_properties: amq_protocol::types::FieldTable) -> Raw {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        stream.write_all(b"AMQP\x00\x00\x09\x01").await.unwrap();
        let mut raw = Raw {
            stream,
            buf: BytesMut::new(),
        };
        let start = raw.method().await;
        assert!(
            matches!(
                start,
                AMQPClass::Connection(connection::AMQPMethod::Start(_))
            ),
            "{start:?}"
        );
        raw.send(
            0,
            AMQPClass::Connection(connection::AMQPMethod::StartOk(connection::StartOk {
                client_properties,
                mechanism: "PLAIN".into(),
                response: "\0guest\0guest".to_owned().into(),
                locale: "en_US".into(),
            })),
        )
        .await;
        let tune = raw.method().await;
        assert!(
            matches!(tune, AMQPClass::Connection(connection::AMQPMethod::Tune(_))),
            "{tune:?}"
        );
        raw.send(
            0,
            AMQPClass::Connection(connection::AMQPMethod::TuneOk(connection::TuneOk {
                channel_max: 16,
                frame_max: 4096,
                heartbeat: 0,
            })),
        )
        .await;
        raw.send(
            0,
            AMQPClass::Connection(connection::AMQPMethod::Open(connection::Open {
                virtual_host: "/".into(),
            })),
        )
        .await;
        let ok = raw.method().await;
        assert!(
            matches!(ok, AMQPClass::Connection(connection::AMQPMethod::OpenOk(_))),
            "{ok:?}"
        );
        raw
    }

    async fn send(&mut self, ch: u16, m: AMQPClass) {
        let mut out = Vec::new();
        encode_method(&mut out, ch, &m);
        self.stream.write_all(&out).await.unwrap();
    }

    async fn frame(&mut self) -> Option<Frame> {
        loop {
            if let Some(f) = decode_frame(&mut self.buf, 0).expect("server frames decode") {
                return Some(f);
            }
            let n =
                tokio::time::timeout(Duration::from_secs(10), self.stream.read_buf(&mut self.buf))
                    .await
                    .expect("server answers in time")
                    .ok()?;
            if n == 0 {
                return None;
            }
        }
    }

    async fn method(&mut self) -> AMQPClass {
        loop {
            match self.frame().await.expect("connection open") {
                Frame::Method { method, .. } => return *method,
                _ => continue,
            }
        }
    }

    /// The `connection.close` the server sends next.
    async fn close(&mut self) -> connection::Close {
        match self.method().await {
            AMQPClass::Connection(connection::AMQPMethod::Close(c)) => c,
            other => panic!("expected connection.close, got {other:?}"),
        }
    }

    /// Code, text and (class, method) of the next `connection.close`.
    async fn close_fields(&mut self) -> (u16, String, (u16, u16)) {
        let c = self.close().await;
        (
            c.reply_code,
            c.reply_text.as_str().to_owned(),
            (c.class_id, c.method_id),
        )
    }

    async fn open_channel(&mut self, ch: u16) {
        self.send(
            ch,
            AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {})),
        )
        .await;
        let ok = self.method().await;
        assert!(
            matches!(ok, AMQPClass::Channel(channel::AMQPMethod::OpenOk(_))),
            "{ok:?}"
        );
    }

    /// The reply code of the `connection.close` the server sends next.
    async fn connection_close(&mut self) -> (u16, String) {
        match self.method().await {
            AMQPClass::Connection(connection::AMQPMethod::Close(c)) => {
                (c.reply_code, c.reply_text.as_str().to_owned())
            }
            other => panic!("expected connection.close, got {other:?}"),
        }
    }
}

#[test]
fn wrong_protocol_header_gets_the_0_9_1_header_back() {
    let server = Server::start();
    run(Duration::from_secs(30), "wrong header", async {
        let mut s = TcpStream::connect(("127.0.0.1", server.port))
            .await
            .unwrap();
        s.write_all(b"AMQP\x01\x01\x00\x0a").await.unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"AMQP\x00\x00\x09\x01");
    });
}

#[test]
fn protocol_violations_get_rabbitmq_reply_codes() {
    let server = Server::start();
    run(Duration::from_secs(60), "protocol violations", async {
        // Frame larger than the negotiated frame_max (4096): 501.
        let mut raw = Raw::open(server.port).await;
        raw.stream
            .write_all(&[3, 0, 1, 0, 0, 0x20, 0])
            .await
            .unwrap();
        assert_eq!(raw.connection_close().await.0, 501);

        // A method on a channel that was never opened: 504.
        let mut raw = Raw::open(server.port).await;
        raw.send(
            5,
            AMQPClass::Basic(basic::AMQPMethod::Qos(basic::Qos {
                prefetch_count: 1,
                global: false,
            })),
        )
        .await;
        assert_eq!(raw.connection_close().await.0, 504);

        // A content header without its method: 505.
        let mut raw = Raw::open(server.port).await;
        raw.send(
            1,
            AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {})),
        )
        .await;
        assert!(matches!(
            raw.method().await,
            AMQPClass::Channel(channel::AMQPMethod::OpenOk(_))
        ));
        let mut header = vec![
            2u8, 0, 1, 0, 0, 0, 14, 0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0xCE,
        ];
        header[6] = 14;
        raw.stream.write_all(&header).await.unwrap();
        assert_eq!(raw.connection_close().await.0, 505);

        // An unknown method: 540.
        let mut raw = Raw::open(server.port).await;
        raw.stream
            .write_all(&[1, 0, 0, 0, 0, 0, 4, 0, 10, 0, 99, 0xCE])
            .await
            .unwrap();
        assert_eq!(raw.connection_close().await.0, 540);

        // A second channel.open on an open channel: 504.
        let mut raw = Raw::open(server.port).await;
        raw.send(
            1,
            AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {})),
        )
        .await;
        raw.method().await;
        raw.send(
            1,
            AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {})),
        )
        .await;
        assert_eq!(raw.connection_close().await.0, 504);
    });
}

/// Texts and method ids as RabbitMQ 3.10 sends them (see scripts/compare_rabbitmq.py).
#[test]
fn frame_errors_carry_rabbitmq_texts_and_method_ids() {
    let server = Server::start();
    run(Duration::from_secs(60), "frame error texts", async {
        // Oversize: the payload size against frame_max less the frame overhead.
        let mut raw = Raw::open(server.port).await;
        raw.stream
            .write_all(&[3, 0, 1, 0, 0, 0x20, 0])
            .await
            .unwrap();
        assert_eq!(
            raw.close_fields().await,
            (
                501,
                "FRAME_ERROR - type 3, all octets = <<>>: {frame_too_large,8192,4088}".into(),
                (0, 0)
            )
        );
        // Unknown frame type and a bad frame end.
        let mut raw = Raw::open(server.port).await;
        raw.stream
            .write_all(&[9, 0, 1, 0, 0, 0, 2, b'h', b'i', 0xCE])
            .await
            .unwrap();
        assert_eq!(
            raw.close_fields().await,
            (
                501,
                "FRAME_ERROR - type 9, all octets = <<\"hi\">>: unknown_frame".into(),
                (0, 0)
            )
        );
        let mut raw = Raw::open(server.port).await;
        raw.stream
            .write_all(&[3, 0, 1, 0, 0, 0, 1, 0, 0])
            .await
            .unwrap();
        assert_eq!(
            raw.close_fields().await,
            (
                501,
                "FRAME_ERROR - type 3, all octets = <<0>>: {invalid_frame_end_marker,0}".into(),
                (0, 0)
            )
        );
        // A heartbeat on a channel, and a queue method on channel 0.
        let mut raw = Raw::open(server.port).await;
        raw.stream
            .write_all(&[8, 0, 1, 0, 0, 0, 0, 0xCE])
            .await
            .unwrap();
        assert_eq!(
            raw.close_fields().await,
            (
                505,
                "UNEXPECTED_FRAME - type 8, all octets = <<>>".into(),
                (0, 0)
            )
        );
        let mut raw = Raw::open(server.port).await;
        raw.send(
            0,
            AMQPClass::Basic(basic::AMQPMethod::Qos(basic::Qos {
                prefetch_count: 1,
                global: false,
            })),
        )
        .await;
        assert_eq!(
            raw.close_fields().await,
            (
                504,
                "CHANNEL_ERROR - unexpected method in connection state running".into(),
                (60, 10)
            )
        );
        // basic.qos with a prefetch_size: 540, closing the connection.
        let mut raw = Raw::open(server.port).await;
        raw.open_channel(1).await;
        raw.stream
            .write_all(&[
                1, 0, 1, 0, 0, 0, 11, 0, 60, 0, 10, 0, 0, 0, 10, 0, 0, 0, 0xCE,
            ])
            .await
            .unwrap();
        assert_eq!(
            raw.close_fields().await,
            (
                540,
                "NOT_IMPLEMENTED - prefetch_size!=0 (10)".into(),
                (60, 10)
            )
        );
        // A method where the publish's content header belongs names basic.publish.
        let mut raw = Raw::open(server.port).await;
        raw.open_channel(1).await;
        raw.send(
            1,
            AMQPClass::Basic(basic::AMQPMethod::Publish(basic::Publish {
                exchange: "".into(),
                routing_key: "q".into(),
                mandatory: false,
                immediate: false,
            })),
        )
        .await;
        raw.send(
            1,
            AMQPClass::Basic(basic::AMQPMethod::Qos(basic::Qos {
                prefetch_count: 1,
                global: false,
            })),
        )
        .await;
        assert_eq!(
            raw.close_fields().await,
            (
                505,
                "UNEXPECTED_FRAME - expected content header for class 60, got non content header frame instead".into(),
                (60, 40)
            )
        );
        // The default exchange cannot be declared, not even passively: 403 on the channel.
        let mut raw = Raw::open(server.port).await;
        raw.open_channel(1).await;
        raw.send(
            1,
            AMQPClass::Exchange(exchange::AMQPMethod::Declare(exchange::Declare {
                exchange: "".into(),
                kind: "direct".into(),
                passive: true,
                durable: false,
                auto_delete: false,
                internal: false,
                nowait: false,
                arguments: Default::default(),
            })),
        )
        .await;
        match raw.method().await {
            AMQPClass::Channel(channel::AMQPMethod::Close(c)) => assert_eq!(
                (c.reply_code, c.reply_text.as_str(), c.class_id, c.method_id),
                (
                    403,
                    "ACCESS_REFUSED - operation not permitted on the default exchange",
                    40,
                    10
                )
            ),
            other => panic!("expected channel.close, got {other:?}"),
        }
        // channel_max (16 here) bounds the number of open channels, not their numbers.
        let mut raw = Raw::open(server.port).await;
        raw.open_channel(60000).await;
        for ch in 1..16 {
            raw.open_channel(ch).await;
        }
        raw.send(
            16,
            AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {})),
        )
        .await;
        assert_eq!(
            raw.close_fields().await,
            (
                530,
                "NOT_ALLOWED - number of channels opened (16) has reached the negotiated channel_max (16)".into(),
                (0, 0)
            )
        );
    });
}

/// The next `channel.close`: code, text and (class, method).
async fn channel_close(raw: &mut Raw) -> (u16, String, (u16, u16)) {
    match raw.method().await {
        AMQPClass::Channel(channel::AMQPMethod::Close(c)) => (
            c.reply_code,
            c.reply_text.as_str().to_owned(),
            (c.class_id, c.method_id),
        ),
        other => panic!("expected channel.close, got {other:?}"),
    }
}

#[test]
fn empty_queue_names_immediate_and_overlong_bodies_as_in_rabbitmq() {
    let server = Server::start();
    run(Duration::from_secs(60), "shortcuts and refusals", async {
        let get = |queue: &str| {
            AMQPClass::Basic(basic::AMQPMethod::Get(basic::Get {
                queue: queue.into(),
                no_ack: true,
            }))
        };
        // An empty queue name is the channel's last declared queue; without one: 404.
        let mut raw = Raw::open(server.port).await;
        raw.open_channel(1).await;
        raw.send(1, get("")).await;
        assert_eq!(
            channel_close(&mut raw).await,
            (
                404,
                "NOT_FOUND - no previously declared queue".into(),
                (60, 70)
            )
        );
        raw.open_channel(2).await;
        raw.send(
            2,
            AMQPClass::Queue(queue::AMQPMethod::Declare(queue::Declare {
                queue: "".into(),
                passive: false,
                durable: false,
                exclusive: true,
                auto_delete: false,
                nowait: false,
                arguments: Default::default(),
            })),
        )
        .await;
        assert!(matches!(
            raw.method().await,
            AMQPClass::Queue(queue::AMQPMethod::DeclareOk(_))
        ));
        raw.send(2, get("")).await;
        assert!(matches!(
            raw.method().await,
            AMQPClass::Basic(basic::AMQPMethod::GetEmpty(_))
        ));
        // immediate=true is not implemented: 540, closing the connection.
        raw.send(
            2,
            AMQPClass::Basic(basic::AMQPMethod::Publish(basic::Publish {
                exchange: "".into(),
                routing_key: "q".into(),
                mandatory: false,
                immediate: true,
            })),
        )
        .await;
        assert_eq!(
            raw.close_fields().await,
            (540, "NOT_IMPLEMENTED - immediate=true".into(), (60, 40))
        );
        // More body than the header announced.
        let mut raw = Raw::open(server.port).await;
        raw.open_channel(1).await;
        let mut out = Vec::new();
        encode_method(
            &mut out,
            1,
            &AMQPClass::Basic(basic::AMQPMethod::Publish(basic::Publish {
                exchange: "".into(),
                routing_key: "q".into(),
                mandatory: false,
                immediate: false,
            })),
        );
        // Header: class 60, weight 0, body size 2, no properties; then a 3-octet body.
        out.extend_from_slice(&[
            2, 0, 1, 0, 0, 0, 14, 0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0xCE,
        ]);
        out.extend_from_slice(&[3, 0, 1, 0, 0, 0, 3, b'x', b'y', b'z', 0xCE]);
        raw.stream.write_all(&out).await.unwrap();
        assert_eq!(
            raw.close_fields().await,
            (
                505,
                "UNEXPECTED_FRAME - expected content body, got non content body frame instead"
                    .into(),
                (60, 40)
            )
        );
    });
}

/// Start a handshake with these credentials; the `connection.close` the server sends, or
/// `None` when it just closes the socket.
async fn refused_login(
    port: u16,
    password: &str,
    vhost: &str,
    capabilities: amq_protocol::types::FieldTable,
) -> Option<(u16, String, (u16, u16))> {
    use amq_protocol::types::{AMQPValue, FieldTable};
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream.write_all(b"AMQP\x00\x00\x09\x01").await.unwrap();
    let mut raw = Raw {
        stream,
        buf: BytesMut::new(),
    };
    raw.method().await;
    let mut props = FieldTable::default();
    props.insert("capabilities".into(), AMQPValue::FieldTable(capabilities));
    raw.send(
        0,
        AMQPClass::Connection(connection::AMQPMethod::StartOk(connection::StartOk {
            client_properties: props,
            mechanism: "PLAIN".into(),
            response: format!("\0guest\0{password}").into(),
            locale: "en_US".into(),
        })),
    )
    .await;
    loop {
        match raw.frame().await? {
            Frame::Method { method, .. } => match *method {
                AMQPClass::Connection(connection::AMQPMethod::Tune(t)) => {
                    raw.send(
                        0,
                        AMQPClass::Connection(connection::AMQPMethod::TuneOk(connection::TuneOk {
                            channel_max: t.channel_max,
                            frame_max: t.frame_max,
                            heartbeat: 0,
                        })),
                    )
                    .await;
                    raw.send(
                        0,
                        AMQPClass::Connection(connection::AMQPMethod::Open(connection::Open {
                            virtual_host: vhost.into(),
                        })),
                    )
                    .await;
                }
                AMQPClass::Connection(connection::AMQPMethod::Close(c)) => {
                    return Some((
                        c.reply_code,
                        c.reply_text.as_str().to_owned(),
                        (c.class_id, c.method_id),
                    ))
                }
                other => panic!("unexpected {other:?}"),
            },
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[test]
fn refused_logins_are_explained_only_to_clients_that_ask() {
    let server = Server::start();
    run(Duration::from_secs(30), "refused logins", async {
        use amq_protocol::types::{AMQPValue, FieldTable};
        assert_eq!(
            refused_login(server.port, "wrong", "/", FieldTable::default()).await,
            None
        );
        let mut caps = FieldTable::default();
        caps.insert(
            "authentication_failure_close".into(),
            AMQPValue::Boolean(true),
        );
        assert_eq!(
            refused_login(server.port, "wrong", "/", caps).await,
            Some((
                403,
                "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. For details see the broker logfile.".into(),
                (0, 0)
            ))
        );
        assert_eq!(
            refused_login(server.port, "guest", "nope", FieldTable::default()).await,
            Some((530, "NOT_ALLOWED - vhost nope not found".into(), (10, 40)))
        );
    });
}

#[test]
fn random_and_mutated_bytes_never_take_the_node_down() {
    let server = Server::start();
    run(Duration::from_secs(120), "fuzzing connections", async {
        let mut rng = rand::rng();
        use rand::Rng;
        // A valid publish sequence to mutate.
        let mut valid = Vec::new();
        encode_method(
            &mut valid,
            1,
            &AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {})),
        );
        encode_method(
            &mut valid,
            1,
            &AMQPClass::Basic(basic::AMQPMethod::Publish(basic::Publish {
                exchange: "".into(),
                routing_key: "q".into(),
                mandatory: true,
                immediate: false,
            })),
        );
        warrenmq::amqp::encode_content(&mut valid, 1, &[0x10, 0x00, 2], b"hello", 4096);
        for round in 0..150 {
            let mut raw = Raw::open(server.port).await;
            let bytes: Vec<u8> = if round % 2 == 0 {
                (0..rng.random_range(1..300))
                    .map(|_| rng.random())
                    .collect()
            } else {
                let mut m = valid.clone();
                for _ in 0..rng.random_range(1..4) {
                    let i = rng.random_range(0..m.len());
                    m[i] = rng.random();
                }
                m
            };
            let _ = raw.stream.write_all(&bytes).await;
            // Read whatever comes until the server closes or goes quiet.
            let _ = tokio::time::timeout(Duration::from_millis(50), async {
                let mut sink = [0u8; 4096];
                while let Ok(n) = raw.stream.read(&mut sink).await {
                    if n == 0 {
                        break;
                    }
                }
            })
            .await;
        }
        // The node still serves a well-behaved client.
        let mut raw = Raw::open(server.port).await;
        raw.send(
            1,
            AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {})),
        )
        .await;
        assert!(matches!(
            raw.method().await,
            AMQPClass::Channel(channel::AMQPMethod::OpenOk(_))
        ));
    });
}

#[test]
fn memory_alarm_sends_connection_blocked_to_capable_clients() {
    let server = Server::start_with(&["--memory-high-watermark", "1"]);
    run(Duration::from_secs(30), "connection.blocked", async {
        use amq_protocol::types::{AMQPValue, FieldTable};
        let mut caps = FieldTable::default();
        caps.insert("connection.blocked".into(), AMQPValue::Boolean(true));
        let mut props = FieldTable::default();
        props.insert("capabilities".into(), AMQPValue::FieldTable(caps));
        let mut raw = Raw::open_with(server.port, props).await;
        match raw.method().await {
            AMQPClass::Connection(connection::AMQPMethod::Blocked(b)) => {
                assert_eq!(b.reason.as_str(), "low on memory")
            }
            other => panic!("expected connection.blocked, got {other:?}"),
        }
    });
}
