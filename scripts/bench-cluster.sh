#!/usr/bin/env bash
# Three-node benchmark: a WarrenMQ cluster and (when installed) a RabbitMQ 3.10 cluster,
# each three nodes on this machine, driven by warrenmq-perf. See benches/README.md.
#
# One broker at a time: start its three nodes on fresh data and cluster them, run the
# workloads, stop them. Every workload uses quorum queues, 16 B persistent messages,
# a confirm window of 100 per producer and one manual ack per delivery:
#   a  one queue whose leader is node 1, the producer on node 2, the consumer on node 3;
#   b  10 queues (leaders spread: queue k on node k mod 3 + 1), 10 producers and
#      10 consumers spread over the three nodes, each client on a node other than its
#      queue's leader and the producer and consumer of a queue on different nodes.
# BENCH_PLACEMENT=local instead connects every client to its queue's leader (a: all on
# node 1), which needs no forwarding between nodes.
# Both brokers place a quorum queue's leader on the node the declaring client is
# connected to, so the script declares each queue through the node that should lead it
# (warrenmq-perf --declare-uri), and checks where the leaders are before measuring.
# Printed at the end: msg/s, p50/p99 end-to-end latency and the brokers' CPU per message
# for each broker, with WarrenMQ/RabbitMQ ratios.
#
# Environment:
#   BENCH_SECONDS        seconds per workload (default 20)
#   BENCH_BROKERS        which brokers to run (default "warrenmq rabbitmq")
#   BENCH_WORKLOADS      which workloads to run (default "a b")
#   BENCH_PLACEMENT      cross (default, as above) or local (clients on the leader's node)
#   BENCH_SKIP_BUILD=1   do not run cargo build (use the binaries already built)
#   BENCH_KEEP=1         keep the work dir (logs, JSON results, data dirs)
#   WARRENMQ_PERF        load tool binary (default $CARGO_TARGET_DIR/release/warrenmq-perf)
#   WARRENMQ_AMQP_PORT_BASE, WARRENMQ_HTTP_PORT_BASE, WARRENMQ_CLUSTER_PORT_BASE
#                        WarrenMQ node 1's ports (default 5780, 15780, 25780; nodes 2 and
#                        3 add 1 and 2); the cluster runs through scripts/start-cluster.sh
#                        and scripts/stop-cluster.sh with WARRENMQ_CLUSTER_DIR in the work dir
#   BENCH_RABBIT_PORT_BASE  RabbitMQ node 1's AMQP port (default 5790; nodes 2, 3 add 1, 2;
#                        distribution ports +20000)
#   BENCH_EPMD_PORT      port of the epmd this script uses for RabbitMQ (default 4392)
#   BENCH_START_TIMEOUT  seconds RabbitMQ's nodes may take to accept AMQP (default 120)
#   BENCH_USER           guest (default) or regex: log in as a user whose permissions are
#                        regexes (see bench-lib.sh), created on both clusters

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR=$ROOT/$TARGET_DIR ;; esac
BENCH_SECONDS=${BENCH_SECONDS:-20}
BENCH_BROKERS=${BENCH_BROKERS:-"warrenmq rabbitmq"}
BENCH_PLACEMENT=${BENCH_PLACEMENT:-cross}
read -r -a WORKLOADS <<<"${BENCH_WORKLOADS:-a b}"
WARRENMQ_PERF=${WARRENMQ_PERF:-$TARGET_DIR/release/warrenmq-perf}
WARREN_AMQP_BASE=${WARRENMQ_AMQP_PORT_BASE:-5780}
WARREN_HTTP_BASE=${WARRENMQ_HTTP_PORT_BASE:-15780}
WARREN_CLUSTER_BASE=${WARRENMQ_CLUSTER_PORT_BASE:-25780}
RABBIT_BASE=${BENCH_RABBIT_PORT_BASE:-5790}
EPMD_PORT=${BENCH_EPMD_PORT:-4392}
RABBIT_START_TIMEOUT=${BENCH_START_TIMEOUT:-120}
RABBIT_LIB=/usr/lib/rabbitmq/bin

