"""RabbitMQ's six getting-started tutorials, run with pika the way a newcomer runs them.

Usage: python3 scripts/tutorials/tutorials.py CONSUMER_URL PRODUCER_URL KIND [SCENARIO...]

KIND is `classic` (the queues exactly as the tutorials used to declare them: non-durable
`hello`, durable classic `task_queue`, server-named exclusive subscriber queues) or
`quorum` (the tutorials' current form: durable quorum queues, and a named durable quorum
queue per log subscriber). SCENARIOs default to all six: hello work pubsub routing topics
rpc. Every consumer (receiver, workers, subscribers, RPC server) has its own connection to
CONSUMER_URL and is started, one after the other as from separate terminals, up to its
consume-ok before anything is published. Every producer (sender, new_task, emit_log*, RPC
client) has its own connection to PRODUCER_URL, kept open until the deliveries are checked
(RabbitMQ may drop unconfirmed publishes to a just-created quorum queue when the
connection closes at once); each scenario then deletes its named queues and exchanges over
it. Prints one line per scenario, `tutorial pika KIND SCENARIO: ok (N ms)`, or
`... FAIL reason` and exits 1. scripts/tutorials/run.sh runs it against a single node and
a three-node cluster; the Node.js, Java and Go clients beside it follow the same contract.
"""
import os
import secrets
import sys
import threading
import time
import uuid

import pika

CLIENT = "pika"
SCENARIOS = ("hello", "work", "pubsub", "routing", "topics", "rpc")
SCENARIO_TIMEOUT = 15.0  # seconds, the whole scenario; the watchdog ends a hung one
WAIT_BUDGET = 14.5  # seconds from the start that the waits inside a scenario may use
SETTLE = 0.3  # seconds to wait after the expected messages arrived, to catch extras


class Fail(Exception):
    """A scenario's expectation was not met; the message is the reason printed."""


class Consumer(threading.Thread):
    """One consuming program (receive.py, worker.py, receive_logs*.py, rpc_server.py):
    its own connection on its own thread. `setup(channel)` declares and binds and returns
    the queue to consume; `on_message(channel, method, properties, body)` handles each
    delivery on this thread."""

    def __init__(self, scenario, label, setup, on_message, auto_ack):
        super().__init__(name=label, daemon=True)
        self.scenario, self.label = scenario, label
        self.setup, self.on_message, self.auto_ack = setup, on_message, auto_ack
        self.connection = self.channel = self.queue = self.error = None
        self.ready = self.done = False

    def run(self):
        sc = self.scenario
        try:
            self.connection = pika.BlockingConnection(pika.URLParameters(sc.consumer_url))
            self.channel = self.connection.channel()
            self.queue = self.setup(self.channel)
            # BlockingChannel.basic_consume returns once the broker sent basic.consume-ok.
            self.channel.basic_consume(self.queue, self.on_message, auto_ack=self.auto_ack)
            sc.notify(lambda: setattr(self, "ready", True))
            self.channel.start_consuming()
            self.connection.close()
        except Exception as exc:  # reported by the scenario's next wait
            sc.notify(lambda: setattr(self, "error", f"{self.label}: {describe(exc)}"))
        finally:
            sc.notify(lambda: setattr(self, "done", True))

    def stop(self):
        """Cancel the consumer and close the connection, from the scenario's thread."""
        if self.connection is not None and not self.done:
            try:
                self.connection.add_callback_threadsafe(self.channel.stop_consuming)
            except Exception:
                return
        self.scenario.wait_until(lambda: self.done, lambda: f"{self.label} to stop consuming")


