#!/usr/bin/env bash
# RabbitMQ's six getting-started tutorials (hello, work queues, publish/subscribe, routing,
# topics, RPC) as a newcomer runs them, with four unmodified clients: pika (tutorials.py),
# amqplib (tutorials.js), the Java client (Tutorials.java, through java.sh) and amqp091-go
# (go/, through go.sh). Every client runs all six scenarios for both queue kinds (classic:
# the queues the tutorials used to declare; quorum: their current form), first against one
# fresh node (consumers and producers on it), then against a fresh three-node cluster
# (consumers on node 2, producers on node 1). The client contract is in tutorials.py's
# docstring.
#
#   bash scripts/tutorials/run.sh [CLIENT...]          CLIENT: pika amqplib java go (default all)
#   WARRENMQ_TUTORIAL_CLIENTS="pika go" bash scripts/tutorials/run.sh
#
# Needs the release binaries (built when missing) and the clients and toolchains that
# scripts/install-test-deps.sh installs; a missing one fails the run. Nodes listen on free
# loopback ports with their data in a temp dir; everything started here is stopped on exit,
# by PID. Exits 0 only if every scenario passed. Run by scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$(pwd)
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
SERVER_BIN="$TARGET/release/warrenmq-server"
[ -x "$SERVER_BIN" ] && [ -x "$TARGET/release/warrenctl" ] || cargo build --release --bins
NODE_DEPS=${WARRENMQ_NODE_DEPS:-$HOME/.cache/warrenmq-interop}
KINDS=(classic quorum)
SCENARIOS_PER_RUN=6
CLIENT_TIMEOUT=150

ALL_CLIENTS=(pika amqplib java go)
if [ $# -gt 0 ]; then
  CLIENTS=("$@")
elif [ -n "${WARRENMQ_TUTORIAL_CLIENTS:-}" ]; then
  read -r -a CLIENTS <<<"${WARRENMQ_TUTORIAL_CLIENTS//,/ }"
else
  CLIENTS=("${ALL_CLIENTS[@]}")
fi

# Fail now, before any node starts, if a client cannot run here.
missing() { echo "tutorials: $1 (scripts/install-test-deps.sh installs the clients)" >&2; exit 1; }
for client in "${CLIENTS[@]}"; do
  case $client in
    pika) python3 -c 'import pika' 2>/dev/null || missing "pika: python3 cannot import pika" ;;
    amqplib)
      command -v node >/dev/null 2>&1 || missing "amqplib: node is not installed"
      [ -d "$NODE_DEPS/node_modules/amqplib" ] || missing "amqplib: $NODE_DEPS/node_modules/amqplib is missing" ;;
    java)
      [ -f scripts/tutorials/java.sh ] || missing "java: scripts/tutorials/java.sh is missing"
      command -v java >/dev/null 2>&1 && command -v javac >/dev/null 2>&1 || missing "java: no java/javac on PATH" ;;
    go)
      [ -f scripts/tutorials/go.sh ] || missing "go: scripts/tutorials/go.sh is missing"
      command -v go >/dev/null 2>&1 || missing "go: no go on PATH" ;;
    *) echo "tutorials: unknown client '$client' (choose from: ${ALL_CLIENTS[*]})" >&2; exit 2 ;;
  esac
done

# TERM a node started here, KILL it if it is still there after 10 s, and reap it.
stop_pid() {
  local pid=$1
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

TMP=$(mktemp -d "${TMPDIR:-/tmp}/warrenmq-tutorials.XXXXXX")
PIDS=()      # every node process started here
LOGS=()      # the logs of the nodes of the current topology
CLIENT_PID=  # the running client's `timeout`, which relays a TERM to the client
TAIL_PID=    # the `tail` showing that client's output
cleanup() {
  local pid
  for pid in $CLIENT_PID $TAIL_PID; do kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

# Three bases, each the first of three free consecutive ports, not overlapping each other.
free_bases() {
  python3 - <<'PY'
import random, socket
bases = []
while len(bases) < 3:
    base = random.randrange(20000, 60000)
    if any(abs(base - b) < 3 for b in bases):
        continue
    socks = []
    try:
        for p in range(base, base + 3):
            s = socket.socket(); s.bind(("127.0.0.1", p)); socks.append(s)
        bases.append(base)
    except OSError:
        pass
    finally:
        for s in socks: s.close()
print(*bases)
PY
}

# Wait up to 20 s until a node accepts AMQP connections on PORT; fail if its PID exits.
wait_amqp() {
  local port=$1 pid=$2
  for _ in $(seq 1 200); do
    kill -0 "$pid" 2>/dev/null || return 1
    python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

node_logs() {
  local log
  for log in "${LOGS[@]}"; do
    echo "---- last 40 lines of $(basename "$log")"
    tail -n 40 "$log" 2>/dev/null | sed 's/\x1b\[[0-9;]*m//g' || true
  done
}

OK=0
FAILED=()

# Run one client for one kind: run_client CLIENT KIND TOPOLOGY CONSUMER_URL PRODUCER_URL.
run_client() {
  local client=$1 kind=$2 topology=$3 consumer_url=$4 producer_url=$5
  local out="$TMP/$client-$kind-${topology// /-}.out" rc ok why
  local -a cmd
  case $client in
    pika) cmd=(python3 scripts/tutorials/tutorials.py) ;;
    amqplib) cmd=(env "NODE_PATH=$NODE_DEPS/node_modules" node scripts/tutorials/tutorials.js) ;;
    java) cmd=(bash scripts/tutorials/java.sh) ;;
    go) cmd=(bash scripts/tutorials/go.sh) ;;
  esac
  # In the background so that a trapped Ctrl-C or TERM interrupts `wait` at once (a
  # foreground child would delay the trap until it ends); tail shows the lines as they come.
  : >"$out"
  timeout "$CLIENT_TIMEOUT" "${cmd[@]}" "$consumer_url" "$producer_url" "$kind" >"$out" 2>&1 &
  CLIENT_PID=$!
  tail -s 0.1 -n +1 -f --pid="$CLIENT_PID" "$out" &
  TAIL_PID=$!
  rc=0
  wait "$CLIENT_PID" || rc=$?
  CLIENT_PID=
  wait "$TAIL_PID" || true
  TAIL_PID=
  ok=$(grep -c "^tutorial $client $kind [a-z]*: ok (" "$out" || true)
  OK=$((OK + ok))
  [ "$rc" = 0 ] && [ "$ok" = "$SCENARIOS_PER_RUN" ] && return 0
  case $rc in
    0) why="exit 0 but $ok of $SCENARIOS_PER_RUN scenarios reported ok" ;;
    124) why="the client run timed out after $CLIENT_TIMEOUT s" ;;
    2) why="exit 2: usage error or missing toolchain (scripts/install-test-deps.sh installs the clients)" ;;
    *) why="exit $rc" ;;
  esac
  echo "tutorials: $client $kind on the $topology FAILED: $why"
  FAILED+=("$client/$kind/${topology// /-}")
  node_logs
}

