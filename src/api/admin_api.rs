//! `/admin/*` on the admin listener: apps and custom keyword tables (SPEC §7, §9); the review
//! queue is in `admin_review`.
//!
//! Every route needs `Authorization: Bearer <admin.token>` (compared in constant time; 401
//! otherwise; the routes do not exist without a configured token). Errors are JSON
//! `{"error": "..."}` with a 4xx status. Changes are validated in full, written to the embedded
//! store (fsync'd), and only then put in force, whole: a request sees the old app or table, or the
//! new one. Writes are serialised so read-modify-write changes never interleave.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use serde::Serialize;
use subtle::ConstantTimeEq;

use super::admin_banks::BankChange;
use super::admin_risk::ListChange;
use super::error::json_response;
use super::{ApiError, Gateway, Response, query_param};
use crate::config::RawApp;
use crate::engine::table::{self, CustomTable, KeywordEntry, TableError};
use crate::state::durable::Kind;
use crate::tenants::App;

#[derive(Serialize)]
struct ErrorJson<'a> {
    error: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<FieldError>,
}

#[derive(Serialize)]
struct FieldError {
    key: String,
    message: String,
}

pub(super) fn error(status: StatusCode, message: &str) -> Response {
    json_response(
        status,
        &ErrorJson {
            error: message,
            errors: Vec::new(),
        },
    )
}

/// Serves one `/admin/...` request.
pub async fn handle(gw: &Arc<Gateway>, req: Request<Incoming>) -> Response {
    let Some(token) = &gw.config.admin.token else {
        return error(
            StatusCode::NOT_FOUND,
            "the admin API is disabled: set [admin] token",
        );
    };
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !bool::from(presented.as_bytes().ct_eq(token.expose().as_bytes())) {
        let mut resp = error(StatusCode::UNAUTHORIZED, "missing or wrong bearer token");
        resp.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return resp;
    }
    let path = req.uri().path().to_owned();
    let segments: Vec<&str> = path.trim_start_matches("/admin/").split('/').collect();
    let method = req.method().clone();
    match segments.as_slice() {
        ["apps"] => match method {
            Method::GET => super::admin_review::list_apps(gw),
            _ => not_allowed("GET"),
        },
        ["apps", appid, "usage"] => match method {
            Method::GET => super::admin_review::usage(gw, appid).await,
            _ => not_allowed("GET"),
        },
        ["review", rest @ ..] => super::admin_review::route(gw, rest, method, req).await,
        ["apps", appid] => match method {
            Method::GET => get_app(gw, appid),
            Method::PUT => put_app(gw, appid, req).await,
            _ => not_allowed("GET, PUT"),
        },
        ["apps", appid, "keywords"] => match method {
            Method::GET => list_keywords(gw, appid, &req),
            Method::PUT => change_keywords(gw, appid, req, Change::Replace).await,
            Method::POST => change_keywords(gw, appid, req, Change::Add).await,
            _ => not_allowed("GET, PUT, POST"),
        },
        ["apps", appid, "keywords", keyword] => match method {
            Method::DELETE => {
                let keyword = percent_decode(keyword);
                change_keywords(gw, appid, req, Change::Remove(keyword)).await
            }
            _ => not_allowed("DELETE"),
        },
        ["apps", appid, "risk-lists"] => match method {
            Method::GET => super::admin_risk::list(gw, appid, &req),
            Method::PUT => super::admin_risk::change(gw, appid, req, ListChange::Replace).await,
            Method::POST => super::admin_risk::change(gw, appid, req, ListChange::Add).await,
            _ => not_allowed("GET, PUT, POST"),
        },
        ["apps", appid, "risk-lists", kind, value] => match method {
            Method::DELETE => match super::admin_risk::entry_type(kind) {
                Ok(kind) => {
                    let value = percent_decode(value);
                    super::admin_risk::change(gw, appid, req, ListChange::Remove(kind, value)).await
                }
                Err(resp) => *resp,
            },
            _ => not_allowed("DELETE"),
        },
        ["apps", appid, "users", openid, "risk"] => match method {
            Method::GET => super::admin_risk::user(gw, appid, openid, &req).await,
            _ => not_allowed("GET"),
        },
        ["banks", scope] => match method {
            Method::GET => super::admin_banks::list(gw, scope),
            Method::PUT => super::admin_banks::change(gw, scope, req, BankChange::Replace).await,
            Method::POST => super::admin_banks::change(gw, scope, req, BankChange::Add).await,
            _ => not_allowed("GET, PUT, POST"),
        },
        ["banks", scope, hash] => match method {
            Method::DELETE => {
                let hash = hash.to_ascii_lowercase();
                super::admin_banks::change(gw, scope, req, BankChange::Remove(hash)).await
            }
            _ => not_allowed("DELETE"),
        },
        ["media"] => match method {
            Method::GET => list_jobs(gw, &req).await,
            _ => not_allowed("GET"),
        },
        ["media", trace_id] => match method {
            Method::GET => get_job(gw, trace_id).await,
            _ => not_allowed("GET"),
        },
        ["media", trace_id, "retry"] => match method {
            Method::POST => retry_job(gw, trace_id).await,
            _ => not_allowed("POST"),
        },
        _ => error(StatusCode::NOT_FOUND, "no such admin route"),
    }
}

