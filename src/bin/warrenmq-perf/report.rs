//! Progress lines, the human-readable summary and the one-line JSON summary.

use crate::cli::{redact, Settings};
use crate::stats::{Percentiles, Snapshot};
use std::fmt::Write as _;

/// One progress line: rates over the last interval and that interval's latencies.
pub fn progress_line(
    id: &str,
    elapsed_s: f64,
    delta: Snapshot,
    interval_s: f64,
    confirms: bool,
    e2e: Option<Percentiles>,
    confirm: Option<Percentiles>,
) -> String {
    let rate = |n: u64| n as f64 / interval_s;
    let mut line = format!(
        "id: {id}, time {elapsed_s:.1} s, sent: {:.0} msg/s",
        rate(delta.sent)
    );
    if confirms {
        let _ = write!(
            line,
            ", confirmed: {:.0} msg/s, nacked: {:.0} msg/s",
            rate(delta.confirmed),
            rate(delta.nacked)
        );
    }
    if delta.returned > 0 {
        let _ = write!(line, ", returned: {:.0} msg/s", rate(delta.returned));
    }
    let _ = write!(line, ", received: {:.0} msg/s", rate(delta.received));
    if let Some(p) = e2e {
        let _ = write!(
            line,
            ", latency p50/p99/max: {:.0}/{:.0}/{:.0} µs",
            p.p50, p.p99, p.max
        );
    }
    if let Some(p) = confirm {
        let _ = write!(
            line,
            ", confirm latency p50/p99/max: {:.0}/{:.0}/{:.0} µs",
            p.p50, p.p99, p.max
        );
    }
    line
}

/// Everything the summary reports.
pub struct Summary<'a> {
    pub settings: &'a Settings,
    pub duration_s: f64,
    pub counts: Snapshot,
    pub e2e: Option<Percentiles>,
    pub confirm: Option<Percentiles>,
    pub errors: &'a [String],
    /// CPU seconds this load tool used (all of its threads), when known.
    pub client_cpu_s: Option<f64>,
}

impl Summary<'_> {
    fn rate(&self, n: u64) -> f64 {
        if self.duration_s > 0.0 {
            n as f64 / self.duration_s
        } else {
            0.0
        }
    }

    fn confirms(&self) -> bool {
        self.settings.confirm > 0
    }

    /// msg/s of the producers: confirmed msg/s when confirms are on, else sent msg/s.
    pub fn producer_rate(&self) -> f64 {
        if self.confirms() {
            self.rate(self.counts.confirmed)
        } else {
            self.rate(self.counts.sent)
        }
    }

    pub fn consumer_rate(&self) -> f64 {
        self.rate(self.counts.received)
    }

    pub fn human(&self) -> String {
        let s = self.settings;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "id: {}, {} producer(s), {} consumer(s), {} queue(s), {} B bodies, {:.1} s",
            s.id,
            s.producers,
            s.consumers,
            s.queue_names.len(),
            s.size,
            self.duration_s
        );
        let _ = writeln!(
            out,
            "sending rate avg: {:.0} msg/s ({} sent)",
            self.rate(self.counts.sent),
            self.counts.sent
        );
        if self.confirms() {
            let _ = writeln!(
                out,
                "confirmed rate avg: {:.0} msg/s ({} confirmed, {} nacked)",
                self.rate(self.counts.confirmed),
                self.counts.confirmed,
                self.counts.nacked
            );
        }
        if self.counts.returned > 0 {
            let _ = writeln!(out, "returned (unroutable): {}", self.counts.returned);
        }
        let _ = writeln!(
            out,
            "receiving rate avg: {:.0} msg/s ({} received)",
            self.consumer_rate(),
            self.counts.received
        );
        let line = |name: &str, p: Option<Percentiles>| {
            match p {
            Some(p) => format!(
                "{name} p50/p95/p99/p99.9/max: {:.0}/{:.0}/{:.0}/{:.0}/{:.0} µs (mean {:.0} µs, {} samples)",
                p.p50, p.p95, p.p99, p.p999, p.max, p.mean, p.count
            ),
            None => format!("{name}: no samples"),
        }
        };
        if let Some(cpu) = self.client_cpu_s {
            let _ = writeln!(out, "load tool CPU: {cpu:.2} s");
        }
        if s.consumers > 0 {
            let _ = writeln!(out, "{}", line("end-to-end latency", self.e2e));
        }
        if self.confirms() {
            let _ = writeln!(out, "{}", line("confirm latency", self.confirm));
        }
        out
    }

    /// One JSON object, flat so that shell scripts can pick fields with grep/sed.
    pub fn json(&self) -> String {
        let s = self.settings;
        let mut o = JsonObject::default();
        o.str("id", &s.id);
        o.num("duration_s", self.duration_s);
        o.int("producers", s.producers as u64);
        o.int("consumers", s.consumers as u64);
        o.int("queues", s.queue_names.len() as u64);
        o.int("size", s.size as u64);
        o.int("confirm", s.confirm as u64);
        o.bool("persistent", s.persistent);
        o.bool("auto_ack", s.auto_ack);
        o.int("multi_ack_every", s.multi_ack_every);
        o.int("qos", u64::from(s.qos));
        o.num("rate_limit", s.rate);
        o.int("sent", self.counts.sent);
        o.int("confirmed", self.counts.confirmed);
        o.int("nacked", self.counts.nacked);
        o.int("returned", self.counts.returned);
        o.int("received", self.counts.received);
        o.num("sent_rate", self.rate(self.counts.sent));
        o.num("confirmed_rate", self.rate(self.counts.confirmed));
        o.num("producer_rate", self.producer_rate());
        o.num("consumer_rate", self.consumer_rate());
        o.percentiles("latency", self.e2e);
        o.percentiles("confirm_latency", self.confirm);
        match self.client_cpu_s {
            Some(cpu) => o.num("client_cpu_s", cpu),
            None => {
                o.key("client_cpu_s");
                o.body.push_str("null");
            }
        }
        let redacted = |uris: &[String]| uris.iter().map(|u| redact(u)).collect::<Vec<_>>();
        o.strings("declare_uris", &redacted(&s.declare_uris));
        o.strings("producer_uris", &redacted(&s.producer_uris));
        o.strings("consumer_uris", &redacted(&s.consumer_uris));
        o.strings("errors", self.errors);
        o.finish()
    }
}

