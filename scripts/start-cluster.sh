#!/usr/bin/env bash
# Start a local three-node WarrenMQ cluster: build once, start nodes 1-3 from
# cluster/node1..3.toml, join nodes 2 and 3 to node 1 with warrenctl join_cluster, wait
# until all three run, print cluster_status and the AMQP URIs, and exit, leaving the nodes
# running (output in $WARRENMQ_CLUSTER_DIR/nodeN.log). Env: see scripts/cluster-env.sh.
# Stop it with scripts/stop-cluster.sh (same env).
set -euo pipefail
source "$(dirname "$0")/cluster-env.sh"
(cd "$REPO" && cargo build --release --bin warrenmq-server --bin warrenctl)
for n in 1 2 3; do
  if [ -f "$CLUSTER_DIR/node$n.pid" ] && kill -0 "$(cat "$CLUSTER_DIR/node$n.pid")" 2>/dev/null; then
    echo "node $n already runs (PID $(cat "$CLUSTER_DIR/node$n.pid")); stop it with scripts/stop-cluster.sh" >&2
    exit 1
  fi
done
echo "cluster data: $CLUSTER_DIR"
[ -f "$SECRET" ] || { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$SECRET"; chmod 600 "$SECRET"; }
for n in 1 2 3; do start_node "$n"; done
for n in 1 2 3; do ctl "$n" -t 60 await_startup; done
# A node already in the cluster (a restart on existing data) is left as it is.
for n in 2 3; do
  if ! ctl 1 --formatter json cluster_status | grep -q "\"warren@node$n\""; then
    ctl "$n" stop_app >/dev/null
    ctl "$n" join_cluster "127.0.0.1:$(cluster_port 1)"
    ctl "$n" start_app >/dev/null
  fi
done
# Healthy: node 1 sees all three running.
for _ in $(seq 1 100); do
  running=$(ctl 1 --formatter json cluster_status | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["running_nodes"]))')
  [ "$running" = 3 ] && break
  sleep 0.2
done
[ "$running" = 3 ] || { echo "only $running of 3 nodes run; see $CLUSTER_DIR/node*.log" >&2; exit 1; }
ctl 1 cluster_status
echo
for n in 1 2 3; do echo "amqp://guest:guest@127.0.0.1:$((AMQP_BASE + n - 1))/%2F"; done
