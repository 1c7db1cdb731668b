//! A request's path and query as the handlers match them: the path split into
//! percent-decoded segments (`/api/queues/%2F/q` is `["api", "queues", "/", "q"]`, the
//! default vhost's `%2F` staying inside its segment) and the query as decoded pairs.

use percent_encoding::percent_decode_str;

/// Why a path cannot be served: a segment that is not UTF-8 once decoded.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct BadPath;

/// The decoded segments of `path` (a leading and one trailing `/` ignored, as RabbitMQ's
/// router ignores them).
pub(super) fn segments(path: &str) -> Result<Vec<String>, BadPath> {
    let path = path.strip_prefix('/').unwrap_or(path);
    let path = path.strip_suffix('/').unwrap_or(path);
    if path.is_empty() {
        return Ok(Vec::new());
    }
    path.split('/')
        .map(|s| {
            percent_decode_str(s)
                .decode_utf8()
                .map(|c| c.into_owned())
                .map_err(|_| BadPath)
        })
        .collect()
}

/// The query's pairs, `+` read as a space, as HTML forms and rabbitmqadmin send them.
pub(super) fn query(raw: Option<&str>) -> Vec<(String, String)> {
    raw.map(|q| {
        form_urlencoded::parse(q.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    })
    .unwrap_or_default()
}

/// A query value by name (the first one).
pub(super) fn param<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_vhost_stays_one_segment() {
        assert_eq!(
            segments("/api/queues/%2F/orders").unwrap(),
            vec!["api", "queues", "/", "orders"]
        );
        assert_eq!(
            segments("/api/queues/%2f/a%20b/").unwrap(),
            vec!["api", "queues", "/", "a b"]
        );
        assert_eq!(
            segments("/api/exchanges/%2F/").unwrap(),
            vec!["api", "exchanges", "/"]
        );
        // An empty segment is kept: the default exchange's name is empty.
        assert_eq!(
            segments("/api/bindings/%2F/e//q/q1").unwrap(),
            vec!["api", "bindings", "/", "e", "", "q", "q1"]
        );
        assert_eq!(segments("/").unwrap(), Vec::<String>::new());
        assert_eq!(segments("/api/queues/%FF"), Err(BadPath));
        // Unicode names survive.
        assert_eq!(segments("/x/%C3%A9t%C3%A9").unwrap(), vec!["x", "été"]);
    }

    #[test]
    fn queries_decode_plus_and_percent() {
        let q = query(Some("name=a+b&use_regex=true&columns=name%2Cvhost&page=2"));
        assert_eq!(param(&q, "name"), Some("a b"));
        assert_eq!(param(&q, "columns"), Some("name,vhost"));
        assert_eq!(param(&q, "page"), Some("2"));
        assert_eq!(param(&q, "sort"), None);
        assert!(query(None).is_empty());
    }
}
