//! `/admin/banks/{scope}`: media hash banks, `global` or one app's (scope = its appid).
//!
//! - `GET` lists the entries;
//! - `PUT` replaces the bank (JSON array of `{hash, kind, label, suggest, note}`, or CSV with
//!   that header);
//! - `POST` adds entries (same forms; an entry with the same kind and hash replaces the old one),
//!   or uploads one image or audio file as the body, with `?label=..&suggest=..[&note=..]`: an
//!   image is PDQ-hashed (refused when too flat to hash reliably), audio is SHA-256'd;
//! - `DELETE /admin/banks/{scope}/{hash}` removes the entries with that hash.
//!
//! As with keyword tables: validation is all-or-nothing (400 naming the entry, the bank in force
//! unchanged), the work runs on the blocking pool, and the new bank is in force only once it is
//! on disk.

use std::sync::Arc;

use bytes::Bytes;

use http::{Request, StatusCode, header};
use hyper::body::Incoming;
use serde::Serialize;

use super::admin_api::{Refused, body_up_to, error, refusal, task_failed};
use super::error::json_response;
use super::{Gateway, Response, query_param};
use crate::media::bank::{self, Bank, BankEntry, BankError, GLOBAL};
use crate::media::sniff::{self, MediaKind};
use crate::media::{images, pdq};
use crate::state::durable::Kind;

/// What a change does.
pub(super) enum BankChange {
    Replace,
    Add,
    Remove(String),
}

#[derive(Serialize)]
struct Summary {
    count: usize,
    /// Entries this request added (for an upload: the hash it computed).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    added: Vec<BankEntry>,
}

/// The bank in force for `scope` (`Some(None)`: the app has none); `None` when the scope names
/// no app.
fn current(gw: &Gateway, scope: &str) -> Option<Option<Arc<Bank>>> {
    if scope == GLOBAL {
        return Some(Some(gw.media.global_bank.load_full()));
    }
    gw.apps.get(scope).map(|app| app.slot.bank.load_full())
}

fn no_such_scope() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "no such app (scope is `global` or an appid)",
    )
}

pub(super) fn list(gw: &Gateway, scope: &str) -> Response {
    match current(gw, scope) {
        Some(bank) => {
            let entries = bank.as_deref().map(Bank::entries).unwrap_or_default();
            json_response(StatusCode::OK, &entries)
        }
        None => no_such_scope(),
    }
}

impl From<BankError> for Refused {
    fn from(e: BankError) -> Self {
        Refused::BadRequest(e.to_string())
    }
}

