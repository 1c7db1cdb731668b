//! One consumer: receives deliveries, records end-to-end latency from the body timestamp
//! and acknowledges every `--multi-ack-every` deliveries (or not at all with auto-ack).
//!
//! Deliveries are scanned in place in the read buffer; the acks due after one read go out
//! in one write.

use std::sync::Arc;
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;

use crate::stats::{now_ns, Counters, Recorder};
use crate::wire::{
    close_text, encode_ack, encode_connection_close, read_more, scan_frames, Wire, FRAME_BODY,
};

/// How long a stopping consumer waits for the broker to close the connection.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

pub struct ConsumerSpec {
    pub index: usize,
    pub queue: String,
    pub auto_ack: bool,
    pub multi_ack_every: u64,
}

/// The latency carried by a body: now minus its leading 8-byte send timestamp.
pub fn body_latency_ns(body: &[u8], now_ns: u64) -> Option<u64> {
    let stamp: [u8; 8] = body.get(..8)?.try_into().ok()?;
    Some(now_ns.saturating_sub(u64::from_be_bytes(stamp)))
}

/// The delivery tag of a `basic.deliver` payload (class, method, consumer-tag, tag, ...).
fn delivery_tag(payload: &[u8]) -> Option<u64> {
    let len = *payload.get(4)? as usize;
    let tag = payload.get(5 + len..13 + len)?;
    Some(u64::from_be_bytes(tag.try_into().ok()?))
}

/// What one scan of the read buffer found.
#[derive(Default)]
struct Scan {
    received: u64,
    cancelled: bool,
    closed: bool,
    error: Option<String>,
}

/// Runs until `stop` turns true or the broker cancels the consumer, acks what it holds,
/// closes the connection and returns the end-to-end latency histogram.
pub async fn run(
    spec: ConsumerSpec,
    wire: Wire,
    counters: Arc<Counters>,
    mut recorder: Recorder,
    mut stop: watch::Receiver<bool>,
) -> (Histogram<u64>, Result<(), String>) {
    let who = format!("consumer {} (queue {})", spec.index, spec.queue);
    let multiple = spec.multi_ack_every > 1;
    let (mut reader, mut inbuf, mut writer) = wire.split();
    let mut unacked = 0u64;
    let mut last_tag = 0u64;
    let mut expect_body = false;
    let mut out = Vec::with_capacity(16 * 1024);

    let result: Result<bool, String> = async {
        loop {
            let mut scan = Scan::default();
            out.clear();
            let now = now_ns();
            scan_frames(&mut inbuf, |f| {
                if f.kind == FRAME_BODY {
                    if expect_body {
                        expect_body = false;
                        if let Some(ns) = body_latency_ns(f.payload, now) {
                            recorder.record(ns);
                        }
                    }
                    return Ok(());
                }
                match f.method_id() {
                    Some((60, 60)) => {
                        let tag = delivery_tag(f.payload)
                            .ok_or_else(|| "malformed basic.deliver".to_string())?;
                        scan.received += 1;
                        expect_body = true;
                        if !spec.auto_ack {
                            unacked += 1;
                            last_tag = tag;
                            if unacked >= spec.multi_ack_every {
                                unacked = 0;
                                encode_ack(&mut out, tag, multiple);
                            }
                        }
                    }
                    Some((60, 30)) => scan.cancelled = true,
                    Some((20, 40)) | Some((10, 50)) => {
                        scan.error =
                            Some(format!("closed by the broker: {}", close_text(f.payload)));
                    }
                    Some((10, 51)) => scan.closed = true,
                    _ => {}
                }
                Ok(())
            })
            .map_err(|e| format!("{who}: {e}"))?;
            Counters::add(&counters.received, scan.received);
            if !out.is_empty() {
                writer
                    .write_all(&out)
                    .await
                    .map_err(|e| format!("{who}: basic.ack failed: {e}"))?;
            }
            if let Some(e) = scan.error {
                return Err(format!("{who}: {e}"));
            }
            if scan.cancelled {
                eprintln!("warrenmq-perf: {who}: the broker cancelled the consumer");
                return Ok(false);
            }
            if scan.closed {
                return Ok(true);
            }
            tokio::select! {
                biased;
                changed = stop.changed() => {
                    if changed.is_err() || *stop.borrow() {
                        return Ok(false);
                    }
                }
                more = read_more(&mut reader, &mut inbuf) => {
                    if !more.map_err(|e| format!("{who}: {e}"))? {
                        return Err(format!("{who}: the broker closed the connection"));
                    }
                }
            }
        }
    }
    .await;

    if let Ok(false) = result {
        out.clear();
        if unacked > 0 {
            encode_ack(&mut out, last_tag, true);
        }
        encode_connection_close(&mut out);
        if writer.write_all(&out).await.is_ok() {
            // Wait for close-ok, discarding deliveries still arriving.
            let _ = tokio::time::timeout(DRAIN_TIMEOUT, async {
                loop {
                    let mut closed = false;
                    let _ = scan_frames(&mut inbuf, |f| {
                        closed |= f.method_id() == Some((10, 51));
                        Ok(())
                    });
                    if closed || !matches!(read_more(&mut reader, &mut inbuf).await, Ok(true)) {
                        return;
                    }
                }
            })
            .await;
        }
    }
    (recorder.into_total(), result.map(|_| ()))
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

    #[test]
    fn delivery_tag_after_the_consumer_tag() {
        let mut p = vec![0, 60, 0, 60, 3, b'a', b'b', b'c'];
        p.extend_from_slice(&77u64.to_be_bytes());
        p.push(0);
        assert_eq!(delivery_tag(&p), Some(77));
        assert_eq!(delivery_tag(&p[..10]), None);
    }
}
