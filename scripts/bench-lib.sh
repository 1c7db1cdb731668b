# Shared by the benchmark scripts (bench.sh, bench-cluster.sh, bench-idle.sh,
# bench-management.sh): process control limited to PIDs the script started, the work
# dir's removal, and /proc readings. Source it after defining `log`, `STARTED_PIDS` and
# `WORKDIR`.

CLK_TCK=$(getconf CLK_TCK)

# stop_pid PID [SECONDS]: SIGTERM, wait up to SECONDS (default 15), then SIGKILL.
stop_pid() {
    local pid=$1 limit=${2:-15} i
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < limit * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "PID $pid did not stop within ${limit}s: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

# stop_started: stop every PID in STARTED_PIDS, the last started first.
stop_started() {
    local i
    for ((i = ${#STARTED_PIDS[@]} - 1; i >= 0; i--)); do
        stop_pid "${STARTED_PIDS[i]}" 30
    done
    STARTED_PIDS=()
}

# drop_workdir: remove $WORKDIR, or keep it (and say where) with BENCH_KEEP=1.
drop_workdir() {
    if [[ "${BENCH_KEEP:-0}" == 1 ]]; then
        log "work dir kept: $WORKDIR"
    else
        rm -rf "$WORKDIR"
    fi
}

# forget_pid PID: drop PID from STARTED_PIDS (it has ended).
forget_pid() {
    local pid=$1 kept=() p
    for p in "${STARTED_PIDS[@]}"; do [[ "$p" == "$pid" ]] || kept+=("$p"); done
    STARTED_PIDS=("${kept[@]+"${kept[@]}"}")
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# CPU time (user + system) of PID in clock ticks.
cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
# Sum of cpu_ticks over PIDs.
cpu_ticks_sum() {
    local t=0 p
    for p in "$@"; do t=$((t + $(cpu_ticks "$p"))); done
    echo "$t"
}
# Busy CPU time of the whole machine in clock ticks (all cores; /proc/stat).
machine_busy_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat; }
# Resident set size of PID in KiB.
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
# Sum of rss_kib over PIDs.
rss_kib_sum() {
    local t=0 p
    for p in "$@"; do t=$((t + $(rss_kib "$p"))); done
    echo "$t"
}

# json_field FILE KEY: the value of KEY in warrenmq-perf's --json output.
json_field() { grep -o "\"$2\":[^,}]*" "$1" | head -n1 | cut -d: -f2; }

# other_pct BUSY_TICKS BROKER_TICKS CLIENT_CPU_S NANOS: CPU used by anything but the
# brokers and the load tool during a run of NANOS ns, as % of the whole machine.
other_pct() {
    awk -v busy="$1" -v b="$2" -v c="${3:-0}" -v hz="$CLK_TCK" -v ns="$4" -v n="$(nproc)" \
        'BEGIN { o = (busy - b - (c == "null" ? 0 : c) * hz) / (ns / 1e9 * hz * n) * 100;
                 printf "%.0f", (o < 0 ? 0 : o) }'
}

# cpu_us_per_msg TICKS MESSAGES: broker CPU microseconds per message.
cpu_us_per_msg() {
    awk -v t="$1" -v hz="$CLK_TCK" -v n="$2" \
        'BEGIN { if (n > 0) printf "%.1f", t / hz * 1e6 / n; else print "n/a" }'
}

# The clients' login. BENCH_USER=guest (the default) logs in as guest; BENCH_USER=regex
# as bench-user, created on each broker before its workloads, whose configure, write and
# read permissions in / are all the regex BENCH_USER_RE: every declare, publish and
# consume is then checked against a regex, which must not cost the ratios.
BENCH_USER=${BENCH_USER:-guest}
BENCH_USER_RE='^(bench-.*|amq\.default)$'
case "$BENCH_USER" in
guest | regex) ;;
*)
    log "BENCH_USER must be guest or regex, not '$BENCH_USER'"
    exit 64
    ;;
esac

# bench_login: USER:PASSWORD for the clients' URIs.
bench_login() {
    if [[ "$BENCH_USER" == regex ]]; then echo bench-user:bench-pass; else echo guest:guest; fi
}

# bench_add_user CTL [ARGS...]: with BENCH_USER=regex, create bench-user with CTL (a
# warrenctl or rabbitmqctl command line that reaches the broker under test).
bench_add_user() {
    [[ "$BENCH_USER" == regex ]] || return 0
    "$@" add_user bench-user bench-pass >/dev/null &&
        "$@" set_permissions -p / bench-user "$BENCH_USER_RE" "$BENCH_USER_RE" "$BENCH_USER_RE" >/dev/null
}
