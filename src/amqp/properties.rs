//! Decoding of basic content properties, done lazily: only when routing or a feature needs them.

pub use amq_protocol::protocol::basic::AMQPProperties as BasicProperties;

/// Decode raw property flags + list as carried in a content header frame.
pub fn parse_properties(raw: &[u8]) -> Option<BasicProperties> {
    match amq_protocol::protocol::basic::parse_properties(raw) {
        Ok((&[], props)) => Some(props),
        _ => None,
    }
}
