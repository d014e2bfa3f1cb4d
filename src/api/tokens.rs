//! `/cgi-bin/token`, `/cgi-bin/stable_token`, and token checks for the business APIs (SPEC §2).

use std::sync::Arc;

use http::Request;
use hyper::body::Incoming;
use subtle::ConstantTimeEq;

use super::wire::{self, Bool, StableTokenBody, Str, TokenBody};
use super::{ApiError, Gateway, Reply, query_param};
use crate::state::App;
use crate::token::{self, Claims, TokenError};

/// `GET /cgi-bin/token?grant_type=client_credential&appid=..&secret=..`: always issues a new
/// token; the previous one keeps working for the grace period.
pub(super) async fn token(gw: &Gateway, req: &Request<Incoming>) -> Result<Reply, ApiError> {
    let grant = query_param(req, "grant_type");
    let appid = query_param(req, "appid");
    let secret = query_param(req, "secret");
    let app = credentials(gw, grant.as_deref(), appid.as_deref(), secret.as_deref())?;
    let now = gw.clock.now_ms();
    let epochs = gw.tokens.rotate(&app.slot, now).await?;
    Ok(issue(gw, &app, epochs.current, now))
}

/// `POST /cgi-bin/stable_token`: the current token while it is valid, a new one when it has
/// expired or `force_refresh` is true.
pub(super) async fn stable_token(gw: &Gateway, req: Request<Incoming>) -> Result<Reply, ApiError> {
    let body = gw.read_body(req).await?;
    let b: StableTokenBody<'_> =
        wire::parse_body(&body).map_err(super::msg_sec_check::body_error)?;
    for (field, wrong) in [
        ("grant_type", b.grant_type == Str::Wrong),
        ("appid", b.appid == Str::Wrong),
        ("secret", b.secret == Str::Wrong),
    ] {
        if wrong {
            return Err(ApiError::Format(
                format!("field `{field}` must be a string").into(),
            ));
        }
    }
    let force = match b.force_refresh {
        Bool::Value(v) => v,
        Bool::Absent => false,
        Bool::Wrong => {
            return Err(ApiError::Format(
                "field `force_refresh` must be a boolean".into(),
            ));
        }
    };
    let app = credentials(gw, b.grant_type.value(), b.appid.value(), b.secret.value())?;
    let now = gw.clock.now_ms();
    let ttl_ms = gw.config.tokens.ttl.as_millis() as u64;
    let epochs = if force {
        gw.tokens.rotate(&app.slot, now).await?
    } else {
        gw.tokens.current_or_rotate(&app.slot, now, ttl_ms).await?
    };
    Ok(issue(gw, &app, epochs.current, now))
}

/// Checks the client credentials in the platform's order.
fn credentials(
    gw: &Gateway,
    grant_type: Option<&str>,
    appid: Option<&str>,
    secret: Option<&str>,
) -> Result<Arc<App>, ApiError> {
    if grant_type != Some("client_credential") {
        return Err(ApiError::InvalidGrantType);
    }
    check_secret(gw, appid, secret)
}

/// Checks an appid and its secret: 41002, 41004, 40013, 40125.
pub(super) fn check_secret(
    gw: &Gateway,
    appid: Option<&str>,
    secret: Option<&str>,
) -> Result<Arc<App>, ApiError> {
    let appid = appid
        .filter(|s| !s.is_empty())
        .ok_or(ApiError::MissingAppid)?;
    let secret = secret
        .filter(|s| !s.is_empty())
        .ok_or(ApiError::MissingSecret)?;
    let app = gw.apps.get(appid).ok_or(ApiError::InvalidAppid)?;
    // Constant time in the secret's content; its length is not secret (always 32).
    if bool::from(
        secret
            .as_bytes()
            .ct_eq(app.config.secret.expose().as_bytes()),
    ) {
        Ok(app)
    } else {
        Err(ApiError::InvalidSecret)
    }
}

fn issue(gw: &Gateway, app: &App, issued_ms: u64, now_ms: u64) -> Reply {
    let claims = Claims {
        appid: app.appid().to_owned(),
        issued_ms,
        ttl_secs: u32::try_from(gw.config.tokens.ttl.as_secs()).unwrap_or(u32::MAX),
    };
    let access_token = token::encode(&app.token_key, &claims);
    Reply::json(&TokenBody {
        access_token: &access_token,
        expires_in: claims.expires_ms().saturating_sub(now_ms) / 1000,
    })
}

/// The app a business request's `access_token` belongs to, or the token errcode.
pub(super) async fn authenticate(
    gw: &Gateway,
    req: &Request<Incoming>,
) -> Result<Arc<App>, ApiError> {
    let raw = query_param(req, "access_token").ok_or(TokenError::Missing)?;
    let unverified = token::decode(&raw)?;
    let app = gw
        .apps
        .get(&unverified.claims.appid)
        .ok_or(TokenError::Invalid)?;
    let claims = unverified.verify(&app.token_key)?;
    let epochs = gw.tokens.epochs(&app.slot).await?;
    let grace_ms = gw.config.tokens.grace.as_millis() as u64;
    token::judge(&claims, epochs, gw.clock.now_ms(), grace_ms)?;
    Ok(app)
}
