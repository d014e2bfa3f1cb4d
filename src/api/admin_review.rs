//! `/admin/review/*`: the human review queue ([`crate::review`], SPEC §11), and the per-app
//! figures the console shows (`/admin/apps`, `/admin/apps/{appid}/usage`).
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

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use hyper::body::Incoming;
use serde::{Deserialize, Serialize};

use super::admin_api::{body, error, not_allowed};
use super::error::json_response;
use super::{Gateway, Response, query_param};
use crate::limits::{Metered, calendar};
use crate::review::{Content, Decision, Filter, Item, Outcome, ReviewError, State};

/// Longest reviewer name and reason, in characters.
const MAX_NAME_CHARS: usize = 64;
const MAX_REASON_CHARS: usize = 500;
/// Items listed at most per request.
const MAX_LIST: usize = 1000;

/// Routes `/admin/review/...` (the segments after `review`).
pub(super) async fn route(
    gw: &Gateway,
    segments: &[&str],
    method: Method,
    req: Request<Incoming>,
) -> Response {
    match segments {
        ["items"] => match method {
            Method::GET => list(gw, &req).await,
            _ => not_allowed("GET"),
        },
        ["items", id] => match method {
            Method::GET => match gw.review.get(id).await {
                Ok(Some(item)) => json_response(StatusCode::OK, &item),
                Ok(None) => error(StatusCode::NOT_FOUND, "no such review item"),
                Err(e) => refused(e),
            },
            _ => not_allowed("GET"),
        },
        ["items", id, action @ ("claim" | "release")] => match method {
            Method::POST => claim(gw, id, action, req).await,
            _ => not_allowed("POST"),
        },
        ["items", id, "decision"] => match method {
            Method::POST => decide(gw, id, req).await,
            _ => not_allowed("POST"),
        },
        ["audit"] => match method {
            Method::GET => {
                let limit = match limit(&req) {
                    Ok(l) => l,
                    Err(m) => return error(StatusCode::BAD_REQUEST, &m),
                };
                let appid = query_param(&req, "appid");
                match gw.review.audit(appid.as_deref(), limit).await {
                    Ok(entries) => json_response(StatusCode::OK, &entries),
                    Err(e) => refused(e),
                }
            }
            _ => not_allowed("GET"),
        },
        _ => error(StatusCode::NOT_FOUND, "no such admin route"),
    }
}

/// The `limit` parameter, or what is wrong with it.
fn limit(req: &Request<Incoming>) -> Result<usize, String> {
    match query_param(req, "limit").map(|l| l.parse::<usize>()) {
        None => Ok(100),
        Some(Ok(l)) if (1..=MAX_LIST).contains(&l) => Ok(l),
        Some(_) => Err(format!("limit must be 1 to {MAX_LIST}")),
    }
}

#[derive(Serialize)]
struct Listing {
    total: usize,
    items: Vec<Item>,
}

