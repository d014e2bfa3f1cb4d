//! `POST /wxa/media_check_async` (SPEC §4) and the read-back of a job's verdict.
//!
//! Checks run in this order and the first failure answers: token; empty body; format (JSON
//! types, `version` 2 or absent, the URL: present, at most 2048 bytes, http(s), not a literal
//! address of the deny list) → 47001; `media_type` → 40004; for v2, scene → 40129 and openid →
//! 40003; then the rate limit, the daily quota and (v2) visit freshness. A request without
//! `version` is v1 (SPEC §12): no scene, no openid, and a v1-shaped push. The `trace_id` is
//! answered only once the job is on disk.
//!
//! From admission on, a submission runs as a task of its own ([`accept`]): the quota it counts
//! and the job it writes are both kept, or the quota is given back, whatever the client does
//! meanwhile (a client that disconnects cannot leave a job written but never scheduled, or a
//! count without a job). A job the queue has no room for consumes no quota.

use std::sync::Arc;

use crate::transport::body::RequestBody;
use http::Request;

use super::fields::scene_and_openid;
use super::wire::{self, Int, MediaCheckBody, MediaResultBody, MediaResultReply, Str, TraceReply};
use super::{ApiError, Gateway, Reply, tokens};
use crate::clock::wall_ms;
use crate::jobs::SubmitError;
use crate::jobs::guard::Denied;
use crate::jobs::store::{Job, JobState};
use crate::limits::Metered;
use crate::media::sniff::MediaKind;
use crate::tenants::App;

/// `media_url` limit, in bytes.
pub const MAX_URL_BYTES: usize = 2048;

pub(super) async fn submit(
    shared: &Arc<Gateway>,
    req: Request<RequestBody>,
) -> Result<Reply, ApiError> {
    let gw = &**shared;
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
        scene_and_openid(b.scene, &b.openid)?
    } else {
        // v1 names no scene and no user: limits and quota, but no visit rule.
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
    let gw = Arc::clone(shared);
    tokio::spawn(async move { accept(&gw, &app, job).await })
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "media job acceptance failed");
            ApiError::System
        })??;
    Ok(Reply::json(&TraceReply {
        errcode: 0,
        errmsg: "ok",
        trace_id: &trace_id,
    }))
}

/// Admits a validated job (44991, 45009, and for v2 61010) and queues it; a job the queue
/// refuses gives its quota back.
async fn accept(gw: &Gateway, app: &App, job: Job) -> Result<(), ApiError> {
    let now_ms = gw.clock.now_ms();
    let openid = (job.version == 2).then_some(job.openid.as_str());
    gw.admit_at(app, Metered::MediaCheckAsync, openid, now_ms)
        .await?;
    if let Some(openid) = openid {
        app.slot.risk.call(&gw.config.risk, openid, now_ms / 1000);
    }
    let refused = match gw.media.submit(job).await {
        Ok(()) => return Ok(()),
        Err(SubmitError::Busy) => ApiError::System,
        Err(e @ SubmitError::AppShare(_)) => ApiError::Busy(e.to_string().into()),
        Err(SubmitError::Store(e)) => {
            tracing::error!(error = %e, "media job could not be stored");
            ApiError::System
        }
    };
    if gw.config.limits.enforce {
        let day = gw.quota_day(now_ms / 1000);
        if let Err(e) = gw
            .quotas
            .refund(&app.slot.records, Metered::MediaCheckAsync, day)
            .await
        {
            tracing::warn!(error = %e, "the quota of a refused media job was not given back");
        }
    }
    Err(refused)
}

fn format(message: &'static str) -> ApiError {
    ApiError::Format(message.into())
}

/// `POST /wxa/media_check_async/result` body `{"trace_id": ".."}`: the job's state and verdict,
/// for the app that submitted it only (another app's trace_id is answered as unknown).
pub(super) async fn result(gw: &Gateway, req: Request<RequestBody>) -> Result<Reply, ApiError> {
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
