//! The connection handshake: protocol header, start/start-ok (PLAIN, AMQPLAIN),
//! tune/tune-ok and open, as RabbitMQ runs it.

use std::net::SocketAddr;

use amq_protocol::protocol::connection;
use amq_protocol::types::{AMQPValue, FieldTable, LongString, ShortString};
use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::error::AmqpError;
use crate::amqp::{decode_frame, encode_method, AMQPClass, Frame, ReplyCode, PROTOCOL_HEADER};
use crate::broker::Broker;

/// What the handshake settled.
#[derive(Debug, Clone)]
pub struct Session {
    pub user: String,
    pub vhost: String,
    pub frame_max: u32,
    pub channel_max: u16,
    pub heartbeat: u16,
    /// The client understands `connection.blocked`.
    pub blocked_capable: bool,
    /// The SASL mechanism the client logged in with.
    pub auth_mechanism: String,
    /// What the client said of itself in `start-ok` (product, version, connection name).
    pub client_properties: FieldTable,
}

/// Why a handshake ended without a session.
pub enum HandshakeEnd {
    /// Socket closed or a wrong header: nothing more to say.
    Quiet,
    /// Send `connection.close` with this error, then close.
    Close(AmqpError),
}

impl From<AmqpError> for HandshakeEnd {
    fn from(e: AmqpError) -> Self {
        HandshakeEnd::Close(e)
    }
}

/// Read the next method frame during the handshake (heartbeats are skipped).
async fn next_method(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    frame_max: u32,
) -> Result<AMQPClass, HandshakeEnd> {
    loop {
        match decode_frame(buf, frame_max) {
            Ok(Some(Frame::Method { channel: 0, method })) => return Ok(*method),
            Ok(Some(Frame::Heartbeat { .. })) => continue,
            Ok(Some(_)) => {
                return Err(AmqpError::new(
                    ReplyCode::UnexpectedFrame,
                    "expected a connection method on channel 0",
                )
                .into())
            }
            Ok(None) => {}
            Err(e) => return Err(AmqpError::prefixed(e.code, e.text).on(e.method).into()),
        }
        let n = stream
            .read_buf(buf)
            .await
            .map_err(|_| HandshakeEnd::Quiet)?;
        if n == 0 {
            return Err(HandshakeEnd::Quiet);
        }
    }
}

fn server_properties(node_name: &str) -> FieldTable {
    let mut caps = FieldTable::default();
    for cap in [
        "publisher_confirms",
        "exchange_exchange_bindings",
        "basic.nack",
        "consumer_cancel_notify",
        "connection.blocked",
        "consumer_priorities",
        "authentication_failure_close",
        "per_consumer_qos",
        "direct_reply_to",
    ] {
        caps.insert(cap.into(), AMQPValue::Boolean(true));
    }
    let mut props = FieldTable::default();
    let text = |s: &str| AMQPValue::LongString(LongString::from(s.to_owned()));
    props.insert("capabilities".into(), AMQPValue::FieldTable(caps));
    props.insert("product".into(), text("WarrenMQ"));
    props.insert("version".into(), text(env!("CARGO_PKG_VERSION")));
    props.insert("platform".into(), text("Rust"));
    props.insert("cluster_name".into(), text(node_name));
    props.insert("copyright".into(), text("WarrenMQ authors"));
    props.insert(
        "information".into(),
        text("Licensed under the Apache License 2.0"),
    );
    props
}

fn capability(client_properties: &FieldTable, name: &str) -> bool {
    match client_properties.inner().get("capabilities") {
        Some(AMQPValue::FieldTable(caps)) => {
            matches!(caps.inner().get(name), Some(AMQPValue::Boolean(true)))
        }
        _ => false,
    }
}

