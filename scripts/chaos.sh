#!/usr/bin/env bash
# A bounded fault-injection run against a local three-node cluster: start a cluster of
# its own (temp data dir, non-default ports), declare one durable quorum queue, run a
# producer (publisher confirms) and a consumer (manual acks) on every node with
# scripts/chaos_client.py, and meanwhile inject random faults every few seconds:
#   - kill -9 of the queue's current leader, restart after a short pause
#   - kill -STOP of a random node for a few seconds, then kill -CONT
#   - kill -9 of a random non-leader node, restart after a short pause
# Then stop the faults, bring every node back, stop the producers (they wait for their
# outstanding confirms), let the consumers drain until nothing arrives for a few seconds,
# and count: published, confirmed, consumed, duplicated, lost (confirmed, never
# consumed), unexpected (consumed, never published). Exit 1 if lost > 0 or
# unexpected > 0 (2 if the run could not be made, e.g. the build failed or a node never
# came back). The last line printed is a one-line summary for an issue note.
#
# Env:
#   CHAOS_SECONDS=300          how long faults are injected
#   CHAOS_SEED=<random>        seed of the fault schedule: the same seed gives the same
#                              draws (fault kind, node, down/pause times, gaps)
#   CHAOS_LEADER_KILLS=20      at least this many leader kills when time allows: once
#                              less than 12 s per kill still to do is left, every fault
#                              is a leader kill (so which draws it overrides depends on
#                              timing)
#   CHAOS_QUEUE=chaos          the quorum queue's name
#   CHAOS_PRODUCERS_PER_NODE=1, CHAOS_CONSUMERS_PER_NODE=1
#   CHAOS_RATE=200             messages/s per producer; CHAOS_WINDOW=64 unconfirmed at most
#   CHAOS_PREFETCH=32          consumer prefetch
#   CHAOS_RECOVERY_SECONDS=60  how long the queue may go without a leader and all three
#                              members online after a fault before the run is called off
#   CHAOS_CONFIRM_WAIT=30      end: how long producers wait for outstanding confirms
#   CHAOS_DRAIN_IDLE=5         end: consumers stop after this long without a delivery...
#   CHAOS_DRAIN_MAX=120        ...or after this long in all
#   CHAOS_DIR=<mktemp -d>      work dir: client records (*.rec), client logs, faults.log,
#                              and the cluster (unless WARRENMQ_CLUSTER_DIR is set)
#   CHAOS_KEEP=0               1: keep the work dir after a passing run (always kept when
#                              the run fails)
#   WARRENMQ_AMQP_PORT_BASE=6080, WARRENMQ_HTTP_PORT_BASE=16080,
#   WARRENMQ_CLUSTER_PORT_BASE=26080, WARRENMQ_CLUSTER_DIR=$CHAOS_DIR/cluster,
#   CARGO_TARGET_DIR           as for scripts/start-cluster.sh (see scripts/cluster-env.sh)
#
# Only the PIDs in $WARRENMQ_CLUSTER_DIR/nodeN.pid (checked against their command line)
# and the client processes this script starts are ever signalled.
set -euo pipefail
SCRIPTS="$(cd "$(dirname "$0")" && pwd)"
CLIENT="$SCRIPTS/chaos_client.py"