/// A minimal JSON object writer (no serde_json dependency).
#[derive(Default)]
struct JsonObject {
    body: String,
}

impl JsonObject {
    fn key(&mut self, k: &str) {
        if !self.body.is_empty() {
            self.body.push(',');
        }
        push_json_string(&mut self.body, k);
        self.body.push(':');
    }

    fn str(&mut self, k: &str, v: &str) {
        self.key(k);
        push_json_string(&mut self.body, v);
    }

    fn int(&mut self, k: &str, v: u64) {
        self.key(k);
        let _ = write!(self.body, "{v}");
    }

    fn num(&mut self, k: &str, v: f64) {
        self.key(k);
        if v.is_finite() {
            let _ = write!(self.body, "{}", (v * 1000.0).round() / 1000.0);
        } else {
            self.body.push_str("null");
        }
    }

    fn bool(&mut self, k: &str, v: bool) {
        self.key(k);
        self.body.push_str(if v { "true" } else { "false" });
    }

    fn percentiles(&mut self, prefix: &str, p: Option<Percentiles>) {
        self.int(&format!("{prefix}_count"), p.map_or(0, |p| p.count));
        let names = ["min", "mean", "p50", "p95", "p99", "p999", "max"];
        let values = p.map(|p| [p.min, p.mean, p.p50, p.p95, p.p99, p.p999, p.max]);
        for (i, name) in names.iter().enumerate() {
            let key = format!("{prefix}_{name}_us");
            match values {
                Some(v) => self.num(&key, v[i]),
                None => {
                    self.key(&key);
                    self.body.push_str("null");
                }
            }
        }
    }

    fn strings(&mut self, k: &str, v: &[String]) {
        self.key(k);
        self.body.push('[');
        for (i, s) in v.iter().enumerate() {
            if i > 0 {
                self.body.push(',');
            }
            push_json_string(&mut self.body, s);
        }
        self.body.push(']');
    }

    fn finish(self) -> String {
        format!("{{{}}}", self.body)
    }
}

fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Args;
    use clap::Parser;

    #[test]
    fn json_is_flat_and_escaped() {
        let settings = Args::parse_from(["warrenmq-perf", "--id", "a\"b", "-c", "10"])
            .into_settings()
            .unwrap();
        let counts = Snapshot {
            sent: 100,
            confirmed: 90,
            received: 80,
            ..Snapshot::default()
        };
        let errors = vec!["boom\n".to_string()];
        let summary = Summary {
            settings: &settings,
            duration_s: 10.0,
            counts,
            e2e: None,
            confirm: None,
            errors: &errors,
            client_cpu_s: Some(1.5),
        };
        let json = summary.json();
        assert!(json.starts_with("{\"id\":\"a\\\"b\","), "{json}");
        assert!(json.contains("\"producer_rate\":9,"), "{json}");
        assert!(json.contains("\"consumer_rate\":8,"), "{json}");
        assert!(json.contains("\"latency_p99_us\":null"), "{json}");
        assert!(json.contains("\"client_cpu_s\":1.5,"), "{json}");
        assert!(json.contains("\"errors\":[\"boom\\n\"]"), "{json}");
        assert!(
            json.contains(&format!(
                "\"producer_uris\":[\"{}\"]",
                redact(crate::cli::DEFAULT_URI)
            )),
            "{json}"
        );
        assert!(!json.contains('\n'));
    }
}
