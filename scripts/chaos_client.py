"""Clients and bookkeeping for scripts/chaos.sh (python3 + pika).

Subcommands:
  declare  --port P --queue Q               declare the durable quorum queue (pika, blocking)
  produce  --name p1 --ports P,P2,P3 ...    publisher with confirms, reconnects, republishes
  consume  --name c1 --ports P,P2,P3 ...    manual-ack consumer, reconnects
  leader   QUEUE NAME1 NAME2 NAME3          stdin: `warrenctl list_queues --formatter json
                                            name leader online`; prints "LEADER ONLINE"
                                            (LEADER = 1..3 or 0, ONLINE = members online)
  report   --dir W ...                      reads every record file, prints the result

Record files (one per client, in --dir, one line per event, TIME = seconds since the epoch):
  producer pN.rec:  P TIME ID#A    published attempt A of ID (A = 1 first, 2.. republish)
                    A TIME ID#A    basic.ack for it          N TIME ID#A  basic.nack
                    U TIME ID#A    basic.return (unroutable: not counted as confirmed)
                    X TIME KIND .. connection events (connected, lost, broker-close, stall, ...)
  consumer cN.rec:  D TIME ID#A R  delivered (R = 1 when redelivered)
                    X TIME KIND .. as above
A message counts as confirmed only on basic.ack. Publishes still unconfirmed when their
connection dies are "unknown": they are republished (same ID, next attempt) on the next
connection, which may create duplicates.
"""
import argparse
import collections
import json
import os
import signal
import sys
import time

HOST = "127.0.0.1"


def now():
    return time.time()


class Recorder:
    def __init__(self, path):
        self.f = open(path, "a", buffering=1 << 16)
        self.last_flush = now()

    def line(self, kind, *fields):
        self.f.write(" ".join([kind, "%.3f" % now(), *map(str, fields)]) + "\n")

    def event(self, what, detail=""):
        detail = " ".join(str(detail).split())
        self.line("X", what, detail)
        self.flush()
        print("%s %s %s" % (time.strftime("%H:%M:%S"), what, detail), file=sys.stderr, flush=True)

    def maybe_flush(self):
        if now() - self.last_flush > 0.5:
            self.flush()

    def flush(self):
        self.f.flush()
        self.last_flush = now()

    def close(self):
        self.f.flush()
        self.f.close()


def describe(reason):
    code = getattr(reason, "reply_code", None)
    text = getattr(reason, "reply_text", None)
    if code is not None:
        return "%s(%s %s)" % (type(reason).__name__, code, text)
    return "%s(%s)" % (type(reason).__name__, reason)


def broker_originated(reason):
    import pika.exceptions as ex

    return isinstance(reason, (ex.ConnectionClosedByBroker, ex.ChannelClosedByBroker))


