//! A minimal AMQP 0-9-1 client for the load tool: the handshake and synchronous methods
//! through the crate's codec, then hot paths (in `producer.rs` and `consumer.rs`) that write
//! pre-encoded frames and scan incoming frames in place, so the tool spends little CPU per
//! message and the broker, not the client, is what a run measures.

use std::str::FromStr;

use amq_protocol::protocol::{basic, channel, connection, AMQPClass};
use amq_protocol::types::{AMQPValue, FieldTable, LongString};
use amq_protocol::uri::AMQPUri;
use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use warrenmq::amqp::{decode_frame, encode_method, Frame, PROTOCOL_HEADER};

/// The frame_max this client asks for (RabbitMQ's default).
const FRAME_MAX: u32 = 131_072;
/// Frame type octets.
pub const FRAME_METHOD: u8 = 1;
#[cfg(test)]
pub const FRAME_HEADER: u8 = 2;
pub const FRAME_BODY: u8 = 3;
const FRAME_END: u8 = 0xCE;

/// One open connection before it is split for a hot path.
pub struct Wire {
    stream: TcpStream,
    /// Bytes read but not yet consumed (kept for the hot path after `split`).
    pub inbuf: BytesMut,
    out: Vec<u8>,
    pub frame_max: u32,
}

/// A frame seen in place: its type and payload (the load tool uses channel 1 only).
pub struct RawFrame<'a> {
    pub kind: u8,
    pub payload: &'a [u8],
}

impl RawFrame<'_> {
    /// `(class, method)` of a method frame.
    pub fn method_id(&self) -> Option<(u16, u16)> {
        if self.kind != FRAME_METHOD || self.payload.len() < 4 {
            return None;
        }
        let p = self.payload;
        Some((
            u16::from_be_bytes([p[0], p[1]]),
            u16::from_be_bytes([p[2], p[3]]),
        ))
    }
}

/// Calls `f` on every complete frame at the front of `buf` and removes them. Returns an
/// error on a malformed frame.
pub fn scan_frames(
    buf: &mut BytesMut,
    mut f: impl FnMut(RawFrame<'_>) -> Result<(), String>,
) -> Result<(), String> {
    let mut at = 0;
    loop {
        let rest = &buf[at..];
        if rest.len() < 7 {
            break;
        }
        let size = u32::from_be_bytes([rest[3], rest[4], rest[5], rest[6]]) as usize;
        if rest.len() < size + 8 {
            break;
        }
        if rest[7 + size] != FRAME_END {
            return Err("malformed frame from the broker (bad frame end)".into());
        }
        f(RawFrame {
            kind: rest[0],
            payload: &rest[7..7 + size],
        })?;
        at += size + 8;
    }
    buf.advance(at);
    Ok(())
}

/// The text of a `channel.close` or `connection.close` payload, for error messages.
pub fn close_text(payload: &[u8]) -> String {
    // class, method, reply-code (2), reply-text (shortstr)
    if payload.len() < 7 {
        return "closed by the broker".into();
    }
    let code = u16::from_be_bytes([payload[4], payload[5]]);
    let len = payload[6] as usize;
    let text = payload
        .get(7..7 + len)
        .map(String::from_utf8_lossy)
        .unwrap_or_default();
    format!("{code} {text}")
}

impl Wire {
    /// Connect to `uri`, authenticate with PLAIN, open the vhost and channel 1.
    pub async fn connect(uri: &str, name: &str) -> Result<Wire, String> {
        let parsed = AMQPUri::from_str(uri)?;
        let auth = &parsed.authority;
        let stream = TcpStream::connect((auth.host.as_str(), auth.port))
            .await
            .map_err(|e| format!("connect {}:{}: {e}", auth.host, auth.port))?;
        let _ = stream.set_nodelay(true);
        let mut wire = Wire {
            stream,
            inbuf: BytesMut::with_capacity(256 * 1024),
            out: Vec::with_capacity(64 * 1024),
            frame_max: FRAME_MAX,
        };
        wire.stream
            .write_all(PROTOCOL_HEADER)
            .await
            .map_err(|e| e.to_string())?;
        match wire.read_method(0).await? {
            AMQPClass::Connection(connection::AMQPMethod::Start(_)) => {}
            other => return Err(format!("expected connection.start, got {other:?}")),
        }
        let mut props = FieldTable::default();
        props.insert(
            "connection_name".into(),
            AMQPValue::LongString(LongString::from(name)),
        );
        props.insert(
            "product".into(),
            AMQPValue::LongString(LongString::from("warrenmq-perf")),
        );
        let response = format!("\0{}\0{}", auth.userinfo.username, auth.userinfo.password);
        wire.send(
            0,
            AMQPClass::Connection(connection::AMQPMethod::StartOk(connection::StartOk {
                client_properties: props,
                mechanism: "PLAIN".into(),
                response: LongString::from(response.as_str()),
                locale: "en_US".into(),
            })),
        )
        .await?;
        let tune = match wire.read_method(0).await? {
            AMQPClass::Connection(connection::AMQPMethod::Tune(t)) => t,
            other => return Err(format!("expected connection.tune, got {other:?}")),
        };
        wire.frame_max = match tune.frame_max {
            0 => FRAME_MAX,
            n => n.min(FRAME_MAX),
        };
        wire.send(
            0,
            AMQPClass::Connection(connection::AMQPMethod::TuneOk(connection::TuneOk {
                channel_max: tune.channel_max,
                frame_max: wire.frame_max,
                heartbeat: 0,
            })),
        )
        .await?;
        wire.call(
            0,
            AMQPClass::Connection(connection::AMQPMethod::Open(connection::Open {
                virtual_host: parsed.vhost.as_str().into(),
            })),
        )
        .await?;
        wire.call(
            1,
            AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {})),
        )
        .await?;
        Ok(wire)
    }

    /// Send one method frame.
    pub async fn send(&mut self, ch: u16, method: AMQPClass) -> Result<(), String> {
        self.out.clear();
        encode_method(&mut self.out, ch, &method);
        self.stream
            .write_all(&self.out)
            .await
            .map_err(|e| format!("write: {e}"))
    }

    /// Send a synchronous method and return the reply.
    pub async fn call(&mut self, ch: u16, method: AMQPClass) -> Result<AMQPClass, String> {
        self.send(ch, method).await?;
        self.read_method(ch).await
    }

    /// Read until the next method frame on `ch`; a close from the broker is an error.
    async fn read_method(&mut self, ch: u16) -> Result<AMQPClass, String> {
        loop {
            match decode_frame(&mut self.inbuf, self.frame_max).map_err(|e| e.text)? {
                Some(Frame::Method { channel, method }) => match *method {
                    AMQPClass::Connection(connection::AMQPMethod::Close(c)) => {
                        return Err(format!(
                            "connection closed by the broker: {} {}",
                            c.reply_code, c.reply_text
                        ))
                    }
                    AMQPClass::Channel(channel::AMQPMethod::Close(c)) => {
                        return Err(format!(
                            "channel closed by the broker: {} {}",
                            c.reply_code, c.reply_text
                        ))
                    }
                    m if channel == ch => return Ok(m),
                    _ => {}
                },
                Some(_) => {}
                None => {
                    if self.inbuf.capacity() - self.inbuf.len() < 4096 {
                        self.inbuf.reserve(64 * 1024);
                    }
                    let n = self
                        .stream
                        .read_buf(&mut self.inbuf)
                        .await
                        .map_err(|e| format!("read: {e}"))?;
                    if n == 0 {
                        return Err("the broker closed the connection".into());
                    }
                }
            }
        }
    }

    /// Split for a hot path: the read half with the bytes already read, and the write half.
    pub fn split(self) -> (OwnedReadHalf, BytesMut, OwnedWriteHalf) {
        let (r, w) = self.stream.into_split();
        (r, self.inbuf, w)
    }
}

