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
//! | `server.header_read_timeout_secs` | `10` |
//! | `server.max_body_bytes` | `1048576` (1 MiB; v1 content may be 500 KB) |
//! | `server.drain_timeout_secs` | `30` |
//! | `server.overload_delay_ms` | `100` (queueing delay above which requests are shed, and the longest a request may wait unread; `0`: never) |
//! | `admin.listen` | `127.0.0.1:9090` |
//! | `state.backend` | `memory` |
//! | `state.data_dir` | `./data` |
//! | `state.store_cache_mib` | `64` (the embedded store's page cache) |
//! | `state.redis_url` / `state.redis_prefix` | `redis://127.0.0.1:6379/0` / `modgate` (with `backend = "redis"`) |
//! | `tokens.ttl_secs` / `tokens.grace_secs` | `7200` / `300` |
//! | `engine.reveal_builtin_words` | `false` |
//! | `media.workers` / `per_app` / `per_host` | `64` / `16` / `8` concurrent job steps |
//! | `media.max_queued` | `100000` unfinished jobs |
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

use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;
use std::num::{NonZeroU32, NonZeroU64, NonZeroUsize};
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::engine::Label;

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

// ---------------------------------------------------------------------------------------------
// Stage one: raw values
// ---------------------------------------------------------------------------------------------

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
    pub apps: Vec<RawApp>,
}

/// `[review]`: the human review queue ([`crate::review`]).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawReview {
    pub pass_sample_every: Option<i64>,
    pub max_items_per_app: Option<i64>,
    pub retention_secs: Option<i64>,
    pub claim_secs: Option<i64>,
}

/// `[risk]`: the user risk model ([`crate::risk`]).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawRisk {
    pub history_half_life_secs: Option<i64>,
    pub registration_window_secs: Option<i64>,
    pub max_users: Option<i64>,
}

/// `[limits]`: rate limits, daily quotas and visit freshness.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawLimits {
    pub enforce: Option<bool>,
    pub text_per_minute: Option<i64>,
    pub media_per_minute: Option<i64>,
    pub text_per_day: Option<i64>,
    pub media_per_day: Option<i64>,
    pub day_offset_hours: Option<i64>,
    pub resets_per_month: Option<i64>,
    pub visit_ttl_secs: Option<i64>,
    pub max_visits: Option<i64>,
    pub visit_sweep_secs: Option<i64>,
}

/// `[server]`: the WeChat-compatible listener.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawServer {
    pub listen: Option<String>,
    pub max_connections: Option<i64>,
    pub header_read_timeout_secs: Option<i64>,
    pub max_body_bytes: Option<i64>,
    pub drain_timeout_secs: Option<i64>,
    pub overload_delay_ms: Option<i64>,
}

/// `[admin]`: the operator listener.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawAdmin {
    pub listen: Option<String>,
    pub token: Option<Secret>,
}

/// `[state]`: where shared and durable state lives.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawState {
    pub backend: Option<String>,
    pub data_dir: Option<String>,
    pub store_cache_mib: Option<i64>,
    pub redis_url: Option<String>,
    /// The first part of every key and channel name, so several deployments can share a Redis.
    pub redis_prefix: Option<String>,
}

/// `[media]`: media jobs, the fetcher and pushes.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawMedia {
    pub allow_networks: Vec<String>,
    pub workers: Option<i64>,
    pub per_app: Option<i64>,
    pub per_host: Option<i64>,
    pub max_queued: Option<i64>,
    pub max_bytes: Option<i64>,
    pub connect_timeout_secs: Option<f64>,
    pub fetch_timeout_secs: Option<f64>,
    pub push_timeout_secs: Option<f64>,
    pub push_retry_secs: Option<Vec<f64>>,
    pub retention_hours: Option<i64>,
    pub lease_secs: Option<f64>,
    pub pdq_distance: Option<i64>,
    pub max_pixels: Option<i64>,
    pub qr_scan: Option<bool>,
    pub qr_links: Option<String>,
}

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

/// `[engine]`: text engine behaviour.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawEngine {
    pub reveal_builtin_words: Option<bool>,
    /// Operator lexicon files, added to the built-in lexicon.
    pub lexicon: Vec<RawLexiconFile>,
}

