//! `/cgi-bin/token`, `/cgi-bin/stable_token`, and token checks for the business APIs (SPEC §2).

use std::sync::Arc;

use crate::transport::body::RequestBody;
use http::Request;
use subtle::ConstantTimeEq;

use super::wire::{self, Bool, StableTokenBody, Str, TokenBody};
use super::{ApiError, Gateway, Reply, query_param};
use crate::tenants::App;
use crate::token::{self, Claims, ForceRefused, ForceRules, Lineage, Times, TokenError};

/// How long before its end a stable token is replaced by a new one (SPEC §12): a caller always
/// gets at least this long, and old and new both work meanwhile. Half the lifetime when that is
/// shorter (a test configuration's short tokens).
const STABLE_REFRESH_WINDOW_MS: u64 = 300_000;

/// `GET /cgi-bin/token?grant_type=client_credential&appid=..&secret=..`: always issues a new
/// token; the previous one keeps working for the grace period. Stable tokens are not touched.
pub(super) async fn token(gw: &Gateway, req: &Request<RequestBody>) -> Result<Reply, ApiError> {
    let grant = query_param(req, "grant_type");
    let appid = query_param(req, "appid");
    let secret = query_param(req, "secret");
    let app = credentials(gw, grant.as_deref(), appid.as_deref(), secret.as_deref())?;
    let now = gw.clock.now_ms();
    let epochs = gw
        .tokens
        .rotate(&app.slot.records, Lineage::Token, now)
        .await?;
    Ok(issue(gw, &app, Lineage::Token, epochs.current, now))
}

