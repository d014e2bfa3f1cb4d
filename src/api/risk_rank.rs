//! `POST /wxa/getuserriskrank` (SPEC §10): the user's risk rank, from the operator's lists or
//! the model over what this gateway has observed ([`crate::risk`]).
//!
//! Checks, first failure answers: token; empty body (44002); format (47001: JSON, field types,
//! `appid` matching the token's app, `client_ip` present and an IP address, every string within
//! its bound); scene (40129: 0, 1 or 2); openid (40003); the API's own rate limit and daily
//! quota (44991, 45009); then, unless `is_test` (or limits are off), a visit within the
//! freshness window (61010). A body over [`MAX_BODY_BYTES`] is refused (413) before it is read.

use crate::transport::body::RequestBody;
use http::Request;
use serde::Serialize;
use serde_json::Value;

use super::fields::validate_openid;
use super::{ApiError, Gateway, Reply, tokens};
use crate::limits::Metered;
use crate::risk::Subject;

/// The largest body: every field at its bound fits several times over.
pub const MAX_BODY_BYTES: u64 = 16 << 10;
/// `mobile_no`, in characters: a phone number with its country code and separators.
pub const MAX_MOBILE_CHARS: usize = 32;
/// `email_address`, in characters (RFC 5321's limit on a path).
pub const MAX_EMAIL_CHARS: usize = 254;
/// `extended_info`, in characters.
pub const MAX_EXTENDED_INFO_CHARS: usize = 1024;

#[derive(Serialize)]
struct RankReply {
    errcode: i32,
    errmsg: &'static str,
    risk_rank: u8,
    /// Spelled as the platform spells it.
    unoin_id: u64,
}

fn format(why: &'static str) -> ApiError {
    ApiError::Format(why.into())
}

/// An optional string field: absent or null is `None`; any other type is a format error.
fn opt_str<'a>(
    body: &'a Value,
    field: &'static str,
    why: &'static str,
) -> Result<Option<&'a str>, ApiError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format(why)),
    }
}

/// [`opt_str`], refusing a string of more than `max` characters.
fn bounded_str<'a>(
    body: &'a Value,
    field: &'static str,
    why: &'static str,
    max: usize,
) -> Result<Option<&'a str>, ApiError> {
    let value = opt_str(body, field, why)?;
    if let Some(v) = value
        && v.len() > max
        && v.chars().count() > max
    {
        return Err(ApiError::Format(
            std::format!("field `{field}` is longer than {max} characters").into(),
        ));
    }
    Ok(value)
}

pub(super) async fn handle(gw: &Gateway, req: Request<RequestBody>) -> Result<Reply, ApiError> {
    let app = tokens::authenticate(gw, &req).await?;
    super::announced_length(req.headers(), MAX_BODY_BYTES)?;
    let body = super::read_frames(req.into_body(), MAX_BODY_BYTES).await?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::EmptyBody);
    }
    let b: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::Format(format!("body is not JSON: {e}").into()))?;
    if !b.is_object() {
        return Err(format("body must be a JSON object"));
    }
    let appid = opt_str(&b, "appid", "field `appid` must be a string")?;
    match appid {
        None => return Err(format("field `appid` is required")),
        Some(a) if a != app.appid() => {
            return Err(format("field `appid` is not the access token's app"));
        }
        Some(_) => {}
    }
    let openid = opt_str(&b, "openid", "field `openid` must be a string")?;
    let client_ip = opt_str(&b, "client_ip", "field `client_ip` must be a string")?
        .ok_or(format("field `client_ip` is required"))?;
    if client_ip.trim().parse::<std::net::IpAddr>().is_err() {
        return Err(format("field `client_ip` must be an IP address"));
    }
    let mobile = bounded_str(
        &b,
        "mobile_no",
        "field `mobile_no` must be a string",
        MAX_MOBILE_CHARS,
    )?
    .map(str::trim)
    .filter(|m| !m.is_empty());
    bounded_str(
        &b,
        "email_address",
        "field `email_address` must be a string",
        MAX_EMAIL_CHARS,
    )?;
    bounded_str(
        &b,
        "extended_info",
        "field `extended_info` must be a string",
        MAX_EXTENDED_INFO_CHARS,
    )?;
    let is_test = match b.get("is_test") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(t)) => *t,
        Some(_) => return Err(format("field `is_test` must be true or false")),
    };
    let scene = match b.get("scene") {
        None | Some(Value::Null) => {
            return Err(ApiError::InvalidScene(
                "field `scene` is required (0, 1 or 2)",
            ));
        }
        Some(Value::Number(n)) => match n.as_u64() {
            Some(s @ 0..=2) => s as u8,
            _ => return Err(ApiError::InvalidScene("field `scene` must be 0, 1 or 2")),
        },
        Some(_) => return Err(format("field `scene` must be a number")),
    };
    let openid = openid
        .filter(|o| !o.is_empty())
        .ok_or(ApiError::InvalidOpenid("field `openid` is required"))?;
    validate_openid(openid)?;
    // 44991, 45009: the API's own limits (its visit rule follows, with `is_test`).
    gw.admit(&app, Metered::RiskRank, None).await?;

    let now = gw.clock.now_secs();
    let last_visit = gw
        .visits
        .last_visit(app.appid(), openid)
        .await?
        .filter(|at| now.saturating_sub(*at) < gw.config.limits.visit_ttl.as_secs());
    if last_visit.is_none() && !is_test && gw.config.limits.enforce && gw.checks_visits(&app) {
        return Err(ApiError::VisitExpired);
    }
    let who = Subject {
        openid,
        scene,
        client_ip: Some(client_ip.trim()),
        mobile,
        last_visit,
    };
    // Observed even when a list decides: the model keeps learning about listed users too.
    let signals = app.slot.risk.assess(&gw.config.risk, &who, now);
    let lists = app.slot.risk_lists.load();
    let (rank, source) = match lists.as_deref().and_then(|l| l.matching(&who)) {
        Some(entry) => (entry.rank, "list"),
        None => (signals.rank(), "model"),
    };
    gw.metrics.risk_lookup(scene, rank, source);
    Ok(Reply::json(&RankReply {
        errcode: 0,
        errmsg: "getuserriskrank succ",
        risk_rank: rank,
        unoin_id: gw.rid().number(),
    }))
}