class Client:
    """The reconnect loop shared by producers and consumers: one SelectConnection per
    session, home node first, then the others, with backoff; after CHAOS_HOME_RETURN
    seconds on another node the session ends cleanly and the client goes home."""

    def __init__(self, args):
        self.args = args
        self.ports = [int(p) for p in args.ports.split(",")]
        self.home = self.ports[0]
        self.rec = Recorder(os.path.join(args.dir, args.name + ".rec"))
        self.terminated = False
        self.finished = False
        self.conn = None
        self.channel = None
        self.port = None
        self.session_started = 0.0
        self.leaving_home_return = False
        signal.signal(signal.SIGTERM, self._on_sigterm)

    def _on_sigterm(self, *_):
        self.terminated = True
        self.finished = True

    def params(self, port):
        import pika

        return pika.ConnectionParameters(
            host=HOST,
            port=port,
            credentials=pika.PlainCredentials("guest", "guest"),
            heartbeat=self.args.heartbeat,
            connection_attempts=1,
            retry_delay=0,
            socket_timeout=3,
            stack_timeout=5,
            client_properties={"connection_name": "chaos-" + self.args.name},
        )

    def run(self):
        import pika

        attempt = 0
        while not self.finished:
            port = self.ports[attempt % len(self.ports)]
            self.port = port
            self.opened = False
            self.leaving_home_return = False
            self.conn = pika.SelectConnection(
                self.params(port),
                on_open_callback=self._on_open,
                on_open_error_callback=self._on_open_error,
                on_close_callback=self._on_closed,
            )
            try:
                self.conn.ioloop.start()
            except Exception as e:  # a bug here must not end the run silently
                self.rec.event("client-exception", describe(e))
                self._abort()
            self.session_ended()
            try:
                self.conn.ioloop.close()
            except Exception:
                pass
            self.conn = None
            self.channel = None
            if self.finished or self.give_up():
                break
            if self.opened:
                # The session ended (node died, stall, or going home): home first again.
                attempt = 0
                if not self.leaving_home_return:
                    time.sleep(0.1)
            else:
                attempt += 1
                time.sleep(min(2.0, 0.1 * (2 ** min(attempt, 5))))
        self.rec.event("exit", "terminated" if self.terminated else "done")
        self.rec.close()

    def _on_open(self, conn):
        self.opened = True
        self.session_started = now()
        self.rec.event("connected", "port=%d" % self.port)
        conn.channel(on_open_callback=self._on_channel_open)

    def _on_open_error(self, conn, err):
        self.rec.event("connect-failed", "port=%d %s" % (self.port, describe(err)))
        conn.ioloop.stop()

    def _on_closed(self, conn, reason):
        import pika.exceptions as ex

        kind = "closed"
        if broker_originated(reason):
            kind = "broker-close"
        elif not isinstance(reason, ex.ConnectionClosedByClient):
            kind = "lost"
        self.rec.event(kind, "port=%d %s" % (self.port, describe(reason)))
        conn.ioloop.stop()

    def _on_channel_open(self, ch):
        self.channel = ch
        ch.add_on_close_callback(self._on_channel_closed)
        self.channel_ready(ch)

    def _on_channel_closed(self, ch, reason):
        import pika.exceptions as ex

        # A lost connection closes its channels too (reason: the connection's error);
        # only a channel.close sent by the broker is an event of its own.
        if isinstance(reason, ex.ChannelClosedByBroker):
            self.rec.event("broker-channel-close", "port=%d %s" % (self.port, describe(reason)))
        self.channel = None
        self._close_conn()

    def _close_conn(self):
        conn = self.conn
        if conn is None or conn.is_closed:
            return
        if conn.is_open:
            try:
                conn.close()
            except Exception:
                self._abort()
                return
        # A paused or dead node never answers close: abort after a grace period.
        conn.ioloop.call_later(3, self._abort_if_open)

    def _abort_if_open(self):
        if self.conn is not None and not self.conn.is_closed:
            self._abort()

    def _abort(self):
        conn = self.conn
        if conn is None:
            return
        try:
            conn._adapter_disconnect_stream()  # pylint: disable=protected-access
        except Exception:
            try:
                conn.ioloop.stop()
            except Exception:
                pass

    def away_too_long(self):
        return (
            self.port != self.home
            and self.args.home_return > 0
            and now() - self.session_started > self.args.home_return
        )

    # hooks
    def channel_ready(self, ch):
        raise NotImplementedError

    def give_up(self):
        """Between sessions: stop reconnecting (the end phase ran out of time)."""
        return self.terminated

    def session_ended(self):
        pass


