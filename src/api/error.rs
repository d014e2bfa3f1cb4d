//! Every refusal the API can give, and the one place that turns it into a response.
//!
//! Business errors answer HTTP 200 with `{"errcode":N,"errmsg":"... rid: <rid>"}`. Transport
//! errors (unknown path, wrong method, body too large, malformed HTTP) keep their HTTP status and
//! carry that status as their errcode, so a client that only reads the body still sees what
//! happened. Messages name the offending field and never echo the request's values.

use std::borrow::Cow;

use http::{HeaderValue, StatusCode, header};

use super::wire::{BodyError, ErrorBody};
use crate::rid::Rid;
use crate::token::TokenError;

/// The response type of both listeners.
pub use crate::transport::response::{Response, json_bytes_response, json_response};

/// A refusal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Token(TokenError),
    /// 44002
    #[error("empty post data")]
    EmptyBody,
    /// 47001, with what exactly is wrong.
    #[error("data format error: {0}")]
    Format(Cow<'static, str>),
    /// 40129
    #[error("invalid scene: {0}")]
    InvalidScene(&'static str),
    /// 40003
    #[error("invalid openid: {0}")]
    InvalidOpenid(&'static str),
    /// 43002
    #[error("require POST method")]
    RequirePost,
    /// 40002
    #[error("invalid grant_type")]
    InvalidGrantType,
    /// 40013
    #[error("invalid appid")]
    InvalidAppid,
    /// 40125
    #[error("invalid appsecret")]
    InvalidSecret,
    /// 41002
    #[error("appid missing")]
    MissingAppid,
    /// 41004
    #[error("appsecret missing")]
    MissingSecret,
    /// 44991, with the wait until the next call is allowed.
    #[error("reach max api minute frequence")]
    RateLimited(std::time::Duration),
    /// 45009
    #[error("reach max api daily quota limit")]
    QuotaExceeded,
    /// 45011: a call repeated sooner than the API allows.
    #[error("api minute-quota reach limit mustslower retry next minute")]
    TooFrequent,
    /// 41005: a multipart upload without its `media` part.
    #[error("media data missing: no multipart part named `media`")]
    MediaMissing,
    /// 40006: an uploaded file over the limit, in bytes.
    #[error("invalid media size: the file is larger than {0} bytes")]
    MediaTooLarge(u64),
    /// 40004: an uploaded file that is not an image, with why.
    #[error("invalid media type: {0}")]
    InvalidMedia(Cow<'static, str>),
    /// 87014: the v1 synchronous checks' verdict on risky content.
    #[error("risky content")]
    RiskyContent,
    /// The upstream's own refusal (pass-through mode), passed on as it gave it.
    #[error("{1}")]
    Upstream(i32, Cow<'static, str>),
    /// 61010
    #[error("code is expired")]
    VisitExpired,
    /// 76021
    #[error("cgi_path not found")]
    UnknownCgiPath,
    /// 48006
    #[error("forbid to clear quota: this month's resets are used up")]
    ResetsExhausted,
    /// 40004
    #[error("invalid media type: field `media_type` must be 1 (audio) or 2 (image)")]
    InvalidMediaType,
    /// 40097: a trace_id this app never submitted (or no longer kept).
    #[error("invalid args: no such trace_id for this app")]
    UnknownTraceId,
    /// -1: a backend could not answer; SDKs back off and retry.
    #[error("system error, retry later")]
    System,
    /// -1: refused for a share the caller holds in full, with which.
    #[error("system busy: {0}; retry later")]
    Busy(Cow<'static, str>),
    /// -1: refused unread because the gateway is overloaded ([`crate::transport::overload`]).
    #[error("system busy: the gateway is overloaded, retry later")]
    Overloaded,
    /// 404
    #[error("not found: no such API")]
    NotFound,
    /// 405, with the methods the path allows.
    #[error("method not allowed")]
    MethodNotAllowed(&'static str),
    /// 413, with the limit.
    #[error("request body too large: the limit is {0} bytes")]
    BodyTooLarge(u64),
    /// 400: the request could not be read as HTTP.
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    /// 408: the body did not arrive whole within the body read timeout.
    #[error("request timeout: the body did not arrive within the server's body read timeout")]
    BodyTimeout,
}

impl ApiError {
    /// The errcode in the body.
    pub fn errcode(&self) -> i32 {
        match self {
            ApiError::Token(TokenError::Missing) => 41001,
            ApiError::Token(TokenError::Malformed) => 40014,
            ApiError::Token(TokenError::Invalid) => 40001,
            ApiError::Token(TokenError::Expired) => 42001,
            ApiError::EmptyBody => 44002,
            ApiError::Format(_) => 47001,
            ApiError::InvalidScene(_) => 40129,
            ApiError::InvalidOpenid(_) => 40003,
            ApiError::RequirePost => 43002,
            ApiError::InvalidGrantType => 40002,
            ApiError::InvalidAppid => 40013,
            ApiError::InvalidSecret => 40125,
            ApiError::MissingAppid => 41002,
            ApiError::MissingSecret => 41004,
            ApiError::RateLimited(_) => 44991,
            ApiError::QuotaExceeded => 45009,
            ApiError::TooFrequent => 45011,
            ApiError::MediaMissing => 41005,
            ApiError::RiskyContent => 87014,
            ApiError::Upstream(errcode, _) => *errcode,
            ApiError::MediaTooLarge(_) => 40006,
            ApiError::InvalidMedia(_) => 40004,
            ApiError::VisitExpired => 61010,
            ApiError::UnknownCgiPath => 76021,
            ApiError::ResetsExhausted => 48006,
            ApiError::InvalidMediaType => 40004,
            ApiError::UnknownTraceId => 40097,
            ApiError::System | ApiError::Overloaded | ApiError::Busy(_) => -1,
            ApiError::NotFound
            | ApiError::MethodNotAllowed(_)
            | ApiError::BodyTooLarge(_)
            | ApiError::BadRequest(_)
            | ApiError::BodyTimeout => i32::from(self.status().as_u16()),
        }
    }

    /// The HTTP status: 200 for business errors.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::BodyTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            _ => StatusCode::OK,
        }
    }

    /// The error as a response, with the rid appended to the message.
    pub fn into_response(self, rid: Rid) -> Response {
        let errmsg = format!("{self} rid: {rid}");
        let body = ErrorBody {
            errcode: self.errcode(),
            errmsg: &errmsg,
        };
        let mut resp = json_response(self.status(), &body);
        match self {
            ApiError::RateLimited(wait) => {
                // Whole seconds, rounded up: a client that waits this long is admitted.
                let secs = wait.as_millis().div_ceil(1000).max(1);
                if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                    resp.headers_mut().insert(header::RETRY_AFTER, v);
                }
            }
            ApiError::Overloaded => {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            ApiError::MethodNotAllowed(allow) => {
                resp.headers_mut()
                    .insert(header::ALLOW, HeaderValue::from_static(allow));
            }
            // The body was not read; the connection cannot carry another request.
            ApiError::BodyTooLarge(_) | ApiError::BadRequest(_) | ApiError::BodyTimeout => {
                resp.headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            _ => {}
        }
        resp
    }
}

impl From<TokenError> for ApiError {
    fn from(e: TokenError) -> Self {
        ApiError::Token(e)
    }
}

impl From<crate::state::StateError> for ApiError {
    fn from(e: crate::state::StateError) -> Self {
        tracing::warn!(error = %e, "state backend failed");
        ApiError::System
    }
}

impl From<crate::gateway::Refused> for ApiError {
    fn from(r: crate::gateway::Refused) -> Self {
        use crate::gateway::Refused;
        match r {
            Refused::RateLimited(wait) => ApiError::RateLimited(wait),
            Refused::QuotaExceeded => ApiError::QuotaExceeded,
            Refused::VisitExpired => ApiError::VisitExpired,
            Refused::Backend(e) => e.into(),
        }
    }
}

impl From<crate::transport::body::ReadError> for ApiError {
    fn from(e: crate::transport::body::ReadError) -> Self {
        use crate::transport::body::ReadError;
        match e {
            ReadError::BadLength => ApiError::BadRequest("invalid Content-Length"),
            ReadError::TooLarge(limit) => ApiError::BodyTooLarge(limit),
            ReadError::Unreadable => ApiError::BadRequest("request body could not be read"),
            ReadError::TimedOut => ApiError::BodyTimeout,
        }
    }
}

/// A body that could not be parsed: 44002 when empty, 47001 otherwise.
impl From<BodyError> for ApiError {
    fn from(e: BodyError) -> Self {
        match e {
            BodyError::Empty => ApiError::EmptyBody,
            other => ApiError::Format(other.describe().into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errcodes_and_statuses() {
        let rid = crate::rid::RidGenerator::with_prefix(1).next(0x6744_b7a0);
        let cases = [
            (ApiError::Token(TokenError::Missing), 41001, 200),
            (ApiError::Token(TokenError::Malformed), 40014, 200),
            (ApiError::Token(TokenError::Invalid), 40001, 200),
            (ApiError::Token(TokenError::Expired), 42001, 200),
            (ApiError::EmptyBody, 44002, 200),
            (ApiError::Format("x".into()), 47001, 200),
            (ApiError::InvalidScene("x"), 40129, 200),
            (ApiError::InvalidOpenid("x"), 40003, 200),
            (ApiError::RequirePost, 43002, 200),
            (ApiError::InvalidMediaType, 40004, 200),
            (ApiError::UnknownTraceId, 40097, 200),
            (ApiError::System, -1, 200),
            (ApiError::NotFound, 404, 404),
            (ApiError::MethodNotAllowed("GET"), 405, 405),
            (ApiError::BodyTooLarge(10), 413, 413),
        ];
        for (err, code, status) in cases {
            assert_eq!(err.errcode(), code, "{err:?}");
            let resp = err.into_response(rid);
            assert_eq!(resp.status().as_u16(), status);
        }
    }
}
