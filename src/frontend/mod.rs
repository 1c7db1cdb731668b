//! One task per client connection: handshake, heartbeats, channels, publish assembly,
//! confirms, transactions, consumers, delivery tags and prefetch.
