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

use crate::transport::body::RequestBody;
use http::Request;
use serde::Serialize;

use super::{Answer, is_csv, ok};
use crate::catalog::documents::Document;
use crate::catalog::edits::{bank, bank_added, bank_removed};
use crate::catalog::{ChangeError, Write};
use crate::gateway::Gateway;
use crate::media::bank::{self as banks, Bank, BankEntry};
use crate::media::sniff::{self, MediaKind};
use crate::media::{images, pdq};
use crate::transport::body;
use crate::transport::query::query_param;

/// What a change does.
pub(super) enum Change {
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

pub(super) fn list(gw: &Gateway, scope: &str) -> Answer {
    let bank = Bank::in_force(gw.documents.place(), scope)?;
    let entries = bank.as_deref().map(Bank::entries).unwrap_or_default();
    ok(&entries)
}

/// How large a media upload may be: as large as a fetched file.
fn upload_limit(gw: &Gateway) -> u64 {
    gw.config
        .media
        .max_bytes
        .max(gw.config.server.max_body_bytes.get())
}

pub(super) async fn change(
    gw: &Gateway,
    scope: &str,
    req: Request<RequestBody>,
    change: Change,
) -> Answer {
    Bank::in_force(gw.documents.place(), scope)?;
    let is_csv = is_csv(&req);
    let upload = Upload {
        label: query_param(&req, "label").map(|v| v.into_owned()),
        suggest: query_param(&req, "suggest").map(|v| v.into_owned()),
        note: query_param(&req, "note").map(|v| v.into_owned()),
    };
    let bytes = body::read(req, upload_limit(gw)).await?;
    let write = match change {
        Change::Replace => Write::Replace,
        Change::Add | Change::Remove(_) => Write::Edit,
    };
    let changed = gw
        .documents
        .change(scope, write, move |current: Option<_>| {
            let parsed = |bytes: &[u8]| {
                banks::parse_entries(bytes, is_csv).map_err(|e| ChangeError::Invalid(e.to_string()))
            };
            Ok(match change {
                Change::Replace => (bank(parsed(&bytes)?)?, Vec::new()),
                Change::Add => {
                    let added = match sniff::identify(&bytes) {
                        Some(format) if !is_csv => vec![upload.entry(&bytes, format.kind())?],
                        _ => parsed(&bytes)?,
                    };
                    (bank_added(current, &added)?, added)
                }
                Change::Remove(hash) => (bank_removed(current, &hash)?, Vec::new()),
            })
        })
        .await?;
    let count = changed.doc.len();
    tracing::info!(scope, count, "hash bank stored");
    ok(&Summary {
        count,
        added: changed.extra,
    })
}

/// The query parameters of an upload.
struct Upload {
    label: Option<String>,
    suggest: Option<String>,
    note: Option<String>,
}

impl Upload {
    /// The entry for an uploaded file: its PDQ hash (images) or SHA-256 (audio).
    fn entry(&self, bytes: &[u8], kind: MediaKind) -> Result<BankEntry, ChangeError> {
        let bad = |m: &str| ChangeError::Invalid(m.to_owned());
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
                    .map_err(|e| ChangeError::Invalid(e.to_string()))?;
                match pdq::hash_image(&image) {
                    Some((hash, quality)) if quality >= pdq::MIN_QUALITY => hash.to_hex(),
                    Some((_, quality)) => {
                        return Err(ChangeError::Invalid(format!(
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
            MediaKind::Audio => banks::content_hash(bytes),
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
