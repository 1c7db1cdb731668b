#!/usr/bin/env bash
# HAProxy in front of the local cluster, end to end: start a three-node cluster
# (scripts/start-cluster.sh) on a temp data root and non-default ports, start haproxy
# (scripts/start-haproxy.sh), open AMQP connections through it with pika (each must
# connect; one declares a non-durable queue, publishes and gets the message back), check
# that they were spread over the nodes (each connection's server_properties name its
# node, and haproxy's stats count the sessions per node), check the management UI
# through haproxy (GET / is the UI page; /api/overview as guest answers, from more than
# one node over a few requests), kill one node by PID, check
# that haproxy marks it down and that new connections still succeed, restart the node
# (scripts/restart-node.sh) and check that it is marked up and gets connections again,
# then stop haproxy (scripts/stop-haproxy.sh) and the cluster (scripts/stop-cluster.sh).
# Stops only the processes it started; cleans up on exit.
#
# Needs haproxy (scripts/start-haproxy.sh --install, or WARRENMQ_INSTALL_HAPROXY=1 here)
# and pika (scripts/install-test-deps.sh). Env (defaults in brackets):
#   WARRENMQ_AMQP_PORT_BASE [5880], WARRENMQ_HTTP_PORT_BASE [15880],
#   WARRENMQ_CLUSTER_PORT_BASE [25880]   the smoke cluster's ports (see cluster-env.sh)
#   WARRENMQ_HAPROXY_PORT [5870], WARRENMQ_HAPROXY_HTTP_PORT [15870],
#   WARRENMQ_HAPROXY_STATS_PORT [8870]
#   WARRENMQ_SMOKE_KILL_NODE [2]         the node to kill
#   WARRENMQ_SMOKE_KEEP=1                keep the temp data root (logs) after the run
# WARRENMQ_CLUSTER_DIR is always a new temp directory: the smoke never touches a
# cluster it did not start.
set -euo pipefail
cd "$(dirname "$0")/.."

export WARRENMQ_AMQP_PORT_BASE="${WARRENMQ_AMQP_PORT_BASE:-5880}"
export WARRENMQ_HTTP_PORT_BASE="${WARRENMQ_HTTP_PORT_BASE:-15880}"
export WARRENMQ_CLUSTER_PORT_BASE="${WARRENMQ_CLUSTER_PORT_BASE:-25880}"
export WARRENMQ_HAPROXY_PORT="${WARRENMQ_HAPROXY_PORT:-5870}"
export WARRENMQ_HAPROXY_HTTP_PORT="${WARRENMQ_HAPROXY_HTTP_PORT:-15870}"
export WARRENMQ_HAPROXY_STATS_PORT="${WARRENMQ_HAPROXY_STATS_PORT:-8870}"
KILL_NODE="${WARRENMQ_SMOKE_KILL_NODE:-2}"
case "$KILL_NODE" in 1|2|3) ;; *) echo "WARRENMQ_SMOKE_KILL_NODE must be 1, 2 or 3" >&2; exit 64 ;; esac
[ "$WARRENMQ_HAPROXY_STATS_PORT" != 0 ] || { echo "haproxy-smoke.sh needs the stats page (WARRENMQ_HAPROXY_STATS_PORT != 0)" >&2; exit 64; }

say() { echo "haproxy-smoke: $*"; }

python3 -c 'import pika' 2>/dev/null || { say "pika is missing; run scripts/install-test-deps.sh"; exit 69; }
if [ "${WARRENMQ_INSTALL_HAPROXY:-0}" != 1 ] && [ -z "${WARRENMQ_HAPROXY_BIN:-}" ] &&
   ! command -v haproxy >/dev/null 2>&1 && [ ! -x /usr/sbin/haproxy ]; then
  say "haproxy is not installed; install it, or rerun with WARRENMQ_INSTALL_HAPROXY=1"; exit 69
fi

# Every port the smoke will listen on must be free before anything starts (SO_REUSEADDR,
# as the nodes and haproxy bind: connections of an earlier run in TIME-WAIT do not count).
python3 - "$WARRENMQ_AMQP_PORT_BASE" "$WARRENMQ_HTTP_PORT_BASE" "$WARRENMQ_CLUSTER_PORT_BASE" \
  "$WARRENMQ_HAPROXY_PORT" "$WARRENMQ_HAPROXY_STATS_PORT" "$WARRENMQ_HAPROXY_HTTP_PORT" <<'PY'
import socket, sys
amqp, http, cluster, fe, stats, http_fe = map(int, sys.argv[1:])
busy = []
for p in [b + i for b in (amqp, http, cluster) for i in range(3)] + [fe, stats, http_fe]:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", p))
    except OSError:
        busy.append(p)
    finally:
        s.close()
