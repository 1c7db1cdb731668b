//! Frame decoding: split the byte stream into frames, enforcing frame_max before parsing.

use amq_protocol::protocol::{parse_class, AMQPClass};
use bytes::{Buf, Bytes, BytesMut};

use super::ReplyCode;

/// What a client must send first.
pub const PROTOCOL_HEADER: &[u8; 8] = b"AMQP\x00\x00\x09\x01";

const FRAME_METHOD: u8 = 1;
const FRAME_HEADER: u8 = 2;
const FRAME_BODY: u8 = 3;
const FRAME_HEARTBEAT: u8 = 8;
const FRAME_END: u8 = 0xCE;

/// One decoded frame. Content-header properties stay raw so they are relayed byte for byte.
#[derive(Debug)]
pub enum Frame {
    Method {
        channel: u16,
        method: Box<AMQPClass>,
    },
    Header {
        channel: u16,
        class_id: u16,
        body_size: u64,
        /// Property flags and property list, undecoded.
        properties: Bytes,
    },
    Body {
        channel: u16,
        payload: Bytes,
    },
    Heartbeat {
        channel: u16,
    },
}

impl Frame {
    pub fn channel(&self) -> u16 {
        match self {
            Frame::Method { channel, .. }
            | Frame::Header { channel, .. }
            | Frame::Body { channel, .. }
            | Frame::Heartbeat { channel } => *channel,
        }
    }
}

/// A frame that cannot be accepted; always a connection error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    pub code: ReplyCode,
    pub text: String,
    /// The channel of the offending frame, when known.
    pub channel: u16,
    /// (class, method) of an undecodable method frame, for the close's method fields.
    pub method: (u16, u16),
}

impl DecodeError {
    fn new(code: ReplyCode, channel: u16, text: String) -> Self {
        DecodeError {
            code,
            text,
            channel,
            method: (0, 0),
        }
    }
}

/// Decode one frame from the front of `buf`. Returns `Ok(None)` when more bytes are needed.
/// `frame_max` is the negotiated maximum frame size including header and end octet
/// (0 = no limit beyond u32).
pub fn decode_frame(buf: &mut BytesMut, frame_max: u32) -> Result<Option<Frame>, DecodeError> {
    if buf.len() < 7 {
        return Ok(None);
    }
    let kind = buf[0];
    let channel = u16::from_be_bytes([buf[1], buf[2]]);
    let size = u32::from_be_bytes([buf[3], buf[4], buf[5], buf[6]]) as usize;
    if frame_max != 0 && size + super::FRAME_OVERHEAD > frame_max as usize {
        return Err(DecodeError::new(
            ReplyCode::FrameError,
            channel,
            format!(
                "FRAME_ERROR - frame size {} larger than negotiated maximum {}",
                size + super::FRAME_OVERHEAD,
                frame_max
            ),
        ));
    }
    if buf.len() < size + 8 {
        buf.reserve(size + 8 - buf.len());
        return Ok(None);
    }
    if buf[7 + size] != FRAME_END {
        return Err(DecodeError::new(
            ReplyCode::FrameError,
            channel,
            format!("FRAME_ERROR - bad frame end marker {:#04x}", buf[7 + size]),
        ));
    }
    buf.advance(7);
    let mut payload = buf.split_to(size).freeze();
    buf.advance(1);
    match kind {
        FRAME_METHOD => decode_method(channel, &payload).map(Some),
        FRAME_HEADER => {
            if payload.len() < 14 {
                return Err(DecodeError::new(
                    ReplyCode::FrameError,
                    channel,
                    "FRAME_ERROR - content header frame too short".into(),
                ));
            }
            let class_id = payload.get_u16();
            let _weight = payload.get_u16();
            let body_size = payload.get_u64();
            Ok(Some(Frame::Header {
                channel,
                class_id,
                body_size,
                properties: payload,
            }))
        }
        FRAME_BODY => Ok(Some(Frame::Body { channel, payload })),
        FRAME_HEARTBEAT => Ok(Some(Frame::Heartbeat { channel })),
        other => Err(DecodeError::new(
            ReplyCode::FrameError,
            channel,
            format!("FRAME_ERROR - unknown frame type {other}"),
        )),
    }
}

fn decode_method(channel: u16, payload: &[u8]) -> Result<Frame, DecodeError> {
    if payload.len() < 4 {
        return Err(DecodeError::new(
            ReplyCode::FrameError,
            channel,
            "FRAME_ERROR - method frame too short".into(),
        ));
    }
    let class_id = u16::from_be_bytes([payload[0], payload[1]]);
    let method_id = u16::from_be_bytes([payload[2], payload[3]]);
    match parse_class(payload) {
        Ok((&[], method)) => Ok(Frame::Method {
            channel,
            method: Box::new(method),
        }),
        _ => {
            let (code, text) = if is_known_method(class_id, method_id) {
                (
                    ReplyCode::FrameError,
                    format!(
                        "FRAME_ERROR - cannot decode arguments of method {class_id}.{method_id}"
                    ),
                )
            } else {
                (
                    ReplyCode::NotImplemented,
                    format!("NOT_IMPLEMENTED - unknown method {class_id}.{method_id}"),
                )
            };
            Err(DecodeError {
                code,
                text,
                channel,
                method: (class_id, method_id),
            })
        }
    }
}

