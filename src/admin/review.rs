//! `/admin/review/*`: the human review queue ([`crate::review`], SPEC §11).
//!
//! - `GET /admin/review/items?appid=&label=&state=pending|claimed|decided|undecided&kind=text|media&reason=review|sample&q=&min_age_secs=&max_age_secs=&offset=&limit=`
//!   lists items oldest first (`limit` default 100, at most 1000; `offset` skips that many
//!   matches, for paging) with the total that matched; the filters combine, and `q` finds text
//!   (any case) in the checked fields, the media URL, the hits, the openid or the id;
//! - `GET /admin/review/items/{id}`;
//! - `GET /admin/review/items/{id}/media`: a media item's file, fetched again by the gateway's
//!   guarded fetcher and served only when it is an image or audio format the gateway reads, so
//!   a reviewer's browser never fetches a submitted URL itself;
//! - `POST /admin/review/items/{id}/claim` and `/release` with `{"reviewer": ".."}`;
//! - `POST /admin/review/items/{id}/decision` with
//!   `{"reviewer", "outcome": "risky"|"pass", "reason", "feedback": bool, "keyword", "label"}`:
//!   the reviewer must hold the item's claim (409 otherwise). With `feedback`, a confirmed-risky
//!   text adds a risky keyword entry to the app's table, a confirmed-pass text an allow entry,
//!   and a confirmed-risky image or audio file its hash to the app's bank; the keyword is the one
//!   given, else the item's first hit. Feedback is applied first: if it is refused (an invalid
//!   entry, a table at its limit) nothing is recorded and the refusal is answered.
//! - `POST /admin/review/bulk` with `{"ids": [..], "action": "claim"|"release"|"risky"|"pass",
//!   "reason", "reviewer"}` (at most 500 ids): each item in turn, a decision claiming the item
//!   first when the caller does not hold it; answers each item's outcome (`ok` or its `error`),
//!   one item's refusal (claimed by another, decided) leaving the others done. No feedback: a
//!   table or bank change is decided one item at a time.
//! - `GET /admin/review/audit?appid=&reviewer=&outcome=&kind=text|media&since_ms=&until_ms=&offset=&limit=`:
//!   decisions, newest first (a JSON array), the count of every match in `X-Total-Count`.

use std::time::Duration;

use crate::transport::body::RequestBody;
use http::{HeaderValue, Method, Request, header};
use serde::{Deserialize, Serialize};

use super::{AdminError, Answer, ok, read_body};
use crate::engine::table::KeywordEntry;
use crate::gateway::Gateway;
use crate::media::bank::BankEntry;
use crate::media::sniff::{Format, MediaKind};
use crate::review::{AuditFilter, Content, Decision, Filter, Item, Outcome, Reason, State};
use crate::transport::query::query_param;
use crate::transport::response::json_response;

/// Longest reviewer name and reason, in characters.
const MAX_NAME_CHARS: usize = 64;
const MAX_REASON_CHARS: usize = 500;
/// Items listed at most per request.
const MAX_LIST: usize = 1000;
/// Items one bulk request acts on at most.
const MAX_BULK: usize = 500;

/// Routes `/admin/review/...` (the segments after `review`).
pub(super) async fn route(
    gw: &Gateway,
    caller: &super::Caller,
    segments: &[&str],
    method: Method,
    req: Request<RequestBody>,
) -> Answer {
    let allow = |allowed: &'static str| Err(AdminError::MethodNotAllowed(allowed));
    match (segments, method) {
        (["items"], Method::GET) => list(gw, &req).await,
        (["items"], _) => allow("GET"),
        (["items", id], Method::GET) => match gw.review.get(id).await? {
            Some(item) => ok(&item),
            None => Err(AdminError::NotFound("no such review item")),
        },
        (["items", _], _) => allow("GET"),
        (["items", id, "media"], Method::GET) => media(gw, id).await,
        (["items", _, "media"], _) => allow("GET"),
        (["bulk"], Method::POST) => bulk(gw, caller, req).await,
        (["bulk"], _) => allow("POST"),
        (["items", id, action @ ("claim" | "release")], Method::POST) => {
            claim(gw, caller, id, action, req).await
        }
        (["items", _, "claim" | "release"], _) => allow("POST"),
        (["items", id, "decision"], Method::POST) => decide(gw, caller, id, req).await,
        (["items", _, "decision"], _) => allow("POST"),
        (["audit"], Method::GET) => audit(gw, &req).await,
        (["audit"], _) => allow("GET"),
        _ => Err(AdminError::NotFound("no such admin route")),
    }
}

