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

use clap::Parser;
use cli::{redact, Args, Settings};
use hdrhistogram::Histogram;
use lapin::options::{
    BasicConsumeOptions, BasicQosOptions, ConfirmSelectOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{Channel, Connection, ConnectionProperties};
use stats::{drain_intervals, new_histogram, Counters, Percentiles, Recorder};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

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

async fn connect(uri: &str, name: String) -> Result<Connection, String> {
    let properties = ConnectionProperties::default().with_connection_name(name.into());
    match tokio::time::timeout(CONNECT_TIMEOUT, Connection::connect(uri, properties)).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(format!("cannot connect to {}: {e}", redact(uri))),
        Err(_) => Err(format!(
            "cannot connect to {}: no AMQP handshake within {}s",
            redact(uri),
            CONNECT_TIMEOUT.as_secs()
        )),
    }
}

async fn open_channel(conn: &Connection, uri: &str) -> Result<Channel, String> {
    conn.create_channel()
        .await
        .map_err(|e| format!("cannot open a channel on {}: {e}", redact(uri)))
}

async fn declare_queues(channel: &Channel, s: &Settings) -> Result<(), String> {
    let mut arguments = FieldTable::default();
    if let Some(t) = s.queue_type {
        arguments.insert(
            "x-queue-type".into(),
            AMQPValue::LongString(LongString::from(t.as_str())),
        );
    }
    let options = QueueDeclareOptions {
        durable: s.durable,
        exclusive: s.exclusive,
        ..QueueDeclareOptions::default()
    };
    for name in &s.queue_names {
        channel
            .queue_declare(name.as_str().into(), options, arguments.clone())
            .await
            .map_err(|e| format!("cannot declare queue {name}: {e}"))?;
    }
    Ok(())
}

/// What a task hands back when it ends.
enum TaskEnd {
    Producer(Histogram<u64>, Result<(), String>),
    Consumer(Histogram<u64>, Result<(), String>),
}

async fn close_connection(conn: &Connection) {
    if conn.status().connected() {
        let _ = tokio::time::timeout(Duration::from_secs(5), conn.close(200, "bye".into())).await;
    }
}

async fn run(s: Settings) -> Result<(), String> {
    let counters = Arc::new(Counters::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let mut connections: Vec<Connection> = Vec::new();
    let mut e2e_intervals: Vec<Arc<Mutex<Histogram<u64>>>> = Vec::new();
    let mut confirm_intervals: Vec<Arc<Mutex<Histogram<u64>>>> = Vec::new();

    // Setup connection: declares (and at the end deletes) the queues; with --exclusive the
    // consumers use it too, since only the declaring connection may consume.
    let setup_uri = s.uris[0].clone();
    let setup_conn = connect(&setup_uri, format!("warrenmq-perf {} setup", s.id)).await?;
    let setup_channel = open_channel(&setup_conn, &setup_uri).await?;
    let outcome = async {
        if !s.predeclared {
            declare_queues(&setup_channel, &s).await?;
        }

        // Consumers first, so that nothing published is missed.
        for j in 0..s.consumers {
            let queue = s.queue_names[j % s.queue_names.len()].clone();
            let uri = if s.exclusive {
                setup_uri.clone()
            } else {
                s.uris[j % s.uris.len()].clone()
            };
            let conn = if s.exclusive {
                &setup_conn
            } else {
                let c = connect(&uri, format!("warrenmq-perf {} consumer {j}", s.id)).await?;
                connections.push(c);
                connections.last().expect("just pushed")
            };
            let channel = open_channel(conn, &uri).await?;
            if s.qos > 0 {
                channel
                    .basic_qos(s.qos, BasicQosOptions::default())
                    .await
                    .map_err(|e| format!("consumer {j}: basic.qos failed: {e}"))?;
            }
            let consumer = channel
                .basic_consume(
                    queue.as_str().into(),
                    format!("warrenmq-perf-{j}").into(),
                    BasicConsumeOptions {
                        no_ack: s.auto_ack,
                        ..BasicConsumeOptions::default()
                    },
                    FieldTable::default(),
                )
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
            let fut = consumer::run(
                spec,
                channel,
                consumer,
                counters.clone(),
                recorder,
                stop_rx.clone(),
            );
            tasks.spawn(async move {
                let (h, r) = fut.await;
                TaskEnd::Consumer(h, r)
            });
        }

        // Producers: connect them all, then start them together.
        let mut ready = Vec::new();
        for i in 0..s.producers {
            let uri = &s.uris[i % s.uris.len()];
            let conn = connect(uri, format!("warrenmq-perf {} producer {i}", s.id)).await?;
            connections.push(conn);
            let channel = open_channel(connections.last().expect("just pushed"), uri).await?;
            if s.confirm > 0 {
                channel
                    .confirm_select(ConfirmSelectOptions::default())
                    .await
                    .map_err(|e| format!("producer {i}: confirm.select failed: {e}"))?;
            }
            ready.push((i, channel));
        }
        let start = Instant::now();
        for (i, channel) in ready {
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
                channel,
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
            for conn in &connections {
                close_connection(conn).await;
            }
            close_connection(&setup_conn).await;
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
    for conn in &connections {
        close_connection(conn).await;
    }
    if s.delete_queues {
        if s.predeclared {
            eprintln!("warrenmq-perf: --predeclared queues are not deleted by --delete-queues");
        } else if setup_channel.status().connected() {
            for name in &s.queue_names {
                if let Err(e) = setup_channel
                    .queue_delete(name.as_str().into(), QueueDeleteOptions::default())
                    .await
                {
                    errors.push(format!("cannot delete queue {name}: {e}"));
                    break;
                }
            }
        } else {
            errors.push("cannot delete the queues: the setup channel is closed".into());
        }
    }
    if setup_channel.status().connected() {
        let _ = tokio::time::timeout(
            Duration::from_secs(5),
            setup_channel.close(200, "bye".into()),
        )
        .await;
    }
    close_connection(&setup_conn).await;

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
