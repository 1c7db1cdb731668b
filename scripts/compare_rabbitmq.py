#!/usr/bin/env python3
"""Run the same error scenarios against two AMQP 0-9-1 brokers and compare their replies.

Typical use: the first URI is RabbitMQ (the oracle), the second WarrenMQ:

    scripts/compare_rabbitmq.py amqp://guest:guest@127.0.0.1:5695/%2F \\
                                amqp://guest:guest@127.0.0.1:5696/%2F

Every scenario opens its own connection(s) and channel(s). The client is a small raw
AMQP client built on pika's frame codec (pika.frame / pika.spec), so that the exact
close method (channel.close or connection.close), reply code, reply text and the
class/method ids in the close can be seen, and so that malformed frames can be sent.

For each scenario the outcome of every step is recorded, e.g.
    ok Queue.DeclareOk
    channel.close 404 "NOT_FOUND - no queue 'x' in vhost '/'" (50,10)
    connection.close 501 "FRAME_ERROR - ..." (0,0)
    socket closed
and the two brokers' step lists must be equal. Exit status: 0 when every scenario
matches, 1 when at least one differs, 2 on a usage or connection error.

Scenarios create names that start with "cmp-" in the URI's vhost and delete them again.

The perm_* scenarios log in as the user cmp-narrow (password cmp-narrow), which has only
configure ^cmp-c, write ^cmp-w and read ^cmp-r on vhost /, and compare each operation's
access refusal. Create that user on both brokers first with

    scripts/compare-permissions-setup.sh rabbitmqctl          # or: bash .../rabbitmq-oracle.sh ctl
    scripts/compare-permissions-setup.sh target/release/warrenctl -n HOST:PORT --data-dir DIR

Without it the narrow login is refused, which each perm_* scenario records as its outcome
(a difference, if the user is missing on one broker only). The queues and exchanges they
use are declared as the URI's user (guest) before each scenario and deleted after it.
"""
import argparse
import re
import socket
import struct
import sys
import time
import urllib.parse

import pika.frame
import pika.spec as spec
from pika.compat import as_bytes

TIMEOUT = 3.0
# RabbitMQ closes the socket of a refused login exactly 3 s later: wait past that.
LOGIN_TIMEOUT = 5.0


class Broker:
    """Connection parameters parsed from an amqp:// URI."""

    def __init__(self, uri):
        u = urllib.parse.urlparse(uri)
        if u.scheme != "amqp":
            raise ValueError(f"not an amqp:// URI: {uri}")
        self.uri = uri
        self.host = u.hostname or "127.0.0.1"
        self.port = u.port or 5672
        self.user = urllib.parse.unquote(u.username or "guest")
        self.password = urllib.parse.unquote(u.password or "guest")
        path = u.path[1:] if u.path.startswith("/") else u.path
        self.vhost = urllib.parse.unquote(path) if u.path else "/"


class Closed(Exception):
    """The peer closed the channel or the connection; carries the normalized outcome."""

    def __init__(self, outcome):
        super().__init__(outcome)
        self.outcome = outcome


def close_outcome(frame):
    m = frame.method
    kind = "connection.close" if isinstance(m, spec.Connection.Close) else "channel.close"
    text = m.reply_text.decode() if isinstance(m.reply_text, bytes) else m.reply_text
    return f'{kind} {m.reply_code} "{text}" ({m.class_id},{m.method_id})'


class Client:
    """A synchronous raw AMQP 0-9-1 client: one socket, frames in and out."""

    def __init__(self, broker, password=None, vhost=None, capabilities=None, handshake=True,
                 user=None):
        """user/password default to the URI's; vhost to the URI's."""
        self.b = broker
        self.user = broker.user if user is None else user
        self.sock = socket.create_connection((broker.host, broker.port), timeout=TIMEOUT)
        self.buf = b""
        self.pending = []
        self.frame_max = 131072
        self.closed = None
        if handshake:
            self.handshake(password, vhost, capabilities)

    # -- raw IO ---------------------------------------------------------------------
    def send_raw(self, data):
        try:
            self.sock.sendall(data)
        except OSError:
            pass

    def send(self, channel, method):
        self.send_raw(pika.frame.Method(channel, method).marshal())

    def send_content(self, channel, body=b"x", props=None):
        props = props or spec.BasicProperties()
        self.send_raw(pika.frame.Header(channel, len(body), props).marshal())
        if body:
            self.send_raw(pika.frame.Body(channel, body).marshal())

    def read_frame(self, timeout=TIMEOUT):
        """Next frame, None on timeout, raises Closed("socket closed") at EOF."""
        if self.pending:
            return self.pending.pop(0)
        deadline = time.time() + timeout
        while True:
            if self.buf:
                try:
                    used, frame = pika.frame.decode_frame(self.buf)
                except Exception as e:  # noqa: BLE001 - an undecodable reply is an outcome
                    raise Closed(f"undecodable frame: {e}") from e
                if frame is not None:
                    self.buf = self.buf[used:]
                    if isinstance(frame, pika.frame.Heartbeat):
                        continue
                    return frame
            left = deadline - time.time()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                return None
            except OSError:
                data = b""
            if not data:
                raise Closed("socket closed")
            self.buf += data

    def on_close(self, frame):
        """Answer a close from the broker with close-ok and raise the outcome."""
        out = close_outcome(frame)
        if isinstance(frame.method, spec.Connection.Close):
            self.send(0, spec.Connection.CloseOk())
            self.closed = out
        else:
            self.send(frame.channel_number, spec.Channel.CloseOk())
        raise Closed(out)

    def wait(self, channel, reply_types, timeout=TIMEOUT):
        """Read until one of reply_types arrives on channel (or a close); skip the rest."""
        deadline = time.time() + timeout
        while True:
            frame = self.read_frame(max(0.0, deadline - time.time()))
            if frame is None:
                raise Closed("timeout (no reply)")
            if isinstance(frame, pika.frame.Method):
                m = frame.method
                if isinstance(m, spec.Connection.Close):
                    self.on_close(frame)
                if isinstance(m, spec.Channel.Close) and frame.channel_number == channel:
                    self.on_close(frame)
                if frame.channel_number == channel and isinstance(m, reply_types):
                    return m

    # -- protocol -------------------------------------------------------------------
    def handshake(self, password, vhost, capabilities):
        self.send_raw(b"AMQP\x00\x00\x09\x01")
        self.wait(0, (spec.Connection.Start,))
        props = {"product": "compare_rabbitmq.py", "capabilities": capabilities or {}}
        pw = self.b.password if password is None else password
        response = b"\0" + as_bytes(self.user) + b"\0" + as_bytes(pw)
        self.send(0, spec.Connection.StartOk(client_properties=props, mechanism="PLAIN",
                                             response=response, locale="en_US"))
        tune = self.wait(0, (spec.Connection.Tune,), timeout=LOGIN_TIMEOUT)
        self.frame_max = tune.frame_max
        self.send(0, spec.Connection.TuneOk(channel_max=tune.channel_max, frame_max=tune.frame_max,
                                            heartbeat=0))
        self.send(0, spec.Connection.Open(virtual_host=self.b.vhost if vhost is None else vhost))
        self.wait(0, (spec.Connection.OpenOk,))

    def rpc(self, channel, method, reply_types=None):
        """Send a synchronous method and return its reply's name."""
        self.send(channel, method)
        reply_types = reply_types or _reply_types(method)
        reply = self.wait(channel, reply_types)
        return f"ok {reply.NAME}"

    def open_channel(self, channel=1):
        return self.rpc(channel, spec.Channel.Open(), (spec.Channel.OpenOk,))

    def probe(self, channel):
        """A synchronous no-op that shows whether an earlier async method closed the channel."""
        return self.rpc(channel, spec.Exchange.Declare(exchange="amq.direct", passive=True),
                        (spec.Exchange.DeclareOk,))

    def close(self):
        try:
            if self.closed is None:
                self.send(0, spec.Connection.Close(reply_code=200, reply_text="bye",
                                                   class_id=0, method_id=0))
                self.wait(0, (spec.Connection.CloseOk,), timeout=1)
        except Closed:
            pass
        finally:
            self.sock.close()


def _reply_types(method):
    name = type(method).__name__
    cls = type(method).__qualname__.split(".")[0]
    klass = getattr(spec, cls)
    if klass is spec.Basic and name == "Get":
        return (spec.Basic.GetOk, spec.Basic.GetEmpty)
    ok = getattr(klass, name + "Ok", None)
    if ok is None:
        raise ValueError(f"{cls}.{name} has no reply")
    return (ok,)


# -- scenario helpers -------------------------------------------------------------------
class Steps:
    """Records the outcome of each step; a step that closes the channel/connection ends it."""

    def __init__(self):
        self.out = []

    def run(self, label, fn):
        try:
            r = fn()
        except Closed as e:
            r = e.outcome
        self.out.append((label, r))
        return r


def frame_bytes(ftype, channel, payload, end=b"\xce"):
    return struct.pack(">BHI", ftype, channel, len(payload)) + payload + end


def method_payload(method):
    return pika.frame.Method(1, method).marshal()[7:-1]


