//! A node: starts and wires the parts together and owns shutdown.