CHAOS_SECONDS=${CHAOS_SECONDS:-300}
CHAOS_SEED=${CHAOS_SEED:-$(( $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') ))}
CHAOS_LEADER_KILLS=${CHAOS_LEADER_KILLS:-20}
CHAOS_QUEUE=${CHAOS_QUEUE:-chaos}
CHAOS_PRODUCERS_PER_NODE=${CHAOS_PRODUCERS_PER_NODE:-1}
CHAOS_CONSUMERS_PER_NODE=${CHAOS_CONSUMERS_PER_NODE:-1}
CHAOS_RATE=${CHAOS_RATE:-200}
CHAOS_WINDOW=${CHAOS_WINDOW:-64}
CHAOS_PREFETCH=${CHAOS_PREFETCH:-32}
CHAOS_RECOVERY_SECONDS=${CHAOS_RECOVERY_SECONDS:-60}
CHAOS_CONFIRM_WAIT=${CHAOS_CONFIRM_WAIT:-30}
CHAOS_DRAIN_IDLE=${CHAOS_DRAIN_IDLE:-5}
CHAOS_DRAIN_MAX=${CHAOS_DRAIN_MAX:-120}
CHAOS_KEEP=${CHAOS_KEEP:-0}
KILL_BUDGET_MS=12000 # time kept free per leader kill still to do

WORK=${CHAOS_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/warrenmq-chaos.XXXXXX")}
mkdir -p "$WORK"
WORK="$(cd "$WORK" && pwd)"
export WARRENMQ_CLUSTER_DIR=${WARRENMQ_CLUSTER_DIR:-$WORK/cluster}
export WARRENMQ_AMQP_PORT_BASE=${WARRENMQ_AMQP_PORT_BASE:-6080}
export WARRENMQ_HTTP_PORT_BASE=${WARRENMQ_HTTP_PORT_BASE:-16080}
export WARRENMQ_CLUSTER_PORT_BASE=${WARRENMQ_CLUSTER_PORT_BASE:-26080}
# shellcheck source=cluster-env.sh
source "$SCRIPTS/cluster-env.sh"

python3 -c 'import pika' 2>/dev/null || { echo "chaos: needs pika (bash scripts/install-test-deps.sh)" >&2; exit 2; }

RANDOM=$CHAOS_SEED # bash's generator: the same seed gives the same schedule of choices
NAMES=()
for n in 1 2 3; do
  NAMES+=("$(sed -n 's/^node-name *= *"\(.*\)".*/\1/p' "$REPO/cluster/node$n.toml")")
done

CLIENT_PIDS=()
PRODUCER_PIDS=()
CONSUMER_PIDS=()
PAUSED=""
LEADER_KILLS=0
NONLEADER_KILLS=0
PAUSES=0
RESTARTS=0
PROBLEMS=()
RESULT=2
STARTED_CLUSTER=0

now_ms() { NOW_MS=$(( ${EPOCHREALTIME/./} / 1000 )); }
now_ms
T0=$NOW_MS
log() {
  now_ms
  local e=$((NOW_MS - T0))
  printf '[%4d.%ds %s] %s\n' $((e / 1000)) $((e % 1000 / 100)) "$(date +%H:%M:%S)" "$*" | tee -a "$WORK/faults.log"
}
sleep_ms() { sleep "$(($1 / 1000)).$(printf '%03d' $(($1 % 1000)))"; }
problem() { PROBLEMS+=("$*"); log "PROBLEM: $*"; }

# The PID of node N if it is this cluster's warrenmq-server process, else nothing.
node_pid() {
  local f="$CLUSTER_DIR/node$1.pid" pid
  [ -f "$f" ] || return 1
  pid=$(cat "$f")
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "--data-dir $CLUSTER_DIR/node$1 " || return 1
  echo "$pid"
}
node_alive() { node_pid "$1" >/dev/null; }
node_up() { [ "$PAUSED" != "$1" ] && node_alive "$1"; }

kill9_node() {
  local n=$1 pid
  pid=$(node_pid "$n") || { problem "node $n: no process to kill"; return 1; }
  kill -KILL "$pid"
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.05; done
  problem "node $n (PID $pid) still alive 5 s after kill -9"
  return 1
}

restart_node() {
  local n=$1 t
  now_ms
  t=$NOW_MS
  if bash "$SCRIPTS/restart-node.sh" "$n" >>"$WORK/restarts.log" 2>&1; then
    RESTARTS=$((RESTARTS + 1))
    now_ms
    log "  node $n restarted (PID $(cat "$CLUSTER_DIR/node$n.pid")) in $((NOW_MS - t)) ms"
  else
    problem "node $n did not restart (restart-node.sh failed; see $WORK/restarts.log and $CLUSTER_DIR/node$n.log)"
    return 1
  fi
}

ctl_json() { # N ARGS...: warrenctl --formatter json against node N, bounded
  local n=$1
  shift
  timeout 10 "$CTL" -n "127.0.0.1:$(cluster_port "$n")" --secret-file "$SECRET" -t 5 --formatter json "$@" 2>>"$WORK/ctl.err"
}

# Sets LEADER (1..3, 0 = none known) and ONLINE (members online, as the fewest-seeing
# node says) when every running node that answers names the same leader; 1 if they
# disagree or none knows one. Never uses $RANDOM.
query_leader() {
  LEADER=0
  ONLINE=0
  local n out l o seen=0 min_online=3
  for n in 1 2 3; do
    node_up "$n" || continue
    out=$(ctl_json "$n" list_queues name leader online) || continue
    read -r l o < <(python3 "$CLIENT" leader "$CHAOS_QUEUE" "${NAMES[@]}" <<<"$out")
    [ "$l" != 0 ] || { LEADER=0; return 1; }
    if [ "$seen" = 0 ]; then
      seen=$l
    elif [ "$seen" != "$l" ]; then
      LEADER=0
      return 1
    fi
    [ "$o" -lt "$min_online" ] && min_online=$o
  done
  [ "$seen" != 0 ] || return 1
  LEADER=$seen
  ONLINE=$min_online
}

# Wait until every node runs, the queue has a leader that runs, and all three members
# are online; a problem after CHAOS_RECOVERY_SECONDS.
wait_healthy() {
  local what=$1 start
  now_ms
  start=$NOW_MS
  while :; do
    if node_up 1 && node_up 2 && node_up 3 && query_leader && [ "$ONLINE" = 3 ] && node_up "$LEADER"; then
      now_ms
      HEAL_MS=$((NOW_MS - start))
      return 0
    fi
    now_ms
    if [ $((NOW_MS - start)) -gt $((CHAOS_RECOVERY_SECONDS * 1000)) ]; then
      problem "after $what: no healthy queue within ${CHAOS_RECOVERY_SECONDS}s (leader=$LEADER online=$ONLINE, nodes alive: $(for n in 1 2 3; do node_alive $n && printf '%s ' $n; done))"
      return 1
    fi
    sleep 0.2
  done
}

check_clients() {
  local pid
  for pid in "${CLIENT_PIDS[@]}"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      problem "client PID $pid exited during the run (see $WORK/*.log)"
      return 1
    fi
  done
}

cleanup() {
  local rc=$? n pid
  trap - EXIT INT TERM
  for n in 1 2 3; do
    pid=$(node_pid "$n") && kill -CONT "$pid" 2>/dev/null || true
  done
  for pid in "${CLIENT_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${CLIENT_PIDS[@]}"; do
    for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  if [ "$STARTED_CLUSTER" = 1 ] || ls "$CLUSTER_DIR"/node*.pid >/dev/null 2>&1; then
    bash "$SCRIPTS/stop-cluster.sh" >/dev/null 2>&1 || true
  fi
  if [ "$RESULT" = 0 ] && [ "$CHAOS_KEEP" != 1 ]; then
    rm -rf "$WORK"
  else
    echo "chaos: work dir kept: $WORK (node logs: $CLUSTER_DIR/node{1,2,3}.log)"
  fi
  if [ "$rc" = 0 ]; then rc=$RESULT; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for port in $AMQP_BASE $((AMQP_BASE + 1)) $((AMQP_BASE + 2)) $HTTP_BASE $((HTTP_BASE + 1)) $((HTTP_BASE + 2)) \
  $CLUSTER_BASE $((CLUSTER_BASE + 1)) $((CLUSTER_BASE + 2)); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "chaos: port $port is in use; pick other WARRENMQ_*_PORT_BASE values" >&2
    exit 2
  fi
done

echo "chaos: seed=$CHAOS_SEED seconds=$CHAOS_SECONDS leader_kills>=$CHAOS_LEADER_KILLS work=$WORK"
echo "chaos: ports amqp $AMQP_BASE.. http $HTTP_BASE.. cluster $CLUSTER_BASE..; cluster dir $CLUSTER_DIR"
STARTED_CLUSTER=1
if ! bash "$SCRIPTS/start-cluster.sh" >"$WORK/start-cluster.log" 2>&1; then
  tail -n 30 "$WORK/start-cluster.log" >&2
  echo "chaos: start-cluster.sh failed (log: $WORK/start-cluster.log)" >&2
  exit 2
fi
now_ms
T0=$NOW_MS # the log's clock starts once the cluster runs
log "cluster up: $(tr '\n' ' ' <<<"$(cat "$CLUSTER_DIR"/node{1,2,3}.pid)")"

python3 "$CLIENT" declare --port "$AMQP_BASE" --queue "$CHAOS_QUEUE" | tee -a "$WORK/faults.log"
wait_healthy "declare" || exit 2
log "queue $CHAOS_QUEUE: leader ${NAMES[$((LEADER - 1))]}, $ONLINE members online"

ports_from() { # home port of node N first, then the others
  local n=$1 i
  local out=$((AMQP_BASE + n - 1))
  for i in 1 2; do out+=",$((AMQP_BASE + (n - 1 + i) % 3))"; done
  echo "$out"
}
for n in 1 2 3; do
  for k in $(seq 1 "$CHAOS_CONSUMERS_PER_NODE"); do
    name="c$n$k"
    python3 "$CLIENT" consume --name "$name" --ports "$(ports_from "$n")" --queue "$CHAOS_QUEUE" \
      --dir "$WORK" --prefetch "$CHAOS_PREFETCH" --drain-file "$WORK/drain" \
      --drain-idle "$CHAOS_DRAIN_IDLE" --drain-max "$CHAOS_DRAIN_MAX" >"$WORK/$name.log" 2>&1 &
    CLIENT_PIDS+=($!)
    CONSUMER_PIDS+=($!)
  done
  for k in $(seq 1 "$CHAOS_PRODUCERS_PER_NODE"); do
    name="p$n$k"
    python3 "$CLIENT" produce --name "$name" --ports "$(ports_from "$n")" --queue "$CHAOS_QUEUE" \
      --dir "$WORK" --rate "$CHAOS_RATE" --window "$CHAOS_WINDOW" --stop-file "$WORK/stop-producers" \
      --confirm-wait "$CHAOS_CONFIRM_WAIT" >"$WORK/$name.log" 2>&1 &
    CLIENT_PIDS+=($!)
    PRODUCER_PIDS+=($!)
  done
done
log "started ${#PRODUCER_PIDS[@]} producers and ${#CONSUMER_PIDS[@]} consumers (PIDs ${CLIENT_PIDS[*]})"
sleep 3
check_clients || exit 2

# --- faults ------------------------------------------------------------------------
now_ms
DEADLINE=$((NOW_MS + CHAOS_SECONDS * 1000))
FAULT_RUN_OK=1
while :; do
  now_ms
  left=$((DEADLINE - NOW_MS))
  [ "$left" -gt 0 ] || break
  need=$((CHAOS_LEADER_KILLS - LEADER_KILLS))
  r=$((RANDOM % 100))
  if [ "$need" -gt 0 ] && [ "$left" -lt $((need * KILL_BUDGET_MS)) ]; then
    kind=leader
  elif [ "$r" -lt 50 ]; then
    kind=leader
  elif [ "$r" -lt 75 ]; then
    kind=pause
  else
    kind=other
  fi
  down_ms=$((500 + RANDOM % 2500))  # kill: time before the restart
  pause_ms=$((2000 + RANDOM % 4000)) # pause: how long STOPped
  pick=$((RANDOM % 3 + 1))
  gap_ms=$((1000 + RANDOM % 3000))   # after recovery, before the next fault
  case $kind in
    leader)
      if ! query_leader && ! { sleep 1 && query_leader; }; then
        problem "no leader the nodes agree on before a leader kill"
        FAULT_RUN_OK=0
        break
      fi
      n=$LEADER
      log "fault: kill -9 leader node$n (PID $(node_pid "$n")), restart in ${down_ms} ms"
      kill9_node "$n" || { FAULT_RUN_OK=0; break; }
      LEADER_KILLS=$((LEADER_KILLS + 1))
      sleep_ms "$down_ms"
      restart_node "$n" || { FAULT_RUN_OK=0; break; }
      ;;
    other)
      if ! query_leader && ! { sleep 1 && query_leader; }; then
        problem "no leader the nodes agree on before a non-leader kill"
        FAULT_RUN_OK=0
        break
      fi
      n=$pick
      [ "$n" = "$LEADER" ] && n=$((n % 3 + 1))
      log "fault: kill -9 non-leader node$n (PID $(node_pid "$n"); leader node$LEADER), restart in ${down_ms} ms"
      kill9_node "$n" || { FAULT_RUN_OK=0; break; }
      NONLEADER_KILLS=$((NONLEADER_KILLS + 1))
      sleep_ms "$down_ms"
      restart_node "$n" || { FAULT_RUN_OK=0; break; }
      ;;
    pause)
      n=$pick
      pid=$(node_pid "$n") || { problem "node $n: no process to pause"; FAULT_RUN_OK=0; break; }
      log "fault: kill -STOP node$n (PID $pid) for ${pause_ms} ms"
      PAUSED=$n
      kill -STOP "$pid"
      PAUSES=$((PAUSES + 1))
      sleep_ms "$pause_ms"
      kill -CONT "$pid"
      PAUSED=""
      ;;
  esac
  if ! wait_healthy "$kind fault on node$n"; then
    FAULT_RUN_OK=0
    break
  fi
  log "  healthy after ${HEAL_MS} ms: leader node$LEADER"
  check_clients || { FAULT_RUN_OK=0; break; }
  now_ms
  left=$((DEADLINE - NOW_MS))
  [ "$left" -gt 0 ] || break
  [ "$gap_ms" -gt "$left" ] && gap_ms=$left
  sleep_ms "$gap_ms"
done
log "faults over: leader_kills=$LEADER_KILLS nonleader_kills=$NONLEADER_KILLS pauses=$PAUSES restarts=$RESTARTS"
if [ "$LEADER_KILLS" -lt "$CHAOS_LEADER_KILLS" ] && [ "$FAULT_RUN_OK" = 1 ]; then
  log "note: only $LEADER_KILLS of $CHAOS_LEADER_KILLS leader kills fitted in ${CHAOS_SECONDS}s"
fi

# --- end: everything back, stop producers, drain ---------------------------------------
for n in 1 2 3; do
  pid=$(node_pid "$n") && kill -CONT "$pid" 2>/dev/null || true
done
PAUSED=""
for n in 1 2 3; do
  if ! node_alive "$n"; then
    log "end: node $n is down; restarting it"
    restart_node "$n" || true
  fi
done
HEALTHY_AT_END=1
wait_healthy "the end of the faults" || HEALTHY_AT_END=0
[ "$HEALTHY_AT_END" = 1 ] && log "end: healthy, leader node$LEADER"

touch "$WORK/stop-producers"
log "end: producers stop publishing and wait up to ${CHAOS_CONFIRM_WAIT}s for their confirms"
wait_pids() { # SECONDS PID...: wait until they exit; 1 if some still run after SECONDS
  local limit=$1 pid
  shift
  now_ms
  local until=$((NOW_MS + limit * 1000))
  for pid in "$@"; do
    while kill -0 "$pid" 2>/dev/null; do
      now_ms
      [ "$NOW_MS" -lt "$until" ] || return 1
      sleep 0.2
    done
  done
}
if ! wait_pids $((CHAOS_CONFIRM_WAIT + 20)) "${PRODUCER_PIDS[@]}"; then
  problem "a producer did not finish within $((CHAOS_CONFIRM_WAIT + 20))s; terminating"
  for pid in "${PRODUCER_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait_pids 5 "${PRODUCER_PIDS[@]}" || true
fi
touch "$WORK/drain"
log "end: consumers drain (stop after ${CHAOS_DRAIN_IDLE}s without a delivery, ${CHAOS_DRAIN_MAX}s at most)"
if ! wait_pids $((CHAOS_DRAIN_MAX + 20)) "${CONSUMER_PIDS[@]}"; then
  problem "a consumer did not finish within $((CHAOS_DRAIN_MAX + 20))s; terminating"
  for pid in "${CONSUMER_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait_pids 5 "${CONSUMER_PIDS[@]}" || true
fi
for pid in "${CLIENT_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
LEFT="?"
for n in 1 2 3; do
  node_up "$n" || continue
  out=$(ctl_json "$n" list_queues name messages) || continue
  LEFT=$(python3 -c 'import json,sys; print(next((r["messages"] for r in json.load(sys.stdin) if r["name"] == sys.argv[1]), "?"))' "$CHAOS_QUEUE" <<<"$out") && break
done
log "end: messages left in $CHAOS_QUEUE: $LEFT"

echo
echo "=== chaos result (work dir $WORK) ==="
EXTRA="problems=${#PROBLEMS[@]}"
set +e
python3 "$CLIENT" report --dir "$WORK" --seconds "$CHAOS_SECONDS" --seed "$CHAOS_SEED" \
  --leader-kills "$LEADER_KILLS" --nonleader-kills "$NONLEADER_KILLS" --pauses "$PAUSES" \
  --restarts "$RESTARTS" --left "$LEFT" --extra "$EXTRA" | tee "$WORK/report.txt"
REPORT_RC=${PIPESTATUS[0]}
set -e
for p in "${PROBLEMS[@]}"; do echo "problem: $p"; done
if [ "$REPORT_RC" != 0 ]; then
  RESULT=1
elif [ "${#PROBLEMS[@]}" -gt 0 ]; then
  RESULT=2
else
  RESULT=0
fi
exit "$RESULT"
