//! The admin listener: `/healthz`, `/readyz`, `/metrics`, the operator console under
//! `/console/`, and the admin API under `/admin/*` (SPEC §7, §9-§11).
//!
//! `/healthz` says the process is up; `/readyz` says it takes traffic (503 while draining, so a
//! load balancer stops sending new requests) and names the media models loaded; `/metrics` is
//! the Prometheus text format.
//!
//! Every `/admin/*` route needs `Authorization: Bearer <token>`: the shared `admin.token`, or
//! one of the named `[[admin.tokens]]` (compared in constant time; 401 otherwise; the routes do
//! not exist without a configured token). A named token's holder is the reviewer of the review
//! actions made with it; a `reviewer` token reads everything and works the review queue, and
//! is answered 403 for any other change. Handlers return
//! `Result<Response, AdminError>`, and [`AdminError::into_response`] is the one place an error
//! becomes an answer (JSON `{"error": "..."}`). Changes to stored documents go
//! through the catalog ([`crate::catalog::Documents`]): validated in full, stored, and only
//! then put in force, whole.

mod apps;
mod banks;
mod console;
mod error;
mod jobs;
mod keywords;
mod review;
mod risk;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::transport::body::RequestBody;
use bytes::Bytes;
use http::{HeaderValue, Method, Request, StatusCode, header};
use http_body_util::Full;
use subtle::ConstantTimeEq;

pub use error::AdminError;

use crate::config::Role;
use crate::gateway::Gateway;
use crate::transport::body;
use crate::transport::response::{Response, json_response};
use crate::transport::shutdown::Readiness;
use crate::vision::pool::Loaded;

/// A handler's answer.
type Answer = Result<Response, AdminError>;

/// Serves one request on the admin listener.
pub async fn handle(
    gw: Arc<Gateway>,
    ready: Arc<Readiness>,
    req: Request<RequestBody>,
) -> Response {
    let answer = if req.uri().path().starts_with("/admin/") {
        if matches!(*req.method(), Method::GET | Method::HEAD) {
            api(&gw, req).await
        } else {
            // A change runs as a task of its own: once it is on disk it is put in force
            // whatever the client does (a client gone mid-way cannot leave the store and this
            // process's memory different until a restart).
            let gw = Arc::clone(&gw);
            tokio::spawn(async move { api(&gw, req).await })
                .await
                .unwrap_or_else(|e| Err(AdminError::Internal(format!("admin change failed: {e}"))))
        }
    } else {
        listener(&gw, &ready, &req)
    };
    answer.unwrap_or_else(AdminError::into_response)
}

/// `/healthz`, `/readyz`, `/metrics` and the console.
fn listener(gw: &Gateway, ready: &Readiness, req: &Request<RequestBody>) -> Answer {
    let path = req.uri().path();
    let get_only = || match *req.method() {
        Method::GET | Method::HEAD => Ok(()),
        _ => Err(AdminError::MethodNotAllowed("GET, HEAD")),
    };
    if path == "/console" || path.starts_with("/console/") {
        get_only()?;
        return console::file(path).ok_or(AdminError::NotFound("no such file"));
    }
    if !matches!(path, "/healthz" | "/readyz" | "/metrics") {
        return Err(AdminError::NotFound("not found"));
    }
    get_only()?;
    Ok(match path {
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/readyz" if ready.draining.load(Ordering::Acquire) => {
            text(StatusCode::SERVICE_UNAVAILABLE, "draining\n")
        }
        "/readyz" => {
            // Ready whatever the models' state: without them the gateway still serves, and
            // says so here (SPEC §14).
            let models = match gw.media.models() {
                Loaded::Loading => "models: loading\n".to_string(),
                Loaded::Models(names) => format!("models: {}\n", names.join("; ")),
                Loaded::Without(why) => format!("models: none ({why})\n"),
            };
            let mut resp = text(StatusCode::OK, "");
            *resp.body_mut() = Full::new(Bytes::from(format!("ready\n{models}")));
            resp
        }
        _ => {
            let mut resp = http::Response::new(Full::new(Bytes::from(gw.metrics.render())));
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            resp
        }
    })
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

/// Who makes an admin request: a named token's holder, or whoever holds the shared token.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    /// The named token's name (`None`: the shared `admin.token`).
    pub name: Option<String>,
    pub role: Role,
}

/// The caller the request's bearer token names. Every configured token is compared, in
/// constant time, whichever matches.
fn authenticate(gw: &Gateway, req: &Request<RequestBody>) -> Result<Caller, AdminError> {
    let admin = &gw.config.admin;
    if admin.token.is_none() && admin.tokens.is_empty() {
        return Err(AdminError::Disabled);
    }
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("")
        .as_bytes();
    let mut caller = None;
    if let Some(shared) = &admin.token
        && bool::from(presented.ct_eq(shared.expose().as_bytes()))
    {
        caller = Some(Caller {
            name: None,
            role: Role::Admin,
        });
    }
    for t in &admin.tokens {
        if bool::from(presented.ct_eq(t.token.expose().as_bytes())) {
            caller = Some(Caller {
                name: Some(t.name.clone()),
                role: t.role,
            });
        }
    }
    caller.ok_or(AdminError::Unauthorized)
}

