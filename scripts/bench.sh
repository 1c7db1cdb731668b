#!/usr/bin/env bash
# Side-by-side benchmark of WarrenMQ and (when installed) RabbitMQ, driven by warrenmq-perf.
#
# Each broker is started by this script on its own ports and a fresh data dir, runs the
# workloads alone (one broker at a time), and is stopped again. Printed at the end: msg/s,
# p99 end-to-end latency, broker CPU time per consumed message, idle RSS and start time,
# with WarrenMQ/RabbitMQ ratios. See benches/README.md.
#
# Environment:
#   BENCH_SECONDS        seconds per workload (default 20)
#   BENCH_BROKERS        which brokers to run (default "warrenmq rabbitmq")
#   BENCH_SKIP_BUILD=1   do not run cargo build (use the binaries already built)
#   BENCH_KEEP=1         keep the work dir (logs, JSON results, data dirs)
#   WARRENMQ_SERVER      server binary (default $CARGO_TARGET_DIR/release/warrenmq-server)
#   WARRENMQ_PERF        load tool binary (default $CARGO_TARGET_DIR/release/warrenmq-perf)
#   BENCH_WARREN_PORT    WarrenMQ AMQP port (default 5680; HTTP +10000, Prometheus +10020,
#                        cluster +20000)
#   BENCH_RABBIT_PORT    RabbitMQ AMQP port (default 5690; distribution +20000)
#   BENCH_EPMD_PORT      port of the epmd this script uses for RabbitMQ (default 4391)
#   BENCH_START_TIMEOUT  seconds WarrenMQ may take to accept AMQP (default 30; RabbitMQ: 60)
#   BENCH_SETTLE         seconds to wait after start before reading idle RSS (default 2)
#   BENCH_WORKLOADS      which workloads (default "durable transient slow-transient fixed-rate")
#   BENCH_USER           guest (default) or regex: log in as a user whose permissions are
#                        regexes (see bench-lib.sh), created on both brokers

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR=$ROOT/$TARGET_DIR ;; esac
BENCH_SECONDS=${BENCH_SECONDS:-20}
BENCH_BROKERS=${BENCH_BROKERS:-"warrenmq rabbitmq"}
WARRENMQ_SERVER=${WARRENMQ_SERVER:-$TARGET_DIR/release/warrenmq-server}
WARRENMQ_PERF=${WARRENMQ_PERF:-$TARGET_DIR/release/warrenmq-perf}
WARREN_PORT=${BENCH_WARREN_PORT:-5680}
WARREN_HTTP_PORT=$((WARREN_PORT + 10000))
WARREN_CLUSTER_PORT=$((WARREN_PORT + 20000))
RABBIT_PORT=${BENCH_RABBIT_PORT:-5690}
RABBIT_DIST_PORT=$((RABBIT_PORT + 20000))
EPMD_PORT=${BENCH_EPMD_PORT:-4391}
START_TIMEOUT=${BENCH_START_TIMEOUT:-30}
RABBIT_START_TIMEOUT=60
SETTLE=${BENCH_SETTLE:-2}

WORKDIR=$(mktemp -d "${TMPDIR:-/tmp}/warrenmq-bench.XXXXXX")

log() { printf '[bench] %s\n' "$*" >&2; }

# ---------------------------------------------------------------------------------------
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

# wait_port PORT PID TIMEOUT: polls every 5 ms until PORT accepts, PID dies or TIMEOUT s pass.
# Prints the milliseconds waited; fails if it did not open.
wait_port() {
    local port=$1 pid=$2 timeout=$3 t0 now
    t0=$(date +%s%N)
    while :; do
        if port_open "$port"; then
            now=$(date +%s%N)
            echo $(((now - t0) / 1000000))
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || return 1
        now=$(date +%s%N)
        ((now - t0 < timeout * 1000000000)) || return 1
        sleep 0.005
    done
}


# ---------------------------------------------------------------------------------------
# Results: R[broker,key] = value.
declare -A R=()
declare -A BROKER_LABEL=([warrenmq]=WarrenMQ [rabbitmq]=RabbitMQ)