/// Append `basic.ack` on channel 1.
pub fn encode_ack(out: &mut Vec<u8>, delivery_tag: u64, multiple: bool) {
    encode_method(
        out,
        1,
        &AMQPClass::Basic(basic::AMQPMethod::Ack(basic::Ack {
            delivery_tag,
            multiple,
        })),
    );
}

/// Append `connection.close` (normal shutdown).
pub fn encode_connection_close(out: &mut Vec<u8>) {
    encode_method(
        out,
        0,
        &AMQPClass::Connection(connection::AMQPMethod::Close(connection::Close {
            reply_code: 200,
            reply_text: "bye".into(),
            class_id: 0,
            method_id: 0,
        })),
    );
}

/// Read more bytes into `buf`; `Ok(false)` at end of stream.
pub async fn read_more(reader: &mut OwnedReadHalf, buf: &mut BytesMut) -> Result<bool, String> {
    if buf.capacity() - buf.len() < 32 * 1024 {
        buf.reserve(128 * 1024);
    }
    let n = reader
        .read_buf(buf)
        .await
        .map_err(|e| format!("read: {e}"))?;
    Ok(n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use warrenmq::amqp::encode_content;

    #[test]
    fn scans_whole_frames_and_keeps_partial_ones() {
        let mut out = Vec::new();
        encode_ack(&mut out, 42, true);
        encode_content(&mut out, 1, &[0, 0], b"0123456789", 4096);
        let whole = out.len();
        encode_ack(&mut out, 43, false);
        let mut buf = BytesMut::from(&out[..out.len() - 3]);
        let mut kinds = Vec::new();
        scan_frames(&mut buf, |f| {
            kinds.push((f.kind, f.method_id()));
            Ok(())
        })
        .unwrap();
        assert_eq!(
            kinds,
            vec![
                (FRAME_METHOD, Some((60, 80))),
                (FRAME_HEADER, None),
                (FRAME_BODY, None)
            ]
        );
        assert_eq!(buf.len(), out.len() - 3 - whole);
    }

    #[test]
    fn close_text_reads_code_and_text() {
        let mut out = Vec::new();
        encode_connection_close(&mut out);
        assert_eq!(close_text(&out[7..out.len() - 1]), "200 bye");
    }
}
