//! An HTTP answer as the handlers build it (status, optional JSON body, extra headers),
//! RabbitMQ's error bodies (`{"error": ..., "reason": ...}`), and its conversion into
//! an axum response.

use axum::body::Body;
use axum::http::{header, HeaderValue, Response, StatusCode};
use serde_json::{json, Value};

/// RabbitMQ's realm, sent with a 401 for missing or wrong credentials.
pub(super) const AUTH_REALM: &str = "Basic realm=\"RabbitMQ Management\"";

/// One answer.
#[derive(Debug, PartialEq)]
pub(super) struct Reply {
    pub status: u16,
    pub body: Option<Value>,
    /// A JSON body already written (a long list passed through as text); sent instead of
    /// `body`.
    pub text: Option<String>,
    pub headers: Vec<(&'static str, String)>,
}

/// What a handler returns: an answer, or a refusal (also an answer).
pub(super) type Answer = Result<Reply, Reply>;

impl Reply {
    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            body: None,
            text: None,
            headers: Vec::new(),
        }
    }

    pub fn json(body: Value) -> Reply {
        Reply {
            status: 200,
            body: Some(body),
            text: None,
            headers: Vec::new(),
        }
    }

    /// 200 with JSON text as it is.
    pub fn json_text(text: String) -> Reply {
        Reply {
            text: Some(text),
            ..Reply::status(200)
        }
    }

    /// 201 for a new object, 204 for one that existed (RabbitMQ's PUT answers).
    pub fn put(created: bool) -> Reply {
        Reply::status(if created { 201 } else { 204 })
    }

    pub fn with_header(mut self, name: &'static str, value: String) -> Reply {
        self.headers.push((name, value));
        self
    }

    pub fn error(status: u16, error: &str, reason: impl Into<Value>) -> Reply {
        Reply::json(json!({"error": error, "reason": reason.into()})).with_status(status)
    }

    fn with_status(mut self, status: u16) -> Reply {
        self.status = status;
        self
    }

    pub fn not_found() -> Reply {
        Reply::error(404, "Object Not Found", "Not Found")
    }

    pub fn bad_request(reason: impl Into<Value>) -> Reply {
        Reply::error(400, "bad_request", reason)
    }

    /// 401 for a user who may not do this (RabbitMQ answers 401, not 403).
    pub fn not_authorised(reason: &str) -> Reply {
        Reply::error(401, "not_authorised", reason)
    }

    /// 401 for missing or wrong credentials, with the realm to ask for them.
    pub fn not_authenticated(reason: Option<&str>) -> Reply {
        let reply = match reason {
            Some(reason) => Reply::error(401, "not_authorized", reason),
            None => Reply::status(401),
        };
        reply.with_header("www-authenticate", AUTH_REALM.into())
    }

    pub fn method_not_allowed() -> Reply {
        Reply::status(405)
    }

    pub fn unavailable(reason: impl Into<Value>) -> Reply {
        Reply::error(503, "service_unavailable", reason)
    }

    pub fn internal(reason: impl Into<Value>) -> Reply {
        Reply::error(500, "internal_server_error", reason)
    }

    pub fn into_response(self) -> Response<Body> {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let text = self.text.or_else(|| self.body.map(|b| b.to_string()));
        let mut response = match text {
            Some(text) => {
                let mut r = Response::new(Body::from(text));
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                r.headers_mut()
                    .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
                r
            }
            None => Response::new(Body::empty()),
        };
        *response.status_mut() = status;
        for (name, value) in self.headers {
            if let Ok(value) = HeaderValue::from_str(&value) {
                response.headers_mut().insert(name, value);
            }
        }
        response
    }
}