/// Parse PLAIN (`\0user\0pass`) or AMQPLAIN (a field table without its length) responses.
pub fn parse_credentials(mechanism: &str, response: &[u8]) -> Option<(String, String)> {
    match mechanism {
        "PLAIN" => {
            let mut parts = response.split(|b| *b == 0);
            let _authzid = parts.next()?;
            let user = String::from_utf8(parts.next()?.to_vec()).ok()?;
            let pass = String::from_utf8(parts.next()?.to_vec()).ok()?;
            Some((user, pass))
        }
        "AMQPLAIN" => {
            let mut framed = (response.len() as u32).to_be_bytes().to_vec();
            framed.extend_from_slice(response);
            let (_, table) = amq_protocol::types::parsing::parse_field_table(&framed[..]).ok()?;
            let get = |k: &str| match table.inner().get(k) {
                Some(AMQPValue::LongString(s)) => {
                    Some(String::from_utf8_lossy(s.as_bytes()).into_owned())
                }
                Some(AMQPValue::ShortString(s)) => Some(s.as_str().to_owned()),
                _ => None,
            };
            Some((get("LOGIN")?, get("PASSWORD")?))
        }
        _ => None,
    }
}

/// Run the handshake on a fresh socket.
pub async fn handshake(
    stream: &mut TcpStream,
    peer: SocketAddr,
    buf: &mut BytesMut,
    broker: &Broker,
) -> Result<Session, HandshakeEnd> {
    // Protocol header.
    while buf.len() < 8 {
        let n = stream
            .read_buf(buf)
            .await
            .map_err(|_| HandshakeEnd::Quiet)?;
        if n == 0 {
            return Err(HandshakeEnd::Quiet);
        }
    }
    if &buf[..8] != PROTOCOL_HEADER {
        let _ = stream.write_all(PROTOCOL_HEADER).await;
        return Err(HandshakeEnd::Quiet);
    }
    let _ = buf.split_to(8);
    let config = broker.config();
    let mut out = Vec::new();
    let start = connection::Start {
        version_major: 0,
        version_minor: 9,
        server_properties: server_properties(&config.node_name),
        mechanisms: LongString::from("PLAIN AMQPLAIN".to_owned()),
        locales: LongString::from("en_US".to_owned()),
    };
    encode_method(
        &mut out,
        0,
        &AMQPClass::Connection(connection::AMQPMethod::Start(start)),
    );
    stream
        .write_all(&out)
        .await
        .map_err(|_| HandshakeEnd::Quiet)?;

    // Before tune-ok the client may not send frames larger than our own frame_max.
    let start_ok = match next_method(stream, buf, config.frame_max).await? {
        AMQPClass::Connection(connection::AMQPMethod::StartOk(ok)) => ok,
        _ => {
            return Err(
                AmqpError::new(ReplyCode::CommandInvalid, "expected 'connection.start_ok'").into(),
            )
        }
    };
    let mechanism = start_ok.mechanism.as_str().to_owned();
    // Like RabbitMQ: a refused login is explained only to clients that announce the
    // authentication_failure_close capability; the others just see the socket close.
    let explain = capability(&start_ok.client_properties, "authentication_failure_close");
    let refused = || -> HandshakeEnd {
        if !explain {
            return HandshakeEnd::Quiet;
        }
        AmqpError::new(
            ReplyCode::AccessRefused,
            format!("Login was refused using authentication mechanism {mechanism}. For details see the broker logfile."),
        )
        .into()
    };
    let Some((user, pass)) = parse_credentials(&mechanism, start_ok.response.as_bytes()) else {
        return Err(if mechanism == "PLAIN" || mechanism == "AMQPLAIN" {
            refused()
        } else {
            AmqpError::new(
                ReplyCode::CommandInvalid,
                format!("unknown authentication mechanism '{mechanism}'"),
            )
            .into()
        });
    };
    if !broker.authenticate(&user, &pass) {
        tracing::warn!(%peer, user, "authentication failed");
        return Err(refused());
    }
    if config.loopback_only(&user) && !peer.ip().is_loopback() {
        tracing::warn!(%peer, user, "user can only connect via localhost (loopback_users)");
        return Err(refused());
    }

    out.clear();
    let tune = connection::Tune {
        channel_max: config.channel_max,
        frame_max: config.frame_max,
        heartbeat: config.heartbeat,
    };
    encode_method(
        &mut out,
        0,
        &AMQPClass::Connection(connection::AMQPMethod::Tune(tune)),
    );
    stream
        .write_all(&out)
        .await
        .map_err(|_| HandshakeEnd::Quiet)?;

    let tune_ok = match next_method(stream, buf, config.frame_max).await? {
        AMQPClass::Connection(connection::AMQPMethod::TuneOk(ok)) => ok,
        _ => {
            return Err(
                AmqpError::new(ReplyCode::CommandInvalid, "expected 'connection.tune_ok'").into(),
            )
        }
    };
    let frame_max = match tune_ok.frame_max {
        0 => config.frame_max,
        n if n < crate::amqp::FRAME_MIN_SIZE => {
            return Err(AmqpError::new(
                ReplyCode::NotAllowed,
                format!("frame_max={n} < {} min size", crate::amqp::FRAME_MIN_SIZE),
            )
            .into())
        }
        n if config.frame_max != 0 && n > config.frame_max => {
            return Err(AmqpError::new(
                ReplyCode::NotAllowed,
                format!("frame_max={n} > {} max size", config.frame_max),
            )
            .into())
        }
        n => n,
    };
    let channel_max = match tune_ok.channel_max {
        0 => config.channel_max,
        n => n.min(config.channel_max),
    };

    let open = match next_method(stream, buf, frame_max).await? {
        AMQPClass::Connection(connection::AMQPMethod::Open(open)) => open,
        _ => {
            return Err(
                AmqpError::new(ReplyCode::CommandInvalid, "expected 'connection.open'").into(),
            )
        }
    };
    let vhost = open.virtual_host.as_str().to_owned();
    if let Err(e) = broker.check_vhost_access(&user, &vhost) {
        return Err(AmqpError::from(e).on((10, 40)).into());
    }
    if let Err(e) = broker.check_connection_limits(&user, &vhost).await {
        return Err(AmqpError::from(e).on((10, 40)).into());
    }
    Ok(Session {
        user,
        vhost,
        frame_max,
        channel_max,
        heartbeat: tune_ok.heartbeat,
        blocked_capable: capability(&start_ok.client_properties, "connection.blocked"),
        auth_mechanism: mechanism,
        client_properties: start_ok.client_properties,
    })
}

