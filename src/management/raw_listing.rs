//! A list answer made from the node's rows as text: each row kept as the JSON the node
//! wrote (`serde_json::value::RawValue`), only its `vhost` and `name` read, then sorted,
//! filtered and paged as [`super::listing::reply_list`] does and written back unchanged.
//! Taken when the query needs no other key of the rows (no `columns`, a `sort` of `name`
//! or `vhost` only); the answer is byte for byte `reply_list`'s (a test compares them).
//! Why: building, sorting, writing and dropping a `Value` tree of 10,000 queue rows was
//! most of `/api/queues`' time (perf, 10,000 durable queues on one node).

use std::cmp::Ordering;
use std::fmt::Write;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::listing::{name_filter, pagination, ListError};
use super::path::param;

/// One row: the node's text of it and the keys it is ordered and filtered by.
struct Row<'a> {
    vhost: String,
    name: String,
    json: &'a RawValue,
}

#[derive(Deserialize)]
struct Keys {
    vhost: String,
    name: String,
}

impl Row<'_> {
    fn key(&self, key: &str) -> &str {
        match key {
            "vhost" => &self.vhost,
            _ => &self.name,
        }
    }
}

/// The sort keys the query asks for (with the endpoint's default after them), when they
/// are all keys every row has as a string; `None` otherwise.
fn sort_keys<'a>(query: &'a [(String, String)], default_sort: &[&'a str]) -> Option<Vec<&'a str>> {
    let keys: Vec<&str> = match param(query, "sort") {
        Some("") => Vec::new(),
        sort => sort
            .into_iter()
            .chain(default_sort.iter().copied())
            .collect(),
    };
    keys.iter()
        .all(|k| *k == "vhost" || *k == "name")
        .then_some(keys)
}

/// The answer of a list endpoint whose rows come as JSON arrays (`chunks`, in order), or
/// `None` when the query needs more of the rows than this reads (or a row is not an
/// object with a string `vhost` and `name`): then `reply_list` answers.
pub(super) fn reply_raw(
    chunks: &[String],
    default_sort: &[&str],
    query: &[(String, String)],
) -> Option<Result<String, ListError>> {
    if param(query, "columns").is_some() {
        return None;
    }
    let keys = sort_keys(query, default_sort)?;
    let mut rows = Vec::new();
    for chunk in chunks {
        for json in serde_json::from_str::<Vec<&RawValue>>(chunk).ok()? {
            let Keys { vhost, name } = serde_json::from_str(json.get()).ok()?;
            rows.push(Row { vhost, name, json });
        }
    }
    Some(answer(rows, &keys, query))
}

fn answer(
    mut rows: Vec<Row>,
    keys: &[&str],
    query: &[(String, String)],
) -> Result<String, ListError> {
    let page = pagination(query)?;
    // Strings compare as their bytes, as `listing::compare` compares them; a stable sort,
    // as there.
    rows.sort_by(|a, b| {
        keys.iter()
            .map(|k| a.key(k).as_bytes().cmp(b.key(k).as_bytes()))
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
    });
    if param(query, "sort_reverse") == Some("true") {
        rows.reverse();
    }
    let Some(page) = page else {
        return Ok(array(&rows));
    };
    let total = rows.len();
    if let Some(matches) = name_filter(query)? {
        rows.retain(|r| matches(&r.name));
    }
    let filtered = rows.len();
    let offset = (page.page - 1).saturating_mul(page.size);
    let items: Vec<Row> = rows
        .into_iter()
        .skip(offset as usize)
        .take(page.size as usize)
        .collect();
    // The keys in serde_json's order (sorted), as `reply_list`'s object is written.
    let mut out = String::new();
    let _ = write!(
        out,
        r#"{{"filtered_count":{filtered},"item_count":{},"items":{},"page":{},"page_count":{},"page_size":{},"total_count":{total}}}"#,
        items.len(),
        array(&items),
        page.page,
        (filtered as u64).div_ceil(page.size),
        page.size,
    );
    Ok(out)
}

fn array(rows: &[Row]) -> String {
    let mut out =
        String::with_capacity(2 + rows.iter().map(|r| r.json.get().len() + 1).sum::<usize>());
    out.push('[');
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(row.json.get());
    }
    out.push(']');
    out
}

#[cfg(test)]
mod tests {
    use super::super::listing::reply_list;
    use super::*;
    use serde_json::{json, Value};

    fn q(s: &str) -> Vec<(String, String)> {
        super::super::path::query(Some(s))
    }

    /// Rows as a node writes them (serde_json's compact text, keys sorted), in two
    /// chunks as two vhosts' answers come.
    fn chunks() -> Vec<String> {
        let first = json!([
            {"name": "b", "vhost": "/", "messages": 5, "message_stats": {"publish": 2}},
            {"name": "Alpha \"quoted\" é", "vhost": "/", "messages": 10, "rate": 0.2},
            {"name": "c\u{1f}", "vhost": "/", "online": ["n1", "n2"]},
        ]);
        let second = json!([
            {"name": "a", "vhost": "v2", "messages": 1, "policy": null},
            {"name": "b", "vhost": "v2", "arguments": {"x-max-length": 10}},
        ]);
        vec![first.to_string(), second.to_string()]
    }

    fn by_value(chunks: &[String], query: &str) -> Result<String, ListError> {
        let items: Vec<Value> = chunks
            .iter()
            .flat_map(|c| serde_json::from_str::<Vec<Value>>(c).unwrap())
            .collect();
        reply_list(items, &["vhost", "name"], &q(query)).map(|v| v.to_string())
    }

    #[test]
    fn the_same_answer_as_the_value_path_byte_for_byte() {
        let chunks = chunks();
        for query in [
            "",
            "sort=name",
            "sort=vhost&sort_reverse=true",
            "sort=",
            "sort_reverse=true",
            "page=1",
            "page=1&page_size=2",
            "page=2&page_size=2&sort=name",
            "page=9&page_size=2",
            "page=1&name=B",
            "page=1&name=%5E%5Ba-b%5D%24&use_regex=true",
            "name=zzz",
            "page=0",
            "page=1&page_size=501",
            "page=x",
            "page=1&name=(&use_regex=true",
        ] {
            let raw = reply_raw(&chunks, &["vhost", "name"], &q(query))
                .unwrap_or_else(|| panic!("{query}: no raw answer"));
            assert_eq!(raw, by_value(&chunks, query), "{query}");
        }
    }

    #[test]
    fn queries_that_need_the_rows_go_the_value_path() {
        let chunks = chunks();
        for query in [
            "columns=name",
            "sort=messages",
            "page=1&sort=message_stats.publish",
        ] {
            assert!(
                reply_raw(&chunks, &["vhost", "name"], &q(query)).is_none(),
                "{query}"
            );
        }
        // A row without a string name, or text that is not an array of rows.
        let odd = vec![json!([{"vhost": "/", "name": 1}]).to_string()];
        assert!(reply_raw(&odd, &["vhost", "name"], &[]).is_none());
        assert!(reply_raw(&["{}".to_owned()], &["vhost", "name"], &[]).is_none());
        // An empty list.
        let none = vec!["[]".to_owned()];
        assert_eq!(
            reply_raw(&none, &["vhost", "name"], &[]).unwrap().unwrap(),
            "[]"
        );
    }
}
