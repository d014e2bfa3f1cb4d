//! Configuration: raw TOML values, then a validated [`Config`].
//!
//! Stage one ([`RawConfig`]) is plain serde with `deny_unknown_fields`, so a misspelt key is an
//! error rather than a silently ignored setting. Stage two ([`RawConfig::validate`]) checks every
//! value, collects *all* problems with the key that holds them, and produces types that need no
//! further checking (`SocketAddr`, `Duration`, `NonZero*`, parsed URLs and networks).
//!
//! Defaults (all documented in `config/modgate.example.toml`):
//!
//! | key | default |
//! | --- | --- |
//! | `server.listen` | `0.0.0.0:8080` |
//! | `server.max_connections` | `10000` (at the limit the idlest connections are closed for newcomers) |
//! | `server.max_connections_per_client` | a quarter of `max_connections` (per IPv4 address or IPv6 /64; a client at its share closes its own idlest connection for a new one, or is answered 503) |
//! | `server.header_read_timeout_secs` | `10` |
//! | `server.body_read_timeout_secs` | `15` (a body not whole by then is answered 408 and its connection closed) |
//! | `server.max_body_bytes` | `1048576` (1 MiB; v1 content may be 500 KB) |
//! | `server.drain_timeout_secs` | `30` |
//! | `server.overload_delay_ms` | `100` (queueing delay above which requests are shed, and the longest a request may wait unread; `0`: never) |
//! | `server.huge_pages` | `false` (transparent huge pages off for the process's heap) |
//! | `admin.listen` | `127.0.0.1:9090` |
//! | `state.backend` | `memory` |
//! | `state.data_dir` | `./data` |
//! | `state.store_cache_mib` | `64` (the embedded store's page cache) |
//! | `state.redis_url` / `state.redis_prefix` | `redis://127.0.0.1:6379/0` / `modgate` (with `backend = "redis"`) |
//! | `tokens.ttl_secs` / `tokens.grace_secs` | `7200` / `300` |
//! | `engine.reveal_builtin_words` | `false` |
//! | `media.workers` / `per_app` / `per_host` | `64` / `16` / `8` concurrent job steps |
//! | `media.max_queued` | `100000` unfinished jobs |
//! | `media.max_queued_per_app` | a tenth of `max_queued` (unfinished jobs of one app) |
//! | `media.max_bytes` | `10485760` (10 MiB) |
//! | `media.connect_timeout_secs` / `fetch_timeout_secs` / `push_timeout_secs` | `5` / `30` / `10` |
//! | `media.push_retry_secs` | `[10, 30, 60, 300, 900, 1800, 3600, 7200, 14400, 28800, 28800]` |
//! | `media.retention_hours` | `168` |
//! | `media.lease_secs` | `60` (with Redis: a job held this long without renewal is taken over) |
//! | `media.pdq_distance` | `31` (PDQ bits an image may differ from a bank entry) |
//! | `media.max_pixels` | `40000000` (images over it are refused from their header) |
//! | `risk.history_half_life_secs` / `registration_window_secs` / `max_users` | `1800` / `3600` / `50000` per app |
//! | `media.qr_scan` / `media.qr_links` | `true` / `"risky"` (a QR code leading elsewhere is 10001) |
//! | `review.pass_sample_every` / `max_items_per_app` | `1000` (0: no samples) / `10000` |
//! | `review.retention_secs` / `claim_secs` | `604800` (7 days) / `900` |
//! | `upstream.url` | none (pass-through off: unknown paths are 404) |
//! | `upstream.connect_timeout_secs` / `timeout_secs` | `5` / `30` |
//! | `upstream.max_request_bytes` / `max_response_bytes` | `16777216` / `67108864` |
//! | `upstream.token_check_path` | `/cgi-bin/account/getaccountbasicinfo` |
//! | `upstream.max_tokens` | `100000` platform tokens remembered (and as many refusals) |
//! | `upstream.token_checks_per_second` | `50` unseen tokens checked with the upstream |
//! | `limits.visit_check` (and per app `visit_check`) | `"report"` (`"off"`: no 61010; limits and quotas unchanged) |
//! | `limits.max_visits_per_app` | a tenth of `limits.max_visits` (users with a fresh visit, per app, in process and in Redis) |
//! | `limits.visit_report_per_minute` / `visit_report_per_day` | `2000` / `1000000` |
//! | `limits.risk_rank_per_minute` / `risk_rank_per_day` | `2000` / `1000000` |
//! | `log.format` | `"text"` (`"json"`: one object per line) |
//! | `metrics.apps` | none (apps whose checks and refusals get series of their own; at most 100) |
//!
//! The file is one source: `MODGATE_SECTION__KEY` environment variables override it and secrets
//! may be read from files ([`sources`]).