class Producer(Client):
    def __init__(self, args):
        super().__init__(args)
        self.next_n = 0
        self.attempts = {}  # id -> last attempt number
        self.confirmed = set()
        self.pending = collections.OrderedDict()  # ids to republish (unknown), in order
        self.unconfirmed = collections.OrderedDict()  # tag -> key, this channel
        self.tag = 0
        self.tokens = 0.0
        self.last_tick = now()
        self.last_progress = now()
        self.stop_seen = None
        self.ready = False
        self.draining_for_home = False

    def stop_requested(self):
        if self.stop_seen is None and (self.terminated or os.path.exists(self.args.stop_file)):
            self.stop_seen = now()
            self.rec.event("stop-requested", "unconfirmed=%d pending=%d" % (len(self.unconfirmed), len(self.pending)))
        return self.stop_seen is not None

    def channel_ready(self, ch):
        self.tag = 0
        self.unconfirmed.clear()
        ch.add_on_return_callback(self._on_return)
        ch.confirm_delivery(ack_nack_callback=self._on_confirm, callback=self._on_confirm_ok)

    def _on_confirm_ok(self, _frame):
        self.ready = True
        self.draining_for_home = False
        self.last_progress = now()
        self.last_tick = now()
        if self.pending:
            self.rec.event("republish", "count=%d" % len(self.pending))
        self.tick()

    def session_ended(self):
        self.ready = False
        # Every publish of this session still unconfirmed is unknown now: republish it.
        for key in self.unconfirmed.values():
            ident = key.rsplit("#", 1)[0]
            if ident not in self.confirmed:
                self.pending[ident] = True
        if self.unconfirmed:
            self.rec.event("unknown", "count=%d" % len(self.unconfirmed))
        self.unconfirmed.clear()
        self.rec.flush()
        if self.stop_seen is not None and now() - self.stop_seen > self.args.confirm_wait:
            self.finished = True
        if self.terminated:
            self.finished = True

    def publish(self, ident):
        import pika

        a = self.attempts.get(ident, 0) + 1
        self.attempts[ident] = a
        key = "%s#%d" % (ident, a)
        self.channel.basic_publish(
            exchange="",
            routing_key=self.args.queue,
            body=key.encode(),
            properties=pika.BasicProperties(delivery_mode=2, message_id=ident),
            mandatory=True,
        )
        self.tag += 1
        self.unconfirmed[self.tag] = key
        self.rec.line("P", key)

    def give_up(self):
        if self.terminated:
            return True
        return self.stop_requested() and now() - self.stop_seen > self.args.confirm_wait

    def tick(self):
        conn = self.conn
        if conn is None or not self.ready or self.channel is None or not self.channel.is_open:
            return
        if self.terminated:
            self.finished = True
            self._close_conn()
            return
        t = now()
        stopping = self.stop_requested()
        if stopping and not self.unconfirmed and not self.pending:
            self.rec.event("all-confirmed", "confirmed=%d" % len(self.confirmed))
            self.finished = True
            self._close_conn()
            return
        if stopping and t - self.stop_seen > self.args.confirm_wait:
            self.rec.event("confirm-wait-over", "unconfirmed=%d pending=%d" % (len(self.unconfirmed), len(self.pending)))
            self.finished = True
            self._close_conn()
            return
        if self.unconfirmed and t - self.last_progress > self.args.stall:
            self.rec.event("stall", "port=%d no confirm for %.1fs, unconfirmed=%d; reconnecting"
                           % (self.port, t - self.last_progress, len(self.unconfirmed)))
            self._close_conn()
            return
        if not self.draining_for_home and not stopping and self.away_too_long():
            self.draining_for_home = True
            self.rec.event("home-return", "leaving port=%d" % self.port)
        if self.draining_for_home:
            if not self.unconfirmed:
                self.leaving_home_return = True
                self._close_conn()
                return
        else:
            self.tokens = min(self.tokens + (t - self.last_tick) * self.args.rate, max(1.0, self.args.rate * 0.05))
            while self.tokens >= 1 and len(self.unconfirmed) < self.args.window:
                if self.pending:
                    ident, _ = self.pending.popitem(last=False)
                    if ident in self.confirmed:
                        continue
                elif stopping:
                    break
                else:
                    self.next_n += 1
                    ident = "%s-%d" % (self.args.name, self.next_n)
                if not self.unconfirmed:
                    self.last_progress = t
                self.publish(ident)
                self.tokens -= 1
        self.last_tick = t
        self.rec.maybe_flush()
        conn.ioloop.call_later(0.01, self.tick)

    def _settle(self, tag, multiple, kind):
        if multiple:
            keys = []
            while self.unconfirmed:
                first = next(iter(self.unconfirmed))
                if first > tag:
                    break
                keys.append(self.unconfirmed.pop(first))
        else:
            key = self.unconfirmed.pop(tag, None)
            keys = [key] if key is not None else []
        for key in keys:
            self.rec.line(kind, key)
            ident = key.rsplit("#", 1)[0]
            if kind == "A":
                self.confirmed.add(ident)
                self.pending.pop(ident, None)
            else:
                self.pending[ident] = True
        return len(keys)

    def _on_confirm(self, frame):
        m = frame.method
        name = m.NAME.split(".")[-1]
        kind = "A" if name == "Ack" else "N"
        n = self._settle(m.delivery_tag, m.multiple, kind)
        if n:
            self.last_progress = now()
        else:
            self.rec.event("unknown-confirm", "%s tag=%d multiple=%s" % (name, m.delivery_tag, m.multiple))
        if kind == "N":
            self.rec.event("nack", "port=%d tag=%d multiple=%s count=%d" % (self.port, m.delivery_tag, m.multiple, n))

    def _on_return(self, _ch, method, _props, body):
        key = body.decode(errors="replace")
        self.rec.line("U", key)
        self.rec.event("returned", "port=%d %s %s %s" % (self.port, key, method.reply_code, method.reply_text))


