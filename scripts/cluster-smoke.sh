#!/usr/bin/env bash
# The local-cluster scripts end to end, on free ports and a temp data root: start-cluster.sh
# forms a three-node cluster, a pika client declares on one node and finds it on the
# others, restart-node.sh restarts node 2 (which catches up), stop-cluster.sh stops
# exactly the three processes. Run by scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
free_base() {
  python3 - <<'PY'
import socket, random
while True:
    base = random.randrange(20000, 60000)
    socks = []
    try:
        for p in range(base, base + 3):
            s = socket.socket(); s.bind(("127.0.0.1", p)); socks.append(s)
        print(base); break
    except OSError:
        pass
    finally:
        for s in socks: s.close()
PY
}
export WARRENMQ_CLUSTER_DIR
WARRENMQ_CLUSTER_DIR=$(mktemp -d)
export WARRENMQ_AMQP_PORT_BASE WARRENMQ_HTTP_PORT_BASE WARRENMQ_CLUSTER_PORT_BASE
WARRENMQ_AMQP_PORT_BASE=$(free_base)
WARRENMQ_HTTP_PORT_BASE=$(free_base)
WARRENMQ_CLUSTER_PORT_BASE=$(free_base)
cleanup() {
  bash scripts/stop-cluster.sh >/dev/null 2>&1 || true
  rm -rf "$WARRENMQ_CLUSTER_DIR"
}
trap cleanup EXIT
if ! bash scripts/start-cluster.sh >"$WARRENMQ_CLUSTER_DIR/start.out" 2>&1; then
  cat "$WARRENMQ_CLUSTER_DIR/start.out"; tail -n 30 "$WARRENMQ_CLUSTER_DIR"/node*.log; exit 1
fi
grep -q "amqp://guest:guest@127.0.0.1:$((WARRENMQ_AMQP_PORT_BASE + 2))/%2F" "$WARRENMQ_CLUSTER_DIR/start.out"
pids=$(cat "$WARRENMQ_CLUSTER_DIR"/node*.pid)
python3 - "$WARRENMQ_AMQP_PORT_BASE" <<'PY'
import sys, pika
base = int(sys.argv[1])
def channel(n):
    return pika.BlockingConnection(pika.URLParameters(f"amqp://guest:guest@127.0.0.1:{base + n - 1}/%2F")).channel()
channel(1).exchange_declare("smoke.x", "fanout", durable=True)
for n in (2, 3):
    channel(n).exchange_declare("smoke.x", "fanout", passive=True)
PY
bash scripts/restart-node.sh 2 >/dev/null
python3 - "$WARRENMQ_AMQP_PORT_BASE" <<'PY'
import sys, pika
base = int(sys.argv[1])
ch = pika.BlockingConnection(pika.URLParameters(f"amqp://guest:guest@127.0.0.1:{base + 1}/%2F")).channel()
ch.exchange_declare("smoke.x", "fanout", passive=True)
PY
bash scripts/stop-cluster.sh >/dev/null
for pid in $pids; do
  if kill -0 "$pid" 2>/dev/null; then echo "cluster-smoke: PID $pid still runs after stop-cluster.sh"; exit 1; fi
done
echo "cluster-smoke: ok"