/// One `[[engine.lexicon]]` entry.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawLexiconFile {
    pub path: Option<String>,
    pub label: Option<i64>,
}

/// One `[[apps]]` entry (also the admin API's app body, and what the embedded store keeps).
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawApp {
    pub appid: Option<String>,
    pub secret: Option<Secret>,
    pub original_id: Option<String>,
    pub push_url: Option<String>,
    pub push_token: Option<Secret>,
    pub push_format: Option<String>,
    pub push_mode: Option<String>,
    pub encoding_aes_key: Option<Secret>,
    pub text_per_minute: Option<i64>,
    pub text_per_day: Option<i64>,
    pub media_per_minute: Option<i64>,
    pub media_per_day: Option<i64>,
}

// ---------------------------------------------------------------------------------------------
// Stage two: validated values
// ---------------------------------------------------------------------------------------------

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
    pub risk: crate::risk::RiskSettings,
    pub review: crate::review::ReviewSettings,
    pub apps: Vec<AppConfig>,
}

/// Validated `[limits]`.
#[derive(Debug, Clone)]
pub struct LimitsConfig {
    /// `false` skips rate limits, quotas and the visit check (benchmarks and tests only).
    pub enforce: bool,
    pub text_per_minute: NonZeroU32,
    pub media_per_minute: NonZeroU32,
    pub text_per_day: NonZeroU32,
    pub media_per_day: NonZeroU32,
    /// The quota day's offset from UTC (China: +8, no DST).
    pub day_offset_hours: i8,
    pub resets_per_month: u32,
    pub visit_ttl: Duration,
    pub max_visits: NonZeroUsize,
    pub visit_sweep: Duration,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub max_connections: NonZeroUsize,
    pub header_read_timeout: Duration,
    pub max_body_bytes: NonZeroU64,
    pub drain_timeout: Duration,
    /// Queueing delay above which a share of requests is shed; `None`: never
    /// ([`crate::overload`]).
    pub overload_delay: Option<Duration>,
}

#[derive(Debug, Clone)]
pub struct AdminConfig {
    pub listen: SocketAddr,
    /// Bearer token for `/admin/*`. `None` disables those routes; `/metrics`, `/healthz` and
    /// `/readyz` stay open, as scrapers and probes expect.
    pub token: Option<Secret>,
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
    pub redis_prefix: String,
}

/// Validated `[media]`.
#[derive(Debug, Clone)]
pub struct MediaConfig {
    /// Ranges exempt from the fetch and push deny list.
    pub allow_networks: Vec<IpNet>,
    /// Jobs worked on at once (fetching, analysing or pushing), in all.
    pub workers: NonZeroUsize,
    /// ... and per app, so one busy app cannot take every worker.
    pub per_app: NonZeroUsize,
    /// ... and per destination host, so one slow host cannot either.
    pub per_host: NonZeroUsize,
    /// Unfinished jobs held at most; past it submissions answer -1 (system busy).
    pub max_queued: NonZeroUsize,
    /// The media size cap (SPEC: 10 MB).
    pub max_bytes: u64,
    pub connect_timeout: Duration,
    pub fetch_timeout: Duration,
    pub push_timeout: Duration,
    /// Wait before each retry of a failed push (before jitter); its length is the number of
    /// retries, after which the job is dead-lettered.
    pub push_retry: Vec<Duration>,
    /// How long finished jobs stay readable.
    pub retention: Duration,
    /// With shared state: how long an instance may hold a job without renewing its lease
    /// before another instance takes it over ([`crate::media::shared`]).
    pub lease: Duration,
    /// An image matches a bank entry within this many differing PDQ bits.
    pub pdq_distance: u32,
    /// Images with more pixels than this are refused before decoding.
    pub max_pixels: u64,
    /// Whether images are scanned for QR codes.
    pub qr_scan: bool,
    /// What a QR code that leads somewhere (link, contact, account) is: `risky`, `review`, or
    /// `pass` (links ignored; the code's text is still checked).
    pub qr_links: &'static str,
}