if busy:
    sys.exit(f"haproxy-smoke: ports in use: {busy}; pick others with WARRENMQ_AMQP_PORT_BASE, "
             "WARRENMQ_HTTP_PORT_BASE, WARRENMQ_CLUSTER_PORT_BASE, WARRENMQ_HAPROXY_PORT, "
             "WARRENMQ_HAPROXY_HTTP_PORT, WARRENMQ_HAPROXY_STATS_PORT")
PY

export WARRENMQ_CLUSTER_DIR
WARRENMQ_CLUSTER_DIR=$(mktemp -d "${TMPDIR:-/tmp}/warrenmq-haproxy-smoke.XXXXXX")
ok=0
cleanup() {
  set +e
  if [ "$ok" != 1 ]; then
    for f in "$WARRENMQ_CLUSTER_DIR"/haproxy.log "$WARRENMQ_CLUSTER_DIR"/node*.log; do
      [ -f "$f" ] && { echo "--- last lines of $f"; tail -n 15 "$f"; }
    done
  fi
  bash scripts/stop-haproxy.sh >/dev/null 2>&1
  bash scripts/stop-cluster.sh >/dev/null 2>&1
  if [ "${WARRENMQ_SMOKE_KEEP:-0}" = 1 ]; then
    say "kept $WARRENMQ_CLUSTER_DIR"
  else
    rm -rf "$WARRENMQ_CLUSTER_DIR"
  fi
  [ "$ok" = 1 ] || say FAILED
}
trap cleanup EXIT
say "cluster data $WARRENMQ_CLUSTER_DIR, AMQP ports $WARRENMQ_AMQP_PORT_BASE-$((WARRENMQ_AMQP_PORT_BASE + 2)), haproxy $WARRENMQ_HAPROXY_PORT, UI $WARRENMQ_HAPROXY_HTTP_PORT, stats $WARRENMQ_HAPROXY_STATS_PORT"

# The pika / stats-page checks; argv[1] is the command.
check() {
  python3 - "$@" <<'PY'
import base64, csv, io, json, sys, time, urllib.request
import pika

FE = int(__import__("os").environ["WARRENMQ_HAPROXY_PORT"])
STATS = int(__import__("os").environ["WARRENMQ_HAPROXY_STATS_PORT"])
URI = f"amqp://guest:guest@127.0.0.1:{FE}/%2F?connection_attempts=1&socket_timeout=5"
NODES = ["node1", "node2", "node3"]

def say(msg):
    print(f"haproxy-smoke: {msg}", flush=True)

def stats():
    """haproxy's view of the backend: {server: (status, current sessions)}."""
    with urllib.request.urlopen(f"http://127.0.0.1:{STATS}/;csv", timeout=5) as r:
        text = r.read().decode()
    rows = csv.DictReader(io.StringIO(text.lstrip("# ")))
    return {r["svname"]: (r["status"], int(r["scur"] or 0))
            for r in rows if r["pxname"] == "warrenmq_amqp" and r["svname"] in NODES}

def node_of(conn):
    props = conn._impl.server_properties or {}
    name = props.get("cluster_name", b"?")
    name = name.decode() if isinstance(name, bytes) else name
    return name.split("@", 1)[-1]          # warren@node2 -> node2

def wait_status(want, servers, timeout=30.0):
    start = time.monotonic()
    while True:
        now = stats()
        if all(now[s][0] == want for s in servers):
            say(f"{', '.join(servers)} {want} after {time.monotonic() - start:.1f}s "
                f"(haproxy: {', '.join(f'{k} {v[0]}' for k, v in now.items())})")
            return
        if time.monotonic() - start > timeout:
            sys.exit(f"haproxy-smoke: {servers} not {want} after {timeout}s: {now}")
        time.sleep(0.2)

def connect(count, exclude=None, want_nodes=2, exercise=True):
    conns = []
    try:
        for i in range(count):
            try:
                conns.append(pika.BlockingConnection(pika.URLParameters(URI)))
            except Exception as e:
                sys.exit(f"haproxy-smoke: connection {i + 1} of {count} through haproxy failed: {e!r}")
        nodes = [node_of(c) for c in conns]
        say(f"{count} connections through haproxy landed on {nodes}")
        if exercise:
            ch = conns[0].channel()
            q = f"haproxy-smoke.{nodes[0]}.{int(time.time() * 1000)}"
            ch.queue_declare(q, durable=False, auto_delete=True)
            body = f"hello via haproxy to {nodes[0]}".encode()
            ch.basic_publish("", q, body)
            got = None
            for _ in range(50):
                method, _props, got = ch.basic_get(q, auto_ack=True)
                if method is not None:
                    break
                time.sleep(0.1)
            if got != body:
                sys.exit(f"haproxy-smoke: basic.get on {q} returned {got!r}, not {body!r}")
            ch.queue_delete(q)
            say(f"declared non-durable queue {q}, published and got the message back")
        if exclude and exclude in nodes:
            sys.exit(f"haproxy-smoke: a connection landed on {exclude}, which is down")
        if len(set(nodes)) < want_nodes:
            sys.exit(f"haproxy-smoke: connections spread over {len(set(nodes))} node(s), "
                     f"expected at least {want_nodes}")
        # haproxy's own count of the open sessions must agree with the nodes' answers.
        expected = {s: nodes.count(s) for s in NODES}
        for _ in range(20):             # sessions closed just before may linger a moment
            sessions = {s: v[1] for s, v in stats().items()}
            if sessions == expected:
                break
            time.sleep(0.1)
        say(f"haproxy's current sessions per node: {sessions}")
        if sessions != expected:
            sys.exit(f"haproxy-smoke: haproxy counts {sessions}, the nodes answered {expected}")
    finally:
        for c in conns:
            try:
                c.close()
            except Exception:
                pass

def ui():
    """The management UI and API through haproxy's HTTP frontend, spread over the nodes."""
    base = f"http://127.0.0.1:{int(__import__('os').environ['WARRENMQ_HAPROXY_HTTP_PORT'])}"
    deadline = time.monotonic() + 30
    while True:                        # the HTTP backends' checks may lag the AMQP ones
        try:
            with urllib.request.urlopen(f"{base}/", timeout=5) as r:
                page = r.read().decode()
            break
        except OSError as e:
            if time.monotonic() > deadline:
                sys.exit(f"haproxy-smoke: GET / through haproxy failed: {e!r}")
            time.sleep(0.2)
    if "<title>WarrenMQ Management</title>" not in page:
        sys.exit(f"haproxy-smoke: GET / through haproxy is not the UI page: {page[:200]!r}")
    auth = "Basic " + base64.b64encode(b"guest:guest").decode()
    answered = set()
    for _ in range(6):
        req = urllib.request.Request(f"{base}/api/overview", headers={"Authorization": auth})
        with urllib.request.urlopen(req, timeout=10) as r:
            answered.add(json.load(r)["node"])
    if len(answered) < 2:
        sys.exit(f"haproxy-smoke: /api/overview through haproxy answered only by {answered}")
    say(f"the UI page and /api/overview (as guest) through haproxy, answered by {sorted(answered)}")

cmd = sys.argv[1]
if cmd == "ui":                        # the management UI through haproxy
    ui()
elif cmd == "wait":                      # wait UP|DOWN server...
    wait_status(sys.argv[2], sys.argv[3:])
elif cmd == "connect":                 # connect COUNT WANT_NODES [EXCLUDE]
    connect(int(sys.argv[2]), want_nodes=int(sys.argv[3]),
            exclude=sys.argv[4] if len(sys.argv) > 4 else None)
elif cmd == "connect-now":             # connect COUNT, no checks beyond connecting
    connect(int(sys.argv[2]), want_nodes=1, exercise=False)
else:
    sys.exit(f"unknown check {cmd}")
PY
}

