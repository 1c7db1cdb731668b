//! Pure exchange routing: exchange types over a bindings index (no IO, no async).