/// The `limit` parameter.
fn limit(req: &Request<RequestBody>) -> Result<usize, AdminError> {
    match query_param(req, "limit").map(|l| l.parse::<usize>()) {
        None => Ok(100),
        Some(Ok(l)) if (1..=MAX_LIST).contains(&l) => Ok(l),
        Some(_) => Err(AdminError::BadRequest(format!(
            "limit must be 1 to {MAX_LIST}"
        ))),
    }
}

/// The `offset` parameter.
fn offset(req: &Request<RequestBody>) -> Result<usize, AdminError> {
    match query_param(req, "offset").map(|o| o.parse::<usize>()) {
        None => Ok(0),
        Some(Ok(o)) => Ok(o),
        Some(Err(_)) => Err(AdminError::BadRequest(
            "offset must be a whole number".into(),
        )),
    }
}

#[derive(Serialize)]
struct Listing {
    total: usize,
    items: Vec<Item>,
}

async fn list(gw: &Gateway, req: &Request<RequestBody>) -> Answer {
    let bad = |m: String| AdminError::BadRequest(m);
    let limit = limit(req)?;
    let secs = |name: &str| -> Result<Option<Duration>, AdminError> {
        match query_param(req, name).map(|v| v.parse::<u64>()) {
            None => Ok(None),
            Some(Ok(s)) => Ok(Some(Duration::from_secs(s))),
            Some(Err(_)) => Err(bad(format!("{name} must be a whole number of seconds"))),
        }
    };
    let (min_age, max_age) = (secs("min_age_secs")?, secs("max_age_secs")?);
    let label = match query_param(req, "label").map(|v| v.parse::<u32>()) {
        None => None,
        Some(Ok(l)) => Some(l),
        Some(Err(_)) => return Err(bad("label must be a label code such as 20001".into())),
    };
    let (state, undecided) = match query_param(req, "state").as_deref() {
        None => (None, false),
        Some("undecided") => (None, true),
        Some(s) => match State::parse(s) {
            Some(s) => (Some(s), false),
            None => {
                return Err(bad(
                    "state must be pending, claimed, decided or undecided".into()
                ));
            }
        },
    };
    let media = match query_param(req, "kind").as_deref() {
        None => None,
        Some("text") => Some(false),
        Some("media") => Some(true),
        Some(_) => return Err(bad("kind must be text or media".into())),
    };
    let reason = match query_param(req, "reason").as_deref() {
        None => None,
        Some("review") => Some(Reason::Review),
        Some("sample") => Some(Reason::Sample),
        Some(_) => return Err(bad("reason must be review or sample".into())),
    };
    let text = query_param(req, "q")
        .map(|q| q.trim().to_lowercase())
        .filter(|q| !q.is_empty());
    let filter = Filter {
        appid: query_param(req, "appid").map(|a| a.into_owned()),
        label,
        state,
        undecided,
        min_age,
        max_age,
        text,
        media,
        reason,
        offset: offset(req)?,
        limit,
    };
    let (items, total) = gw.review.list(&filter, gw.clock.now_ms()).await?;
    ok(&Listing { total, items })
}

/// `GET /admin/review/audit`.
async fn audit(gw: &Gateway, req: &Request<RequestBody>) -> Answer {
    let bad = |m: &str| AdminError::BadRequest(m.to_owned());
    let ms = |name: &str| -> Result<Option<u64>, AdminError> {
        match query_param(req, name).map(|v| v.parse::<u64>()) {
            None => Ok(None),
            Some(Ok(t)) => Ok(Some(t)),
            Some(Err(_)) => Err(AdminError::BadRequest(format!(
                "{name} must be a time in Unix milliseconds"
            ))),
        }
    };
    let outcome = match query_param(req, "outcome").as_deref() {
        None => None,
        Some("risky") => Some(Outcome::Risky),
        Some("pass") => Some(Outcome::Pass),
        Some(_) => return Err(bad("outcome must be risky or pass")),
    };
    let kind = match query_param(req, "kind").as_deref() {
        None => None,
        Some(k @ ("text" | "media")) => Some(k.to_owned()),
        Some(_) => return Err(bad("kind must be text or media")),
    };
    let filter = AuditFilter {
        appid: query_param(req, "appid").map(|a| a.into_owned()),
        reviewer: query_param(req, "reviewer")
            .map(|r| r.trim().to_owned())
            .filter(|r| !r.is_empty()),
        outcome,
        kind,
        since_ms: ms("since_ms")?,
        until_ms: ms("until_ms")?,
        offset: offset(req)?,
        limit: limit(req)?,
    };
    let (entries, total) = gw.review.audit(&filter).await?;
    // The body stays the array it has always been; the count of every match rides in a header.
    let mut resp = json_response(http::StatusCode::OK, &entries);
    resp.headers_mut()
        .insert("x-total-count", HeaderValue::from(total));
    Ok(resp)
}