def cleanup(b, queues=(), exchanges=()):
    c = Client(b)
    try:
        c.open_channel(1)
        for q in queues:
            c.rpc(1, spec.Queue.Delete(queue=q))
        for x in exchanges:
            c.rpc(1, spec.Exchange.Delete(exchange=x))
    except Closed:
        pass
    finally:
        c.close()


def one_channel(b, *steps, **client_kw):
    """Fresh connection + channel 1; run (label, fn(client)) steps until one closes."""
    s = Steps()
    c = None
    try:
        c = Client(b, **client_kw)
        s.run("channel.open", lambda: c.open_channel(1))
        for label, fn in steps:
            r = s.run(label, lambda fn=fn: fn(c))
            if not r.startswith("ok"):
                break
    except Closed as e:
        s.out.append(("connect", e.outcome))
    finally:
        if c:
            c.close()
    return s.out


def qd(name, **kw):
    return lambda c: c.rpc(1, spec.Queue.Declare(queue=name, **kw))


def xd(name, type="direct", **kw):
    return lambda c: c.rpc(1, spec.Exchange.Declare(exchange=name, type=type, **kw))


def send_then_probe(method):
    def f(c):
        c.send(1, method)
        return c.probe(1)
    return f


# -- scenarios --------------------------------------------------------------------------
SCENARIOS = []


def scenario(fn):
    SCENARIOS.append(fn)
    return fn


@scenario
def passive_missing_queue(b):
    return one_channel(b, ("queue.declare passive", qd("cmp-missing-q", passive=True)))


@scenario
def passive_missing_exchange(b):
    return one_channel(b, ("exchange.declare passive",
                           xd("cmp-missing-x", passive=True)))


def redeclare_queue(b, name, first, second):
    cleanup(b, queues=[name])
    out = one_channel(b, ("declare", qd(name, **first)), ("redeclare", qd(name, **second)))
    cleanup(b, queues=[name])
    return out


@scenario
def redeclare_queue_durable(b):
    return redeclare_queue(b, "cmp-rq-durable", {"durable": False}, {"durable": True})


@scenario
def redeclare_queue_auto_delete(b):
    return redeclare_queue(b, "cmp-rq-ad", {"auto_delete": False}, {"auto_delete": True})


@scenario
def redeclare_queue_exclusive(b):
    return redeclare_queue(b, "cmp-rq-excl", {"exclusive": True}, {"exclusive": False})


# Argument equivalence on redeclare. WarrenMQ refuses a new queue declared with the
# arguments it does not implement yet (see declare_unsupported_argument), so the value
# comparisons use arguments both brokers accept: x-quorum-initial-group-size on a quorum
# queue for integers (RabbitMQ 3.10 refuses it on a classic queue) and x-queue-mode for
# strings. redeclare_queue_max_length_added still uses x-max-length: its first declare
# has no arguments, so only the comparison runs.
def quorum(**arguments):
    """queue.declare keyword arguments for a durable quorum queue with extra arguments."""
    return {"durable": True, "arguments": {"x-queue-type": "quorum", **arguments}}


GROUP = "x-quorum-initial-group-size"


@scenario
def redeclare_queue_group_size(b):
    return redeclare_queue(b, "cmp-rq-qigs", quorum(**{GROUP: 3}), quorum(**{GROUP: 5}))


@scenario
def redeclare_queue_max_length_added(b):
    return redeclare_queue(b, "cmp-rq-maxlen2", {}, {"arguments": {"x-max-length": 20}})


@scenario
def redeclare_queue_group_size_added(b):
    return redeclare_queue(b, "cmp-rq-qigs2", quorum(), quorum(**{GROUP: 5}))


@scenario
def redeclare_queue_type(b):
    return redeclare_queue(b, "cmp-rq-type", {"durable": True},
                           {"durable": True, "arguments": {"x-queue-type": "quorum"}})


@scenario
def redeclare_queue_type_explicit(b):
    return redeclare_queue(b, "cmp-rq-type2",
                           {"durable": True, "arguments": {"x-queue-type": "quorum"}},
                           {"durable": True, "arguments": {"x-queue-type": "classic"}})


@scenario
def redeclare_queue_group_size_removed(b):
    return redeclare_queue(b, "cmp-rq-qigs3", quorum(**{GROUP: 3}), quorum())


@scenario
def redeclare_queue_group_size_string(b):
    # Same digits, other AMQP type (signedint vs longstr): inequivalent.
    return redeclare_queue(b, "cmp-rq-qigs4", quorum(**{GROUP: 3}), quorum(**{GROUP: "3"}))


@scenario
def redeclare_queue_group_size_same(b):
    # Equal compared argument; an extra unknown argument is not compared.
    return redeclare_queue(b, "cmp-rq-qigs5", quorum(**{GROUP: 3}),
                           quorum(**{GROUP: 3, "x-unknown": 1}))


@scenario
def redeclare_queue_mode(b):
    return redeclare_queue(b, "cmp-rq-mode", {"arguments": {"x-queue-mode": "default"}},
                           {"arguments": {"x-queue-mode": "lazy"}})


@scenario
def redeclare_queue_mode_added(b):
    return redeclare_queue(b, "cmp-rq-mode2", {}, {"arguments": {"x-queue-mode": "lazy"}})


@scenario
def redeclare_queue_mode_removed(b):
    return redeclare_queue(b, "cmp-rq-mode3", {"arguments": {"x-queue-mode": "lazy"}}, {})


# Which arguments a redeclare compares depends on the queue's type (RabbitMQ 3.10's
# queue_arguments per queue type); a classic queue's x-queue-type may be left out.
QQ = {"durable": True, "arguments": {"x-queue-type": "quorum"}}


@scenario
def redeclare_quorum_without_type(b):
    return redeclare_queue(b, "cmp-rq-qq-notype", QQ, {"durable": True})


@scenario
def redeclare_classic_with_classic_type(b):
    return redeclare_queue(b, "cmp-rq-cq-type", {"durable": True},
                           {"durable": True, "arguments": {"x-queue-type": "classic"}})


@scenario
def redeclare_classic_type_left_out(b):
    return redeclare_queue(b, "cmp-rq-cq-type2",
                           {"durable": True, "arguments": {"x-queue-type": "classic"}},
                           {"durable": True})


@scenario
def redeclare_classic_queue_version(b):
    return redeclare_queue(b, "cmp-rq-cq-version", {}, {"arguments": {"x-queue-version": 2}})


@scenario
def redeclare_classic_quorum_only_arg(b):
    return redeclare_queue(b, "cmp-rq-cq-qsize", {"durable": True},
                           {"durable": True, "arguments": {"x-quorum-initial-group-size": 3}})


@scenario
def redeclare_quorum_classic_only_arg(b):
    return redeclare_queue(b, "cmp-rq-qq-mode", QQ,
                           {"durable": True,
                            "arguments": {"x-queue-type": "quorum", "x-queue-mode": "lazy"}})


@scenario
def redeclare_quorum_leader_locator(b):
    return redeclare_queue(b, "cmp-rq-qq-loc", QQ,
                           {"durable": True, "arguments": {"x-queue-type": "quorum",
                                                           "x-queue-leader-locator": "balanced"}})


@scenario
def declare_server_named_quorum(b):
    return one_channel(b, ("declare", qd("", durable=True,
                                         arguments={"x-queue-type": "quorum", "x-max-length": -1})))


def redeclare_exchange(b, name, first, second):
    cleanup(b, exchanges=[name])
    out = one_channel(b, ("declare", xd(name, **first)), ("redeclare", xd(name, **second)))
    cleanup(b, exchanges=[name])
    return out


@scenario
def redeclare_exchange_type(b):
    return redeclare_exchange(b, "cmp-rx-type", {"type": "direct"}, {"type": "fanout"})


@scenario
def redeclare_exchange_durable(b):
    return redeclare_exchange(b, "cmp-rx-durable", {"durable": False}, {"durable": True})


@scenario
def redeclare_exchange_auto_delete(b):
    return redeclare_exchange(b, "cmp-rx-ad", {"auto_delete": False}, {"auto_delete": True})


@scenario
def redeclare_exchange_arguments(b):
    return redeclare_exchange(b, "cmp-rx-args", {"arguments": {"alternate-exchange": "a"}},
                              {"arguments": {"alternate-exchange": "b"}})


@scenario
def redeclare_exchange_arguments_added(b):
    return redeclare_exchange(b, "cmp-rx-args2", {}, {"arguments": {"alternate-exchange": "b"}})


@scenario
def redeclare_exchange_other_arguments(b):
    return redeclare_exchange(b, "cmp-rx-args3", {"arguments": {"x-foo": "a"}},
                              {"arguments": {"x-foo": "b"}})


@scenario
def redeclare_exchange_internal(b):
    return redeclare_exchange(b, "cmp-rx-int", {"internal": False}, {"internal": True})


def bad_declare(b, name, **kw):
    out = one_channel(b, ("declare", qd(name, **kw)))
    cleanup(b, queues=[name])
    return out


@scenario
def declare_max_length_negative(b):
    return bad_declare(b, "cmp-bad-maxlen", arguments={"x-max-length": -1})


@scenario
def declare_max_length_string(b):
    return bad_declare(b, "cmp-bad-maxlen-s", arguments={"x-max-length": "ten"})