class Scenario:
    """One scenario's run: names with this run's suffix, queue arguments for KIND, the
    consumers it started, and bounded waits that report what was missing."""

    def __init__(self, consumer_url, producer_url, kind, suffix, name):
        self.consumer_url, self.producer_url, self.kind = consumer_url, producer_url, kind
        self.suffix, self.name = suffix, name
        self.start = time.monotonic()
        self.step = "starting"
        self.cond = threading.Condition()
        self.consumers = []
        self.error = None

    def unique(self, base):
        return f"{base}-{CLIENT}-{self.kind}-{self.suffix}"

    def queue_options(self, classic_durable):
        """queue_declare keywords for a work queue: as the tutorials declare it for KIND."""
        if self.kind == "quorum":
            return {"durable": True, "arguments": {"x-queue-type": "quorum"}}
        return {"durable": classic_durable}

    def declare_subscriber_queue(self, channel, label):
        """A log subscriber's queue: server-named exclusive (classic) or a named durable
        quorum queue (quorum). Returns its name."""
        if self.kind == "quorum":
            name = self.unique(f"{self.name}-{label}")
            channel.queue_declare(name, durable=True, arguments={"x-queue-type": "quorum"})
            return name
        return channel.queue_declare("", exclusive=True).method.queue

    def notify(self, change):
        with self.cond:
            change()
            self.cond.notify_all()

    def record(self, into, item):
        self.notify(lambda: into.append(item))

    def wait_until(self, predicate, what):
        """Wait until predicate() holds (checked under the lock), a consumer fails, or the
        scenario's time is up; `what()` names what was missing."""
        self.step = f"waiting for {what()}"
        deadline = self.start + WAIT_BUDGET
        with self.cond:
            while True:
                for c in self.consumers:
                    if c.error:
                        raise Fail(c.error)
                if predicate():
                    return
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise Fail(f"timed out after {SCENARIO_TIMEOUT:.0f} s waiting for {what()}")
                self.cond.wait(min(remaining, 0.1))

    def settle(self):
        """Give stray extra deliveries time to show up before checking exact contents."""
        self.step = "settling"
        time.sleep(SETTLE)

    def start_consumers(self, *consumers):
        """Start each consumer in turn, the next once the previous has its consume-ok."""
        for c in consumers:
            self.consumers.append(c)
            c.start()
            self.wait_until(lambda: c.ready, lambda: f"consume-ok of {c.label}")

    def stop_consumers(self):
        self.step = "stopping the consumers"
        for c in self.consumers:
            c.stop()

    def connect_producer(self, label):
        """The producer's connection and a channel on it."""
        self.step = f"connecting {label} to PRODUCER_URL"
        connection = pika.BlockingConnection(pika.URLParameters(self.producer_url))
        self.step = f"{label} working"
        return connection, connection.channel()

    def finish(self, producer, queues=(), exchanges=()):
        """Stop the consumers, then delete this scenario's named queues and exchanges over
        the producer's connection and close it."""
        self.stop_consumers()
        self.step = "deleting the queues and exchanges"
        connection, channel = producer
        for q in queues:
            channel.queue_delete(q)
        for x in exchanges:
            channel.exchange_delete(x)
        connection.close()


def describe(exc):
    """An exception as one line; pika's connection errors carry the cause in args only."""
    text = str(exc) or ", ".join(repr(a) for a in exc.args)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def expect(actual, expected, who):
    if actual != expected:
        raise Fail(f"{who} got {actual!r}, expected {expected!r}")


# ---- the six scenarios ---------------------------------------------------------------


def hello(sc):
    """Tutorial 1: receive.py consumes `hello` with auto-ack; send.py sends one message."""
    queue = sc.unique("hello")
    got = []

    def setup(ch):
        ch.queue_declare(queue, **sc.queue_options(classic_durable=False))
        return queue

    sc.start_consumers(
        Consumer(sc, "the receiver", setup, lambda ch, m, p, body: sc.record(got, body.decode()), True)
    )
    producer = sc.connect_producer("the sender")
    channel = producer[1]
    channel.queue_declare(queue, **sc.queue_options(classic_durable=False))
    channel.basic_publish(exchange="", routing_key=queue, body="Hello World!")
    sc.wait_until(lambda: got, lambda: f"'Hello World!' at the receiver on {queue}")
    sc.settle()
    expect(got, ["Hello World!"], "the receiver")
    sc.finish(producer, queues=[queue])