case "$BENCH_PLACEMENT" in
cross | local) ;;
*)
    echo "BENCH_PLACEMENT must be cross or local, not '$BENCH_PLACEMENT'" >&2
    exit 2
    ;;
esac
for w in "${WORKLOADS[@]}"; do
    case "$w" in
    a | b) ;;
    *)
        echo "BENCH_WORKLOADS: unknown workload '$w' (a, b)" >&2
        exit 2
        ;;
    esac
done

WORKDIR=$(mktemp -d "${TMPDIR:-/tmp}/warrenmq-bench-cluster.XXXXXX")
WARREN_DIR=$WORKDIR/warren-cluster

log() { printf '[bench-cluster] %s\n' "$*" >&2; }

# ---------------------------------------------------------------------------------------
# Processes: only PIDs this script started are ever signalled. The WarrenMQ nodes are
# started by scripts/start-cluster.sh, which records their PIDs in $WARREN_DIR/nodeN.pid;
# scripts/stop-cluster.sh stops exactly those.
STARTED_PIDS=()
WARREN_STARTED=0
# RabbitMQ's beam.smp processes (children of the start scripts in STARTED_PIDS).
RABBIT_BEAMS=()
# shellcheck source=scripts/bench-lib.sh
source "$(dirname "$0")/bench-lib.sh"

# The environment scripts/{start,stop}-cluster.sh and cluster-env.sh read.
warren_env() {
    env WARRENMQ_CLUSTER_DIR="$WARREN_DIR" \
        WARRENMQ_AMQP_PORT_BASE="$WARREN_AMQP_BASE" \
        WARRENMQ_HTTP_PORT_BASE="$WARREN_HTTP_BASE" \
        WARRENMQ_CLUSTER_PORT_BASE="$WARREN_CLUSTER_BASE" \
        CARGO_TARGET_DIR="$TARGET_DIR" \
        PATH="$WORKDIR/bin:$PATH" \
        "$@"
}

stop_warren_cluster() {
    [[ "$WARREN_STARTED" == 1 ]] || return 0
    warren_env bash "$ROOT/scripts/stop-cluster.sh" >>"$WORKDIR/warren-stop.log" 2>&1 || true
    WARREN_STARTED=0
}