read -r -a WORKLOADS <<<"${BENCH_WORKLOADS:-durable transient slow-transient fixed-rate}"
declare -A WORKLOAD_TITLE=(
    [durable]="1 durable, persistent, confirm 100, ack"
    [transient]="2 transient, no confirms, auto-ack"
    [slow-transient]="3 transient, 10 msg/s, waiting consumer"
    [fixed-rate]="4 durable as 1, fixed 10,000 msg/s"
)

workload_args() {
    case "$1" in
    durable) echo "-x 1 -y 1 -s 16 -c 100 -f persistent --multi-ack-every 1 --durable -u bench-durable" ;;
    transient) echo "-x 1 -y 1 -s 16 -a --transient -u bench-transient" ;;
    # A consumer that waits for each message: every publish must be delivered at once
    # (p99 of a few ms), not when the next one arrives (a stall shows as p99 ~100 ms).
    slow-transient) echo "-x 1 -y 1 -s 16 -r 10 -q 10 --transient -u bench-slow-transient" ;;
    # Where most deployments live: a moderate fixed rate, so the CPU per message (not
    # msg/s) and the latency are what compare.
    fixed-rate) echo "-x 1 -y 1 -s 16 -c 100 -r 10000 -f persistent --multi-ack-every 1 --durable -u bench-fixed-rate" ;;
    esac
}

# run_workloads BROKER PID PORT: runs every workload against one broker.
run_workloads() {
    local broker=$1 pid=$2 port=$3 w args out before after received busy0 busy1 t0 t1 client
    for w in "${WORKLOADS[@]}"; do
        args=$(workload_args "$w")
        out=$WORKDIR/$broker-$w.json
        log "$broker: workload $w: warrenmq-perf $args -z $BENCH_SECONDS"
        before=$(cpu_ticks "$pid")
        busy0=$(machine_busy_ticks)
        t0=$(date +%s%N)
        # shellcheck disable=SC2086
        if ! "$WARRENMQ_PERF" --uri "amqp://$(bench_login)@127.0.0.1:$port/%2F" $args \
            -z "$BENCH_SECONDS" --delete-queues --json --id "$broker-$w" \
            >"$out" 2>"$WORKDIR/$broker-$w.log"; then
            log "$broker: workload $w FAILED (see below)"
            tail -n 5 "$WORKDIR/$broker-$w.log" >&2
            R[$broker,$w,failed]=1
            continue
        fi
        after=$(cpu_ticks "$pid")
        busy1=$(machine_busy_ticks)
        t1=$(date +%s%N)
        received=$(json_field "$out" received)
        client=$(json_field "$out" client_cpu_s)
        # CPU used by anything but the broker and the load tool, as % of the whole machine.
        R[$broker,$w,bg]=$(other_pct "$((busy1 - busy0))" "$((after - before))" "$client" "$((t1 - t0))")
        if [[ "${R[$broker,$w,bg]}" -gt 10 ]]; then
            log "$broker: $w: WARNING: other processes used ${R[$broker,$w,bg]}% of the machine's CPU during this workload: numbers are disturbed"
        fi
        R[$broker,$w,pub]=$(json_field "$out" producer_rate)
        R[$broker,$w,cons]=$(json_field "$out" consumer_rate)
        R[$broker,$w,p99]=$(json_field "$out" latency_p99_us)
        R[$broker,$w,cpu]=$(cpu_us_per_msg "$((after - before))" "$received")
        log "$broker: $w: pub ${R[$broker,$w,pub]} msg/s, cons ${R[$broker,$w,cons]} msg/s, p99 ${R[$broker,$w,p99]} µs, CPU ${R[$broker,$w,cpu]} µs/msg"
    done
    R[$broker,rss_after]=$(rss_kib "$pid")
}

