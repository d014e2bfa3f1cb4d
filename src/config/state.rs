//! `[state]`: where shared and durable state lives.

use std::path::PathBuf;

use serde::Deserialize;
use url::Url;

use super::Secret;
use super::check::Errors;

pub const DEFAULT_DATA_DIR: &str = "./data";
/// The embedded store's page cache, in MiB (redb's default, 1 GiB, would dominate resident
/// memory).
pub const DEFAULT_STORE_CACHE_MIB: u64 = 64;
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379/0";
pub const DEFAULT_REDIS_PREFIX: &str = "modgate";

/// `[state]`: where shared and durable state lives.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawState {
    pub backend: Option<String>,
    pub data_dir: Option<String>,
    pub store_cache_mib: Option<i64>,
    pub redis_url: Option<String>,
    /// Redis's password (or `redis_password_file`), put into `redis_url` in place of any there.
    pub redis_password: Option<Secret>,
    /// With `rediss://`: a PEM file of the certificate authority Redis's certificate is checked
    /// against, instead of the system's roots (a private CA, as managed services often use).
    pub redis_ca_file: Option<String>,
    /// The first part of every key and channel name, so several deployments can share a Redis.
    pub redis_prefix: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Everything in this process (plus the embedded store).
    Memory,
    /// Tokens, limits, quotas, visits, apps, keyword tables and hash banks shared through Redis.
    Redis,
}

#[derive(Debug, Clone)]
pub struct StateConfig {
    pub backend: Backend,
    pub data_dir: PathBuf,
    /// The embedded store's page cache (redb's default, 1 GiB, would dominate resident memory).
    pub store_cache_bytes: usize,
    pub redis_url: Url,
    /// The PEM certificates of `redis_ca_file`, read at validation.
    pub redis_ca: Option<Vec<u8>>,
    pub redis_prefix: String,
}

/// Validates `[state]`, adding every problem to `errs`.
pub(super) fn validate(raw: RawState, errs: &mut Errors) -> StateConfig {
    let backend = match raw.backend.as_deref().unwrap_or("memory") {
        "memory" => Backend::Memory,
        "redis" => Backend::Redis,
        other => {
            errs.push(
                "state.backend",
                format!("{other:?} is not a backend (expected \"memory\" or \"redis\")"),
            );
            Backend::Memory
        }
    };
    let data_dir = raw.data_dir.unwrap_or_else(|| DEFAULT_DATA_DIR.into());
    if data_dir.is_empty() {
        errs.push("state.data_dir", "must not be empty");
    }
    let redis_text = raw.redis_url.unwrap_or_else(|| DEFAULT_REDIS_URL.into());
    let mut redis_url = match Url::parse(&redis_text) {
        Ok(u) if u.scheme() == "redis" || u.scheme() == "rediss" => u,
        _ => {
            errs.push(
                "state.redis_url",
                "must be a redis:// or rediss:// (TLS) URL",
            );
            placeholder_url()
        }
    };
    let redis_ca = match &raw.redis_ca_file {
        None => None,
        Some(_) if redis_url.scheme() != "rediss" => {
            errs.push("state.redis_ca_file", "needs a rediss:// redis_url");
            None
        }
        Some(path) => match std::fs::read(path) {
            Ok(pem) if pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") => Some(pem),
            Ok(_) => {
                errs.push(
                    "state.redis_ca_file",
                    format!("{path} holds no PEM certificate"),
                );
                None
            }
            Err(e) => {
                errs.push("state.redis_ca_file", format!("cannot read {path}: {e}"));
                None
            }
        },
    };
    if let Some(password) = &raw.redis_password
        && redis_url.set_password(Some(password.expose())).is_err()
    {
        errs.push("state.redis_password", "cannot be set on this redis_url");
    }
    let redis_prefix = raw
        .redis_prefix
        .unwrap_or_else(|| DEFAULT_REDIS_PREFIX.into());
    if redis_prefix.is_empty()
        || !redis_prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
    {
        errs.push(
            "state.redis_prefix",
            "must be non-empty ASCII letters, digits, '-', '_', '.' or ':'",
        );
    }
    let store_cache_mib = errs.positive(
        "state.store_cache_mib",
        raw.store_cache_mib,
        DEFAULT_STORE_CACHE_MIB,
        1 << 20,
    );
    StateConfig {
        backend,
        data_dir: PathBuf::from(data_dir),
        store_cache_bytes: usize::try_from(store_cache_mib << 20).unwrap_or(usize::MAX),
        redis_url,
        redis_ca,
        redis_prefix,
    }
}

fn placeholder_url() -> Url {
    // A constant that parses; only reached when an error has already been recorded.
    Url::parse(DEFAULT_REDIS_URL).unwrap_or_else(|_| unreachable!())
}
