// RabbitMQ's six getting-started tutorials, run with amqplib (Node.js) the way a newcomer
// runs them.
//
// Usage: NODE_PATH=.../node_modules node scripts/tutorials/tutorials.js \
//          CONSUMER_URL PRODUCER_URL KIND [SCENARIO...]
//
// KIND is `classic` (the queues as the tutorials used to declare them: non-durable `hello`,
// durable classic `task_queue`, server-named exclusive subscriber queues) or `quorum` (the
// tutorials' current form: durable quorum queues, and a named durable quorum queue per log
// subscriber). SCENARIOs default to all six: hello work pubsub routing topics rpc. Every
// consumer (receiver, workers, subscribers, RPC server) has its own connection to
// CONSUMER_URL and is started, one after the other as from separate terminals, up to its
// consume-ok before anything is published. Every producer (sender, new_task, emit_log*, RPC
// client) has its own connection to PRODUCER_URL, kept open until the deliveries are
// checked (RabbitMQ may drop unconfirmed publishes to a just-created quorum queue when the
// connection closes at once); each scenario then deletes its named queues and exchanges
// over it. Prints one line per scenario, `tutorial amqplib KIND SCENARIO: ok (N ms)`, or
// `... FAIL reason` and exits 1. scripts/tutorials/run.sh runs it against a single node
// and a three-node cluster; the pika, Java and Go clients beside it follow the same
// contract.
'use strict';
const crypto = require('crypto');

let amqp;
try {
  amqp = require('amqplib');
} catch (err) {
  console.error('tutorials.js: cannot load amqplib; run it with NODE_PATH=<deps>/node_modules '
    + '(scripts/install-test-deps.sh installs amqplib under ~/.cache/warrenmq-interop)');
  process.exit(2);
}

const CLIENT = 'amqplib';
const SCENARIOS = ['hello', 'work', 'pubsub', 'routing', 'topics', 'rpc'];
const SCENARIO_TIMEOUT_MS = 15000; // the whole scenario; the watchdog ends a hung one
const WAIT_BUDGET_MS = 14500; // from the start, what the waits inside a scenario may use
const SETTLE_MS = 300; // wait after the expected messages arrived, to catch extras

class Fail extends Error {}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const show = (value) => JSON.stringify(value);

// One scenario's run: names with this run's suffix, queue options for KIND, the consumers
// it started, and bounded waits that report what was missing.
class Scenario {
  constructor(consumerUrl, producerUrl, kind, suffix, name) {
    Object.assign(this, { consumerUrl, producerUrl, kind, suffix, name });
    this.start = Date.now();
    this.step = 'starting';
    this.consumers = [];
    this.errors = [];
  }

  unique(base) {
    return `${base}-${CLIENT}-${this.kind}-${this.suffix}`;
  }

  // assertQueue options for a work queue, as the tutorials declare it for KIND.
  // (amqplib's assertQueue defaults to durable: true, so classic spells out durable.)
  queueOptions(classicDurable) {
    if (this.kind === 'quorum') return { durable: true, arguments: { 'x-queue-type': 'quorum' } };
    return { durable: classicDurable };
  }

