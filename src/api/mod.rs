//! HTTP only: routing, wire types, and the one error-to-response mapping.
//!
//! [`Gateway`] holds what handlers need (apps, token store, engine, metrics, clock). Handlers
//! parse and validate, call the engine or the state layer, and answer; they never touch storage
//! directly beyond the state traits.

pub mod admin;
mod admin_api;
mod admin_banks;
mod admin_review;
mod admin_risk;
pub mod error;
mod fields;
mod media_check;
pub(crate) mod msg_sec_check;
mod quota;
mod risk_rank;
mod tokens;
mod visits;
pub mod wire;

use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use http::{Method, Request, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;

pub use crate::gateway::Gateway;
pub use error::{ApiError, Response};

use crate::metrics::Api;

/// A handler's success: the body and the errcode it carries (0, or 87014 for a v1 risky text).
pub struct Reply {
    pub response: Response,
    pub errcode: i32,
}

impl Reply {
    fn json(body: &impl serde::Serialize) -> Self {
        Reply {
            response: error::json_response(http::StatusCode::OK, body),
            errcode: 0,
        }
    }
}

impl Gateway {
    /// Serves one request on the WeChat-compatible listener; `waited` is how long it sat unread
    /// (a request that waited past the overload target is refused, [`crate::transport::overload`]).
    ///
    /// Not an `async fn`: hyper stores and moves the returned future once per request, and an
    /// async fn keeps its arguments (the whole request) alongside every future it awaits. Here
    /// the request is taken apart before any future exists, and msgSecCheck's future keeps only
    /// what it needs after its first await; the other APIs run in a box of their own.
    pub fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
        waited: crate::transport::server::Waited,
    ) -> impl std::future::Future<Output = Response> + Send + 'static {
        use futures_util::FutureExt;
        use futures_util::future::{Either, ready};

        let started = Instant::now();
        self.metrics.request_waited(waited.0);
        let api = Api::of_path(req.uri().path());
        // Tokens are cheap, and a client refused one only retries harder.
        let shed = !matches!(api, Api::Token | Api::StableToken) && self.overload.shed(waited);
        let work = if shed {
            self.metrics.shed(api);
            Either::Left(ready(Err(ApiError::Overloaded)))
        } else if api == Api::MsgSecCheck {
            if req.method() == Method::POST {
                Either::Right(Either::Left(msg_sec_check::handle(&self, req)))
            } else {
                Either::Left(ready(Err(ApiError::RequirePost)))
            }
        } else {
            Either::Right(Either::Right(Box::pin(Arc::clone(&self).route(api, req))))
        };
        work.map(move |outcome| {
            let (response, errcode) = match outcome {
                Ok(reply) => (reply.response, reply.errcode),
                Err(e) => {
                    let code = e.errcode();
                    (e.into_response(self.rid()), code)
                }
            };
            self.metrics
                .request(api, errcode, started.elapsed().as_secs_f64());
            response
        })
    }

    /// Runs the handler of an API other than msgSecCheck.
    async fn route(self: Arc<Self>, api: Api, req: Request<Incoming>) -> Result<Reply, ApiError> {
        let gw = &*self;
        match api {
            Api::Token => {
                if matches!(*req.method(), Method::GET | Method::POST) {
                    tokens::token(gw, &req).await
                } else {
                    Err(ApiError::MethodNotAllowed("GET, POST"))
                }
            }
            Api::QuotaGet => post_only(gw, req, quota::get).await,
            Api::ClearQuota if req.uri().path().ends_with("/v2") => {
                post_only(gw, req, quota::clear_v2).await
            }
            Api::ClearQuota => post_only(gw, req, quota::clear).await,
            Api::VisitReport => post_only(gw, req, visits::report).await,
            Api::MediaCheckAsync => post_only(gw, req, media_check::submit).await,
            Api::MediaResult => post_only(gw, req, media_check::result).await,
            Api::StableToken => post_only(gw, req, tokens::stable_token).await,
            Api::RiskRank => post_only(gw, req, risk_rank::handle).await,
            // Answered in `handle`, never routed here.
            Api::MsgSecCheck | Api::Other => Err(ApiError::NotFound),
        }
    }

    /// Reads the whole body, refusing one over the limit before reading it when the client
    /// announced its length, and as soon as the limit is crossed otherwise.
    pub async fn read_body(&self, req: Request<Incoming>) -> Result<Bytes, ApiError> {
        self.read_body_up_to(req, self.config.server.max_body_bytes.get())
            .await
    }

    /// How large a media upload to the admin API may be: as large as a fetched file.
    pub fn media_upload_limit(&self) -> u64 {
        self.config
            .media
            .max_bytes
            .max(self.config.server.max_body_bytes.get())
    }

    /// [`Gateway::read_body`] with another limit (media uploads to the admin API).
    pub async fn read_body_up_to(
        &self,
        req: Request<Incoming>,
        limit: u64,
    ) -> Result<Bytes, ApiError> {
        announced_length(req.headers(), limit)?;
        read_frames(req.into_body(), limit).await
    }
}