class Consumer(Client):
    def __init__(self, args):
        super().__init__(args)
        self.last_delivery = now()
        self.drain_seen = None
        self.deliveries = 0

    def channel_ready(self, ch):
        ch.add_on_cancel_callback(self._on_cancel)
        ch.basic_qos(prefetch_count=self.args.prefetch, callback=self._on_qos)

    def _on_qos(self, _frame):
        if self.channel is None:
            return
        self.channel.basic_consume(self.args.queue, self._on_message, auto_ack=False)
        self.session_tick()

    def _on_cancel(self, frame):
        self.rec.event("broker-cancel", "port=%d %s" % (self.port, frame.method))
        self._close_conn()

    def _on_message(self, ch, method, _props, body):
        self.rec.line("D", body.decode(errors="replace"), 1 if method.redelivered else 0)
        self.deliveries += 1
        self.last_delivery = now()
        ch.basic_ack(method.delivery_tag)

    def session_tick(self):
        conn = self.conn
        if conn is None or self.channel is None or not self.channel.is_open:
            return
        t = now()
        self.rec.maybe_flush()
        if self.terminated:
            self.finished = True
            self._close_conn()
            return
        if self.drain_seen is None and os.path.exists(self.args.drain_file):
            self.drain_seen = t
            self.rec.event("drain", "deliveries=%d" % self.deliveries)
        if self.drain_seen is not None:
            idle = t - max(self.last_delivery, self.drain_seen)
            if idle > self.args.drain_idle or t - self.drain_seen > self.args.drain_max:
                self.rec.event("drained", "deliveries=%d idle=%.1fs" % (self.deliveries, idle))
                self.finished = True
                self._close_conn()
                return
        elif self.away_too_long():
            self.rec.event("home-return", "leaving port=%d" % self.port)
            self.leaving_home_return = True
            self._close_conn()
            return
        conn.ioloop.call_later(0.2, self.session_tick)

    def give_up(self):
        if self.terminated:
            return True
        if self.drain_seen is None and os.path.exists(self.args.drain_file):
            self.drain_seen = now()
            self.rec.event("drain", "deliveries=%d (disconnected)" % self.deliveries)
        return self.drain_seen is not None and now() - self.drain_seen > self.args.drain_max

    def session_ended(self):
        self.rec.flush()
        if self.drain_seen is not None and now() - self.drain_seen > self.args.drain_max:
            self.finished = True
        if self.terminated:
            self.finished = True


def cmd_declare(args):
    import pika

    deadline = now() + 30
    while True:
        try:
            conn = pika.BlockingConnection(pika.ConnectionParameters(HOST, args.port))
            ch = conn.channel()
            ch.queue_declare(args.queue, durable=True, arguments={"x-queue-type": "quorum"})
            conn.close()
            print("declared quorum queue %s on port %d" % (args.queue, args.port))
            return 0
        except Exception as e:
            if now() > deadline:
                print("declare failed: %s" % describe(e), file=sys.stderr)
                return 1
            time.sleep(0.5)


def cmd_leader(args):
    try:
        rows = json.load(sys.stdin)
    except ValueError:
        print("0 0")
        return 0
    for row in rows:
        if row.get("name") == args.queue:
            leader = row.get("leader") or ""
            n = args.names.index(leader) + 1 if leader in args.names else 0
            print("%d %d" % (n, len(row.get("online") or [])))
            return 0
    print("0 0")
    return 0


def read_records(path):
    with open(path, errors="replace") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3:
                yield parts


