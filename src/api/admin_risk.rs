//! `/admin/apps/{appid}/risk-lists` and `/admin/apps/{appid}/users/{openid}/risk` (SPEC §10).
//!
//! - `GET .../risk-lists` lists the entries (`?list=black|white` to filter; `?format=csv` for
//!   CSV with the header `list,type,value,rank,note`);
//! - `PUT` replaces all of them (bulk import: a JSON array of `{list, type, value, rank, note}`,
//!   or that CSV); `POST` adds entries (same forms, or one object): an entry with the same type
//!   and value replaces the old one;
//! - `DELETE .../risk-lists/{type}/{value}` removes one (`type`: openid, mobile or ip).
//! - `GET .../users/{openid}/risk[?scene=&client_ip=&mobile_no=]` shows the rank a lookup would
//!   give now and the signals behind it, without recording anything.
//!
//! Validation is all-or-nothing (400 naming the entry, the lists in force unchanged); the lists
//! are in force once stored. With Redis, a change built on lists another instance has since
//! changed is refused with 409.

use std::sync::Arc;

use http::{Request, StatusCode, header};
use hyper::body::Incoming;
use serde::Serialize;

use super::admin_api::{Refused, body_up_to, error, refusal, task_failed};
use super::error::json_response;
use super::{Gateway, Response, query_param};
use crate::risk::{self, EntryType, ListEntry, ListError, ListKind, RiskLists, Signals, Subject};
use crate::state::durable::Kind;

/// Largest bulk import accepted (100,000 entries of CSV fit well within it).
const MAX_IMPORT_BYTES: u64 = 16 << 20;

/// What a change does.
pub(super) enum ListChange {
    Replace,
    Add,
    Remove(EntryType, String),
}

impl From<ListError> for Refused {
    fn from(e: ListError) -> Self {
        Refused::BadRequest(e.to_string())
    }
}

fn no_such_app() -> Response {
    error(StatusCode::NOT_FOUND, "no such app")
}

pub(super) fn list(gw: &Gateway, appid: &str, req: &Request<Incoming>) -> Response {
    let Some(app) = gw.apps.get(appid) else {
        return no_such_app();
    };
    let only = match query_param(req, "list").as_deref() {
        None => None,
        Some("black") => Some(ListKind::Black),
        Some("white") => Some(ListKind::White),
        Some(_) => return error(StatusCode::BAD_REQUEST, "`list` must be black or white"),
    };
    let entries: Vec<ListEntry> = app
        .slot
        .risk_lists
        .load()
        .as_deref()
        .map(RiskLists::entries)
        .unwrap_or_default()
        .into_iter()
        .filter(|e| only.is_none_or(|k| e.list == k))
        .collect();
    if query_param(req, "format").as_deref() == Some("csv") {
        let mut resp = http::Response::new(http_body_util::Full::new(bytes::Bytes::from(
            risk::to_csv(&entries),
        )));
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/csv; charset=utf-8"),
        );
        return resp;
    }
    json_response(StatusCode::OK, &entries)
}

#[derive(Serialize)]
struct Summary {
    count: usize,
}

pub(super) async fn change(
    gw: &Gateway,
    appid: &str,
    req: Request<Incoming>,
    change: ListChange,
) -> Response {
    if gw.apps.get(appid).is_none() {
        return no_such_app();
    }
    let is_csv = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("csv"));
    let bytes = match body_up_to(gw, req, MAX_IMPORT_BYTES).await {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    let _writes = gw.admin_writes.lock().await;
    // Read before the lists in force (as with keyword tables): a conflict is never missed.
    let held = gw.catalog.held(Kind::RiskLists, appid);
    let Some(app) = gw.apps.get(appid) else {
        return no_such_app();
    };
    let existing = app.slot.risk_lists.load_full();
    let replace = matches!(change, ListChange::Replace);
    let catalog = Arc::clone(&gw.catalog);
    let key = appid.to_owned();
    let task = tokio::task::spawn_blocking(move || -> Result<RiskLists, Refused> {
        let now = existing
            .as_deref()
            .map(RiskLists::entries)
            .unwrap_or_default();
        let entries = match change {
            ListChange::Replace => risk::parse_entries(&bytes, is_csv)?,
            ListChange::Add => {
                let mut all = now;
                all.extend(risk::parse_entries(&bytes, is_csv)?);
                all
            }
            ListChange::Remove(kind, value) => {
                let before = now.len();
                let kept: Vec<ListEntry> = now
                    .into_iter()
                    .filter(|e| !(e.kind == kind && e.value == value))
                    .collect();
                if kept.len() == before {
                    return Err(Refused::NotFound);
                }
                kept
            }
        };
        let built = RiskLists::build(entries)?;
        let json = serde_json::to_vec(&built.entries()).unwrap_or_default();
        let stored = if replace {
            catalog.put(Kind::RiskLists, &key, &json)
        } else {
            catalog.put_over(Kind::RiskLists, &key, &json, held)
        };
        stored.map_err(Refused::from)?;
        Ok(built)
    });
    let built = match task.await {
        Ok(Ok(done)) => done,
        Ok(Err(refused)) => return refusal(refused, "no such entry in the risk lists"),
        Err(e) => return task_failed(e),
    };
    let count = built.len();
    app.slot.risk_lists.store(Some(Arc::new(built)));
    tracing::info!(appid, count, "risk lists stored");
    json_response(StatusCode::OK, &Summary { count })
}