# ---------------------------------------------------------------------------------------
bench_warrenmq() {
    if [[ ! -x "$WARRENMQ_SERVER" ]]; then
        log "WarrenMQ: skipped: no server binary at $WARRENMQ_SERVER"
        R[warrenmq,skipped]="no server binary"
        return 0
    fi
    if port_open "$WARREN_PORT"; then
        log "WarrenMQ: skipped: port $WARREN_PORT is already in use"
        R[warrenmq,skipped]="port $WARREN_PORT busy"
        return 0
    fi
    mkdir -p "$WORKDIR/warren"
    log "WarrenMQ: starting $WARRENMQ_SERVER on port $WARREN_PORT"
    # Prometheus by environment: a binary from before the flag still starts.
    WARRENMQ_PROMETHEUS_PORT=$((WARREN_PORT + 10020)) \
    "$WARRENMQ_SERVER" --data-dir "$WORKDIR/warren" --amqp-port "$WARREN_PORT" \
        --http-port "$WARREN_HTTP_PORT" --cluster-port "$WARREN_CLUSTER_PORT" \
        >"$WORKDIR/warrenmq-server.log" 2>&1 </dev/null &
    local pid=$! ms
    STARTED_PIDS+=("$pid")
    if ! ms=$(wait_port "$WARREN_PORT" "$pid" "$START_TIMEOUT"); then
        if kill -0 "$pid" 2>/dev/null; then
            log "WarrenMQ: skipped: not accepting AMQP on port $WARREN_PORT after ${START_TIMEOUT}s"
            R[warrenmq,skipped]="no AMQP listener after ${START_TIMEOUT}s"
        else
            log "WarrenMQ: skipped: the server exited before accepting AMQP connections"
            R[warrenmq,skipped]="server exited at start"
        fi
        tail -n 5 "$WORKDIR/warrenmq-server.log" | sed 's/^/[bench]   /' >&2
        stop_pid "$pid"
        forget_pid "$pid"
        return 0
    fi
    R[warrenmq,start_ms]=$ms
    if ! bench_add_user "$TARGET_DIR/release/warrenctl" -n "127.0.0.1:$WARREN_CLUSTER_PORT" \
        --data-dir "$WORKDIR/warren"; then
        log "WarrenMQ: skipped: cannot create the benchmark user"
        R[warrenmq,skipped]="no benchmark user"
        stop_pid "$pid"
        forget_pid "$pid"
        return 0
    fi
    sleep "$SETTLE"
    R[warrenmq,rss_idle]=$(rss_kib "$pid")
    log "WarrenMQ: accepting AMQP after $ms ms, idle RSS ${R[warrenmq,rss_idle]} KiB"
    run_workloads warrenmq "$pid" "$WARREN_PORT"
    stop_pid "$pid"
    forget_pid "$pid"
}

