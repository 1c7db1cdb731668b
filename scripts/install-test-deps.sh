#!/usr/bin/env bash
# Installs the tools the test suite uses beyond the Rust toolchain: pika (Python AMQP
# client), amqp-tools (amqp-publish / amqp-consume), amqplib (Node.js AMQP client, into
# $WARRENMQ_NODE_DEPS, default ~/.cache/warrenmq-interop), and for the Java and Go tutorial
# clients (scripts/tutorials/java.sh, go.sh) Debian's default-jdk-headless,
# librabbitmq-client-java (amqp-client.jar, with slf4j), golang-go and
# golang-github-rabbitmq-amqp091-go-dev (under /usr/share/gocode, built in GOPATH mode, so
# neither needs Maven or Go module downloads), fuse3 (fusermount3, for the warren-lazyfs
# power-loss tests; as root they mount directly, fusermount3 is the fallback and the
# unmount helper), and Debian's rabbitmq-server for its rabbitmqadmin (the management API
# tests point it at WarrenMQ; the RabbitMQ service itself is kept from starting),
# prometheus (its promtool checks /metrics) and nagios-plugins-rabbitmq (the Nagios checks
# tests/metrics.rs runs against a node), and for the management UI's browser test
# (tests/management_ui.rs, scripts/ui_browser.py) Debian's chromium and chromium-driver,
# driven by selenium (Python).
# Idempotent: installs only what is missing.
set -euo pipefail
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
APT_UPDATED=""
apt_install() {  # apt_install PACKAGE...: apt-get update once per run, then install quietly
  if [ -z "$APT_UPDATED" ]; then
    $SUDO apt-get update -qq >/dev/null 2>&1 || true
    APT_UPDATED=1
  fi
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    -o DPkg::Lock::Timeout=300 "$@" >/dev/null
}
deb_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

if ! command -v amqp-publish >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  apt_install amqp-tools
fi
if command -v apt-get >/dev/null 2>&1; then
  MISSING=()
  for pkg in default-jdk-headless librabbitmq-client-java golang-go golang-github-rabbitmq-amqp091-go-dev fuse3 \
      nagios-plugins-rabbitmq chromium chromium-driver; do
    deb_installed "$pkg" || MISSING+=("$pkg")
  done
  [ ${#MISSING[@]} -eq 0 ] || apt_install "${MISSING[@]}"
fi
if [ ! -x /usr/bin/rabbitmqadmin ] && command -v apt-get >/dev/null 2>&1; then
  # Only rabbitmqadmin is wanted: a policy-rc.d that refuses keeps the package's service
  # from starting (it would take ports 5672 and 15672), under systemd it is disabled too.
  POLICY=/usr/sbin/policy-rc.d
  CREATED_POLICY=""
  if [ ! -e "$POLICY" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$POLICY" >/dev/null
    $SUDO chmod +x "$POLICY"
    CREATED_POLICY=1
  fi
  apt_install rabbitmq-server
  [ -z "$CREATED_POLICY" ] || $SUDO rm -f "$POLICY"
  if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    $SUDO systemctl disable --now rabbitmq-server >/dev/null 2>&1 || true
  fi
fi
if ! command -v promtool >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  # Only promtool is wanted: no node exporter, and no Prometheus server left running.
  apt_install --no-install-recommends prometheus
  if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    $SUDO systemctl disable --now prometheus >/dev/null 2>&1 || true
  fi
fi
if ! python3 -c 'import pika' >/dev/null 2>&1; then
  python3 -m pip install --quiet 'pika>=1.3,<2'
fi
if ! python3 -c 'import selenium' >/dev/null 2>&1; then
  python3 -m pip install --quiet 'selenium>=4.20,<5'
fi
NODE_DEPS=${WARRENMQ_NODE_DEPS:-$HOME/.cache/warrenmq-interop}
if ! command -v npm >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  apt_install nodejs npm
fi
if [ ! -d "$NODE_DEPS/node_modules/amqplib" ]; then
  mkdir -p "$NODE_DEPS"
  npm install --prefix "$NODE_DEPS" --no-audit --no-fund --silent 'amqplib@0.10' >/dev/null
fi
