//! `[server]` (the WeChat-compatible listener) and `[admin]` (the operator listener).

use std::net::SocketAddr;
use std::num::{NonZeroU64, NonZeroUsize};
use std::time::Duration;

use serde::Deserialize;

use super::Secret;
use super::check::Errors;

pub const DEFAULT_LISTEN: &str = "0.0.0.0:8080";
pub const DEFAULT_MAX_CONNECTIONS: u64 = 10_000;
pub const DEFAULT_HEADER_READ_TIMEOUT_SECS: u64 = 10;
/// A body of the largest size allowed arrives well within this at 1 Mbit/s.
pub const DEFAULT_BODY_READ_TIMEOUT_SECS: u64 = 15;
/// 1 MiB: a v1 msgSecCheck body carries up to 500 KB of content.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 1 << 20;
/// The smallest body limit allowed: a whole v1 msgSecCheck body.
pub const MIN_MAX_BODY_BYTES: u64 = 512_000 + 1024;
pub const DEFAULT_DRAIN_TIMEOUT_SECS: u64 = 30;
pub const DEFAULT_OVERLOAD_DELAY_MS: u64 = 100;
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:9090";

/// `[server]`: the WeChat-compatible listener.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawServer {
    pub listen: Option<String>,
    pub max_connections: Option<i64>,
    pub max_connections_per_client: Option<i64>,
    pub header_read_timeout_secs: Option<i64>,
    pub body_read_timeout_secs: Option<f64>,
    pub max_body_bytes: Option<i64>,
    pub drain_timeout_secs: Option<i64>,
    pub overload_delay_ms: Option<i64>,
    pub huge_pages: Option<bool>,
}

/// `[admin]`: the operator listener.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawAdmin {
    pub listen: Option<String>,
    pub token: Option<Secret>,
    /// `[[admin.tokens]]`: named tokens, each with a role.
    pub tokens: Option<Vec<RawAdminToken>>,
}

/// One `[[admin.tokens]]` entry.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawAdminToken {
    pub name: Option<String>,
    pub token: Option<Secret>,
    pub role: Option<String>,
}

/// What an admin token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Everything.
    Admin,
    /// Read everything, claim and decide review items (without feedback into tables or banks);
    /// change no app, table, bank, list or job.
    Reviewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Reviewer => "reviewer",
        }
    }
}

/// A named admin token.
#[derive(Debug, Clone)]
pub struct AdminToken {
    /// Who holds it: recorded as the reviewer of the decisions made with it.
    pub name: String,
    pub token: Secret,
    pub role: Role,
}

/// Named tokens are at least this long (they are compared, not rate limited).
pub const MIN_NAMED_TOKEN_CHARS: usize = 16;

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub max_connections: NonZeroUsize,
    /// Connections one client address (IPv4, or IPv6 /64) may hold; by default a quarter of
    /// `max_connections`.
    pub max_connections_per_client: NonZeroUsize,
    pub header_read_timeout: Duration,
    /// How long a request's body may take to arrive whole after its head (408 after that).
    pub body_read_timeout: Duration,
    pub max_body_bytes: NonZeroU64,
    pub drain_timeout: Duration,
    /// Queueing delay above which a share of requests is shed; `None`: never
    /// ([`crate::transport::overload`]).
    pub overload_delay: Option<Duration>,
    /// Whether the process keeps transparent huge pages for its heap (off by default: their
    /// zeroing on first touch stalls table builds).
    pub huge_pages: bool,
}

#[derive(Debug, Clone)]
pub struct AdminConfig {
    pub listen: SocketAddr,
    /// The shared bearer token for `/admin/*` (role admin; review decisions name the reviewer
    /// in their body). Without it and without `tokens` those routes are off; `/metrics`,
    /// `/healthz` and `/readyz` stay open, as scrapers and probes expect.
    pub token: Option<Secret>,
    /// Named tokens: each request is made as the token's holder, in its role.
    pub tokens: Vec<AdminToken>,
}

