//! Prometheus metrics, named and labelled as rabbitmq_prometheus 3.10 names them:
//! `/metrics` with the queue figures summed over the node's queues, and
//! `/metrics/per-object` with one series per queue (labels `vhost`, `queue`). The figures
//! come from the node's `metrics` admin command; the `prometheus` crate writes them in
//! the text exposition format (`# HELP`, `# TYPE`, then the samples).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderValue, Method, Response, StatusCode};
use prometheus::core::Collector;
use prometheus::{Encoder, Gauge, GaugeVec, IntCounter, IntCounterVec, Opts, Registry};
use serde_json::Value;

use super::overview::RABBITMQ_VERSION;
use crate::cluster::{AdminHandler, CommandRequest};

pub(super) async fn handle(
    State(admin): State<Arc<dyn AdminHandler>>,
    request: axum::extract::Request,
) -> Response<Body> {
    let per_object = match request.uri().path() {
        "/metrics" => false,
        "/metrics/per-object" => true,
        _ => return plain(StatusCode::NOT_FOUND, "not found".into()),
    };
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return plain(StatusCode::METHOD_NOT_ALLOWED, String::new());
    }
    let command = CommandRequest {
        command: "metrics".into(),
        args: Vec::new(),
        vhost: "/".into(),
        flags: Vec::new(),
    };
    let figures = match admin.command(command).await {
        Ok(o) if o.exit_code == 0 => serde_json::from_str::<Value>(&o.json).unwrap_or_default(),
        Ok(o) => return plain(StatusCode::SERVICE_UNAVAILABLE, o.error),
        Err(e) => return plain(StatusCode::SERVICE_UNAVAILABLE, e),
    };
    let cluster = admin.cluster_status().cluster_name;
    match render(&figures, &cluster, per_object) {
        Ok(text) => {
            let mut r = plain(StatusCode::OK, text);
            let format = prometheus::TextEncoder::new().format_type().to_owned();
            if let Ok(v) = HeaderValue::from_str(&format) {
                r.headers_mut().insert(header::CONTENT_TYPE, v);
            }
            r
        }
        Err(e) => plain(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

fn plain(status: StatusCode, text: String) -> Response<Body> {
    let mut r = Response::new(Body::from(text));
    *r.status_mut() = status;
    r
}

/// The metrics of one scrape, registered as they are made.
pub(super) struct Scrape(Registry);

impl Scrape {
    fn add(&self, c: impl Collector + 'static) -> prometheus::Result<()> {
        self.0.register(Box::new(c))
    }

    pub(super) fn gauge(&self, name: &str, help: &str, value: f64) -> prometheus::Result<()> {
        let g = Gauge::with_opts(Opts::new(name, help))?;
        g.set(value);
        self.add(g)
    }

    pub(super) fn counter(&self, name: &str, help: &str, value: u64) -> prometheus::Result<()> {
        let c = IntCounter::with_opts(Opts::new(name, help))?;
        c.inc_by(value);
        self.add(c)
    }

    /// A gauge with one series per row of label values.
    pub(super) fn gauges(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
        rows: &[(Vec<&str>, f64)],
    ) -> prometheus::Result<()> {
        let g = GaugeVec::new(Opts::new(name, help), labels)?;
        for (values, v) in rows {
            g.get_metric_with_label_values(values)?.set(*v);
        }
        self.add(g)
    }

    pub(super) fn counters(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
        rows: &[(Vec<&str>, u64)],
    ) -> prometheus::Result<()> {
        let c = IntCounterVec::new(Opts::new(name, help), labels)?;
        for (values, v) in rows {
            c.get_metric_with_label_values(values)?.inc_by(*v);
        }
        self.add(c)
    }
}

/// What a queue figure is: a gauge or a counter, and how the node's sum is made.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Gauge,
    Counter,
    /// A gauge whose node figure is the largest queue's (a latency).
    Max,
}

/// The node's figures as the text exposition format.
pub(super) fn render(m: &Value, cluster: &str, per_object: bool) -> prometheus::Result<String> {
    let s = Scrape(Registry::new());
    let n = |v: &Value| v.as_u64().unwrap_or(0);
    let count = |k: &str| n(&m["counts"][k]);
    let p = &m["process"];
    let queues = m["queues"].as_array().cloned().unwrap_or_default();
    let consumers: u64 = queues.iter().map(|q| n(&q["consumers"])).sum();
    for (name, help, v) in [
        (
            "rabbitmq_connections",
            "Connections currently open",
            n(&m["connections"]),
        ),
        (
            "rabbitmq_channels",
            "Channels currently open",
            n(&m["channels"]),
        ),
        (
            "rabbitmq_consumers",
            "Consumers currently connected",
            consumers,
        ),
        ("rabbitmq_queues", "Queues available", queues.len() as u64),
        (
            "rabbitmq_process_open_fds",
            "Open file descriptors",
            n(&p["fd_used"]),
        ),
        (
            "rabbitmq_process_max_fds",
            "Open file descriptors limit",
            n(&p["fd_total"]),
        ),
        (
            "rabbitmq_process_open_tcp_sockets",
            "Open TCP sockets",
            n(&p["sockets_used"]),
        ),
        (
            "rabbitmq_process_max_tcp_sockets",
            "Open TCP sockets limit",
            n(&p["sockets_total"]),
        ),
        (
            "rabbitmq_process_resident_memory_bytes",
            "Memory used in bytes",
            n(&p["mem_used"]),
        ),
        (
            "rabbitmq_resident_memory_limit_bytes",
            "Memory high watermark in bytes",
            n(&p["mem_limit"]),
        ),
    ] {
        s.gauge(name, help, v as f64)?;
    }
    let node = m["node"].as_str().unwrap_or_default();
    s.gauges(
        "rabbitmq_build_info",
        "RabbitMQ & Erlang/OTP version info",
        &["rabbitmq_version", "product_name", "product_version"],
        &[(
            vec![RABBITMQ_VERSION, "WarrenMQ", env!("CARGO_PKG_VERSION")],
            1.0,
        )],
    )?;
    s.gauges(
        "rabbitmq_identity_info",
        "RabbitMQ node & cluster identity info",
        &["rabbitmq_node", "rabbitmq_cluster"],
        &[(vec![node, cluster], 1.0)],
    )?;
    s.gauges(
        "rabbitmq_global_consumers",
        "Current number of consumers",
        &["protocol"],
        &[(vec!["amqp091"], consumers as f64)],
    )?;
    // The consumer-side figures are labelled by queue type, as RabbitMQ's: quorum queues
    // count theirs apart; the rest of the node's is its classic queues'.
    let quorum = |k: &str| n(&m["quorum_counts"][k]);
    // A figure computed from the counts of a node (or of its quorum queues).
    type Computed = Box<dyn Fn(&dyn Fn(&str) -> u64) -> u64>;
    type Figure<'a> = (&'a str, &'a str, bool, Computed);
    let one = |k: &'static str| -> Computed { Box::new(move |c| c(k)) };
    let globals: Vec<Figure> = vec![
        ("received", "Total number of messages received from publishers", false, one("publish")),
        ("routed", "Total number of messages routed to queues or streams", false,
            Box::new(|c| c("publish").saturating_sub(c("unroutable")))),
        ("unroutable_dropped", "Total number of messages published as non-mandatory into an exchange and dropped as unroutable", false,
            Box::new(|c| c("unroutable").saturating_sub(c("return_unroutable")))),
        ("unroutable_returned", "Total number of messages published as mandatory into an exchange and returned to the publisher as unroutable", false, one("return_unroutable")),
        ("confirmed", "Total number of messages confirmed to publishers", false, one("confirm")),
        ("delivered", "Total number of messages delivered to consumers", true,
            Box::new(|c| ["deliver", "deliver_no_ack", "get", "get_no_ack"].map(c).iter().sum())),
        ("delivered_consume_manual_ack", "Total number of messages delivered to consumers using basic.consume with manual acknowledgment", true, one("deliver")),
        ("delivered_consume_auto_ack", "Total number of messages delivered to consumers using basic.consume with automatic acknowledgment", true, one("deliver_no_ack")),
        ("delivered_get_manual_ack", "Total number of messages delivered to consumers using basic.get with manual acknowledgment", true, one("get")),
        ("delivered_get_auto_ack", "Total number of messages delivered to consumers using basic.get with automatic acknowledgment", true, one("get_no_ack")),
        ("get_empty", "Total number of times basic.get operations fetched no message", true, one("get_empty")),
        ("redelivered", "Total number of messages redelivered to consumers", true, one("redeliver")),
        ("acknowledged", "Total number of messages acknowledged by consumers", true, one("ack")),
    ];
    for (name, help, typed, value) in globals {
        let name = format!("rabbitmq_global_messages_{name}_total");
        if !typed {
            s.counters(
                &name,
                help,
                &["protocol"],
                &[(vec!["amqp091"], value(&count))],
            )?;
            continue;
        }
        let (all, quorum) = (value(&count), value(&quorum));
        let rows = [
            (
                vec!["amqp091", "rabbit_classic_queue"],
                all.saturating_sub(quorum),
            ),
            (vec!["amqp091", "rabbit_quorum_queue"], quorum),
            // WarrenMQ has no streams (`x-queue-type: stream` is refused).
            (vec!["amqp091", "rabbit_stream_queue"], 0),
        ];
        s.counters(&name, help, &["protocol", "queue_type"], &rows)?;
    }
    super::prometheus_links::render(&s, m, per_object)?;
    let raft = |q: &Value, k: &str| q["raft"][k].as_f64().unwrap_or(0.0);
    type QueueFigure<'a> = (&'a str, &'a str, Kind, Box<dyn Fn(&Value) -> Option<f64>>);
    let figures: Vec<QueueFigure> = vec![
        (
            "rabbitmq_queue_messages_ready",
            "Messages ready to be delivered to consumers",
            Kind::Gauge,
            Box::new(move |q| Some(n(&q["ready"]) as f64)),
        ),
        (
            "rabbitmq_queue_messages_unacked",
            "Messages delivered to consumers but not yet acknowledged",
            Kind::Gauge,
            Box::new(move |q| Some(n(&q["unacked"]) as f64)),
        ),
        (
            "rabbitmq_queue_messages",
            "Sum of ready and unacknowledged messages - total queue depth",
            Kind::Gauge,
            Box::new(move |q| Some((n(&q["ready"]) + n(&q["unacked"])) as f64)),
        ),
        (
            "rabbitmq_queue_consumers",
            "Consumers on a queue",
            Kind::Gauge,
            Box::new(move |q| Some(n(&q["consumers"]) as f64)),
        ),
        (
            "rabbitmq_queue_messages_published_total",
            "Total number of messages published to queues",
            Kind::Counter,
            Box::new(move |q| Some(n(&q["published"]) as f64)),
        ),
        (
            "rabbitmq_raft_term_total",
            "Current Raft term number",
            Kind::Counter,
            Box::new(move |q| q["raft"].is_object().then(|| raft(q, "term"))),
        ),
        (
            "rabbitmq_raft_log_commit_index",
            "Raft log commit index",
            Kind::Gauge,
            Box::new(move |q| q["raft"].is_object().then(|| raft(q, "commit_index"))),
        ),
        (
            "rabbitmq_raft_log_last_applied_index",
            "Raft log last applied index",
            Kind::Gauge,
            Box::new(move |q| q["raft"].is_object().then(|| raft(q, "last_applied"))),
        ),
        (
            "rabbitmq_raft_log_last_written_index",
            "Raft log last written index",
            Kind::Gauge,
            Box::new(move |q| q["raft"].is_object().then(|| raft(q, "last_written"))),
        ),
        (
            "rabbitmq_raft_entry_commit_latency_seconds",
            "Time taken for a log entry to be committed",
            Kind::Max,
            Box::new(move |q| q["raft"].is_object().then(|| raft(q, "commit_latency"))),
        ),
    ];
    for (name, help, kind, value) in figures {
        let values: Vec<(&Value, f64)> = queues
            .iter()
            .filter_map(|q| value(q).map(|v| (q, v)))
            .collect();
        if per_object {
            let rows: Vec<(Vec<&str>, f64)> = values
                .iter()
                .map(|(q, v)| {
                    (
                        vec![
                            q["vhost"].as_str().unwrap_or(""),
                            q["name"].as_str().unwrap_or(""),
                        ],
                        *v,
                    )
                })
                .collect();
            match kind {
                Kind::Counter => {
                    let rows: Vec<_> = rows.into_iter().map(|(l, v)| (l, v as u64)).collect();
                    s.counters(name, help, &["vhost", "queue"], &rows)?
                }
                _ => s.gauges(name, help, &["vhost", "queue"], &rows)?,
            }
            continue;
        }
        let vs = values.iter().map(|(_, v)| *v);
        match kind {
            // Folded from +0.0: an empty f64 sum is -0.0, which Prometheus prints as "-0".
            Kind::Counter => s.counter(name, help, vs.fold(0.0, |a, b| a + b) as u64)?,
            Kind::Gauge => s.gauge(name, help, vs.fold(0.0, |a, b| a + b))?,
            Kind::Max => s.gauge(name, help, vs.fold(0.0, f64::max))?,
        }
    }
    let mut out = Vec::new();
    prometheus::TextEncoder::new().encode(&s.0.gather(), &mut out)?;
    String::from_utf8(out).map_err(|e| prometheus::Error::Msg(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn figures() -> Value {
        json!({"node": "warren@t", "connections": 2, "channels": 3,
               "counts": {"publish": 10, "unroutable": 2, "return_unroutable": 1, "confirm": 9,
                          "deliver": 4, "get": 1, "ack": 5},
               "quorum_counts": {"deliver": 2},
               "process": {"fd_used": 30, "fd_total": 1024, "mem_used": 1000},
               "queues": [
                   {"vhost": "/", "name": "a", "ready": 3, "unacked": 1, "consumers": 1,
                    "published": 6, "raft": {"term": 2, "commit_index": 9, "commit_latency": 0.002}},
                   {"vhost": "v", "name": "b", "ready": 2, "unacked": 0, "consumers": 0,
                    "published": 2, "raft": null}]})
    }

    fn sample<'a>(text: &'a str, series: &str) -> Option<&'a str> {
        text.lines()
            .find_map(|l| l.strip_prefix(series).and_then(|r| r.strip_prefix(' ')))
    }

    #[test]
    fn node_metrics_sum_the_queues() {
        let text = render(&figures(), "c1", false).unwrap();
        assert!(text.contains("# HELP rabbitmq_queue_messages_ready Messages ready"));
        assert!(text.contains("# TYPE rabbitmq_global_messages_received_total counter"));
        assert_eq!(sample(&text, "rabbitmq_queue_messages_ready"), Some("5"));
        assert_eq!(sample(&text, "rabbitmq_queue_messages"), Some("6"));
        assert_eq!(sample(&text, "rabbitmq_queues"), Some("2"));
        assert_eq!(sample(&text, "rabbitmq_raft_term_total"), Some("2"));
        assert_eq!(
            sample(&text, "rabbitmq_raft_entry_commit_latency_seconds"),
            Some("0.002")
        );
        let g = |k: &str| {
            sample(
                &text,
                &format!("rabbitmq_global_messages_{k}_total{{protocol=\"amqp091\"}}"),
            )
        };
        assert_eq!(g("received"), Some("10"));
        assert_eq!(g("routed"), Some("8"));
        assert_eq!(g("unroutable_dropped"), Some("1"));
        assert_eq!(g("confirmed"), Some("9"));
        // Consumer-side figures by queue type: the quorum queues' share apart.
        let typed = |k: &str, t: &str| {
            sample(
                &text,
                &format!("rabbitmq_global_messages_{k}_total{{protocol=\"amqp091\",queue_type=\"rabbit_{t}_queue\"}}"),
            )
        };
        assert_eq!(typed("delivered", "classic"), Some("3"));
        assert_eq!(typed("delivered", "quorum"), Some("2"));
        assert_eq!(typed("delivered", "stream"), Some("0"));
        assert_eq!(typed("acknowledged", "classic"), Some("5"));
        assert_eq!(typed("acknowledged", "quorum"), Some("0"));
        assert!(text.contains(
            "rabbitmq_identity_info{rabbitmq_cluster=\"c1\",rabbitmq_node=\"warren@t\"} 1"
        ));
    }

    #[test]
    fn per_object_metrics_label_each_queue() {
        let text = render(&figures(), "c1", true).unwrap();
        assert_eq!(
            sample(
                &text,
                "rabbitmq_queue_messages_ready{queue=\"a\",vhost=\"/\"}"
            ),
            Some("3")
        );
        assert_eq!(
            sample(
                &text,
                "rabbitmq_queue_messages_published_total{queue=\"b\",vhost=\"v\"}"
            ),
            Some("2")
        );
        assert_eq!(
            sample(
                &text,
                "rabbitmq_raft_log_commit_index{queue=\"a\",vhost=\"/\"}"
            ),
            Some("9")
        );
        // A queue outside Raft has no Raft series.
        assert!(!text.contains("rabbitmq_raft_term_total{queue=\"b\""));
    }
}