/// `POST /cgi-bin/stable_token`: the current stable token while more than
/// [`STABLE_REFRESH_WINDOW_MS`] of it remain, else a new one. `force_refresh: true` retires the
/// current one at once, at most [`ForceRules::PER_DAY`] times a day (then 45009) and never
/// within [`ForceRules::MIN_GAP_MS`] of the last (45011). `/cgi-bin/token`'s tokens are not
/// touched.
pub(super) async fn stable_token(
    gw: &Gateway,
    req: Request<RequestBody>,
) -> Result<Reply, ApiError> {
    let body = super::read_body(gw, req).await?;
    let b: StableTokenBody<'_> = wire::parse_body(&body)?;
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
    let records = &app.slot.records;
    let epochs = if force {
        let rules = ForceRules {
            day: gw.quota_day(now / 1000),
            per_day: ForceRules::PER_DAY,
            min_gap_ms: ForceRules::MIN_GAP_MS,
        };
        gw.tokens
            .force_stable(records, now, rules)
            .await?
            .map_err(|refused| match refused {
                ForceRefused::DailyLimit => ApiError::QuotaExceeded,
                ForceRefused::TooSoon => ApiError::TooFrequent,
            })?
    } else {
        let ttl_ms = gw.config.tokens.ttl.as_millis() as u64;
        let fresh_ms = ttl_ms.saturating_sub(STABLE_REFRESH_WINDOW_MS.min(ttl_ms / 2));
        gw.tokens
            .current_or_rotate(records, Lineage::Stable, now, fresh_ms)
            .await?
    };
    Ok(issue(gw, &app, Lineage::Stable, epochs.current, now))
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

fn issue(gw: &Gateway, app: &App, lineage: Lineage, issued_ms: u64, now_ms: u64) -> Reply {
    let claims = Claims {
        appid: app.appid().to_owned(),
        lineage,
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
    req: &Request<RequestBody>,
) -> Result<Arc<App>, ApiError> {
    authenticate_at(gw, req, gw.clock.now_ms()).await
}

/// [`authenticate`] at a time the caller has read (one clock read serves a whole request).
pub(super) async fn authenticate_at(
    gw: &Gateway,
    req: &Request<RequestBody>,
    now_ms: u64,
) -> Result<Arc<App>, ApiError> {
    let signed = signed_app(gw, req.uri())?;
    current(gw, signed, now_ms).await
}

/// A business request's token, as far as it can be judged without a state backend.
pub(super) enum Signed {
    /// Well formed and signed by this app's key.
    Ours(Arc<App>, Times),
    /// Not one of ours, in pass-through mode: perhaps the platform's ([`platform_app`]).
    Platform(String),
}

/// A business request's token from `uri`, when it is well formed and signed by its app's key
/// (or, in pass-through mode, any token, which may be the platform's): everything about a token
/// that needs no state backend.
pub(super) fn signed_app(gw: &Gateway, uri: &http::Uri) -> Result<Signed, ApiError> {
    let raw = uri
        .query()
        .and_then(|q| crate::transport::query::find_param(q, "access_token"))
        .ok_or(TokenError::Missing)?;
    if let Some((app, times)) = verified::recall(&gw.apps, &raw) {
        return Ok(Signed::Ours(app, times));
    }
    match ours(gw, &raw) {
        Ok((app, claims)) => {
            verified::remember(&gw.apps, &raw, &app, &claims);
            Ok(Signed::Ours(app, claims.times()))
        }
        Err(TokenError::Missing) => Err(TokenError::Missing.into()),
        Err(_) if gw.upstream.is_some() => Ok(Signed::Platform(raw.into_owned())),
        Err(e) => Err(e.into()),
    }
}

/// The app whose key signed `raw`, and what the token says.
fn ours(gw: &Gateway, raw: &str) -> Result<(Arc<App>, Claims), TokenError> {
    let unverified = token::decode(raw)?;
    let app = gw
        .apps
        .get(&unverified.claims.appid)
        .ok_or(TokenError::Invalid)?;
    let claims = unverified.verify(&app.token_key)?;
    Ok((app, claims))
}

/// The app, when its token is current at `now_ms`: one of ours neither expired nor retired by
/// a rotation, or the platform's ([`platform_app`]).
pub(super) async fn current(
    gw: &Gateway,
    signed: Signed,
    now_ms: u64,
) -> Result<Arc<App>, ApiError> {
    match signed {
        Signed::Ours(app, times) => {
            let epochs = gw.tokens.epochs(&app.slot.records, times.lineage).await?;
            let grace_ms = gw.config.tokens.grace.as_millis() as u64;
            token::judge(times, epochs, now_ms, grace_ms)?;
            Ok(app)
        }
        Signed::Platform(raw) => platform_app(gw, &raw, now_ms).await,
    }
}

/// How long a token the upstream vouched for is trusted before it is checked again (a check's
/// answer does not say when the token expires).
const CHECKED_FOR_MS: u64 = 300_000;
/// How long a token the upstream refused is refused without asking again.
const REFUSED_FOR_MS: u64 = 60_000;

/// The app a platform token belongs to (SPEC §13): learned from the upstream's answers that
/// passed through, or else checked once with the upstream and remembered either way. A token
/// of an app not registered here is 40001.
async fn platform_app(gw: &Gateway, raw: &str, now_ms: u64) -> Result<Arc<App>, ApiError> {
    use crate::upstream::{Recall, TokenCheck};

    let Some(up) = gw.upstream.as_deref() else {
        return Err(TokenError::Invalid.into());
    };
    let registered = |appid: &str| gw.apps.get(appid).ok_or(TokenError::Invalid.into());
    match up.tokens.recall(raw, now_ms) {
        Recall::Known(appid) => return registered(&appid),
        Recall::Refused { errcode, errmsg } => {
            return Err(ApiError::Upstream(errcode, errmsg.to_string().into()));
        }
        Recall::Unknown => {}
    }
    let checks = &up.metrics.token_checks;
    // The HTTP call is boxed: inline, its future would make every request's future (tokens of
    // ours included) some 700 bytes larger, copied each time hyper moves a request's future.
    let answer = match Box::pin(up.check_token(raw)).await {
        Ok(answer) => answer,
        Err(crate::upstream::UpstreamError::TooManyChecks) => {
            checks.with_label_values(&["paced"]).inc();
            return Err(ApiError::System);
        }
        Err(e) => {
            checks.with_label_values(&["error"]).inc();
            tracing::warn!(error = %e, "upstream token check failed");
            return Err(ApiError::System);
        }
    };
    let outcome = match answer {
        TokenCheck::Valid { appid } => {
            // An answer that does not name the app is enough when only one app is registered.
            let appid = appid.or_else(|| {
                (gw.apps.len() == 1)
                    .then(|| gw.apps.all().pop())
                    .flatten()
                    .map(|only| only.appid().to_owned())
            });
            match appid.as_deref().map(registered) {
                Some(Ok(app)) => {
                    checks.with_label_values(&["known"]).inc();
                    up.tokens
                        .remember(raw, app.appid(), now_ms + CHECKED_FOR_MS, now_ms, false);
                    Ok(app)
                }
                _ => {
                    checks.with_label_values(&["unknown_app"]).inc();
                    Err(TokenError::Invalid.into())
                }
            }
        }
        TokenCheck::Refused { errcode, errmsg } => {
            checks.with_label_values(&["refused"]).inc();
            up.tokens
                .refuse(raw, errcode, &errmsg, now_ms + REFUSED_FOR_MS, now_ms);
            Err(ApiError::Upstream(errcode, errmsg.into()))
        }
    };
    up.metrics.tokens.set(up.tokens.len() as i64);
    outcome
}

/// Tokens whose signature this thread has already verified. Every business request carries a
/// token, and an app sends the same one for up to two hours, so the HMAC over it is computed once
/// per worker thread rather than on every request.
///
/// Only the signature check is remembered: expiry and rotation are judged on every request. An
/// entry names the [`App`] value whose key verified it, and counts only while the registry still
/// holds that very value (an entry also names the registry it was verified against, and a
/// registry marks the versions it replaces, [`App::is_current`]), so an app that is replaced (a
/// new secret) has its tokens verified afresh or refused. Tokens are compared in constant time. A direct-mapped table of
/// [`verified::SLOTS`] entries per thread: a collision costs a fresh verification, never a wrong
/// answer.
mod verified {
    use std::cell::RefCell;
    use std::hash::BuildHasher;
    use std::sync::{Arc, LazyLock};

    use crate::tenants::{App, AppRegistry};
    use crate::token::{Claims, Times};

    pub(super) const SLOTS: usize = 1024;

    struct Entry {
        token: Box<str>,
        /// The registry that held `app` ([`AppRegistry::id`]).
        registry: u64,
        app: Arc<App>,
        times: Times,
    }

    /// One seed per process, so which tokens share a slot cannot be chosen from outside.
    static SEED: LazyLock<foldhash::fast::RandomState> =
        LazyLock::new(foldhash::fast::RandomState::default);

    thread_local! {
        static TABLE: RefCell<Vec<Option<Entry>>> =
            RefCell::new((0..SLOTS).map(|_| None).collect());
    }

    fn slot(token: &str) -> usize {
        (SEED.hash_one(token) as usize) % SLOTS
    }

    /// The app and times of `token` if this thread verified it against the app still in force.
    pub(super) fn recall(apps: &AppRegistry, token: &str) -> Option<(Arc<App>, Times)> {
        TABLE.with_borrow(|table| {
            let entry = table[slot(token)].as_ref()?;
            let same = same_bytes(entry.token.as_bytes(), token.as_bytes());
            (same && entry.registry == apps.id() && entry.app.is_current())
                .then(|| (Arc::clone(&entry.app), entry.times))
        })
    }

    /// Equal contents, found without stopping at the first difference (the time taken does not
    /// tell how much of a guess matched). Whole bytes are folded together, which the compiler
    /// vectorises; `subtle`'s byte-by-byte barrier cost more than the rest of the lookup.
    fn same_bytes(a: &[u8], b: &[u8]) -> bool {
        a.len() == b.len()
            && std::hint::black_box(a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y))) == 0
    }

    /// Records a token that `app`'s key has just verified.
    pub(super) fn remember(apps: &AppRegistry, token: &str, app: &Arc<App>, claims: &Claims) {
        TABLE.with_borrow_mut(|table| {
            table[slot(token)] = Some(Entry {
                token: token.into(),
                registry: apps.id(),
                app: Arc::clone(app),
                times: claims.times(),
            });
        });
    }
}
