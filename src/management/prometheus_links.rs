//! The Prometheus metrics of client connections and channels, as rabbitmq_prometheus
//! 3.10 names them: how many were opened and closed, and each open one's figures
//! (`rabbitmq_channel_*`, `rabbitmq_connection_*`), summed over the node on `/metrics`,
//! one series per channel or connection on `/metrics/per-object` (labelled `channel`
//! with its pid, for connections too, as RabbitMQ labels them).
//!
//! RabbitMQ splits a channel's publish counters by exchange and its delivery counters by
//! queue; WarrenMQ counts them per channel only, so its per-object series carry the
//! `channel` label alone.

use serde_json::Value;

use super::prometheus::Scrape;

/// A figure of a channel or connection row: its name, help, whether it is a counter,
/// and the key of its value in the row's `counts` (or in the row itself).
type Figure = (&'static str, &'static str, bool, &'static str);

const CHANNEL_FIGURES: &[Figure] = &[
    ("rabbitmq_channel_consumers", "Consumers on a channel", false, "consumers"),
    ("rabbitmq_channel_messages_unacked", "Delivered but not yet acknowledged messages", false, "unacked"),
    ("rabbitmq_channel_messages_unconfirmed", "Published but not yet confirmed messages", false, "unconfirmed"),
    ("rabbitmq_channel_messages_uncommitted", "Messages received in a transaction but not yet committed", false, "uncommitted"),
    ("rabbitmq_channel_acks_uncommitted", "Message acknowledgements in a transaction not yet committed", false, "acks_uncommitted"),
    ("rabbitmq_channel_prefetch", "Total limit of unacknowledged messages for all consumers on a channel", false, "prefetch"),
    ("rabbitmq_channel_messages_published_total", "Total number of messages published into an exchange on a channel", true, "publish"),
    ("rabbitmq_channel_messages_confirmed_total", "Total number of messages published into an exchange and confirmed on the channel", true, "confirm"),
    ("rabbitmq_channel_messages_unroutable_returned_total", "Total number of messages published as mandatory into an exchange and returned to the publisher as unroutable", true, "return_unroutable"),
    ("rabbitmq_channel_messages_unroutable_dropped_total", "Total number of messages published as non-mandatory into an exchange and dropped as unroutable", true, "drop_unroutable"),
    ("rabbitmq_channel_get_ack_total", "Total number of messages fetched with basic.get in manual acknowledgement mode", true, "get"),
    ("rabbitmq_channel_get_total", "Total number of messages fetched with basic.get in automatic acknowledgement mode", true, "get_no_ack"),
    ("rabbitmq_channel_messages_delivered_ack_total", "Total number of messages delivered to consumers in manual acknowledgement mode", true, "deliver"),
    ("rabbitmq_channel_messages_delivered_total", "Total number of messages delivered to consumers in automatic acknowledgement mode", true, "deliver_no_ack"),
    ("rabbitmq_channel_messages_redelivered_total", "Total number of messages redelivered to consumers", true, "redeliver"),
    ("rabbitmq_channel_messages_acked_total", "Total number of messages acknowledged by consumers", true, "ack"),
    ("rabbitmq_channel_get_empty_total", "Total number of times basic.get operations fetched no message", true, "get_empty"),
];

const CONNECTION_FIGURES: &[Figure] = &[
    (
        "rabbitmq_connection_incoming_bytes_total",
        "Total number of bytes received on a connection",
        true,
        "recv_oct",
    ),
    (
        "rabbitmq_connection_outgoing_bytes_total",
        "Total number of bytes sent on a connection",
        true,
        "send_oct",
    ),
    (
        "rabbitmq_connection_incoming_packets_total",
        "Total number of packets received on a connection",
        true,
        "recv_cnt",
    ),
    (
        "rabbitmq_connection_outgoing_packets_total",
        "Total number of packets sent on a connection",
        true,
        "send_cnt",
    ),
    // Output is written before more input is read: nothing waits to be sent.
    (
        "rabbitmq_connection_pending_packets",
        "Number of packets waiting to be sent on a connection",
        false,
        "send_pend",
    ),
    (
        "rabbitmq_connection_channels",
        "Channels on a connection",
        false,
        "channels",
    ),
];

/// A row's value of `key`: from its `counts`, or the row itself; `drop_unroutable` is
/// what `return_unroutable` leaves of `unroutable`.
fn value(row: &Value, key: &str) -> u64 {
    let n = |v: &Value| v.as_u64().unwrap_or(0);
    let counts = &row["counts"];
    match key {
        "drop_unroutable" => {
            n(&counts["unroutable"]).saturating_sub(n(&counts["return_unroutable"]))
        }
        _ if counts.get(key).is_some() => n(&counts[key]),
        _ => n(&row[key]),
    }
}

fn rows<'a>(m: &'a Value, kind: &str) -> &'a [Value] {
    m["links"][kind].as_array().map_or(&[], Vec::as_slice)
}

