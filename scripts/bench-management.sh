#!/usr/bin/env bash
# How long the management API takes to list many queues, WarrenMQ beside RabbitMQ.
#
# Each broker is started by this script on its own ports and a fresh data dir (RabbitMQ
# with its management plugin), one at a time, given BENCH_QUEUES durable classic queues
# in one POST /api/definitions, and then asked, BENCH_REPEATS times each:
#   full    GET /api/queues                        (every queue, as rabbitmqadmin asks)
#   page    GET /api/queues?page=1&page_size=100   (the first page, as RabbitMQ's UI asks)
# Printed at the end: the median and the slowest answer of each, in seconds, the answer's
# size, and WarrenMQ/RabbitMQ ratios. The issue's bar: the full list of 10,000 queues
# answers in under 1 s.
#
# Environment:
#   BENCH_QUEUES          queues to declare (default 10000)
#   BENCH_REPEATS         requests per measurement (default 5)
#   BENCH_BROKERS         which brokers (default "warrenmq rabbitmq")
#   BENCH_SKIP_BUILD=1    do not run cargo build (use the binary already built)
#   BENCH_KEEP=1          keep the work dir (logs, data dirs, answers)
#   WARRENMQ_SERVER       server binary (default $CARGO_TARGET_DIR/release/warrenmq-server)
#   BENCH_WARREN_PORT     WarrenMQ AMQP port (default 5700; HTTP +10000, Prometheus
#                         +10020, cluster +20000)
#   BENCH_RABBIT_PORT     RabbitMQ AMQP port (default 5710; management +10000,
#                         distribution +20000)
#   BENCH_EPMD_PORT       port of the epmd this script uses for RabbitMQ (default 4392)
#   BENCH_RABBIT_RUNNING  AMQP_PORT:HTTP_PORT of a RabbitMQ already running on loopback
#                         (guest/guest) to measure instead of starting one; the queues
#                         this script declares there (bench-mgmt-*) are deleted after
#   BENCH_START_TIMEOUT   seconds a broker may take to start (default 60)

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR=$ROOT/$TARGET_DIR ;; esac
QUEUES=${BENCH_QUEUES:-10000}
REPEATS=${BENCH_REPEATS:-5}
BROKERS=${BENCH_BROKERS:-"warrenmq rabbitmq"}
WARRENMQ_SERVER=${WARRENMQ_SERVER:-$TARGET_DIR/release/warrenmq-server}
WARREN_PORT=${BENCH_WARREN_PORT:-5700}
RABBIT_PORT=${BENCH_RABBIT_PORT:-5710}
EPMD_PORT=${BENCH_EPMD_PORT:-4392}
START_TIMEOUT=${BENCH_START_TIMEOUT:-60}
RABBIT_RUNNING=${BENCH_RABBIT_RUNNING:-}
PAGE_QUERY='page=1&page_size=100'

WORKDIR=$(mktemp -d "${TMPDIR:-/tmp}/warrenmq-bench-mgmt.XXXXXX")

log() { printf '[bench-management] %s\n' "$*" >&2; }

# Processes: only PIDs this script started are ever signalled.
STARTED_PIDS=()
# shellcheck source=scripts/bench-lib.sh
source "$(dirname "$0")/bench-lib.sh"

