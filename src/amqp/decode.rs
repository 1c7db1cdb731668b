//! Frame decoding: split the byte stream into frames, enforcing frame_max before parsing.

use amq_protocol::protocol::{parse_class, AMQPClass};
use bytes::{Buf, Bytes, BytesMut};

use super::erl::{self, Term};
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
/// (0 = no limit beyond u32); payloads of up to `frame_max` octets pass, as in RabbitMQ.
pub fn decode_frame(buf: &mut BytesMut, frame_max: u32) -> Result<Option<Frame>, DecodeError> {
    if buf.len() < 7 {
        return Ok(None);
    }
    let kind = buf[0];
    let channel = u16::from_be_bytes([buf[1], buf[2]]);
    let size = u32::from_be_bytes([buf[3], buf[4], buf[5], buf[6]]) as usize;
    // RabbitMQ tolerates a payload up to frame_max itself (its FRAME_SIZE_FUDGE), though
    // it reports the limit as frame_max less the frame overhead.
    if frame_max != 0 && size > frame_max as usize {
        let reason = Term::Tuple(vec![
            Term::Atom("frame_too_large"),
            Term::Int(size as u64),
            Term::Int(u64::from(frame_max).saturating_sub(super::FRAME_OVERHEAD as u64)),
        ]);
        return Err(frame_error(channel, erl::frame_error(kind, &[], &reason)));
    }
    if buf.len() < size + 8 {
        buf.reserve(size + 8 - buf.len());
        return Ok(None);
    }
    if buf[7 + size] != FRAME_END {
        let reason = Term::Tuple(vec![
            Term::Atom("invalid_frame_end_marker"),
            Term::Int(u64::from(buf[7 + size])),
        ]);
        let text = erl::frame_error(kind, &buf[7..7 + size], &reason);
        return Err(frame_error(channel, text));
    }
    buf.advance(7);
    let mut payload = buf.split_to(size).freeze();
    buf.advance(1);
    // Frames RabbitMQ's rabbit_command_assembler:analyze_frame/3 cannot classify.
    let unknown = |payload: &[u8]| {
        frame_error(
            channel,
            erl::frame_error(kind, payload, &Term::Atom("unknown_frame")),
        )
    };
    match kind {
        FRAME_METHOD if payload.len() < 4 => Err(unknown(&payload)),
        FRAME_METHOD => decode_method(channel, &payload).map(Some),
        FRAME_HEADER => {
            if payload.len() < 14 {
                return Err(unknown(&payload));
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
        FRAME_HEARTBEAT if payload.is_empty() => Ok(Some(Frame::Heartbeat { channel })),
        _ => Err(unknown(&payload)),
    }
}

fn frame_error(channel: u16, text: String) -> DecodeError {
    DecodeError::new(
        ReplyCode::FrameError,
        channel,
        format!("FRAME_ERROR - {text}"),
    )
}

fn decode_method(channel: u16, payload: &[u8]) -> Result<Frame, DecodeError> {
    let class_id = u16::from_be_bytes([payload[0], payload[1]]);
    let method_id = u16::from_be_bytes([payload[2], payload[3]]);
    // basic.qos prefetch_size, which amq-protocol does not keep: RabbitMQ refuses it.
    if (class_id, method_id) == (60, 10) && payload.len() >= 8 {
        let size = u32::from_be_bytes([payload[4], payload[5], payload[6], payload[7]]);
        if size != 0 {
            return Err(DecodeError {
                code: ReplyCode::NotImplemented,
                text: format!("NOT_IMPLEMENTED - prefetch_size!=0 ({size})"),
                channel,
                method: (60, 10),
            });
        }
    }
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
                        "FRAME_ERROR - cannot decode {}",
                        erl::binary_w(&payload[4..])
                    ),
                )
            } else {
                // RabbitMQ's reader crashes here and drops the socket; a close is kinder.
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
        assert_eq!(
            err.text,
            "FRAME_ERROR - type 3, all octets = <<>>: {frame_too_large,1048576,4088}"
        );
    }

    #[test]
    fn bad_frame_end_and_unknown_type() {
        let mut buf = BytesMut::from(&[8u8, 0, 0, 0, 0, 0, 0, 0xCD][..]);
        let err = decode_frame(&mut buf, 0).unwrap_err();
        assert_eq!(
            (err.code, err.text.as_str()),
            (
                ReplyCode::FrameError,
                "FRAME_ERROR - type 8, all octets = <<>>: {invalid_frame_end_marker,205}"
            )
        );
        let mut buf = BytesMut::from(&[9u8, 0, 0, 0, 0, 0, 2, b'a', b'b', 0xCE][..]);
        assert_eq!(
            decode_frame(&mut buf, 0).unwrap_err().text,
            "FRAME_ERROR - type 9, all octets = <<\"ab\">>: unknown_frame"
        );
        // A heartbeat with a payload is not a heartbeat.
        let mut buf = BytesMut::from(&[8u8, 0, 0, 0, 0, 0, 1, 7, 0xCE][..]);
        assert_eq!(
            decode_frame(&mut buf, 0).unwrap_err().text,
            "FRAME_ERROR - type 8, all octets = <<7>>: unknown_frame"
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
        assert_eq!(err.text, "FRAME_ERROR - cannot decode <<0,0>>");
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
