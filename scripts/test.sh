#!/usr/bin/env bash
# The test command: unit and integration tests (lapin, amqprs, spawned server processes),
# then the pika and amqp-tools interop scenario against a fresh node.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bins
cargo test --release -- --test-threads=2
bash scripts/interop.sh