bench_rabbitmq() {
    local server=/usr/lib/rabbitmq/bin/rabbitmq-server
    if ! command -v rabbitmq-server >/dev/null 2>&1 || [[ ! -x "$server" ]]; then
        log "RabbitMQ: skipped: rabbitmq-server is not installed"
        R[rabbitmq,skipped]="not installed"
        return 0
    fi
    if port_open "$RABBIT_PORT"; then
        log "RabbitMQ: skipped: port $RABBIT_PORT is already in use"
        R[rabbitmq,skipped]="port $RABBIT_PORT busy"
        return 0
    fi
    local dir=$WORKDIR/rabbit epmd_pid="" pid beam="" ms i
    mkdir -p "$dir/mnesia" "$dir/log" "$dir/home"
    echo "[]." >"$dir/enabled_plugins"
    : >"$dir/rabbitmq-env.conf"
    cat >"$dir/rabbitmq.conf" <<EOF
listeners.tcp.default = $RABBIT_PORT
EOF
    # A private epmd, started only if nothing already listens on its port (and then only
    # that one is stopped at the end).
    if port_open "$EPMD_PORT"; then
        log "RabbitMQ: using the epmd already listening on port $EPMD_PORT"
    else
        epmd -port "$EPMD_PORT" >"$dir/epmd.log" 2>&1 </dev/null &
        epmd_pid=$!
        STARTED_PIDS+=("$epmd_pid")
        for ((i = 0; i < 200; i++)); do port_open "$EPMD_PORT" && break; sleep 0.025; done
    fi
    log "RabbitMQ: starting $(dpkg-query -W -f '${Version}' rabbitmq-server 2>/dev/null || echo '?') on port $RABBIT_PORT"
    env HOME="$dir/home" ERL_EPMD_PORT="$EPMD_PORT" \
        RABBITMQ_CONF_ENV_FILE="$dir/rabbitmq-env.conf" \
        RABBITMQ_CONFIG_FILE="$dir/rabbitmq.conf" \
        RABBITMQ_ENABLED_PLUGINS_FILE="$dir/enabled_plugins" \
        RABBITMQ_MNESIA_BASE="$dir/mnesia" \
        RABBITMQ_LOG_BASE="$dir/log" \
        RABBITMQ_NODENAME=bench@localhost \
        RABBITMQ_NODE_PORT="$RABBIT_PORT" \
        RABBITMQ_DIST_PORT="$RABBIT_DIST_PORT" \
        "$server" >"$dir/stdout.log" 2>&1 </dev/null &
    pid=$!
    STARTED_PIDS+=("$pid")
    if ! ms=$(wait_port "$RABBIT_PORT" "$pid" "$RABBIT_START_TIMEOUT"); then
        log "RabbitMQ: skipped: not accepting AMQP on port $RABBIT_PORT after ${RABBIT_START_TIMEOUT}s"
        tail -n 5 "$dir/stdout.log" | sed 's/^/[bench]   /' >&2
        R[rabbitmq,skipped]="did not start"
        stop_pid "$pid" 30
        forget_pid "$pid"
        return 0
    fi
    # The Erlang VM is the beam.smp child of the start script.
    beam=$(ps -o pid=,comm= --ppid "$pid" | awk '$2 ~ /^beam/ { print $1; exit }')
    if [[ -z "$beam" ]]; then
        log "RabbitMQ: skipped: cannot find the beam.smp child of PID $pid"
        R[rabbitmq,skipped]="no beam PID"
        stop_pid "$pid" 30
        forget_pid "$pid"
        return 0
    fi
    R[rabbitmq,start_ms]=$ms
    if ! bench_add_user env HOME="$dir/home" ERL_EPMD_PORT="$EPMD_PORT" \
        RABBITMQ_CONF_ENV_FILE="$dir/rabbitmq-env.conf" \
        /usr/lib/rabbitmq/bin/rabbitmqctl -n bench@localhost; then
        log "RabbitMQ: skipped: cannot create the benchmark user"
        R[rabbitmq,skipped]="no benchmark user"
        stop_pid "$pid" 30
        forget_pid "$pid"
        return 0
    fi
    sleep "$SETTLE"
    R[rabbitmq,rss_idle]=$(rss_kib "$beam")
    log "RabbitMQ: accepting AMQP after $ms ms (beam PID $beam), idle RSS ${R[rabbitmq,rss_idle]} KiB"
    run_workloads rabbitmq "$beam" "$RABBIT_PORT"
    # SIGTERM to the start script stops the VM gracefully and waits for it.
    stop_pid "$pid" 30
    forget_pid "$pid"
    if kill -0 "$beam" 2>/dev/null; then
        log "RabbitMQ: beam PID $beam still running after its start script ended: SIGKILL"
        kill -KILL "$beam" 2>/dev/null || true
    fi
    if [[ -n "$epmd_pid" ]]; then
        stop_pid "$epmd_pid"
        forget_pid "$epmd_pid"
    fi
}