mod apps;
mod check;
mod engine;
mod limits;
mod log;
mod media;
mod metrics;
mod review;
mod risk;
mod server;
mod sources;
mod state;
mod tokens;
mod upstream;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use apps::{AppConfig, PushFormat, PushMode, RawApp, decode_aes_key};
pub use engine::{EngineConfig, RawEngine, RawLexiconFile};
pub use limits::{LimitsConfig, RawLimits, VisitCheck};
pub use log::{LogConfig, LogFormat, RawLog};
pub use media::{DEFAULT_PUSH_RETRY_SECS, MediaConfig, RawMedia};
pub use metrics::{MAX_APPS_WITH_SERIES, MetricsConfig, RawMetrics};
pub use review::{RawReview, ReviewSettings};
pub use risk::{RawRisk, RiskSettings};
pub use server::{
    AdminConfig, AdminToken, MIN_NAMED_TOKEN_CHARS, RawAdmin, RawAdminToken, RawServer, Role,
    ServerConfig,
};
pub use sources::{ENV_PREFIX, layered};
pub use state::{Backend, RawState, StateConfig};
pub use tokens::{RawTokens, TokenConfig};
pub use upstream::{RawUpstream, UpstreamConfig};

use check::Errors;

/// A string that must never reach a log: `Debug` prints a placeholder.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself; callers must not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The configuration file as written.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawConfig {
    pub server: RawServer,
    pub admin: RawAdmin,
    pub state: RawState,
    pub media: RawMedia,
    pub tokens: RawTokens,
    pub engine: RawEngine,
    pub limits: RawLimits,
    pub risk: RawRisk,
    pub review: RawReview,
    pub upstream: RawUpstream,
    pub log: RawLog,
    pub metrics: RawMetrics,
    pub apps: Vec<RawApp>,
}

/// The validated configuration. Nothing downstream re-checks these values.
#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerConfig,
    pub admin: AdminConfig,
    pub state: StateConfig,
    pub media: MediaConfig,
    pub tokens: TokenConfig,
    pub engine: EngineConfig,
    pub limits: LimitsConfig,
    pub risk: RiskSettings,
    pub review: ReviewSettings,
    /// Pass-through mode, when `[upstream] url` is set.
    pub upstream: Option<UpstreamConfig>,
    pub log: LogConfig,
    pub metrics: MetricsConfig,
    pub apps: Vec<AppConfig>,
}

/// One problem, with the key that holds it (`apps[1].secret`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// Every problem found, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} configuration error(s):", self.0.len())?;
        for e in &self.0 {
            writeln!(f, "  {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl Config {
    /// Parses and validates a TOML document (reading the secret files it names), without the
    /// environment.
    pub fn from_toml(text: &str) -> Result<Config, ConfigErrors> {
        sources::layered(text, std::iter::empty())
    }

    /// Reads, parses and validates a TOML file, alone.
    pub fn from_file(path: &std::path::Path) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors(vec![ConfigError {
                key: "(file)".into(),
                message: format!("cannot read {}: {e}", path.display()),
            }])
        })?;
        Self::from_toml(&text)
    }

    /// What the process runs with: the file (if any), this process's `MODGATE_…` variables over
    /// it and the secret files it names ([`sources`] has the rules), validated.
    pub fn load(path: Option<&std::path::Path>) -> Result<Config, ConfigErrors> {
        sources::load(path)
    }
}

