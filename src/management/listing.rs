//! How list endpoints answer, as RabbitMQ's `rabbit_mgmt_util:reply_list_or_paginate`:
//! sorted by `sort` then `vhost`, `name` (Erlang term order: numbers before atoms before
//! strings; a missing key sorts as 0), reversed with `sort_reverse=true`; with `page`,
//! filtered by `name` (case-insensitive substring, or a case-insensitive regex with
//! `use_regex=true`) and cut into a page object (`items`, `page`, `page_count`,
//! `page_size`, `filtered_count`, `item_count`, `total_count`); `columns` keeps only the
//! named (dotted) keys of each item.

use std::cmp::Ordering;

use serde_json::{json, Map, Value};

use super::path::param;

/// RabbitMQ's page size when `page` comes without `page_size`, and its largest.
const DEFAULT_PAGE_SIZE: u64 = 100;
const MAX_PAGE_SIZE: u64 = 500;

/// A refusal of the list parameters: RabbitMQ's `error` and `reason`.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct ListError {
    pub error: &'static str,
    pub reason: String,
}

#[derive(Debug, PartialEq, Eq)]
pub(super) struct Page {
    pub page: u64,
    pub size: u64,
}

fn number(query: &[(String, String)], name: &str) -> Result<Option<i64>, ListError> {
    match param(query, name) {
        None => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| ListError {
            error: "bad_request",
            reason: "Pagination parameters are invalid".into(),
        }),
    }
}

pub(super) fn pagination(query: &[(String, String)]) -> Result<Option<Page>, ListError> {
    let (page, size) = (number(query, "page")?, number(query, "page_size")?);
    let Some(page) = page else {
        return Ok(None);
    };
    let valid = |size: i64| page > 0 && size > 0 && size <= MAX_PAGE_SIZE as i64;
    match size {
        None if page > 0 => Ok(Some(Page {
            page: page as u64,
            size: DEFAULT_PAGE_SIZE,
        })),
        Some(size) if valid(size) => Ok(Some(Page {
            page: page as u64,
            size: size as u64,
        })),
        _ => Err(ListError {
            error: "invalid_pagination_parameters",
            reason: format!(
                "Invalid pagination parameters: page number {page}, page size {}",
                size.map_or("undefined".into(), |s| s.to_string())
            ),
        }),
    }
}

/// Erlang's order of the JSON values' terms: number < atom < map < list < binary.
fn rank(v: &Value) -> u8 {
    match v {
        Value::Number(_) => 0,
        Value::Null | Value::Bool(_) => 1,
        Value::Object(_) => 2,
        Value::Array(_) => 3,
        Value::String(_) => 4,
    }
}

fn atom(v: &Value) -> &'static str {
    match v {
        Value::Bool(true) => "true",
        Value::Bool(false) => "false",
        _ => "null",
    }
}

fn compare(a: &Value, b: &Value) -> Ordering {
    rank(a).cmp(&rank(b)).then_with(|| match (a, b) {
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .unwrap_or(0.0)
            .partial_cmp(&y.as_f64().unwrap_or(0.0))
            .unwrap_or(Ordering::Equal),
        (Value::String(x), Value::String(y)) => x.as_bytes().cmp(y.as_bytes()),
        (Value::Array(x), Value::Array(y)) => x
            .iter()
            .zip(y)
            .map(|(x, y)| compare(x, y))
            .find(|o| o.is_ne())
            .unwrap_or_else(|| x.len().cmp(&y.len())),
        (Value::Null | Value::Bool(_), _) => atom(a).cmp(atom(b)),
        _ => Ordering::Equal,
    })
}

/// The value at a dotted key (`message_stats.publish`); missing sorts as 0.
fn dotted<'a>(item: &'a Value, key: &str) -> Option<&'a Value> {
    key.split('.').try_fold(item, |v, k| v.get(k))
}

fn sort(items: &mut [Value], keys: &[String]) {
    let zero = json!(0);
    items.sort_by(|a, b| {
        keys.iter()
            .map(|k| compare(dotted(a, k).unwrap_or(&zero), dotted(b, k).unwrap_or(&zero)))
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
    });
}

/// Whether an item's name matches the `name` filter.
pub(super) type NameMatch = Box<dyn Fn(&str) -> bool>;