/// `GET /admin/review/items/{id}/media`: the item's file through the guarded fetcher.
async fn media(gw: &Gateway, id: &str) -> Answer {
    let item = gw
        .review
        .get(id)
        .await?
        .ok_or(AdminError::NotFound("no such review item"))?;
    let Content::Media { url, .. } = &item.content else {
        return Err(AdminError::NotFound("a text item has no media file"));
    };
    let bytes =
        gw.media.fetcher().fetch(url).await.map_err(|e| {
            AdminError::BadGateway(format!("the media file could not be fetched: {e}"))
        })?;
    let Some(format) = crate::media::sniff::identify(&bytes) else {
        return Err(AdminError::BadGateway(
            "the file at the item's URL is no longer an image or audio format modgate reads".into(),
        ));
    };
    let mut resp = http::Response::new(http_body_util::Full::new(bytes));
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime(format)));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Opened on its own, the file can run nothing.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    Ok(resp)
}

/// The media type a browser plays or shows `format` as.
fn mime(format: Format) -> &'static str {
    match format {
        Format::Jpeg => "image/jpeg",
        Format::Png => "image/png",
        Format::Bmp => "image/bmp",
        Format::Gif => "image/gif",
        Format::Webp => "image/webp",
        Format::Mp3 => "audio/mpeg",
        Format::Aac => "audio/aac",
        Format::Ac3 => "audio/ac3",
        Format::Wma => "audio/x-ms-wma",
        Format::Flac => "audio/flac",
        Format::Ogg => "audio/ogg",
        Format::Wav => "audio/wav",
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BulkBody {
    ids: Vec<String>,
    action: BulkAction,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    reviewer: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum BulkAction {
    Claim,
    Release,
    Risky,
    Pass,
}

/// What became of one item of a bulk request.
#[derive(Serialize)]
struct BulkOutcome {
    id: String,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Serialize)]
struct BulkAnswer {
    done: usize,
    failed: usize,
    results: Vec<BulkOutcome>,
}

/// `POST /admin/review/bulk`.
async fn bulk(gw: &Gateway, caller: &super::Caller, req: Request<RequestBody>) -> Answer {
    let b: BulkBody = parse(&read_body(gw, req).await?)?;
    let reviewer = reviewer_of(caller, b.reviewer.as_deref())?;
    if b.ids.is_empty() || b.ids.len() > MAX_BULK {
        return Err(AdminError::BadRequest(format!(
            "ids must name 1 to {MAX_BULK} items"
        )));
    }
    if b.reason.chars().count() > MAX_REASON_CHARS {
        return Err(AdminError::BadRequest(format!(
            "reason is longer than {MAX_REASON_CHARS} characters"
        )));
    }
    let mut results = Vec::with_capacity(b.ids.len());
    for id in b.ids {
        let done = one_of_bulk(gw, &id, &reviewer, b.action, &b.reason).await;
        results.push(BulkOutcome {
            id,
            ok: done.is_ok(),
            error: done.err().map(|e| e.to_string()),
        });
    }
    let done = results.iter().filter(|r| r.ok).count();
    ok(&BulkAnswer {
        done,
        failed: results.len() - done,
        results,
    })
}

/// One item of a bulk request.
async fn one_of_bulk(
    gw: &Gateway,
    id: &str,
    reviewer: &str,
    action: BulkAction,
    reason: &str,
) -> Result<(), AdminError> {
    let now = gw.clock.now_ms();
    let outcome = match action {
        BulkAction::Claim => return Ok(gw.review.claim(id, reviewer, now).await.map(drop)?),
        BulkAction::Release => return Ok(gw.review.release(id, reviewer, now).await.map(drop)?),
        BulkAction::Risky => Outcome::Risky,
        BulkAction::Pass => Outcome::Pass,
    };
    if gw.review.may_decide(id, reviewer, now).await.is_err() {
        // Not held: claim it (refused when another holds it or it is decided).
        gw.review.claim(id, reviewer, now).await?;
    }
    let decision = Decision {
        outcome,
        reviewer: reviewer.to_owned(),
        reason: reason.to_owned(),
        decided_ms: now,
        feedback: None,
    };
    gw.review.decide(id, decision, now).await?;
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClaimBody {
    /// Required with the shared token; with a named token the token's name is the reviewer.
    #[serde(default)]
    reviewer: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionBody {
    #[serde(default)]
    reviewer: Option<String>,
    outcome: Outcome,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    feedback: bool,
    #[serde(default)]
    keyword: Option<String>,
    #[serde(default)]
    label: Option<u32>,
}

/// Who reviews: a named token's holder (whatever the body says), else the body's `reviewer`.
fn reviewer_of(caller: &super::Caller, named: Option<&str>) -> Result<String, AdminError> {
    if let Some(name) = &caller.name {
        return Ok(name.clone());
    }
    let name = named.unwrap_or("");
    reviewer_ok(name)?;
    Ok(name.trim().to_owned())
}

/// A reviewer's name, checked.
fn reviewer_ok(name: &str) -> Result<(), AdminError> {
    let n = name.trim().chars().count();
    if n == 0 || n > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(AdminError::BadRequest(format!(
            "reviewer must be 1 to {MAX_NAME_CHARS} characters, without control characters"
        )));
    }
    Ok(())
}

fn parse<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, AdminError> {
    serde_json::from_slice(bytes).map_err(|e| AdminError::BadRequest(format!("invalid body: {e}")))
}

async fn claim(
    gw: &Gateway,
    caller: &super::Caller,
    id: &str,
    action: &str,
    req: Request<RequestBody>,
) -> Answer {
    let b: ClaimBody = parse(&read_body(gw, req).await?)?;
    let reviewer = reviewer_of(caller, b.reviewer.as_deref())?;
    let now = gw.clock.now_ms();
    let item = if action == "claim" {
        gw.review.claim(id, &reviewer, now).await?
    } else {
        gw.review.release(id, &reviewer, now).await?
    };
    ok(&item)
}

async fn decide(
    gw: &Gateway,
    caller: &super::Caller,
    id: &str,
    req: Request<RequestBody>,
) -> Answer {
    let b: DecisionBody = parse(&read_body(gw, req).await?)?;
    let reviewer = reviewer_of(caller, b.reviewer.as_deref())?;
    if b.feedback && caller.role == crate::config::Role::Reviewer {
        return Err(AdminError::Forbidden(
            "feedback changes an app's keyword table or hash bank: it needs an admin token",
        ));
    }
    if b.reason.chars().count() > MAX_REASON_CHARS {
        return Err(AdminError::BadRequest(format!(
            "reason is longer than {MAX_REASON_CHARS} characters"
        )));
    }
    let now = gw.clock.now_ms();
    let item = gw.review.may_decide(id, &reviewer, now).await?;
    let feedback = if b.feedback {
        Some(feed_back(gw, &item, &b).await?)
    } else {
        None
    };
    let decision = Decision {
        outcome: b.outcome,
        reviewer,
        reason: b.reason,
        decided_ms: now,
        feedback,
    };
    ok(&gw.review.decide(id, decision, now).await?)
}

/// Applies a decision's feedback to the app's keyword table or hash bank; returns what it
/// added.
async fn feed_back(gw: &Gateway, item: &Item, b: &DecisionBody) -> Result<String, AdminError> {
    let bad = |m: &str| AdminError::BadRequest(m.to_owned());
    if gw.apps.get(&item.appid).is_none() {
        return Err(AdminError::NotFound("the item's app no longer exists"));
    }
    let confirmed_label = || {
        b.label
            .unwrap_or(if item.label == 100 { 21000 } else { item.label })
    };
    match &item.content {
        Content::Text { .. } => {
            let keyword = b
                .keyword
                .as_deref()
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .or_else(|| item.hits.first().map(String::as_str));
            let Some(keyword) = keyword else {
                return Err(bad(
                    "nothing hit in this text: name the keyword to feed back (\"keyword\")",
                ));
            };
            let (label, level, suggest) = match b.outcome {
                Outcome::Risky => (confirmed_label(), 90, "risky"),
                Outcome::Pass => (100, 0, "pass"),
            };
            let entry = KeywordEntry {
                keyword: keyword.to_owned(),
                label,
                level,
                suggest: suggest.to_owned(),
            };
            gw.documents.add_keywords(&item.appid, vec![entry]).await?;
            Ok(format!(
                "keyword {keyword:?} added as {}",
                if b.outcome == Outcome::Risky {
                    "risky"
                } else {
                    "allowed"
                }
            ))
        }
        Content::Media {
            media_type, hash, ..
        } => {
            if b.outcome == Outcome::Pass {
                return Err(bad(
                    "feedback is for confirmed-risky media (its hash joins the app's bank); decide without it",
                ));
            }
            let Some(hash) = hash else {
                return Err(bad(
                    "the file could not be hashed, so it cannot join the bank",
                ));
            };
            let kind = match media_type.as_str() {
                "image" => MediaKind::Image,
                "audio" => MediaKind::Audio,
                _ => return Err(bad("the item's media type is neither image nor audio")),
            };
            let entry = BankEntry {
                hash: hash.clone(),
                kind,
                label: confirmed_label(),
                suggest: "risky".into(),
                note: Some(format!("review {}", item.id)),
            };
            gw.documents
                .add_bank_entries(&item.appid, vec![entry])
                .await?;
            Ok(format!(
                "{media_type} hash {hash} added to the bank as risky"
            ))
        }
    }
}
