//! warrenmq-perf: a PerfTest-like AMQP 0-9-1 load generator for WarrenMQ (and RabbitMQ).
//!
//! Declares the queue(s), starts the consumers, then the producers, runs for `--time`
//! seconds printing progress lines to stderr, then prints a summary (or one JSON line
//! with `--json`). Exits 1 on connection or channel errors, 2 on bad options.

mod cli;
mod consumer;
mod producer;
mod report;
mod stats;
mod wire;

use amq_protocol::protocol::{basic, confirm, connection, queue, AMQPClass};
use amq_protocol::types::{AMQPValue, FieldTable, LongString};
use clap::Parser;
use cli::{redact, Args, Settings};
use hdrhistogram::Histogram;
use stats::{drain_intervals, new_histogram, Counters, Percentiles, Recorder};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;
use wire::Wire;

/// Connection attempts give up after this long.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long stopping tasks and closing connections may take in total.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(15);

fn main() -> ExitCode {
    let settings = match Args::parse().into_settings() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("warrenmq-perf: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("warrenmq-perf: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("warrenmq-perf: error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn connect(uri: &str, name: String) -> Result<Wire, String> {
    match tokio::time::timeout(CONNECT_TIMEOUT, Wire::connect(uri, &name)).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(format!("cannot connect to {}: {e}", redact(uri))),
        Err(_) => Err(format!(
            "cannot connect to {}: no AMQP handshake within {}s",
            redact(uri),
            CONNECT_TIMEOUT.as_secs()
        )),
    }
}

/// Declares queue k through `setups[k % setups.len()]` (one per `--declare-uri`).
async fn declare_queues(setups: &mut [Wire], s: &Settings) -> Result<(), String> {
    let mut arguments = FieldTable::default();
    if let Some(t) = s.queue_type {
        arguments.insert(
            "x-queue-type".into(),
            AMQPValue::LongString(LongString::from(t.as_str())),
        );
    }
    for (k, name) in s.queue_names.iter().enumerate() {
        let n = setups.len();
        let wire = &mut setups[k % n];
        let declare = queue::Declare {
            queue: name.as_str().into(),
            passive: false,
            durable: s.durable,
            exclusive: false,
            auto_delete: false,
            nowait: false,
            arguments: arguments.clone(),
        };
        wire.call(1, AMQPClass::Queue(queue::AMQPMethod::Declare(declare)))
            .await
            .map_err(|e| format!("cannot declare queue {name}: {e}"))?;
    }
    Ok(())
}

/// Deletes each queue through the connection that declared it.
async fn delete_queues(setups: &mut [Wire], s: &Settings) -> Result<(), String> {
    for (k, name) in s.queue_names.iter().enumerate() {
        let n = setups.len();
        let wire = &mut setups[k % n];
        let delete = queue::Delete {
            queue: name.as_str().into(),
            if_unused: false,
            if_empty: false,
            nowait: false,
        };
        wire.call(1, AMQPClass::Queue(queue::AMQPMethod::Delete(delete)))
            .await
            .map_err(|e| format!("cannot delete queue {name}: {e}"))?;
    }
    Ok(())
}

async fn close_connection(wire: &mut Wire) {
    let close = connection::Close {
        reply_code: 200,
        reply_text: "bye".into(),
        class_id: 0,
        method_id: 0,
    };
    let _ = tokio::time::timeout(
        Duration::from_secs(5),
        wire.call(
            0,
            AMQPClass::Connection(connection::AMQPMethod::Close(close)),
        ),
    )
    .await;
}

/// What a task hands back when it ends.
enum TaskEnd {
    Producer(Histogram<u64>, Result<(), String>),
    Consumer(Histogram<u64>, Result<(), String>),
}

async fn run(s: Settings) -> Result<(), String> {
    let counters = Arc::new(Counters::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let mut e2e_intervals: Vec<Arc<Mutex<Histogram<u64>>>> = Vec::new();
    let mut confirm_intervals: Vec<Arc<Mutex<Histogram<u64>>>> = Vec::new();

    // Setup connections, one per --declare-uri: declare (and at the end delete) the queues.
    let mut setups = Vec::with_capacity(s.declare_uris.len());
    for (k, uri) in s.declare_uris.iter().enumerate() {
        match connect(uri, format!("warrenmq-perf {} setup {k}", s.id)).await {
            Ok(wire) => setups.push(wire),
            Err(e) => {
                for wire in &mut setups {
                    close_connection(wire).await;
                }
                return Err(e);
            }
        }
    }
    let outcome = async {
        if !s.predeclared {
            declare_queues(&mut setups, &s).await?;
        }

        // Consumers first, so that nothing published is missed.
        for j in 0..s.consumers {
            let queue = s.queue_names[j % s.queue_names.len()].clone();
            let uri = &s.consumer_uris[j % s.consumer_uris.len()];
            let mut conn = connect(uri, format!("warrenmq-perf {} consumer {j}", s.id)).await?;
            if s.qos > 0 {
                let qos = basic::Qos {
                    prefetch_count: s.qos,
                    global: false,
                };
                conn.call(1, AMQPClass::Basic(basic::AMQPMethod::Qos(qos)))
                    .await
                    .map_err(|e| format!("consumer {j}: basic.qos failed: {e}"))?;
            }
            let consume = basic::Consume {
                queue: queue.as_str().into(),
                consumer_tag: format!("warrenmq-perf-{j}").into(),
                no_local: false,
                no_ack: s.auto_ack,
                exclusive: false,
                nowait: false,
                arguments: FieldTable::default(),
            };
            conn.call(1, AMQPClass::Basic(basic::AMQPMethod::Consume(consume)))
                .await
                .map_err(|e| format!("consumer {j}: cannot consume from queue {queue}: {e}"))?;
            let (recorder, interval) = Recorder::new();
            e2e_intervals.push(interval);
            let spec = consumer::ConsumerSpec {
                index: j,
                queue,
                auto_ack: s.auto_ack,
                multi_ack_every: s.multi_ack_every,
            };
            let fut = consumer::run(spec, conn, counters.clone(), recorder, stop_rx.clone());
            tasks.spawn(async move {
                let (h, r) = fut.await;
                TaskEnd::Consumer(h, r)
            });
        }

        // Producers: connect them all, then start them together.
        let mut ready = Vec::new();
        for i in 0..s.producers {
            let uri = &s.producer_uris[i % s.producer_uris.len()];
            let mut conn = connect(uri, format!("warrenmq-perf {} producer {i}", s.id)).await?;
            if s.confirm > 0 {
                let select = confirm::Select { nowait: false };
                conn.call(1, AMQPClass::Confirm(confirm::AMQPMethod::Select(select)))
                    .await
                    .map_err(|e| format!("producer {i}: confirm.select failed: {e}"))?;
            }
            ready.push((i, conn));
        }
        let start = Instant::now();
        for (i, conn) in ready {
            let (recorder, interval) = Recorder::new();
            confirm_intervals.push(interval);
            let spec = producer::ProducerSpec {
                index: i,
                queue: s.queue_names[i % s.queue_names.len()].clone(),
                size: s.size,
                confirm: s.confirm,
                rate: s.rate,
                persistent: s.persistent,
                mandatory: s.mandatory,
            };
            let fut = producer::run(
                spec,
                conn,
                counters.clone(),
                recorder,
                start,
                stop_rx.clone(),
            );
            tasks.spawn(async move {
                let (h, r) = fut.await;
                TaskEnd::Producer(h, r)
            });
        }
        Ok::<Instant, String>(start)
    }
    .await;

    let start = match outcome {
        Ok(start) => start,
        Err(e) => {
            let _ = stop_tx.send(true);
            let _ = tokio::time::timeout(SHUTDOWN_TIMEOUT, async {
                while tasks.join_next().await.is_some() {}
            })
            .await;
            for wire in &mut setups {
                close_connection(wire).await;
            }
            return Err(e);
        }
    };

    // Progress lines.
    let reporter = {
        let counters = counters.clone();
        let mut stop = stop_rx.clone();
        let id = s.id.clone();
        let period = Duration::from_secs_f64(s.interval);
        let confirms = s.confirm > 0;
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval_at(start + period, period);
            let mut last = counters.snapshot();
            let mut last_at = start;
            loop {
                tokio::select! {
                    _ = ticker.tick() => {}
                    _ = stop.changed() => return,
                }
                let now = Instant::now();
                let snap = counters.snapshot();
                let delta = stats::Snapshot {
                    sent: snap.sent - last.sent,
                    confirmed: snap.confirmed - last.confirmed,
                    nacked: snap.nacked - last.nacked,
                    returned: snap.returned - last.returned,
                    received: snap.received - last.received,
                };
                let e2e = Percentiles::of(&drain_intervals(&e2e_intervals));
                let confirm = Percentiles::of(&drain_intervals(&confirm_intervals));
                eprintln!(
                    "{}",
                    report::progress_line(
                        &id,
                        (now - start).as_secs_f64(),
                        delta,
                        (now - last_at).as_secs_f64(),
                        confirms,
                        e2e,
                        confirm,
                    )
                );
                last = snap;
                last_at = now;
            }
        })
    };

    // Run until the deadline, Ctrl-C, or a task failing.
    let mut errors: Vec<String> = Vec::new();
    let mut e2e_total = new_histogram();
    let mut confirm_total = new_histogram();
    let mut collect = |end: TaskEnd, errors: &mut Vec<String>| {
        let (h, result, total) = match end {
            TaskEnd::Producer(h, r) => (h, r, &mut confirm_total),
            TaskEnd::Consumer(h, r) => (h, r, &mut e2e_total),
        };
        let _ = total.add(&h);
        if let Err(e) = result {
            errors.push(e);
        }
    };
    let deadline = s.time.map(|t| start + Duration::from_secs_f64(t));
    let sleep = tokio::time::sleep_until(deadline.unwrap_or(start));
    tokio::pin!(sleep);
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            _ = &mut sleep, if deadline.is_some() => break,
            _ = &mut ctrl_c => {
                eprintln!("warrenmq-perf: interrupted, stopping");
                break;
            }
            joined = tasks.join_next() => match joined {
                None => break,
                Some(Ok(end)) => {
                    collect(end, &mut errors);
                    if !errors.is_empty() {
                        break;
                    }
                }
                Some(Err(e)) => {
                    errors.push(format!("a task panicked: {e}"));
                    break;
                }
            },
        }
    }
    let duration = start.elapsed();
    let counts = counters.snapshot();
    let _ = stop_tx.send(true);
    let _ = reporter.await;

    // Shutdown: let tasks finish (they close their channels), then close connections.
    let joined_all = tokio::time::timeout(SHUTDOWN_TIMEOUT, async {
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(end) => collect(end, &mut errors),
                Err(e) => errors.push(format!("a task panicked: {e}")),
            }
        }
    })
    .await;
    if joined_all.is_err() {
        errors.push(format!(
            "some producers/consumers did not stop within {}s",
            SHUTDOWN_TIMEOUT.as_secs()
        ));
        tasks.abort_all();
    }
    if s.delete_queues {
        if s.predeclared {
            eprintln!("warrenmq-perf: --predeclared queues are not deleted by --delete-queues");
        } else if let Err(e) = delete_queues(&mut setups, &s).await {
            errors.push(e);
        }
    }
    for wire in &mut setups {
        close_connection(wire).await;
    }

    let summary = report::Summary {
        settings: &s,
        duration_s: duration.as_secs_f64(),
        counts,
        e2e: Percentiles::of(&e2e_total),
        confirm: Percentiles::of(&confirm_total),
        errors: &errors,
        client_cpu_s: stats::process_cpu_seconds(),
    };
    if s.json {
        eprint!("{}", summary.human());
        println!("{}", summary.json());
    } else {
        print!("{}", summary.human());
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("\nwarrenmq-perf: error: "))
    }
}