/// The default push retry schedule: roughly doubling waits, about 24 hours in all.
pub const DEFAULT_PUSH_RETRY_SECS: [u64; 11] = [
    10, 30, 60, 300, 900, 1800, 3600, 7200, 14_400, 28_800, 28_800,
];

#[derive(Debug, Clone)]
pub struct TokenConfig {
    pub key: Option<Secret>,
    pub ttl: Duration,
    pub grace: Duration,
}

#[derive(Debug, Clone, Default)]
pub struct EngineConfig {
    pub reveal_builtin_words: bool,
    /// Operator lexicon files (`word<TAB>suggest<TAB>prob`) and the label of each.
    pub lexicon_files: Vec<(PathBuf, Label)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PushFormat {
    #[default]
    Json,
    Xml,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PushMode {
    #[default]
    Plain,
    Aes,
}

/// A registered app.
#[derive(Debug, Clone)]
pub struct AppConfig {
    pub appid: String,
    pub secret: Secret,
    pub original_id: Option<String>,
    pub push_url: Option<Url>,
    pub push_token: Option<Secret>,
    pub push_format: PushFormat,
    pub push_mode: PushMode,
    /// The decoded 32-byte AES key, present when `encoding_aes_key` is set.
    pub aes_key: Option<[u8; 32]>,
    pub text_per_minute: Option<NonZeroU32>,
    pub text_per_day: Option<NonZeroU32>,
    pub media_per_minute: Option<NonZeroU32>,
    pub media_per_day: Option<NonZeroU32>,
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
    /// Parses and validates a TOML document.
    pub fn from_toml(text: &str) -> Result<Config, ConfigErrors> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            ConfigErrors(vec![ConfigError {
                key: "(file)".into(),
                message: e.to_string().trim_end().replace('\n', "\n    "),
            }])
        })?;
        raw.validate()
    }

    /// Reads, parses and validates a TOML file.
    pub fn from_file(path: &std::path::Path) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors(vec![ConfigError {
                key: "(file)".into(),
                message: format!("cannot read {}: {e}", path.display()),
            }])
        })?;
        Self::from_toml(&text)
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

/// Collects errors while validating.
#[derive(Default)]
struct Errors(Vec<ConfigError>);

impl Errors {
    fn push(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.0.push(ConfigError {
            key: key.into(),
            message: message.into(),
        });
    }

    fn addr(&mut self, key: &str, value: Option<&str>, default: &str) -> SocketAddr {
        let text = value.unwrap_or(default);
        match text.parse() {
            Ok(a) => a,
            Err(_) => {
                self.push(key, format!("{text:?} is not an IP:port address"));
                // Any placeholder will do: an error was recorded, so this Config is never built.
                SocketAddr::from(([0, 0, 0, 0], 0))
            }
        }
    }

    fn positive(&mut self, key: &str, value: Option<i64>, default: u64, max: u64) -> u64 {
        match value {
            None => default,
            Some(v) if v >= 1 && (v as u64) <= max => v as u64,
            Some(v) => {
                self.push(key, format!("{v} is out of range (1..={max})"));
                default
            }
        }
    }

    fn opt_positive_u32(&mut self, key: &str, value: Option<i64>) -> Option<NonZeroU32> {
        let v = value?;
        match u32::try_from(v).ok().and_then(NonZeroU32::new) {
            Some(n) => Some(n),
            None => {
                self.push(key, format!("{v} is out of range (1..={})", u32::MAX));
                None
            }
        }
    }
}

