//! One consumer: receives deliveries, records end-to-end latency from the body timestamp
//! and acknowledges every `--multi-ack-every` deliveries (or not at all with auto-ack).

use crate::stats::{now_ns, Counters, Recorder};
use futures::stream::{FuturesUnordered, StreamExt};
use futures::FutureExt;
use hdrhistogram::Histogram;
use lapin::options::BasicAckOptions;
use lapin::{Channel, Consumer};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// basic.ack frames handed to lapin but not yet written; past this the consumer waits.
const MAX_PENDING_ACKS: usize = 1024;

/// How long a stopping consumer waits for its last acks to be written.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

pub struct ConsumerSpec {
    pub index: usize,
    pub queue: String,
    pub auto_ack: bool,
    pub multi_ack_every: u64,
}

async fn ack(channel: &Channel, delivery_tag: u64, multiple: bool) -> lapin::Result<()> {
    channel
        .basic_ack(delivery_tag, BasicAckOptions { multiple })
        .await
}

/// The latency carried by a body: now minus its leading 8-byte send timestamp.
pub fn body_latency_ns(body: &[u8], now_ns: u64) -> Option<u64> {
    let stamp: [u8; 8] = body.get(..8)?.try_into().ok()?;
    Some(now_ns.saturating_sub(u64::from_be_bytes(stamp)))
}

/// Runs until `stop` turns true or the broker cancels the consumer, acks what it holds,
/// closes the channel and returns the end-to-end latency histogram.
pub async fn run(
    spec: ConsumerSpec,
    channel: Channel,
    mut consumer: Consumer,
    counters: Arc<Counters>,
    mut recorder: Recorder,
    mut stop: watch::Receiver<bool>,
) -> (Histogram<u64>, Result<(), String>) {
    let who = format!("consumer {} (queue {})", spec.index, spec.queue);
    let multiple = spec.multi_ack_every > 1;
    let mut acks = FuturesUnordered::new();
    let mut unacked = 0u64;
    let mut last_tag = 0u64;

    let result: Result<(), String> = async {
        if *stop.borrow() {
            return Ok(());
        }
        loop {
            tokio::select! {
                biased;
                changed = stop.changed() => {
                    if changed.is_err() || *stop.borrow() {
                        return Ok(());
                    }
                }
                Some(r) = acks.next(), if !acks.is_empty() => {
                    let r: lapin::Result<()> = r;
                    r.map_err(|e| format!("{who}: basic.ack failed: {e}"))?;
                }
                delivery = consumer.next() => {
                    let delivery = match delivery {
                        None => {
                            eprintln!("warrenmq-perf: {who}: the broker cancelled the consumer");
                            return Ok(());
                        }
                        Some(Err(e)) => return Err(format!("{who}: delivery failed: {e}")),
                        Some(Ok(delivery)) => delivery,
                    };
                    if let Some(ns) = body_latency_ns(&delivery.data, now_ns()) {
                        recorder.record(ns);
                    }
                    Counters::add(&counters.received, 1);
                    if !spec.auto_ack {
                        unacked += 1;
                        last_tag = delivery.delivery_tag;
                        if unacked >= spec.multi_ack_every {
                            unacked = 0;
                            acks.push(ack(&channel, last_tag, multiple));
                            // First poll hands the frame to lapin.
                            while let Some(Some(r)) = acks.next().now_or_never() {
                                r.map_err(|e| format!("{who}: basic.ack failed: {e}"))?;
                            }
                            while acks.len() >= MAX_PENDING_ACKS {
                                if let Some(r) = acks.next().await {
                                    r.map_err(|e| format!("{who}: basic.ack failed: {e}"))?;
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    .await;

    if result.is_ok() {
        if unacked > 0 {
            acks.push(ack(&channel, last_tag, true));
        }
        let _ = tokio::time::timeout(DRAIN_TIMEOUT, async {
            while let Some(r) = acks.next().await {
                if r.is_err() {
                    break;
                }
            }
        })
        .await;
    }
    drop(acks);
    drop(consumer);
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, channel.close(200, "bye".into())).await;
    (recorder.into_total(), result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_from_body() {
        let mut body = 1_000u64.to_be_bytes().to_vec();
        body.extend_from_slice(&[0; 8]);
        assert_eq!(body_latency_ns(&body, 1_500), Some(500));
        assert_eq!(body_latency_ns(&body, 10), Some(0));
        assert_eq!(body_latency_ns(&[1, 2, 3], 10), None);
    }
}