async fn list(gw: &Gateway, req: &Request<Incoming>) -> Response {
    let bad = |m: &str| error(StatusCode::BAD_REQUEST, m);
    let limit = match limit(req) {
        Ok(l) => l,
        Err(m) => return bad(&m),
    };
    let secs = |name: &str| -> Result<Option<Duration>, String> {
        match query_param(req, name).map(|v| v.parse::<u64>()) {
            None => Ok(None),
            Some(Ok(s)) => Ok(Some(Duration::from_secs(s))),
            Some(Err(_)) => Err(format!("{name} must be a whole number of seconds")),
        }
    };
    let (min_age, max_age) = match (secs("min_age_secs"), secs("max_age_secs")) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(m), _) | (_, Err(m)) => return bad(&m),
    };
    let label = match query_param(req, "label").map(|v| v.parse::<u32>()) {
        None => None,
        Some(Ok(l)) => Some(l),
        Some(Err(_)) => return bad("label must be a label code such as 20001"),
    };
    let (state, undecided) = match query_param(req, "state").as_deref() {
        None => (None, false),
        Some("undecided") => (None, true),
        Some(s) => match State::parse(s) {
            Some(s) => (Some(s), false),
            None => return bad("state must be pending, claimed, decided or undecided"),
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
    match gw.review.list(&filter, gw.clock.now_ms()).await {
        Ok((items, total)) => json_response(StatusCode::OK, &Listing { total, items }),
        Err(e) => refused(e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClaimBody {
    reviewer: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionBody {
    reviewer: String,
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

/// What is wrong with a reviewer's name, if anything.
fn reviewer_ok(name: &str) -> Result<(), String> {
    let n = name.trim().chars().count();
    if n == 0 || n > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(format!(
            "reviewer must be 1 to {MAX_NAME_CHARS} characters, without control characters"
        ));
    }
    Ok(())
}

fn parse<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, String> {
    serde_json::from_slice(bytes).map_err(|e| format!("invalid body: {e}"))
}

fn refused(e: ReviewError) -> Response {
    let status = match e {
        ReviewError::NotFound => StatusCode::NOT_FOUND,
        ReviewError::ClaimedByOther(_) | ReviewError::Decided(_) | ReviewError::NotClaimed => {
            StatusCode::CONFLICT
        }
        ReviewError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
    };
    error(status, &e.to_string())
}

async fn claim(gw: &Gateway, id: &str, action: &str, req: Request<Incoming>) -> Response {
    let bytes = match body(gw, req).await {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    let b: ClaimBody = match parse(&bytes) {
        Ok(b) => b,
        Err(m) => return error(StatusCode::BAD_REQUEST, &m),
    };
    if let Err(m) = reviewer_ok(&b.reviewer) {
        return error(StatusCode::BAD_REQUEST, &m);
    }
    let now = gw.clock.now_ms();
    let done = if action == "claim" {
        gw.review.claim(id, b.reviewer.trim(), now).await
    } else {
        gw.review.release(id, b.reviewer.trim(), now).await
    };
    match done {
        Ok(item) => json_response(StatusCode::OK, &item),
        Err(e) => refused(e),
    }
}

async fn decide(gw: &Gateway, id: &str, req: Request<Incoming>) -> Response {
    let bytes = match body(gw, req).await {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    let b: DecisionBody = match parse(&bytes) {
        Ok(b) => b,
        Err(m) => return error(StatusCode::BAD_REQUEST, &m),
    };
    if let Err(m) = reviewer_ok(&b.reviewer) {
        return error(StatusCode::BAD_REQUEST, &m);
    }
    if b.reason.chars().count() > MAX_REASON_CHARS {
        return error(
            StatusCode::BAD_REQUEST,
            &format!("reason is longer than {MAX_REASON_CHARS} characters"),
        );
    }
    let reviewer = b.reviewer.trim().to_owned();
    let now = gw.clock.now_ms();
    let item = match gw.review.may_decide(id, &reviewer, now).await {
        Ok(item) => item,
        Err(e) => return refused(e),
    };
    let feedback = if b.feedback {
        match feed_back(gw, &item, &b).await {
            Ok(done) => Some(done),
            Err(resp) => return *resp,
        }
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
    match gw.review.decide(id, decision, now).await {
        Ok(item) => json_response(StatusCode::OK, &item),
        Err(e) => refused(e),
    }
}

#[derive(Serialize)]
struct KeywordFeedback<'a> {
    keyword: &'a str,
    label: u32,
    level: u8,
    suggest: &'a str,
}

#[derive(Serialize)]
struct BankFeedback<'a> {
    hash: &'a str,
    kind: &'a str,
    label: u32,
    suggest: &'a str,
    note: String,
}

/// Applies a decision's feedback; returns what it added, or the refusal to answer.
async fn feed_back(gw: &Gateway, item: &Item, b: &DecisionBody) -> Result<String, Box<Response>> {
    let bad = |m: &str| Box::new(error(StatusCode::BAD_REQUEST, m));
    let Some(app) = gw.apps.get(&item.appid) else {
        return Err(Box::new(error(
            StatusCode::NOT_FOUND,
            "the item's app no longer exists",
        )));
    };
    let answered = |resp: Response| {
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(Box::new(resp))
        }
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
            let entry = match b.outcome {
                Outcome::Risky => KeywordFeedback {
                    keyword,
                    label: b
                        .label
                        .unwrap_or(if item.label == 100 { 21000 } else { item.label }),
                    level: 90,
                    suggest: "risky",
                },
                Outcome::Pass => KeywordFeedback {
                    keyword,
                    label: 100,
                    level: 0,
                    suggest: "pass",
                },
            };
            let json = serde_json::to_vec(&[entry]).unwrap_or_default();
            answered(super::admin_api::add_keywords(gw, &app, Bytes::from(json)).await)?;
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
            let label = b
                .label
                .unwrap_or(if item.label == 100 { 21000 } else { item.label });
            let entry = BankFeedback {
                hash,
                kind: media_type,
                label,
                suggest: "risky",
                note: format!("review {}", item.id),
            };
            let json = serde_json::to_vec(&[entry]).unwrap_or_default();
            answered(super::admin_banks::add_entries(gw, &item.appid, Bytes::from(json)).await)?;
            Ok(format!(
                "{media_type} hash {hash} added to the bank as risky"
            ))
        }
    }
}

#[derive(Serialize)]
struct AppSummary {
    appid: String,
    has_push_url: bool,
}

/// `GET /admin/apps`: every app, by appid.
pub(super) fn list_apps(gw: &Gateway) -> Response {
    let mut apps: Vec<AppSummary> = gw
        .apps
        .all()
        .into_iter()
        .map(|a| AppSummary {
            appid: a.appid().to_owned(),
            has_push_url: a.config.push_url.is_some(),
        })
        .collect();
    apps.sort_by(|a, b| a.appid.cmp(&b.appid));
    json_response(StatusCode::OK, &apps)
}

#[derive(Serialize)]
struct ApiUsage {
    used_today: u64,
    daily_limit: u64,
    per_minute: u32,
}

#[derive(Serialize)]
struct Usage {
    appid: String,
    msg_sec_check: ApiUsage,
    media_check_async: ApiUsage,
    /// Review items not yet decided.
    review_pending: usize,
}

/// `GET /admin/apps/{appid}/usage`: today's quota use and the limits in force.
pub(super) async fn usage(gw: &Gateway, appid: &str) -> Response {
    let Some(app) = gw.apps.get(appid) else {
        return error(StatusCode::NOT_FOUND, "no such app");
    };
    let day = calendar::day_number(gw.clock.now_secs(), gw.config.limits.day_offset_hours);
    let figures = async |api: Metered| -> Result<ApiUsage, Response> {
        let used = gw
            .quotas
            .used(&app.slot.records, api, day)
            .await
            .map_err(|e| {
                error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &format!("quota store unreachable: {e}"),
                )
            })?;
        let limits = app.limits.api(api);
        Ok(ApiUsage {
            used_today: used,
            daily_limit: u64::from(limits.per_day.get()),
            per_minute: limits.per_minute.get(),
        })
    };
    let text = match figures(Metered::MsgSecCheck).await {
        Ok(f) => f,
        Err(resp) => return resp,
    };
    let media = match figures(Metered::MediaCheckAsync).await {
        Ok(f) => f,
        Err(resp) => return resp,
    };
    let pending = match gw.review.undecided(appid).await {
        Ok(n) => usize::try_from(n).unwrap_or(0),
        Err(e) => return refused(e),
    };
    json_response(
        StatusCode::OK,
        &Usage {
            appid: appid.to_owned(),
            msg_sec_check: text,
            media_check_async: media,
            review_pending: pending,
        },
    )
}