/// `GET /admin/media/{trace_id}`: the job's whole record (state, attempts, verdict, last error).
async fn get_job(gw: &Gateway, trace_id: &str) -> Response {
    match gw.media.job(trace_id).await {
        Ok(Some(job)) => json_response(StatusCode::OK, &job),
        Ok(None) => error(StatusCode::NOT_FOUND, "no such media job"),
        Err(e) => {
            tracing::error!(error = %e, "media job could not be read");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the job store could not be read",
            )
        }
    }
}

/// `GET /admin/media?state=dead[&limit=N]`: jobs in one state (default `dead`, at most `limit`,
/// default 100, up to 10,000), oldest first.
async fn list_jobs(gw: &Gateway, req: &Request<Incoming>) -> Response {
    use crate::jobs::store::JobState;
    let state = match query_param(req, "state").as_deref().unwrap_or("dead") {
        "queued" => JobState::Queued,
        "pushing" => JobState::Pushing,
        "delivered" => JobState::Delivered,
        "dead" => JobState::Dead,
        "done" => JobState::Done,
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "state must be queued, pushing, delivered, dead or done",
            );
        }
    };
    let limit = match query_param(req, "limit").map(|l| l.parse::<usize>()) {
        None => 100,
        Some(Ok(n)) if (1..=10_000).contains(&n) => n,
        Some(_) => return error(StatusCode::BAD_REQUEST, "limit must be 1 to 10000"),
    };
    match gw.media.list(state, limit).await {
        Ok(jobs) => json_response(StatusCode::OK, &jobs),
        Err(e) => {
            tracing::error!(error = %e, "media jobs could not be listed");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the job store could not be read",
            )
        }
    }
}

/// `POST /admin/media/{trace_id}/retry`: a dead-lettered job is pushed again, with a fresh
/// retry schedule.
async fn retry_job(gw: &Gateway, trace_id: &str) -> Response {
    match gw.media.retry(trace_id).await {
        Ok(Some(job)) => json_response(StatusCode::OK, &job),
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            "no dead-lettered job with this trace_id",
        ),
        Err(e) => {
            tracing::error!(error = %e, "media job could not be retried");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the job store could not be written",
            )
        }
    }
}

pub(super) fn not_allowed(allow: &'static str) -> Response {
    let mut resp = error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    resp.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    resp
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

fn get_app(gw: &Gateway, appid: &str) -> Response {
    match gw.apps.get(appid) {
        Some(app) => json_response(StatusCode::OK, &app.config.to_raw()),
        None => error(StatusCode::NOT_FOUND, "no such app"),
    }
}

pub(super) async fn body(gw: &Gateway, req: Request<Incoming>) -> Result<Bytes, Response> {
    body_up_to(gw, req, gw.config.server.max_body_bytes.get()).await
}

/// The request body, at most `limit` bytes, or the error response.
pub(super) async fn body_up_to(
    gw: &Gateway,
    req: Request<Incoming>,
    limit: u64,
) -> Result<Bytes, Response> {
    gw.read_body_up_to(req, limit).await.map_err(|e| match e {
        ApiError::BodyTooLarge(limit) => error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("request body too large: the limit is {limit} bytes"),
        ),
        _ => error(StatusCode::BAD_REQUEST, "request body could not be read"),
    })
}

/// What is stored under `key` in `kind`, built by `build` on the blocking pool; none when there
/// is none or it cannot be read back (logged: what is stored was validated first).
pub(super) async fn stored<T: Send + 'static>(
    gw: &Gateway,
    kind: Kind,
    key: &str,
    build: fn(&[u8]) -> Result<T, String>,
) -> Option<Arc<T>> {
    let catalog = Arc::clone(&gw.catalog);
    let owned = key.to_owned();
    let loaded = tokio::task::spawn_blocking(move || -> Result<Option<T>, String> {
        match catalog.get(kind, &owned).map_err(|e| e.to_string())? {
            Some(json) => build(&json).map(Some),
            None => Ok(None),
        }
    })
    .await;
    match loaded {
        Ok(Ok(found)) => found.map(Arc::new),
        Ok(Err(e)) => {
            tracing::error!(key, ?kind, error = %e, "stored value could not be loaded");
            None
        }
        Err(e) => {
            tracing::error!(key, ?kind, error = %e, "loading task failed");
            None
        }
    }
}