/// Validates `[server]`, adding every problem to `errs`.
pub(super) fn validate(raw: RawServer, errs: &mut Errors) -> ServerConfig {
    let listen = errs.addr("server.listen", raw.listen.as_deref(), DEFAULT_LISTEN);
    let max_connections = errs.positive(
        "server.max_connections",
        raw.max_connections,
        DEFAULT_MAX_CONNECTIONS,
        1_000_000,
    );
    let server = ServerConfig {
        listen,
        max_connections: NonZeroUsize::new(max_connections as usize).unwrap_or(NonZeroUsize::MIN),
        max_connections_per_client: NonZeroUsize::new(errs.positive(
            "server.max_connections_per_client",
            raw.max_connections_per_client,
            (max_connections / 4).max(1),
            1_000_000,
        ) as usize)
        .unwrap_or(NonZeroUsize::MIN),
        body_read_timeout: super::check::seconds(
            errs,
            "server.body_read_timeout_secs",
            raw.body_read_timeout_secs,
            DEFAULT_BODY_READ_TIMEOUT_SECS as f64,
        ),
        header_read_timeout: Duration::from_secs(errs.positive(
            "server.header_read_timeout_secs",
            raw.header_read_timeout_secs,
            DEFAULT_HEADER_READ_TIMEOUT_SECS,
            3600,
        )),
        max_body_bytes: NonZeroU64::new(errs.positive(
            "server.max_body_bytes",
            raw.max_body_bytes,
            DEFAULT_MAX_BODY_BYTES,
            64 << 20,
        ))
        .unwrap_or(NonZeroU64::MIN),
        drain_timeout: Duration::from_secs(errs.positive(
            "server.drain_timeout_secs",
            raw.drain_timeout_secs,
            DEFAULT_DRAIN_TIMEOUT_SECS,
            3600,
        )),
        overload_delay: match raw.overload_delay_ms {
            None => Some(Duration::from_millis(DEFAULT_OVERLOAD_DELAY_MS)),
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
        huge_pages: raw.huge_pages.unwrap_or(false),
    };
    if server.max_body_bytes.get() < MIN_MAX_BODY_BYTES {
        errs.push(
            "server.max_body_bytes",
            "must be at least 513024: a v1 msgSecCheck body carries up to 500 KB of content",
        );
    }
    server
}

/// Validates `[admin]`; `server` is the validated `[server]`, whose address it must not share.
pub(super) fn validate_admin(
    raw: RawAdmin,
    server: &ServerConfig,
    errs: &mut Errors,
) -> AdminConfig {
    let token = match raw.token {
        Some(t) if t.expose().is_empty() => {
            errs.push(
                "admin.token",
                "must not be empty (omit it to disable /admin/*)",
            );
            None
        }
        other => other,
    };
    let shared = token.clone();
    let mut tokens: Vec<AdminToken> = Vec::new();
    for (i, t) in raw.tokens.unwrap_or_default().into_iter().enumerate() {
        let key = |field: &str| format!("admin.tokens[{i}].{field}");
        let name = t.name.unwrap_or_default();
        let n = name.trim().chars().count();
        if n == 0 || n > 64 || name.chars().any(char::is_control) {
            errs.push(
                key("name"),
                "1 to 64 characters, without control characters",
            );
        } else if tokens.iter().any(|o| o.name == name.trim()) {
            errs.push(key("name"), format!("{name:?} is named twice"));
        }
        let token = match t.token {
            Some(s) if s.expose().chars().count() >= MIN_NAMED_TOKEN_CHARS => s,
            Some(_) => {
                errs.push(
                    key("token"),
                    format!("at least {MIN_NAMED_TOKEN_CHARS} characters"),
                );
                Secret::new("")
            }
            None => {
                errs.push(key("token"), "is required (or token_file)");
                Secret::new("")
            }
        };
        // One token, one holder: a decision's reviewer must be unambiguous.
        if !token.expose().is_empty()
            && (tokens.iter().any(|o| o.token == token) || shared.as_ref() == Some(&token))
        {
            errs.push(key("token"), "is the same as another admin token");
        }
        let role = match t.role.as_deref() {
            Some("admin") => Role::Admin,
            Some("reviewer") => Role::Reviewer,
            Some(other) => {
                errs.push(
                    key("role"),
                    format!("{other:?} is not a role (\"admin\" or \"reviewer\")"),
                );
                Role::Reviewer
            }
            None => {
                errs.push(key("role"), "is required: \"admin\" or \"reviewer\"");
                Role::Reviewer
            }
        };
        tokens.push(AdminToken {
            name: name.trim().to_owned(),
            token,
            role,
        });
    }
    let admin = AdminConfig {
        listen: errs.addr("admin.listen", raw.listen.as_deref(), DEFAULT_ADMIN_LISTEN),
        token,
        tokens,
    };
    if admin.listen.port() != 0 && admin.listen == server.listen {
        errs.push("admin.listen", "must differ from server.listen");
    }
    admin
}