# ---- a single node ---------------------------------------------------------------------
mkdir -p "$TMP/single"
PORT=$(free_port)
"$SERVER_BIN" --data-dir "$TMP/single/data" --amqp-port "$PORT" --http-port "$(free_port)" \
  --cluster-port "$(free_port)" >"$TMP/single/node.log" 2>&1 &
SINGLE_PID=$!
PIDS+=("$SINGLE_PID")
LOGS=("$TMP/single/node.log")
wait_amqp "$PORT" "$SINGLE_PID" || { echo "tutorials: the single node did not start"; node_logs; exit 1; }
URL="amqp://guest:guest@127.0.0.1:$PORT/%2F"
echo "== tutorials on a single node ($URL)"
for client in "${CLIENTS[@]}"; do
  for kind in "${KINDS[@]}"; do run_client "$client" "$kind" "single node" "$URL" "$URL"; done
done
stop_pid "$SINGLE_PID"
PIDS=()  # reaped: its PID may be reused, so cleanup must not signal it again

# ---- a three-node cluster (as scripts/start-cluster.sh forms it, without its build step) -
export WARRENMQ_CLUSTER_DIR="$TMP/cluster"
export WARRENMQ_AMQP_PORT_BASE WARRENMQ_HTTP_PORT_BASE WARRENMQ_CLUSTER_PORT_BASE
read -r WARRENMQ_AMQP_PORT_BASE WARRENMQ_HTTP_PORT_BASE WARRENMQ_CLUSTER_PORT_BASE < <(free_bases)
source scripts/cluster-env.sh
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$SECRET"
chmod 600 "$SECRET"
LOGS=()
for n in 1 2 3; do
  start_node "$n"
  PIDS+=("$(cat "$CLUSTER_DIR/node$n.pid")")
  LOGS+=("$CLUSTER_DIR/node$n.log")
done
cluster_failed() { echo "tutorials: the three-node cluster did not form: $1"; node_logs; exit 1; }
for n in 1 2 3; do ctl "$n" -t 60 await_startup >/dev/null || cluster_failed "node $n did not start"; done
for n in 2 3; do
  { ctl "$n" stop_app && ctl "$n" join_cluster "127.0.0.1:$(cluster_port 1)" && ctl "$n" start_app; } >/dev/null \
    || cluster_failed "node $n did not join node 1"
done
running=0
for _ in $(seq 1 100); do
  running=$(ctl 1 --formatter json cluster_status \
    | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["running_nodes"]))') || running=0
  [ "$running" = 3 ] && break
  sleep 0.2
done
[ "$running" = 3 ] || cluster_failed "node 1 sees $running of 3 nodes running"
PRODUCER_URL="amqp://guest:guest@127.0.0.1:$AMQP_BASE/%2F"
CONSUMER_URL="amqp://guest:guest@127.0.0.1:$((AMQP_BASE + 1))/%2F"
echo "== tutorials on a three-node cluster (consumers on node 2 $CONSUMER_URL, producers on node 1 $PRODUCER_URL)"
for client in "${CLIENTS[@]}"; do
  for kind in "${KINDS[@]}"; do run_client "$client" "$kind" "cluster" "$CONSUMER_URL" "$PRODUCER_URL"; done
done

n_clients=${#CLIENTS[@]}
shape="$n_clients client$([ "$n_clients" = 1 ] || echo s) x ${#KINDS[@]} kinds x single node + cluster"
if [ ${#FAILED[@]} -gt 0 ]; then
  echo "tutorials: FAILED ${FAILED[*]} ($OK scenarios ok; $shape)"
  exit 1
fi
echo "tutorials: $OK scenarios ok ($shape)"