impl RawConfig {
    /// Checks every value; on failure returns all problems at once.
    pub fn validate(self) -> Result<Config, ConfigErrors> {
        let mut errs = Errors::default();

        let server = ServerConfig {
            listen: errs.addr(
                "server.listen",
                self.server.listen.as_deref(),
                "0.0.0.0:8080",
            ),
            max_connections: NonZeroUsize::new(errs.positive(
                "server.max_connections",
                self.server.max_connections,
                10_000,
                1_000_000,
            ) as usize)
            .unwrap_or(NonZeroUsize::MIN),
            header_read_timeout: Duration::from_secs(errs.positive(
                "server.header_read_timeout_secs",
                self.server.header_read_timeout_secs,
                10,
                3600,
            )),
            max_body_bytes: NonZeroU64::new(errs.positive(
                "server.max_body_bytes",
                self.server.max_body_bytes,
                1 << 20,
                64 << 20,
            ))
            .unwrap_or(NonZeroU64::MIN),
            drain_timeout: Duration::from_secs(errs.positive(
                "server.drain_timeout_secs",
                self.server.drain_timeout_secs,
                30,
                3600,
            )),
            overload_delay: match self.server.overload_delay_ms {
                None => Some(Duration::from_millis(100)),
                Some(0) => None,
                Some(ms @ 1..=60_000) => Some(Duration::from_millis(ms as u64)),
                Some(ms) => {
                    errs.push(
                        "server.overload_delay_ms",
                        format!("{ms} is out of range (0 turns shedding off, else 1..=60000)"),
                    );
                    None
                }
            },
        };
        if server.max_body_bytes.get() < 512_000 + 1024 {
            errs.push(
                "server.max_body_bytes",
                "must be at least 513024: a v1 msgSecCheck body carries up to 500 KB of content",
            );
        }

        let admin_token = match self.admin.token {
            Some(t) if t.expose().is_empty() => {
                errs.push(
                    "admin.token",
                    "must not be empty (omit it to disable /admin/*)",
                );
                None
            }
            other => other,
        };
        let admin = AdminConfig {
            listen: errs.addr(
                "admin.listen",
                self.admin.listen.as_deref(),
                "127.0.0.1:9090",
            ),
            token: admin_token,
        };
        if admin.listen.port() != 0 && admin.listen == server.listen {
            errs.push("admin.listen", "must differ from server.listen");
        }

        let backend = match self.state.backend.as_deref().unwrap_or("memory") {
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
        let data_dir = self.state.data_dir.unwrap_or_else(|| "./data".into());
        if data_dir.is_empty() {
            errs.push("state.data_dir", "must not be empty");
        }
        let redis_text = self
            .state
            .redis_url
            .unwrap_or_else(|| "redis://127.0.0.1:6379/0".into());
        let redis_url = match Url::parse(&redis_text) {
            Ok(u) if u.scheme() == "redis" => u,
            Ok(u) if u.scheme() == "rediss" => {
                errs.push(
                    "state.redis_url",
                    "rediss:// (TLS) is not supported by this build; reach Redis over a private \
                     network or a TLS tunnel with redis://",
                );
                u
            }
            _ => {
                errs.push("state.redis_url", "must be a redis:// URL");
                placeholder_url()
            }
        };
        let redis_prefix = self.state.redis_prefix.unwrap_or_else(|| "modgate".into());
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
            self.state.store_cache_mib,
            64,
            1 << 20,
        );
        let state = StateConfig {
            backend,
            data_dir: PathBuf::from(data_dir),
            store_cache_bytes: usize::try_from(store_cache_mib << 20).unwrap_or(usize::MAX),
            redis_url,
            redis_prefix,
        };

        let mut allow_networks = Vec::with_capacity(self.media.allow_networks.len());
        for (i, text) in self.media.allow_networks.iter().enumerate() {
            match text.parse::<IpNet>() {
                Ok(n) => allow_networks.push(n.trunc()),
                Err(_) => errs.push(
                    format!("media.allow_networks[{i}]"),
                    format!("{text:?} is not a CIDR network (like \"127.0.0.0/8\")"),
                ),
            }
        }

        let m = &self.media;
        let seconds = |errs: &mut Errors, key: &str, v: Option<f64>, default: f64| -> Duration {
            let v = v.unwrap_or(default);
            if v.is_finite() && v > 0.0 && v <= 86_400.0 {
                Duration::from_secs_f64(v)
            } else {
                errs.push(
                    format!("media.{key}"),
                    format!("{v} is out of range (0 < secs <= 86400)"),
                );
                Duration::from_secs_f64(default)
            }
        };
        let mut push_retry = Vec::new();
        match &m.push_retry_secs {
            None => push_retry.extend(
                DEFAULT_PUSH_RETRY_SECS
                    .iter()
                    .map(|s| Duration::from_secs(*s)),
            ),
            Some(list) if list.len() > 100 => {
                errs.push("media.push_retry_secs", "at most 100 retries");
            }
            Some(list) => {
                for (i, v) in list.iter().enumerate() {
                    push_retry.push(seconds(
                        &mut errs,
                        &format!("push_retry_secs[{i}]"),
                        Some(*v),
                        1.0,
                    ));
                }
            }
        }
        let media = MediaConfig {
            allow_networks,
            workers: NonZeroUsize::new(
                errs.positive("media.workers", m.workers, 64, 10_000) as usize
            )
            .unwrap_or(NonZeroUsize::MIN),
            per_app: NonZeroUsize::new(
                errs.positive("media.per_app", m.per_app, 16, 10_000) as usize
            )
            .unwrap_or(NonZeroUsize::MIN),
            per_host: NonZeroUsize::new(
                errs.positive("media.per_host", m.per_host, 8, 10_000) as usize
            )
            .unwrap_or(NonZeroUsize::MIN),
            max_queued: NonZeroUsize::new(errs.positive(
                "media.max_queued",
                m.max_queued,
                100_000,
                100_000_000,
            ) as usize)
            .unwrap_or(NonZeroUsize::MIN),
            max_bytes: errs.positive("media.max_bytes", m.max_bytes, 10 << 20, 1 << 30),
            connect_timeout: seconds(
                &mut errs,
                "connect_timeout_secs",
                m.connect_timeout_secs,
                5.0,
            ),
            fetch_timeout: seconds(&mut errs, "fetch_timeout_secs", m.fetch_timeout_secs, 30.0),
            push_timeout: seconds(&mut errs, "push_timeout_secs", m.push_timeout_secs, 10.0),
            push_retry,
            retention: Duration::from_secs(
                3600 * errs.positive("media.retention_hours", m.retention_hours, 168, 24 * 365),
            ),
            lease: match seconds(&mut errs, "lease_secs", m.lease_secs, 60.0) {
                lease if lease < Duration::from_secs(1) => {
                    errs.push("media.lease_secs", "must be at least 1 second");
                    Duration::from_secs(60)
                }
                lease => lease,
            },
            pdq_distance: errs.positive("media.pdq_distance", m.pdq_distance, 31, 128) as u32,
            max_pixels: errs.positive("media.max_pixels", m.max_pixels, 40_000_000, 1_000_000_000),
            qr_scan: m.qr_scan.unwrap_or(true),
            qr_links: match m.qr_links.as_deref() {
                None | Some("risky") => "risky",
                Some("review") => "review",
                Some("pass") => "pass",
                Some(other) => {
                    errs.push(
                        "media.qr_links",
                        format!("{other:?} must be \"risky\", \"review\" or \"pass\""),
                    );
                    "risky"
                }
            },
        };

        let tokens = TokenConfig {
            key: match self.tokens.key {
                Some(k) if k.expose().is_empty() => None,
                Some(k) if k.expose().len() < 16 => {
                    errs.push("tokens.key", "must be at least 16 characters when set");
                    None
                }
                other => other,
            },
            ttl: Duration::from_secs(errs.positive(
                "tokens.ttl_secs",
                self.tokens.ttl_secs,
                7200,
                86_400 * 30,
            )),
            grace: Duration::from_secs(match self.tokens.grace_secs {
                None => 300,
                Some(v) if (0..=86_400).contains(&v) => v as u64,
                Some(v) => {
                    errs.push(
                        "tokens.grace_secs",
                        format!("{v} is out of range (0..=86400)"),
                    );
                    300
                }
            }),
        };

        let mut lexicon_files = Vec::new();
        for (i, file) in self.engine.lexicon.iter().enumerate() {
            let key = format!("engine.lexicon[{i}]");
            let path = match file.path.as_deref() {
                Some(p) if !p.is_empty() => Some(PathBuf::from(p)),
                _ => {
                    errs.push(format!("{key}.path"), "is required");
                    None
                }
            };
            let label = match file.label {
                Some(code) => match u32::try_from(code).ok().and_then(Label::from_code) {
                    Some(l) if l != Label::Normal => Some(l),
                    _ => {
                        errs.push(
                            format!("{key}.label"),
                            format!("{code} is not a risk label code"),
                        );
                        None
                    }
                },
                None => {
                    errs.push(format!("{key}.label"), "is required");
                    None
                }
            };
            if let (Some(path), Some(label)) = (path, label) {
                lexicon_files.push((path, label));
            }
        }
        let risk = crate::risk::RiskSettings {
            history_half_life: Duration::from_secs(errs.positive(
                "risk.history_half_life_secs",
                self.risk.history_half_life_secs,
                1800,
                30 * 86_400,
            )),
            registration_window: Duration::from_secs(errs.positive(
                "risk.registration_window_secs",
                self.risk.registration_window_secs,
                3600,
                30 * 86_400,
            )),
            max_users: NonZeroUsize::new(errs.positive(
                "risk.max_users",
                self.risk.max_users,
                50_000,
                10_000_000,
            ) as usize)
            .unwrap_or(NonZeroUsize::MIN),
        };
        let review = crate::review::ReviewSettings {
            pass_sample_every: match self.review.pass_sample_every {
                None => 1000,
                Some(0) => 0,
                v => errs.positive("review.pass_sample_every", v, 1000, 1_000_000_000),
            },
            max_items_per_app: errs.positive(
                "review.max_items_per_app",
                self.review.max_items_per_app,
                10_000,
                1_000_000,
            ) as usize,
            retention: Duration::from_secs(errs.positive(
                "review.retention_secs",
                self.review.retention_secs,
                7 * 86_400,
                366 * 86_400,
            )),
            claim: Duration::from_secs(errs.positive(
                "review.claim_secs",
                self.review.claim_secs,
                900,
                86_400,
            )),
        };
        let engine = EngineConfig {
            reveal_builtin_words: self.engine.reveal_builtin_words.unwrap_or(false),
            lexicon_files,
        };

        let l = &self.limits;
        let nz = |v: u64| NonZeroU32::new(v as u32).unwrap_or(NonZeroU32::MIN);
        let limits = LimitsConfig {
            enforce: l.enforce.unwrap_or(true),
            text_per_minute: nz(errs.positive(
                "limits.text_per_minute",
                l.text_per_minute,
                4000,
                u32::MAX as u64,
            )),
            media_per_minute: nz(errs.positive(
                "limits.media_per_minute",
                l.media_per_minute,
                2000,
                u32::MAX as u64,
            )),
            text_per_day: nz(errs.positive(
                "limits.text_per_day",
                l.text_per_day,
                2_000_000,
                u32::MAX as u64,
            )),
            media_per_day: nz(errs.positive(
                "limits.media_per_day",
                l.media_per_day,
                200_000,
                u32::MAX as u64,
            )),
            day_offset_hours: match l.day_offset_hours {
                None => 8,
                Some(h) if (-12..=14).contains(&h) => h as i8,
                Some(h) => {
                    errs.push(
                        "limits.day_offset_hours",
                        format!("{h} is out of range (-12..=14)"),
                    );
                    8
                }
            },
            resets_per_month: match l.resets_per_month {
                None => 10,
                Some(n) if (0..=1000).contains(&n) => n as u32,
                Some(n) => {
                    errs.push(
                        "limits.resets_per_month",
                        format!("{n} is out of range (0..=1000)"),
                    );
                    10
                }
            },
            visit_ttl: Duration::from_secs(errs.positive(
                "limits.visit_ttl_secs",
                l.visit_ttl_secs,
                7200,
                86_400 * 30,
            )),
            max_visits: NonZeroUsize::new(errs.positive(
                "limits.max_visits",
                l.max_visits,
                20_000_000,
                1_000_000_000,
            ) as usize)
            .unwrap_or(NonZeroUsize::MIN),
            visit_sweep: Duration::from_secs(errs.positive(
                "limits.visit_sweep_secs",
                l.visit_sweep_secs,
                60,
                3600,
            )),
        };

        let mut apps = Vec::with_capacity(self.apps.len());
        let mut seen = HashSet::new();
        for (i, raw) in self.apps.into_iter().enumerate() {
            let prefix = format!("apps[{i}]");
            let mut app_errs = Errors::default();
            if let Some(app) = raw.validate_into(&prefix, &mut app_errs) {
                if !seen.insert(app.appid.clone()) {
                    app_errs.push(format!("{prefix}.appid"), "duplicate appid");
                } else if app_errs.0.is_empty() {
                    apps.push(app);
                }
            }
            errs.0.extend(app_errs.0);
        }

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
                apps,
            })
        } else {
            Err(ConfigErrors(errs.0))
        }
    }
}