def work(sc):
    """Tutorial 2: two workers with prefetch 1 and manual ack sleep 100 ms per dot;
    new_task.py sends six persistent tasks; each is done exactly once, by both workers."""
    queue = sc.unique("task_queue")
    tasks = [f"task {i}" + "." * dots for i, dots in enumerate((1, 2, 3, 1, 2, 3), start=1)]
    done = {"worker 1": [], "worker 2": []}

    def setup(ch):
        ch.queue_declare(queue, **sc.queue_options(classic_durable=True))
        ch.basic_qos(prefetch_count=1)
        return queue

    def worker(label):
        def on_message(ch, method, properties, body):
            time.sleep(0.1 * body.count(b"."))
            ch.basic_ack(delivery_tag=method.delivery_tag)
            sc.record(done[label], body.decode())

        return Consumer(sc, label, setup, on_message, auto_ack=False)

    sc.start_consumers(worker("worker 1"), worker("worker 2"))
    producer = sc.connect_producer("new_task")
    channel = producer[1]
    channel.queue_declare(queue, **sc.queue_options(classic_durable=True))
    for task in tasks:
        channel.basic_publish(
            exchange="",
            routing_key=queue,
            body=task,
            properties=pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent),
        )
    sc.wait_until(
        lambda: sum(len(v) for v in done.values()) >= len(tasks),
        lambda: f"{len(tasks)} tasks done (done so far: {done})",
    )
    sc.settle()
    expect(sorted(done["worker 1"] + done["worker 2"]), sorted(tasks), "the workers together")
    for label, items in done.items():
        if not items:
            raise Fail(f"{label} did no task (round-robin with prefetch 1 expected both busy): {done}")
    sc.finish(producer, queues=[queue])


def logs(sc, exchange, exchange_type, subscriptions, messages):
    """Tutorials 3-5: subscribers bind their queue to `exchange` with their binding keys
    and consume with auto-ack; emit_log* publishes (routing_key, body) pairs; each
    subscriber must get exactly the messages whose key its bindings match, in order."""
    exchange = sc.unique(exchange)
    got = {label: [] for label in subscriptions}
    queues = []

    def subscriber(label, keys):
        def setup(ch):
            ch.exchange_declare(exchange=exchange, exchange_type=exchange_type)
            queue = sc.declare_subscriber_queue(ch, label)
            if sc.kind == "quorum":
                queues.append(queue)
            for key in keys:
                ch.queue_bind(exchange=exchange, queue=queue, routing_key=key)
            return queue

        def on_message(ch, method, properties, body):
            sc.record(got[label], (method.routing_key, body.decode()))

        return Consumer(sc, f"subscriber {label}", setup, on_message, auto_ack=True)

    sc.start_consumers(*(subscriber(label, keys) for label, (keys, _) in subscriptions.items()))
    producer = sc.connect_producer("emit_log")
    channel = producer[1]
    channel.exchange_declare(exchange=exchange, exchange_type=exchange_type)
    for key, body in messages:
        channel.basic_publish(exchange=exchange, routing_key=key, body=body)
    expected = {label: want for label, (_, want) in subscriptions.items()}
    sc.wait_until(
        lambda: all(len(got[label]) >= len(expected[label]) for label in got),
        lambda: "all logs at the subscribers: "
        + "; ".join(f"{label} got {len(got[label])} of {len(expected[label])}" for label in got),
    )
    sc.settle()
    for label in got:
        expect(got[label], expected[label], f"subscriber {label}")
    sc.finish(producer, queues=queues, exchanges=[exchange])


def pubsub(sc):
    """Tutorial 3: fanout `logs`, two subscribers, three messages each gets all of."""
    messages = [("", f"log message {i}") for i in (1, 2, 3)]
    logs(sc, "logs", "fanout", {"a": ([""], messages), "b": ([""], messages)}, messages)


def routing(sc):
    """Tutorial 4: direct `direct_logs`; A binds error, B binds info, warning, error."""
    messages = [(severity, f"a {severity} message") for severity in ("info", "warning", "error")]
    subscriptions = {"a": (["error"], messages[2:]), "b": (["info", "warning", "error"], messages)}
    logs(sc, "direct_logs", "direct", subscriptions, messages)


def topics(sc):
    """Tutorial 5: topic `topic_logs`; A binds *.critical, B binds kern.#."""
    keys = ("kern.critical", "kern.info", "app.critical", "app.info")
    messages = [(key, f"a {key} message") for key in keys]
    by_key = dict(messages)
    subscriptions = {
        "a": (["*.critical"], [(k, by_key[k]) for k in ("kern.critical", "app.critical")]),
        "b": (["kern.#"], [(k, by_key[k]) for k in ("kern.critical", "kern.info")]),
    }
    logs(sc, "topic_logs", "topic", subscriptions, messages)


