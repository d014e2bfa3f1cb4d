//! `/admin/review/*`: the human review queue ([`crate::review`], SPEC §11).
//!
//! - `GET /admin/review/items?appid=&label=&state=pending|claimed|decided|undecided&min_age_secs=&max_age_secs=&limit=`
//!   lists items oldest first (`limit` default 100, at most 1000) with the total that matched;
//! - `GET /admin/review/items/{id}`;
//! - `POST /admin/review/items/{id}/claim` and `/release` with `{"reviewer": ".."}`;
//! - `POST /admin/review/items/{id}/decision` with
//!   `{"reviewer", "outcome": "risky"|"pass", "reason", "feedback": bool, "keyword", "label"}`:
//!   the reviewer must hold the item's claim (409 otherwise). With `feedback`, a confirmed-risky
//!   text adds a risky keyword entry to the app's table, a confirmed-pass text an allow entry,
//!   and a confirmed-risky image or audio file its hash to the app's bank; the keyword is the one
//!   given, else the item's first hit. Feedback is applied first: if it is refused (an invalid
//!   entry, a table at its limit) nothing is recorded and the refusal is answered.
//! - `GET /admin/review/audit?appid=&limit=`: decisions, newest first.

use std::time::Duration;

use crate::transport::body::RequestBody;
use http::{Method, Request};
use serde::{Deserialize, Serialize};

use super::{AdminError, Answer, ok, read_body};
use crate::engine::table::KeywordEntry;
use crate::gateway::Gateway;
use crate::media::bank::BankEntry;
use crate::media::sniff::MediaKind;
use crate::review::{Content, Decision, Filter, Item, Outcome, State};
use crate::transport::query::query_param;

/// Longest reviewer name and reason, in characters.
const MAX_NAME_CHARS: usize = 64;
const MAX_REASON_CHARS: usize = 500;
/// Items listed at most per request.
const MAX_LIST: usize = 1000;

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
        (["items", id, action @ ("claim" | "release")], Method::POST) => {
            claim(gw, caller, id, action, req).await
        }
        (["items", _, "claim" | "release"], _) => allow("POST"),
        (["items", id, "decision"], Method::POST) => decide(gw, caller, id, req).await,
        (["items", _, "decision"], _) => allow("POST"),
        (["audit"], Method::GET) => {
            let limit = limit(&req)?;
            let appid = query_param(&req, "appid");
            ok(&gw.review.audit(appid.as_deref(), limit).await?)
        }
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
    let filter = Filter {
        appid: query_param(req, "appid").map(|a| a.into_owned()),
        label,
        state,
        undecided,
        min_age,
        max_age,
        limit,
    };
    let (items, total) = gw.review.list(&filter, gw.clock.now_ms()).await?;
    ok(&Listing { total, items })
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
