//! The WeChat-compatible API, HTTP only: the route table (`routes.rs`), wire types ([`wire`]),
//! one handler file per API, and the one error-to-response mapping ([`error`]).
//!
//! [`handle`] serves one request. Handlers parse and validate, call the engine, the gateway's
//! admission or the state layer, and answer; what they share lives in [`Gateway`].

pub mod error;
mod fields;
mod forward;
mod img_sec_check;
mod media_check;
pub(crate) mod msg_sec_check;
mod quota;
mod risk_rank;
mod routes;
mod tokens;
mod visits;
pub mod wire;

use std::sync::Arc;
use std::time::Instant;

use crate::transport::body::RequestBody;
use bytes::Bytes;
use http::{Method, Request};

use crate::gateway::Gateway;
use crate::transport::body;
pub(crate) use crate::transport::query::query_param;
use crate::transport::response::AnyBody;
pub use error::{ApiError, Response};

use routes::Route;

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

/// Serves one request on the WeChat-compatible listener; `waited` is how long it sat unread
/// (a request that waited past the overload target is refused, [`crate::transport::overload`]).
///
/// Not an `async fn`: hyper stores and moves the returned future once per request, and an
/// async fn keeps its arguments (the whole request) alongside every future it awaits. Here
/// the request is taken apart before any future exists, and msgSecCheck's future keeps only
/// what it needs after its first await; the other APIs run in a box of their own.
pub fn handle(
    gw: Arc<Gateway>,
    req: Request<RequestBody>,
    waited: crate::transport::server::Waited,
) -> impl std::future::Future<Output = http::Response<AnyBody>> + Send + 'static {
    use futures_util::FutureExt;
    use futures_util::future::{Either, ready};
    use tracing::Instrument;

    let started = Instant::now();
    gw.metrics.request_waited(waited.0);
    let route = Route::of_path(req.uri().path());
    let api = route.api();
    // Tokens are cheap, and a client refused one only retries harder.
    let shed = !matches!(route, Route::Token | Route::StableToken) && gw.overload.shed(waited);
    if !shed
        && matches!(route, Route::Unknown | Route::Token | Route::StableToken)
        && let Some(up) = gw.upstream.clone()
    {
        return Either::Right(Box::pin(forwarded(gw, up, route, req, started)));
    }
    let mut answered_rid = None;
    let work = if shed {
        gw.metrics.shed(api);
        Either::Left(ready(Err(ApiError::Overloaded)))
    } else if route == Route::MsgSecCheck {
        if req.method() == Method::POST {
            Either::Right(Either::Left(msg_sec_check::handle(&gw, req)))
        } else {
            Either::Left(ready(Err(ApiError::RequirePost)))
        }
    } else {
        // The other APIs log what goes wrong inside them (a store that failed, a job that could
        // not be queued): their events carry the rid the error answer will, in a span. The
        // msgSecCheck path above makes no span (it is the hot path; its only event, a failing
        // state backend, goes without a rid).
        let rid = gw.rid();
        let span = tracing::info_span!("request", rid = %rid, api = api.as_str());
        answered_rid = Some(rid);
        Either::Right(Either::Right(Box::pin(
            dispatch(Arc::clone(&gw), route, req).instrument(span),
        )))
    };
    Either::Left(work.map(move |outcome| {
        let (response, errcode) = match outcome {
            Ok(reply) => (reply.response, reply.errcode),
            Err(e) => {
                let code = e.errcode();
                (
                    e.into_response(answered_rid.unwrap_or_else(|| gw.rid())),
                    code,
                )
            }
        };
        gw.metrics
            .request(api, errcode, started.elapsed().as_secs_f64());
        response.map(AnyBody::Left)
    }))
}

/// Serves a request the upstream answers (pass-through mode, [`forward`]).
async fn forwarded(
    gw: Arc<Gateway>,
    up: Arc<crate::upstream::Upstream>,
    route: Route,
    req: Request<RequestBody>,
    started: Instant,
) -> http::Response<AnyBody> {
    let (response, errcode) = match forward::forward(&gw, &up, req).await {
        Ok(response) => (response, 0),
        Err(e) => {
            let code = e.errcode();
            (e.into_response(gw.rid()).map(AnyBody::Left), code)
        }
    };
    let api = match route {
        Route::Unknown => crate::metrics::Api::Forwarded,
        known => known.api(),
    };
    gw.metrics
        .request(api, errcode, started.elapsed().as_secs_f64());
    response
}

/// Runs the handler of an API other than msgSecCheck.
async fn dispatch(
    gw: Arc<Gateway>,
    route: Route,
    req: Request<RequestBody>,
) -> Result<Reply, ApiError> {
    let shared = gw;
    let gw = &*shared;
    match route {
        Route::Token => {
            if matches!(*req.method(), Method::GET | Method::POST) {
                tokens::token(gw, &req).await
            } else {
                Err(ApiError::MethodNotAllowed("GET, POST"))
            }
        }
        Route::QuotaGet => post_only(gw, req, quota::get).await,
        Route::ClearQuotaV2 => post_only(gw, req, quota::clear_v2).await,
        Route::ClearQuota => post_only(gw, req, quota::clear).await,
        Route::VisitReport => post_only(gw, req, visits::report).await,
        Route::MediaCheckAsync => {
            if req.method() != Method::POST {
                return Err(ApiError::RequirePost);
            }
            media_check::submit(&shared, req).await
        }
        Route::MediaResult => post_only(gw, req, media_check::result).await,
        Route::StableToken => post_only(gw, req, tokens::stable_token).await,
        Route::RiskRank => post_only(gw, req, risk_rank::handle).await,
        Route::ImgSecCheck => post_only(gw, req, img_sec_check::handle).await,
        // Answered in `handle`, never routed here.
        Route::MsgSecCheck | Route::Unknown => Err(ApiError::NotFound),
    }
}

/// Reads the whole body, refusing one over `server.max_body_bytes` before reading it when the
/// client announced its length, and as soon as the limit is crossed otherwise.
pub(crate) async fn read_body(gw: &Gateway, req: Request<RequestBody>) -> Result<Bytes, ApiError> {
    let limit = gw.config.server.max_body_bytes.get();
    announced_length(req.headers(), limit)?;
    read_frames(req.into_body(), limit).await
}

/// Judges the body's length as the client announced it ([`body::announced_length`]).
pub(crate) fn announced_length(headers: &http::HeaderMap, limit: u64) -> Result<(), ApiError> {
    Ok(body::announced_length(headers, limit)?)
}

/// Reads a whole body ([`body::read_frames`]).
pub(crate) async fn read_frames(body: RequestBody, limit: u64) -> Result<Bytes, ApiError> {
    Ok(body::read_frames(body, limit).await?)
}

/// Runs a POST-only handler; other methods get 43002, as the platform answers.
async fn post_only<'a, F, Fut>(
    gw: &'a Gateway,
    req: Request<RequestBody>,
    handler: F,
) -> Result<Reply, ApiError>
where
    F: FnOnce(&'a Gateway, Request<RequestBody>) -> Fut,
    Fut: std::future::Future<Output = Result<Reply, ApiError>>,
{
    if req.method() != Method::POST {
        return Err(ApiError::RequirePost);
    }
    handler(gw, req).await
}