if ! bash scripts/start-cluster.sh >"$WARRENMQ_CLUSTER_DIR/start-cluster.out" 2>&1; then
  cat "$WARRENMQ_CLUSTER_DIR/start-cluster.out"; exit 1
fi
say "cluster started: nodes $(cat "$WARRENMQ_CLUSTER_DIR"/node*.pid | tr '\n' ' ')"
cluster_pids=$(cat "$WARRENMQ_CLUSTER_DIR"/node*.pid)
bash scripts/start-haproxy.sh | sed 's/^/haproxy-smoke: /'
haproxy_pid=$(cat "$WARRENMQ_CLUSTER_DIR/haproxy.pid")

check wait UP node1 node2 node3
check ui
# leastconn with all connections held open: six connections, two per node.
check connect 6 3

victim="node$KILL_NODE"
victim_pid=$(cat "$WARRENMQ_CLUSTER_DIR/$victim.pid")
kill -KILL "$victim_pid"
say "killed $victim (PID $victim_pid)"
# Before the health checks notice, a connect refused by the dead node is redispatched.
check connect-now 3
check wait DOWN "$victim"
check connect 6 2 "$victim"

bash scripts/restart-node.sh "$KILL_NODE" | sed 's/^/haproxy-smoke: /'
check wait UP node1 node2 node3
check connect 6 3

bash scripts/stop-haproxy.sh | sed 's/^/haproxy-smoke: /'
if kill -0 "$haproxy_pid" 2>/dev/null; then say "haproxy PID $haproxy_pid still runs after stop-haproxy.sh"; exit 1; fi
cluster_pids="$cluster_pids $(cat "$WARRENMQ_CLUSTER_DIR/$victim.pid")"
bash scripts/stop-cluster.sh | sed 's/^/haproxy-smoke: /'
for pid in $cluster_pids; do
  [ "$pid" = "$victim_pid" ] && continue
  if kill -0 "$pid" 2>/dev/null; then say "node PID $pid still runs after stop-cluster.sh"; exit 1; fi
done
ok=1
say ok