/// A `ShortString` from text that may be longer than 255 bytes (cut at a char boundary).
/// Answer `connection.open` once the connection counts (is in the node's registry), so
/// that a client told it is connected is seen by every limit checked after that.
pub async fn open_ok(stream: &mut TcpStream) -> Result<(), HandshakeEnd> {
    let mut out = Vec::new();
    encode_method(
        &mut out,
        0,
        &AMQPClass::Connection(connection::AMQPMethod::OpenOk(connection::OpenOk {})),
    );
    stream
        .write_all(&out)
        .await
        .map_err(|_| HandshakeEnd::Quiet)
}

pub fn short(text: &str) -> ShortString {
    let mut end = text.len().min(255);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    ShortString::from(text[..end].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_amqplain_credentials() {
        assert_eq!(
            parse_credentials("PLAIN", b"\0guest\0secret"),
            Some(("guest".into(), "secret".into()))
        );
        assert_eq!(parse_credentials("PLAIN", b"guest"), None);
        // AMQPLAIN: LOGIN S "guest", PASSWORD S "pw"
        let mut t = Vec::new();
        t.push(5);
        t.extend_from_slice(b"LOGIN");
        t.push(b'S');
        t.extend_from_slice(&5u32.to_be_bytes());
        t.extend_from_slice(b"guest");
        t.push(8);
        t.extend_from_slice(b"PASSWORD");
        t.push(b'S');
        t.extend_from_slice(&2u32.to_be_bytes());
        t.extend_from_slice(b"pw");
        assert_eq!(
            parse_credentials("AMQPLAIN", &t),
            Some(("guest".into(), "pw".into()))
        );
        assert_eq!(parse_credentials("EXTERNAL", b""), None);
    }
}