fn placeholder_url() -> Url {
    // A constant that parses; only reached when an error has already been recorded.
    Url::parse("redis://127.0.0.1:6379/0").unwrap_or_else(|_| unreachable!())
}

/// `wx` followed by 16 hex digits.
pub fn is_valid_appid(s: &str) -> bool {
    s.len() == 18 && s.starts_with("wx") && s.as_bytes()[2..].iter().all(u8::is_ascii_hexdigit)
}

impl RawApp {
    /// Validates one app on its own (the admin API), reporting every problem.
    pub fn validate(self) -> Result<AppConfig, ConfigErrors> {
        let mut errs = Errors::default();
        match self.validate_into("app", &mut errs) {
            Some(app) if errs.0.is_empty() => Ok(app),
            _ => Err(ConfigErrors(errs.0)),
        }
    }

    /// Validates one app, as the config file and the admin API both need. Problems are added to
    /// `errs` under `prefix`; returns the app when it is usable.
    fn validate_into(self, prefix: &str, errs: &mut Errors) -> Option<AppConfig> {
        let before = errs.0.len();
        let appid = match self.appid {
            Some(a) if is_valid_appid(&a) => a,
            Some(_) => {
                errs.push(
                    format!("{prefix}.appid"),
                    "must be \"wx\" followed by 16 hex digits",
                );
                String::new()
            }
            None => {
                errs.push(format!("{prefix}.appid"), "is required");
                String::new()
            }
        };
        let secret = match self.secret {
            Some(s)
                if s.expose().len() == 32
                    && s.expose().bytes().all(|b| b.is_ascii_alphanumeric()) =>
            {
                s
            }
            Some(_) => {
                errs.push(
                    format!("{prefix}.secret"),
                    "must be 32 ASCII letters or digits",
                );
                Secret::new("")
            }
            None => {
                errs.push(format!("{prefix}.secret"), "is required");
                Secret::new("")
            }
        };
        let original_id = self.original_id.filter(|s| !s.is_empty());
        if let Some(id) = &original_id
            && (id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        {
            errs.push(
                format!("{prefix}.original_id"),
                "must be up to 64 letters, digits or _",
            );
        }
        let push_url = match self.push_url.filter(|s| !s.is_empty()) {
            None => None,
            Some(text) => match Url::parse(&text) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Some(u),
                _ => {
                    errs.push(
                        format!("{prefix}.push_url"),
                        "must be an http:// or https:// URL",
                    );
                    None
                }
            },
        };
        let push_token = self.push_token.filter(|t| !t.expose().is_empty());
        if let Some(t) = &push_token
            && (t.expose().len() < 3
                || t.expose().len() > 32
                || !t.expose().bytes().all(|b| b.is_ascii_alphanumeric()))
        {
            errs.push(
                format!("{prefix}.push_token"),
                "must be 3 to 32 letters or digits",
            );
        }
        let push_format = match self.push_format.as_deref().unwrap_or("json") {
            "json" | "" => PushFormat::Json,
            "xml" => PushFormat::Xml,
            _ => {
                errs.push(
                    format!("{prefix}.push_format"),
                    "must be \"json\" or \"xml\"",
                );
                PushFormat::Json
            }
        };
        let push_mode = match self.push_mode.as_deref().unwrap_or("plain") {
            "plain" | "" => PushMode::Plain,
            "aes" => PushMode::Aes,
            _ => {
                errs.push(
                    format!("{prefix}.push_mode"),
                    "must be \"plain\" or \"aes\"",
                );
                PushMode::Plain
            }
        };
        let aes_key = match self.encoding_aes_key.filter(|k| !k.expose().is_empty()) {
            None => None,
            Some(k) => match decode_aes_key(k.expose()) {
                Some(key) => Some(key),
                None => {
                    errs.push(
                        format!("{prefix}.encoding_aes_key"),
                        "must be 43 base64 characters (a 32-byte key)",
                    );
                    None
                }
            },
        };
        if push_mode == PushMode::Aes && aes_key.is_none() && errs.0.len() == before {
            errs.push(
                format!("{prefix}.encoding_aes_key"),
                "is required when push_mode = \"aes\"",
            );
        }
        let text_per_minute =
            errs.opt_positive_u32(&format!("{prefix}.text_per_minute"), self.text_per_minute);
        let text_per_day =
            errs.opt_positive_u32(&format!("{prefix}.text_per_day"), self.text_per_day);
        let media_per_minute =
            errs.opt_positive_u32(&format!("{prefix}.media_per_minute"), self.media_per_minute);
        let media_per_day =
            errs.opt_positive_u32(&format!("{prefix}.media_per_day"), self.media_per_day);

        (errs.0.len() == before).then_some(AppConfig {
            appid,
            secret,
            original_id,
            push_url,
            push_token,
            push_format,
            push_mode,
            aes_key,
            text_per_minute,
            text_per_day,
            media_per_minute,
            media_per_day,
        })
    }
}

