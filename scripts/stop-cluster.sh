#!/usr/bin/env bash
# Stop the nodes scripts/start-cluster.sh started (the PIDs in $WARRENMQ_CLUSTER_DIR),
# and nothing else. Data stays; scripts/start-cluster.sh starts the cluster on it again.
set -euo pipefail
source "$(dirname "$0")/cluster-env.sh"
for n in 1 2 3; do stop_node "$n"; done
echo "stopped the cluster in $CLUSTER_DIR"
