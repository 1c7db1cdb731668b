//! The node-local runtime that executes machine effects: queue actors with their
//! leader-side consumer registry, and the metadata read model.
