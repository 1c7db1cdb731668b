//! The management web UI: its HTML, CSS and JavaScript (with the vendored uPlot charting
//! library, MIT, under `ui/js/vendor/`), compiled into the binary and served on every
//! path outside `/api` (`/` is `index.html`). The pages call `/api/*` with HTTP basic
//! auth as RabbitMQ's UI does; nothing is fetched from elsewhere at run time.

use axum::body::Body;
use axum::http::{header, HeaderValue, Method, Response, StatusCode};

/// One embedded file: its path under `/`, content type and bytes.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

macro_rules! asset {
    ($path:literal, $type:expr) => {
        Asset {
            path: $path,
            content_type: $type,
            bytes: include_bytes!(concat!("ui/", $path)),
        }
    };
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// Every file of `ui/` (a unit test checks that none is left out).
const ASSETS: &[Asset] = &[
    asset!("index.html", HTML),
    asset!("favicon.svg", "image/svg+xml"),
    asset!("css/main.css", CSS),
    asset!("css/uPlot.min.css", CSS),
    asset!("js/vendor/uPlot.iife.min.js", JS),
    asset!("js/vendor/uPlot.LICENSE", "text/plain; charset=utf-8"),
    asset!("js/api.js", JS),
    asset!("js/format.js", JS),
    asset!("js/app.js", JS),
    asset!("js/charts.js", JS),
    asset!("js/overview.js", JS),
    asset!("js/connections.js", JS),
    asset!("js/exchanges.js", JS),
    asset!("js/queues.js", JS),
    asset!("js/queue.js", JS),
    asset!("js/admin.js", JS),
    asset!("js/policies.js", JS),
    asset!("js/cluster.js", JS),
];

/// Whether `path` belongs to the API (everything else is the UI's).
pub(super) fn is_api(path: &str) -> bool {
    path == "/api" || path.starts_with("/api/")
}

/// The embedded file at `path` (`/` and `/index.html` are the page), if any.
fn find(path: &str) -> Option<&'static Asset> {
    let path = path.trim_start_matches('/');
    let path = if path.is_empty() { "index.html" } else { path };
    ASSETS.iter().find(|a| a.path == path)
}

fn plain(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut r = Response::new(Body::from(text));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// Answer a request for a UI path: the file (GET, HEAD), 405 for other methods, 404 for
/// a path that is no file of the UI.
pub(super) fn serve(method: &Method, path: &str) -> Response<Body> {
    let Some(asset) = find(path) else {
        return plain(StatusCode::NOT_FOUND, "Not Found\n");
    };
    if method != Method::GET && method != Method::HEAD {
        let mut r = plain(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed\n");
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let body = match method == Method::HEAD {
        true => Body::empty(),
        false => Body::from(asset.bytes),
    };
    let mut r = Response::new(body);
    let headers = r.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(asset.bytes.len()));
    // A new binary may bring new files: the browser revalidates rather than guesses.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_and_its_files_are_found_and_nothing_else() {
        assert_eq!(find("/").map(|a| a.path), Some("index.html"));
        assert_eq!(find("/index.html").map(|a| a.content_type), Some(HTML));
        assert_eq!(find("/js/app.js").map(|a| a.content_type), Some(JS));
        assert_eq!(find("/css/main.css").map(|a| a.content_type), Some(CSS));
        assert!(find("/js/nope.js").is_none());
        assert!(find("/../Cargo.toml").is_none());
        assert!(is_api("/api") && is_api("/api/overview"));
        assert!(!is_api("/apis") && !is_api("/") && !is_api("/js/api.js"));
    }

    #[test]
    fn other_methods_are_refused_and_unknown_paths_404() {
        assert_eq!(serve(&Method::GET, "/").status(), StatusCode::OK);
        assert_eq!(serve(&Method::HEAD, "/js/app.js").status(), StatusCode::OK);
        assert_eq!(
            serve(&Method::POST, "/").status(),
            StatusCode::METHOD_NOT_ALLOWED
        );
        assert_eq!(
            serve(&Method::GET, "/img/missing.png").status(),
            StatusCode::NOT_FOUND
        );
    }

    /// Every file under `src/management/ui/` is served: none added and forgotten here.
    #[test]
    fn every_file_of_the_ui_dir_is_embedded() {
        fn walk(dir: &std::path::Path, root: &std::path::Path, out: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).expect("ui dir") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    walk(&path, root, out);
                } else {
                    let rel = path.strip_prefix(root).expect("under root");
                    out.push(rel.to_string_lossy().replace('\\', "/"));
                }
            }
        }
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/management/ui");
        let mut files = Vec::new();
        walk(&root, &root, &mut files);
        files.sort();
        let mut embedded: Vec<String> = ASSETS.iter().map(|a| a.path.to_owned()).collect();
        embedded.sort();
        assert_eq!(files, embedded);
    }
}