def fib(n):
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


def rpc(sc):
    """Tutorial 6: rpc_server.py answers fib(n) on `rpc_queue` (prefetch 1, manual ack);
    rpc_client.py calls it through a server-named exclusive callback queue."""
    queue = sc.unique("rpc_queue")

    def setup(ch):
        ch.queue_declare(queue, **sc.queue_options(classic_durable=False))
        ch.basic_qos(prefetch_count=1)
        return queue

    def on_request(ch, method, props, body):
        ch.basic_publish(
            exchange="",
            routing_key=props.reply_to,
            properties=pika.BasicProperties(correlation_id=props.correlation_id),
            body=str(fib(int(body))),
        )
        ch.basic_ack(delivery_tag=method.delivery_tag)

    sc.start_consumers(Consumer(sc, "the RPC server", setup, on_request, auto_ack=False))
    producer = sc.connect_producer("the RPC client")
    connection, channel = producer
    callback_queue = channel.queue_declare(queue="", exclusive=True).method.queue
    responses = {}

    def on_response(ch, method, props, body):
        responses[props.correlation_id] = body.decode()

    channel.basic_consume(queue=callback_queue, on_message_callback=on_response, auto_ack=True)
    deadline = sc.start + WAIT_BUDGET
    for n, want in ((30, 832040), (10, 55), (1, 1)):
        corr_id = str(uuid.uuid4())
        channel.basic_publish(
            exchange="",
            routing_key=queue,
            properties=pika.BasicProperties(reply_to=callback_queue, correlation_id=corr_id),
            body=str(n),
        )
        sc.step = f"waiting for the reply to fib({n}) on {callback_queue}"
        while corr_id not in responses:
            for c in sc.consumers:
                if c.error:
                    raise Fail(c.error)
            if time.monotonic() > deadline:
                raise Fail(f"timed out after {SCENARIO_TIMEOUT:.0f} s waiting for the reply to fib({n})")
            connection.process_data_events(time_limit=0.05)
        expect(responses[corr_id], str(want), f"the RPC client calling fib({n})")
    sc.finish(producer, queues=[queue])


# ---- driver --------------------------------------------------------------------------


def run_scenario(consumer_url, producer_url, kind, suffix, name):
    """Run one scenario under a watchdog; return None on success or the failure reason."""
    sc = Scenario(consumer_url, producer_url, kind, suffix, name)

    def body():
        try:
            globals()[name](sc)
        except Fail as exc:
            sc.error = str(exc)
        except Exception as exc:
            sc.error = f"while {sc.step}: {describe(exc)}"

    thread = threading.Thread(target=body, name=name, daemon=True)
    thread.start()
    thread.join(SCENARIO_TIMEOUT)
    if thread.is_alive():
        return f"timed out after {SCENARIO_TIMEOUT:.0f} s while {sc.step}"
    return sc.error or None


def main(argv):
    if len(argv) < 3 or argv[2] not in ("classic", "quorum") or set(argv[3:]) - set(SCENARIOS):
        sys.stderr.write(
            f"usage: {sys.argv[0]} CONSUMER_URL PRODUCER_URL classic|quorum [{' '.join(SCENARIOS)}]...\n"
        )
        return 2
    consumer_url, producer_url, kind = argv[:3]
    suffix = secrets.token_hex(4)
    for name in argv[3:] or SCENARIOS:
        started = time.monotonic()
        reason = run_scenario(consumer_url, producer_url, kind, suffix, name)
        if reason:
            print(f"tutorial {CLIENT} {kind} {name}: FAIL {reason}", flush=True)
            return 1
        elapsed_ms = (time.monotonic() - started) * 1000
        print(f"tutorial {CLIENT} {kind} {name}: ok ({elapsed_ms:.0f} ms)", flush=True)
    return 0


if __name__ == "__main__":
    code = main(sys.argv[1:])
    sys.stdout.flush()
    # Daemon threads of a hung scenario may still hold sockets: leave without joining them.
    os._exit(code)