# ---------------------------------------------------------------------------------------
print_table() {
    local w b label v r
    ratio() { # ratio A B: A/B with 2 decimals, n/a when either is missing
        awk -v a="$1" -v b="$2" 'BEGIN { if (a ~ /^[0-9.]+$/ && b ~ /^[0-9.]+$/ && b > 0) printf "%.2f", a / b; else print "n/a" }'
    }
    num0() { awk -v a="$1" 'BEGIN { if (a ~ /^[0-9.]+$/) printf "%.0f", a; else print (a == "" ? "-" : a) }'; }
    echo
    echo "WarrenMQ vs RabbitMQ: ${BENCH_SECONDS}s per workload, 16 B bodies, 1 producer / 1 consumer, $(nproc) cores"
    echo "clients log in as $(bench_login | cut -d: -f1)$([[ "$BENCH_USER" == regex ]] && echo ", permissions $BENCH_USER_RE")"
    printf '%-40s %-10s %12s %12s %12s %12s %9s\n' workload broker "pub msg/s" "cons msg/s" "p99 µs" "CPU µs/msg" "other %"
    for w in "${WORKLOADS[@]}"; do
        label=${WORKLOAD_TITLE[$w]}
        for b in warrenmq rabbitmq; do
            v=${BROKER_LABEL[$b]}
            if [[ -n "${R[$b,skipped]:-}" ]]; then
                printf '%-40s %-10s %s\n' "$label" "$v" "skipped: ${R[$b,skipped]}"
            elif [[ -n "${R[$b,$w,failed]:-}" ]]; then
                printf '%-40s %-10s %s\n' "$label" "$v" "FAILED (see $WORKDIR/$b-$w.log with BENCH_KEEP=1)"
            else
                printf '%-40s %-10s %12s %12s %12s %12s %9s\n' "$label" "$v" \
                    "$(num0 "${R[$b,$w,pub]:-}")" "$(num0 "${R[$b,$w,cons]:-}")" \
                    "$(num0 "${R[$b,$w,p99]:-}")" "${R[$b,$w,cpu]:--}" "${R[$b,$w,bg]:--}"
            fi
            label=""
        done
        r=()
        for v in pub cons p99 cpu; do
            r+=("$(ratio "${R[warrenmq,$w,$v]:-}" "${R[rabbitmq,$w,$v]:-}")")
        done
        printf '%-40s %-10s %12s %12s %12s %12s\n' "" "W/R" "${r[@]}"
    done
    echo
    printf '%-10s %16s %16s %20s\n' broker "start ms" "idle RSS MiB" "RSS after runs MiB"
    for b in warrenmq rabbitmq; do
        v=${BROKER_LABEL[$b]}
        if [[ -n "${R[$b,skipped]:-}" ]]; then
            printf '%-10s %s\n' "$v" "skipped: ${R[$b,skipped]}"
            continue
        fi
        printf '%-10s %16s %16s %20s\n' "$v" "${R[$b,start_ms]:--}" \
            "$(awk -v k="${R[$b,rss_idle]:-}" 'BEGIN { if (k != "") printf "%.1f", k / 1024; else print "-" }')" \
            "$(awk -v k="${R[$b,rss_after]:-}" 'BEGIN { if (k != "") printf "%.1f", k / 1024; else print "-" }')"
    done
    echo
    echo "pub msg/s = confirmed msg/s with confirms, else sent msg/s; p99 = end-to-end latency;"
    echo "CPU µs/msg = broker utime+stime / messages consumed; W/R = WarrenMQ / RabbitMQ (higher"
    echo "is better for msg/s, lower for p99 and CPU). other % = CPU used by other processes"
    echo "during the workload, as % of the machine (should be ~0). start ms = exec to accepting AMQP."
}

# ---------------------------------------------------------------------------------------
if [[ "${BENCH_SKIP_BUILD:-0}" != 1 ]]; then
    log "building warrenmq-perf (CARGO_TARGET_DIR=$TARGET_DIR)"
    (cd "$ROOT" && CARGO_TARGET_DIR="$TARGET_DIR" cargo build --release --quiet --bin warrenmq-perf)
    if [[ " $BENCH_BROKERS " == *" warrenmq "* ]]; then
        log "building warrenmq-server"
        if ! (cd "$ROOT" && CARGO_TARGET_DIR="$TARGET_DIR" cargo build --release --quiet --bin warrenmq-server); then
            log "warrenmq-server does not build: WarrenMQ will be skipped"
            R[warrenmq,skipped]="does not build"
        fi
    fi
fi
if [[ ! -x "$WARRENMQ_PERF" ]]; then
    log "no load tool at $WARRENMQ_PERF"
    exit 1
fi

for broker in warrenmq rabbitmq; do
    if [[ " $BENCH_BROKERS " != *" $broker "* ]]; then
        R[$broker,skipped]="not in BENCH_BROKERS"
        continue
    fi
    [[ -n "${R[$broker,skipped]:-}" ]] && continue
    "bench_$broker"
done

print_table