/// Add the connection and channel metrics of the node's figures `m` to `s`.
pub(super) fn render(s: &Scrape, m: &Value, per_object: bool) -> prometheus::Result<()> {
    let churn = &m["churn"];
    let n = |k: &str| churn[k].as_u64().unwrap_or(0);
    s.counter(
        "rabbitmq_connections_opened_total",
        "Total number of connections opened",
        n("connections_opened"),
    )?;
    s.counter(
        "rabbitmq_connections_closed_total",
        "Total number of connections closed or terminated",
        n("connections_closed"),
    )?;
    s.counter(
        "rabbitmq_channels_opened_total",
        "Total number of channels opened",
        n("channels_opened"),
    )?;
    s.counter(
        "rabbitmq_channels_closed_total",
        "Total number of channels closed",
        n("channels_closed"),
    )?;
    for (kind, figures) in [
        ("channels", CHANNEL_FIGURES),
        ("connections", CONNECTION_FIGURES),
    ] {
        let rows = rows(m, kind);
        for &(name, help, counter, key) in figures {
            if !per_object {
                let total: u64 = rows.iter().map(|r| value(r, key)).sum();
                match counter {
                    true => s.counter(name, help, total)?,
                    false => s.gauge(name, help, total as f64)?,
                }
                continue;
            }
            let series: Vec<(Vec<&str>, u64)> = rows
                .iter()
                .map(|r| (vec![r["pid"].as_str().unwrap_or("")], value(r, key)))
                .collect();
            match counter {
                true => s.counters(name, help, &["channel"], &series)?,
                false => {
                    let series: Vec<_> = series.into_iter().map(|(l, v)| (l, v as f64)).collect();
                    s.gauges(name, help, &["channel"], &series)?
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::prometheus::render as render_all;
    use serde_json::json;

    fn figures() -> serde_json::Value {
        json!({"node": "warren@t", "connections": 1, "channels": 2,
               "counts": {"publish": 3}, "quorum_counts": {}, "process": {}, "queues": [],
               "churn": {"connections_opened": 4, "connections_closed": 3,
                         "channels_opened": 7, "channels_closed": 5},
               "links": {
                   "connections": [{"pid": "<warren@t.1.1.0>", "channels": 2,
                                    "counts": {"recv_oct": 100, "send_oct": 40, "recv_cnt": 3}}],
                   "channels": [
                       {"pid": "<warren@t.1.1.1>", "consumers": 1, "unacked": 2, "prefetch": 10,
                        "counts": {"publish": 5, "unroutable": 2, "return_unroutable": 1,
                                   "get": 1, "ack": 4}},
                       {"pid": "<warren@t.1.1.2>", "consumers": 0, "unacked": 1, "prefetch": 0,
                        "counts": {"publish": 1, "deliver": 6}}]}})
    }

    fn sample<'a>(text: &'a str, series: &str) -> Option<&'a str> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
    }

    #[test]
    fn channel_and_connection_figures_are_summed_per_node() {
        let text = render_all(&figures(), "c", false).unwrap();
        let g = |name: &str| sample(&text, name);
        assert_eq!(g("rabbitmq_connections_opened_total"), Some("4"));
        assert_eq!(g("rabbitmq_channels_closed_total"), Some("5"));
        assert_eq!(g("rabbitmq_channel_messages_published_total"), Some("6"));
        assert_eq!(
            g("rabbitmq_channel_messages_unroutable_dropped_total"),
            Some("1")
        );
        assert_eq!(g("rabbitmq_channel_messages_unacked"), Some("3"));
        assert_eq!(g("rabbitmq_channel_get_ack_total"), Some("1"));
        assert_eq!(
            g("rabbitmq_channel_messages_delivered_ack_total"),
            Some("6")
        );
        assert_eq!(g("rabbitmq_connection_incoming_bytes_total"), Some("100"));
        assert_eq!(g("rabbitmq_connection_channels"), Some("2"));
        assert_eq!(g("rabbitmq_connection_pending_packets"), Some("0"));
    }

    #[test]
    fn per_object_series_are_labelled_by_channel_pid() {
        let text = render_all(&figures(), "c", true).unwrap();
        let g = |name: &str| sample(&text, name);
        assert_eq!(
            g(r#"rabbitmq_channel_messages_published_total{channel="<warren@t.1.1.1>"}"#),
            Some("5")
        );
        assert_eq!(
            g(r#"rabbitmq_channel_prefetch{channel="<warren@t.1.1.1>"}"#),
            Some("10")
        );
        assert_eq!(
            g(r#"rabbitmq_connection_outgoing_bytes_total{channel="<warren@t.1.1.0>"}"#),
            Some("40")
        );
    }
}
