//! AMQP 0-9-1 wire format only: frames, methods, properties, field tables and reply
//! codes. No tasks and no broker state; the codec of methods is amq-protocol's.

mod decode;
mod encode;
pub mod erl;
pub mod field;
mod properties;
mod reply_code;

pub use amq_protocol::protocol::{self, AMQPClass};
pub use amq_protocol::types::{AMQPValue, FieldTable, LongString, ShortString};
pub use decode::{decode_frame, DecodeError, Frame, PROTOCOL_HEADER};
pub use encode::{encode_content, encode_heartbeat, encode_method};
pub use properties::{encode_properties, parse_properties, BasicProperties};
pub use reply_code::ReplyCode;

/// Bytes of frame header (type, channel, size) plus the frame-end octet.
pub const FRAME_OVERHEAD: usize = 8;
/// Smallest frame_max a peer may negotiate (the spec's FRAME-MIN-SIZE).
pub const FRAME_MIN_SIZE: u32 = 4096;
/// Class id of `basic`, the only class with content.
pub const BASIC_CLASS_ID: u16 = 60;