/// Checks the bearer token and the caller's role, then routes one `/admin/...` request.
async fn api(gw: &Gateway, req: Request<RequestBody>) -> Answer {
    let caller = authenticate(gw, &req)?;
    let path = req.uri().path().to_owned();
    let segments: Vec<&str> = path.trim_start_matches("/admin/").split('/').collect();
    let method = req.method().clone();
    // A reviewer reads everything and works the review queue; it changes nothing else.
    if caller.role == Role::Reviewer
        && method != Method::GET
        && !(segments.first() == Some(&"review") && method == Method::POST)
    {
        return Err(AdminError::Forbidden(
            "a reviewer's token reads and reviews; changing apps, tables, banks, lists or jobs needs an admin token",
        ));
    }
    let allow = |allowed: &'static str| Err(AdminError::MethodNotAllowed(allowed));
    match (segments.as_slice(), method) {
        (["whoami"], Method::GET) => ok(&Whoami {
            name: caller.name.as_deref(),
            role: caller.role.as_str(),
        }),
        (["whoami"], _) => allow("GET"),
        (["apps"], Method::GET) => apps::list(gw),
        (["apps"], _) => allow("GET"),
        (["apps", appid, "usage"], Method::GET) => apps::usage(gw, appid).await,
        (["apps", _, "usage"], _) => allow("GET"),
        (["usage"], Method::GET) => apps::traffic(gw, &req),
        (["usage"], _) => allow("GET"),
        (["usage", appid], Method::GET) => apps::app_traffic(gw, appid, &req),
        (["usage", _], _) => allow("GET"),
        (["review", rest @ ..], method) => review::route(gw, &caller, rest, method, req).await,
        (["apps", appid], Method::GET) => apps::get(gw, appid),
        (["apps", appid], Method::PUT) => apps::put(gw, appid, req).await,
        (["apps", _], _) => allow("GET, PUT"),
        (["apps", appid, "keywords"], Method::GET) => keywords::list(gw, appid, &req),
        (["apps", appid, "keywords"], Method::PUT) => {
            keywords::change(gw, appid, req, keywords::Change::Replace).await
        }
        (["apps", appid, "keywords"], Method::POST) => {
            keywords::change(gw, appid, req, keywords::Change::Add).await
        }
        (["apps", _, "keywords"], _) => allow("GET, PUT, POST"),
        (["apps", appid, "keywords", keyword], Method::DELETE) => {
            let change = keywords::Change::Remove(percent_decode(keyword));
            keywords::change(gw, appid, req, change).await
        }
        (["apps", _, "keywords", _], _) => allow("DELETE"),
        (["apps", appid, "risk-lists"], Method::GET) => risk::list(gw, appid, &req),
        (["apps", appid, "risk-lists"], Method::PUT) => {
            risk::change(gw, appid, req, risk::Change::Replace).await
        }
        (["apps", appid, "risk-lists"], Method::POST) => {
            risk::change(gw, appid, req, risk::Change::Add).await
        }
        (["apps", _, "risk-lists"], _) => allow("GET, PUT, POST"),
        (["apps", appid, "risk-lists", kind, value], Method::DELETE) => {
            let change = risk::Change::Remove(risk::entry_type(kind)?, percent_decode(value));
            risk::change(gw, appid, req, change).await
        }
        (["apps", _, "risk-lists", _, _], _) => allow("DELETE"),
        (["apps", appid, "users", openid, "risk"], Method::GET) => {
            risk::user(gw, appid, openid, &req).await
        }
        (["apps", _, "users", _, "risk"], _) => allow("GET"),
        (["banks", scope], Method::GET) => banks::list(gw, scope),
        (["banks", scope], Method::PUT) => {
            banks::change(gw, scope, req, banks::Change::Replace).await
        }
        (["banks", scope], Method::POST) => banks::change(gw, scope, req, banks::Change::Add).await,
        (["banks", _], _) => allow("GET, PUT, POST"),
        (["banks", scope, hash], Method::DELETE) => {
            let change = banks::Change::Remove(hash.to_ascii_lowercase());
            banks::change(gw, scope, req, change).await
        }
        (["banks", _, _], _) => allow("DELETE"),
        (["media"], Method::GET) => jobs::list(gw, &req).await,
        (["media"], _) => allow("GET"),
        (["media", trace_id], Method::GET) => jobs::get(gw, trace_id).await,
        (["media", _], _) => allow("GET"),
        (["media", trace_id, "retry"], Method::POST) => jobs::retry(gw, trace_id).await,
        (["media", _, "retry"], _) => allow("POST"),
        _ => Err(AdminError::NotFound("no such admin route")),
    }
}

/// `GET /admin/whoami`: who the bearer token names (no name: the shared token, whose holder
/// names themselves in review actions) and what it may do.
#[derive(serde::Serialize)]
struct Whoami<'a> {
    name: Option<&'a str>,
    role: &'static str,
}

/// A 200 answer with a JSON body.
fn ok(body: &impl serde::Serialize) -> Answer {
    Ok(json_response(StatusCode::OK, body))
}

/// The request body, within the API listener's body limit.
async fn read_body(gw: &Gateway, req: Request<RequestBody>) -> Result<Bytes, AdminError> {
    Ok(body::read(req, gw.config.server.max_body_bytes.get()).await?)
}

/// Whether the request says its body is CSV.
fn is_csv(req: &Request<RequestBody>) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("csv"))
}

/// A CSV answer.
fn csv(bytes: Vec<u8>) -> Response {
    let mut resp = http::Response::new(Full::new(Bytes::from(bytes)));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    resp
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}
