//! `[tokens]`: access-token lifetime and signing.

use std::time::Duration;

use serde::Deserialize;

use super::Secret;
use super::check::Errors;

pub const DEFAULT_TTL_SECS: u64 = 7200;
pub const DEFAULT_GRACE_SECS: u64 = 300;
/// The shortest signing key accepted.
pub const MIN_KEY_CHARS: usize = 16;

/// `[tokens]`: access-token lifetime and signing.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawTokens {
    /// Extra key mixed into every token's MAC. Without it tokens are keyed by the app secret
    /// alone, so an app that knows its secret could mint its own tokens offline.
    pub key: Option<Secret>,
    pub ttl_secs: Option<i64>,
    pub grace_secs: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct TokenConfig {
    pub key: Option<Secret>,
    pub ttl: Duration,
    pub grace: Duration,
}

/// Validates `[tokens]`, adding every problem to `errs`.
pub(super) fn validate(raw: RawTokens, errs: &mut Errors) -> TokenConfig {
    TokenConfig {
        key: match raw.key {
            Some(k) if k.expose().is_empty() => None,
            Some(k) if k.expose().len() < MIN_KEY_CHARS => {
                errs.push("tokens.key", "must be at least 16 characters when set");
                None
            }
            other => other,
        },
        ttl: Duration::from_secs(errs.positive(
            "tokens.ttl_secs",
            raw.ttl_secs,
            DEFAULT_TTL_SECS,
            86_400 * 30,
        )),
        grace: Duration::from_secs(match raw.grace_secs {
            None => DEFAULT_GRACE_SECS,
            Some(v) if (0..=86_400).contains(&v) => v as u64,
            Some(v) => {
                errs.push(
                    "tokens.grace_secs",
                    format!("{v} is out of range (0..=86400)"),
                );
                DEFAULT_GRACE_SECS
            }
        }),
    }
}