@scenario
def declare_ttl_negative(b):
    return bad_declare(b, "cmp-bad-ttl", arguments={"x-message-ttl": -5})


@scenario
def declare_ttl_string(b):
    return bad_declare(b, "cmp-bad-ttl-s", arguments={"x-message-ttl": "5"})


@scenario
def declare_expires_zero(b):
    return bad_declare(b, "cmp-bad-exp", arguments={"x-expires": 0})


@scenario
def declare_expires_string(b):
    return bad_declare(b, "cmp-bad-exp-s", arguments={"x-expires": "x"})


@scenario
def declare_max_priority_string(b):
    return bad_declare(b, "cmp-bad-prio", arguments={"x-max-priority": "x"})


@scenario
def declare_overflow_unknown(b):
    return bad_declare(b, "cmp-bad-ovf", arguments={"x-overflow": "bogus"})


@scenario
def declare_dlx_int(b):
    return bad_declare(b, "cmp-bad-dlx", arguments={"x-dead-letter-exchange": 5})


@scenario
def declare_queue_type_int(b):
    return bad_declare(b, "cmp-bad-type-i", arguments={"x-queue-type": 5})


@scenario
def declare_unknown_queue_type(b):
    return bad_declare(b, "cmp-bad-type", durable=True, arguments={"x-queue-type": "bogus"})


@scenario
def declare_quorum_non_durable(b):
    return bad_declare(b, "cmp-qq-nd", durable=False, arguments={"x-queue-type": "quorum"})


@scenario
def declare_quorum_exclusive(b):
    return bad_declare(b, "cmp-qq-ex", durable=True, exclusive=True,
                       arguments={"x-queue-type": "quorum"})


@scenario
def declare_quorum_auto_delete(b):
    return bad_declare(b, "cmp-qq-ad", durable=True, auto_delete=True,
                       arguments={"x-queue-type": "quorum"})


@scenario
def declare_queue_amq_prefix(b):
    return one_channel(b, ("declare amq.q", qd("amq.cmp-q")))


@scenario
def declare_exchange_amq_prefix(b):
    return one_channel(b, ("declare amq.x", xd("amq.cmp-x")))


@scenario
def declare_exchange_amq_direct_passive_ok(b):
    return one_channel(b, ("declare amq.direct", xd("amq.direct", durable=True)))


@scenario
def declare_exchange_unknown_type(b):
    return one_channel(b, ("declare", xd("cmp-x-badtype", type="nonsense")))


@scenario
def declare_default_exchange_passive(b):
    return one_channel(b, ("declare '' passive", xd("", passive=True)))


@scenario
def delete_exchange_amq_missing(b):
    return one_channel(b, ("delete amq.nope",
                           lambda c: c.rpc(1, spec.Exchange.Delete(exchange="amq.nope"))))


@scenario
def unbind_missing_exchange(b):
    out = one_channel(b, ("declare", qd("cmp-unbind-q")),
                      ("unbind", lambda c: c.rpc(1, spec.Queue.Unbind(queue="cmp-unbind-q",
                                                                      exchange="cmp-nope-x",
                                                                      routing_key="k"))))
    cleanup(b, queues=["cmp-unbind-q"])
    return out


@scenario
def unbind_missing_binding(b):
    out = one_channel(b, ("declare", qd("cmp-unbind-q2")),
                      ("unbind", lambda c: c.rpc(1, spec.Queue.Unbind(queue="cmp-unbind-q2",
                                                                      exchange="amq.direct",
                                                                      routing_key="k"))))
    cleanup(b, queues=["cmp-unbind-q2"])
    return out


@scenario
def exchange_unbind_missing(b):
    return one_channel(b, ("unbind", lambda c: c.rpc(1, spec.Exchange.Unbind(
        destination="cmp-nope-d", source="cmp-nope-s", routing_key="k"))))


@scenario
def delete_exchange_amq_direct(b):
    return one_channel(b, ("delete amq.direct",
                           lambda c: c.rpc(1, spec.Exchange.Delete(exchange="amq.direct"))))


@scenario
def delete_default_exchange(b):
    return one_channel(b, ("delete ''", lambda c: c.rpc(1, spec.Exchange.Delete(exchange=""))))


@scenario
def declare_default_exchange(b):
    return one_channel(b, ("declare ''", xd("", type="direct")))


@scenario
def delete_missing_queue(b):
    return one_channel(b, ("delete", lambda c: c.rpc(1, spec.Queue.Delete(queue="cmp-nope"))))


@scenario
def delete_missing_exchange(b):
    return one_channel(b, ("delete", lambda c: c.rpc(1, spec.Exchange.Delete(exchange="cmp-nope"))))


@scenario
def bind_missing_exchange(b):
    out = one_channel(b, ("declare", qd("cmp-bind-q")),
                      ("bind", lambda c: c.rpc(1, spec.Queue.Bind(queue="cmp-bind-q",
                                                                  exchange="cmp-nope-x",
                                                                  routing_key="k"))))
    cleanup(b, queues=["cmp-bind-q"])
    return out


@scenario
def bind_missing_queue(b):
    return one_channel(b, ("bind", lambda c: c.rpc(1, spec.Queue.Bind(queue="cmp-nope-q",
                                                                      exchange="amq.direct",
                                                                      routing_key="k"))))


@scenario
def bind_default_exchange(b):
    out = one_channel(b, ("declare", qd("cmp-bind-d")),
                      ("bind", lambda c: c.rpc(1, spec.Queue.Bind(queue="cmp-bind-d", exchange="",
                                                                  routing_key="k"))))
    cleanup(b, queues=["cmp-bind-d"])
    return out


@scenario
def unbind_missing_queue(b):
    return one_channel(b, ("unbind", lambda c: c.rpc(1, spec.Queue.Unbind(queue="cmp-nope-q",
                                                                          exchange="amq.direct",
                                                                          routing_key="k"))))


@scenario
def exchange_bind_missing_source(b):
    return one_channel(b, ("bind", lambda c: c.rpc(1, spec.Exchange.Bind(
        destination="amq.fanout", source="cmp-nope-x", routing_key="k"))))


@scenario
def publish_missing_exchange(b):
    def f(c):
        c.send(1, spec.Basic.Publish(exchange="cmp-nope-x", routing_key="k"))
        c.send_content(1)
        return c.probe(1)
    return one_channel(b, ("publish", f))


@scenario
def consume_missing_queue(b):
    return one_channel(b, ("consume", lambda c: c.rpc(1, spec.Basic.Consume(queue="cmp-nope-q"))))


@scenario
def get_missing_queue(b):
    return one_channel(b, ("get", lambda c: c.rpc(1, spec.Basic.Get(queue="cmp-nope-q"))))


@scenario
def purge_missing_queue(b):
    return one_channel(b, ("purge", lambda c: c.rpc(1, spec.Queue.Purge(queue="cmp-nope-q"))))


def exclusive_other(b, label, fn):
    owner = Client(b)
    try:
        owner.open_channel(1)
        owner.rpc(1, spec.Queue.Declare(queue="cmp-excl", exclusive=True))
        return one_channel(b, (label, fn))
    finally:
        owner.close()


@scenario
def exclusive_declare_other_conn(b):
    return exclusive_other(b, "declare", qd("cmp-excl"))


@scenario
def exclusive_passive_declare_other_conn(b):
    return exclusive_other(b, "declare passive", qd("cmp-excl", passive=True))


@scenario
def exclusive_consume_other_conn(b):
    return exclusive_other(b, "consume", lambda c: c.rpc(1, spec.Basic.Consume(queue="cmp-excl")))


@scenario
def exclusive_delete_other_conn(b):
    return exclusive_other(b, "delete", lambda c: c.rpc(1, spec.Queue.Delete(queue="cmp-excl")))


@scenario
def exclusive_purge_other_conn(b):
    return exclusive_other(b, "purge", lambda c: c.rpc(1, spec.Queue.Purge(queue="cmp-excl")))


@scenario
def exclusive_get_other_conn(b):
    return exclusive_other(b, "get", lambda c: c.rpc(1, spec.Basic.Get(queue="cmp-excl")))


@scenario
def exclusive_bind_other_conn(b):
    return exclusive_other(b, "bind", lambda c: c.rpc(1, spec.Queue.Bind(
        queue="cmp-excl", exchange="amq.direct", routing_key="k")))


@scenario
def exclusive_consumer_conflict(b):
    cleanup(b, queues=["cmp-exc-cons"])
    s = Steps()
    c1 = Client(b)
    try:
        s.run("open", lambda: c1.open_channel(1))
        s.run("declare", lambda: c1.rpc(1, spec.Queue.Declare(queue="cmp-exc-cons")))
        s.run("consume exclusive", lambda: c1.rpc(1, spec.Basic.Consume(
            queue="cmp-exc-cons", consumer_tag="a", exclusive=True)))
        s.out += one_channel(b, ("second consume", lambda c: c.rpc(1, spec.Basic.Consume(
            queue="cmp-exc-cons", consumer_tag="b"))))
    finally:
        c1.close()
    cleanup(b, queues=["cmp-exc-cons"])
    return s.out


