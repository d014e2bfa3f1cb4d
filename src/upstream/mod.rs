//! Pass-through mode (SPEC §13): the platform behind the gateway.
//!
//! With `[upstream] url` set, the API listener answers the content-security family itself and
//! hands every other request to [`Upstream`]: method, path and query, the end-to-end headers and
//! the body go to the configured URL (never one derived from the request), and the answer comes
//! back the same way, both bodies streamed, within `timeout_secs` and the size limits. A few
//! answers are read whole instead, because the gateway learns from them: tokens the platform
//! issues ([`Learned`]) and the openids of logins.
//!
//! Nothing here logs a query string, a header value or a body: those carry secrets and tokens.
//! Client errors are logged without their URL.

pub mod metrics;
mod tokens;

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName};
use http_body_util::{BodyExt, Limited};

use crate::config::UpstreamConfig;
use crate::transport::response::{BoxError, StreamedBody};
use metrics::UpstreamMetrics;
pub use tokens::{Learned, Recall};

/// Why the upstream gave no usable answer. The caller answers -1 (system error), as the platform
/// does when it cannot serve.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("the upstream could not be reached: {0}")]
    Unreachable(String),
    #[error("the upstream did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the upstream's answer is larger than {0} bytes")]
    TooLarge(u64),
    #[error("the upstream's answer could not be read: {0}")]
    Garbled(String),
    #[error("too many unseen tokens to check with the upstream; retry later")]
    TooManyChecks,
}

/// The upstream's answer to a token check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenCheck {
    /// A valid token; the app it belongs to, when the answer names it.
    Valid { appid: Option<String> },
    /// Refused, with the upstream's errcode and errmsg.
    Refused { errcode: i32, errmsg: String },
}

/// Headers that belong to one connection (RFC 9110 §7.6.1), and `Host`: never forwarded.
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    header::HOST,
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// The end-to-end headers of `from`: without hop-by-hop ones, those the `Connection` header
/// names, `Keep-Alive`, and the body's length (which the body itself sets).
fn end_to_end(from: &HeaderMap) -> HeaderMap {
    let named: Vec<String> = from
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|n| n.trim().to_ascii_lowercase())
        .collect();
    let mut out = HeaderMap::with_capacity(from.len());
    for (name, value) in from {
        if HOP_BY_HOP.contains(name)
            || name == header::CONTENT_LENGTH
            || name.as_str() == "keep-alive"
            || named.iter().any(|n| n == name.as_str())
        {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    out
}

/// The upstream, and what the gateway has learned from it.
pub struct Upstream {
    config: UpstreamConfig,
    client: reqwest::Client,
    /// Paces token checks ([`UpstreamConfig::token_checks_per_second`]).
    checks: governor::DefaultDirectRateLimiter,
    /// Platform tokens seen in answers or checked ([`Learned`]).
    pub tokens: Learned,
    pub metrics: UpstreamMetrics,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("url", &self.config.url.as_str())
            .finish_non_exhaustive()
    }
}