pub(super) fn name_filter(query: &[(String, String)]) -> Result<Option<NameMatch>, ListError> {
    let Some(name) = param(query, "name").filter(|n| !n.is_empty()) else {
        return Ok(None);
    };
    if param(query, "use_regex") == Some("true") {
        let re = regex::RegexBuilder::new(name)
            .case_insensitive(true)
            .build()
            .map_err(|e| ListError {
                error: "bad_request",
                reason: format!("invalid regular expression '{name}': {e}"),
            })?;
        return Ok(Some(Box::new(move |s| re.is_match(s))));
    }
    let lower = name.to_lowercase();
    Ok(Some(Box::new(move |s| s.to_lowercase().contains(&lower))))
}

/// The columns asked for, each a dotted path.
fn columns(query: &[(String, String)]) -> Option<Vec<Vec<String>>> {
    param(query, "columns").map(|c| {
        c.split(',')
            .filter(|c| !c.is_empty())
            .map(|c| c.split('.').map(str::to_owned).collect())
            .collect()
    })
}

fn keep_columns(item: &Value, cols: &[Vec<String>]) -> Value {
    let Value::Object(o) = item else {
        return item.clone();
    };
    let mut kept = Map::new();
    for (k, v) in o {
        let deeper: Vec<Vec<String>> = cols
            .iter()
            .filter(|c| c.first() == Some(k))
            .map(|c| c[1..].to_vec())
            .collect();
        if deeper.is_empty() {
            continue;
        }
        let v = if deeper.iter().any(Vec::is_empty) {
            v.clone()
        } else {
            keep_columns(v, &deeper)
        };
        kept.insert(k.clone(), v);
    }
    Value::Object(kept)
}

