//! Pass-through mode on the API listener (SPEC §13): the requests the gateway does not answer
//! go to the upstream ([`crate::upstream`]), and three kinds of answer teach it something on
//! their way back: tokens from `/cgi-bin/token` and `/cgi-bin/stable_token` (so content-security
//! calls with the platform's token find their app), and openids from logins
//! (`/sns/jscode2session`), which count as visits for the 61010 rule.

use crate::transport::body::RequestBody;
use bytes::Bytes;
use http::Request;
use http_body_util::Full;

use super::{ApiError, Gateway};
use crate::transport::query::find_param;
use crate::transport::response::AnyBody;
use crate::upstream::{Upstream, UpstreamError};

/// Answers the gateway reads whole to learn from are at most this large (a token or a login
/// answer is a few hundred bytes).
const LESSON_BYTES: u64 = 64 << 10;

/// What an answer teaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lesson {
    /// `/cgi-bin/token`: a token for the query's `appid`, superseding the previous one.
    Token,
    /// `/cgi-bin/stable_token`: a token for the body's `appid`.
    StableToken,
    /// A login: the answer's `openid` visited the query's `appid`.
    Login,
}

impl Lesson {
    fn of_path(path: &str) -> Option<Lesson> {
        match path {
            "/cgi-bin/token" => Some(Lesson::Token),
            "/cgi-bin/stable_token" => Some(Lesson::StableToken),
            "/sns/jscode2session" | "/sns/component/jscode2session" => Some(Lesson::Login),
            _ => None,
        }
    }
}

/// Forwards `req` to the upstream and answers what it answered.
pub(super) async fn forward(
    gw: &Gateway,
    up: &Upstream,
    req: Request<RequestBody>,
) -> Result<http::Response<AnyBody>, ApiError> {
    let (parts, body) = req.into_parts();
    let Some(lesson) = Lesson::of_path(parts.uri.path()) else {
        super::announced_length(&parts.headers, up.config().max_request_bytes)?;
        let answer = up.stream(&parts, body).await.map_err(unavailable)?;
        return Ok(answer.map(AnyBody::Right));
    };
    // Small requests whose answers are read whole: their bodies are read first too, within the
    // API's own body limit.
    let limit = gw.config.server.max_body_bytes.get();
    super::announced_length(&parts.headers, limit)?;
    let body = super::read_frames(body, limit).await?;
    let answer = up
        .exchange(&parts, body.clone(), LESSON_BYTES)
        .await
        .map_err(unavailable)?;
    if answer.status().is_success() {
        let query = parts.uri.query().unwrap_or("");
        let appid = match lesson {
            Lesson::Token | Lesson::Login => find_param(query, "appid").map(|a| a.into_owned()),
            Lesson::StableToken => serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("appid")?.as_str().map(str::to_owned)),
        };
        if let Some(appid) = appid {
            learn(gw, up, lesson, &appid, answer.body()).await;
        }
    }
    Ok(answer.map(|b| AnyBody::Left(Full::new(b))))
}

/// Remembers what a successful answer for `appid` says, when the app is registered here.
async fn learn(gw: &Gateway, up: &Upstream, lesson: Lesson, appid: &str, answer: &Bytes) {
    let Some(app) = gw.apps.get(appid) else {
        return;
    };
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(answer) else {
        return;
    };
    let now_ms = gw.clock.now_ms();
    match lesson {
        Lesson::Token | Lesson::StableToken => {
            let (Some(token), Some(expires_in)) = (
                v.get("access_token").and_then(|t| t.as_str()),
                v.get("expires_in").and_then(serde_json::Value::as_u64),
            ) else {
                return;
            };
            let until = now_ms.saturating_add(expires_in.saturating_mul(1000));
            let supersedes = lesson == Lesson::Token;
            if !up
                .tokens
                .remember(token, app.appid(), until, now_ms, supersedes)
            {
                tracing::warn!(
                    "the table of platform tokens is full (upstream.max_tokens); \
                     this token will be checked with the upstream when used"
                );
            }
            up.metrics.tokens.set(up.tokens.len() as i64);
        }
        Lesson::Login => {
            let Some(openid) = v.get("openid").and_then(|o| o.as_str()) else {
                return;
            };
            if openid.is_empty() || openid.len() > 128 {
                return;
            }
            match gw.visits.record(app.appid(), openid, now_ms / 1000).await {
                Ok(_) => up.metrics.logins.inc(),
                Err(e) => tracing::warn!(error = %e, "recording a login's visit failed"),
            }
        }
    }
}

fn unavailable(e: UpstreamError) -> ApiError {
    tracing::warn!(error = %e, "forwarding to the upstream failed");
    ApiError::System
}
