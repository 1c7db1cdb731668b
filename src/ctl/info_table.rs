//! rabbitmqctl's info-item listings (`list_connections`, `list_channels`,
//! `list_consumers`): column arguments checked as `RabbitMQ.CLI.Ctl.InfoKeys` checks them,
//! the table as `RabbitMQ.CLI.Formatters.Table` prints it (no header without rows, Erlang
//! terms for addresses, the protocol and field tables), and the JSON as rabbitmqctl
//! streams it: one object a line, keys in the requested order.

use std::collections::BTreeSet;
use std::fmt::Write;

use serde_json::Value;

use super::{exit, Failure};

/// The columns of one listing command.
pub(super) struct InfoKeys {
    /// Every column rabbitmqctl 3.10.8 accepts.
    pub known: &'static [&'static str],
    /// Known columns WarrenMQ does not track; refused rather than printed made up.
    pub refused: &'static [&'static str],
    pub default: &'static [&'static str],
}

impl InfoKeys {
    /// The columns asked for: comma- or space-separated, trimmed, without repeats; the
    /// default when none. Unknown ones fail as rabbitmqctl's argument validation (64).
    pub fn columns(&self, args: &[String]) -> Result<Vec<String>, Failure> {
        let mut columns: Vec<String> = Vec::new();
        for column in args.iter().flat_map(|a| a.split(',')).map(str::trim) {
            if !column.is_empty() && !columns.iter().any(|c| c == column) {
                columns.push(column.to_owned());
            }
        }
        if columns.is_empty() {
            return Ok(self.default.iter().map(|c| c.to_string()).collect());
        }
        let validation = |message: String| {
            Failure::new(exit::USAGE, message).with_heading("Error (argument validation): ")
        };
        let unknown: BTreeSet<&str> = columns
            .iter()
            .map(String::as_str)
            .filter(|c| !self.known.contains(c))
            .collect();
        if !unknown.is_empty() {
            let keys = unknown.into_iter().collect::<Vec<_>>().join(",");
            return Err(validation(format!("Info key(s) {keys} are not supported")));
        }
        let refused: Vec<&str> = columns
            .iter()
            .map(String::as_str)
            .filter(|c| self.refused.contains(c))
            .collect();
        if !refused.is_empty() {
            return Err(validation(format!(
                "Info key(s) {} are not supported by WarrenMQ yet (it does not count socket traffic; refused rather than printed with a made-up value)",
                refused.join(",")
            )));
        }
        Ok(columns)
    }
}

/// A listing: the banner, then a header and one tab-separated line a row (no header when
/// there are no rows, or with `--no-table-headers`); with `json`, rabbitmqctl's stream of
/// objects instead, without the banner.
pub(super) fn render(
    banner: &str,
    columns: &[String],
    rows: &Value,
    json: bool,
    headers: bool,
) -> String {
    let rows = rows.as_array().map(Vec::as_slice).unwrap_or_default();
    if json {
        let objects: Vec<String> = rows.iter().map(|row| json_object(columns, row)).collect();
        return match objects.is_empty() {
            true => "[\n]\n".to_owned(),
            false => format!("[\n{}\n]\n", objects.join("\n,")),
        };
    }
    let mut out = format!("{banner}\n");
    if headers && !rows.is_empty() {
        let _ = writeln!(out, "{}", columns.join("\t"));
    }
    for row in rows {
        let cells: Vec<String> = columns.iter().map(|c| cell(c, &row[c.as_str()])).collect();
        let _ = writeln!(out, "{}", cells.join("\t"));
    }
    out
}

/// One row as a JSON object with the columns in the order asked (rabbitmqctl's order).
fn json_object(columns: &[String], row: &Value) -> String {
    let fields: Vec<String> = columns
        .iter()
        .map(|c| format!("{}:{}", Value::from(c.as_str()), row[c.as_str()]))
        .collect();
    format!("{{{}}}", fields.join(","))
}

/// A table cell as rabbitmqctl prints the column's value.
fn cell(column: &str, v: &Value) -> String {
    match (column, v) {
        ("peer_host" | "host", Value::Array(parts)) => address(parts),
        ("protocol", Value::Array(parts)) => format!("{{{}}}", plain_list(parts)),
        ("client_properties" | "arguments", Value::Array(triples)) => erl_table(triples),
        (_, Value::String(s)) => s.clone(),
        (_, Value::Null) => String::new(),
        (_, other) => other.to_string(),
    }
}

