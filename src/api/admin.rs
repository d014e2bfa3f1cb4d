//! The admin listener: `/healthz`, `/readyz`, `/metrics`, and `/admin/*` (see `admin_api`).
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
use crate::Readiness;

/// Serves one request on the admin listener.
pub async fn handle(gw: Arc<Gateway>, ready: Arc<Readiness>, req: Request<Incoming>) -> Response {
    if req.uri().path().starts_with("/admin/") {
        return super::admin_api::handle(&gw, req).await;
    }
    let path = req.uri().path();
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
