//! `[upstream]`: pass-through mode (SPEC §13). With `url` set, every path modgate does not
//! serve is forwarded there; without it, unknown paths are 404 as before.

use std::num::{NonZeroU32, NonZeroUsize};
use std::time::Duration;

use serde::Deserialize;
use url::Url;

use super::check::{Errors, seconds};

pub const DEFAULT_CONNECT_TIMEOUT_SECS: f64 = 5.0;
pub const DEFAULT_TIMEOUT_SECS: f64 = 30.0;
/// The platform's uploads (temporary media) are at most 10 MB; room for the form around them.
pub const DEFAULT_MAX_REQUEST_BYTES: u64 = 16 << 20;
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 64 << 20;
/// A cheap authenticated call of the platform that names the token's app.
pub const DEFAULT_TOKEN_CHECK_PATH: &str = "/cgi-bin/account/getaccountbasicinfo";
pub const DEFAULT_MAX_TOKENS: u64 = 100_000;
/// Checks of unseen tokens sent to the upstream per second, at most (each costs the upstream a
/// call: a client sending made-up tokens must not turn the gateway into an amplifier).
pub const DEFAULT_TOKEN_CHECKS_PER_SECOND: u64 = 50;

/// `[upstream]` as written.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawUpstream {
    pub url: Option<String>,
    pub connect_timeout_secs: Option<f64>,
    pub timeout_secs: Option<f64>,
    pub max_request_bytes: Option<i64>,
    pub max_response_bytes: Option<i64>,
    pub token_check_path: Option<String>,
    pub max_tokens: Option<i64>,
    pub token_checks_per_second: Option<i64>,
}

/// Validated `[upstream]`: present only when `url` is set.
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    /// Where forwarded requests go: scheme, host, port and an optional path prefix, without a
    /// trailing slash. Never derived from a request.
    pub url: Url,
    pub connect_timeout: Duration,
    /// The whole exchange with the upstream, body included.
    pub timeout: Duration,
    /// Forwarded request bodies over this are refused (413).
    pub max_request_bytes: u64,
    /// Upstream answers over this are cut off.
    pub max_response_bytes: u64,
    /// The call that tells whether a token the gateway has not seen is the platform's, and
    /// whose app it is (its answer's `appid`).
    pub token_check_path: String,
    /// Platform tokens remembered at most (and, apart from them, as many refused ones).
    pub max_tokens: NonZeroUsize,
    /// Unseen tokens checked with the upstream per second, at most; past it such calls are -1.
    pub token_checks_per_second: NonZeroU32,
}

/// Validates `[upstream]`, adding every problem to `errs`.
pub(super) fn validate(raw: RawUpstream, errs: &mut Errors) -> Option<UpstreamConfig> {
    let connect_timeout = seconds(
        errs,
        "upstream.connect_timeout_secs",
        raw.connect_timeout_secs,
        DEFAULT_CONNECT_TIMEOUT_SECS,
    );
    let timeout = seconds(
        errs,
        "upstream.timeout_secs",
        raw.timeout_secs,
        DEFAULT_TIMEOUT_SECS,
    );
    let max_request_bytes = errs.positive(
        "upstream.max_request_bytes",
        raw.max_request_bytes,
        DEFAULT_MAX_REQUEST_BYTES,
        1 << 30,
    );
    let max_response_bytes = errs.positive(
        "upstream.max_response_bytes",
        raw.max_response_bytes,
        DEFAULT_MAX_RESPONSE_BYTES,
        1 << 32,
    );
    let max_tokens = errs.positive(
        "upstream.max_tokens",
        raw.max_tokens,
        DEFAULT_MAX_TOKENS,
        100_000_000,
    );
    let token_checks_per_second = errs.positive(
        "upstream.token_checks_per_second",
        raw.token_checks_per_second,
        DEFAULT_TOKEN_CHECKS_PER_SECOND,
        100_000,
    );
    let token_check_path = raw
        .token_check_path
        .unwrap_or_else(|| DEFAULT_TOKEN_CHECK_PATH.to_owned());
    if !token_check_path.starts_with('/') || token_check_path.contains(['?', '#']) {
        errs.push(
            "upstream.token_check_path",
            "must be a path starting with `/`, without a query",
        );
    }
    let text = raw.url.filter(|u| !u.is_empty())?;
    let url = match Url::parse(&text) {
        Ok(url)
            if matches!(url.scheme(), "http" | "https")
                && url.host().is_some()
                && url.query().is_none()
                && url.fragment().is_none()
                && url.username().is_empty()
                && url.password().is_none() =>
        {
            url
        }
        Ok(_) => {
            errs.push(
                "upstream.url",
                "must be an http(s) URL with a host and no credentials, query or fragment",
            );
            return None;
        }
        Err(e) => {
            errs.push("upstream.url", format!("is not a URL: {e}"));
            return None;
        }
    };
    Some(UpstreamConfig {
        url,
        connect_timeout,
        timeout,
        max_request_bytes,
        max_response_bytes,
        token_check_path,
        max_tokens: NonZeroUsize::new(max_tokens as usize).unwrap_or(NonZeroUsize::MIN),
        token_checks_per_second: NonZeroU32::new(token_checks_per_second as u32)
            .unwrap_or(NonZeroU32::MIN),
    })
}

impl UpstreamConfig {
    /// The upstream address of `path_and_query` (which starts with `/`).
    pub fn target(&self, path_and_query: &str) -> String {
        let base = self.url.as_str().trim_end_matches('/');
        format!("{base}{path_and_query}")
    }
}
