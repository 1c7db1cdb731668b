#!/usr/bin/env bash
# Definitions round trip with RabbitMQ 3.10.8 (the oracle), both ways, on loopback:
#
#  1. RabbitMQ -> WarrenMQ: a vhost, users (passwords hashed by RabbitMQ), permissions,
#     topic permissions, a policy, vhost limits, queues (classic, lazy, quorum), exchanges
#     and bindings made on RabbitMQ; `rabbitmqctl export_definitions -`, kept to those
#     objects (the oracle is shared), imported with `warrenctl import_definitions` into a
#     fresh WarrenMQ node. Its users log in there over AMQP with their RabbitMQ passwords,
#     and warrenctl lists the same objects rabbitmqctl lists.
#  2. WarrenMQ -> RabbitMQ: a second vhost and user made on WarrenMQ; its whole
#     `warrenctl export_definitions` file imported with `rabbitmqctl import_definitions`.
#     The import succeeds, its users log in to RabbitMQ with their WarrenMQ passwords, and
#     rabbitmqctl lists the same objects warrenctl lists.
#
# Every name starts with rt-<unique id>; what is made on RabbitMQ is deleted again (also
# on failure), and the oracle is stopped at the end only if this script started it.
# Skips (exit 0) when RabbitMQ is not installed, so CI without it passes.
#
#   ORACLE=/path/to/rabbitmq-oracle.sh   (default /work/shared/tools/rabbitmq-oracle.sh)
#   ORACLE_AMQP_PORT=5680                (as the oracle script has it)
set -euo pipefail
cd "$(dirname "$0")/.."

ORACLE=${ORACLE:-/work/shared/tools/rabbitmq-oracle.sh}
ORACLE_PORT=${ORACLE_AMQP_PORT:-5680}
# As the oracle script decides whether it must install RabbitMQ first.
if [[ ! -x /usr/lib/rabbitmq/bin/rabbitmq-server || ! -f $ORACLE ]]; then
  echo "definitions-roundtrip: RabbitMQ (or $ORACLE) not installed; skipped"
  exit 0
fi
python3 -c 'import pika' 2>/dev/null || {
  echo "definitions-roundtrip: pika missing (scripts/install-test-deps.sh installs it)"; exit 1; }

TARGET="${CARGO_TARGET_DIR:-target}"
BIN="$TARGET/release"
[[ -x $BIN/warrenmq-server && -x $BIN/warrenctl ]] || cargo build --release --bins

ID="rt-$(date +%s)-$$"
RV="$ID-r" W_VHOST="$ID-w"                        # made on RabbitMQ / on WarrenMQ
R_ADMIN="$ID-admin" R_APP="$ID-app" W_USER="$ID-warren" W_DEFAULT="$ID-default"
DATA=$(mktemp -d)
PID="" STARTED=""

rmq() { bash "$ORACLE" ctl "$@"; }
oracle_up() { ss -ltn | grep -q "127.0.0.1:$ORACLE_PORT "; }

cleanup() {
  local rc=$?
  set +e
  if oracle_up; then
    for v in "$RV" "$W_VHOST"; do rmq delete_vhost "$v" >/dev/null 2>&1; done
    for u in "$R_ADMIN" "$R_APP" "$W_USER" "$W_DEFAULT"; do rmq delete_user "$u" >/dev/null 2>&1; done
    if rmq list_users -q 2>/dev/null | grep -q "^$ID" || rmq list_vhosts -q 2>/dev/null | grep -q "^$ID"; then
      echo "definitions-roundtrip: objects named $ID* left in the oracle" >&2; rc=1
    fi
  fi
  [[ -n $PID ]] && { kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null; }
  [[ -n $STARTED ]] && bash "$ORACLE" stop >/dev/null
  rm -rf "$DATA"
  exit "$rc"
}
trap cleanup EXIT

if ! oracle_up; then
  echo "definitions-roundtrip: starting the oracle"
  bash "$ORACLE" start >/dev/null
  STARTED=1
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
PORT=$(free_port) CPORT=$(free_port)
# Its own default user, so the export carries no guest to write over the oracle's.
"$BIN/warrenmq-server" --data-dir "$DATA/node" --amqp-port "$PORT" --http-port "$(free_port)" \
  --cluster-port "$CPORT" --default-user "$W_DEFAULT" --default-pass "$W_DEFAULT" \
  >"$DATA/server.log" 2>&1 &