/// The keyword table stored for `appid`.
async fn stored_table(gw: &Gateway, appid: &str) -> Option<Arc<CustomTable>> {
    stored(gw, Kind::Keywords, appid, |json| {
        let entries = table::parse_json(json).map_err(|e| e.to_string())?;
        CustomTable::build(entries).map_err(|e| e.to_string())
    })
    .await
}

/// Runs a blocking store write on the blocking pool.
async fn persist(gw: &Gateway, kind: Kind, key: String, value: Vec<u8>) -> Result<(), Response> {
    let catalog = Arc::clone(&gw.catalog);
    match tokio::task::spawn_blocking(move || catalog.put(kind, &key, &value)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "catalog write failed");
            Err(error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the change could not be stored; nothing changed",
            ))
        }
        Err(e) => {
            tracing::error!(error = %e, "catalog write task failed");
            Err(error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the change could not be stored; nothing changed",
            ))
        }
    }
}

async fn put_app(gw: &Gateway, appid: &str, req: Request<Incoming>) -> Response {
    let bytes = match body(gw, req).await {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    let mut raw: RawApp = match serde_json::from_slice(&bytes) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, &format!("invalid app JSON: {e}")),
    };
    match raw.appid.as_deref() {
        None => raw.appid = Some(appid.to_owned()),
        Some(a) if a == appid => {}
        Some(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "the body's appid differs from the path's",
            );
        }
    }
    let config = match raw.clone().validate() {
        Ok(c) => c,
        Err(errs) => {
            let errors = errs
                .0
                .into_iter()
                .map(|e| FieldError {
                    key: e.key,
                    message: e.message,
                })
                .collect();
            return json_response(
                StatusCode::BAD_REQUEST,
                &ErrorJson {
                    error: "invalid app",
                    errors,
                },
            );
        }
    };
    let _writes = gw.admin_writes.lock().await;
    let existed = gw.apps.get(appid).is_some();
    let json = serde_json::to_vec(&raw).unwrap_or_default();
    if let Err(resp) = persist(gw, Kind::Apps, appid.to_owned(), json).await {
        return resp;
    }
    let app = App::new(config, &gw.config.tokens, &gw.config.limits, &gw.clock);
    if !existed {
        // A table and a hash bank stored for this appid earlier (the app since dropped from the
        // config file) come back into force with the app.
        app.slot.table.store(stored_table(gw, appid).await);
        app.slot
            .bank
            .store(super::admin_banks::stored(gw, appid).await);
        app.slot
            .risk_lists
            .store(super::admin_risk::stored(gw, appid).await);
    }
    let shown = app.config.to_raw();
    gw.apps.put(app);
    tracing::info!(appid, created = !existed, "app stored");
    json_response(
        if existed {
            StatusCode::OK
        } else {
            StatusCode::CREATED
        },
        &shown,
    )
}

fn list_keywords(gw: &Gateway, appid: &str, req: &Request<Incoming>) -> Response {
    let Some(app) = gw.apps.get(appid) else {
        return error(StatusCode::NOT_FOUND, "no such app");
    };
    let entries = app.slot.table().map(|t| t.entries()).unwrap_or_default();
    if query_param(req, "format").as_deref() == Some("csv") {
        let mut resp = http::Response::new(Full::new(Bytes::from(table::to_csv(&entries))));
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/csv; charset=utf-8"),
        );
        return resp;
    }
    json_response(StatusCode::OK, &entries)
}

enum Change {
    Replace,
    Add,
    Remove(String),
}

#[derive(Serialize)]
struct TableSummary {
    count: usize,
}

/// Parses a CSV or JSON body of entries: CSV when the Content-Type says so or the body does not
/// start like JSON.
fn parse_entries(req_is_csv: bool, bytes: &[u8]) -> Result<Vec<KeywordEntry>, TableError> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace()).copied();
    if req_is_csv || !matches!(first, Some(b'[') | Some(b'{')) {
        table::parse_csv(bytes)
    } else {
        table::parse_json(bytes)
    }
}

async fn change_keywords(
    gw: &Gateway,
    appid: &str,
    req: Request<Incoming>,
    change: Change,
) -> Response {
    let received = std::time::Instant::now();
    let Some(app) = gw.apps.get(appid) else {
        return error(StatusCode::NOT_FOUND, "no such app");
    };
    let is_csv = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("csv"));
    let bytes = match body(gw, req).await {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    change_keywords_with(gw, &app, is_csv, bytes, change, received).await
}

