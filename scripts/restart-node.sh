#!/usr/bin/env bash
# Restart node N (1..3) of the local cluster on its data: stop the process
# scripts/start-cluster.sh started (if it runs), start it again, wait for it.
set -euo pipefail
source "$(dirname "$0")/cluster-env.sh"
n="${1:?usage: restart-node.sh N (1, 2 or 3)}"
case "$n" in 1|2|3) ;; *) echo "usage: restart-node.sh N (1, 2 or 3)" >&2; exit 64 ;; esac
stop_node "$n"
start_node "$n"
ctl "$n" -t 60 await_startup
echo "node $n restarted (PID $(cat "$CLUSTER_DIR/node$n.pid"))"
