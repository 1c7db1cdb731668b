//! The metadata machine: vhosts, users, permissions, exchanges, queues and bindings.
