//! Decoding of basic content properties, done lazily: only when routing or a feature needs them.

pub use amq_protocol::protocol::basic::AMQPProperties as BasicProperties;

/// Decode raw property flags + list as carried in a content header frame.
pub fn parse_properties(raw: &[u8]) -> Option<BasicProperties> {
    match amq_protocol::protocol::basic::parse_properties(raw) {
        Ok((&[], props)) => Some(props),
        _ => None,
    }
}

/// Encode properties as a content header frame carries them (flags + list).
pub fn encode_properties(props: &BasicProperties) -> bytes::Bytes {
    let buf = cookie_factory::gen_simple(
        amq_protocol::protocol::basic::gen_properties(props),
        Vec::new(),
    )
    // Writing into a Vec cannot fail.
    .expect("encode properties into Vec");
    buf.into()
}