impl AppConfig {
    /// The app as written in config or the admin API (secrets included: only the authenticated
    /// admin API shows it).
    pub fn to_raw(&self) -> RawApp {
        let n = |v: Option<NonZeroU32>| v.map(|v| i64::from(v.get()));
        RawApp {
            appid: Some(self.appid.clone()),
            secret: Some(self.secret.clone()),
            original_id: self.original_id.clone(),
            push_url: self.push_url.as_ref().map(|u| u.to_string()),
            push_token: self.push_token.clone(),
            push_format: Some(match self.push_format {
                PushFormat::Json => "json".into(),
                PushFormat::Xml => "xml".into(),
            }),
            push_mode: Some(match self.push_mode {
                PushMode::Plain => "plain".into(),
                PushMode::Aes => "aes".into(),
            }),
            encoding_aes_key: self.aes_key.map(|k| {
                let mut text = base64::engine::general_purpose::STANDARD.encode(k);
                text.pop(); // the trailing "=" is implied
                Secret::new(text)
            }),
            text_per_minute: n(self.text_per_minute),
            text_per_day: n(self.text_per_day),
            media_per_minute: n(self.media_per_minute),
            media_per_day: n(self.media_per_day),
        }
    }
}

/// WeChat's EncodingAESKey: 43 base64 characters; the key is `base64(key + "=")`.
///
/// Decoded leniently about the last character's unused low bits, as the platform's own SDKs do:
/// a randomly generated key is rarely canonical base64.
pub fn decode_aes_key(text: &str) -> Option<[u8; 32]> {
    use base64::engine::{GeneralPurpose, GeneralPurposeConfig};
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
    );
    if text.len() != 43 {
        return None;
    }
    let bytes = LENIENT.decode(format!("{text}=")).ok()?;
    bytes.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let example = Config::from_toml(include_str!("../config/modgate.example.toml")).unwrap();
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
    }

    /// The configuration docker-compose.yml gives its three gateways is valid and shared.
    #[test]
    fn the_compose_configuration_is_valid() {
        let c = Config::from_toml(include_str!("../deploy/modgate-shared.toml")).unwrap();
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
        let errs = Config::from_toml(
            "[state]\nbackend = \"redis\"\nredis_url = \"rediss://h:6379\"\nredis_prefix = \"a b\"\n",
        )
        .unwrap_err();
        let keys: Vec<&str> = errs.0.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["state.redis_url", "state.redis_prefix"]);
        assert!(errs.0[0].message.contains("TLS"), "{}", errs.0[0].message);
        // A lease shorter than a second would have instances renewing in a busy loop.
        assert_eq!(c.media.lease, std::time::Duration::from_secs(60));
        let errs = Config::from_toml("[media]\nlease_secs = 0.5\n").unwrap_err();
        assert_eq!(errs.0[0].key, "media.lease_secs");
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
