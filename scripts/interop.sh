#!/usr/bin/env bash
# Interop check with clients that have their own codecs: a pika scenario, an amqplib
# (Node.js) scenario and amqp-publish / amqp-consume from amqp-tools, against a fresh
# WarrenMQ node. scripts/install-test-deps.sh installs them.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET="${CARGO_TARGET_DIR:-target}"
BIN="$TARGET/release/warrenmq-server"
[ -x "$BIN" ] || cargo build --release --bin warrenmq-server
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
PORT=$(free_port)
DATA=$(mktemp -d)
"$BIN" --data-dir "$DATA/node" --amqp-port "$PORT" --http-port "$(free_port)" --cluster-port "$(free_port)" >"$DATA/server.log" 2>&1 &
PID=$!
cleanup() { kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; rm -rf "$DATA"; }
trap cleanup EXIT
for _ in $(seq 1 200); do
  if python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$PORT),0.2)" 2>/dev/null; then break; fi
  sleep 0.05
done
URL="amqp://guest:guest@127.0.0.1:$PORT/%2F"
echo "interop: pika scenario"
python3 scripts/interop_pika.py "$URL"
NODE_DEPS=${WARRENMQ_NODE_DEPS:-$HOME/.cache/warrenmq-interop}
if [ -d "$NODE_DEPS/node_modules/amqplib" ] && command -v node >/dev/null 2>&1; then
  echo "interop: amqplib scenario"
  NODE_PATH="$NODE_DEPS/node_modules" timeout 60 node scripts/interop_amqplib.js "$URL"
else
  echo "interop: amqplib not installed (scripts/install-test-deps.sh installs it)"; exit 1
fi
if command -v amqp-publish >/dev/null 2>&1; then
  echo "interop: amqp-tools"
  amqp-declare-queue --url="$URL" -q tools-q -d >/dev/null
  for i in 1 2 3; do amqp-publish --url="$URL" -r tools-q -p -b "tools-$i"; done
  got=$(timeout 20 amqp-consume --url="$URL" -q tools-q -c 3 cat | tr -d ' \n')
  [ "$got" = "tools-1tools-2tools-3" ] || { echo "amqp-consume got: '$got'"; exit 1; }
else
  echo "interop: amqp-tools not installed (scripts/install-test-deps.sh installs them)"; exit 1
fi
echo "interop: ok"