@scenario
def exclusive_consume_when_consumers_exist(b):
    cleanup(b, queues=["cmp-exc-cons2"])
    s = Steps()
    c1 = Client(b)
    try:
        s.run("open", lambda: c1.open_channel(1))
        s.run("declare", lambda: c1.rpc(1, spec.Queue.Declare(queue="cmp-exc-cons2")))
        s.run("consume", lambda: c1.rpc(1, spec.Basic.Consume(queue="cmp-exc-cons2",
                                                              consumer_tag="a")))
        s.out += one_channel(b, ("exclusive consume", lambda c: c.rpc(1, spec.Basic.Consume(
            queue="cmp-exc-cons2", consumer_tag="b", exclusive=True))))
    finally:
        c1.close()
    cleanup(b, queues=["cmp-exc-cons2"])
    return s.out


def with_message(name):
    """Steps that declare queue `name`, publish one message to it and basic.get it (tag 1)."""
    def publish(c):
        c.send(1, spec.Basic.Publish(exchange="", routing_key=name))
        c.send_content(1, b"m")
        return c.probe(1)
    return [("declare", qd(name, exclusive=True)), ("publish", publish),
            ("get", lambda c: c.rpc(1, spec.Basic.Get(queue=name)))]


@scenario
def consume_empty_name_without_declare(b):
    return one_channel(b, ("consume ''", lambda c: c.rpc(1, spec.Basic.Consume(queue=""))))


@scenario
def get_empty_name_without_declare(b):
    return one_channel(b, ("get ''", lambda c: c.rpc(1, spec.Basic.Get(queue=""))))


@scenario
def purge_empty_name_without_declare(b):
    return one_channel(b, ("purge ''", lambda c: c.rpc(1, spec.Queue.Purge(queue=""))))


@scenario
def bind_empty_name_without_declare(b):
    return one_channel(b, ("bind ''", lambda c: c.rpc(1, spec.Queue.Bind(
        queue="", exchange="amq.direct", routing_key="k"))))


@scenario
def delete_empty_name_without_declare(b):
    return one_channel(b, ("delete ''", lambda c: c.rpc(1, spec.Queue.Delete(queue=""))))


@scenario
def passive_declare_empty_name_without_declare(b):
    return one_channel(b, ("declare '' passive", qd("", passive=True)))


@scenario
def empty_name_means_last_declared_queue(b):
    return one_channel(b, ("declare", qd("cmp-last", exclusive=True)),
                       ("bind '' ''", lambda c: c.rpc(1, spec.Queue.Bind(
                           queue="", exchange="amq.direct", routing_key=""))),
                       ("purge ''", lambda c: c.rpc(1, spec.Queue.Purge(queue=""))),
                       ("passive ''", qd("", passive=True)),
                       ("delete ''", lambda c: c.rpc(1, spec.Queue.Delete(queue=""))),
                       ("get '' after delete", lambda c: c.rpc(1, spec.Basic.Get(queue=""))))


@scenario
def consume_priority_string(b):
    return one_channel(b, ("declare", qd("cmp-prio-c", exclusive=True)),
                       ("consume", lambda c: c.rpc(1, spec.Basic.Consume(
                           queue="cmp-prio-c", arguments={"x-priority": "high"}))))


@scenario
def publish_to_internal_exchange(b):
    out = one_channel(b, ("declare internal", xd("cmp-internal", internal=True)),
                      ("publish", lambda c: (c.send(1, spec.Basic.Publish(
                          exchange="cmp-internal", routing_key="k")), c.send_content(1),
                          c.probe(1))[-1]))
    cleanup(b, exchanges=["cmp-internal"])
    return out


@scenario
def publish_to_trace_exchange(b):
    def f(c):
        c.send(1, spec.Basic.Publish(exchange="amq.rabbitmq.trace", routing_key="k"))
        c.send_content(1)
        return c.probe(1)
    return one_channel(b, ("publish", f))


@scenario
def passive_missing_amq_exchange(b):
    return one_channel(b, ("declare amq.nope passive", xd("amq.nope", passive=True)))


@scenario
def exchange_bind_to_default(b):
    return one_channel(b, ("bind", lambda c: c.rpc(1, spec.Exchange.Bind(
        destination="", source="amq.direct", routing_key="k"))))


@scenario
def exchange_bind_missing_destination(b):
    return one_channel(b, ("bind", lambda c: c.rpc(1, spec.Exchange.Bind(
        destination="cmp-nope-d", source="amq.direct", routing_key="k"))))


@scenario
def ack_tag_zero_multiple(b):
    return one_channel(b, ("ack 0 multiple",
                           send_then_probe(spec.Basic.Ack(delivery_tag=0, multiple=True))))


@scenario
def ack_tag_zero(b):
    return one_channel(b, ("ack 0", send_then_probe(spec.Basic.Ack(delivery_tag=0))))


@scenario
def nack_on_confirm_channel_unknown(b):
    return one_channel(b, ("confirm.select", lambda c: c.rpc(1, spec.Confirm.Select())),
                       ("nack 3", send_then_probe(spec.Basic.Nack(delivery_tag=3))))


@scenario
def recover_async(b):
    return one_channel(b, ("recover-async", send_then_probe(spec.Basic.RecoverAsync())))


@scenario
def recover_requeue_false(b):
    return one_channel(b, ("recover requeue=false",
                           lambda c: c.rpc(1, spec.Basic.Recover(requeue=False))))


@scenario
def publish_immediate(b):
    def f(c):
        c.send(1, spec.Basic.Publish(exchange="", routing_key="k", immediate=True))
        c.send_content(1)
        return c.probe(1)
    return one_channel(b, ("publish immediate", f))


@scenario
def ack_twice_after_consume_auto_ack(b):
    def publish(c):
        c.send(1, spec.Basic.Publish(exchange="", routing_key="cmp-aa"))
        c.send_content(1, b"m")
        return c.probe(1)
    return one_channel(b, ("declare", qd("cmp-aa", exclusive=True)), ("publish", publish),
                       ("get no-ack", lambda c: c.rpc(1, spec.Basic.Get(queue="cmp-aa",
                                                                       no_ack=True))),
                       ("ack 1", send_then_probe(spec.Basic.Ack(delivery_tag=1))))


@scenario
def queue_declare_exclusive_passive_own(b):
    return one_channel(b, ("declare", qd("cmp-own-ex", exclusive=True)),
                       ("passive", qd("cmp-own-ex", passive=True)))


@scenario
def large_body_over_header_size(b):
    def data(c):
        return (pika.frame.Method(1, spec.Basic.Publish(exchange="", routing_key="x")).marshal()
                + pika.frame.Header(1, 2, spec.BasicProperties()).marshal()
                + pika.frame.Body(1, b"xyz").marshal())
    return raw(b, "3-octet body for a 2-octet header", data)


@scenario
def tx_select_twice_then_confirm(b):
    return one_channel(b, ("tx.select", lambda c: c.rpc(1, spec.Tx.Select())),
                       ("tx.select", lambda c: c.rpc(1, spec.Tx.Select())))


@scenario
def channel_flow_false(b):
    return one_channel(b, ("flow false", lambda c: c.rpc(1, spec.Channel.Flow(active=False))))


@scenario
def access_request(b):
    return one_channel(b, ("access.request", lambda c: c.rpc(1, spec.Access.Request(realm="/data"))))


@scenario
def ack_unknown_tag(b):
    return one_channel(b, ("ack 42", send_then_probe(spec.Basic.Ack(delivery_tag=42))))


@scenario
def ack_twice(b):
    return one_channel(b, *with_message("cmp-ack2"),
                       ("ack 1", send_then_probe(spec.Basic.Ack(delivery_tag=1))),
                       ("ack 1 again", send_then_probe(spec.Basic.Ack(delivery_tag=1))))


@scenario
def ack_multiple_unknown(b):
    return one_channel(b, ("ack multiple 7",
                           send_then_probe(spec.Basic.Ack(delivery_tag=7, multiple=True))))


@scenario
def nack_unknown_tag(b):
    return one_channel(b, ("nack 9", send_then_probe(spec.Basic.Nack(delivery_tag=9))))


@scenario
def reject_unknown_tag(b):
    return one_channel(b, ("reject 9", send_then_probe(spec.Basic.Reject(delivery_tag=9))))


@scenario
def qos_prefetch_size(b):
    return one_channel(b, ("qos size 10", lambda c: c.rpc(1, spec.Basic.Qos(prefetch_size=10))))


@scenario
def consume_duplicate_tag(b):
    return one_channel(b, ("declare", qd("cmp-dup-tag", exclusive=True)),
                       ("consume", lambda c: c.rpc(1, spec.Basic.Consume(queue="cmp-dup-tag",
                                                                         consumer_tag="t"))),
                       ("consume again", lambda c: c.rpc(1, spec.Basic.Consume(
                           queue="cmp-dup-tag", consumer_tag="t"))))


@scenario
def cancel_unknown_tag(b):
    return one_channel(b, ("cancel", lambda c: c.rpc(1, spec.Basic.Cancel(consumer_tag="nope"))))


@scenario
def tx_commit_without_select(b):
    return one_channel(b, ("commit", lambda c: c.rpc(1, spec.Tx.Commit())))