impl Upstream {
    pub fn new(config: UpstreamConfig, metrics: UpstreamMetrics) -> Result<Upstream, String> {
        crate::transport::install_tls_provider();
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.connect_timeout)
            .timeout(config.timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Upstream {
            tokens: Learned::new(config.max_tokens.get()),
            checks: governor::RateLimiter::direct(governor::Quota::per_second(
                config.token_checks_per_second,
            )),
            config,
            client,
            metrics,
        })
    }

    pub fn config(&self) -> &UpstreamConfig {
        &self.config
    }

    /// Sends `method` `path_and_query` with `headers` and `body`, and returns the answer head
    /// (its body not yet read).
    async fn send(
        &self,
        method: &http::Method,
        path_and_query: &str,
        headers: &HeaderMap,
        body: reqwest::Body,
    ) -> Result<reqwest::Response, UpstreamError> {
        let started = Instant::now();
        let sent = self
            .client
            .request(method.clone(), self.config.target(path_and_query))
            .headers(end_to_end(headers))
            .body(body)
            .send()
            .await;
        self.metrics
            .seconds
            .observe(started.elapsed().as_secs_f64());
        match sent {
            Ok(resp) => {
                self.metrics
                    .requests
                    .with_label_values(&[resp.status().as_str()])
                    .inc();
                Ok(resp)
            }
            Err(e) => Err(self.failed(e)),
        }
    }

    /// A request that got no answer head: counted by what went wrong.
    fn failed(&self, e: reqwest::Error) -> UpstreamError {
        let error = self.describe(e);
        let label = match error {
            UpstreamError::Timeout(_) => "timeout",
            _ => "error",
        };
        self.metrics.requests.with_label_values(&[label]).inc();
        error
    }

    /// What a client error means, without its URL (whose query may hold a secret or a token).
    fn describe(&self, e: reqwest::Error) -> UpstreamError {
        if e.is_timeout() {
            UpstreamError::Timeout(self.config.timeout)
        } else {
            UpstreamError::Unreachable(e.without_url().to_string())
        }
    }

    /// Forwards a request with `body` streamed (at most `max_request_bytes`; the caller judges
    /// the announced length first) and streams the answer back, cut off past
    /// `max_response_bytes`.
    pub async fn stream<B>(
        &self,
        parts: &http::request::Parts,
        body: B,
    ) -> Result<http::Response<StreamedBody>, UpstreamError>
    where
        B: hyper::body::Body<Data = Bytes> + Send + Sync + 'static,
        B::Error: Into<BoxError>,
    {
        let limited = Limited::new(body, self.config.max_request_bytes as usize);
        let resp = self
            .send(
                &parts.method,
                path_and_query(parts),
                &parts.headers,
                reqwest::Body::wrap(limited),
            )
            .await?;
        let limit = self.config.max_response_bytes;
        if resp.content_length().is_some_and(|n| n > limit) {
            return Err(UpstreamError::TooLarge(limit));
        }
        let (head, body) = http::Response::from(resp).into_parts();
        let body = Limited::new(body, limit as usize).boxed_unsync();
        let mut answer = http::Response::from_parts(head, body);
        let headers = end_to_end(answer.headers());
        *answer.headers_mut() = headers;
        Ok(answer)
    }

    /// Forwards a request whose body is in memory and reads the whole answer, at most `limit`
    /// bytes: for the answers the gateway learns from.
    pub async fn exchange(
        &self,
        parts: &http::request::Parts,
        body: Bytes,
        limit: u64,
    ) -> Result<http::Response<Bytes>, UpstreamError> {
        // Read here, so in no encoding but the identity.
        let mut headers = parts.headers.clone();
        headers.remove(header::ACCEPT_ENCODING);
        let resp = self
            .send(&parts.method, path_and_query(parts), &headers, body.into())
            .await?;
        self.read_whole(resp, limit).await
    }

    async fn read_whole(
        &self,
        resp: reqwest::Response,
        limit: u64,
    ) -> Result<http::Response<Bytes>, UpstreamError> {
        if resp.content_length().is_some_and(|n| n > limit) {
            return Err(UpstreamError::TooLarge(limit));
        }
        let (head, body) = http::Response::from(resp).into_parts();
        let whole = Limited::new(body, limit as usize)
            .collect()
            .await
            .map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    UpstreamError::TooLarge(limit)
                } else {
                    // The answer was counted by its status when its head came.
                    match e.downcast::<reqwest::Error>() {
                        Ok(e) => self.describe(*e),
                        Err(e) => UpstreamError::Garbled(e.to_string()),
                    }
                }
            })?
            .to_bytes();
        let mut answer = http::Response::from_parts(head, whole);
        let headers = end_to_end(answer.headers());
        *answer.headers_mut() = headers;
        Ok(answer)
    }

    /// Asks the upstream whether `token` is one of its tokens, and whose: a GET of
    /// `token_check_path` with the token.
    pub async fn check_token(&self, token: &str) -> Result<TokenCheck, UpstreamError> {
        if self.checks.check().is_err() {
            return Err(UpstreamError::TooManyChecks);
        }
        let query: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("access_token", token)
            .finish();
        let path = format!("{}?{query}", self.config.token_check_path);
        let resp = self
            .send(
                &http::Method::GET,
                &path,
                &HeaderMap::new(),
                Bytes::new().into(),
            )
            .await?;
        let answer = self.read_whole(resp, 64 << 10).await?;
        let v: serde_json::Value = serde_json::from_slice(answer.body())
            .map_err(|_| UpstreamError::Garbled("the token check's answer is not JSON".into()))?;
        let errcode = v
            .get("errcode")
            .and_then(serde_json::Value::as_i64)
            .unwrap_or(0);
        if errcode == 0 {
            let appid = v.get("appid").and_then(|a| a.as_str()).map(str::to_owned);
            Ok(TokenCheck::Valid { appid })
        } else {
            let errmsg = v
                .get("errmsg")
                .and_then(|m| m.as_str())
                .unwrap_or("invalid credential");
            Ok(TokenCheck::Refused {
                errcode: i32::try_from(errcode).unwrap_or(-1),
                errmsg: errmsg.to_owned(),
            })
        }
    }
}

fn path_and_query(parts: &http::request::Parts) -> &str {
    parts.uri.path_and_query().map_or("/", |p| p.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_end_to_end_headers_are_forwarded() {
        let mut h = HeaderMap::new();
        for (name, value) in [
            ("host", "gateway.example"),
            ("connection", "keep-alive, x-private"),
            ("keep-alive", "timeout=5"),
            ("x-private", "1"),
            ("transfer-encoding", "chunked"),
            ("content-length", "12"),
            ("content-type", "application/json"),
            ("user-agent", "WxJava"),
            ("authorization", "WECHATPAY2-SHA256-RSA2048 x"),
        ] {
            h.append(
                HeaderName::from_static(name),
                http::HeaderValue::from_static(value),
            );
        }
        let out = end_to_end(&h);
        let mut names: Vec<&str> = out.keys().map(HeaderName::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, ["authorization", "content-type", "user-agent"]);
    }
}
