#!/usr/bin/env bash
# The test command: unit and integration tests (lapin, amqprs, spawned server processes),
# then the pika, amqplib and amqp-tools interop scenarios against a fresh node, then
# RabbitMQ's six tutorials with pika, amqplib, Java and Go clients against a single node
# and a three-node cluster, then the local three-node cluster scripts end to end.
# warren-lazyfs (tools/lazyfs, the power-loss file system) is built first: its own tests
# and tests/power_loss.rs run it from target/release.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bins
cargo build --release -p warren-lazyfs
cargo test --release -p warren-lazyfs -- --test-threads=2
cargo test --release -- --test-threads=2
bash scripts/interop.sh
bash scripts/tutorials/run.sh
bash scripts/cluster-smoke.sh