@scenario
def tx_rollback_without_select(b):
    return one_channel(b, ("rollback", lambda c: c.rpc(1, spec.Tx.Rollback())))


@scenario
def confirm_on_tx_channel(b):
    return one_channel(b, ("tx.select", lambda c: c.rpc(1, spec.Tx.Select())),
                       ("confirm.select", lambda c: c.rpc(1, spec.Confirm.Select())))


@scenario
def tx_on_confirm_channel(b):
    return one_channel(b, ("confirm.select", lambda c: c.rpc(1, spec.Confirm.Select())),
                       ("tx.select", lambda c: c.rpc(1, spec.Tx.Select())))


@scenario
def queue_delete_if_unused(b):
    return one_channel(b, ("declare", qd("cmp-del-unused", exclusive=True)),
                       ("consume", lambda c: c.rpc(1, spec.Basic.Consume(queue="cmp-del-unused"))),
                       ("delete if-unused", lambda c: c.rpc(1, spec.Queue.Delete(
                           queue="cmp-del-unused", if_unused=True))))


@scenario
def queue_delete_if_empty(b):
    def publish(c):
        c.send(1, spec.Basic.Publish(exchange="", routing_key="cmp-del-empty"))
        c.send_content(1, b"m")
        return c.probe(1)
    return one_channel(b, ("declare", qd("cmp-del-empty", exclusive=True)), ("publish", publish),
                       ("delete if-empty", lambda c: c.rpc(1, spec.Queue.Delete(
                           queue="cmp-del-empty", if_empty=True))))


@scenario
def exchange_delete_if_unused(b):
    cleanup(b, exchanges=["cmp-xdel"])
    out = one_channel(b, ("declare x", xd("cmp-xdel")),
                      ("declare q", qd("cmp-xdel-q", exclusive=True)),
                      ("bind", lambda c: c.rpc(1, spec.Queue.Bind(queue="cmp-xdel-q",
                                                                  exchange="cmp-xdel",
                                                                  routing_key="k"))),
                      ("delete if-unused", lambda c: c.rpc(1, spec.Exchange.Delete(
                          exchange="cmp-xdel", if_unused=True))))
    cleanup(b, exchanges=["cmp-xdel"])
    return out


@scenario
def channel_open_twice(b):
    return one_channel(b, ("channel.open again", lambda c: c.open_channel(1)))


@scenario
def channel_close_twice(b):
    def f(c):
        c.send(1, spec.Channel.Close(reply_code=200, reply_text="", class_id=0, method_id=0))
        c.send(1, spec.Channel.Close(reply_code=200, reply_text="", class_id=0, method_id=0))
        c.wait(1, (spec.Channel.CloseOk,))
        # A second close-ok, or a close of the connection, or nothing.
        frame = c.read_frame(1.0)
        if frame is None:
            return "ok only one Channel.CloseOk"
        if isinstance(frame, pika.frame.Method) and isinstance(frame.method, spec.Connection.Close):
            c.on_close(frame)
        return f"ok then {frame.method.NAME if isinstance(frame, pika.frame.Method) else frame}"
    return one_channel(b, ("close twice", f))


@scenario
def method_on_unopened_channel(b):
    return one_channel(b, ("declare on ch 5", lambda c: c.rpc(5, spec.Queue.Declare(
        queue="cmp-unopened", exclusive=True))))


@scenario
def method_after_channel_close(b):
    def f(c):
        c.rpc(1, spec.Channel.Close(reply_code=200, reply_text="", class_id=0, method_id=0),
              (spec.Channel.CloseOk,))
        return c.rpc(1, spec.Queue.Declare(queue="cmp-after-close", exclusive=True))
    return one_channel(b, ("declare after close", f))


def raw(b, label, data_fn):
    """Fresh connection; send raw bytes; report what the broker does."""
    def f(c):
        c.send_raw(data_fn(c))
        return c.probe(1)
    return one_channel(b, (label, f))


@scenario
def header_on_channel_0(b):
    return raw(b, "header on ch 0",
               lambda c: pika.frame.Header(0, 1, spec.BasicProperties()).marshal())


@scenario
def body_on_channel_0(b):
    return raw(b, "body on ch 0", lambda c: pika.frame.Body(0, b"x").marshal())


@scenario
def header_on_unopened_channel(b):
    return raw(b, "header on ch 3",
               lambda c: pika.frame.Header(3, 1, spec.BasicProperties()).marshal())


@scenario
def body_on_unopened_channel(b):
    return raw(b, "body on ch 3", lambda c: pika.frame.Body(3, b"x").marshal())


@scenario
def header_without_publish(b):
    return raw(b, "header on ch 1",
               lambda c: pika.frame.Header(1, 1, spec.BasicProperties()).marshal())


@scenario
def body_without_header(b):
    def data(c):
        return (pika.frame.Method(1, spec.Basic.Publish(exchange="", routing_key="x")).marshal()
                + pika.frame.Body(1, b"x").marshal())
    return raw(b, "publish then body", data)


@scenario
def method_on_channel_0(b):
    return raw(b, "queue.declare on ch 0", lambda c: pika.frame.Method(
        0, spec.Queue.Declare(queue="cmp-ch0", exclusive=True)).marshal())


@scenario
def frame_too_large(b):
    return raw(b, "frame > frame_max",
               lambda c: frame_bytes(3, 1, b"x" * (c.frame_max + 100)))


@scenario
def unknown_frame_type(b):
    return raw(b, "frame type 9", lambda c: frame_bytes(9, 1, b"abcd"))


@scenario
def bad_frame_end(b):
    return raw(b, "frame end 0x00", lambda c: frame_bytes(
        1, 1, method_payload(spec.Queue.Declare(queue="cmp-fe", exclusive=True)), end=b"\x00"))


@scenario
def method_missing_argument(b):
    # queue.declare cut after the ticket and the queue name: the bits and table are missing.
    return raw(b, "truncated queue.declare",
               lambda c: frame_bytes(1, 1, struct.pack(">HHH", 50, 10, 0) + b"\x03abc"))


@scenario
def frame_at_frame_max(b):
    # Payload of exactly frame_max - 8 octets: the largest frame the spec allows.
    def data(c):
        return (pika.frame.Method(1, spec.Basic.Publish(exchange="", routing_key="cmp-none"))
                .marshal()
                + pika.frame.Header(1, c.frame_max - 8, spec.BasicProperties()).marshal()
                + frame_bytes(3, 1, b"x" * (c.frame_max - 8)))
    return raw(b, "frame of frame_max", data)


@scenario
def frame_slightly_over_frame_max(b):
    def data(c):
        return (pika.frame.Method(1, spec.Basic.Publish(exchange="", routing_key="cmp-none"))
                .marshal()
                + pika.frame.Header(1, c.frame_max - 4, spec.BasicProperties()).marshal()
                + frame_bytes(3, 1, b"x" * (c.frame_max - 4)))
    return raw(b, "frame of frame_max + 4", data)


@scenario
def frame_one_over_frame_max(b):
    return raw(b, "payload of frame_max + 1",
               lambda c: frame_bytes(3, 1, b"x" * (c.frame_max + 1)))


@scenario
def too_many_channels(b):
    def f(c):
        n = 2
        while True:
            c.send(n, spec.Channel.Open())
            c.wait(n, (spec.Channel.OpenOk,))
            n += 1
            if n > 70000:
                return "ok no limit"
    return one_channel(b, ("open channels until refused", f))


@scenario
def method_during_content(b):
    def data(c):
        return (pika.frame.Method(1, spec.Basic.Publish(exchange="", routing_key="x")).marshal()
                + pika.frame.Method(1, spec.Basic.Qos(prefetch_count=1)).marshal())
    return raw(b, "publish then qos", data)


@scenario
def header_during_body(b):
    def data(c):
        return (pika.frame.Method(1, spec.Basic.Publish(exchange="", routing_key="x")).marshal()
                + pika.frame.Header(1, 5, spec.BasicProperties()).marshal()
                + pika.frame.Header(1, 5, spec.BasicProperties()).marshal())
    return raw(b, "publish, header, header", data)


@scenario
def header_wrong_class(b):
    def data(c):
        header = struct.pack(">HHQH", 50, 0, 1, 0)
        return (pika.frame.Method(1, spec.Basic.Publish(exchange="", routing_key="x")).marshal()
                + frame_bytes(2, 1, header))
    return raw(b, "publish, header of class 50", data)


@scenario
def short_method_frame(b):
    return raw(b, "method frame of 2 octets", lambda c: frame_bytes(1, 1, b"\x00\x32"))


@scenario
def heartbeat_with_payload(b):
    return raw(b, "heartbeat with payload", lambda c: frame_bytes(8, 0, b"\x07"))


@scenario
def connection_open_when_running(b):
    return raw(b, "connection.open again", lambda c: pika.frame.Method(
        0, spec.Connection.Open(virtual_host="/")).marshal())


@scenario
def qos_on_unopened_channel(b):
    return raw(b, "qos on ch 7", lambda c: pika.frame.Method(
        7, spec.Basic.Qos(prefetch_count=1)).marshal())


@scenario
def channel_above_channel_max(b):
    return raw(b, "channel.open on 65535", lambda c: pika.frame.Method(
        65535, spec.Channel.Open()).marshal())


