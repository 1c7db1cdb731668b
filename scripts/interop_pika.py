"""pika against WarrenMQ: declare, confirms, publish with properties, get, consume, ack,
nack/requeue, and a channel error with RabbitMQ's reply code."""
import sys

import pika

url = sys.argv[1]
conn = pika.BlockingConnection(pika.URLParameters(url))
ch = conn.channel()
ch.confirm_delivery()
ch.queue_declare("pika-q", durable=True)
props = pika.BasicProperties(
    content_type="application/json",
    delivery_mode=2,
    priority=3,
    correlation_id="c-1",
    reply_to="replies",
    expiration="60000",
    message_id="m-1",
    timestamp=1700000000,
    type="t",
    user_id="guest",
    app_id="interop",
    headers={"a": 1, "nested": {"b": [1, "two", True]}},
)
for i in range(10):
    ch.basic_publish("", "pika-q", f"body-{i}".encode(), props, mandatory=True)
method, got_props, body = ch.basic_get("pika-q", auto_ack=False)
assert body == b"body-0", body
assert got_props.headers == {"a": 1, "nested": {"b": [1, b"two", True]}} or got_props.headers == {
    "a": 1,
    "nested": {"b": [1, "two", True]},
}, got_props.headers
for field in ("content_type", "delivery_mode", "priority", "correlation_id", "reply_to", "expiration",
              "message_id", "timestamp", "type", "user_id", "app_id"):
    assert getattr(got_props, field) == getattr(props, field), (field, getattr(got_props, field))
ch.basic_nack(method.delivery_tag, requeue=True)
seen = []
for method, _props, body in ch.consume("pika-q", inactivity_timeout=5):
    if method is None:
        break
    seen.append((body, method.redelivered))
    ch.basic_ack(method.delivery_tag)
    if len(seen) == 10:
        break
ch.cancel()
assert [b for b, _ in seen] == [f"body-{i}".encode() for i in range(10)], seen
assert seen[0][1] is True and all(not r for _, r in seen[1:]), seen
try:
    ch.queue_declare("does-not-exist", passive=True)
    raise SystemExit("passive declare of a missing queue must fail")
except pika.exceptions.ChannelClosedByBroker as e:
    assert e.reply_code == 404, e
conn.close()
print("pika: ok")