  // A log subscriber's queue: server-named exclusive (classic; the tutorial's
  // assertQueue('', { exclusive: true }), durable by amqplib's default) or a named durable
  // quorum queue (quorum). Returns its name.
  async declareSubscriberQueue(ch, label) {
    if (this.kind === 'quorum') {
      const name = this.unique(`${this.name}-${label}`);
      await ch.assertQueue(name, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
      return name;
    }
    return (await ch.assertQueue('', { exclusive: true })).queue;
  }

  // A connection whose errors are recorded (and fail the next wait) instead of crashing.
  async connect(url, label) {
    const conn = await amqp.connect(url);
    conn.on('error', (err) => this.errors.push(`${label}: connection error: ${err.message}`));
    return conn;
  }

  async channel(conn, label) {
    const ch = await conn.createChannel();
    ch.on('error', (err) => this.errors.push(`${label}: channel error: ${err.message}`));
    return ch;
  }

  // One consuming program (receive.js, worker.js, receive_logs*.js, rpc_server.js): its
  // own connection. setup(ch) declares and binds and returns the queue; onMessage(ch, msg)
  // handles each delivery.
  async startConsumer(label, setup, onMessage, noAck) {
    this.step = `starting ${label}`;
    const conn = await this.connect(this.consumerUrl, label);
    const ch = await this.channel(conn, label);
    const queue = await setup(ch);
    // consume() resolves once the broker sent basic.consume-ok.
    const { consumerTag } = await ch.consume(queue, (msg) => {
      if (msg === null) this.errors.push(`${label}: the broker cancelled the consumer`);
      else onMessage(ch, msg);
    }, { noAck });
    const consumer = { label, conn, ch, consumerTag };
    this.consumers.push(consumer);
    return consumer;
  }

  // Start each consumer in turn, the next once the previous has its consume-ok.
  async startConsumers(...specs) {
    for (const spec of specs) await this.startConsumer(...spec);
  }

  async stopConsumers() {
    this.step = 'stopping the consumers';
    for (const c of this.consumers) {
      await c.ch.cancel(c.consumerTag);
      await c.conn.close();
    }
  }

  // The producer's connection and a channel on it.
  async connectProducer(label) {
    this.step = `connecting ${label} to PRODUCER_URL`;
    const conn = await this.connect(this.producerUrl, label);
    const ch = await this.channel(conn, label);
    this.step = `${label} working`;
    return { conn, ch };
  }

  // Stop the consumers, then delete this scenario's named queues and exchanges over the
  // producer's connection and close it.
  async finish({ conn, ch }, { queues = [], exchanges = [] } = {}) {
    await this.stopConsumers();
    this.step = 'deleting the queues and exchanges';
    for (const q of queues) await ch.deleteQueue(q);
    for (const x of exchanges) await ch.deleteExchange(x);
    await conn.close();
  }

  // Wait until predicate() holds, an error was recorded, or the scenario's time is up;
  // what() names what was missing.
  async waitUntil(predicate, what) {
    this.step = `waiting for ${what()}`;
    const deadline = this.start + WAIT_BUDGET_MS;
    for (;;) {
      if (this.errors.length) throw new Fail(this.errors[0]);
      if (predicate()) return;
      if (Date.now() >= deadline) {
        throw new Fail(`timed out after ${SCENARIO_TIMEOUT_MS / 1000} s waiting for ${what()}`);
      }
      await sleep(5);
    }
  }

  // Give stray extra deliveries time to show up before checking exact contents.
  async settle() {
    this.step = 'settling';
    await sleep(SETTLE_MS);
    if (this.errors.length) throw new Fail(this.errors[0]);
  }
}

function expect(actual, expected, who) {
  if (show(actual) !== show(expected)) {
    throw new Fail(`${who} got ${show(actual)}, expected ${show(expected)}`);
  }
}

// ---- the six scenarios ------------------------------------------------------------------

// Tutorial 1: receive.js consumes `hello` with noAck; send.js sends one message.
async function hello(sc) {
  const queue = sc.unique('hello');
  const got = [];
  const setup = async (ch) => {
    await ch.assertQueue(queue, sc.queueOptions(false));
    return queue;
  };
  await sc.startConsumers(['the receiver', setup, (ch, msg) => got.push(msg.content.toString()), true]);
  const producer = await sc.connectProducer('the sender');
  const { ch } = producer;
  await ch.assertQueue(queue, sc.queueOptions(false));
  ch.sendToQueue(queue, Buffer.from('Hello World!'));
  await sc.waitUntil(() => got.length > 0, () => `'Hello World!' at the receiver on ${queue}`);
  await sc.settle();
  expect(got, ['Hello World!'], 'the receiver');
  await sc.finish(producer, { queues: [queue] });
}

// Tutorial 2: two workers with prefetch 1 and manual ack take 100 ms per dot; new_task.js
// sends six persistent tasks; each is done exactly once, and both workers get some.
async function work(sc) {
  const queue = sc.unique('task_queue');
  const tasks = [1, 2, 3, 1, 2, 3].map((dots, i) => `task ${i + 1}` + '.'.repeat(dots));
  const done = { 'worker 1': [], 'worker 2': [] };
  const setup = async (ch) => {
    await ch.assertQueue(queue, sc.queueOptions(true));
    await ch.prefetch(1);
    return queue;
  };
  const worker = (label) => [label, setup, (ch, msg) => {
    const body = msg.content.toString();
    setTimeout(() => {
      ch.ack(msg);
      done[label].push(body);
    }, 100 * (body.split('.').length - 1));
  }, false];
  await sc.startConsumers(worker('worker 1'), worker('worker 2'));
  const producer = await sc.connectProducer('new_task');
  const { ch } = producer;
  await ch.assertQueue(queue, sc.queueOptions(true));
  for (const task of tasks) ch.sendToQueue(queue, Buffer.from(task), { persistent: true });
  const total = () => done['worker 1'].length + done['worker 2'].length;
  await sc.waitUntil(() => total() >= tasks.length,
    () => `${tasks.length} tasks done (done so far: ${show(done)})`);
  await sc.settle();
  expect([...done['worker 1'], ...done['worker 2']].sort(), [...tasks].sort(), 'the workers together');
  for (const [label, items] of Object.entries(done)) {
    if (items.length === 0) {
      throw new Fail(`${label} did no task (round-robin with prefetch 1 expected both busy): ${show(done)}`);
    }
  }
  await sc.finish(producer, { queues: [queue] });
}

// Tutorials 3-5: subscribers bind their queue to `exchange` with their binding keys and
// consume with noAck; emit_log* publishes [routingKey, body] pairs; each subscriber must
// get exactly the messages its bindings match, in order.
async function logs(sc, baseExchange, type, subscriptions, messages) {
  const exchange = sc.unique(baseExchange);
  const got = {};
  const queues = [];
  const specs = Object.entries(subscriptions).map(([label, [keys]]) => {
    got[label] = [];
    const setup = async (ch) => {
      await ch.assertExchange(exchange, type, { durable: false });
      const queue = await sc.declareSubscriberQueue(ch, label);
      if (sc.kind === 'quorum') queues.push(queue);
      for (const key of keys) await ch.bindQueue(queue, exchange, key);
      return queue;
    };
    const onMessage = (ch, msg) => got[label].push([msg.fields.routingKey, msg.content.toString()]);
    return [`subscriber ${label}`, setup, onMessage, true];
  });
  await sc.startConsumers(...specs);
  const producer = await sc.connectProducer('emit_log');
  const { ch } = producer;
  await ch.assertExchange(exchange, type, { durable: false });
  for (const [key, body] of messages) ch.publish(exchange, key, Buffer.from(body));
  const expected = Object.fromEntries(Object.entries(subscriptions).map(([label, [, want]]) => [label, want]));
  await sc.waitUntil(
    () => Object.keys(got).every((label) => got[label].length >= expected[label].length),
    () => 'all logs at the subscribers: ' + Object.keys(got)
      .map((label) => `${label} got ${got[label].length} of ${expected[label].length}`).join('; '));
  await sc.settle();
  for (const label of Object.keys(got)) expect(got[label], expected[label], `subscriber ${label}`);
  await sc.finish(producer, { queues, exchanges: [exchange] });
}

// Tutorial 3: fanout `logs`, two subscribers, three messages each gets all of.
async function pubsub(sc) {
  const messages = [1, 2, 3].map((i) => ['', `log message ${i}`]);
  await logs(sc, 'logs', 'fanout', { a: [[''], messages], b: [[''], messages] }, messages);
}

// Tutorial 4: direct `direct_logs`; A binds error, B binds info, warning, error.
async function routing(sc) {
  const messages = ['info', 'warning', 'error'].map((s) => [s, `a ${s} message`]);
  await logs(sc, 'direct_logs', 'direct',
    { a: [['error'], messages.slice(2)], b: [['info', 'warning', 'error'], messages] }, messages);
}

// Tutorial 5: topic `topic_logs`; A binds *.critical, B binds kern.#.
async function topics(sc) {
  const messages = ['kern.critical', 'kern.info', 'app.critical', 'app.info'].map((k) => [k, `a ${k} message`]);
  const pick = (...keys) => messages.filter(([k]) => keys.includes(k));
  await logs(sc, 'topic_logs', 'topic', {
    a: [['*.critical'], pick('kern.critical', 'app.critical')],
    b: [['kern.#'], pick('kern.critical', 'kern.info')],
  }, messages);
}

function fibonacci(n) {
  let [a, b] = [0, 1];
  for (let i = 0; i < n; i++) [a, b] = [b, a + b];
  return a;
}

// Tutorial 6: rpc_server.js answers fib(n) on `rpc_queue` (prefetch 1, manual ack);
// rpc_client.js calls it through a server-named exclusive callback queue.
async function rpc(sc) {
  const queue = sc.unique('rpc_queue');
  const setup = async (ch) => {
    await ch.assertQueue(queue, sc.queueOptions(false));
    await ch.prefetch(1);
    return queue;
  };
  const onRequest = (ch, msg) => {
    const n = parseInt(msg.content.toString(), 10);
    ch.sendToQueue(msg.properties.replyTo, Buffer.from(fibonacci(n).toString()),
      { correlationId: msg.properties.correlationId });
    ch.ack(msg);
  };
  await sc.startConsumers(['the RPC server', setup, onRequest, false]);
  const producer = await sc.connectProducer('the RPC client');
  const { ch } = producer;
  const callbackQueue = (await ch.assertQueue('', { exclusive: true })).queue;
  const responses = new Map();
  await ch.consume(callbackQueue, (msg) => {
    if (msg) responses.set(msg.properties.correlationId, msg.content.toString());
  }, { noAck: true });
  for (const [n, want] of [[30, 832040], [10, 55], [1, 1]]) {
    const correlationId = crypto.randomUUID();
    ch.sendToQueue(queue, Buffer.from(n.toString()), { correlationId, replyTo: callbackQueue });
    await sc.waitUntil(() => responses.has(correlationId), () => `the reply to fib(${n}) on ${callbackQueue}`);
    expect(responses.get(correlationId), want.toString(), `the RPC client calling fib(${n})`);
  }
  await sc.finish(producer, { queues: [queue] });
}

// ---- driver -----------------------------------------------------------------------------

const RUNS = { hello, work, pubsub, routing, topics, rpc };

// Run one scenario under a watchdog; resolve to null on success or the failure reason.
async function runScenario(consumerUrl, producerUrl, kind, suffix, name) {
  const sc = new Scenario(consumerUrl, producerUrl, kind, suffix, name);
  let timer;
  const watchdog = new Promise((resolve) => {
    timer = setTimeout(() => resolve(`timed out after ${SCENARIO_TIMEOUT_MS / 1000} s while ${sc.step}`),
      SCENARIO_TIMEOUT_MS);
  });
  const body = RUNS[name](sc).then(() => null, (err) =>
    (err instanceof Fail ? err.message : `while ${sc.step}: ${err && err.message ? err.message : err}`));
  try {
    return await Promise.race([body, watchdog]);
  } finally {
    clearTimeout(timer);
  }
}

async function main(argv) {
  const [consumerUrl, producerUrl, kind, ...chosen] = argv;
  if (argv.length < 3 || !['classic', 'quorum'].includes(kind) || chosen.some((s) => !SCENARIOS.includes(s))) {
    process.stderr.write('usage: node tutorials.js CONSUMER_URL PRODUCER_URL classic|quorum '
      + `[${SCENARIOS.join(' ')}]...\n`);
    return 2;
  }
  const suffix = crypto.randomBytes(4).toString('hex');
  for (const name of chosen.length ? chosen : SCENARIOS) {
    const started = Date.now();
    const reason = await runScenario(consumerUrl, producerUrl, kind, suffix, name);
    if (reason) {
      console.log(`tutorial ${CLIENT} ${kind} ${name}: FAIL ${reason}`);
      return 1;
    }
    console.log(`tutorial ${CLIENT} ${kind} ${name}: ok (${Date.now() - started} ms)`);
  }
  return 0;
}

// Exit explicitly: a failed scenario may leave connections open.
main(process.argv.slice(2)).then((code) => process.exit(code), (err) => {
  console.log(`tutorial ${CLIENT}: FAIL ${err && err.stack ? err.stack : err}`);
  process.exit(1);
});
