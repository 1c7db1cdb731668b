//! Configuration from a TOML file, `WARRENMQ_*` environment variables and flags.
