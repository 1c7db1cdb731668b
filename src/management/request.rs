//! One authenticated request as the handlers read it: method, query, JSON body and user.

use axum::http::Method;
use bytes::Bytes;
use serde_json::{Map, Value};

use super::api::Api;
use super::auth::{check, Need, Perm, User};
use super::listing::{reply_list, ListError};
use super::path::param;
use super::raw_listing::reply_raw;
use super::reply::{Answer, Reply};

pub(super) struct Request {
    pub method: Method,
    pub query: Vec<(String, String)>,
    pub body: Bytes,
    /// The `X-Reason` header.
    pub reason: Option<String>,
    pub user: User,
}

impl Request {
    pub fn is(&self, method: Method) -> bool {
        self.method == method
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        param(&self.query, name)
    }

    /// The body as a JSON object (none is an empty object); RabbitMQ's 400 `not_json`
    /// otherwise.
    pub fn object(&self) -> Result<Map<String, Value>, Reply> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Map::new());
        }
        match serde_json::from_slice::<Value>(&self.body) {
            Ok(Value::Object(o)) => Ok(o),
            _ => Err(Reply::bad_request("not_json")),
        }
    }

    /// Require `need` of the user (a vhost in the path is looked up to know whether it
    /// exists: a missing one is answered 404 later, as RabbitMQ does).
    pub async fn need(&self, api: &Api, need: Need<'_>) -> Result<(), Reply> {
        let vhost = match need {
            Need::Vhost(v) | Need::Policies(Some(v)) => Some(v),
            _ => None,
        };
        let exists = match vhost {
            Some(v) if !self.user.is_admin() => api.vhost_exists(v).await?,
            _ => true,
        };
        check(&self.user, need, exists)
    }

    /// A list answer: sorted, filtered, paged and cut to columns as the query asks.
    pub fn list(&self, items: Vec<Value>, default_sort: &[&str]) -> Answer {
        reply_list(items, default_sort, &self.query)
            .map(Reply::json)
            .map_err(|e| Reply::error(400, e.error, e.reason))
    }

    /// [`Request::list`] of rows given as the node's JSON arrays: passed through as text
    /// when the query allows (`raw_listing`), else parsed and listed.
    pub fn list_texts(&self, texts: Vec<String>, default_sort: &[&str]) -> Answer {
        let refused = |e: ListError| Reply::error(400, e.error, e.reason);
        if let Some(answer) = reply_raw(&texts, default_sort, &self.query) {
            return answer.map(Reply::json_text).map_err(refused);
        }
        let mut items = Vec::new();
        for text in texts {
            match serde_json::from_str(&text) {
                Ok(Value::Array(rows)) => items.extend(rows),
                Ok(_) => {}
                Err(e) => return Err(Reply::internal(format!("bad JSON rows: {e}"))),
            }
        }
        self.list(items, default_sort)
    }

    /// Require the user's permission for an operation on `name` in `vhost` (the API acts
    /// as the user, as RabbitMQ's opens an AMQP channel as them); RabbitMQ's 401 "Access
    /// refused." otherwise.
    pub fn permit(&self, vhost: &str, perm: Perm, name: &str) -> Result<(), Reply> {
        self.permit_or(vhost, perm, name, || {
            Reply::not_authorised("Access refused.")
        })
    }

    /// [`Request::permit`] with the refusal an endpoint answers.
    pub fn permit_or(
        &self,
        vhost: &str,
        perm: Perm,
        name: &str,
        refusal: impl FnOnce() -> Reply,
    ) -> Result<(), Reply> {
        match self.user.permits(vhost, perm, name) {
            true => Ok(()),
            false => Err(refusal()),
        }
    }

    /// The AMQP channel error's text RabbitMQ shows for a refused `kind` (`queue`,
    /// `exchange`) where the API works through a channel (get, publish, aliveness).
    pub fn access_refused(&self, kind: &str, name: &str, vhost: &str) -> String {
        format!(
            "ACCESS_REFUSED - access to {kind} '{name}' in vhost '{vhost}' refused for user '{}'",
            self.user.name
        )
    }

    /// A boolean query flag (`if-empty=true`).
    pub fn flag(&self, name: &str) -> bool {
        self.param(name) == Some("true")
    }
}

/// A JSON object's string value (`None` when absent or not a string).
pub(super) fn string<'a>(o: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    o.get(key).and_then(Value::as_str)
}

/// Refuse a body without one of `keys`, as RabbitMQ lists the missing keys.
pub(super) fn need_keys(o: &Map<String, Value>, keys: &[&str]) -> Result<(), Reply> {
    let missing: Vec<String> = keys
        .iter()
        .filter(|k| !o.contains_key(**k))
        .map(|k| format!("{{key_missing,{k}}}"))
        .collect();
    match missing.is_empty() {
        true => Ok(()),
        false => Err(Reply::bad_request(format!("[{}]", missing.join(",")))),
    }
}