/// A list endpoint's answer for `items` under the request's query; `default_sort` is
/// RabbitMQ's default for the endpoint (`["vhost", "name"]` for most).
pub(super) fn reply_list(
    mut items: Vec<Value>,
    default_sort: &[&str],
    query: &[(String, String)],
) -> Result<Value, ListError> {
    let page = pagination(query)?;
    match param(query, "sort") {
        // An explicitly empty sort leaves the order as it is.
        Some("") => {}
        sort_key => {
            let keys: Vec<String> = sort_key
                .into_iter()
                .chain(default_sort.iter().copied())
                .map(str::to_owned)
                .collect();
            sort(&mut items, &keys);
        }
    }
    if param(query, "sort_reverse") == Some("true") {
        items.reverse();
    }
    let cols = columns(query);
    let shape = |items: Vec<Value>| -> Vec<Value> {
        match &cols {
            Some(c) => items.iter().map(|i| keep_columns(i, c)).collect(),
            None => items,
        }
    };
    let Some(page) = page else {
        return Ok(Value::Array(shape(items)));
    };
    let total = items.len();
    if let Some(matches) = name_filter(query)? {
        items.retain(|i| i.get("name").and_then(Value::as_str).is_some_and(&matches));
    }
    let filtered = items.len();
    // A page past the end is empty (measured: RabbitMQ 3.10.8 answers 200 with no items).
    let offset = (page.page - 1).saturating_mul(page.size);
    let items: Vec<Value> = items
        .into_iter()
        .skip(offset as usize)
        .take(page.size as usize)
        .collect();
    Ok(json!({
        "total_count": total,
        "item_count": items.len(),
        "filtered_count": filtered,
        "page": page.page,
        "page_size": page.size,
        "page_count": (filtered as u64).div_ceil(page.size),
        "items": shape(items),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Vec<(String, String)> {
        super::super::path::query(Some(s))
    }

    fn queues() -> Vec<Value> {
        vec![
            json!({"name": "b", "vhost": "/", "messages": 5}),
            json!({"name": "a", "vhost": "v2", "messages": 1}),
            json!({"name": "c", "vhost": "/"}),
            json!({"name": "Alpha", "vhost": "/", "messages": 10}),
        ]
    }

    fn names(v: &Value) -> Vec<&str> {
        let items = v.get("items").unwrap_or(v);
        items
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["name"].as_str().unwrap())
            .collect()
    }

    #[test]
    fn sorted_by_vhost_then_name_by_default() {
        let v = reply_list(queues(), &["vhost", "name"], &[]).unwrap();
        assert_eq!(names(&v), vec!["Alpha", "b", "c", "a"]);
    }

    #[test]
    fn sort_key_first_missing_as_zero_and_reverse() {
        let v = reply_list(queues(), &["vhost", "name"], &q("sort=messages")).unwrap();
        assert_eq!(names(&v), vec!["c", "a", "b", "Alpha"]);
        let v = reply_list(
            queues(),
            &["vhost", "name"],
            &q("sort=messages&sort_reverse=true"),
        )
        .unwrap();
        assert_eq!(names(&v), vec!["Alpha", "b", "a", "c"]);
        // An empty sort keeps the order given.
        let v = reply_list(queues(), &["vhost", "name"], &q("sort=")).unwrap();
        assert_eq!(names(&v), vec!["b", "a", "c", "Alpha"]);
    }

    #[test]
    fn pages_carry_rabbitmq_s_counts() {
        let v = reply_list(queues(), &["vhost", "name"], &q("page=2&page_size=3")).unwrap();
        assert_eq!(v["items"].as_array().unwrap().len(), 1);
        assert_eq!(v["page"], 2);
        assert_eq!(v["page_count"], 2);
        assert_eq!(v["page_size"], 3);
        assert_eq!(v["item_count"], 1);
        assert_eq!(v["filtered_count"], 4);
        assert_eq!(v["total_count"], 4);
        // page_size defaults to 100; the name filter is case-insensitive.
        let v = reply_list(queues(), &["vhost", "name"], &q("page=1&name=A")).unwrap();
        assert_eq!(names(&v), vec!["Alpha", "a"]);
        assert_eq!(v["page_size"], 100);
        assert_eq!(v["filtered_count"], 2);
        let v = reply_list(
            queues(),
            &["vhost", "name"],
            &q("page=1&name=%5E%5Ba-b%5D%24&use_regex=true"),
        )
        .unwrap();
        assert_eq!(names(&v), vec!["b", "a"]);
        // Without page, no filter and no page object.
        let v = reply_list(queues(), &["vhost", "name"], &q("name=zzz")).unwrap();
        assert!(v.is_array());
        assert_eq!(names(&v).len(), 4);
    }

    #[test]
    fn bad_pages_are_refused_as_rabbitmq_refuses_them() {
        let e = reply_list(queues(), &[], &q("page=0")).unwrap_err();
        assert_eq!(e.error, "invalid_pagination_parameters");
        assert_eq!(
            e.reason,
            "Invalid pagination parameters: page number 0, page size undefined"
        );
        assert_eq!(
            reply_list(queues(), &[], &q("page=1&page_size=501"))
                .unwrap_err()
                .error,
            "invalid_pagination_parameters"
        );
        assert_eq!(
            reply_list(queues(), &[], &q("page=x")).unwrap_err().error,
            "bad_request"
        );
        assert_eq!(
            reply_list(queues(), &[], &q("page=-1&page_size=2"))
                .unwrap_err()
                .reason,
            "Invalid pagination parameters: page number -1, page size 2"
        );
        // A page past the end is empty, not an error (as RabbitMQ 3.10.8 answers).
        let v = reply_list(queues(), &[], &q("page=9&page_size=2")).unwrap();
        assert_eq!(v["items"], json!([]));
        assert_eq!(v["page_count"], 2);
        let v = reply_list(Vec::new(), &[], &q("page=1")).unwrap();
        assert_eq!(v["items"], json!([]));
        assert_eq!(v["page_count"], 0);
    }

    #[test]
    fn columns_keep_named_keys_nested_too() {
        let items = vec![json!({"name": "q", "vhost": "/", "messages": 1,
                               "message_stats": {"publish": 3, "ack": 1}})];
        let v = reply_list(items, &[], &q("columns=name,message_stats.publish")).unwrap();
        assert_eq!(v, json!([{"name": "q", "message_stats": {"publish": 3}}]));
    }

    #[test]
    fn erlang_term_order() {
        assert_eq!(compare(&json!(10), &json!("a")), Ordering::Less);
        assert_eq!(compare(&json!(null), &json!(1)), Ordering::Greater);
        assert_eq!(compare(&json!("B"), &json!("a")), Ordering::Less);
        assert_eq!(compare(&json!(2.5), &json!(2)), Ordering::Greater);
    }
}