/// Adds `entries` (JSON) to the app's keyword table, as `POST .../keywords` does.
pub(super) async fn add_keywords(gw: &Gateway, app: &Arc<App>, entries: Bytes) -> Response {
    let received = std::time::Instant::now();
    change_keywords_with(gw, app, false, entries, Change::Add, received).await
}

async fn change_keywords_with(
    gw: &Gateway,
    app: &Arc<App>,
    is_csv: bool,
    bytes: Bytes,
    change: Change,
    received: std::time::Instant,
) -> Response {
    let appid = app.appid();
    let _writes = gw.admin_writes.lock().await;
    // The version held is read before the table: a change arriving in between makes the
    // conditional write below refuse (a false alarm at worst), never lose it.
    let held = gw.catalog.held(Kind::Keywords, appid);
    let current = app.slot.table();
    let catalog = Arc::clone(&gw.catalog);
    let key = appid.to_owned();
    let started = std::time::Instant::now();
    // Parse, merge, validate, compile and store in one task on the blocking pool: all of it is
    // CPU or disk work, and one hand-off keeps a replacement's latency low under load. The table
    // in force stays until the new one is on disk.
    let replace = matches!(change, Change::Replace);
    let task = tokio::task::spawn_blocking(move || -> Result<(CustomTable, [f64; 2]), Refused> {
        let bad = |e: TableError| Refused::BadRequest(e.to_string());
        let entries = match change {
            Change::Replace => parse_entries(is_csv, &bytes).map_err(bad)?,
            Change::Add => {
                let added = parse_entries(is_csv, &bytes).map_err(bad)?;
                // An added keyword replaces an existing entry with the same keyword.
                let mut merged: Vec<KeywordEntry> = current
                    .map(|t| t.entries())
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|c| !added.iter().any(|a| a.keyword == c.keyword))
                    .collect();
                merged.extend(added);
                merged
            }
            Change::Remove(keyword) => {
                let current = current.map(|t| t.entries()).unwrap_or_default();
                if !current.iter().any(|c| c.keyword == keyword) {
                    return Err(Refused::NotFound);
                }
                current
                    .into_iter()
                    .filter(|c| c.keyword != keyword)
                    .collect()
            }
        };
        let built = CustomTable::build(entries).map_err(bad)?;
        let built_ms = started.elapsed().as_secs_f64() * 1e3;
        // Add and delete build on the table in force: they must not write over a change made
        // on another instance meanwhile. A replacement does not depend on it.
        let stored = if replace {
            catalog.put(Kind::Keywords, &key, &built.json())
        } else {
            catalog.put_over(Kind::Keywords, &key, &built.json(), held)
        };
        stored.map_err(Refused::from)?;
        let stored_ms = started.elapsed().as_secs_f64() * 1e3;
        Ok((built, [built_ms, stored_ms]))
    });
    let (built, [built_ms, stored_ms]) = match task.await {
        Ok(Ok(done)) => done,
        Ok(Err(refused)) => return refusal(refused, "no such keyword in this app's table"),
        Err(e) => return task_failed(e),
    };
    let count = built.len();
    app.slot.table.store(Some(Arc::new(built)));
    // From the request's arrival (body read included) to the new table in force; the other
    // figures count from the start of the blocking task.
    let total_ms = received.elapsed().as_secs_f64() * 1e3;
    tracing::info!(
        appid,
        count,
        built_ms,
        stored_ms,
        total_ms,
        "keyword table stored"
    );
    json_response(StatusCode::OK, &TableSummary { count })
}

/// Why a change was refused.
pub(super) enum Refused {
    BadRequest(String),
    NotFound,
    /// Another instance changed the document meanwhile (409: read it again and retry).
    Conflict,
    Store(crate::state::catalog::CatalogError),
}

impl From<crate::state::catalog::CatalogError> for Refused {
    fn from(e: crate::state::catalog::CatalogError) -> Self {
        if e.0 == crate::state::catalog::CHANGED_MEANWHILE {
            Refused::Conflict
        } else {
            Refused::Store(e)
        }
    }
}

/// The response to a refused change; `not_found` says what was missing.
pub(super) fn refusal(refused: Refused, not_found: &str) -> Response {
    match refused {
        Refused::BadRequest(message) => error(StatusCode::BAD_REQUEST, &message),
        Refused::NotFound => error(StatusCode::NOT_FOUND, not_found),
        Refused::Conflict => error(
            StatusCode::CONFLICT,
            "changed on another instance meanwhile; nothing changed: read it again and retry",
        ),
        Refused::Store(e) => {
            tracing::error!(error = %e, "catalog write failed");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the change could not be stored; nothing changed",
            )
        }
    }
}

/// The response when a change's blocking task itself failed.
pub(super) fn task_failed(e: tokio::task::JoinError) -> Response {
    tracing::error!(error = %e, "admin change task failed");
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "the change failed; nothing changed",
    )
}
