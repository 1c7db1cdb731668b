//! The only user of openraft: the metadata group and one group per durable queue.
