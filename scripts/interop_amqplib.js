// amqplib (Node.js) against WarrenMQ: confirm channel, properties and nested headers,
// prefetch, consume and ack, nack with requeue (redelivered), get, purge, a channel error.
// Usage: node scripts/interop_amqplib.js AMQP_URL   (amqplib found via NODE_PATH)
'use strict';
const amqp = require('amqplib');
const assert = require('assert');

async function main(url) {
  const conn = await amqp.connect(url);
  const ch = await conn.createConfirmChannel();
  const q = 'amqplib-q';
  await ch.assertQueue(q, { durable: true });
  await ch.purgeQueue(q);
  const headers = { a: 1, nested: { b: [1, 'two', true] } };
  const opts = {
    contentType: 'application/json', persistent: true, priority: 3, correlationId: 'c-1',
    replyTo: 'replies', expiration: '60000', messageId: 'm-1', timestamp: 1700000000,
    type: 't', userId: 'guest', appId: 'interop', headers,
  };
  for (let i = 0; i < 10; i++) ch.publish('', q, Buffer.from(`body-${i}`), opts);
  await ch.waitForConfirms();

  const first = await ch.get(q, { noAck: false });
  assert.ok(first, 'basic.get returned nothing');
  assert.strictEqual(first.content.toString(), 'body-0');
  const p = first.properties;
  assert.strictEqual(p.contentType, 'application/json');
  assert.strictEqual(p.deliveryMode, 2);
  assert.strictEqual(p.priority, 3);
  assert.strictEqual(p.correlationId, 'c-1');
  assert.strictEqual(p.messageId, 'm-1');
  assert.strictEqual(p.timestamp, 1700000000);
  assert.strictEqual(p.appId, 'interop');
  assert.deepStrictEqual(p.headers, headers);
  ch.nack(first, false, true);

  await ch.prefetch(3);
  const seen = [];
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`consume: only ${seen.length} of 10 within 10 s`)), 10000);
    ch.consume(q, (msg) => {
      if (msg === null) return; // basic.cancel from the broker when the queue is deleted
      seen.push([msg.content.toString(), msg.fields.redelivered]);
      ch.ack(msg);
      if (seen.length === 10) { clearTimeout(timer); resolve(); }
    }, { noAck: false }).catch(reject);
  });
  assert.deepStrictEqual(seen.map((s) => s[0]), [...Array(10).keys()].map((i) => `body-${i}`));
  assert.deepStrictEqual(seen.map((s) => s[1]), [true, ...Array(9).fill(false)]);

  ch.publish('', q, Buffer.from('left'), {});
  await ch.waitForConfirms();
  const other = await conn.createChannel();
  await other.cancel((await other.consume(q, () => {})).consumerTag);
  const purged = await other.purgeQueue(q);
  assert.ok(purged.messageCount <= 1, `purge count ${purged.messageCount}`);
  await other.deleteQueue(q);

  const bad = await conn.createChannel();
  const closed = new Promise((resolve) => bad.on('error', resolve));
  await assert.rejects(bad.checkQueue('does-not-exist'), /404/);
  const err = await closed;
  assert.match(String(err.message), /NOT_FOUND/);
  await conn.close();
  console.log('amqplib: ok');
}

main(process.argv[2]).catch((e) => {
  console.error('amqplib: FAILED', e);
  process.exit(1);
});