@scenario
def unknown_class_id(b):
    return raw(b, "class 99", lambda c: frame_bytes(1, 1, struct.pack(">HH", 99, 10)))


@scenario
def unknown_method_id(b):
    return raw(b, "queue method 99", lambda c: frame_bytes(1, 1, struct.pack(">HH", 50, 99)))


@scenario
def heartbeat_on_channel_1(b):
    return raw(b, "heartbeat on ch 1", lambda c: frame_bytes(8, 1, b""))


@scenario
def bad_protocol_header(b):
    s = Steps()
    c = Client(b, handshake=False)
    try:
        c.send_raw(b"AMQP\x00\x00\x08\x00")

        def f():
            data = b""
            c.sock.settimeout(TIMEOUT)
            while True:
                try:
                    chunk = c.sock.recv(64)
                except ConnectionResetError:
                    chunk = b""
                except socket.timeout:
                    return f"reply {data!r}, socket still open"
                if not chunk:
                    # A reset and an orderly close look the same to a client.
                    return f"reply {data!r} then socket closed"
                data += chunk
        s.run("protocol header 0-8", f)
    finally:
        c.sock.close()
    return s.out


def login(b, **kw):
    s = Steps()
    try:
        c = Client(b, **kw)
        s.out.append(("connect", "ok Connection.OpenOk"))
        c.close()
    except Closed as e:
        s.out.append(("connect", e.outcome))
    return s.out


@scenario
def login_bad_password(b):
    return login(b, password="definitely-wrong")


@scenario
def login_bad_password_with_capability(b):
    return login(b, password="definitely-wrong",
                 capabilities={"authentication_failure_close": True})


@scenario
def login_unknown_vhost(b):
    return login(b, vhost="cmp-no-such-vhost")


# -- refused arguments, reserved and server-named queue names, publish property checks --
# (user_id, expiration, CC/BCC sender-selected distribution) ----------------------------
@scenario
def declare_unsupported_argument(b):
    # A valid value for an argument WarrenMQ does not implement yet: RabbitMQ accepts it,
    # WarrenMQ refuses it (listed in KNOWN).
    return bad_declare(b, "cmp-unsupported-ttl", arguments={"x-message-ttl": 1000})


@scenario
def queue_declare_amq_prefix(b):
    return one_channel(b, ("declare amq.cmp-x", qd("amq.cmp-x")))


def declare_server_named(c, channel):
    """Declare a server-named exclusive queue on channel; return its name."""
    c.send(channel, spec.Queue.Declare(queue="", exclusive=True))
    return c.wait(channel, (spec.Queue.DeclareOk,)).queue


def hide_name(fn, name):
    """Run fn(); replace the server-generated queue name in its outcome by a placeholder."""
    def f():
        try:
            r = fn()
        except Closed as e:
            r = e.outcome
        return r.replace(name, "<server-named>") if name else r
    return f


@scenario
def queue_declare_own_server_named_by_name(b):
    s = Steps()
    c = Client(b)
    try:
        s.run("channel.open", lambda: c.open_channel(1))
        name = declare_server_named(c, 1)
        s.out.append(("declare ''", "ok amq.gen-*" if name.startswith("amq.gen-")
                      else f"ok other name pattern {name!r}"))
        s.run("declare it by name", hide_name(lambda: c.rpc(1, spec.Queue.Declare(
            queue=name, exclusive=True)), name))
        s.run("channel.open 2", lambda: c.open_channel(2))
        s.run("passive declare it on ch 2", hide_name(lambda: c.rpc(2, spec.Queue.Declare(
            queue=name, passive=True)), name))
    finally:
        c.close()
    return s.out


@scenario
def queue_declare_other_conns_server_named_by_name(b):
    s = Steps()
    owner = Client(b)
    other = None
    try:
        s.run("A channel.open", lambda: owner.open_channel(1))
        name = declare_server_named(owner, 1)
        s.out.append(("A declare ''", "ok amq.gen-*" if name.startswith("amq.gen-")
                      else f"ok other name pattern {name!r}"))
        other = Client(b)
        s.run("B channel.open", lambda: other.open_channel(1))
        s.run("B declare it", hide_name(lambda: other.rpc(1, spec.Queue.Declare(queue=name)),
                                        name))
        s.run("B channel.open 2", lambda: other.open_channel(2))
        s.run("B passive declare it", hide_name(lambda: other.rpc(2, spec.Queue.Declare(
            queue=name, passive=True)), name))
    finally:
        if other:
            other.close()
        owner.close()
    return s.out


def publish_with(props, exchange="", routing_key="cmp-none", body=b"x"):
    """A step: publish one message with these properties, then probe the channel."""
    def f(c):
        c.send(1, spec.Basic.Publish(exchange=exchange, routing_key=routing_key))
        c.send_content(1, body, props)
        return c.probe(1)
    return f


@scenario
def publish_user_id_other_user(b):
    return one_channel(b, ("publish user_id=mallory",
                           publish_with(spec.BasicProperties(user_id="mallory"))))


@scenario
def publish_user_id_same_user(b):
    return one_channel(b, ("publish user_id=<own user>",
                           publish_with(spec.BasicProperties(user_id=b.user))))


def publish_expiration(b, value):
    return one_channel(b, (f"publish expiration={value!r}",
                           publish_with(spec.BasicProperties(expiration=value))))


# One scenario per expiration value: name suffix -> the shortstr sent.
EXPIRATIONS = {
    "abc": "abc", "minus_one": "-1", "10s": "10s", "empty": "", "2_pow_32": "4294967296",
    "plus_5": "+5", "leading_space": " 5", "1_5": "1.5", "zero": "0",
}
for _suffix, _value in EXPIRATIONS.items():
    def _expiration_scenario(b, value=_value):
        return publish_expiration(b, value)
    _expiration_scenario.__name__ = f"publish_expiration_{_suffix}"
    scenario(_expiration_scenario)


@scenario
def publish_cc_not_array(b):
    return one_channel(b, ("publish CC=longstr",
                           publish_with(spec.BasicProperties(headers={"CC": "q"}))))


@scenario
def publish_bcc_int(b):
    return one_channel(b, ("publish BCC=5",
                           publish_with(spec.BasicProperties(headers={"BCC": 5}))))


def read_content(c, channel, timeout=TIMEOUT):
    """After a Basic.GetOk / Basic.Deliver: read its header frame and body frames.

    Returns (properties, body). Frames on other channels are skipped; a close is
    answered and raised like in Client.wait."""
    deadline = time.time() + timeout
    header, body = None, b""
    while header is None or len(body) < header.body_size:
        frame = c.read_frame(max(0.0, deadline - time.time()))
        if frame is None:
            raise Closed("timeout (incomplete content)")
        if isinstance(frame, pika.frame.Method):
            if isinstance(frame.method, spec.Connection.Close) or (
                    isinstance(frame.method, spec.Channel.Close)
                    and frame.channel_number == channel):
                c.on_close(frame)
            if frame.channel_number == channel:
                raise Closed(f"unexpected {frame.method.NAME} inside content")
            continue
        if frame.channel_number != channel:
            continue
        if isinstance(frame, pika.frame.Header):
            if header is not None:
                raise Closed("second content header")
            header = frame
        elif isinstance(frame, pika.frame.Body):
            if header is None:
                raise Closed("body frame before content header")
            body += frame.fragment
    return header.properties, body


def get_summary(c, queue):
    """basic.get (no-ack) from queue: 'got <routing key> headers=[...]' or 'empty'."""
    c.send(1, spec.Basic.Get(queue=queue, no_ack=True))
    m = c.wait(1, (spec.Basic.GetOk, spec.Basic.GetEmpty))
    if isinstance(m, spec.Basic.GetEmpty):
        return "empty"
    props, _ = read_content(c, 1)
    return f"got {m.routing_key} headers={sorted((props.headers or {}).keys())}"


CC_QUEUES = ["cmp-cc-main", "cmp-cc-cc", "cmp-cc-bcc"]
CC_HEADERS = {"CC": ["cmp-cc-cc", "cmp-cc-missing", 7], "BCC": ["cmp-cc-bcc"]}


def cc_bcc_routing(b, exchange, setup):
    """Publish to `exchange` with routing key cmp-cc-main and CC/BCC headers (one CC element
    is an int), then basic.get from every queue."""
    cleanup(b, queues=CC_QUEUES, exchanges=[exchange] if exchange else [])
    steps = setup + [("publish", publish_with(spec.BasicProperties(headers=CC_HEADERS),
                                              exchange=exchange, routing_key="cmp-cc-main"))]
    # One step for all queues, so that a matching scenario still prints every queue.
    steps.append(("basic.get each queue",
                  lambda c: "ok " + "; ".join(f"{q}: {get_summary(c, q)}" for q in CC_QUEUES)))
    out = one_channel(b, *steps)
    cleanup(b, queues=CC_QUEUES, exchanges=[exchange] if exchange else [])
    return out


@scenario
def publish_cc_bcc_routing(b):
    return cc_bcc_routing(b, "", [(f"declare {q}", qd(q)) for q in CC_QUEUES])


