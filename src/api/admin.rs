//! The admin listener: `/healthz`, `/readyz`, `/metrics`, `/admin/*` (see `admin_api`) and the
//! operator console under `/console/`.
//!
//! `/healthz` says the process is up; `/readyz` says it takes traffic (503 while draining, so a
//! load balancer stops sending new requests); `/metrics` is the Prometheus text format.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;

use super::{ApiError, Gateway, Response};
use crate::transport::shutdown::Readiness;

/// Serves one request on the admin listener.
pub async fn handle(gw: Arc<Gateway>, ready: Arc<Readiness>, req: Request<Incoming>) -> Response {
    if req.uri().path().starts_with("/admin/") {
        return super::admin_api::handle(&gw, req).await;
    }
    let path = req.uri().path();
    if path == "/console" || path.starts_with("/console/") {
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return ApiError::MethodNotAllowed("GET, HEAD").into_response(gw.rid());
        }
        return console(path).unwrap_or_else(|| ApiError::NotFound.into_response(gw.rid()));
    }
    let known = matches!(path, "/healthz" | "/readyz" | "/metrics");
    if !known {
        return ApiError::NotFound.into_response(gw.rid());
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return ApiError::MethodNotAllowed("GET, HEAD").into_response(gw.rid());
    }
    match path {
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/readyz" => {
            if ready.draining.load(Ordering::Acquire) {
                text(StatusCode::SERVICE_UNAVAILABLE, "draining\n")
            } else {
                text(StatusCode::OK, "ready\n")
            }
        }
        _ => {
            let mut resp = http::Response::new(Full::new(Bytes::from(gw.metrics.render())));
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            resp
        }
    }
}

fn text(status: StatusCode, body: &'static str) -> Response {
    let mut resp = http::Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// The operator console: three files built into the binary (no CDN, nothing fetched from
/// elsewhere). The page holds no data; it asks for the admin token and calls `/admin/*` with it.
/// The CSP keeps the page to its own origin's scripts, styles and API.
fn console(path: &str) -> Option<Response> {
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
            "default-src 'self'; img-src 'self' data:; object-src 'none'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Some(resp)
}
