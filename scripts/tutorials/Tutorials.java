// RabbitMQ's six getting-started tutorials (hello, work, pubsub, routing, topics, rpc) as a
// newcomer runs them with the Java client (Debian's librabbitmq-client-java, 5.0.0), each
// checked end to end. scripts/tutorials/java.sh compiles and runs this file.
//
//   Tutorials CONSUMER_URL PRODUCER_URL classic|quorum [SCENARIO...]
//
// Everything that consumes (hello receiver, workers, log subscribers, RPC server) connects to
// CONSUMER_URL and has its consume-ok before anything is published; everything that publishes
// (hello sender, new_task, emit_log*, RPC client) connects to PRODUCER_URL with its own
// connection. One line per scenario: "tutorial java <kind> <scenario>: ok (<ms> ms)", or
// "... FAIL <reason>" and exit status 1. Names carry the suffix -java-<kind>-<8 hex>; each
// scenario deletes its named queues and exchanges at the end.
//
// classic: the tutorials' original declarations (hello and rpc_queue non-durable, task_queue
// durable with persistent messages, subscribers on server-named exclusive queues).
// quorum: their current form (hello, task_queue, rpc_queue durable with x-queue-type=quorum;
// each subscriber on a named durable quorum queue; the RPC callback queue stays exclusive).

import com.rabbitmq.client.AMQP;
import com.rabbitmq.client.BuiltinExchangeType;
import com.rabbitmq.client.Channel;
import com.rabbitmq.client.Connection;
import com.rabbitmq.client.ConnectionFactory;
import com.rabbitmq.client.DeliverCallback;
import com.rabbitmq.client.MessageProperties;
import com.rabbitmq.client.ShutdownSignalException;

import java.nio.charset.StandardCharsets;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HexFormat;
import java.util.LinkedHashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

public final class Tutorials {
    static final String CLIENT = "java";
    static final List<String> ALL = List.of("hello", "work", "pubsub", "routing", "topics", "rpc");
    /**
     * Explicit waits give up this long after a scenario starts; a watchdog a second later
     * catches any call that hangs; cleanup gets 3 s more (14 s in all).
     */
    static final long WAIT_MS = 10_000;
    static final long WATCHDOG_MS = 11_000;
    static final long CLEANUP_MS = 3_000;
    /** After the expected deliveries arrive, how long to keep listening for extra ones. */
    static final long SETTLE_MS = 300;

    /** A scenario's failure, with the reason to print. */
    static final class Fail extends Exception {
        private static final long serialVersionUID = 1L;

        Fail(String reason) {
            super(reason);
        }
    }

    interface Scenario {
        void run(Run r) throws Exception;
    }

    /** One scenario's run: its URLs and kind, deadline, connections and names to delete. */
    static final class Run {
        final String consumerUrl, producerUrl;
        final boolean quorum;
        final String suffix;
        final long waitDeadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(WAIT_MS);
        final List<Connection> connections = Collections.synchronizedList(new ArrayList<>());
        final List<String> queues = Collections.synchronizedList(new ArrayList<>());
        final List<String> exchanges = Collections.synchronizedList(new ArrayList<>());
        /** What the scenario is doing now, for the watchdog's message. */
        volatile String step = "starting";
        /** Set when a consumer stops early (cancelled, or its channel closed). */
        volatile String stopped;

        Run(String consumerUrl, String producerUrl, String kind, String suffix) {
            this.consumerUrl = consumerUrl;
            this.producerUrl = producerUrl;
            this.quorum = kind.equals("quorum");
            this.suffix = suffix;
        }

        String name(String base) {
            return base + suffix;
        }

        Connection connect(String url, String role) throws Exception {
            step = "connecting the " + role;
            ConnectionFactory factory = new ConnectionFactory();
            factory.setUri(url);
            // A broken connection should fail the scenario, not be papered over.
            factory.setAutomaticRecoveryEnabled(false);
            factory.setConnectionTimeout(5_000);
            factory.setHandshakeTimeout(5_000);
            Connection c = factory.newConnection("tutorial " + CLIENT + " " + role);
            connections.add(c);
            return c;
        }

        /** Declares one of the tutorials' named queues (hello, task_queue, rpc_queue). */
        void declareNamedQueue(Channel ch, String queue, boolean classicDurable, String role)
                throws Exception {
            step = role + " declaring queue " + queue;
            if (quorum) {
                ch.queueDeclare(queue, true, false, false, Map.of("x-queue-type", "quorum"));
            } else {
                ch.queueDeclare(queue, classicDurable, false, false, null);
            }
        }