cleanup() {
    local i
    stop_warren_cluster
    stop_started
    for i in "${RABBIT_BEAMS[@]}"; do
        if kill -0 "$i" 2>/dev/null; then
            log "RabbitMQ beam PID $i outlived its start script: SIGKILL"
            kill -KILL "$i" 2>/dev/null || true
        fi
    done
    RABBIT_BEAMS=()
    drop_workdir
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# wait_ports TIMEOUT PORT...: polls until every PORT accepts; fails after TIMEOUT s.
wait_ports() {
    local timeout=$1 t0 p all
    shift
    t0=$(date +%s)
    while :; do
        all=1
        for p in "$@"; do port_open "$p" || { all=0 && break; }; done
        [[ "$all" == 1 ]] && return 0
        (($(date +%s) - t0 < timeout)) || return 1
        sleep 0.1
    done
}

now_ms() { echo $(($(date +%s%N) / 1000000)); }
# The last error line warrenmq-perf wrote to LOG, shortened for the table.
perf_error() {
    local line
    line=$(grep 'warrenmq-perf: error' "$1" | tail -n1 | sed 's/^warrenmq-perf: error: //' || true)
    [[ -n "$line" ]] || line=$(tail -n1 "$1" || true)
    echo "${line:0:160}"
}

# ---------------------------------------------------------------------------------------
# Results: R[broker,key] = value.
declare -A R=()
declare -A BROKER_LABEL=([warrenmq]=WarrenMQ [rabbitmq]=RabbitMQ)
# Per broker: the AMQP URIs of nodes 1-3, the node names list_queues reports as leaders,
# and the PIDs whose CPU and memory are the broker's.
declare -A URI=() NODE=()
BROKER_PIDS=()

if [[ "$BENCH_PLACEMENT" == cross ]]; then
    declare -A WORKLOAD_TITLE=(
        [a]="a 1 queue: leader n1, prod n2, cons n3"
        [b]="b 10 queues, 10 prod/10 cons spread"
    )
else
    declare -A WORKLOAD_TITLE=(
        [a]="a 1 queue: leader, prod, cons on n1"
        [b]="b 10 queues spread, clients on leader"
    )
fi
SPREAD_QUEUES=10

# workload_args BROKER W QUEUE: sets ARGS to warrenmq-perf's options for workload W
# (without -z) and EXPECTED_LEADERS to the node (1-3) that must lead each queue, in the
# order of the queue names.
workload_args() {
    local b=$1 w=$2 queue=$3 p c k
    local -a prod=() cons=()
    ARGS=(-s 16 -c 100 -f persistent --multi-ack-every 1 --queue-type quorum -u "$queue")
    EXPECTED_LEADERS=()
    case "$w" in
    a)
        if [[ "$BENCH_PLACEMENT" == cross ]]; then p=2 c=3; else p=1 c=1; fi
        ARGS+=(-x 1 -y 1 --declare-uri "${URI[$b,1]}"
            --producer-uri "${URI[$b,$p]}" --consumer-uri "${URI[$b,$c]}")
        EXPECTED_LEADERS=(1)
        ;;
    b)
        # Queue k is declared through node k%3+1 (so led there); producer i and consumer
        # i use queue i and go round-robin over their URI lists, so with "cross" the
        # producer of queue k is on the next node and its consumer on the one after.
        ARGS+=(-x "$SPREAD_QUEUES" -y "$SPREAD_QUEUES" --queues "$SPREAD_QUEUES")
        for k in 0 1 2; do
            if [[ "$BENCH_PLACEMENT" == cross ]]; then
                p=$(((k + 1) % 3 + 1)) c=$(((k + 2) % 3 + 1))
            else
                p=$((k + 1)) c=$((k + 1))
            fi
            ARGS+=(--declare-uri "${URI[$b,$((k + 1))]}")
            prod+=(--producer-uri "${URI[$b,$p]}")
            cons+=(--consumer-uri "${URI[$b,$c]}")
        done
        ARGS+=("${prod[@]}" "${cons[@]}")
        for ((k = 0; k < SPREAD_QUEUES; k++)); do EXPECTED_LEADERS+=($((k % 3 + 1))); done
        ;;
    esac
}

# list_leaders BROKER: "queue leader member-count" lines of every queue in vhost /.
list_leaders() {
    case "$1" in
    warrenmq)
        # shellcheck disable=SC2016
        warren_env bash -c 'source "$1/scripts/cluster-env.sh" && ctl 1 --formatter json list_queues name leader members' _ "$ROOT"
        ;;
    rabbitmq)
        rctl -q -n "${NODE[rabbitmq,1]}" --formatter json list_queues name leader members
        ;;
    esac | python3 -c 'import json, sys
for q in json.load(sys.stdin):
    print(q.get("name"), q.get("leader"), len(q.get("members") or []))'
}