impl Default for Config {
    fn default() -> Self {
        // The empty raw config is valid by construction; a failure here is a bug in the defaults,
        // which the unit tests below pin.
        match RawConfig::default().validate() {
            Ok(c) => c,
            Err(e) => panic!("built-in defaults are invalid: {e}"),
        }
    }
}

impl RawConfig {
    /// Checks every value; on failure returns all problems at once, section by section.
    pub fn validate(self) -> Result<Config, ConfigErrors> {
        let mut errs = Errors::default();
        let server = server::validate(self.server, &mut errs);
        let admin = server::validate_admin(self.admin, &server, &mut errs);
        let state = state::validate(self.state, &mut errs);
        let media = media::validate(self.media, &mut errs);
        let tokens = tokens::validate(self.tokens, &mut errs);
        let engine = engine::validate(self.engine, &mut errs);
        let risk = risk::validate(self.risk, &mut errs);
        let review = review::validate(self.review, &mut errs);
        let limits = limits::validate(self.limits, &mut errs);
        let upstream = upstream::validate(self.upstream, &mut errs);
        let log = log::validate(self.log, &mut errs);
        let metrics = metrics::validate(self.metrics, &mut errs);
        let apps = apps::validate(self.apps, &mut errs);
        if errs.0.is_empty() {
            Ok(Config {
                server,
                admin,
                state,
                media,
                tokens,
                engine,
                limits,
                risk,
                review,
                upstream,
                log,
                metrics,
                apps,
            })
        } else {
            Err(ConfigErrors(errs.0))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use super::*;
    use crate::engine::Label;

    #[test]
    fn empty_file_gives_documented_defaults() {
        let c = Config::from_toml("").unwrap();
        assert_eq!(c.server.listen, "0.0.0.0:8080".parse().unwrap());
        assert_eq!(c.admin.listen, "127.0.0.1:9090".parse().unwrap());
        assert_eq!(c.server.max_body_bytes.get(), 1 << 20);
        assert_eq!(c.tokens.ttl, Duration::from_secs(7200));
        assert_eq!(c.tokens.grace, Duration::from_secs(300));
        assert_eq!(c.state.backend, Backend::Memory);
        assert!(c.apps.is_empty());
        assert!(!c.engine.reveal_builtin_words);
        assert!(c.limits.enforce);
        assert_eq!(c.limits.text_per_minute.get(), 4000);
        assert_eq!(c.limits.media_per_minute.get(), 2000);
        assert_eq!(c.limits.text_per_day.get(), 2_000_000);
        assert_eq!(c.limits.media_per_day.get(), 200_000);
        assert_eq!(c.limits.day_offset_hours, 8);
        assert_eq!(c.limits.resets_per_month, 10);
        assert_eq!(c.limits.visit_ttl, Duration::from_secs(7200));
        assert_eq!(c.media.workers.get(), 64);
        assert_eq!(c.media.per_app.get(), 16);
        assert_eq!(c.media.per_host.get(), 8);
        assert_eq!(c.media.max_queued.get(), 100_000);
        assert_eq!(c.media.max_bytes, 10 << 20);
        assert_eq!(c.media.fetch_timeout, Duration::from_secs(30));
        let retry: Duration = c.media.push_retry.iter().sum();
        assert_eq!(c.media.push_retry.len(), 11);
        assert!(
            (23..=25).contains(&(retry.as_secs() / 3600)),
            "{retry:?}: about a day"
        );
        assert_eq!(c.media.retention, Duration::from_secs(7 * 86_400));
    }

    #[test]
    fn aes_keys_with_unused_trailing_bits_are_accepted() {
        let canonical = decode_aes_key(&"A".repeat(43)).unwrap();
        assert_eq!(canonical, [0u8; 32]);
        // 'G' leaves two set bits past the 32nd byte: still the same key material before them.
        let lenient = decode_aes_key("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG").unwrap();
        let canonical = decode_aes_key("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFE").unwrap();
        assert_eq!(lenient, canonical);
        assert!(decode_aes_key("abc").is_none());
        assert!(decode_aes_key(&"!".repeat(43)).is_none());
    }

    /// The documented example is valid and says what the defaults are.
    #[test]
    fn the_example_config_parses_to_the_defaults() {
        let example = Config::from_toml(include_str!("../../config/modgate.example.toml")).unwrap();
        let defaults = Config::from_toml("").unwrap();
        assert_eq!(
            format!("{:?}", example.media),
            format!("{:?}", defaults.media)
        );
        assert_eq!(
            format!("{:?}", example.limits),
            format!("{:?}", defaults.limits)
        );
        assert_eq!(
            format!("{:?}", example.server),
            format!("{:?}", defaults.server)
        );
        assert_eq!(
            example.state.store_cache_bytes,
            defaults.state.store_cache_bytes
        );
        assert_eq!(
            format!("{:?}", example.risk),
            format!("{:?}", defaults.risk)
        );
        assert_eq!(example.review, defaults.review);
        assert_eq!(example.log, defaults.log);
        assert_eq!(example.metrics, defaults.metrics);
    }

    #[test]
    fn media_settings_are_checked() {
        let c = Config::from_toml(
            "[media]\nworkers = 4\npush_retry_secs = [0.05, 0.1]\nfetch_timeout_secs = 2.5\n",
        )
        .unwrap();
        assert_eq!(c.media.workers.get(), 4);
        assert_eq!(
            c.media.push_retry,
            [Duration::from_millis(50), Duration::from_millis(100)]
        );
        assert_eq!(c.media.fetch_timeout, Duration::from_millis(2500));
        let e = Config::from_toml(
            "[media]\nworkers = 0\npush_retry_secs = [1, -1]\nconnect_timeout_secs = 0\nmax_bytes = -5\nqr_links = \"maybe\"\n",
        )
        .unwrap_err();
        let keys: Vec<&str> = e.0.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "media.push_retry_secs[1]",
                "media.workers",
                "media.max_bytes",
                "media.connect_timeout_secs",
                "media.qr_links"
            ]
        );
    }