@scenario
def publish_cc_bcc_routing_direct_exchange(b):
    def bind(q):
        return lambda c: c.rpc(1, spec.Queue.Bind(queue=q, exchange="cmp-cc-x", routing_key=q))
    setup = [("declare cmp-cc-x", xd("cmp-cc-x"))]
    setup += [(f"declare {q}", qd(q)) for q in CC_QUEUES]
    setup += [(f"bind {q}", bind(q)) for q in CC_QUEUES]
    return cc_bcc_routing(b, "cmp-cc-x", setup)


# -- permissions: a user with narrow configure / write / read regexes ---------------------
# The perm_* scenarios log in as cmp-narrow, which scripts/compare-permissions-setup.sh
# creates on each broker with configure ^cmp-c, write ^cmp-w, read ^cmp-r on vhost /.
# Before each of them the URI's user (guest) declares the queues and exchanges below (and
# the scenario's bindings), and deletes them again afterwards. RabbitMQ 3.10 checks:
# queue.declare configure on the queue (not when passive); queue.delete configure;
# queue.purge, basic.get, basic.consume read on the queue; basic.publish write on the
# exchange ('' is amq.default); queue.bind/unbind write on the queue, read on the exchange;
# exchange.bind/unbind write on the destination, read on the source; exchange.declare
# (not passive) and exchange.delete configure on the exchange.
NARROW_USER = "cmp-narrow"
NARROW_PASSWORD = "cmp-narrow"
PERM_QUEUES = ["cmp-c1", "cmp-r1", "cmp-w1", "cmp-other"]
PERM_EXCHANGES = ["cmp-w-x", "cmp-r-x", "cmp-c-x"]
GENERATED = re.compile(r"amq\.gen-[A-Za-z0-9_-]+")


def delete_all(b, queues=(), exchanges=()):
    """As the URI's user: delete queues and exchanges, going on past any refusal."""
    c = Client(b)
    ch = 1
    try:
        c.open_channel(ch)
        methods = ([spec.Queue.Delete(queue=q) for q in queues]
                   + [spec.Exchange.Delete(exchange=x) for x in exchanges])
        for m in methods:
            try:
                c.rpc(ch, m)
            except Closed:
                if c.closed:
                    raise
                ch += 1
                c.open_channel(ch)
    except Closed:
        pass
    finally:
        c.close()


def perm_setup(b, setup=()):
    """As the URI's user: declare PERM_QUEUES and PERM_EXCHANGES (direct), then run the
    setup methods (bindings). A refusal here ends the scenario as a "setup" outcome."""
    c = Client(b)
    try:
        c.open_channel(1)
        for q in PERM_QUEUES:
            c.rpc(1, spec.Queue.Declare(queue=q))
        for x in PERM_EXCHANGES:
            c.rpc(1, spec.Exchange.Declare(exchange=x, type="direct"))
        for m in setup:
            c.rpc(1, m)
    finally:
        c.close()


def narrow(b, *steps, setup=(), queues=(), exchanges=()):
    """Run steps on channel 1 of a connection as cmp-narrow, between perm_setup and a
    cleanup; queues / exchanges are further names the steps may create (deleted before
    and after). A refused login is recorded as the "connect" step."""
    qs, xs = PERM_QUEUES + list(queues), PERM_EXCHANGES + list(exchanges)
    delete_all(b, qs, xs)
    perm_setup(b, setup)
    try:
        return one_channel(b, *steps, user=NARROW_USER, password=NARROW_PASSWORD)
    finally:
        delete_all(b, qs, xs)


def hide_generated(fn):
    """A step: fn(c) with server-generated amq.gen-... names replaced by a placeholder."""
    def f(c):
        try:
            r = fn(c)
        except Closed as e:
            r = e.outcome
        return GENERATED.sub("amq.gen-<generated>", r)
    return f


def publish_to(exchange, routing_key="k"):
    """A step: publish one message, then probe the channel with a synchronous method."""
    return publish_with(spec.BasicProperties(), exchange=exchange, routing_key=routing_key)


def rpc_step(method):
    return lambda c: c.rpc(1, method)


def qbind(queue, exchange, key="k"):
    return spec.Queue.Bind(queue=queue, exchange=exchange, routing_key=key)


def qunbind(queue, exchange, key="k"):
    return spec.Queue.Unbind(queue=queue, exchange=exchange, routing_key=key)


def xbind(destination, source, key="k"):
    return spec.Exchange.Bind(destination=destination, source=source, routing_key=key)


def xunbind(destination, source, key="k"):
    return spec.Exchange.Unbind(destination=destination, source=source, routing_key=key)


@scenario
def perm_login(b):
    # Shows a missing compare-permissions-setup.sh run as a difference of its own.
    return login(b, user=NARROW_USER, password=NARROW_PASSWORD)


@scenario
def perm_queue_declare_ok(b):
    return narrow(b, ("declare cmp-c2", qd("cmp-c2")), queues=["cmp-c2"])


@scenario
def perm_queue_declare_refused(b):
    return narrow(b, ("declare cmp-other2", qd("cmp-other2")), queues=["cmp-other2"])


@scenario
def perm_queue_declare_existing_refused(b):
    return narrow(b, ("declare existing cmp-other", qd("cmp-other")))


@scenario
def perm_queue_declare_passive_ok(b):
    return narrow(b, ("declare cmp-other passive", qd("cmp-other", passive=True)))


@scenario
def perm_queue_declare_server_named_refused(b):
    return narrow(b, ("declare '' exclusive", hide_generated(qd("", exclusive=True))))


@scenario
def perm_queue_declare_amq_prefix(b):
    # Both the reserved amq. prefix and the configure permission refuse it: which first?
    return narrow(b, ("declare amq.cmp-q", qd("amq.cmp-q")), queues=["amq.cmp-q"])


@scenario
def perm_queue_delete_ok(b):
    return narrow(b, ("delete cmp-c1", rpc_step(spec.Queue.Delete(queue="cmp-c1"))))


@scenario
def perm_queue_delete_refused(b):
    return narrow(b, ("delete cmp-other", rpc_step(spec.Queue.Delete(queue="cmp-other"))))


@scenario
def perm_queue_purge_ok(b):
    return narrow(b, ("purge cmp-r1", rpc_step(spec.Queue.Purge(queue="cmp-r1"))))


@scenario
def perm_queue_purge_refused(b):
    return narrow(b, ("purge cmp-c1", rpc_step(spec.Queue.Purge(queue="cmp-c1"))))


@scenario
def perm_basic_get_ok(b):
    return narrow(b, ("get cmp-r1", rpc_step(spec.Basic.Get(queue="cmp-r1"))))


@scenario
def perm_basic_get_refused(b):
    return narrow(b, ("get cmp-other", rpc_step(spec.Basic.Get(queue="cmp-other"))))


@scenario
def perm_basic_consume_ok(b):
    return narrow(b, ("consume cmp-r1", rpc_step(spec.Basic.Consume(queue="cmp-r1"))))


@scenario
def perm_basic_consume_refused(b):
    return narrow(b, ("consume cmp-other", rpc_step(spec.Basic.Consume(queue="cmp-other"))))


@scenario
def perm_publish_default_exchange_refused(b):
    return narrow(b, ("publish '' cmp-w1", publish_to("", "cmp-w1")))


@scenario
def perm_publish_exchange_ok(b):
    return narrow(b, ("publish cmp-w-x", publish_to("cmp-w-x")))


@scenario
def perm_publish_exchange_refused(b):
    return narrow(b, ("publish cmp-r-x", publish_to("cmp-r-x")))


@scenario
def perm_tx_publish_default_exchange(b):
    return narrow(b, ("tx.select", rpc_step(spec.Tx.Select())),
                  ("publish '' cmp-w1", publish_to("", "cmp-w1")))


@scenario
def perm_tx_publish_default_exchange_commit(b):
    # As perm_tx_publish_default_exchange, with tx.commit as the synchronous method.
    def f(c):
        c.send(1, spec.Basic.Publish(exchange="", routing_key="cmp-w1"))
        c.send_content(1)
        return c.rpc(1, spec.Tx.Commit())
    return narrow(b, ("tx.select", rpc_step(spec.Tx.Select())), ("publish '', commit", f))


@scenario
def perm_tx_publish_exchange_ok(b):
    def f(c):
        c.send(1, spec.Basic.Publish(exchange="cmp-w-x", routing_key="k"))
        c.send_content(1)
        return c.rpc(1, spec.Tx.Commit())
    return narrow(b, ("tx.select", rpc_step(spec.Tx.Select())), ("publish cmp-w-x, commit", f))


@scenario
def perm_queue_bind_ok(b):
    return narrow(b, ("bind cmp-w1 to cmp-r-x", rpc_step(qbind("cmp-w1", "cmp-r-x"))))


@scenario
def perm_queue_bind_refused_queue(b):
    return narrow(b, ("bind cmp-c1 to cmp-r-x", rpc_step(qbind("cmp-c1", "cmp-r-x"))))


@scenario
def perm_queue_bind_refused_exchange(b):
    return narrow(b, ("bind cmp-w1 to cmp-w-x", rpc_step(qbind("cmp-w1", "cmp-w-x"))))