PID=$!
wctl() { "$BIN/warrenctl" -n "127.0.0.1:$CPORT" --data-dir "$DATA/node" "$@"; }
wctl --timeout 30 await_startup

# py SCRIPT ARGS...: the helpers below, then SCRIPT.
py() { python3 -c "$HELPERS
$1" "${@:2}"; }
HELPERS='
import json, sys, pika
def conn(port, vhost, user, pw):
    return pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", int(port), vhost,
        pika.PlainCredentials(user, pw), connection_attempts=3, retry_delay=0.5))
def logs_in(port, vhost, user, pw):
    try:
        conn(port, vhost, user, pw).close(); return True
    except pika.exceptions.AMQPError:
        return False
def declare(port, vhost, user, pw, prefix, internal):
    c = conn(port, vhost, user, pw); ch = c.channel()
    ch.exchange_declare(prefix + "in", "topic", durable=True)
    ch.exchange_declare(prefix + "unrouted", "fanout", durable=True)
    ch.exchange_declare(prefix + "match", "headers", durable=True)
    ch.queue_declare(prefix + "q1", durable=True)
    ch.queue_declare(prefix + "lazy", durable=True, arguments={"x-queue-mode": "lazy"})
    ch.queue_declare(prefix + "qq", durable=True, arguments={"x-queue-type": "quorum"})
    ch.queue_bind(prefix + "q1", prefix + "in", prefix + "#")
    ch.queue_bind(prefix + "lazy", prefix + "unrouted", "")
    ch.queue_bind(prefix + "qq", prefix + "match", "", arguments={"x-match": "any", "kind": "pay"})
    if internal == "internal":
        ch.exchange_declare(prefix + "audit", "fanout", durable=True, internal=True)
        ch.exchange_bind(prefix + "audit", prefix + "in", "#")
        ch.queue_bind(prefix + "lazy", prefix + "audit", "")
    c.close()
def rows(text, keys):
    out = []
    for r in json.loads(text or "[]"):
        d = r.get("definition")
        if isinstance(d, str):
            r["definition"] = json.loads(d)
        out.append(tuple(json.dumps(r.get(k), sort_keys=True) for k in keys))
    return sorted(out)
'

# same WHAT KEYS RABBITMQ-JSON WARRENMQ-JSON: the two lists agree on KEYS.
same() {
  py 'a, b = rows(sys.argv[3], sys.argv[2].split(",")), rows(sys.argv[4], sys.argv[2].split(","))
if a != b:
    sys.exit("%s differ:\n  rabbitmq %s\n  warrenmq %s" % (sys.argv[1], a, b))
print("  same %s (%d)" % (sys.argv[1], len(a)))' "$@"
}

# compare VHOST: rabbitmqctl and warrenctl list the same objects in VHOST.
compare() {
  local v=$1 j=(--formatter json)
  same queues name,type "$(rmq list_queues -p "$v" name type "${j[@]}")" "$(wctl list_queues -p "$v" name type "${j[@]}")"
  local xs='import json,sys; print(json.dumps([x for x in json.loads(sys.stdin.read()) if x["name"] and not x["name"].startswith("amq.")]))'
  same exchanges name,type "$(rmq list_exchanges -p "$v" name type "${j[@]}" | python3 -c "$xs")" \
    "$(wctl list_exchanges -p "$v" "${j[@]}" | python3 -c "$xs")"
  same bindings source_name,destination_name,destination_kind,routing_key \
    "$(rmq list_bindings -p "$v" "${j[@]}")" "$(wctl list_bindings -p "$v" "${j[@]}")"
  same permissions user,configure,write,read "$(rmq list_permissions -p "$v" "${j[@]}")" "$(wctl list_permissions -p "$v" "${j[@]}")"
  same topic_permissions user,exchange,write,read \
    "$(rmq list_topic_permissions -p "$v" "${j[@]}")" "$(wctl list_topic_permissions -p "$v" "${j[@]}")"
  same policies name,pattern,apply-to,definition,priority \
    "$(rmq list_policies -p "$v" "${j[@]}")" "$(wctl list_policies -p "$v" "${j[@]}")"
  same vhost_limits value "[$(rmq list_vhost_limits -p "$v" "${j[@]}")]" "[$(wctl list_vhost_limits -p "$v" "${j[@]}")]"
}

