//! A minimal blocking HTTP/1.1 client for the management API tests: one request per
//! connection (`Connection: close`), basic auth, a JSON body; bounded by a timeout.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use base64::Engine;
use serde_json::Value;
use std::time::Instant;

/// How long one request may take.
const TIMEOUT: Duration = Duration::from_secs(60);

/// An answer: status, headers (names lower-cased) and body.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {:?}", self.status, self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A client of one node's API, signed in as one user (or as nobody).
#[derive(Clone)]
pub struct Http {
    pub port: u16,
    pub auth: Option<(String, String)>,
}

impl Http {
    /// As `guest`.
    pub fn new(port: u16) -> Http {
        Http::as_user(port, "guest", "guest")
    }

    pub fn as_user(port: u16, user: &str, password: &str) -> Http {
        Http {
            port,
            auth: Some((user.into(), password.into())),
        }
    }

    /// As `guest`, once the node's app answers (the API answers 503 while it starts,
    /// which can be a moment after the AMQP port accepts).
    pub fn ready(port: u16) -> Http {
        let http = Http::new(port);
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let r = http.get("/api/whoami");
            if r.status != 503 {
                return http;
            }
            if std::time::Instant::now() > deadline {
                panic!(
                    "the API on port {port} still answers 503 after 30 s: {}",
                    r.body
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn anonymous(port: u16) -> Http {
        Http { port, auth: None }
    }

    pub fn get(&self, path: &str) -> Response {
        self.request("GET", path, None)
    }

    pub fn put(&self, path: &str, body: &str) -> Response {
        self.request("PUT", path, Some(body))
    }

    pub fn post(&self, path: &str, body: &str) -> Response {
        self.request("POST", path, Some(body))
    }

    pub fn delete(&self, path: &str) -> Response {
        self.request("DELETE", path, None)
    }

    /// A request with raw bytes as its path (for malformed input).
    pub fn request(&self, method: &str, path: &str, body: Option<&str>) -> Response {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))
            .unwrap_or_else(|e| panic!("connect to the API on port {}: {e}", self.port));
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(TIMEOUT)).unwrap();
        let body = body.unwrap_or("");
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.port,
            body.len()
        );
        if !body.is_empty() {
            head.push_str("Content-Type: application/json\r\n");
        }
        if let Some((user, password)) = &self.auth {
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            head.push_str(&format!("Authorization: Basic {token}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(body.as_bytes()).unwrap();
        let mut raw = Vec::new();
        stream
            .read_to_end(&mut raw)
            .unwrap_or_else(|e| panic!("{method} {path}: no answer: {e}"));
        parse(&raw).unwrap_or_else(|| panic!("{method} {path}: bad answer {raw:?}"))
    }
}

fn parse(raw: &[u8]) -> Option<Response> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..split]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body)?;
    }
    Some(Response {
        status,
        headers,
        body: String::from_utf8(body).ok()?,
    })
}

fn dechunk(mut raw: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = raw.windows(2).position(|w| w == b"\r\n")?;
        let size =
            usize::from_str_radix(std::str::from_utf8(&raw[..line_end]).ok()?.trim(), 16).ok()?;
        raw = &raw[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(raw.get(..size)?);
        raw = raw.get(size + 2..)?;
    }
}

/// The `name` of each item of a list answer (or of a page's items).
pub fn names(v: &Value) -> Vec<String> {
    let items = v.get("items").unwrap_or(v);
    items
        .as_array()
        .unwrap_or_else(|| panic!("a list: {v}"))
        .iter()
        .map(|i| i["name"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Wait (bounded) until `check` holds for GET `path`; returns the last body.
pub fn wait_for(api: &Http, path: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = api.get(path);
        if r.status == 200 && check(&r.json()) {
            return r.json();
        }
        if Instant::now() > deadline {
            panic!(
                "timed out waiting for {what} at {path}: {} {}",
                r.status, r.body
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
