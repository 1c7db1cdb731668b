#!/usr/bin/env bash
# Stop the haproxy scripts/start-haproxy.sh started (the PID in
# $WARRENMQ_CLUSTER_DIR/haproxy.pid), and nothing else: TERM (a hard stop that closes
# the proxied connections; a soft stop would wait out the long AMQP timeouts), then KILL
# after 10 s. The rendered config and the log stay. Env: see scripts/cluster-env.sh.
set -euo pipefail
source "$(dirname "$0")/cluster-env.sh"
PIDFILE="$CLUSTER_DIR/haproxy.pid"
if [ ! -f "$PIDFILE" ]; then
  echo "no haproxy runs for $CLUSTER_DIR (no $PIDFILE)"
  exit 0
fi
pid=$(cat "$PIDFILE")
if ! [[ "$pid" =~ ^[0-9]+$ ]]; then
  echo "stop-haproxy.sh: $PIDFILE does not hold a PID; removing it" >&2
  rm -f "$PIDFILE"; exit 1
fi
if ! kill -0 "$pid" 2>/dev/null; then
  echo "haproxy (PID $pid) no longer runs; removing $PIDFILE"
  rm -f "$PIDFILE"; exit 0
fi
# The PID may have been reused since haproxy died: only signal it if it is haproxy.
if [ -r "/proc/$pid/comm" ] && [ "$(cat "/proc/$pid/comm")" != haproxy ]; then
  echo "stop-haproxy.sh: PID $pid is $(cat "/proc/$pid/comm"), not haproxy; not stopping it, removing $PIDFILE" >&2
  rm -f "$PIDFILE"; exit 1
fi
kill -TERM "$pid" 2>/dev/null || true
for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
kill -KILL "$pid" 2>/dev/null || true
rm -f "$PIDFILE"
echo "stopped haproxy (PID $pid) for $CLUSTER_DIR"