        /** A log subscriber's queue: server-named exclusive (classic) or named quorum. */
        String declareSubscriberQueue(Channel ch, String exchangeBase, String label)
                throws Exception {
            step = "subscriber " + label + " declaring its queue";
            if (!quorum) {
                return ch.queueDeclare().getQueue();
            }
            String queue = name(exchangeBase + "-" + label);
            queues.add(queue);
            ch.queueDeclare(queue, true, false, false, Map.of("x-queue-type", "quorum"));
            return queue;
        }

        /** Starts a consumer for role; one that stops early is reported through `stopped`. */
        void consume(Channel ch, String queue, boolean autoAck, String role,
                     DeliverCallback onDelivery) throws Exception {
            step = role + " consuming " + queue;
            ch.basicConsume(queue, autoAck, onDelivery,
                    tag -> stop(role + "'s consumer on " + queue + " was cancelled by the broker"),
                    (tag, sig) -> stop(role + "'s channel was closed: " + describe(sig)));
        }

        synchronized void stop(String why) {
            if (stopped == null) stopped = why;
        }

        /**
         * Takes the next message from inbox, waiting until the scenario's wait deadline:
         * null if none came by then. Fails at once if a consumer stopped early.
         */
        <T> T next(BlockingQueue<T> inbox, long deadline) throws Exception {
            while (true) {
                if (stopped != null) throw new Fail(stopped);
                long left = Math.min(deadline - System.nanoTime(), 100_000_000L);
                if (left <= 0) return inbox.poll();
                T m = inbox.poll(left, TimeUnit.NANOSECONDS);
                if (m != null) return m;
            }
        }

        /**
         * Waits for n messages in inbox (or times out naming what is missing), then listens
         * SETTLE_MS more for extra ones. Returns everything received.
         */
        List<String> collect(BlockingQueue<String> inbox, int n, String what) throws Exception {
            step = "waiting for " + what;
            List<String> got = new ArrayList<>();
            while (got.size() < n) {
                String m = next(inbox, waitDeadline);
                if (m == null) {
                    throw new Fail("timed out after " + WAIT_MS + " ms waiting for " + what
                            + ": got " + got.size() + " of " + n + " " + got);
                }
                got.add(m);
            }
            long settleEnd = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(SETTLE_MS);
            for (String m; (m = next(inbox, settleEnd)) != null; ) {
                got.add(m);
            }
            return got;
        }
    }

    static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    static String utf8(byte[] b) {
        return new String(b, StandardCharsets.UTF_8);
    }

    /** Fails unless got and expected hold the same messages, in any order. */
    static void expectSame(String who, List<String> got, List<String> expected) throws Fail {
        List<String> g = new ArrayList<>(got), e = new ArrayList<>(expected);
        Collections.sort(g);
        Collections.sort(e);
        if (!g.equals(e)) {
            throw new Fail(who + " got " + got + ", expected " + expected);
        }
    }

    // ---- 1. "Hello World!" -----------------------------------------------------------------

    static void hello(Run r) throws Exception {
        String queue = r.name("hello");
        r.queues.add(queue);

        Channel recv = r.connect(r.consumerUrl, "receiver").createChannel();
        r.declareNamedQueue(recv, queue, false, "receiver");
        BlockingQueue<String> inbox = new LinkedBlockingQueue<>();
        r.consume(recv, queue, true, "receiver", (tag, d) -> inbox.add(utf8(d.getBody())));

        Channel send = r.connect(r.producerUrl, "sender").createChannel();
        r.declareNamedQueue(send, queue, false, "sender");
        r.step = "sender publishing";
        send.basicPublish("", queue, null, utf8("Hello World!"));

        expectSame("receiver", r.collect(inbox, 1, "\"Hello World!\" on " + queue),
                List.of("Hello World!"));
    }

    // ---- 2. Work queues ----------------------------------------------------------------------

    static final List<String> TASKS = List.of(
            "First message.", "Second message..", "Third message...",
            "Fourth message.", "Fifth message..", "Sixth message...");