fn plain_list(parts: &[Value]) -> String {
    parts
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// `rabbit_misc:ntoa` of an address tuple: dotted IPv4, or IPv6 text.
fn address(parts: &[Value]) -> String {
    let numbers: Vec<u16> = parts
        .iter()
        .filter_map(|p| p.as_u64().and_then(|n| u16::try_from(n).ok()))
        .collect();
    match numbers.as_slice() {
        [a, b, c, d] => format!("{a}.{b}.{c}.{d}"),
        &[a, b, c, d, e, f, g, h] => std::net::Ipv6Addr::new(a, b, c, d, e, f, g, h).to_string(),
        _ => plain_list(parts),
    }
}

/// A field table of `[key, type, value]` triples as rabbitmqctl prints one: the Erlang
/// term `[{"key",Value},...]` with strings quoted and types dropped.
fn erl_table(triples: &[Value]) -> String {
    let items: Vec<String> = triples
        .iter()
        .map(|t| {
            let key = erl_string(t[0].as_str().unwrap_or_default());
            format!(
                "{{{key},{}}}",
                erl_value(t[1].as_str().unwrap_or_default(), &t[2])
            )
        })
        .collect();
    format!("[{}]", items.join(","))
}

fn erl_value(kind: &str, v: &Value) -> String {
    match (kind, v) {
        ("longstr", Value::String(s)) => erl_string(s),
        // Short strings and byte arrays stay Erlang binaries.
        ("shortstr" | "binary", Value::String(s)) => format!("<<{}>>", erl_string(s)),
        ("table", Value::Array(triples)) => erl_table(triples),
        ("array", Value::Array(items)) => {
            let items: Vec<String> = items
                .iter()
                .map(|pair| erl_value(pair[0].as_str().unwrap_or_default(), &pair[1]))
                .collect();
            format!("[{}]", items.join(","))
        }
        ("decimal", Value::Array(parts)) => format!("{{{}}}", plain_list(parts)),
        (_, Value::Null) => "undefined".to_owned(),
        (_, other) => other.to_string(),
    }
}

/// A string as Erlang's `~tp` prints it.
fn erl_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\x{{{:X}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const KEYS: InfoKeys = InfoKeys {
        known: &["name", "user", "peer_port", "recv_oct"],
        refused: &["recv_oct"],
        default: &["user"],
    };

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn columns_are_split_trimmed_deduplicated_and_checked_as_rabbitmqctl_does() {
        assert_eq!(KEYS.columns(&[]).unwrap(), ["user"]);
        assert_eq!(
            KEYS.columns(&args(&["name,user", "user", " peer_port"]))
                .unwrap(),
            ["name", "user", "peer_port"]
        );
        let e = KEYS.columns(&args(&["zeta", "alpha", "name"])).unwrap_err();
        assert_eq!(e.code, 64);
        assert_eq!(
            format!("{}{}", e.heading, e.message),
            "Error (argument validation): Info key(s) alpha,zeta are not supported"
        );
        let e = KEYS.columns(&args(&["recv_oct"])).unwrap_err();
        assert_eq!(e.code, 64);
        assert!(
            e.message.contains("not supported by WarrenMQ"),
            "{}",
            e.message
        );
    }

    #[test]
    fn tables_and_json_have_rabbitmqctl_s_layout() {
        let columns = args(&["user", "peer_host", "protocol", "client_properties"]);
        let rows = json!([{"user": "guest", "peer_host": [127, 0, 0, 1], "protocol": [0, 9, 1],
            "client_properties": [["capabilities", "table", [["basic.nack", "bool", true]]],
                                  ["product", "longstr", "q\"uo\\te"],
                                  ["n", "signedint", 5],
                                  ["arr", "array", [["longstr", "a"], ["signedint", 1]]]]}]);
        assert_eq!(
            render("Listing connections ...", &columns, &rows, false, true),
            "Listing connections ...\nuser\tpeer_host\tprotocol\tclient_properties\n\
             guest\t127.0.0.1\t{0,9,1}\t[{\"capabilities\",[{\"basic.nack\",true}]},{\"product\",\"q\\\"uo\\\\te\"},{\"n\",5},{\"arr\",[\"a\",1]}]\n"
        );
        assert_eq!(
            render(
                "Listing connections ...",
                &columns[..1],
                &rows,
                false,
                false
            ),
            "Listing connections ...\nguest\n"
        );
        assert_eq!(
            render("Listing connections ...", &columns, &json!([]), false, true),
            "Listing connections ...\n",
            "no header without rows"
        );
        let two = json!([{"user": "a", "peer_port": 1}, {"user": "b", "peer_port": 2}]);
        assert_eq!(
            render("", &args(&["user", "peer_port"]), &two, true, true),
            "[\n{\"user\":\"a\",\"peer_port\":1}\n,{\"user\":\"b\",\"peer_port\":2}\n]\n"
        );
        assert_eq!(render("", &columns, &json!([]), true, true), "[\n]\n");
    }

    #[test]
    fn cells_of_empty_tables_and_ipv6_addresses() {
        assert_eq!(cell("arguments", &json!([])), "[]");
        assert_eq!(cell("host", &json!([0, 0, 0, 0, 0, 0, 0, 1])), "::1");
        assert_eq!(cell("ssl_protocol", &json!("")), "");
        assert_eq!(cell("ssl", &json!(false)), "false");
    }
}
