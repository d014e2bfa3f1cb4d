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

use crate::transport::body::RequestBody;
use http::Request;
use serde::Serialize;

use super::{AdminError, Answer, csv, is_csv, ok};
use crate::catalog::edits::{list_entry_removed, lists, lists_added};
use crate::catalog::{ChangeError, Write};
use crate::gateway::Gateway;
use crate::risk::{self, EntryType, ListEntry, ListKind, RiskLists, Signals, Subject};
use crate::transport::body;
use crate::transport::query::query_param;

/// Largest bulk import accepted (100,000 entries of CSV fit well within it).
const MAX_IMPORT_BYTES: u64 = 16 << 20;

/// What a change does.
pub(super) enum Change {
    Replace,
    Add,
    Remove(EntryType, String),
}

pub(super) fn list(gw: &Gateway, appid: &str, req: &Request<RequestBody>) -> Answer {
    let app = gw
        .apps
        .get(appid)
        .ok_or(AdminError::NotFound("no such app"))?;
    let only = match query_param(req, "list").as_deref() {
        None => None,
        Some("black") => Some(ListKind::Black),
        Some("white") => Some(ListKind::White),
        Some(_) => {
            return Err(AdminError::BadRequest(
                "`list` must be black or white".into(),
            ));
        }
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
        return Ok(csv(risk::to_csv(&entries)));
    }
    ok(&entries)
}

#[derive(Serialize)]
struct Summary {
    count: usize,
}

pub(super) async fn change(
    gw: &Gateway,
    appid: &str,
    req: Request<RequestBody>,
    change: Change,
) -> Answer {
    if gw.apps.get(appid).is_none() {
        return Err(AdminError::NotFound("no such app"));
    }
    let is_csv = is_csv(&req);
    let bytes = body::read(req, MAX_IMPORT_BYTES).await?;
    let write = match change {
        Change::Replace => Write::Replace,
        Change::Add | Change::Remove(..) => Write::Edit,
    };
    let changed = gw
        .documents
        .change(appid, write, move |current: Option<_>| {
            let parsed = || {
                risk::parse_entries(&bytes, is_csv).map_err(|e| ChangeError::Invalid(e.to_string()))
            };
            let built: RiskLists = match change {
                Change::Replace => lists(parsed()?)?,
                Change::Add => lists_added(current, parsed()?)?,
                Change::Remove(kind, value) => list_entry_removed(current, kind, &value)?,
            };
            Ok((built, ()))
        })
        .await?;
    let count = changed.doc.len();
    tracing::info!(appid, count, "risk lists stored");
    ok(&Summary { count })
}

/// `DELETE .../risk-lists/{type}/{value}`: the type, checked.
pub(super) fn entry_type(kind: &str) -> Result<EntryType, AdminError> {
    EntryType::parse(kind)
        .ok_or_else(|| AdminError::BadRequest("the entry type must be openid, mobile or ip".into()))
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
    req: &Request<RequestBody>,
) -> Answer {
    let app = gw
        .apps
        .get(appid)
        .ok_or(AdminError::NotFound("no such app"))?;
    if crate::ids::check_openid(openid).is_err() || openid.is_empty() {
        return Err(AdminError::BadRequest("not an openid".into()));
    }
    let scene = match query_param(req, "scene").as_deref() {
        None => 2,
        Some(s) => match s.parse::<u8>() {
            Ok(n @ 0..=2) => n,
            _ => return Err(AdminError::BadRequest("`scene` must be 0, 1 or 2".into())),
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
    ok(&UserRisk {
        appid,
        openid,
        risk_rank: entry.as_ref().map_or(model_rank, |e| e.rank),
        decided_by: if entry.is_some() { "list" } else { "model" },
        list_entry: entry,
        model_rank,
        signals,
    })
}
