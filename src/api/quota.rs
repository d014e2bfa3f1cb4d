//! `quota/get`, `clear_quota` and `clear_quota/v2` (SPEC §5).

use crate::transport::body::RequestBody;
use http::Request;

use super::wire::{
    self, ClearQuotaBody, ErrorBody, QuotaFigures, QuotaGetBody, QuotaReply, RateFigures, Str,
};
use super::{ApiError, Gateway, Reply, query_param, tokens};
use crate::limits::{Metered, calendar};
use crate::state::ResetDecision;
use crate::tenants::App;

fn field<'a>(name: &'static str, value: &'a Str<'_>) -> Result<Option<&'a str>, ApiError> {
    match value {
        Str::Wrong => Err(ApiError::Format(
            format!("field `{name}` must be a string").into(),
        )),
        other => Ok(other.value()),
    }
}

/// `POST /cgi-bin/openapi/quota/get` `{"cgi_path": "/wxa/msg_sec_check"}`.
pub(super) async fn get(gw: &Gateway, req: Request<RequestBody>) -> Result<Reply, ApiError> {
    let app = tokens::authenticate(gw, &req).await?;
    let body = super::read_body(gw, req).await?;
    let b: QuotaGetBody<'_> = wire::parse_body(&body)?;
    let path = field("cgi_path", &b.cgi_path)?
        .ok_or(ApiError::Format("field `cgi_path` is required".into()))?;
    let api = Metered::from_cgi_path(path).ok_or(ApiError::UnknownCgiPath)?;
    let day = gw.quota_day(gw.clock.now_secs());
    let used = gw.quotas.used(&app.slot.records, api, day).await?;
    let limits = app.limits.api(api);
    let daily_limit = u64::from(limits.per_day.get());
    Ok(Reply::json(&QuotaReply {
        errcode: 0,
        errmsg: "ok",
        quota: QuotaFigures {
            daily_limit,
            used,
            remain: daily_limit.saturating_sub(used),
        },
        rate_limit: RateFigures {
            call_count: limits.per_minute.get(),
            refresh_second: 60,
        },
    }))
}

/// `POST /cgi-bin/clear_quota?access_token=..` `{"appid": ..}`: the token's own app only.
pub(super) async fn clear(gw: &Gateway, req: Request<RequestBody>) -> Result<Reply, ApiError> {
    let app = tokens::authenticate(gw, &req).await?;
    let body = super::read_body(gw, req).await?;
    let b: ClearQuotaBody<'_> = wire::parse_body(&body)?;
    let appid = field("appid", &b.appid)?.ok_or(ApiError::MissingAppid)?;
    if appid != app.appid() {
        return Err(ApiError::InvalidAppid);
    }
    reset(gw, &app).await
}

/// `POST /cgi-bin/clear_quota/v2` with `appid` and `appsecret` as query parameters or in the
/// body; no token.
pub(super) async fn clear_v2(gw: &Gateway, req: Request<RequestBody>) -> Result<Reply, ApiError> {
    let q_appid = query_param(&req, "appid").map(|v| v.into_owned());
    let q_secret = query_param(&req, "appsecret").map(|v| v.into_owned());
    if let (Some(appid), Some(secret)) = (&q_appid, &q_secret)
        && !appid.is_empty()
        && !secret.is_empty()
    {
        // Credentials in the query are judged before a byte of the body is read (the body
        // could only repeat them): a client without them cannot hold a connection with one.
        let app = tokens::check_secret(gw, Some(appid), Some(secret))?;
        return reset(gw, &app).await;
    }
    let body = super::read_body(gw, req).await?;
    let b: ClearQuotaBody<'_> = if body.iter().all(u8::is_ascii_whitespace) {
        ClearQuotaBody::default()
    } else {
        wire::parse_body(&body)?
    };
    let appid = q_appid
        .as_deref()
        .filter(|s| !s.is_empty())
        .or(field("appid", &b.appid)?);
    let secret = q_secret
        .as_deref()
        .filter(|s| !s.is_empty())
        .or(field("appsecret", &b.appsecret)?);
    let app = tokens::check_secret(gw, appid, secret)?;
    reset(gw, &app).await
}

async fn reset(gw: &Gateway, app: &App) -> Result<Reply, ApiError> {
    let limits = &gw.config.limits;
    let day = gw.quota_day(gw.clock.now_secs());
    let month = calendar::month_number(day);
    match gw
        .quotas
        .reset(&app.slot.records, day, month, limits.resets_per_month)
        .await?
    {
        ResetDecision::Reset { remaining } => {
            tracing::info!(appid = app.appid(), remaining, "daily quota cleared");
            Ok(Reply::json(&ErrorBody {
                errcode: 0,
                errmsg: "ok",
            }))
        }
        ResetDecision::AllowanceSpent => Err(ApiError::ResetsExhausted),
    }
}