cleanup() {
    stop_started
    drop_workdir
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# wait_http PORT PID TIMEOUT: until GET /api/overview on PORT answers 200 (PID alive).
wait_http() {
    local port=$1 pid=$2 timeout=$3 i
    for ((i = 0; i < timeout * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || return 1
        [[ "$(curl -s -o /dev/null -w '%{http_code}' -u guest:guest \
            "http://127.0.0.1:$port/api/overview")" == 200 ]] && return 0
        sleep 0.1
    done
    return 1
}

# Results: R[broker,what] with what = full_med full_max full_bytes page_med ...
declare -A R=()

# queues HTTP_PORT declare|delete: the bench-mgmt-* queues, over the HTTP API.
queues() {
    python3 - "$1" "$2" "$QUEUES" <<'EOF'
import http.client, json, sys, time
port, action, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
auth = {"Authorization": "Basic Z3Vlc3Q6Z3Vlc3Q=", "Content-Type": "application/json"}
names = [f"bench-mgmt-{i:05d}" for i in range(n)]
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
t0 = time.monotonic()
if action == "declare":
    body = json.dumps({"queues": [{"name": q, "vhost": "/", "durable": True,
                                   "auto_delete": False, "arguments": {}} for q in names]})
    conn.request("POST", "/api/definitions", body, auth)
    r = conn.getresponse()
    r.read()
    if r.status // 100 != 2:
        sys.exit(f"POST /api/definitions answered {r.status}")
else:
    for q in names:
        conn.request("DELETE", f"/api/queues/%2F/{q}", headers=auth)
        conn.getresponse().read()
print(f"{action}d {n} queues in {time.monotonic() - t0:.1f} s", file=sys.stderr)
EOF
}

# count FILE: how many queues an answer lists (a page: its total_count).
count() {
    python3 -c 'import json, sys
v = json.load(open(sys.argv[1]))
print(v["total_count"] if isinstance(v, dict) else len(v))' "$1"
}

# measure BROKER HTTP_PORT KIND QUERY: REPEATS timed GETs of /api/queues?QUERY.
measure() {
    local broker=$1 port=$2 kind=$3 query=$4 i out times=() n
    out=$WORKDIR/$broker-$kind.json
    for ((i = 0; i < REPEATS; i++)); do
        times+=("$(curl -s -o "$out" -w '%{time_total}' -u guest:guest \
            "http://127.0.0.1:$port/api/queues${query:+?$query}")")
    done
    n=$(count "$out")
    if ((n < QUEUES)); then
        log "$broker: $kind: the answer lists $n queues, not $QUEUES"
    fi
    R[$broker,${kind}_med]=$(printf '%s\n' "${times[@]}" | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
    R[$broker,${kind}_max]=$(printf '%s\n' "${times[@]}" | sort -g | tail -n1)
    R[$broker,${kind}_bytes]=$(stat -c %s "$out")
    log "$broker: $kind: ${times[*]} s (${R[$broker,${kind}_bytes]} bytes, $n queues)"
}

measure_all() {
    measure "$1" "$2" full ""
    measure "$1" "$2" page "$PAGE_QUERY"
}

# ---------------------------------------------------------------------------------------
bench_warrenmq() {
    local http=$((WARREN_PORT + 10000)) pid
    if [[ ! -x "$WARRENMQ_SERVER" ]]; then
        log "WarrenMQ: skipped: no server binary at $WARRENMQ_SERVER"
        return 0
    fi
    if port_open "$WARREN_PORT" || port_open "$http"; then
        log "WarrenMQ: skipped: port $WARREN_PORT or $http is already in use"
        return 0
    fi
    mkdir -p "$WORKDIR/warren"
    "$WARRENMQ_SERVER" --data-dir "$WORKDIR/warren" --amqp-port "$WARREN_PORT" \
        --http-port "$http" --prometheus-port $((WARREN_PORT + 10020)) \
        --cluster-port $((WARREN_PORT + 20000)) \
        >"$WORKDIR/warrenmq-server.log" 2>&1 </dev/null &
    pid=$!
    STARTED_PIDS+=("$pid")
    if ! wait_http "$http" "$pid" "$START_TIMEOUT"; then
        log "WarrenMQ: skipped: no management API on port $http"
        tail -n 5 "$WORKDIR/warrenmq-server.log" | sed 's/^/[bench-management]   /' >&2
        return 0
    fi
    log "WarrenMQ: $WARRENMQ_SERVER, management API on port $http"
    queues "$http" declare
    measure_all warrenmq "$http"
    stop_pid "$pid"
    forget_pid "$pid"
}

bench_rabbitmq() {
    local server=/usr/lib/rabbitmq/bin/rabbitmq-server http=$((RABBIT_PORT + 10000))
    local dir=$WORKDIR/rabbit epmd_pid="" pid i
    if [[ -n "$RABBIT_RUNNING" ]]; then
        http=${RABBIT_RUNNING#*:}
        log "RabbitMQ: the one already running, management API on port $http"
        queues "$http" declare
        measure_all rabbitmq "$http"
        queues "$http" delete
        return 0
    fi
    if [[ ! -x "$server" ]]; then
        log "RabbitMQ: skipped: rabbitmq-server is not installed"
        return 0
    fi
    if port_open "$RABBIT_PORT" || port_open "$http"; then
        log "RabbitMQ: skipped: port $RABBIT_PORT or $http is already in use"
        return 0
    fi
    mkdir -p "$dir/mnesia" "$dir/log" "$dir/home"
    echo "[rabbitmq_management]." >"$dir/enabled_plugins"
    : >"$dir/rabbitmq-env.conf"
    cat >"$dir/rabbitmq.conf" <<EOF
listeners.tcp.default = $RABBIT_PORT
management.tcp.port = $http
management.tcp.ip = 127.0.0.1
EOF
    # A private epmd, started only if nothing already listens on its port.
    if ! port_open "$EPMD_PORT"; then
        epmd -port "$EPMD_PORT" >"$dir/epmd.log" 2>&1 </dev/null &
        epmd_pid=$!
        STARTED_PIDS+=("$epmd_pid")
        for ((i = 0; i < 200; i++)); do port_open "$EPMD_PORT" && break; sleep 0.025; done
    fi
    env HOME="$dir/home" ERL_EPMD_PORT="$EPMD_PORT" \
        RABBITMQ_CONF_ENV_FILE="$dir/rabbitmq-env.conf" \
        RABBITMQ_CONFIG_FILE="$dir/rabbitmq.conf" \
        RABBITMQ_ENABLED_PLUGINS_FILE="$dir/enabled_plugins" \
        RABBITMQ_MNESIA_BASE="$dir/mnesia" \
        RABBITMQ_LOG_BASE="$dir/log" \
        RABBITMQ_NODENAME=benchmgmt@localhost \
        RABBITMQ_NODE_PORT="$RABBIT_PORT" \
        RABBITMQ_DIST_PORT=$((RABBIT_PORT + 20000)) \
        "$server" >"$dir/stdout.log" 2>&1 </dev/null &
    pid=$!
    STARTED_PIDS+=("$pid")
    if ! wait_http "$http" "$pid" "$START_TIMEOUT"; then
        log "RabbitMQ: skipped: no management API on port $http"
        tail -n 5 "$dir/stdout.log" | sed 's/^/[bench-management]   /' >&2
        return 0
    fi
    log "RabbitMQ: $(dpkg-query -W -f '${Version}' rabbitmq-server 2>/dev/null || echo '?'), management API on port $http"
    queues "$http" declare
    measure_all rabbitmq "$http"
    # SIGTERM to the start script stops the VM and waits for it (and the private epmd after).
    stop_pid "$pid" 30
    forget_pid "$pid"
    if [[ -n "$epmd_pid" ]]; then
        stop_pid "$epmd_pid"
        forget_pid "$epmd_pid"
    fi
}

# ---------------------------------------------------------------------------------------
if [[ "${BENCH_SKIP_BUILD:-0}" != 1 && " $BROKERS " == *" warrenmq "* ]]; then
    log "building warrenmq-server (release)"
    (cd "$ROOT" && cargo build --release --bin warrenmq-server >&2)
fi
for b in $BROKERS; do
    case "$b" in
    warrenmq) bench_warrenmq ;;
    rabbitmq) bench_rabbitmq ;;
    *) log "unknown broker '$b'" && exit 64 ;;
    esac
done

ratio() {
    awk -v a="${1:-}" -v b="${2:-}" 'BEGIN { if (a != "" && b > 0) printf "%.2f", a / b; else print "-" }'
}
printf '\n/api/queues with %s queues, %s requests each (seconds: median / slowest)\n' "$QUEUES" "$REPEATS"
printf '%-38s %20s %20s %10s\n' request WarrenMQ RabbitMQ ratio
for kind in full page; do
    label="GET /api/queues"
    [[ $kind == page ]] && label="GET /api/queues?$PAGE_QUERY"
    w="${R[warrenmq,${kind}_med]:-} / ${R[warrenmq,${kind}_max]:-}"
    r="${R[rabbitmq,${kind}_med]:-} / ${R[rabbitmq,${kind}_max]:-}"
    printf '%-38s %20s %20s %10s\n' "$label" "${w/# \/ /-}" "${r/# \/ /-}" \
        "$(ratio "${R[warrenmq,${kind}_med]:-}" "${R[rabbitmq,${kind}_med]:-}")"
    printf '%-38s %20s %20s\n' "  answer bytes" "${R[warrenmq,${kind}_bytes]:--}" "${R[rabbitmq,${kind}_bytes]:--}"
done
