#!/usr/bin/env bash
# Installs the tools the test suite uses beyond the Rust toolchain: pika (Python AMQP
# client), amqp-tools (amqp-publish / amqp-consume) and amqplib (Node.js AMQP client, into
# $WARRENMQ_NODE_DEPS, default ~/.cache/warrenmq-interop). Idempotent.
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
NODE_DEPS=${WARRENMQ_NODE_DEPS:-$HOME/.cache/warrenmq-interop}
if ! command -v npm >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi
if [ ! -d "$NODE_DEPS/node_modules/amqplib" ]; then
  mkdir -p "$NODE_DEPS"
  npm install --prefix "$NODE_DEPS" --no-audit --no-fund --silent 'amqplib@0.10' >/dev/null
fi
