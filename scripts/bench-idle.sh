#!/usr/bin/env bash
# Idle cost of quorum queues on the local three-node cluster: starts a cluster of its own
# (scripts/start-cluster.sh on ports away from the defaults), declares BENCH_IDLE_QUEUES
# (default 1000) quorum queues through node 1 with pika, lets them settle, then prints the
# CPU the three node processes use over BENCH_IDLE_SECONDS (default 30) as a percentage of
# one core, and their summed RSS. Stops the cluster it started (also on failure).
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=scripts/bench-lib.sh
source "$REPO/scripts/bench-lib.sh"
QUEUES=${BENCH_IDLE_QUEUES:-1000}
SECONDS_IDLE=${BENCH_IDLE_SECONDS:-30}
export WARRENMQ_CLUSTER_DIR=${WARRENMQ_CLUSTER_DIR:-$(mktemp -d /tmp/warrenmq-idle.XXXXXX)}
export WARRENMQ_AMQP_PORT_BASE=${WARRENMQ_AMQP_PORT_BASE:-7672}
export WARRENMQ_HTTP_PORT_BASE=${WARRENMQ_HTTP_PORT_BASE:-17672}
export WARRENMQ_CLUSTER_PORT_BASE=${WARRENMQ_CLUSTER_PORT_BASE:-27672}
python3 -c 'import pika' 2>/dev/null || python3 -m pip install --quiet 'pika>=1.3,<2'
trap 'bash "$REPO/scripts/stop-cluster.sh" >/dev/null 2>&1 || true' EXIT
bash "$REPO/scripts/start-cluster.sh" >/dev/null
mapfile -t pids < <(cat "$WARRENMQ_CLUSTER_DIR"/node{1,2,3}.pid)
echo "declaring $QUEUES quorum queues on node 1..."
python3 - "$WARRENMQ_AMQP_PORT_BASE" "$QUEUES" <<'EOF'
import sys, time, pika
port, n = int(sys.argv[1]), int(sys.argv[2])
conn = pika.BlockingConnection(pika.ConnectionParameters('127.0.0.1', port))
ch = conn.channel()
start = time.time()
for i in range(n):
    ch.queue_declare(f'idle-{i}', durable=True, arguments={'x-queue-type': 'quorum'})
print(f'declared {n} quorum queues in {time.time() - start:.1f} s')
conn.close()
EOF
sleep 5
before=$(cpu_ticks_sum "${pids[@]}")
sleep "$SECONDS_IDLE"
after=$(cpu_ticks_sum "${pids[@]}")
rss=$(rss_kib_sum "${pids[@]}")
python3 - "$before" "$after" "$CLK_TCK" "$SECONDS_IDLE" "$QUEUES" "$rss" <<'EOF'
import sys
before, after, hz, secs, queues, rss = map(float, sys.argv[1:])
cpu = (after - before) / hz
print(f'{int(queues)} idle quorum queues, 3 nodes: {cpu:.2f} CPU s over {secs:.0f} s = '
      f'{100 * cpu / secs:.2f}% of one core; RSS {rss / 1024:.1f} MiB summed')
EOF