/// `DELETE .../risk-lists/{type}/{value}`: the type, checked.
pub(super) fn entry_type(kind: &str) -> Result<EntryType, Box<Response>> {
    EntryType::parse(kind).ok_or_else(|| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            "the entry type must be openid, mobile or ip",
        ))
    })
}

/// The lists stored for `appid` (an app created again gets its lists back).
pub(super) async fn stored(gw: &Gateway, appid: &str) -> Option<Arc<RiskLists>> {
    super::admin_api::stored(gw, Kind::RiskLists, appid, |json| {
        serde_json::from_slice::<Vec<ListEntry>>(json)
            .map_err(|e| e.to_string())
            .and_then(|entries| RiskLists::build(entries).map_err(|e| e.to_string()))
    })
    .await
}

#[derive(Serialize)]
struct UserRisk<'a> {
    appid: &'a str,
    openid: &'a str,
    risk_rank: u8,
    /// `list` when a list entry decided, else `model`.
    decided_by: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    list_entry: Option<ListEntry>,
    /// The model's own rank (also shown when a list entry decided).
    model_rank: u8,
    signals: Signals,
}

/// `GET /admin/apps/{appid}/users/{openid}/risk`.
pub(super) async fn user(
    gw: &Gateway,
    appid: &str,
    openid: &str,
    req: &Request<Incoming>,
) -> Response {
    let Some(app) = gw.apps.get(appid) else {
        return no_such_app();
    };
    if super::fields::validate_openid(openid).is_err() || openid.is_empty() {
        return error(StatusCode::BAD_REQUEST, "not an openid");
    }
    let scene = match query_param(req, "scene").as_deref() {
        None => 2,
        Some(s) => match s.parse::<u8>() {
            Ok(n @ 0..=2) => n,
            _ => return error(StatusCode::BAD_REQUEST, "`scene` must be 0, 1 or 2"),
        },
    };
    let client_ip = query_param(req, "client_ip").map(|v| v.into_owned());
    let mobile = query_param(req, "mobile_no").map(|v| v.into_owned());
    let last_visit = match gw.visits.last_visit(appid, openid).await {
        Ok(v) => v.filter(|at| {
            gw.clock.now_secs().saturating_sub(*at) < gw.config.limits.visit_ttl.as_secs()
        }),
        Err(e) => {
            tracing::warn!(error = %e, "visit store unreachable for a risk lookup");
            None
        }
    };
    let who = Subject {
        openid,
        scene,
        client_ip: client_ip.as_deref(),
        mobile: mobile.as_deref(),
        last_visit,
    };
    let signals = app
        .slot
        .risk
        .inspect(&gw.config.risk, &who, gw.clock.now_secs());
    let lists = app.slot.risk_lists.load();
    let entry = lists.as_deref().and_then(|l| l.matching(&who)).cloned();
    let model_rank = signals.rank();
    json_response(
        StatusCode::OK,
        &UserRisk {
            appid,
            openid,
            risk_rank: entry.as_ref().map_or(model_rank, |e| e.rank),
            decided_by: if entry.is_some() { "list" } else { "model" },
            list_entry: entry,
            model_rank,
            signals,
        },
    )
}