/// Judges the body's length as the client announced it (`Content-Length`): refused when it is
/// not a number or exceeds `limit`, before a byte of the body is read.
pub(crate) fn announced_length(headers: &http::HeaderMap, limit: u64) -> Result<(), ApiError> {
    if let Some(len) = headers.get(header::CONTENT_LENGTH) {
        let len: u64 = len
            .to_str()
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or(ApiError::BadRequest("invalid Content-Length"))?;
        if len > limit {
            return Err(ApiError::BodyTooLarge(limit));
        }
    }
    Ok(())
}

/// Reads a whole body (after its announced length was judged, [`announced_length`]), refusing
/// it as soon as it crosses `limit`.
pub(crate) async fn read_frames(mut body: Incoming, limit: u64) -> Result<Bytes, ApiError> {
    // Frame by frame rather than through `BodyExt::collect`, whose future (a frame queue and
    // a trailer map) is several times larger: a body that arrives in one frame (the usual
    // case) is returned as it came, without a copy.
    let mut first: Option<Bytes> = None;
    let mut joined: Option<BytesMut> = None;
    let mut total: u64 = 0;
    while let Some(frame) = body.frame().await {
        // The client went away or sent a broken chunked body.
        let frame = frame.map_err(|_| ApiError::BadRequest("request body could not be read"))?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers: nothing the APIs read
        };
        total = total.saturating_add(data.len() as u64);
        if total > limit {
            return Err(ApiError::BodyTooLarge(limit));
        }
        match (&mut joined, first.take()) {
            (Some(buf), _) => buf.extend_from_slice(&data),
            (None, None) => first = Some(data),
            (None, Some(earlier)) => {
                let mut buf = BytesMut::with_capacity(earlier.len() + data.len());
                buf.extend_from_slice(&earlier);
                buf.extend_from_slice(&data);
                joined = Some(buf);
            }
        }
    }
    Ok(match joined {
        Some(buf) => buf.freeze(),
        None => first.unwrap_or_default(),
    })
}

/// Runs a POST-only handler; other methods get 43002, as the platform answers.
async fn post_only<'a, F, Fut>(
    gw: &'a Gateway,
    req: Request<Incoming>,
    handler: F,
) -> Result<Reply, ApiError>
where
    F: FnOnce(&'a Gateway, Request<Incoming>) -> Fut,
    Fut: std::future::Future<Output = Result<Reply, ApiError>>,
{
    if req.method() != Method::POST {
        return Err(ApiError::RequirePost);
    }
    handler(gw, req).await
}

/// The value of one query parameter, percent-decoded.
pub(crate) fn query_param<'a>(
    req: &'a Request<Incoming>,
    name: &str,
) -> Option<std::borrow::Cow<'a, str>> {
    find_param(req.uri().query()?, name)
}

/// The first value of `name` in a query string, decoded as `application/x-www-form-urlencoded`.
/// Every request carries its token here, so pairs that need no decoding (the usual case) are
/// compared and returned as they stand; only a key or value holding `%` or `+` is decoded.
pub(crate) fn find_param<'a>(query: &'a str, name: &str) -> Option<std::borrow::Cow<'a, str>> {
    fn decode(raw: &str) -> std::borrow::Cow<'_, str> {
        if memchr::memchr2(b'%', b'+', raw.as_bytes()).is_some() {
            let spaced = raw.replace('+', " ");
            let decoded = percent_encoding::percent_decode_str(&spaced).decode_utf8_lossy();
            std::borrow::Cow::Owned(decoded.into_owned())
        } else {
            std::borrow::Cow::Borrowed(raw)
        }
    }
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .find_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(key) == name).then(|| decode(value))
        })
}

#[cfg(test)]
mod tests {
    use super::find_param;

    #[test]
    fn query_params_decode_like_form_urlencoded() {
        let queries = [
            "access_token=abc&x=1",
            "x=1&access_token=a%2Bb+c&access_token=second",
            "acc%65ss_token=v",
            "access+token=no&access_token",
            "&&access_token=%E4%BD%A0%ZZ&",
            "access_token==x=",
            "",
            "other=1",
        ];
        for q in queries {
            for name in ["access_token", "x", "access token", "other"] {
                let want = url::form_urlencoded::parse(q.as_bytes())
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v);
                assert_eq!(find_param(q, name), want, "query {q:?}, name {name:?}");
            }
        }
    }
}