echo "definitions-roundtrip: 1. RabbitMQ -> WarrenMQ ($RV)"
rmq add_vhost "$RV" >/dev/null
rmq add_user "$R_ADMIN" "admin-pw-$ID" >/dev/null
rmq add_user "$R_APP" "app-pw-$ID" >/dev/null
rmq set_user_tags "$R_ADMIN" administrator >/dev/null
rmq set_user_limits "$R_APP" '{"max-connections":10}' >/dev/null
rmq set_permissions -p "$RV" "$R_ADMIN" '.*' '.*' '.*' >/dev/null
rmq set_permissions -p "$RV" "$R_APP" '^app\.' '^app\.' '^app\.' >/dev/null
rmq set_topic_permissions -p "$RV" "$R_APP" amq.topic '^app\.' '^app\.' >/dev/null
rmq set_policy -p "$RV" --apply-to exchanges rt-ae '^app\.in$' '{"alternate-exchange":"app.unrouted"}' >/dev/null
rmq set_vhost_limits -p "$RV" '{"max-queues":20}' >/dev/null
# No internal exchange: rabbitmqctl 3.10.8 leaves those out of its export (see
# tests/fixtures/README.md), so they cannot travel this way.
py 'declare(*sys.argv[1:])' "$ORACLE_PORT" "$RV" "$R_ADMIN" "admin-pw-$ID" app. plain
# The oracle is shared: keep only what was made here (as the test fixture was made).
rmq export_definitions - | py 'd = json.load(sys.stdin)
mine = lambda key: lambda x: x[key].startswith(sys.argv[1])
for k in ("users", "vhosts"):
    d[k] = list(filter(mine("name"), d[k]))
for k in ("permissions", "topic_permissions", "parameters", "policies", "queues", "exchanges", "bindings"):
    d[k] = list(filter(mine("vhost"), d[k]))
d["global_parameters"] = []
json.dump(d, open(sys.argv[2], "w"))' "$ID" "$DATA/from-rabbitmq.json"
wctl import_definitions "$DATA/from-rabbitmq.json"
for cred in "$R_ADMIN admin-pw-$ID" "$R_APP app-pw-$ID"; do
  set -- $cred
  py 'sys.exit(0 if logs_in(*sys.argv[1:]) else "%s cannot log in to WarrenMQ with the RabbitMQ password" % sys.argv[3])' \
    "$PORT" "$RV" "$1" "$2"
  echo "  $1 logs in to WarrenMQ with its RabbitMQ password"
done
py 'sys.exit("a wrong password got in" if logs_in(*sys.argv[1:]) else 0)' "$PORT" "$RV" "$R_APP" wrong
compare "$RV"

echo "definitions-roundtrip: 2. WarrenMQ -> RabbitMQ ($W_VHOST)"
wctl add_vhost "$W_VHOST" >/dev/null
wctl add_user "$W_USER" "warren-pw-$ID" >/dev/null
wctl set_user_tags "$W_USER" management >/dev/null
wctl set_permissions -p "$W_VHOST" "$W_USER" '.*' '.*' '.*' >/dev/null
wctl set_topic_permissions -p "$W_VHOST" "$W_USER" amq.topic '^w\.' '^w\.' >/dev/null
wctl set_policy -p "$W_VHOST" --apply-to exchanges rt-ae '^w\.in$' '{"alternate-exchange":"w.unrouted"}' >/dev/null
wctl set_vhost_limits -p "$W_VHOST" '{"max-connections":30}' >/dev/null
py 'declare(*sys.argv[1:])' "$PORT" "$W_VHOST" "$W_USER" "warren-pw-$ID" w. internal
wctl export_definitions "$DATA/from-warrenmq.json"
rmq import_definitions "$DATA/from-warrenmq.json"
for cred in "$W_VHOST $W_USER warren-pw-$ID" "/ $W_DEFAULT $W_DEFAULT" "$RV $R_APP app-pw-$ID"; do
  set -- $cred
  py 'sys.exit(0 if logs_in(*sys.argv[1:]) else "%s cannot log in to RabbitMQ with the password hash WarrenMQ exported" % sys.argv[3])' \
    "$ORACLE_PORT" "$1" "$2" "$3"
  echo "  $2 logs in to RabbitMQ with the password hash WarrenMQ exported"
done
compare "$W_VHOST"
echo "definitions-roundtrip: ok"
