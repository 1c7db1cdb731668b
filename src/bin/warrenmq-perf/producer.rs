//! One producer: publishes timestamped bodies to its queue, keeping at most `--confirm`
//! messages unconfirmed, optionally rate limited.

use crate::stats::{now_ns, Counters, Recorder};
use futures::stream::{FuturesUnordered, StreamExt};
use futures::FutureExt;
use hdrhistogram::Histogram;
use lapin::options::BasicPublishOptions;
use lapin::types::ShortString;
use lapin::{BasicProperties, Channel, Confirmation};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// Publishes handed to lapin but not yet written to the socket, when confirms are off.
/// Keeps the producer from queueing without bound while still pipelining writes.
const MAX_PENDING_WRITES: usize = 128;

/// How long a stopping producer waits for its outstanding confirms.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

pub struct ProducerSpec {
    pub index: usize,
    pub queue: String,
    pub size: usize,
    /// 0 = no confirms.
    pub confirm: usize,
    /// msg/s; 0 = unlimited.
    pub rate: f64,
    pub persistent: bool,
    pub mandatory: bool,
}

type Outcome = lapin::Result<Option<(Instant, Confirmation)>>;

/// Publishes one message and, with confirms, waits for its confirm.
async fn publish_one(
    channel: &Channel,
    routing_key: ShortString,
    body: Vec<u8>,
    properties: BasicProperties,
    options: BasicPublishOptions,
    confirms: bool,
    counters: &Counters,
) -> Outcome {
    let t0 = Instant::now();
    let confirm = channel
        .basic_publish("".into(), routing_key, options, &body, properties)
        .await?;
    Counters::add(&counters.sent, 1);
    drop(body);
    // Always await: a dropped unresolved PublisherConfirm is kept by lapin for
    // wait_for_confirms. Without confirms it is already resolved.
    let confirmation = confirm.await?;
    Ok(confirms.then_some((t0, confirmation)))
}

/// Runs until `stop` turns true, then waits (bounded) for outstanding confirms and closes
/// the channel. Returns the confirm latency histogram (empty without confirms).
pub async fn run(
    spec: ProducerSpec,
    channel: Channel,
    counters: Arc<Counters>,
    mut recorder: Recorder,
    start: Instant,
    mut stop: watch::Receiver<bool>,
) -> (Histogram<u64>, Result<(), String>) {
    let who = format!("producer {} (queue {})", spec.index, spec.queue);
    let confirms = spec.confirm > 0;
    let window = if confirms {
        spec.confirm
    } else {
        MAX_PENDING_WRITES
    };
    let routing_key: ShortString = spec.queue.as_str().into();
    let mut properties = BasicProperties::default();
    if spec.persistent {
        properties = properties.with_delivery_mode(2);
    }
    let options = BasicPublishOptions {
        mandatory: spec.mandatory,
        ..BasicPublishOptions::default()
    };
    let step = (spec.rate > 0.0).then(|| Duration::from_secs_f64(1.0 / spec.rate));
    let mut next_due = start;
    let rate_sleep = tokio::time::sleep_until(start);
    tokio::pin!(rate_sleep);

    let handle = |outcome: Outcome, recorder: &mut Recorder| -> Result<(), String> {
        match outcome {
            Err(e) => Err(format!("{who}: publish failed: {e}")),
            Ok(None) => Ok(()),
            Ok(Some((t0, confirmation))) => {
                match confirmation {
                    Confirmation::Ack(returned) => {
                        Counters::add(&counters.confirmed, 1);
                        if returned.is_some() {
                            Counters::add(&counters.returned, 1);
                        }
                    }
                    Confirmation::Nack(_) => Counters::add(&counters.nacked, 1),
                    Confirmation::NotRequested => {}
                }
                recorder.record(t0.elapsed().as_nanos() as u64);
                Ok(())
            }
        }
    };

    let mut inflight = FuturesUnordered::new();
    let result: Result<(), String> = async {
        loop {
            // Poll what is ready: completes confirms and hands fresh publishes to lapin.
            while let Some(Some(outcome)) = inflight.next().now_or_never() {
                handle(outcome, &mut recorder)?;
            }
            if *stop.borrow() {
                return Ok(());
            }
            let due = step.is_none() || Instant::now() >= next_due;
            if due && inflight.len() < window {
                let mut body = vec![0u8; spec.size];
                body[..8].copy_from_slice(&now_ns().to_be_bytes());
                inflight.push(publish_one(
                    &channel,
                    routing_key.clone(),
                    body,
                    properties.clone(),
                    options,
                    confirms,
                    &counters,
                ));
                if let Some(step) = step {
                    next_due += step;
                }
                continue;
            }
            if !due {
                rate_sleep.as_mut().reset(next_due);
            }
            tokio::select! {
                biased;
                changed = stop.changed() => {
                    if changed.is_err() {
                        return Ok(());
                    }
                }
                Some(outcome) = inflight.next(), if !inflight.is_empty() => {
                    handle(outcome, &mut recorder)?;
                }
                _ = &mut rate_sleep, if !due => {}
            }
        }
    }
    .await;

    if result.is_ok() {
        // Let outstanding publishes and confirms finish so the channel closes cleanly.
        let _ = tokio::time::timeout(DRAIN_TIMEOUT, async {
            while let Some(outcome) = inflight.next().await {
                if outcome.is_err() {
                    break;
                }
            }
        })
        .await;
    }
    drop(inflight);
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, channel.close(200, "bye".into())).await;
    (recorder.into_total(), result)
}