def cmd_report(args):
    published = {}  # id -> attempts published
    acked_keys = {}  # key -> time
    returned_keys = set()
    nacked = set()
    events = collections.Counter()
    event_lines = []
    deliveries = collections.Counter()  # id -> count
    key_deliveries = {}  # key -> list of redelivered flags
    first_delivery = {}
    publish_time = {}
    redelivered = 0
    max_gap = (0.0, "")
    connects = collections.defaultdict(list)  # client -> [(time, "port=N")]
    producers = consumers = 0
    names = sorted(os.listdir(args.dir))
    for name in names:
        if not name.endswith(".rec"):
            continue
        path = os.path.join(args.dir, name)
        who = name[:-4]
        if who.startswith("p"):
            producers += 1
            last_ack = None
            stop_at = None
            for parts in read_records(path):
                kind, t = parts[0], float(parts[1])
                if kind == "P":
                    ident = parts[2].rsplit("#", 1)[0]
                    published[ident] = published.get(ident, 0) + 1
                    publish_time.setdefault(ident, (t, who))
                elif kind == "A":
                    acked_keys[parts[2]] = t
                    if last_ack is not None and stop_at is None and t - last_ack > max_gap[0]:
                        max_gap = (t - last_ack, "%s %s..%s" % (who, time.strftime("%H:%M:%S", time.localtime(last_ack)),
                                                             time.strftime("%H:%M:%S", time.localtime(t))))
                    last_ack = t
                elif kind == "N":
                    nacked.add(parts[2])
                elif kind == "U":
                    returned_keys.add(parts[2])
                elif kind == "X":
                    events[parts[2]] += 1
                    if parts[2] == "connected":
                        connects[who].append((t, parts[3] if len(parts) > 3 else "?"))
                    if parts[2] == "stop-requested":
                        stop_at = t
                    if parts[2] in ("broker-close", "broker-channel-close", "nack", "returned", "stall",
                                    "client-exception", "unknown-confirm", "confirm-wait-over"):
                        event_lines.append("%s %s %s" % (who, time.strftime("%H:%M:%S", time.localtime(t)), " ".join(parts[2:])))
        elif who.startswith("c"):
            consumers += 1
            for parts in read_records(path):
                kind, t = parts[0], float(parts[1])
                if kind == "D":
                    key = parts[2]
                    ident = key.rsplit("#", 1)[0]
                    flag = len(parts) > 3 and parts[3] == "1"
                    deliveries[ident] += 1
                    key_deliveries.setdefault(key, []).append((t, flag))
                    first_delivery.setdefault(ident, (t, who))
                    redelivered += flag
                elif kind == "X":
                    events[parts[2]] += 1
                    if parts[2] in ("broker-close", "broker-channel-close", "broker-cancel", "client-exception"):
                        event_lines.append("%s %s %s" % (who, time.strftime("%H:%M:%S", time.localtime(t)), " ".join(parts[2:])))
    confirmed = {k.rsplit("#", 1)[0] for k in acked_keys if k not in returned_keys}
    consumed = set(deliveries)
    total_deliveries = sum(deliveries.values())
    lost = sorted(confirmed - consumed, key=lambda i: publish_time.get(i, (0, ""))[0])
    unexpected = sorted(consumed - set(published))
    # The same publish attempt delivered again without the redelivered flag: the broker
    # stored it twice (or forgot it had delivered it).
    unflagged = 0
    for key, seen in key_deliveries.items():
        if len(seen) > 1:
            seen.sort()
            if not all(flag for _, flag in seen[1:]):
                unflagged += 1
                if unflagged <= 10:
                    event_lines.append("unflagged redelivery of %s: %s" % (key, seen))
    unknown_consumed = len((consumed & set(published)) - confirmed)
    stats = collections.OrderedDict(
        published=len(published),
        publish_attempts=sum(published.values()),
        confirmed=len(confirmed),
        unknown=len(set(published) - confirmed),
        consumed=len(consumed),
        deliveries=total_deliveries,
        duplicated=total_deliveries - len(consumed),
        redelivered_flagged=redelivered,
        lost=len(lost),
        unexpected=len(unexpected),
        unknown_but_consumed=unknown_consumed,
        unflagged_redeliveries=unflagged,
        nacked=len(nacked),
        returned=len(returned_keys),
        broker_closes=events["broker-close"] + events["broker-channel-close"],
        broker_cancels=events["broker-cancel"],
        connection_losses=events["lost"],
        connect_failures=events["connect-failed"],
        stalls=events["stall"],
        client_exceptions=events["client-exception"],
        max_confirm_gap_s=round(max_gap[0], 2),
    )
    faults = collections.OrderedDict(
        leader_kills=args.leader_kills, pauses=args.pauses, restarts=args.restarts,
        nonleader_kills=args.nonleader_kills,
    )
    print("producers=%d consumers=%d" % (producers, consumers))
    for k, v in list(stats.items()) + list(faults.items()):
        print("%-24s %s" % (k, v))
    if max_gap[1]:
        print("%-24s %s" % ("max_confirm_gap_at", max_gap[1]))
    if args.left is not None:
        print("%-24s %s" % ("left_in_queue", args.left))
    for line in event_lines[:40]:
        print("event: " + line)
    if len(event_lines) > 40:
        print("event: ... %d more" % (len(event_lines) - 40))

    def when(t):
        return time.strftime("%H:%M:%S", time.localtime(t)) + ("%.3f" % (t % 1))[1:]

    for ident in lost[:20]:
        t, who = publish_time.get(ident, (0, "?"))
        keys = ["%s#%d" % (ident, a) for a in range(1, published.get(ident, 0) + 1)]
        acks = ", ".join("%s acked %s" % (k, when(acked_keys[k])) for k in keys if k in acked_keys)
        via = [port for ct, port in connects.get(who, []) if ct <= t]
        print("LOST %s: published by %s (connected %s) at %s; %s"
              % (ident, who, via[-1] if via else "?", when(t), acks))
    for ident in unexpected[:20]:
        t, who = first_delivery[ident]
        print("UNEXPECTED %s: first delivered to %s at %s" % (ident, who, when(t)))
    verdict = "FAIL" if lost or unexpected else "PASS"
    line = ("chaos %s: %ss seed=%s: published=%d confirmed=%d consumed=%d duplicated=%d lost=%d unexpected=%d "
            "leader_kills=%d pauses=%d restarts=%d (nonleader_kills=%d) unknown=%d nacked=%d returned=%d "
            "broker_closes=%d cancels=%d unflagged_redeliveries=%d stalls=%d max_confirm_gap=%.2fs left_in_queue=%s"
            % (verdict, args.seconds, args.seed, stats["published"], stats["confirmed"], stats["consumed"],
               stats["duplicated"], stats["lost"], stats["unexpected"], args.leader_kills, args.pauses,
               args.restarts, args.nonleader_kills, stats["unknown"], stats["nacked"], stats["returned"],
               stats["broker_closes"], stats["broker_cancels"], stats["unflagged_redeliveries"], stats["stalls"],
               stats["max_confirm_gap_s"], args.left if args.left is not None else "?"))
    if args.extra:
        line += " " + args.extra
    print()
    print(line)
    with open(os.path.join(args.dir, "summary.txt"), "w") as f:
        f.write(line + "\n")
    return 1 if lost or unexpected else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("declare")
    d.add_argument("--port", type=int, required=True)
    d.add_argument("--queue", required=True)
    for role in ("produce", "consume"):
        p = sub.add_parser(role)
        p.add_argument("--name", required=True)
        p.add_argument("--ports", required=True, help="home port first, then the others")
        p.add_argument("--queue", required=True)
        p.add_argument("--dir", required=True)
        p.add_argument("--heartbeat", type=int, default=2)
        p.add_argument("--home-return", type=float, default=20.0,
                       help="seconds on another node before going home (0: never)")
        if role == "produce":
            p.add_argument("--rate", type=float, default=200.0, help="messages per second")
            p.add_argument("--window", type=int, default=64, help="most unconfirmed messages")
            p.add_argument("--stall", type=float, default=10.0,
                           help="reconnect after this long without a confirm while some are due")
            p.add_argument("--stop-file", required=True)
            p.add_argument("--confirm-wait", type=float, default=30.0)
        else:
            p.add_argument("--prefetch", type=int, default=32)
            p.add_argument("--drain-file", required=True)
            p.add_argument("--drain-idle", type=float, default=5.0)
            p.add_argument("--drain-max", type=float, default=120.0)
    lq = sub.add_parser("leader")
    lq.add_argument("queue")
    lq.add_argument("names", nargs="+")
    r = sub.add_parser("report")
    r.add_argument("--dir", required=True)
    r.add_argument("--seconds", default="?")
    r.add_argument("--seed", default="?")
    r.add_argument("--leader-kills", type=int, default=0)
    r.add_argument("--nonleader-kills", type=int, default=0)
    r.add_argument("--pauses", type=int, default=0)
    r.add_argument("--restarts", type=int, default=0)
    r.add_argument("--left", default=None)
    r.add_argument("--extra", default="")
    args = ap.parse_args()
    if args.cmd == "declare":
        return cmd_declare(args)
    if args.cmd == "leader":
        return cmd_leader(args)
    if args.cmd == "report":
        return cmd_report(args)
    client = Producer(args) if args.cmd == "produce" else Consumer(args)
    client.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