/// Whether (class, method) names a method of AMQP 0-9-1 (with RabbitMQ's extensions).
fn is_known_method(class_id: u16, method_id: u16) -> bool {
    let methods: &[u16] = match class_id {
        10 => &[10, 11, 20, 21, 30, 31, 40, 41, 50, 51, 60, 61, 70, 71],
        20 => &[10, 11, 20, 21, 40, 41],
        40 => &[10, 11, 20, 21, 30, 31, 40, 51],
        50 => &[10, 11, 20, 21, 30, 31, 40, 41, 50, 51],
        60 => &[
            10, 11, 20, 21, 30, 31, 40, 50, 60, 70, 71, 72, 80, 90, 100, 110, 111, 120,
        ],
        85 => &[10, 11],
        90 => &[10, 11, 20, 21, 30, 31],
        _ => &[],
    };
    methods.contains(&method_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::amqp::encode_method;
    use amq_protocol::protocol::channel;

    #[test]
    fn partial_input_needs_more() {
        let mut out = Vec::new();
        encode_method(
            &mut out,
            1,
            &AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {})),
        );
        for cut in 0..out.len() {
            let mut buf = BytesMut::from(&out[..cut]);
            assert!(
                decode_frame(&mut buf, 131072).unwrap().is_none(),
                "cut {cut}"
            );
        }
        let mut buf = BytesMut::from(&out[..]);
        let frame = decode_frame(&mut buf, 131072).unwrap().unwrap();
        assert!(matches!(frame, Frame::Method { channel: 1, .. }));
        assert!(buf.is_empty());
    }

    #[test]
    fn oversize_frame_is_rejected_before_its_payload_arrives() {
        let mut buf = BytesMut::from(&[3u8, 0, 1, 0, 0x10, 0, 0][..]);
        let err = decode_frame(&mut buf, 4096).unwrap_err();
        assert_eq!(err.code, ReplyCode::FrameError);
        assert!(
            err.text.contains("larger than negotiated maximum 4096"),
            "{}",
            err.text
        );
    }

    #[test]
    fn bad_frame_end_and_unknown_type() {
        let mut buf = BytesMut::from(&[8u8, 0, 0, 0, 0, 0, 0, 0xCD][..]);
        assert_eq!(
            decode_frame(&mut buf, 0).unwrap_err().code,
            ReplyCode::FrameError
        );
        let mut buf = BytesMut::from(&[9u8, 0, 0, 0, 0, 0, 0, 0xCE][..]);
        assert_eq!(
            decode_frame(&mut buf, 0).unwrap_err().code,
            ReplyCode::FrameError
        );
    }

    #[test]
    fn unknown_method_is_not_implemented_and_bad_args_are_frame_errors() {
        let mut buf = BytesMut::from(&[1u8, 0, 1, 0, 0, 0, 4, 0, 60, 0, 99, 0xCE][..]);
        let err = decode_frame(&mut buf, 0).unwrap_err();
        assert_eq!(
            (err.code, err.method),
            (ReplyCode::NotImplemented, (60, 99))
        );
        // queue.declare with its arguments cut short
        let mut buf = BytesMut::from(&[1u8, 0, 1, 0, 0, 0, 6, 0, 50, 0, 10, 0, 0, 0xCE][..]);
        let err = decode_frame(&mut buf, 0).unwrap_err();
        assert_eq!((err.code, err.method), (ReplyCode::FrameError, (50, 10)));
    }

    proptest::proptest! {
        #[test]
        fn random_bytes_never_panic(data in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let mut buf = BytesMut::from(&data[..]);
            for _ in 0..64 {
                match decode_frame(&mut buf, 4096) {
                    Ok(Some(_)) => continue,
                    _ => break,
                }
            }
        }

        #[test]
        fn mutated_valid_frames_never_panic(pos in 0usize..64, byte in proptest::num::u8::ANY) {
            let mut out = Vec::new();
            let declare = amq_protocol::protocol::queue::Declare {
                queue: "q".into(),
                passive: false,
                durable: true,
                exclusive: false,
                auto_delete: false,
                nowait: false,
                arguments: Default::default(),
            };
            encode_method(&mut out, 1, &AMQPClass::Queue(amq_protocol::protocol::queue::AMQPMethod::Declare(declare)));
            let i = pos % out.len();
            out[i] = byte;
            let mut buf = BytesMut::from(&out[..]);
            let _ = decode_frame(&mut buf, 4096);
        }
    }
}