    static void work(Run r) throws Exception {
        String queue = r.name("task_queue");
        r.queues.add(queue);
        BlockingQueue<String> done = new LinkedBlockingQueue<>(); // "worker<i>:<task>"

        for (int i = 1; i <= 2; i++) {
            String worker = "worker" + i;
            Channel ch = r.connect(r.consumerUrl, worker).createChannel();
            r.declareNamedQueue(ch, queue, true, worker);
            r.step = worker + " setting prefetch 1";
            ch.basicQos(1);
            r.consume(ch, queue, false, worker, (tag, d) -> {
                String task = utf8(d.getBody());
                try {
                    Thread.sleep(100L * task.chars().filter(c -> c == '.').count());
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                ch.basicAck(d.getEnvelope().getDeliveryTag(), false);
                done.add(worker + ":" + task);
            });
        }

        Channel send = r.connect(r.producerUrl, "new_task").createChannel();
        r.declareNamedQueue(send, queue, true, "new_task");
        r.step = "new_task publishing";
        for (String task : TASKS) {
            send.basicPublish("", queue, MessageProperties.PERSISTENT_TEXT_PLAIN, utf8(task));
        }

        List<String> got = r.collect(done, TASKS.size(), "the workers to process 6 tasks");
        List<String> tasks = new ArrayList<>();
        Map<String, Integer> perWorker = new LinkedHashMap<>();
        for (String g : got) {
            int colon = g.indexOf(':');
            perWorker.merge(g.substring(0, colon), 1, Integer::sum);
            tasks.add(g.substring(colon + 1));
        }
        expectSame("the workers", tasks, TASKS);
        if (perWorker.size() != 2) {
            throw new Fail("one worker did all the tasks: " + perWorker);
        }
    }

    // ---- 3-5. Publish/subscribe, routing, topics ----------------------------------------------

    /**
     * The three log tutorials: subscribers (label -> binding keys) bind their queues to an
     * exchange and consume with auto-ack; the emitter publishes (routing key, body) pairs; each
     * subscriber must receive exactly its expected "routing key:body" messages.
     */
    static void logs(Run r, String exchangeBase, BuiltinExchangeType type,
                     Map<String, List<String>> bindings, List<String[]> publishes,
                     Map<String, List<String>> expected) throws Exception {
        String exchange = r.name(exchangeBase);
        r.exchanges.add(exchange);
        Map<String, BlockingQueue<String>> inboxes = new LinkedHashMap<>();

        for (Map.Entry<String, List<String>> sub : bindings.entrySet()) {
            String label = sub.getKey();
            Channel ch = r.connect(r.consumerUrl, "subscriber " + label).createChannel();
            r.step = "subscriber " + label + " declaring exchange " + exchange;
            ch.exchangeDeclare(exchange, type);
            String queue = r.declareSubscriberQueue(ch, exchangeBase, label);
            for (String key : sub.getValue()) {
                r.step = "subscriber " + label + " binding " + queue + " with '" + key + "'";
                ch.queueBind(queue, exchange, key);
            }
            BlockingQueue<String> inbox = new LinkedBlockingQueue<>();
            inboxes.put(label, inbox);
            r.consume(ch, queue, true, "subscriber " + label, (tag, d) ->
                    inbox.add(d.getEnvelope().getRoutingKey() + ":" + utf8(d.getBody())));
        }

        Channel emit = r.connect(r.producerUrl, "emitter").createChannel();
        r.step = "emitter declaring exchange " + exchange;
        emit.exchangeDeclare(exchange, type);
        r.step = "emitter publishing";
        for (String[] p : publishes) {
            emit.basicPublish(exchange, p[0], null, utf8(p[1]));
        }

        for (Map.Entry<String, BlockingQueue<String>> in : inboxes.entrySet()) {
            String label = in.getKey();
            List<String> want = expected.get(label);
            expectSame("subscriber " + label,
                    r.collect(in.getValue(), want.size(), "subscriber " + label + "'s " + want),
                    want);
        }
    }

    static void pubsub(Run r) throws Exception {
        List<String[]> publishes = List.of(
                new String[] {"", "info: Hello World! #1"},
                new String[] {"", "info: Hello World! #2"},
                new String[] {"", "info: Hello World! #3"});
        List<String> all = publishes.stream().map(p -> p[0] + ":" + p[1]).toList();
        Map<String, List<String>> bindings = new LinkedHashMap<>();
        bindings.put("a", List.of(""));
        bindings.put("b", List.of(""));
        logs(r, "logs", BuiltinExchangeType.FANOUT, bindings, publishes,
                Map.of("a", all, "b", all));
    }

    static void routing(Run r) throws Exception {
        Map<String, List<String>> bindings = new LinkedHashMap<>();
        bindings.put("a", List.of("error"));
        bindings.put("b", List.of("info", "warning", "error"));
        logs(r, "direct_logs", BuiltinExchangeType.DIRECT, bindings,
                List.of(new String[] {"info", "Hello World!"},
                        new String[] {"warning", "Hello World!"},
                        new String[] {"error", "Hello World!"}),
                Map.of("a", List.of("error:Hello World!"),
                        "b", List.of("info:Hello World!", "warning:Hello World!",
                                "error:Hello World!")));
    }

    static void topics(Run r) throws Exception {
        Map<String, List<String>> bindings = new LinkedHashMap<>();
        bindings.put("a", List.of("*.critical"));
        bindings.put("b", List.of("kern.#"));
        logs(r, "topic_logs", BuiltinExchangeType.TOPIC, bindings,
                List.of(new String[] {"kern.critical", "A critical kernel error"},
                        new String[] {"kern.info", "A kernel note"},
                        new String[] {"app.critical", "A critical app error"},
                        new String[] {"app.info", "An app note"}),
                Map.of("a", List.of("kern.critical:A critical kernel error",
                                "app.critical:A critical app error"),
                        "b", List.of("kern.critical:A critical kernel error",
                                "kern.info:A kernel note")));
    }

    // ---- 6. RPC ------------------------------------------------------------------------------

    static long fib(int n) {
        long a = 0, b = 1;
        for (int i = 0; i < n; i++) {
            long t = a + b;
            a = b;
            b = t;
        }
        return a;
    }

    static void rpc(Run r) throws Exception {
        String queue = r.name("rpc_queue");
        r.queues.add(queue);

        Channel server = r.connect(r.consumerUrl, "rpc server").createChannel();
        r.declareNamedQueue(server, queue, false, "rpc server");
        r.step = "rpc server setting prefetch 1";
        server.basicQos(1);
        r.consume(server, queue, false, "rpc server", (tag, d) -> {
            AMQP.BasicProperties reply = new AMQP.BasicProperties.Builder()
                    .correlationId(d.getProperties().getCorrelationId())
                    .build();
            String response = String.valueOf(fib(Integer.parseInt(utf8(d.getBody()))));
            server.basicPublish("", d.getProperties().getReplyTo(), reply, utf8(response));
            server.basicAck(d.getEnvelope().getDeliveryTag(), false);
        });

        Channel client = r.connect(r.producerUrl, "rpc client").createChannel();
        r.step = "rpc client declaring its callback queue";
        String callback = client.queueDeclare().getQueue();
        BlockingQueue<String[]> replies = new LinkedBlockingQueue<>(); // {correlation id, body}
        r.consume(client, callback, true, "rpc client",
                (tag, d) -> replies.add(new String[] {
                        String.valueOf(d.getProperties().getCorrelationId()), utf8(d.getBody())}));

        for (int n : new int[] {30, 10, 1}) {
            String corrId = UUID.randomUUID().toString();
            AMQP.BasicProperties props = new AMQP.BasicProperties.Builder()
                    .correlationId(corrId)
                    .replyTo(callback)
                    .build();
            r.step = "rpc client requesting fib(" + n + ")";
            client.basicPublish("", queue, props, utf8(String.valueOf(n)));
            r.step = "rpc client waiting for fib(" + n + ")";
            String[] reply = r.next(replies, r.waitDeadline);
            if (reply == null) {
                throw new Fail("timed out after " + WAIT_MS + " ms waiting for the reply to fib("
                        + n + ") on " + callback);
            }
            if (!reply[0].equals(corrId)) {
                throw new Fail("reply '" + reply[1] + "' to fib(" + n + ") has correlation id "
                        + reply[0] + ", expected " + corrId);
            }
            if (!reply[1].equals(String.valueOf(fib(n)))) {
                throw new Fail("fib(" + n + ") replied '" + reply[1] + "', expected " + fib(n));
            }
        }
    }

    // ---- Running ---------------------------------------------------------------------------

    static final Map<String, Scenario> SCENARIOS = Map.of(
            "hello", Tutorials::hello, "work", Tutorials::work, "pubsub", Tutorials::pubsub,
            "routing", Tutorials::routing, "topics", Tutorials::topics, "rpc", Tutorials::rpc);

    /** A one-line description of an exception, with the broker's close reason if any. */
    static String describe(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof ShutdownSignalException s) {
                return (s.isHardError() ? "connection closed: " : "channel closed: ")
                        + s.getReason();
            }
        }
        String s = e.toString();
        return e.getCause() != null ? s + " (" + e.getCause() + ")" : s;
    }

    /**
     * Closes the run's connections (gracefully after a success, by abort after a failure),
     * then deletes its named queues and exchanges over a fresh connection to each distinct URL
     * (in case the two URLs do not reach the same broker). Returns null or what went wrong.
     */
    static String cleanup(Run r, boolean graceful) {
        List<String> errors = new ArrayList<>();
        for (Connection c : new ArrayList<>(r.connections)) {
            try {
                if (graceful) {
                    c.close(2_000);
                } else {
                    c.abort(1_000);
                }
            } catch (Exception e) {
                errors.add("closing the " + c.getClientProvidedName() + " connection: "
                        + describe(e));
            }
        }
        if (!r.queues.isEmpty() || !r.exchanges.isEmpty()) {
            for (String url : new LinkedHashSet<>(List.of(r.producerUrl, r.consumerUrl))) {
                deleteAll(r, url, errors);
            }
        }
        return errors.isEmpty() ? null : String.join("; ", errors);
    }

    static void deleteAll(Run r, String url, List<String> errors) {
        Connection c = null;
        try {
            c = r.connect(url, "cleanup");
            for (String q : r.queues) {
                try (Channel ch = c.createChannel()) {
                    ch.queueDelete(q);
                } catch (Exception e) {
                    errors.add("deleting queue " + q + ": " + describe(e));
                }
            }
            for (String x : r.exchanges) {
                try (Channel ch = c.createChannel()) {
                    ch.exchangeDelete(x);
                } catch (Exception e) {
                    errors.add("deleting exchange " + x + ": " + describe(e));
                }
            }
        } catch (Exception e) {
            errors.add("connecting for cleanup: " + describe(e));
        } finally {
            if (c != null) {
                c.abort(1_000);
            }
        }
    }

    /** Runs one scenario with its time limits; returns null on success or the failure reason. */
    static String runOne(String scenario, Run r) {
        ExecutorService pool = Executors.newCachedThreadPool(task -> {
            Thread t = new Thread(task, "tutorial-" + scenario);
            t.setDaemon(true);
            return t;
        });
        try {
            String failure = null;
            Future<?> body = pool.submit(() -> {
                SCENARIOS.get(scenario).run(r);
                return null;
            });
            try {
                body.get(WATCHDOG_MS, TimeUnit.MILLISECONDS);
            } catch (TimeoutException e) {
                body.cancel(true);
                failure = "timed out after " + WATCHDOG_MS + " ms while " + r.step;
            } catch (ExecutionException e) {
                failure = e.getCause() instanceof Fail
                        ? e.getCause().getMessage()
                        : "while " + r.step + ": " + describe(e.getCause());
            }
            final boolean ok = failure == null;
            Future<String> clean = pool.submit(() -> cleanup(r, ok));
            try {
                String err = clean.get(CLEANUP_MS, TimeUnit.MILLISECONDS);
                if (ok && err != null) {
                    failure = "cleanup: " + err;
                }
            } catch (TimeoutException e) {
                if (ok) {
                    failure = "cleanup timed out after " + CLEANUP_MS + " ms";
                }
            }
            return failure;
        } catch (InterruptedException | ExecutionException e) {
            return describe(e);
        } finally {
            pool.shutdownNow();
        }
    }

    public static void main(String[] args) {
        if (args.length < 3 || !(args[2].equals("classic") || args[2].equals("quorum"))) {
            System.err.println("usage: Tutorials CONSUMER_URL PRODUCER_URL classic|quorum"
                    + " [" + String.join("|", ALL) + "]...");
            System.exit(2);
        }
        String kind = args[2];
        List<String> scenarios = args.length > 3
                ? List.of(args).subList(3, args.length) : ALL;
        for (String s : scenarios) {
            if (!SCENARIOS.containsKey(s)) {
                System.err.println("unknown scenario '" + s + "'; known: " + ALL);
                System.exit(2);
            }
        }
        SecureRandom random = new SecureRandom();
        for (String scenario : scenarios) {
            byte[] tag = new byte[4];
            random.nextBytes(tag);
            String suffix = "-" + CLIENT + "-" + kind + "-" + HexFormat.of().formatHex(tag);
            long start = System.nanoTime();
            String failure = runOne(scenario, new Run(args[0], args[1], kind, suffix));
            String line = "tutorial " + CLIENT + " " + kind + " " + scenario + ": ";
            if (failure != null) {
                System.out.println(line + "FAIL " + failure);
                System.out.flush();
                System.exit(1);
            }
            long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
            System.out.println(line + "ok (" + ms + " ms)");
        }
        System.out.flush();
        System.exit(0);
    }
}
