//! `/admin/apps`: the apps (`GET /admin/apps`), one app (`GET`/`PUT /admin/apps/{appid}`, the
//! same fields as `[[apps]]`), and the figures the console shows: today's quota use
//! (`.../usage`), and this instance's verdicts and refusals over the last hour or day
//! (`GET /admin/usage?span=hour|day`: every app with traffic, busiest first;
//! `GET /admin/usage/{appid}?span=`: one app's, step by step).

use crate::transport::body::RequestBody;
use http::{Request, StatusCode};
use serde::Serialize;

use super::{AdminError, Answer, ok, read_body};
use crate::clock::wall_ms;
use crate::config::RawApp;
use crate::gateway::Gateway;
use crate::limits::Metered;
use crate::transport::query::query_param;
use crate::transport::response::json_response;
use crate::usage::{Span, Totals};

#[derive(Serialize)]
struct AppSummary {
    appid: String,
    has_push_url: bool,
}

/// `GET /admin/apps`: every app, by appid.
pub(super) fn list(gw: &Gateway) -> Answer {
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
    ok(&apps)
}

/// `GET /admin/apps/{appid}`: the app as written (secrets included: only the authenticated
/// admin API shows it).
pub(super) fn get(gw: &Gateway, appid: &str) -> Answer {
    let app = gw
        .apps
        .get(appid)
        .ok_or(AdminError::NotFound("no such app"))?;
    ok(&app.config.to_raw())
}

/// `PUT /admin/apps/{appid}`: creates or replaces the app (201 when created).
pub(super) async fn put(gw: &Gateway, appid: &str, req: Request<RequestBody>) -> Answer {
    let bytes = read_body(gw, req).await?;
    let mut raw: RawApp = serde_json::from_slice(&bytes)
        .map_err(|e| AdminError::BadRequest(format!("invalid app JSON: {e}")))?;
    match raw.appid.as_deref() {
        None => raw.appid = Some(appid.to_owned()),
        Some(a) if a == appid => {}
        Some(_) => {
            return Err(AdminError::BadRequest(
                "the body's appid differs from the path's".into(),
            ));
        }
    }
    let config = raw.clone().validate().map_err(AdminError::InvalidApp)?;
    let (app, existed) = gw.documents.put_app(&raw, config).await?;
    tracing::info!(appid, created = !existed, "app stored");
    let status = if existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok(json_response(status, &app.config.to_raw()))
}

/// The `span` parameter (default `hour`).
fn span(req: &Request<RequestBody>) -> Result<Span, AdminError> {
    match query_param(req, "span") {
        None => Ok(Span::Hour),
        Some(s) => {
            Span::parse(&s).ok_or_else(|| AdminError::BadRequest("span must be hour or day".into()))
        }
    }
}

#[derive(Serialize)]
struct AppsTraffic {
    start_ms: u64,
    apps: Vec<Totals>,
}

/// `GET /admin/usage`: every app's totals over the span.
pub(super) fn traffic(gw: &Gateway, req: &Request<RequestBody>) -> Answer {
    let span = span(req)?;
    // The history is kept by the wall clock.
    let now = wall_ms();
    ok(&AppsTraffic {
        start_ms: span.start_ms(now),
        apps: gw.metrics.usage.totals(span, now),
    })
}

/// `GET /admin/usage/{appid}`: one app's history over the span.
pub(super) fn app_traffic(gw: &Gateway, appid: &str, req: &Request<RequestBody>) -> Answer {
    let span = span(req)?;
    if gw.apps.get(appid).is_none() {
        return Err(AdminError::NotFound("no such app"));
    }
    ok(&gw.metrics.usage.series(appid, span, wall_ms()))
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
    img_sec_check: ApiUsage,
    visit_report: ApiUsage,
    risk_rank: ApiUsage,
    /// Review items not yet decided.
    review_pending: usize,
}

/// `GET /admin/apps/{appid}/usage`: today's quota use and the limits in force.
pub(super) async fn usage(gw: &Gateway, appid: &str) -> Answer {
    let app = gw
        .apps
        .get(appid)
        .ok_or(AdminError::NotFound("no such app"))?;
    let day = gw.quota_day(gw.clock.now_secs());
    let figures = async |api: Metered| -> Result<ApiUsage, AdminError> {
        let used = gw
            .quotas
            .used(&app.slot.records, api, day)
            .await
            .map_err(|e| AdminError::Unavailable(format!("quota store unreachable: {e}")))?;
        let limits = app.limits.api(api);
        Ok(ApiUsage {
            used_today: used,
            daily_limit: u64::from(limits.per_day.get()),
            per_minute: limits.per_minute.get(),
        })
    };
    let msg_sec_check = figures(Metered::MsgSecCheck).await?;
    let media_check_async = figures(Metered::MediaCheckAsync).await?;
    let img_sec_check = figures(Metered::ImgSecCheck).await?;
    let visit_report = figures(Metered::VisitReport).await?;
    let risk_rank = figures(Metered::RiskRank).await?;
    let pending = gw.review.undecided(appid).await?;
    ok(&Usage {
        appid: appid.to_owned(),
        msg_sec_check,
        media_check_async,
        img_sec_check,
        visit_report,
        risk_rank,
        review_pending: usize::try_from(pending).unwrap_or(0),
    })
}