# check_placement BROKER W: runs workload W slowly (20 msg/s per producer) on queues of
# its own, lists where the queues' leaders are (and that each has 3 members) while it
# runs, and stops it with SIGINT
# (it deletes its queues). Fails, with R[b,w,failed] set, when the run fails (e.g. a
# broker refusing clients of non-leader nodes); sets R[b,w,placement].
check_placement() {
    local b=$1 w=$2 queue="bench-cluster-$2-check" out log pid i k name ok=ok leaders=""
    out=$WORKDIR/$b-$w-check.json
    log=$WORKDIR/$b-$w-check.log
    workload_args "$b" "$w" "$queue"
    log "$b: $w: placement check: warrenmq-perf ${ARGS[*]} -r 20 -z 60 -i 0.5"
    "$WARRENMQ_PERF" "${ARGS[@]}" -r 20 -z 60 -i 0.5 --delete-queues --json \
        --id "$b-$w-check" >"$out" 2>"$log" </dev/null &
    pid=$!
    STARTED_PIDS+=("$pid")
    # Running once it prints its first progress line.
    for ((i = 0; i < 600; i++)); do
        grep -q ', time ' "$log" 2>/dev/null && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    if grep -q ', time ' "$log" 2>/dev/null && kill -0 "$pid" 2>/dev/null; then
        leaders=$(list_leaders "$b" 2>>"$log" || true)
    fi
    kill -INT "$pid" 2>/dev/null || true
    for ((i = 0; i < 300; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    stop_pid "$pid"
    forget_pid "$pid"
    if ! grep -q '"errors":\[\]' "$out" 2>/dev/null; then
        R[$b,$w,failed]=$(perf_error "$log")
        log "$b: $w: placement check FAILED: ${R[$b,$w,failed]}"
        return 1
    fi
    for ((k = 0; k < ${#EXPECTED_LEADERS[@]}; k++)); do
        if [[ "$w" == b ]]; then name="$queue-$k"; else name=$queue; fi
        if ! grep -qx "$name ${NODE[$b,${EXPECTED_LEADERS[k]}]} 3" <<<"$leaders"; then
            ok="MISMATCH"
            log "$b: $w: WARNING: queue $name: expected leader ${NODE[$b,${EXPECTED_LEADERS[k]}]} and 3 members, got: $(awk -v n="$name" '$1 == n { print $2, $3 }' <<<"$leaders")"
        fi
    done
    R[$b,$w,placement]=$ok
    log "$b: $w: placement $ok (queue leader members): $(sort <<<"$leaders" | tr '\n' ' ')"
}

# run_workloads BROKER: placement check, then the measured run of every workload.
run_workloads() {
    local b=$1 w out log before after busy0 busy1 t0 t1 received client pid rc
    for w in "${WORKLOADS[@]}"; do
        check_placement "$b" "$w" || continue
        sleep 1
        workload_args "$b" "$w" "bench-cluster-$w"
        out=$WORKDIR/$b-$w.json
        log=$WORKDIR/$b-$w.log
        log "$b: workload $w: warrenmq-perf ${ARGS[*]} -z $BENCH_SECONDS"
        before=$(cpu_ticks_sum "${BROKER_PIDS[@]}")
        busy0=$(machine_busy_ticks)
        t0=$(date +%s%N)
        # In the background and waited for, so that a signal to this script is handled
        # at once (its trap stops the run and the brokers), not when the run ends.
        "$WARRENMQ_PERF" "${ARGS[@]}" -z "$BENCH_SECONDS" --delete-queues --json \
            --id "$b-$w" >"$out" 2>"$log" </dev/null &
        pid=$!
        STARTED_PIDS+=("$pid")
        rc=0
        wait "$pid" || rc=$?
        forget_pid "$pid"
        if [[ "$rc" != 0 ]]; then
            R[$b,$w,failed]=$(perf_error "$log")
            log "$b: workload $w FAILED: ${R[$b,$w,failed]}"
            continue
        fi
        after=$(cpu_ticks_sum "${BROKER_PIDS[@]}")
        busy1=$(machine_busy_ticks)
        t1=$(date +%s%N)
        received=$(json_field "$out" received)
        client=$(json_field "$out" client_cpu_s)
        R[$b,$w,bg]=$(other_pct "$((busy1 - busy0))" "$((after - before))" "$client" "$((t1 - t0))")
        if [[ "${R[$b,$w,bg]}" -gt 10 ]]; then
            log "$b: $w: WARNING: other processes used ${R[$b,$w,bg]}% of the machine's CPU during this workload: numbers are disturbed"
        fi
        R[$b,$w,pub]=$(json_field "$out" producer_rate)
        R[$b,$w,cons]=$(json_field "$out" consumer_rate)
        R[$b,$w,p50]=$(json_field "$out" latency_p50_us)
        R[$b,$w,p99]=$(json_field "$out" latency_p99_us)
        R[$b,$w,cpu]=$(cpu_us_per_msg "$((after - before))" "$received")
        log "$b: $w: pub ${R[$b,$w,pub]} msg/s, cons ${R[$b,$w,cons]} msg/s, p50 ${R[$b,$w,p50]} µs, p99 ${R[$b,$w,p99]} µs, CPU ${R[$b,$w,cpu]} µs/msg"
    done
    R[$b,rss_after]=$(rss_kib_sum "${BROKER_PIDS[@]}")
}

# ---------------------------------------------------------------------------------------
bench_warrenmq() {
    local n p t0 pid
    for n in warrenmq-server warrenctl; do
        if [[ ! -x "$TARGET_DIR/release/$n" ]]; then
            log "WarrenMQ: skipped: no $TARGET_DIR/release/$n"
            R[warrenmq,skipped]="no $n binary"
            return 0
        fi
    done
    for p in $WARREN_AMQP_BASE $WARREN_HTTP_BASE $WARREN_CLUSTER_BASE; do
        for n in 0 1 2; do
            if port_open $((p + n)); then
                log "WarrenMQ: skipped: port $((p + n)) is already in use"
                R[warrenmq,skipped]="port $((p + n)) busy"
                return 0
            fi
        done
    done
    for n in 1 2 3; do
        URI[warrenmq,$n]="amqp://$(bench_login)@127.0.0.1:$((WARREN_AMQP_BASE + n - 1))/%2F"
        NODE[warrenmq,$n]="warren@node$n"
    done
    mkdir -p "$WARREN_DIR"
    log "WarrenMQ: starting a three-node cluster (AMQP $WARREN_AMQP_BASE-$((WARREN_AMQP_BASE + 2))) with scripts/start-cluster.sh"
    WARREN_STARTED=1
    t0=$(now_ms)
    if ! warren_env bash "$ROOT/scripts/start-cluster.sh" >"$WORKDIR/warren-start.log" 2>&1 </dev/null; then
        log "WarrenMQ: skipped: scripts/start-cluster.sh failed:"
        tail -n 5 "$WORKDIR/warren-start.log" | sed 's/^/[bench-cluster]   /' >&2
        R[warrenmq,skipped]="cluster did not start"
        stop_warren_cluster
        return 0
    fi
    R[warrenmq,start_ms]=$(($(now_ms) - t0))
    # shellcheck disable=SC2016
    if ! bench_add_user warren_env bash -c 'source "$1/scripts/cluster-env.sh" && shift && ctl 1 "$@"' _ "$ROOT"; then
        log "WarrenMQ: skipped: cannot create the benchmark user"
        R[warrenmq,skipped]="no benchmark user"
        stop_warren_cluster
        return 0
    fi
    BROKER_PIDS=()
    for n in 1 2 3; do
        pid=$(cat "$WARREN_DIR/node$n.pid")
        BROKER_PIDS+=("$pid")
    done
    sleep 2
    R[warrenmq,rss_idle]=$(rss_kib_sum "${BROKER_PIDS[@]}")
    log "WarrenMQ: cluster running after ${R[warrenmq,start_ms]} ms (PIDs ${BROKER_PIDS[*]}), idle RSS ${R[warrenmq,rss_idle]} KiB"
    run_workloads warrenmq
    stop_warren_cluster
}

RABBIT_DIR=$WORKDIR/rabbit
# rabbitmqctl (the real one: /usr/sbin/rabbitmqctl would switch to the rabbitmq user and
# lose this environment) against this script's nodes.
rctl() {
    env HOME="$RABBIT_DIR/home" ERL_EPMD_PORT="$EPMD_PORT" \
        RABBITMQ_CONF_ENV_FILE="$RABBIT_DIR/rabbitmq-env.conf" \
        "$RABBIT_LIB/rabbitmqctl" "$@"
}

bench_rabbitmq() {
    local server=$RABBIT_LIB/rabbitmq-server n i p epmd_pid="" t0 beam
    local -a script_pids=() ports=()
    if [[ ! -x "$server" || ! -x "$RABBIT_LIB/rabbitmqctl" ]]; then
        log "RabbitMQ: skipped: rabbitmq-server is not installed"
        R[rabbitmq,skipped]="not installed"
        return 0
    fi
    for n in 1 2 3; do
        p=$((RABBIT_BASE + n - 1))
        for i in $p $((p + 20000)); do
            if port_open "$i"; then
                log "RabbitMQ: skipped: port $i is already in use"
                R[rabbitmq,skipped]="port $i busy"
                return 0
            fi
        done
        ports+=("$p")
        URI[rabbitmq,$n]="amqp://$(bench_login)@127.0.0.1:$p/%2F"
        NODE[rabbitmq,$n]="rabbit$n@localhost"
    done
    mkdir -p "$RABBIT_DIR/home"
    # One Erlang cookie for the three nodes and rabbitmqctl, through HOME.
    head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n' | tr 'a-f' 'A-F' >"$RABBIT_DIR/home/.erlang.cookie"
    chmod 400 "$RABBIT_DIR/home/.erlang.cookie"
    echo "[]." >"$RABBIT_DIR/enabled_plugins"
    : >"$RABBIT_DIR/rabbitmq-env.conf"
    if port_open "$EPMD_PORT"; then
        log "RabbitMQ: using the epmd already listening on port $EPMD_PORT"
    else
        epmd -port "$EPMD_PORT" >"$RABBIT_DIR/epmd.log" 2>&1 </dev/null &
        epmd_pid=$!
        STARTED_PIDS+=("$epmd_pid")
        for ((i = 0; i < 200; i++)); do port_open "$EPMD_PORT" && break; sleep 0.025; done
    fi
    log "RabbitMQ: starting three $(dpkg-query -W -f '${Version}' rabbitmq-server 2>/dev/null || echo '?') nodes (AMQP ${ports[*]})"
    t0=$(now_ms)
    for n in 1 2 3; do
        p=${ports[n - 1]}
        mkdir -p "$RABBIT_DIR/node$n/mnesia" "$RABBIT_DIR/node$n/log"
        echo "listeners.tcp.default = $p" >"$RABBIT_DIR/node$n/rabbitmq.conf"
        env HOME="$RABBIT_DIR/home" ERL_EPMD_PORT="$EPMD_PORT" \
            RABBITMQ_CONF_ENV_FILE="$RABBIT_DIR/rabbitmq-env.conf" \
            RABBITMQ_CONFIG_FILE="$RABBIT_DIR/node$n/rabbitmq.conf" \
            RABBITMQ_ENABLED_PLUGINS_FILE="$RABBIT_DIR/enabled_plugins" \
            RABBITMQ_MNESIA_BASE="$RABBIT_DIR/node$n/mnesia" \
            RABBITMQ_LOG_BASE="$RABBIT_DIR/node$n/log" \
            RABBITMQ_NODENAME="${NODE[rabbitmq,$n]}" \
            RABBITMQ_NODE_PORT="$p" \
            RABBITMQ_DIST_PORT=$((p + 20000)) \
            "$server" >"$RABBIT_DIR/node$n/stdout.log" 2>&1 </dev/null &
        script_pids+=($!)
        STARTED_PIDS+=($!)
    done
    rabbit_stop() {
        local q
        for ((q = ${#script_pids[@]} - 1; q >= 0; q--)); do
            # SIGTERM to the start script stops the VM gracefully and waits for it.
            stop_pid "${script_pids[q]}" 30
            forget_pid "${script_pids[q]}"
        done
        for q in "${BROKER_PIDS[@]}"; do
            if kill -0 "$q" 2>/dev/null; then
                log "RabbitMQ: beam PID $q still running after its start script ended: SIGKILL"
                kill -KILL "$q" 2>/dev/null || true
            fi
        done
        BROKER_PIDS=()
        if [[ -n "$epmd_pid" ]]; then
            stop_pid "$epmd_pid"
            forget_pid "$epmd_pid"
        fi
    }
    rabbit_fail() {
        log "RabbitMQ: skipped: $1"
        for n in 1 2 3; do tail -n 3 "$RABBIT_DIR/node$n/stdout.log" | sed "s/^/[bench-cluster]   node$n: /" >&2; done
        R[rabbitmq,skipped]=$1
        rabbit_stop
    }
    BROKER_PIDS=()
    if ! wait_ports "$RABBIT_START_TIMEOUT" "${ports[@]}"; then
        rabbit_fail "not accepting AMQP on ${ports[*]} within ${RABBIT_START_TIMEOUT}s"
        return 0
    fi
    # The Erlang VMs are the beam.smp children of the start scripts.
    for n in 1 2 3; do
        beam=$(ps -o pid=,comm= --ppid "${script_pids[n - 1]}" | awk '$2 ~ /^beam/ { print $1; exit }')
        if [[ -z "$beam" ]]; then
            rabbit_fail "cannot find the beam.smp child of PID ${script_pids[n - 1]}"
            return 0
        fi
        BROKER_PIDS+=("$beam")
        RABBIT_BEAMS+=("$beam")
    done
    for n in 2 3; do
        log "RabbitMQ: joining ${NODE[rabbitmq,$n]} to ${NODE[rabbitmq,1]}"
        if ! { rctl -n "${NODE[rabbitmq,$n]}" stop_app &&
            rctl -n "${NODE[rabbitmq,$n]}" join_cluster "${NODE[rabbitmq,1]}" &&
            rctl -n "${NODE[rabbitmq,$n]}" start_app; } >>"$RABBIT_DIR/cluster.log" 2>&1; then
            tail -n 5 "$RABBIT_DIR/cluster.log" | sed 's/^/[bench-cluster]   /' >&2
            rabbit_fail "join_cluster failed"
            return 0
        fi
    done
    if ! wait_ports 60 "${ports[@]}"; then
        rabbit_fail "not accepting AMQP on ${ports[*]} after joining"
        return 0
    fi
    n=$(rctl -n "${NODE[rabbitmq,1]}" --formatter json cluster_status 2>>"$RABBIT_DIR/cluster.log" |
        python3 -c 'import json, sys; print(len(json.load(sys.stdin)["running_nodes"]))' || echo 0)
    if [[ "$n" != 3 ]]; then
        rabbit_fail "cluster_status shows $n running nodes, not 3"
        return 0
    fi
    R[rabbitmq,start_ms]=$(($(now_ms) - t0))
    if ! bench_add_user rctl -n "${NODE[rabbitmq,1]}"; then
        rabbit_fail "cannot create the benchmark user"
        return 0
    fi
    sleep 2
    R[rabbitmq,rss_idle]=$(rss_kib_sum "${BROKER_PIDS[@]}")
    log "RabbitMQ: cluster of 3 running after ${R[rabbitmq,start_ms]} ms (beam PIDs ${BROKER_PIDS[*]}), idle RSS ${R[rabbitmq,rss_idle]} KiB"
    run_workloads rabbitmq
    rabbit_stop
}

# ---------------------------------------------------------------------------------------
print_table() {
    local w b label v r
    ratio() { # ratio A B: A/B with 2 decimals, n/a when either is missing
        awk -v a="$1" -v b="$2" 'BEGIN { if (a ~ /^[0-9.]+$/ && b ~ /^[0-9.]+$/ && b > 0) printf "%.2f", a / b; else print "n/a" }'
    }
    num0() { awk -v a="$1" 'BEGIN { if (a ~ /^[0-9.]+$/) printf "%.0f", a; else print (a == "" ? "-" : a) }'; }
    echo
    echo "WarrenMQ vs RabbitMQ, three-node clusters on one machine ($(nproc) cores): ${BENCH_SECONDS}s per workload,"
    echo "quorum queues, 16 B persistent bodies, confirm window 100, manual acks, placement: $BENCH_PLACEMENT"
    echo "clients log in as $(bench_login | cut -d: -f1)$([[ "$BENCH_USER" == regex ]] && echo ", permissions $BENCH_USER_RE")"
    printf '%-40s %-9s %10s %10s %9s %9s %11s %8s %10s\n' workload broker "pub msg/s" "cons msg/s" "p50 µs" "p99 µs" "CPU µs/msg" "other %" placement
    for w in "${WORKLOADS[@]}"; do
        label=${WORKLOAD_TITLE[$w]}
        for b in warrenmq rabbitmq; do
            v=${BROKER_LABEL[$b]}
            if [[ -n "${R[$b,skipped]:-}" ]]; then
                printf '%-40s %-9s %s\n' "$label" "$v" "skipped: ${R[$b,skipped]}"
            elif [[ -n "${R[$b,$w,failed]:-}" ]]; then
                printf '%-40s %-9s %s\n' "$label" "$v" "FAILED: ${R[$b,$w,failed]}"
            else
                printf '%-40s %-9s %10s %10s %9s %9s %11s %8s %10s\n' "$label" "$v" \
                    "$(num0 "${R[$b,$w,pub]:-}")" "$(num0 "${R[$b,$w,cons]:-}")" \
                    "$(num0 "${R[$b,$w,p50]:-}")" "$(num0 "${R[$b,$w,p99]:-}")" \
                    "${R[$b,$w,cpu]:--}" "${R[$b,$w,bg]:--}" "${R[$b,$w,placement]:--}"
            fi
            label=""
        done
        r=()
        for v in pub cons p50 p99 cpu; do
            r+=("$(ratio "${R[warrenmq,$w,$v]:-}" "${R[rabbitmq,$w,$v]:-}")")
        done
        printf '%-40s %-9s %10s %10s %9s %9s %11s\n' "" "W/R" "${r[@]}"
    done
    echo
    printf '%-10s %18s %18s %22s\n' broker "cluster up ms" "idle RSS MiB (3)" "RSS after runs MiB (3)"
    for b in warrenmq rabbitmq; do
        v=${BROKER_LABEL[$b]}
        if [[ -n "${R[$b,skipped]:-}" ]]; then
            printf '%-10s %s\n' "$v" "skipped: ${R[$b,skipped]}"
            continue
        fi
        printf '%-10s %18s %18s %22s\n' "$v" "${R[$b,start_ms]:--}" \
            "$(awk -v k="${R[$b,rss_idle]:-}" 'BEGIN { if (k != "") printf "%.1f", k / 1024; else print "-" }')" \
            "$(awk -v k="${R[$b,rss_after]:-}" 'BEGIN { if (k != "") printf "%.1f", k / 1024; else print "-" }')"
    done
    echo
    echo "pub msg/s = confirmed msg/s; cons msg/s = received msg/s (all producers / consumers);"
    echo "p50/p99 = end-to-end latency; CPU µs/msg = utime+stime of the three broker processes"
    echo "/ messages consumed; W/R = WarrenMQ / RabbitMQ (higher is better for msg/s, lower for"
    echo "latency and CPU). other % = CPU used by other processes during the workload, as % of"
    echo "the machine (should be ~0). placement = the queue leaders were where the workload"
    echo "puts them, with 3 members each (list_queues during a slow run before the measured one)."
    echo "cluster up ms = start of the three nodes to a formed cluster; RSS summed over the nodes."
}

# ---------------------------------------------------------------------------------------
# scripts/start-cluster.sh always runs cargo build; this script builds (or, with
# BENCH_SKIP_BUILD=1, does not) before, so a no-op `cargo` first in start-cluster.sh's
# PATH keeps it from building (or waiting for another build's lock) mid-benchmark.
mkdir -p "$WORKDIR/bin"
printf '#!/bin/sh\nexit 0\n' >"$WORKDIR/bin/cargo"
chmod +x "$WORKDIR/bin/cargo"

if [[ "${BENCH_SKIP_BUILD:-0}" != 1 ]]; then
    log "building warrenmq-perf (CARGO_TARGET_DIR=$TARGET_DIR)"
    (cd "$ROOT" && CARGO_TARGET_DIR="$TARGET_DIR" cargo build --release --quiet --bin warrenmq-perf)
    if [[ " $BENCH_BROKERS " == *" warrenmq "* ]]; then
        log "building warrenmq-server and warrenctl"
        if ! (cd "$ROOT" && CARGO_TARGET_DIR="$TARGET_DIR" cargo build --release --quiet --bin warrenmq-server --bin warrenctl); then
            log "warrenmq-server does not build: WarrenMQ will be skipped"
            R[warrenmq,skipped]="does not build"
        fi
    fi
fi
if [[ ! -x "$WARRENMQ_PERF" ]]; then
    log "no load tool at $WARRENMQ_PERF"
    exit 1
fi
PERF_HELP=$("$WARRENMQ_PERF" --help)
if [[ "$PERF_HELP" != *--declare-uri* ]]; then
    log "$WARRENMQ_PERF has no --declare-uri/--producer-uri/--consumer-uri: rebuild it"
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