pub(super) async fn change(
    gw: &Gateway,
    scope: &str,
    req: Request<Incoming>,
    change: BankChange,
) -> Response {
    if current(gw, scope).is_none() {
        return no_such_scope();
    }
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let is_csv = content_type.contains("csv");
    let upload = Upload {
        label: query_param(&req, "label").map(|v| v.into_owned()),
        suggest: query_param(&req, "suggest").map(|v| v.into_owned()),
        note: query_param(&req, "note").map(|v| v.into_owned()),
    };
    // Uploads may be as large as media the gateway fetches.
    let limit = gw.media_upload_limit();
    let bytes = match body_up_to(gw, req, limit).await {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    change_with(gw, scope, is_csv, bytes, upload, change).await
}

/// Adds `entries` (JSON) to a bank, as `POST /admin/banks/{scope}` does.
pub(super) async fn add_entries(gw: &Gateway, scope: &str, entries: Bytes) -> Response {
    if current(gw, scope).is_none() {
        return no_such_scope();
    }
    let upload = Upload {
        label: None,
        suggest: None,
        note: None,
    };
    change_with(gw, scope, false, entries, upload, BankChange::Add).await
}

async fn change_with(
    gw: &Gateway,
    scope: &str,
    is_csv: bool,
    bytes: Bytes,
    upload: Upload,
    change: BankChange,
) -> Response {
    let _writes = gw.admin_writes.lock().await;
    // Read before the bank in force (see keyword tables): a conflict is never missed.
    let held = gw.catalog.held(Kind::Banks, scope);
    let Some(existing) = current(gw, scope) else {
        return no_such_scope();
    };
    let replace = matches!(change, BankChange::Replace);
    let catalog = Arc::clone(&gw.catalog);
    let key = scope.to_owned();
    let task = tokio::task::spawn_blocking(move || -> Result<(Bank, Vec<BankEntry>), Refused> {
        let now: Vec<BankEntry> = existing
            .as_deref()
            .map(|b| b.entries().to_vec())
            .unwrap_or_default();
        let (entries, added) = match change {
            BankChange::Replace => (bank::parse_entries(&bytes, is_csv)?, Vec::new()),
            BankChange::Add => {
                let added = match sniff::identify(&bytes) {
                    Some(format) if !is_csv => vec![upload.entry(&bytes, format.kind())?],
                    _ => bank::parse_entries(&bytes, is_csv)?,
                };
                // Errors name the entry as the request numbered it.
                Bank::build(added.clone())?;
                let mut all = now;
                all.extend(added.iter().cloned());
                (all, added)
            }
            BankChange::Remove(hash) => {
                let before = now.len();
                let kept: Vec<BankEntry> = now.into_iter().filter(|e| e.hash != hash).collect();
                if kept.len() == before {
                    return Err(Refused::NotFound);
                }
                (kept, Vec::new())
            }
        };
        let built = Bank::build(entries)?;
        let json = serde_json::to_vec(built.entries()).unwrap_or_default();
        let stored = if replace {
            catalog.put(Kind::Banks, &key, &json)
        } else {
            catalog.put_over(Kind::Banks, &key, &json, held)
        };
        stored.map_err(Refused::from)?;
        Ok((built, added))
    });
    let (built, added) = match task.await {
        Ok(Ok(done)) => done,
        Ok(Err(refused)) => return refusal(refused, "no entry with this hash in the bank"),
        Err(e) => return task_failed(e),
    };
    let count = built.len();
    if scope == GLOBAL {
        gw.media.global_bank.store(Arc::new(built));
    } else if let Some(app) = gw.apps.get(scope) {
        app.slot.bank.store(Some(Arc::new(built)));
    }
    tracing::info!(scope, count, "hash bank stored");
    json_response(StatusCode::OK, &Summary { count, added })
}

/// The query parameters of an upload.
struct Upload {
    label: Option<String>,
    suggest: Option<String>,
    note: Option<String>,
}

impl Upload {
    /// The entry for an uploaded file: its PDQ hash (images) or SHA-256 (audio).
    fn entry(&self, bytes: &[u8], kind: MediaKind) -> Result<BankEntry, Refused> {
        let bad = |m: &str| Refused::BadRequest(m.to_owned());
        let label = self
            .label
            .as_deref()
            .ok_or_else(|| bad("an upload needs ?label= (10001, 20001, 20002, 20006 or 21000)"))?
            .parse()
            .map_err(|_| bad("label must be a number"))?;
        let suggest = self
            .suggest
            .clone()
            .ok_or_else(|| bad("an upload needs ?suggest= (risky, review or pass)"))?;
        let hash = match kind {
            MediaKind::Image => {
                let image = images::decode(bytes, &images::ImageLimits::default())
                    .map_err(|e| Refused::BadRequest(e.to_string()))?;
                match pdq::hash_image(&image) {
                    Some((hash, quality)) if quality >= pdq::MIN_QUALITY => hash.to_hex(),
                    Some((_, quality)) => {
                        return Err(Refused::BadRequest(format!(
                            "the image is too flat to hash reliably (PDQ quality {quality}, at least {} needed)",
                            pdq::MIN_QUALITY
                        )));
                    }
                    None => {
                        return Err(bad(
                            "the image is too small to hash (under 5 pixels a side)",
                        ));
                    }
                }
            }
            MediaKind::Audio => bank::content_hash(bytes),
        };
        Ok(BankEntry {
            hash,
            kind,
            label,
            suggest,
            note: self.note.clone().filter(|n| !n.is_empty()),
        })
    }
}

/// The hash bank stored for `appid` (an app created again after being dropped from the config
/// file gets its bank back).
pub(super) async fn stored(gw: &Gateway, appid: &str) -> Option<Arc<Bank>> {
    super::admin_api::stored(gw, Kind::Banks, appid, |json| {
        bank::parse_entries(json, false)
            .and_then(Bank::build)
            .map_err(|e| e.to_string())
    })
    .await
}
