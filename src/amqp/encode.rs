//! Frame encoding into an output buffer: methods, content (header + body frames), heartbeats.

use amq_protocol::protocol::{gen_class, AMQPClass};

use super::BASIC_CLASS_ID;

const FRAME_END: u8 = 0xCE;

fn begin(out: &mut Vec<u8>, kind: u8, channel: u16) -> usize {
    out.push(kind);
    out.extend_from_slice(&channel.to_be_bytes());
    let size_at = out.len();
    out.extend_from_slice(&[0, 0, 0, 0]);
    size_at
}

fn finish(out: &mut Vec<u8>, size_at: usize) {
    let size = (out.len() - size_at - 4) as u32;
    out[size_at..size_at + 4].copy_from_slice(&size.to_be_bytes());
    out.push(FRAME_END);
}

/// Append a method frame.
pub fn encode_method(out: &mut Vec<u8>, channel: u16, method: &AMQPClass) {
    let size_at = begin(out, 1, channel);
    let buf = std::mem::take(out);
    // Writing into a Vec cannot fail.
    *out = cookie_factory::gen_simple(gen_class(method), buf).expect("encode method into Vec");
    finish(out, size_at);
}

/// Append a content header frame with raw properties, then body frames of at most
/// `frame_max` bytes each (0 = unlimited).
pub fn encode_content(
    out: &mut Vec<u8>,
    channel: u16,
    properties: &[u8],
    body: &[u8],
    frame_max: u32,
) {
    let size_at = begin(out, 2, channel);
    out.extend_from_slice(&BASIC_CLASS_ID.to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(&(body.len() as u64).to_be_bytes());
    out.extend_from_slice(properties);
    finish(out, size_at);
    let chunk = if frame_max == 0 {
        usize::MAX
    } else {
        frame_max as usize - super::FRAME_OVERHEAD
    };
    for part in body.chunks(chunk.max(1)) {
        let size_at = begin(out, 3, channel);
        out.extend_from_slice(part);
        finish(out, size_at);
    }
}

/// Append a heartbeat frame.
pub fn encode_heartbeat(out: &mut Vec<u8>) {
    out.extend_from_slice(&[8, 0, 0, 0, 0, 0, 0, FRAME_END]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::amqp::{decode_frame, Frame};
    use bytes::BytesMut;

    #[test]
    fn content_is_split_at_frame_max_and_round_trips() {
        let body: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        let props = [0x80u8, 0x00, 4, b't', b'e', b'x', b't'];
        let mut out = Vec::new();
        encode_content(&mut out, 3, &props, &body, 4096);
        let mut buf = BytesMut::from(&out[..]);
        let Some(Frame::Header {
            channel: 3,
            body_size,
            properties,
            ..
        }) = decode_frame(&mut buf, 4096).unwrap()
        else {
            panic!("expected header")
        };
        assert_eq!((body_size, &properties[..]), (10_000, &props[..]));
        let mut got = Vec::new();
        let mut frames = 0;
        while let Some(Frame::Body { payload, .. }) = decode_frame(&mut buf, 4096).unwrap() {
            got.extend_from_slice(&payload);
            frames += 1;
        }
        assert_eq!(got, body);
        assert_eq!(frames, 3);
    }
}
