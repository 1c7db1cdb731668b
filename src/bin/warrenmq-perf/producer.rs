//! One producer: publishes timestamped bodies to its queue, keeping at most `--confirm`
//! messages unconfirmed, optionally rate limited.
//!
//! Publishes are one pre-encoded frame set patched with the send time and written in
//! batches; a reader task takes confirms (`basic.ack`/`basic.nack`, multiple or not),
//! records confirm latency and gives the window back.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use amq_protocol::protocol::{basic, AMQPClass};
use bytes::BytesMut;
use hdrhistogram::Histogram;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedReadHalf;
use tokio::sync::{watch, Semaphore};
use tokio::time::Instant;
use warrenmq::amqp::{encode_content, encode_method};

use crate::stats::{now_ns, Counters, Recorder};
use crate::wire::{close_text, encode_connection_close, read_more, scan_frames, Wire};

/// Most messages written in one batch.
const BATCH: usize = 256;

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

/// One publish as bytes (method, header and body frames), and where its timestamp goes.
struct Template {
    bytes: Vec<u8>,
    stamp_at: usize,
}

impl Template {
    fn new(spec: &ProducerSpec, frame_max: u32) -> Template {
        let mut bytes = Vec::new();
        encode_method(
            &mut bytes,
            1,
            &AMQPClass::Basic(basic::AMQPMethod::Publish(basic::Publish {
                exchange: "".into(),
                routing_key: spec.queue.as_str().into(),
                mandatory: spec.mandatory,
                immediate: false,
            })),
        );
        // Property flags: delivery-mode (bit 12) only, when persistent.
        let properties: &[u8] = if spec.persistent {
            &[0x10, 0x00, 2]
        } else {
            &[0x00, 0x00]
        };
        let body = vec![0u8; spec.size];
        encode_content(&mut bytes, 1, properties, &body, frame_max);
        // The first body frame starts right after the header frame; skip its 7-byte header.
        let stamp_at = bytes.len() - frame_bytes(spec.size, frame_max) + 7;
        Template { bytes, stamp_at }
    }

    fn append(&self, out: &mut Vec<u8>, stamp: u64) {
        let at = out.len() + self.stamp_at;
        out.extend_from_slice(&self.bytes);
        out[at..at + 8].copy_from_slice(&stamp.to_be_bytes());
    }
}

/// Bytes taken by the body frames of a `size`-byte body.
fn frame_bytes(size: usize, frame_max: u32) -> usize {
    let chunk = frame_max as usize - 8;
    let frames = size.div_ceil(chunk);
    size + frames * 8
}

/// Send times of unconfirmed publishes, by publish sequence number.
type Pending = Arc<Mutex<VecDeque<(u64, u64)>>>;

