//! The operator console's files.

use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use http_body_util::Full;

use crate::transport::response::Response;

/// The operator console: three files built into the binary (no CDN, nothing fetched from
/// elsewhere). The page holds no data; it asks for the admin token and calls `/admin/*` with it.
/// The CSP keeps the page to its own origin's scripts, styles and API; images and audio only
/// from blobs of what the admin listener served (a media item's file).
pub(super) fn file(path: &str) -> Option<Response> {
    const INDEX: &str = include_str!("../console/index.html");
    const SCRIPT: &str = include_str!("../console/app.js");
    const STYLE: &str = include_str!("../console/app.css");
    if path == "/console" {
        let mut resp = http::Response::new(Full::new(Bytes::new()));
        *resp.status_mut() = StatusCode::PERMANENT_REDIRECT;
        resp.headers_mut()
            .insert(header::LOCATION, HeaderValue::from_static("/console/"));
        return Some(resp);
    }
    let (body, content_type) = match path.trim_start_matches("/console/") {
        "" | "index.html" => (INDEX, "text/html; charset=utf-8"),
        "app.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        "app.css" => (STYLE, "text/css; charset=utf-8"),
        _ => return None,
    };
    let mut resp = http::Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; object-src 'none'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Some(resp)
}
