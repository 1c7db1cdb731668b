//! Unit tests of the queue actor over its in-memory backend (a transient queue): every
//! path that makes a message ready or frees credit delivers at once, without waiting
//! for another inbox message.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use super::{Backend, QueueActor};
use crate::broker::consumers::ChannelCredit;
use crate::broker::events::{ConnEvent, Delivery, QueueMsg};
use crate::broker::QueueHandle;
use crate::queue::{Message, QueueMachine};

/// Longest wait for something that should happen at once.
const SOON: Duration = Duration::from_secs(2);

struct Harness {
    queue: QueueHandle,
    seq: u64,
    machine: Arc<Mutex<QueueMachine>>,
}

impl Harness {
    /// A transient queue's actor, running.
    fn start() -> Harness {
        let (tx, inbox) = mpsc::unbounded_channel();
        let (broker, _broker_rx) = mpsc::unbounded_channel();
        let queue = QueueHandle::new("/".into(), "q".into(), tx);
        let machine = Arc::new(Mutex::new(QueueMachine::default()));
        let actor = QueueActor::new(
            queue.clone(),
            machine.clone(),
            Backend::Local { next_index: 0 },
            inbox,
            broker,
            false,
        );
        tokio::spawn(actor.run());
        Harness {
            queue,
            seq: 0,
            machine,
        }
    }

    fn publish(&mut self, body: &str) {
        self.seq += 1;
        self.queue.send(QueueMsg::Publish {
            enqueuer: 1,
            seq: self.seq,
            message: Message {
                exchange: String::new(),
                routing_key: "q".into(),
                properties: Bytes::new(),
                body: Bytes::copy_from_slice(body.as_bytes()),
            },
            confirm: None,
        });
    }

    /// Register a consumer; its deliveries arrive on the returned receiver.
    async fn consume(
        &self,
        key: u64,
        no_ack: bool,
        prefetch: u32,
        credit: Arc<ChannelCredit>,
    ) -> mpsc::UnboundedReceiver<ConnEvent> {
        let (conn, rx) = mpsc::unbounded_channel();
        let (reply, answer) = oneshot::channel();
        self.queue.send(QueueMsg::Consume {
            key,
            tag: format!("c{key}").into(),
            channel: 1,
            conn,
            no_ack,
            prefetch,
            channel_credit: credit,
            priority: 0,
            exclusive: false,
            reply,
        });
        answer
            .await
            .expect("actor answers")
            .expect("consumer added");
        rx
    }

    async fn ready(&self) -> u64 {
        self.queue.status().await.expect("actor runs").ready
    }
}

fn body(d: &Delivery) -> String {
    String::from_utf8_lossy(&d.message.body).into_owned()
}

async fn next(rx: &mut mpsc::UnboundedReceiver<ConnEvent>, what: &str) -> Delivery {
    match tokio::time::timeout(SOON, rx.recv()).await {
        Ok(Some(ConnEvent::Deliver(d))) => d,
        Ok(other) => panic!("{what}: expected a delivery, got {other:?}"),
        Err(_) => panic!("{what}: nothing delivered within {SOON:?}"),
    }
}

async fn nothing(rx: &mut mpsc::UnboundedReceiver<ConnEvent>, what: &str) {
    if let Ok(Some(e)) = tokio::time::timeout(Duration::from_millis(100), rx.recv()).await {
        panic!("{what}: expected nothing, got {e:?}");
    }
}

#[tokio::test]
async fn one_publish_to_a_waiting_consumer_is_delivered_at_once() {
    for (no_ack, prefetch) in [(true, 0), (false, 0), (false, 1), (false, 10)] {
        let mut h = Harness::start();
        let mut rx = h.consume(1, no_ack, prefetch, Arc::default()).await;
        h.publish("only");
        let d = next(&mut rx, "the single publish").await;
        assert_eq!(body(&d), "only");
        assert!(!d.redelivered);
        assert_eq!(d.needs_ack, !no_ack);
        assert_eq!(h.ready().await, 0, "no_ack={no_ack} prefetch={prefetch}");
    }
}

#[tokio::test]
async fn two_no_ack_consumers_get_all_of_an_odd_number_of_publishes() {
    let mut h = Harness::start();
    let mut a = h.consume(1, true, 0, Arc::default()).await;
    let mut b = h.consume(2, true, 0, Arc::default()).await;
    for i in 0..9 {
        h.publish(&format!("m{i}"));
    }
    let mut got = Vec::new();
    while got.len() < 9 {
        tokio::select! {
            Some(ConnEvent::Deliver(d)) = a.recv() => got.push(body(&d)),
            Some(ConnEvent::Deliver(d)) = b.recv() => got.push(body(&d)),
            () = tokio::time::sleep(SOON) => panic!("only {got:?} of 9 arrived"),
        }
    }
    got.sort();
    assert_eq!(got, (0..9).map(|i| format!("m{i}")).collect::<Vec<_>>());
    assert_eq!(h.ready().await, 0);
}

#[tokio::test]
async fn an_ack_or_a_requeue_frees_credit_and_the_next_message_goes_at_once() {
    let mut h = Harness::start();
    let mut rx = h.consume(1, false, 1, Arc::default()).await;
    h.publish("a");
    h.publish("b");
    let a = next(&mut rx, "first").await;
    nothing(&mut rx, "prefetch 1 holds the second back").await;
    h.queue.send(QueueMsg::Settle {
        msg_ids: vec![a.msg_id],
    });
    let b = next(&mut rx, "after the ack").await;
    assert_eq!(body(&b), "b");
    h.queue.send(QueueMsg::Requeue {
        msg_ids: vec![b.msg_id],
    });
    let again = next(&mut rx, "after the requeue").await;
    assert_eq!(body(&again), "b");
    assert!(
        again.redelivered,
        "a requeued message is flagged redelivered"
    );
}