/// Runs until `stop` turns true, then waits (bounded) for outstanding confirms and closes
/// the connection. Returns the confirm latency histogram (empty without confirms).
pub async fn run(
    spec: ProducerSpec,
    wire: Wire,
    counters: Arc<Counters>,
    recorder: Recorder,
    start: Instant,
    mut stop: watch::Receiver<bool>,
) -> (Histogram<u64>, Result<(), String>) {
    let who = format!("producer {} (queue {})", spec.index, spec.queue);
    let template = Template::new(&spec, wire.frame_max);
    let confirms = spec.confirm > 0;
    let window = Arc::new(Semaphore::new(if confirms { spec.confirm } else { 0 }));
    let pending: Pending = Arc::default();
    let (reader, inbuf, mut writer) = wire.split();
    let mut confirm_reader = tokio::spawn(read_confirms(
        reader,
        inbuf,
        pending.clone(),
        window.clone(),
        counters.clone(),
        recorder,
    ));
    let step = (spec.rate > 0.0).then(|| Duration::from_secs_f64(1.0 / spec.rate));
    let mut next_due = start;
    let mut seq = 0u64;
    let mut out = Vec::with_capacity(BATCH * template.bytes.len());

    let result: Result<(), String> = async {
        loop {
            if *stop.borrow() {
                return Ok(());
            }
            let mut batch = if step.is_some() { 1 } else { BATCH };
            if let Some(step) = step {
                tokio::select! {
                    _ = tokio::time::sleep_until(next_due) => {}
                    _ = stop.changed() => continue,
                }
                next_due += step;
            }
            if confirms {
                let permit = tokio::select! {
                    p = window.acquire() => p.map_err(|_| format!("{who}: the confirm reader ended"))?,
                    _ = stop.changed() => continue,
                    end = &mut confirm_reader => {
                        return Err(reader_end(&who, end).err().unwrap_or_else(|| format!("{who}: the broker closed the connection")));
                    }
                };
                permit.forget();
                let more = window.available_permits().min(batch - 1);
                if more > 0 {
                    if let Ok(p) = window.try_acquire_many(more as u32) {
                        p.forget();
                    }
                }
                batch = 1 + more;
            }
            out.clear();
            let t = now_ns();
            {
                let mut pending = pending.lock().expect("pending lock");
                for _ in 0..batch {
                    seq += 1;
                    template.append(&mut out, t);
                    if confirms {
                        pending.push_back((seq, t));
                    }
                }
            }
            writer
                .write_all(&out)
                .await
                .map_err(|e| format!("{who}: publish failed: {e}"))?;
            Counters::add(&counters.sent, batch as u64);
        }
    }
    .await;

    if result.is_ok() && confirms {
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        while !pending.lock().expect("pending lock").is_empty()
            && Instant::now() < deadline
            && !confirm_reader.is_finished()
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    out.clear();
    encode_connection_close(&mut out);
    let _ = writer.write_all(&out).await;
    let (histogram, end) = match tokio::time::timeout(DRAIN_TIMEOUT, &mut confirm_reader).await {
        Ok(Ok((h, end))) => (h, end),
        Ok(Err(e)) => (crate::stats::new_histogram(), Err(e.to_string())),
        Err(_) => {
            confirm_reader.abort();
            (crate::stats::new_histogram(), Ok(()))
        }
    };
    let result = result.and(end.map_err(|e| format!("{who}: {e}")));
    (histogram, result)
}

fn reader_end(
    who: &str,
    end: Result<(Histogram<u64>, Result<(), String>), tokio::task::JoinError>,
) -> Result<(), String> {
    match end {
        Ok((_, Ok(()))) => Ok(()),
        Ok((_, Err(e))) => Err(format!("{who}: {e}")),
        Err(e) => Err(format!("{who}: confirm reader: {e}")),
    }
}

/// Reads confirms until the connection closes; returns the confirm latency histogram.
async fn read_confirms(
    mut reader: OwnedReadHalf,
    mut inbuf: BytesMut,
    pending: Pending,
    window: Arc<Semaphore>,
    counters: Arc<Counters>,
    mut recorder: Recorder,
) -> (Histogram<u64>, Result<(), String>) {
    let result = async {
        loop {
            let mut closed = false;
            let mut error = None;
            scan_frames(&mut inbuf, |f| {
                let Some(id) = f.method_id() else {
                    return Ok(());
                };
                match id {
                    // basic.ack / basic.nack: delivery-tag, then the multiple bit.
                    (60, 80) | (60, 120) if f.payload.len() >= 13 => {
                        let p = f.payload;
                        let tag = u64::from_be_bytes(p[4..12].try_into().expect("8 bytes"));
                        let multiple = p[12] & 1 == 1;
                        let now = now_ns();
                        let mut done = 0u64;
                        let mut pending = pending.lock().expect("pending lock");
                        if multiple {
                            while pending.front().is_some_and(|&(s, _)| s <= tag) {
                                let (_, t) = pending.pop_front().expect("front");
                                recorder.record(now.saturating_sub(t));
                                done += 1;
                            }
                        } else if let Some(i) = pending.iter().position(|&(s, _)| s == tag) {
                            let (_, t) = pending.remove(i).expect("position");
                            recorder.record(now.saturating_sub(t));
                            done = 1;
                        }
                        drop(pending);
                        let counter = if id.1 == 80 {
                            &counters.confirmed
                        } else {
                            &counters.nacked
                        };
                        Counters::add(counter, done);
                        window.add_permits(done as usize);
                    }
                    (60, 50) => Counters::add(&counters.returned, 1),
                    (20, 40) | (10, 50) => {
                        error = Some(format!("closed by the broker: {}", close_text(f.payload)));
                    }
                    (10, 51) => closed = true,
                    _ => {}
                }
                Ok(())
            })?;
            if let Some(e) = error {
                return Err(e);
            }
            if closed || !read_more(&mut reader, &mut inbuf).await? {
                return Ok(());
            }
        }
    }
    .await;
    window.close();
    (recorder.into_total(), result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use warrenmq::amqp::{decode_frame, Frame};

    #[test]
    fn template_stamps_the_first_body_bytes() {
        for (size, frame_max) in [(16, 131_072), (10_000, 4096)] {
            let spec = ProducerSpec {
                index: 0,
                queue: "q".into(),
                size,
                confirm: 0,
                rate: 0.0,
                persistent: true,
                mandatory: false,
            };
            let t = Template::new(&spec, frame_max);
            let mut out = vec![9, 9];
            t.append(&mut out, 0x0102_0304_0506_0708);
            let mut buf = BytesMut::from(&out[2..]);
            assert!(matches!(
                decode_frame(&mut buf, frame_max).unwrap(),
                Some(Frame::Method { .. })
            ));
            let Some(Frame::Header { body_size, .. }) = decode_frame(&mut buf, frame_max).unwrap()
            else {
                panic!("header expected")
            };
            assert_eq!(body_size, size as u64);
            let Some(Frame::Body { payload, .. }) = decode_frame(&mut buf, frame_max).unwrap()
            else {
                panic!("body expected")
            };
            assert_eq!(&payload[..8], &[1, 2, 3, 4, 5, 6, 7, 8]);
        }
    }
}