@scenario
def perm_queue_bind_default_exchange(b):
    # Write on the queue is granted; RabbitMQ refuses the default exchange itself.
    return narrow(b, ("bind cmp-w1 to ''", rpc_step(qbind("cmp-w1", ""))))


@scenario
def perm_queue_bind_default_exchange_refused_queue(b):
    # Write on the queue refused, and the default exchange: which check first?
    return narrow(b, ("bind cmp-c1 to ''", rpc_step(qbind("cmp-c1", ""))))


@scenario
def perm_queue_unbind_default_exchange_refused_queue(b):
    return narrow(b, ("unbind cmp-c1 from ''", rpc_step(qunbind("cmp-c1", ""))))


@scenario
def perm_queue_unbind_ok(b):
    return narrow(b, ("unbind cmp-w1 from cmp-r-x", rpc_step(qunbind("cmp-w1", "cmp-r-x"))),
                  setup=[qbind("cmp-w1", "cmp-r-x")])


@scenario
def perm_queue_unbind_refused_queue(b):
    return narrow(b, ("unbind cmp-c1 from cmp-r-x", rpc_step(qunbind("cmp-c1", "cmp-r-x"))),
                  setup=[qbind("cmp-c1", "cmp-r-x")])


@scenario
def perm_queue_unbind_refused_exchange(b):
    return narrow(b, ("unbind cmp-w1 from cmp-w-x", rpc_step(qunbind("cmp-w1", "cmp-w-x"))),
                  setup=[qbind("cmp-w1", "cmp-w-x")])


@scenario
def perm_queue_unbind_default_exchange(b):
    return narrow(b, ("unbind cmp-w1 from ''", rpc_step(qunbind("cmp-w1", ""))))


@scenario
def perm_exchange_bind_ok(b):
    return narrow(b, ("bind cmp-w-x <- cmp-r-x", rpc_step(xbind("cmp-w-x", "cmp-r-x"))))


@scenario
def perm_exchange_bind_refused(b):
    # Destination cmp-r-x (no write) and source cmp-w-x (no read).
    return narrow(b, ("bind cmp-r-x <- cmp-w-x", rpc_step(xbind("cmp-r-x", "cmp-w-x"))))


@scenario
def perm_exchange_bind_refused_source(b):
    return narrow(b, ("bind cmp-w-x <- cmp-c-x", rpc_step(xbind("cmp-w-x", "cmp-c-x"))))


@scenario
def perm_exchange_bind_default_destination(b):
    # Destination '' (write on amq.default refused, and the default exchange).
    return narrow(b, ("bind '' <- cmp-r-x", rpc_step(xbind("", "cmp-r-x"))))


@scenario
def perm_exchange_bind_default_source(b):
    # Write on the destination granted; source '' (the default exchange, no read).
    return narrow(b, ("bind cmp-w-x <- ''", rpc_step(xbind("cmp-w-x", ""))))


@scenario
def perm_exchange_unbind_ok(b):
    return narrow(b, ("unbind cmp-w-x <- cmp-r-x", rpc_step(xunbind("cmp-w-x", "cmp-r-x"))),
                  setup=[xbind("cmp-w-x", "cmp-r-x")])


@scenario
def perm_exchange_unbind_refused(b):
    return narrow(b, ("unbind cmp-r-x <- cmp-w-x", rpc_step(xunbind("cmp-r-x", "cmp-w-x"))),
                  setup=[xbind("cmp-r-x", "cmp-w-x")])


@scenario
def perm_exchange_declare_ok(b):
    return narrow(b, ("declare cmp-c-x2", xd("cmp-c-x2")), exchanges=["cmp-c-x2"])


@scenario
def perm_exchange_declare_refused(b):
    return narrow(b, ("declare cmp-otherx", xd("cmp-otherx")), exchanges=["cmp-otherx"])


@scenario
def perm_exchange_declare_existing_refused(b):
    return narrow(b, ("declare existing cmp-w-x", xd("cmp-w-x")))


@scenario
def perm_exchange_declare_passive_ok(b):
    return narrow(b, ("declare cmp-w-x passive", xd("cmp-w-x", passive=True)))


@scenario
def perm_exchange_declare_amq_prefix(b):
    # Both the reserved amq. prefix and the configure permission refuse it: which first?
    return narrow(b, ("declare amq.cmp-x", xd("amq.cmp-x")), exchanges=["amq.cmp-x"])


@scenario
def perm_exchange_declare_default(b):
    # The default exchange, on which configure is not granted either: which check first?
    return narrow(b, ("declare ''", xd("")))


@scenario
def perm_exchange_delete_default(b):
    return narrow(b, ("delete ''", rpc_step(spec.Exchange.Delete(exchange=""))))


@scenario
def perm_exchange_delete_amq_direct(b):
    # A system exchange, on which configure is not granted either: which check first?
    return narrow(b, ("delete amq.direct", rpc_step(spec.Exchange.Delete(exchange="amq.direct"))))


@scenario
def perm_exchange_delete_ok(b):
    return narrow(b, ("delete cmp-c-x", rpc_step(spec.Exchange.Delete(exchange="cmp-c-x"))))


@scenario
def perm_exchange_delete_refused(b):
    return narrow(b, ("delete cmp-w-x", rpc_step(spec.Exchange.Delete(exchange="cmp-w-x"))))


# Differences kept on purpose: scenario -> why.
KNOWN = {
    "unknown_class_id": "RabbitMQ 3.10's reader crashes on an unknown method id and drops the "
                        "socket; WarrenMQ closes with 540 NOT_IMPLEMENTED",
    "unknown_method_id": "as unknown_class_id",
    "declare_unsupported_argument": "WarrenMQ refuses arguments it does not implement yet "
                                    "instead of ignoring them; README compatibility table",
}


# -- driver -----------------------------------------------------------------------------
def run(b, fn):
    try:
        return fn(b)
    except Closed as e:
        return [("setup", e.outcome)]
    except OSError as e:
        return [("setup", f"error {e}")]
    except Exception as e:  # noqa: BLE001 - a broken scenario must not hide the others
        return [("script", f"scenario error {type(e).__name__}: {e}")]


def main(argv=None):
    p = argparse.ArgumentParser(
        description="Run the same AMQP 0-9-1 error scenarios (wrong declares, missing "
                    "queues/exchanges, exclusive queues, bad acks, tx/confirm misuse, "
                    "publish property checks (user_id, expiration, CC/BCC), malformed "
                    "frames, bad logins, operations refused by user permissions) against "
                    "two brokers and compare the "
                    "reply code, reply text, scope (channel.close vs connection.close) and "
                    "class/method ids of every reply. Exit 1 if any scenario differs.",
        epilog="Example: %(prog)s amqp://guest:guest@127.0.0.1:5695/%%2F "
               "amqp://guest:guest@127.0.0.1:5696/%%2F. "
               "The perm_* scenarios log in as user cmp-narrow (configure ^cmp-c, write "
               "^cmp-w, read ^cmp-r on vhost /): create it on each broker first with "
               "scripts/compare-permissions-setup.sh CTL... (CTL being rabbitmqctl, or "
               "warrenctl -n HOST:CLUSTER_PORT --data-dir DIR); without it they show the "
               "refused login.")
    p.add_argument("reference", help="URI of the reference broker (RabbitMQ)")
    p.add_argument("candidate", help="URI of the broker under test (WarrenMQ)")
    p.add_argument("-k", "--only", action="append", default=[],
                   help="run only scenarios whose name contains this (repeatable)")
    p.add_argument("-l", "--list", action="store_true", help="list the scenarios and exit")
    p.add_argument("-q", "--quiet", action="store_true", help="print mismatches only")
    p.add_argument("--strict", action="store_true",
                   help="count the known, deliberate differences (listed as KNOWN) as mismatches")
    args = p.parse_args(argv)
    if args.list:
        for fn in SCENARIOS:
            print(fn.__name__)
        return 0
    try:
        ref, cand = Broker(args.reference), Broker(args.candidate)
    except ValueError as e:
        p.error(str(e))
    selected = [fn for fn in SCENARIOS if not args.only or any(k in fn.__name__ for k in args.only)]
    mismatches = known = 0
    for fn in selected:
        a, b = run(ref, fn), run(cand, fn)
        same = a == b
        excused = not same and not args.strict and fn.__name__ in KNOWN
        known += excused
        mismatches += not same and not excused
        if args.quiet and (same or excused):
            continue
        label = "MATCH" if same else "KNOWN" if excused else "DIFF "
        print(f"{label} {fn.__name__}" + (f"  ({KNOWN[fn.__name__]})" if excused else ""))
        for i in range(max(len(a), len(b))):
            sa = a[i] if i < len(a) else ("-", "-")
            sb = b[i] if i < len(b) else ("-", "-")
            if same and i < len(a) - 1 and sa[1].startswith("ok"):
                continue
            if sa == sb:
                print(f"      {sa[0]}: {sa[1]}")
            else:
                print(f"      {sa[0]}: reference: {sa[1]}")
                print(f"      {sb[0]}: candidate: {sb[1]}")
    print(f"\n{len(selected) - mismatches - known}/{len(selected)} scenarios match, "
          f"{mismatches} differ, {known} known differences")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
