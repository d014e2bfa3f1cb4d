//! `POST /wxa/media_check_async` (SPEC §4) and the read-back of a job's verdict.
//!
//! Checks run in this order and the first failure answers: token; empty body; format (JSON
//! types, `version` 2 or absent, the URL: present, at most 2048 bytes, http(s), not a literal
//! address of the deny list) → 47001; `media_type` → 40004; for v2, scene → 40129 and openid →
//! 40003; then the rate limit, the daily quota and (v2) visit freshness. A request without
//! `version` is v1 (SPEC §12): no scene, no openid, and a v1-shaped push. The `trace_id` is
//! answered only once the job is on disk.

use http::Request;
use hyper::body::Incoming;

use super::fields::scene_and_openid;
use super::wire::{self, Int, MediaCheckBody, MediaResultBody, MediaResultReply, Str, TraceReply};
use super::{ApiError, Gateway, Reply, tokens};
use crate::clock::wall_ms;
use crate::jobs::SubmitError;
use crate::jobs::guard::Denied;
use crate::jobs::store::{Job, JobState};
use crate::limits::Metered;
use crate::media::sniff::MediaKind;

/// `media_url` limit, in bytes.
pub const MAX_URL_BYTES: usize = 2048;

pub(super) async fn submit(gw: &Gateway, req: Request<Incoming>) -> Result<Reply, ApiError> {
    let app = tokens::authenticate(gw, &req).await?;
    let body = super::read_body(gw, req).await?;
    let b: MediaCheckBody<'_> = wire::parse_body(&body)?;

    // 47001
    let url_text = match &b.media_url {
        Str::Value(v) => v,
        Str::Absent => return Err(format("field `media_url` is required")),
        Str::Wrong => return Err(format("field `media_url` must be a string")),
    };
    for (field, value) in [
        ("media_type", b.media_type),
        ("scene", b.scene),
        ("version", b.version),
    ] {
        if matches!(value, Int::Wrong | Int::NotInteger) {
            return Err(ApiError::Format(
                format!("field `{field}` must be a number").into(),
            ));
        }
    }
    if b.openid == Str::Wrong {
        return Err(format("field `openid` must be a string"));
    }
    // `2` (or `"2"`) is v2; no version at all is v1 (SPEC §12); anything else is refused.
    let version = match b.version {
        Int::Value(2) => 2,
        Int::Absent => 1,
        _ => {
            return Err(format(
                "field `version` must be 2 (or absent, for the v1 check)",
            ));
        }
    };
    if url_text.len() > MAX_URL_BYTES {
        return Err(ApiError::Format(
            format!("field `media_url` is longer than {MAX_URL_BYTES} bytes").into(),
        ));
    }
    let url = url::Url::parse(url_text).map_err(|e| {
        ApiError::Format(format!("field `media_url` is not a valid URL: {e}").into())
    })?;
    if let Err(denied) = gw.media.fetcher().guard().check_url(&url) {
        let why = match denied {
            Denied::Scheme => "must be an http or https URL".to_string(),
            Denied::NoHost => "has no host".to_string(),
            Denied::Address(..) | Denied::Resolved(_) => format!("is refused: {denied}"),
        };
        return Err(ApiError::Format(format!("field `media_url` {why}").into()));
    }
    // 40004
    let kind = match b.media_type {
        Int::Value(n) => MediaKind::from_wire(n),
        _ => None,
    }
    .ok_or(ApiError::InvalidMediaType)?;
    let (scene, openid) = if version == 2 {
        // 40129, 40003
        let (scene, openid) = scene_and_openid(b.scene, &b.openid)?;
        // 44991, 45009, 61010
        gw.admit(&app, Metered::MediaCheckAsync, Some(openid))
            .await?;
        app.slot
            .risk
            .call(&gw.config.risk, openid, gw.clock.now_secs());
        (scene, openid)
    } else {
        // v1 names no scene and no user: limits and quota, but no visit rule.
        gw.admit(&app, Metered::MediaCheckAsync, None).await?;
        (0, "")
    };

    let trace_id = gw.rid().to_string();
    let job = Job {
        trace_id: trace_id.clone(),
        appid: app.appid().to_owned(),
        openid: openid.to_owned(),
        scene,
        media_url: url.to_string(),
        media_type: kind,
        created_ms: wall_ms(),
        state: JobState::Queued,
        verdict: None,
        attempts: 0,
        next_at_ms: 0,
        last_error: None,
        finished_ms: None,
        version,
    };
    match gw.media.submit(job).await {
        Ok(()) => Ok(Reply::json(&TraceReply {
            errcode: 0,
            errmsg: "ok",
            trace_id: &trace_id,
        })),
        Err(SubmitError::Busy) => Err(ApiError::System),
        Err(SubmitError::Store(e)) => {
            tracing::error!(error = %e, "media job could not be stored");
            Err(ApiError::System)
        }
    }
}

fn format(message: &'static str) -> ApiError {
    ApiError::Format(message.into())
}

/// `POST /wxa/media_check_async/result` body `{"trace_id": ".."}`: the job's state and verdict,
/// for the app that submitted it only (another app's trace_id is answered as unknown).
pub(super) async fn result(gw: &Gateway, req: Request<Incoming>) -> Result<Reply, ApiError> {
    let app = tokens::authenticate(gw, &req).await?;
    let body = super::read_body(gw, req).await?;
    let b: MediaResultBody<'_> = wire::parse_body(&body)?;
    let trace_id = match &b.trace_id {
        Str::Value(v) => v,
        Str::Absent => return Err(format("field `trace_id` is required")),
        Str::Wrong => return Err(format("field `trace_id` must be a string")),
    };
    let job = gw.media.job(trace_id).await.map_err(|e| {
        tracing::error!(error = %e, "media job could not be read");
        ApiError::System
    })?;
    match job {
        Some(job) if job.appid == app.appid() => Ok(Reply::json(&MediaResultReply {
            errcode: 0,
            errmsg: "ok",
            trace_id: &job.trace_id,
            state: job.state.as_str(),
            verdict: job.verdict.as_ref(),
        })),
        _ => Err(ApiError::UnknownTraceId),
    }
}