    /// The visit rule: `report` unless `limits.visit_check` or the app says otherwise; a value
    /// that is neither word is refused under its key; an app's own setting survives the round
    /// trip through the admin API's form.
    #[test]
    fn visit_check_defaults_to_report_and_apps_override_it() {
        let c = Config::from_toml("").unwrap();
        assert_eq!(c.limits.visit_check, VisitCheck::Report);
        let c = Config::from_toml(
            "[limits]\nvisit_check = \"off\"\n[[apps]]\nappid = \"wx0123456789abcdef\"\n\
             secret = \"0123456789abcdef0123456789abcdef\"\nvisit_check = \"report\"\n\
             [[apps]]\nappid = \"wxfedcba9876543210\"\n\
             secret = \"fedcba9876543210fedcba9876543210\"\n",
        )
        .unwrap();
        assert_eq!(c.limits.visit_check, VisitCheck::Off);
        assert_eq!(c.apps[0].visit_check, Some(VisitCheck::Report));
        assert_eq!(c.apps[1].visit_check, None);
        let again = c.apps[0].to_raw().validate().unwrap();
        assert_eq!(again.visit_check, Some(VisitCheck::Report));
        assert_eq!(c.apps[1].to_raw().validate().unwrap().visit_check, None);
        let e = Config::from_toml(
            "[limits]\nvisit_check = \"sometimes\"\n[[apps]]\nappid = \"wx0123456789abcdef\"\n\
             secret = \"0123456789abcdef0123456789abcdef\"\nvisit_check = \"never\"\n",
        )
        .unwrap_err();
        let keys: Vec<&str> = e.0.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["limits.visit_check", "apps[0].visit_check"]);
        assert!(e.0[0].message.contains("\"report\" or \"off\""), "{e}");
    }

    #[test]
    fn spec_example_config_parses() {
        let text = r#"
[server]
listen = "0.0.0.0:8080"
[admin]
listen = "127.0.0.1:9090"
token = "change-me"
[state]
backend = "memory"
data_dir = "./data"
redis_url = "redis://127.0.0.1:6379/0"
[media]
allow_networks = ["127.0.0.0/8"]
[[apps]]
appid = "wx0123456789abcdef"
secret = "0123456789abcdef0123456789abcdef"
original_id = "gh_0123456789ab"
push_url = "http://127.0.0.1:9999/push"
push_token = "AAAAA"
push_format = "json"
push_mode = "plain"
encoding_aes_key = ""
"#;
        let c = Config::from_toml(text).unwrap();
        assert_eq!(c.apps.len(), 1);
        assert_eq!(c.apps[0].appid, "wx0123456789abcdef");
        assert_eq!(c.media.allow_networks.len(), 1);
        // A push URL without a token would send pushes anyone could forge.
        let e = Config::from_toml(&text.replace("push_token = \"AAAAA\"\n", "")).unwrap_err();
        let keys: Vec<&str> = e.0.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["apps[0].push_token"], "{e}");
        assert!(e.0[0].message.contains("required with push_url"), "{e}");
    }

    /// The configuration docker-compose.yml gives its three gateways is valid and shared.
    #[test]
    fn the_compose_configuration_is_valid() {
        let c = Config::from_toml(include_str!("../../deploy/modgate-shared.toml")).unwrap();
        assert_eq!(c.state.backend, Backend::Redis);
        assert_eq!(c.state.redis_url.as_str(), "redis://redis:6379/0");
        assert_eq!(c.server.listen.port(), 8080);
        assert_eq!(c.admin.listen.port(), 9090);
    }

    #[test]
    fn the_redis_backend_is_chosen_with_its_url_and_prefix() {
        let c = Config::from_toml(
            "[state]\nbackend = \"redis\"\nredis_url = \"redis://10.0.0.5:6380/2\"\nredis_prefix = \"mg-prod\"\n",
        )
        .unwrap();
        assert_eq!(c.state.backend, Backend::Redis);
        assert_eq!(c.state.redis_url.as_str(), "redis://10.0.0.5:6380/2");
        assert_eq!(c.state.redis_prefix, "mg-prod");
        // TLS: rediss:// is accepted; a CA file needs it and must hold a certificate.
        let c = Config::from_toml("[state]\nredis_url = \"rediss://h:6379\"\n").unwrap();
        assert_eq!(c.state.redis_url.scheme(), "rediss");
        assert!(c.state.redis_ca.is_none());
        let errs = Config::from_toml(
            "[state]\nbackend = \"redis\"\nredis_url = \"http://h:6379\"\nredis_prefix = \"a b\"\n",
        )
        .unwrap_err();
        let keys: Vec<&str> = errs.0.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["state.redis_url", "state.redis_prefix"]);
        assert!(
            errs.0[0].message.contains("rediss://"),
            "{}",
            errs.0[0].message
        );
        let errs = Config::from_toml(
            "[state]\nredis_url = \"redis://h:6379\"\nredis_ca_file = \"/etc/hosts\"\n",
        )
        .unwrap_err();
        assert_eq!(errs.0[0].key, "state.redis_ca_file");
        assert!(errs.0[0].message.contains("needs a rediss://"));
        let errs = Config::from_toml(
            "[state]\nredis_url = \"rediss://h:6379\"\nredis_ca_file = \"/etc/hosts\"\n",
        )
        .unwrap_err();
        assert!(
            errs.0[0].message.contains("no PEM certificate"),
            "{}",
            errs.0[0].message
        );
        // A lease shorter than a second would have instances renewing in a busy loop.
        assert_eq!(c.media.lease, std::time::Duration::from_secs(60));
        let errs = Config::from_toml("[media]\nlease_secs = 0.5\n").unwrap_err();
        assert_eq!(errs.0[0].key, "media.lease_secs");
    }

    #[test]
    fn named_admin_tokens_are_checked() {
        let c = Config::from_toml(
            "[[admin.tokens]]\nname = \"alice\"\ntoken = \"0123456789abcdef\"\nrole = \"reviewer\"\n",
        )
        .unwrap();
        assert!(c.admin.token.is_none());
        assert_eq!(c.admin.tokens.len(), 1);
        assert_eq!(c.admin.tokens[0].name, "alice");
        assert_eq!(c.admin.tokens[0].role, Role::Reviewer);
        let errs = Config::from_toml(concat!(
            "[admin]\ntoken = \"0123456789abcdef\"\n",
            "[[admin.tokens]]\nname = \"a\"\ntoken = \"short\"\nrole = \"root\"\n",
            "[[admin.tokens]]\nname = \"a\"\ntoken = \"0123456789abcdef\"\n",
            "[[admin.tokens]]\nname = \"\"\ntoken = \"fedcba9876543210\"\nrole = \"admin\"\n",
        ))
        .unwrap_err();
        let keys: Vec<&str> = errs.0.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "admin.tokens[0].token",
                "admin.tokens[0].role",
                "admin.tokens[1].name",
                "admin.tokens[1].token",
                "admin.tokens[1].role",
                "admin.tokens[2].name",
            ],
            "{errs}"
        );
        assert!(errs.0[3].message.contains("same as another"), "{errs}");
    }

    #[test]
    fn store_cache_defaults_to_64_mib_and_must_be_positive() {
        let c = Config::from_toml("").unwrap();
        assert_eq!(c.state.store_cache_bytes, 64 << 20);
        let c = Config::from_toml("[state]\nstore_cache_mib = 8\n").unwrap();
        assert_eq!(c.state.store_cache_bytes, 8 << 20);
        let errs = Config::from_toml("[state]\nstore_cache_mib = 0\n").unwrap_err();
        assert_eq!(errs.0[0].key, "state.store_cache_mib");
    }

    #[test]
    fn all_errors_are_reported_at_once_with_their_keys() {
        let text = r#"
[server]
listen = "nowhere"
max_connections = 0
[state]
backend = "etcd"
[media]
allow_networks = ["10.0.0.0/33"]
[[apps]]
appid = "wx123"
secret = "short"
push_mode = "aes"
[[apps]]
secret = "0123456789abcdef0123456789abcdef"
text_per_minute = -4
"#;
        let errs = Config::from_toml(text).unwrap_err();
        let keys: Vec<&str> = errs.0.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "server.listen",
                "server.max_connections",
                "state.backend",
                "media.allow_networks[0]",
                "apps[0].appid",
                "apps[0].secret",
                "apps[1].appid",
                "apps[1].text_per_minute",
            ]
        );
    }

    #[test]
    fn aes_mode_needs_a_key_and_the_key_must_decode() {
        let base = r#"
[[apps]]
appid = "wx0123456789abcdef"
secret = "0123456789abcdef0123456789abcdef"
push_mode = "aes"
"#;
        let errs = Config::from_toml(base).unwrap_err();
        assert_eq!(errs.0[0].key, "apps[0].encoding_aes_key");
        let good = format!("{base}encoding_aes_key = \"{}\"\n", "A".repeat(43));
        let c = Config::from_toml(&good).unwrap();
        assert_eq!(c.apps[0].aes_key, Some([0u8; 32]));
        let bad = format!("{base}encoding_aes_key = \"{}\"\n", "A".repeat(42));
        assert_eq!(
            Config::from_toml(&bad).unwrap_err().0[0].key,
            "apps[0].encoding_aes_key"
        );
        // The compatible mode encrypts too, so it needs the key as well; it survives the round
        // trip through the admin API's form.
        let compat = base.replace("\"aes\"", "\"compat\"");
        let errs = Config::from_toml(&compat).unwrap_err();
        assert_eq!(errs.0[0].key, "apps[0].encoding_aes_key");
        assert!(errs.0[0].message.contains("compat"), "{errs}");
        let c = Config::from_toml(&format!(
            "{compat}encoding_aes_key = \"{}\"\n",
            "A".repeat(43)
        ))
        .unwrap();
        assert_eq!(c.apps[0].push_mode, PushMode::Compat);
        assert_eq!(
            c.apps[0].to_raw().validate().unwrap().push_mode,
            PushMode::Compat
        );
        let unknown = base.replace("\"aes\"", "\"both\"");
        let errs = Config::from_toml(&unknown).unwrap_err();
        assert_eq!(errs.0[0].key, "apps[0].push_mode");
    }

    #[test]
    fn duplicate_appids_and_unknown_keys_are_refused() {
        let dup = r#"
[[apps]]
appid = "wx0123456789abcdef"
secret = "0123456789abcdef0123456789abcdef"
[[apps]]
appid = "wx0123456789abcdef"
secret = "0123456789abcdef0123456789abcdef"
"#;
        let errs = Config::from_toml(dup).unwrap_err();
        assert_eq!(errs.0.len(), 1);
        assert_eq!(errs.0[0].key, "apps[1].appid");
        let unknown = Config::from_toml("[server]\nlisten_on = \"x\"\n").unwrap_err();
        assert!(unknown.to_string().contains("listen_on"), "{unknown}");
    }

    #[test]
    fn operator_lexicon_files_need_a_path_and_a_label() {
        let ok =
            Config::from_toml("[[engine.lexicon]]\npath = \"x.txt\"\nlabel = 20006\n").unwrap();
        assert_eq!(
            ok.engine.lexicon_files,
            [(PathBuf::from("x.txt"), Label::Illegal)]
        );
        let errs = Config::from_toml("[[engine.lexicon]]\nlabel = 100\n").unwrap_err();
        let keys: Vec<&str> = errs.0.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["engine.lexicon[0].path", "engine.lexicon[0].label"]);
    }

    #[test]
    fn apps_round_trip_through_their_raw_form() {
        let text = format!(
            "[[apps]]\nappid = \"wx0123456789abcdef\"\nsecret = \"0123456789abcdef0123456789abcdef\"\npush_mode = \"aes\"\nencoding_aes_key = \"{}\"\ntext_per_day = 7\n",
            "A".repeat(43)
        );
        let app = Config::from_toml(&text).unwrap().apps.remove(0);
        let again = app.to_raw().validate().unwrap();
        assert_eq!(again.aes_key, app.aes_key);
        assert_eq!(again.text_per_day, app.text_per_day);
        assert_eq!(
            app.to_raw().encoding_aes_key.unwrap().expose(),
            "A".repeat(43)
        );
        let errs = RawApp::default().validate().unwrap_err();
        assert_eq!(errs.0[0].key, "app.appid");
    }

    #[test]
    fn secrets_do_not_show_in_debug_output() {
        let c = Config::from_toml(
            r#"
[admin]
token = "very-secret-admin-token"
[[apps]]
appid = "wx0123456789abcdef"
secret = "0123456789abcdef0123456789abcdef"
"#,
        )
        .unwrap();
        let dump = format!("{c:?}");
        assert!(!dump.contains("very-secret-admin-token"));
        assert!(!dump.contains("0123456789abcdef0123456789abcdef"));
    }
}
