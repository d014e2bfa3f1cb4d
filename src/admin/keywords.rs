//! `/admin/apps/{appid}/keywords`: an app's custom keyword table (SPEC §9).
//!
//! - `GET` lists it (`?format=csv` for CSV);
//! - `PUT` replaces it and `POST` adds entries (JSON array, or CSV when the Content-Type says so
//!   or the body does not start like JSON); an added keyword replaces an entry with the same
//!   keyword;
//! - `DELETE .../keywords/{keyword}` removes one.

use std::time::Instant;

use crate::transport::body::RequestBody;
use http::Request;
use serde::Serialize;

use super::{AdminError, Answer, csv, is_csv, ok, read_body};
use crate::catalog::edits::{keyword_removed, keywords, keywords_added};
use crate::catalog::{ChangeError, Write};
use crate::engine::table::{self, KeywordEntry, TableError, ValidTable};
use crate::gateway::Gateway;
use crate::transport::query::query_param;

/// What a change does.
pub(super) enum Change {
    Replace,
    Add,
    Remove(String),
}

#[derive(Serialize)]
struct TableSummary {
    count: usize,
}

pub(super) fn list(gw: &Gateway, appid: &str, req: &Request<RequestBody>) -> Answer {
    let app = gw
        .apps
        .get(appid)
        .ok_or(AdminError::NotFound("no such app"))?;
    let entries = app.slot.table().map(|t| t.entries()).unwrap_or_default();
    if query_param(req, "format").as_deref() == Some("csv") {
        return Ok(csv(table::to_csv(&entries)));
    }
    ok(&entries)
}

/// Parses a CSV or JSON body of entries: CSV when the Content-Type says so or the body does not
/// start like JSON.
fn parse_entries(is_csv: bool, bytes: &[u8]) -> Result<Vec<KeywordEntry>, TableError> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace()).copied();
    if is_csv || !matches!(first, Some(b'[') | Some(b'{')) {
        table::parse_csv(bytes)
    } else {
        table::parse_json(bytes)
    }
}

pub(super) async fn change(
    gw: &Gateway,
    appid: &str,
    req: Request<RequestBody>,
    change: Change,
) -> Answer {
    let received = Instant::now();
    if gw.apps.get(appid).is_none() {
        return Err(AdminError::NotFound("no such app"));
    }
    let is_csv = is_csv(&req);
    let bytes = read_body(gw, req).await?;
    let read_ms = received.elapsed().as_secs_f64() * 1e3;
    let write = match change {
        Change::Replace => Write::Replace,
        Change::Add | Change::Remove(_) => Write::Edit,
    };
    // Parse, merge and validate on the blocking pool, then compile while the validated entries
    // are written: all of it is CPU or disk work, off the async workers.
    let changed = gw
        .documents
        .change(appid, write, move |current: Option<_>| {
            let parsed =
                || parse_entries(is_csv, &bytes).map_err(|e| ChangeError::Invalid(e.to_string()));
            let valid: ValidTable = match change {
                Change::Replace => keywords(parsed()?)?,
                Change::Add => keywords_added(current, parsed()?)?,
                Change::Remove(keyword) => keyword_removed(current, &keyword)?,
            };
            Ok((valid, ()))
        })
        .await?;
    let count = changed.doc.len();
    // From the request's arrival (body read included) to the new table in force; the other
    // figures count from the start of the blocking task.
    let total_ms = received.elapsed().as_secs_f64() * 1e3;
    tracing::info!(
        appid,
        count,
        read_ms,
        queued_ms = changed.queued_ms,
        built_ms = changed.built_ms,
        write_ms = changed.write_ms,
        total_ms,
        "keyword table stored"
    );
    ok(&TableSummary { count })
}