#[tokio::test]
async fn raising_a_channel_s_shared_credit_delivers_after_a_wake() {
    let mut h = Harness::start();
    let credit = Arc::new(ChannelCredit::default());
    credit.limit.store(1, Ordering::Relaxed);
    let mut rx = h.consume(1, false, 0, credit.clone()).await;
    h.publish("a");
    h.publish("b");
    next(&mut rx, "first, within the shared limit").await;
    nothing(&mut rx, "the shared limit holds the second back").await;
    credit.limit.store(2, Ordering::Relaxed);
    h.queue.send(QueueMsg::Wake);
    assert_eq!(body(&next(&mut rx, "after the wake").await), "b");
}

#[tokio::test]
async fn a_consumer_whose_connection_is_gone_is_dropped_and_the_others_get_its_messages() {
    let mut h = Harness::start();
    let gone = h.consume(1, false, 0, Arc::default()).await;
    drop(gone);
    let mut rx = h.consume(2, false, 0, Arc::default()).await;
    for i in 0..4 {
        h.publish(&format!("m{i}"));
    }
    let mut got = Vec::new();
    for _ in 0..4 {
        got.push(body(&next(&mut rx, "the live consumer").await));
    }
    got.sort();
    assert_eq!(got, ["m0", "m1", "m2", "m3"]);
    let status = h.queue.status().await.unwrap();
    assert_eq!((status.ready, status.consumers), (0, 1));
}

/// A publish with a confirm, for the queue `q` of `h`.
fn publish_confirmed(h: &mut Harness, conn: &mpsc::UnboundedSender<ConnEvent>, publish_seq: u64) {
    h.seq += 1;
    h.queue.send(QueueMsg::Publish {
        enqueuer: 1,
        seq: h.seq,
        message: Message {
            exchange: String::new(),
            routing_key: "q".into(),
            properties: Bytes::new(),
            body: Bytes::from_static(b"m"),
        },
        confirm: Some(crate::broker::ConfirmTo {
            conn: conn.clone(),
            channel: 1,
            publish_seq,
        }),
    });
}

#[tokio::test]
async fn publishes_pending_when_the_queue_is_deleted_are_answered() {
    let mut h = Harness::start();
    let (conn, mut events) = mpsc::unbounded_channel();
    // Publishes and the deletion reach the inbox together (the actor has not run yet on
    // this single-threaded runtime), so the publishes are still pending at the deletion.
    for seq in 1..=3 {
        publish_confirmed(&mut h, &conn, seq);
    }
    let (reply, deleted) = oneshot::channel();
    h.queue.send(QueueMsg::Shutdown { reply });
    // One more behind the deletion, still in the inbox when the actor stops.
    publish_confirmed(&mut h, &conn, 4);
    deleted.await.expect("the actor answers the deletion");
    let mut answered = Vec::new();
    while let Ok(Some(event)) = tokio::time::timeout(SOON, events.recv()).await {
        match event {
            ConnEvent::Enqueued {
                publish_seq, ok, ..
            } => answered.push((publish_seq, ok)),
            other => panic!("expected confirms, got {other:?}"),
        }
        if answered.len() == 4 {
            break;
        }
    }
    // Confirmed, as RabbitMQ confirms the publishes of a queue deleted under them.
    assert_eq!(answered, [(1, true), (2, true), (3, true), (4, true)]);
}

#[tokio::test]
async fn a_closed_publisher_is_forgotten_once_its_publishes_are_stored() {
    let mut h = Harness::start();
    // Publishes and the forget arrive together: the forget waits for the publishes'
    // batch (a forget applied with them would let a retry of that batch in twice).
    for body in ["a", "b", "c"] {
        h.publish(body);
    }
    h.queue.send(QueueMsg::Forget { enqueuer: 1 });
    // Another publisher, still open, is remembered.
    h.queue.send(QueueMsg::Publish {
        enqueuer: 2,
        seq: 9,
        message: Message {
            exchange: String::new(),
            routing_key: "q".into(),
            properties: Bytes::new(),
            body: Bytes::from_static(b"d"),
        },
        confirm: None,
    });
    // A status in the same inbox drain answers before the batch is applied: ask twice.
    h.ready().await;
    assert_eq!(h.ready().await, 4, "every publish stored");
    let machine = h.machine.lock().unwrap();
    assert_eq!(
        machine.last_seq(1),
        None,
        "the closed publisher is forgotten"
    );
    assert_eq!(machine.last_seq(2), Some(9));
}

#[tokio::test]
async fn a_publish_that_skips_a_seq_is_nacked_and_not_stored() {
    let mut h = Harness::start();
    let (conn, mut events) = mpsc::unbounded_channel();
    publish_confirmed(&mut h, &conn, 1);
    // Enqueue seq 2 never arrives (lost on its way): the one after it skips a seq.
    h.seq += 1;
    publish_confirmed(&mut h, &conn, 2);
    publish_confirmed(&mut h, &conn, 3);
    let mut answered = Vec::new();
    while answered.len() < 3 {
        match tokio::time::timeout(SOON, events.recv()).await {
            Ok(Some(ConnEvent::Enqueued {
                publish_seq, ok, ..
            })) => answered.push((publish_seq, ok)),
            other => panic!("expected three confirms, got {other:?} after {answered:?}"),
        }
    }
    assert_eq!(answered, [(1, true), (2, false), (3, false)]);
    assert_eq!(h.ready().await, 1, "only the first was stored");
    assert_eq!(h.machine.lock().unwrap().last_seq(1), Some(1));
}
