//! A message as a queue stores it: routing info, raw properties and body.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// A published message. `properties` holds the content header's property flags and
/// property list exactly as the publisher sent them, so they are delivered byte for byte.
/// Its serde form is part of the queue snapshot format (v1): change it only with a new version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub exchange: String,
    pub routing_key: String,
    pub properties: Bytes,
    pub body: Bytes,
}

impl Message {
    /// About how many bytes the message takes encoded (body, properties, exchange and
    /// routing key); batches of messages are capped by this sum.
    pub fn weight(&self) -> usize {
        self.body.len() + self.properties.len() + self.exchange.len() + self.routing_key.len()
    }
}
