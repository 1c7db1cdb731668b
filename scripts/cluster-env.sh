# Shared by start-cluster.sh, stop-cluster.sh and restart-node.sh: where the local
# three-node cluster lives and which ports it uses. Source it; override with env:
#   WARRENMQ_CLUSTER_DIR        data root (default: ./cluster-data), holds nodeN/, nodeN.pid,
#                               nodeN.log and the shared cluster_secret
#   WARRENMQ_AMQP_PORT_BASE     node 1's AMQP port (default 5672); nodes 2, 3 add 1, 2
#   WARRENMQ_HTTP_PORT_BASE     node 1's HTTP port (default 15672)
#   WARRENMQ_CLUSTER_PORT_BASE  node 1's cluster port (default 25672)
#   CARGO_TARGET_DIR            where the release binaries are (default: ./target)
#   WARRENMQ_WORKER_THREADS     runtime threads per node (default: a third of the cores, at
#                               least 1: the three nodes share this machine)
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CLUSTER_DIR="${WARRENMQ_CLUSTER_DIR:-$REPO/cluster-data}"
mkdir -p "$CLUSTER_DIR"
CLUSTER_DIR="$(cd "$CLUSTER_DIR" && pwd)"
AMQP_BASE="${WARRENMQ_AMQP_PORT_BASE:-5672}"
HTTP_BASE="${WARRENMQ_HTTP_PORT_BASE:-15672}"
PROMETHEUS_BASE="${WARRENMQ_PROMETHEUS_PORT_BASE:-$((HTTP_BASE + 20))}"
CLUSTER_BASE="${WARRENMQ_CLUSTER_PORT_BASE:-25672}"
TARGET="${CARGO_TARGET_DIR:-$REPO/target}"
SERVER="$TARGET/release/warrenmq-server"
CTL="$TARGET/release/warrenctl"
SECRET="$CLUSTER_DIR/cluster_secret"
export WARRENMQ_WORKER_THREADS="${WARRENMQ_WORKER_THREADS:-$(( $(nproc) / 3 > 0 ? $(nproc) / 3 : 1 ))}"

# The cluster port of node N (1..3).
cluster_port() { echo $((CLUSTER_BASE + $1 - 1)); }

# Start node N (1..3) in the background from cluster/nodeN.toml, with this cluster's
# ports, data dir and secret; record its PID.
start_node() {
  local n=$1
  "$SERVER" --config "$REPO/cluster/node$n.toml" \
    --data-dir "$CLUSTER_DIR/node$n" \
    --amqp-port $((AMQP_BASE + n - 1)) \
    --http-port $((HTTP_BASE + n - 1)) \
    --prometheus-port $((PROMETHEUS_BASE + n - 1)) \
    --cluster-port "$(cluster_port "$n")" \
    --secret-file "$SECRET" \
    >>"$CLUSTER_DIR/node$n.log" 2>&1 &
  echo $! >"$CLUSTER_DIR/node$n.pid"
}

# warrenctl against node N.
ctl() {
  local n=$1
  shift
  "$CTL" -n "127.0.0.1:$(cluster_port "$n")" --secret-file "$SECRET" "$@"
}

# Stop node N if its recorded PID is alive (TERM, then KILL after 10 s).
stop_node() {
  local n=$1 pidfile="$CLUSTER_DIR/node$1.pid" pid
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}
