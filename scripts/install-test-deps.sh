#!/usr/bin/env bash
# Installs the tools the test suite uses beyond the Rust toolchain: pika (Python AMQP
# client) and amqp-tools (amqp-publish / amqp-consume). Idempotent.
set -euo pipefail
if ! command -v amqp-publish >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq >/dev/null 2>&1 || true
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq amqp-tools >/dev/null
  fi
fi
if ! python3 -c 'import pika' >/dev/null 2>&1; then
  python3 -m pip install --quiet 'pika>=1.3,<2'
fi
