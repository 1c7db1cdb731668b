#!/usr/bin/env bash
# Counts the sync system calls a single WarrenMQ node makes per confirmed message: starts
# warrenmq-server under `strace -f -c` (only the sync calls traced, with a seccomp filter so
# the other calls run at full speed), runs the durable workload of scripts/bench.sh
# (1 producer, 1 consumer, 16 B persistent, confirms 100, manual acks) with warrenmq-perf,
# stops the node and prints strace's table and the calls per 100,000 confirms.
#
# Environment:
#   SYNC_SECONDS       seconds of publishing (default 10)
#   SYNC_PORT          AMQP port (default 5897; HTTP +10000, cluster +20000)
#   SYNC_PERF_ARGS     warrenmq-perf arguments (default: bench.sh's durable workload)
#   WARRENMQ_SERVER    server binary (default $CARGO_TARGET_DIR/release/warrenmq-server)
#   WARRENMQ_PERF      load tool (default $CARGO_TARGET_DIR/release/warrenmq-perf)
# Needs strace (Debian's `strace`); builds nothing: run `cargo build --release --bins` first.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR=$ROOT/$TARGET_DIR ;; esac
SECONDS_RUN=${SYNC_SECONDS:-10}
PORT=${SYNC_PORT:-5897}
SERVER=${WARRENMQ_SERVER:-$TARGET_DIR/release/warrenmq-server}
PERF=${WARRENMQ_PERF:-$TARGET_DIR/release/warrenmq-perf}
PERF_ARGS=${SYNC_PERF_ARGS:-"-x 1 -y 1 -s 16 -c 100 -f persistent --multi-ack-every 1 --durable -u sync-count"}

command -v strace >/dev/null || { echo "sync-count: strace is not installed" >&2; exit 1; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/warrenmq-sync.XXXXXX")
log() { printf '[sync-count] %s\n' "$*" >&2; }
# shellcheck source=scripts/bench-lib.sh
source "$(dirname "$0")/bench-lib.sh"
STRACE_PID=""
# Stop the node (strace's child) so that strace writes its table, then strace itself.
stop_node() {
    local server
    [[ -n "$STRACE_PID" ]] || return 0
    server=$(ps -o pid= --ppid "$STRACE_PID" | head -n 1 | tr -d ' ')
    [[ -z "$server" ]] || stop_pid "$server"
    stop_pid "$STRACE_PID"
    STRACE_PID=""
}
trap 'stop_node; rm -rf "$WORK"' EXIT

strace -f --seccomp-bpf -c -e trace=fsync,fdatasync,sync_file_range,msync,syncfs \
    -o "$WORK/strace.txt" \
    "$SERVER" --data-dir "$WORK/data" --amqp-port "$PORT" --http-port $((PORT + 10000)) \
    --cluster-port $((PORT + 20000)) >"$WORK/server.log" 2>&1 </dev/null &
STRACE_PID=$!
for _ in $(seq 1 300); do
    port_open "$PORT" && break
    kill -0 "$STRACE_PID" 2>/dev/null || { cat "$WORK/server.log" >&2; exit 1; }
    sleep 0.1
done
# shellcheck disable=SC2086
"$PERF" --uri "amqp://guest:guest@127.0.0.1:$PORT/%2F" $PERF_ARGS -z "$SECONDS_RUN" \
    --delete-queues --json >"$WORK/perf.json" 2>"$WORK/perf.log"
stop_node
cat "$WORK/strace.txt"
python3 - "$WORK/perf.json" "$WORK/strace.txt" <<'EOF'
import json, sys
perf = json.load(open(sys.argv[1]))
calls = {}
for line in open(sys.argv[2]):
    f = line.split()
    if len(f) >= 5 and f[-1] in ("fsync", "fdatasync", "sync_file_range", "msync", "syncfs"):
        calls[f[-1]] = int(f[3])
confirmed = perf["confirmed"]
print(f"confirmed {confirmed} messages at {perf['confirmed_rate']:.0f} msg/s "
      f"(confirm p50 {perf['confirm_latency_p50_us']:.0f} us, p99 {perf['confirm_latency_p99_us']:.0f} us)")
for name, n in sorted(calls.items()):
    print(f"{name}: {n} calls, {n * 100000 / max(confirmed, 1):.0f} per 100,000 confirms")
EOF
