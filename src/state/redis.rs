//! The shared backend: Redis, for several gateway instances behind one load balancer.
//!
//! Every decision is one Lua script, so it is atomic in Redis and costs one round trip. Keys of
//! one app carry the appid as a hash tag (`{prefix}:{wx..}:..`), so a script's keys always live
//! on one Redis Cluster slot:
//!
//! - token epochs: one hash per app and token lineage, `..:tok` (`/cgi-bin/token`) and `..:stok`
//!   (`stable_token`), with fields `cur` and `prev`; a rotation moves `cur` to `prev` and sets a
//!   new `cur` strictly after the old one, and publishes the change; `..:stok` also counts forced
//!   refreshes (`fday`, `fcount`, `flast`);
//! - rate limits: one GCRA "theoretical arrival time" per app and API, `..:rl:{api}`, in
//!   microseconds, expiring once the limit is full again;
//! - daily quotas: one counter per app, API and day, `..:q:{api}:{day}`, created with its expiry
//!   in the same script (two days: no key is ever left without a TTL);
//! - monthly resets: `..:r:{month}`, likewise created with a 40-day expiry;
//! - visits: one sorted set per app, `..:vz`, of openids scored by their latest visit (seconds):
//!   a record first drops the visits that no longer make their user fresh, then refuses a new
//!   user when the app holds `limits.max_visits_per_app`; the set expires when its latest visit
//!   stops making anyone fresh. (Visits recorded by earlier versions, one key per user,
//!   `..:v:{openid}`, are still read until they expire.)
//!
//! A metered call is decided by one script run (rate limit, quota and visit together), batched
//! with the app's calls to the same API that arrive while its previous batch is in Redis
//! ([`batch`]: one run deciding its calls in turn exactly as one run per call would), or, while
//! the app is busy, in process from a lease the last run granted ([`lease`]: a block of the
//! rate limit and of the day's quota, handed back by the next run); its access token is verified
//! against epochs read at most once a second per app (and dropped at once when another instance
//! rotates them): **at most one round trip per msgSecCheck**, shared by every call of its batch,
//! and none for a call its lease admits (a user's visit is read once, then known fresh until it
//! no longer can be).
//!
//! Each day also has `..:ql:{api}:{day}`, a hash of the units each instance holds; a quota reset
//! sets the day's counter to their sum, so units held stay counted until handed back.
//!
//! Errors (Redis unreachable, a script failing) become [`StateError::Unavailable`], which
//! callers answer with errcode -1 so SDKs back off and retry, except where the gateway serves
//! without Redis ([`crate::gateway::Gateway::admit`], and token epochs, which fall back to what
//! this instance last read).

use std::collections::HashMap;
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use redis::Script;
use redis::aio::ConnectionManager;

mod batch;
mod lease;

use super::metrics::StateMetrics;
use super::{
    Admission, AdmitQuery, Admitted, Answer, AppRecords, AppView, BoxFuture, QuotaDecision,
    QuotaStore, RateDecision, RateStore, ResetDecision, StateError, TokenStore, VisitOutcome,
    VisitStore,
};
use crate::limits::Metered;
use crate::token::{Epochs, ForceRefused, ForceRules, Lineage};

/// How long this instance trusts the token epochs it last read. A rotation elsewhere is
/// published and drops them at once; this bounds the delay if that message is lost.
pub const EPOCHS_TRUSTED_FOR: Duration = Duration::from_secs(1);

/// Seconds a daily counter lives: long enough to outlast its day in any time zone.
const DAY_KEY_TTL_SECS: u64 = 2 * 86_400;
/// How long a call finding the quota spent waits for other instances to hand back the calls
/// their leases hold, before it is refused all the same.
const HELD_BACK_AT_MOST: Duration = Duration::from_secs(2);
/// Seconds a monthly reset counter lives.
const MONTH_KEY_TTL_SECS: u64 = 40 * 86_400;

/// KEYS[1] epochs hash; ARGV[1] now (ms); ARGV[2] ttl (ms) or -1 to rotate unconditionally;
/// ARGV[3] the change channel, ARGV[4] the change message. Returns {current, previous or -1}.
const ROTATE: &str = r"
local cur = tonumber(redis.call('HGET', KEYS[1], 'cur'))
local prev = tonumber(redis.call('HGET', KEYS[1], 'prev'))
local now = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
if cur and ttl >= 0 and now < cur + ttl then
  return {cur, prev or -1}
end
local next = now
if cur and next <= cur then next = cur + 1 end
if cur then
  redis.call('HSET', KEYS[1], 'cur', next, 'prev', cur)
else
  redis.call('HSET', KEYS[1], 'cur', next)
end
redis.call('PUBLISH', ARGV[3], ARGV[4])
return {next, cur or -1}
";

/// KEYS[1] stable epochs hash; ARGV[1] now (ms); ARGV[2] day; ARGV[3] forced refreshes allowed
/// per day; ARGV[4] least gap (ms); ARGV[5] the change channel, ARGV[6] the change message.
/// [`crate::token::Forced::admit`], then [`Epochs::forced`]. Returns {0, current} or {1} when the
/// day's refreshes are spent, {2} when the last was too recent.
const FORCE: &str = r"
local f = redis.call('HMGET', KEYS[1], 'cur', 'fday', 'fcount', 'flast')
local cur = tonumber(f[1])
local fday = tonumber(f[2])
local fcount = tonumber(f[3]) or 0
local flast = tonumber(f[4]) or 0
local now = tonumber(ARGV[1])
local day = tonumber(ARGV[2])
local count = fcount
if fday ~= day then count = 0 end
if count >= tonumber(ARGV[3]) then return {1} end
if fcount > 0 and now < flast + tonumber(ARGV[4]) then return {2} end
local next = now
if cur and next <= cur then next = cur + 1 end
redis.call('HSET', KEYS[1], 'cur', next, 'fday', day, 'fcount', count + 1, 'flast', now)
redis.call('HDEL', KEYS[1], 'prev')
redis.call('PUBLISH', ARGV[5], ARGV[6])
return {0, next}
";

/// GCRA, as governor computes it for `Quota::per_minute(n)` (emission interval `t` = 60 s / n,
/// a burst of `n`): with `tat` the theoretical arrival time, a call at `now` is admitted when
/// `max(tat, now) - now <= t * (n - 1)`, and moves `tat` on by `t`; a refusal says how long until
/// that holds. Times in microseconds (integers up to 2^53 are exact in Lua's doubles; they are
/// written back with `%.0f`, as `tostring` would round them to 14 digits).
macro_rules! gcra {
    () => {
        r"
local now = tonumber(ARGV[1])
local t = tonumber(ARGV[2])
local tolerance = t * (tonumber(ARGV[3]) - 1)
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
if tat - now > tolerance then
  return {1, tat - tolerance - now}
end
tat = tat + t
redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', string.format('%.0f', math.ceil((tat - now) / 1000) + 1000))
"
    };
}

/// KEYS[1] rate limit; ARGV[1] now (µs), ARGV[2] interval (µs), ARGV[3] burst.
/// Returns {0, 0} admitted, or {1, wait µs}.
const RATE: &str = concat!(gcra!(), "return {0, 0}\n");

/// KEYS[1] the app's visits; ARGV[1] the visit (s), ARGV[2] TTL (s), ARGV[3] openid, ARGV[4]
/// the app's cap. Drops the visits that no longer make their user fresh (`ttl` old or more), then records this one (the latest visit
/// wins) unless the user is new and the app holds its cap. Returns 1 recorded, 0 at the cap.
/// The set expires `ttl` after its latest visit.
const VISIT: &str = r"
local now = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - ttl)
local last = redis.call('ZSCORE', KEYS[1], ARGV[3])
if not last then
  if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then
    return 0
  end
elseif tonumber(last) >= now then
  return 1
end
redis.call('ZADD', KEYS[1], now, ARGV[3])
if redis.call('TTL', KEYS[1]) < ttl then
  redis.call('EXPIRE', KEYS[1], ttl)
end
return 1
";

/// KEYS[1] day counter; ARGV[1] limit; ARGV[2] ttl (s). Returns {admitted 1/0, used}.
const ACQUIRE: &str = r"
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if used >= tonumber(ARGV[1]) then
  return {0, used}
end
used = redis.call('INCR', KEYS[1])
if used == 1 then
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return {1, used}
";

/// KEYS[1] the day's counter. Gives one call back, never below zero.
const REFUND: &str = r"
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if used > 0 then
  redis.call('DECR', KEYS[1])
end
return 1
";

/// KEYS[1] month counter, then two keys per API: the day's counter and the day's reservations
/// ([`lease`]); ARGV[1] allowance; ARGV[2] the month counter's TTL (s), ARGV[3] a day counter's.
/// A day's counter starts again from the calls instances hold leases of (counted, perhaps not
/// yet used: their instances admit them without asking). Returns the resets remaining, or -1
/// when the allowance is spent.
const RESET: &str = r"
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
local allowance = tonumber(ARGV[1])
if count >= allowance then
  return -1
end
count = redis.call('INCR', KEYS[1])
if count == 1 then
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
for i = 2, #KEYS, 2 do
  local held = 0
  for _, units in ipairs(redis.call('HVALS', KEYS[i + 1])) do
    held = held + tonumber(units)
  end
  if held > 0 then
    redis.call('SET', KEYS[i], held, 'EX', ARGV[3])
  else
    redis.call('DEL', KEYS[i])
  end
end
return allowance - count
";

/// Token epochs, rate limits, quotas and visits in Redis.
#[derive(Clone)]
pub struct RedisState {
    conn: Retrying,
    client: redis::Client,
    prefix: String,
    scripts: Arc<Scripts>,
    /// Admissions by app and API: their leases, and the calls waiting for a batch in Redis.
    admissions: Arc<batch::Admissions>,
    /// How long a visit keeps a user fresh: the TTL of a visit key.
    visit_ttl_secs: u64,
    /// Users with a fresh visit one app may hold.
    max_visits_per_app: usize,
    metrics: Option<StateMetrics>,
}

struct Scripts {
    rotate: Script,
    force: Script,
    acquire: Script,
    refund: Script,
    reset: Script,
    rate: Script,
    admit: Script,
    visit: Script,
}

impl std::fmt::Debug for RedisState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisState")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// The shared connection. A command whose connection had broken (Redis restarted while this
/// instance was idle) is sent again once, the manager having reconnected by then; but only a
/// command whose repetition changes nothing is repeated after it may have reached Redis.
/// Scripts that count (admission, quota, rate limit, rotation, reset, a job's acceptance) go
/// through [`Retrying::once`]: repeated only when the first attempt was refused a connection,
/// so a reply lost on the way back can never count a call twice. Such a call answers as a
/// backend failure (-1, or the text checks' fallback), and may have been counted: exactly as a
/// request whose answer the client never received.
#[derive(Clone)]
pub struct Retrying {
    conn: ConnectionManager,
    /// Whether a command that may have been executed is repeated.
    repeat_sent: bool,
}

impl Retrying {
    /// The same connection, for commands that must not be repeated once sent.
    pub fn once(&self) -> Retrying {
        Retrying {
            conn: self.conn.clone(),
            repeat_sent: false,
        }
    }

    /// Whether a command that failed with `e` is sent again.
    fn repeat(&self, e: &redis::RedisError) -> bool {
        if self.repeat_sent {
            e.is_connection_dropped() || e.is_io_error() || e.is_connection_refusal()
        } else {
            e.is_connection_refusal()
        }
    }
}

impl redis::aio::ConnectionLike for Retrying {
    fn req_packed_command<'a>(
        &'a mut self,
        cmd: &'a redis::Cmd,
    ) -> redis::RedisFuture<'a, redis::Value> {
        Box::pin(async move {
            match self.conn.req_packed_command(cmd).await {
                Err(e) if self.repeat(&e) => self.conn.req_packed_command(cmd).await,
                other => other,
            }
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        Box::pin(async move {
            match self.conn.req_packed_commands(pipeline, offset, count).await {
                Err(e) if self.repeat(&e) => {
                    self.conn.req_packed_commands(pipeline, offset, count).await
                }
                other => other,
            }
        })
    }

    fn get_db(&self) -> i64 {
        self.conn.get_db()
    }
}

fn unavailable(e: redis::RedisError) -> StateError {
    StateError::Unavailable(e.to_string())
}

impl RedisState {
    /// Connects (the manager reconnects by itself after a failure). Keys start with `prefix`;
    /// visit keys live `visit_ttl`.
    pub async fn connect(
        url: &str,
        prefix: &str,
        visit_ttl: Duration,
    ) -> Result<RedisState, StateError> {
        Self::connect_with_ca(url, None, prefix, visit_ttl).await
    }

    /// [`RedisState::connect`]; with a `rediss://` URL, Redis's certificate is checked against
    /// `ca` (PEM) when given, else against the system's roots. Every connection made from the
    /// client (the scripts', the blocking ones, subscriptions) is made the same way.
    pub async fn connect_with_ca(
        url: &str,
        ca: Option<&[u8]>,
        prefix: &str,
        visit_ttl: Duration,
    ) -> Result<RedisState, StateError> {
        if url.starts_with("rediss:") {
            // rustls needs its process-wide provider before any TLS client is built.
            crate::transport::install_tls_provider();
        }
        let client = match ca {
            Some(pem) => redis::Client::build_with_tls(
                url,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem.to_vec()),
                },
            ),
            None => redis::Client::open(url),
        }
        .map_err(unavailable)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(1);
        let conn = client
            .get_connection_manager_with_config(config)
            .await
            .map_err(unavailable)?;
        Ok(RedisState {
            conn: Retrying {
                conn,
                repeat_sent: true,
            },
            client,
            prefix: prefix.to_owned(),
            scripts: Arc::new(Scripts {
                rotate: Script::new(ROTATE),
                force: Script::new(FORCE),
                acquire: Script::new(ACQUIRE),
                refund: Script::new(REFUND),
                reset: Script::new(RESET),
                rate: Script::new(RATE),
                admit: Script::new(batch::ADMIT_BATCH),
                visit: Script::new(VISIT),
            }),
            admissions: Arc::default(),
            visit_ttl_secs: visit_ttl.as_secs().max(1),
            max_visits_per_app: usize::MAX,
            metrics: None,
        })
    }

    /// Holds at most `n` users with a fresh visit per app.
    pub fn with_visit_cap(mut self, n: usize) -> Self {
        self.max_visits_per_app = n;
        self
    }

    /// Reports the backend's health and fallbacks through `metrics`.
    pub fn with_metrics(mut self, metrics: StateMetrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// The client, for connections of other kinds (the change subscription).
    pub fn client(&self) -> &redis::Client {
        &self.client
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// A multiplexed connection (cheap to clone; reconnects by itself).
    pub fn connection(&self) -> Retrying {
        self.conn.clone()
    }

    /// A connection of its own, for blocking reads (which would hold up every other command on
    /// the shared one). Answers may take up to `block` plus the usual timeout.
    pub async fn dedicated_connection(&self, block: Duration) -> Result<Retrying, StateError> {
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(block + Duration::from_secs(2)))
            .set_number_of_retries(1);
        self.client
            .get_connection_manager_with_config(config)
            .await
            .map(|conn| Retrying {
                conn,
                repeat_sent: true,
            })
            .map_err(unavailable)
    }

    /// Asks Redis whether it is there.
    pub async fn ping(&self) -> Result<(), StateError> {
        let mut conn = self.conn.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map(drop)
            .map_err(unavailable)
    }

    /// The channel every instance listens on for changes ([`crate::catalog`]).
    pub fn changes_channel(&self) -> String {
        format!("{}:changes", self.prefix)
    }

    fn app_key(&self, appid: &str, what: std::fmt::Arguments<'_>) -> String {
        format!("{}:{{{appid}}}:{what}", self.prefix)
    }

    fn epochs_key(&self, app: &AppRecords, lineage: Lineage) -> String {
        let name = match lineage {
            Lineage::Token => "tok",
            Lineage::Stable => "stok",
        };
        self.app_key(app.appid(), format_args!("{name}"))
    }

    fn day_key(&self, app: &AppRecords, api: Metered, day: u32) -> String {
        self.app_key(app.appid(), format_args!("q:{}:{day}", api.as_str()))
    }

    /// The day's reservations of calls, by instance ([`lease`]).
    fn held_key(&self, app: &AppRecords, api: Metered, day: u32) -> String {
        self.app_key(app.appid(), format_args!("ql:{}:{day}", api.as_str()))
    }

    fn rate_key(&self, app: &AppRecords, api: Metered) -> String {
        self.app_key(app.appid(), format_args!("rl:{}", api.as_str()))
    }

    fn visits_key(&self, appid: &str) -> String {
        self.app_key(appid, format_args!("vz"))
    }

    fn visit_key(&self, appid: &str, openid: &str) -> String {
        self.app_key(appid, format_args!("v:{openid}"))
    }

    fn leased(&self) {
        if let Some(m) = &self.metrics {
            m.admission_leased_calls.inc();
        }
    }

    fn answered(&self) {
        if let Some(m) = &self.metrics {
            m.answered();
        }
    }

    /// Forgets the epochs read for `app` (another instance rotated them).
    pub fn forget_epochs(app: &AppRecords) {
        *app.shared_epochs
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = [None; 2];
    }

    async fn read_epochs(
        &self,
        app: &AppRecords,
        lineage: Lineage,
    ) -> Result<Option<Epochs>, StateError> {
        let mut conn = self.conn.clone();
        let (current, previous): (Option<u64>, Option<u64>) = redis::cmd("HMGET")
            .arg(self.epochs_key(app, lineage))
            .arg("cur")
            .arg("prev")
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(current.map(|current| Epochs { current, previous }))
    }

    async fn run_rotate(
        &self,
        app: &AppRecords,
        lineage: Lineage,
        now_ms: u64,
        ttl_ms: i64,
    ) -> Result<Epochs, StateError> {
        let mut conn = self.conn.once();
        let (current, previous): (i64, i64) = self
            .scripts
            .rotate
            .key(self.epochs_key(app, lineage))
            .arg(now_ms)
            .arg(ttl_ms)
            .arg(self.changes_channel())
            .arg(format!("tok\t{}", app.appid()))
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        let epochs = Epochs {
            current: current as u64,
            previous: (previous >= 0).then_some(previous as u64),
        };
        remember(app, lineage, Some(epochs));
        Ok(epochs)
    }

    async fn run_force(
        &self,
        app: &AppRecords,
        now_ms: u64,
        rules: ForceRules,
    ) -> Result<Result<Epochs, ForceRefused>, StateError> {
        let mut conn = self.conn.once();
        let answer: Vec<i64> = self
            .scripts
            .force
            .key(self.epochs_key(app, Lineage::Stable))
            .arg(now_ms)
            .arg(rules.day)
            .arg(rules.per_day)
            .arg(rules.min_gap_ms)
            .arg(self.changes_channel())
            .arg(format!("tok\t{}", app.appid()))
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(match answer.as_slice() {
            [0, current] => {
                let epochs = Epochs {
                    current: *current as u64,
                    previous: None,
                };
                remember(app, Lineage::Stable, Some(epochs));
                Ok(epochs)
            }
            [1] => Err(ForceRefused::DailyLimit),
            [2] => Err(ForceRefused::TooSoon),
            other => {
                return Err(StateError::Unavailable(format!(
                    "unexpected forced-refresh answer {other:?}"
                )));
            }
        })
    }

    /// One admission as its batch sends it.
    fn admission(&self, app: AppView<'_>, q: &AdmitQuery<'_>, holdable: bool) -> batch::Request {
        let appid = app.appid();
        batch::Request {
            keys: [
                self.rate_key(app.records, q.api),
                self.day_key(app.records, q.api, q.day),
                self.visits_key(appid),
                self.held_key(app.records, q.api, q.day),
            ],
            old_visit: q.openid.map(|openid| self.visit_key(appid, openid)),
            limits: Self::limits(app, q.api),
            day: q.day,
            now_us: q.now_ms * 1000,
            visit_ttl_secs: q.visit_ttl.as_secs(),
            openid: q.openid.unwrap_or_default().to_owned(),
            holdable,
        }
    }

    /// GCRA parameters for an app's per-minute limit: the emission interval in microseconds
    /// (60 s / n) and the burst (n).
    fn gcra(app: AppView<'_>, api: Metered) -> (u64, u32) {
        // One microsecond is the finest interval kept: limits above 60,000,000 per minute act
        // as 60,000,000.
        let n = app.limits.api(api).per_minute.get();
        ((60_000_000 / u64::from(n)).max(1), n)
    }

    /// The GCRA parameters and the day's limit, as one run of admissions holds them.
    fn limits(app: AppView<'_>, api: Metered) -> lease::Limits {
        let (interval, burst) = Self::gcra(app, api);
        (interval, burst, app.limits.api(api).per_day.get())
    }

    /// After a batch of `appid`'s group for `api`: the lease it granted installed, what queued
    /// meanwhile answered from it or sent on by a driver of its own.
    fn hand_on(&self, appid: &str, api: Metered, sent: &mut batch::Sent) {
        let Some(next) = self.admissions.after(appid, api, sent) else {
            return;
        };
        let (state, app) = (self.clone(), Box::<str>::from(appid));
        let driver = async move {
            let mut next = next;
            loop {
                let mut sent = state.send(next).await;
                match state.admissions.after(&app, api, &mut sent) {
                    Some(batch) => next = batch,
                    None => break,
                }
            }
        };
        // Outside a runtime (it is shutting down) the queued calls' replies are dropped with
        // the group, and each answers as the backend being unavailable.
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn(driver)),
            Err(_) => self.admissions.discard(appid, api),
        }
    }

    async fn send(&self, batch: batch::Batch) -> batch::Sent {
        let sizes = self.metrics.as_ref().map(|m| &m.admission_run_calls);
        let instance = self.admissions.instance();
        batch::send(batch, &self.scripts.admit, &self.conn, instance, sizes).await
    }

    /// The admission's answer from how its call was decided, or None when it was held back.
    async fn decided(
        &self,
        appid: &str,
        q: &AdmitQuery<'_>,
        decision: Result<batch::Decision, StateError>,
    ) -> Result<Option<Admitted>, StateError> {
        let decision = decision?;
        if let batch::Decision::Leased { .. } = decision {
            self.leased();
        }
        if let batch::Decision::Decided { .. } = decision {
            self.answered();
        }
        let admitted = match decision {
            batch::Decision::Leased { used, visit: false } => Admitted::Yes { used },
            batch::Decision::Leased { used, visit: true } => {
                let openid = q.openid.unwrap_or_default();
                let last = self.last_visit(appid, openid).await?;
                self.answered();
                if crate::limits::is_fresh(last, q.now_ms / 1000, q.visit_ttl) {
                    if let Some(last) = last {
                        self.admissions.remember_visit(appid, openid, last);
                    }
                    Admitted::Yes { used }
                } else {
                    Admitted::VisitExpired
                }
            }
            batch::Decision::Decided {
                outcome,
                value,
                last,
            } => match outcome {
                0 => {
                    if let (Some(openid), Ok(last)) = (q.openid, u64::try_from(last)) {
                        self.admissions.remember_visit(appid, openid, last);
                    }
                    Admitted::Yes {
                        used: u64::try_from(value).unwrap_or(0),
                    }
                }
                1 => Admitted::RateLimited {
                    wait: wait_from_micros(value),
                },
                2 => Admitted::QuotaExhausted,
                4 => return Ok(None),
                _ => Admitted::VisitExpired,
            },
        };
        Ok(Some(admitted))
    }

    /// One try at admitting a call ([`Admission::admit`]); None when it was held back, which
    /// only a `holdable` call is.
    fn attempt<'a>(
        &'a self,
        app: AppView<'a>,
        q: AdmitQuery<'a>,
        holdable: bool,
    ) -> Answer<'a, Result<Option<Admitted>, StateError>> {
        let appid = app.records.appid();
        let call = batch::Call {
            appid,
            api: q.api,
            now_us: q.now_ms * 1000,
            limits: Self::limits(app, q.api),
            day: q.day,
            openid: q.openid,
            visit_ttl: q.visit_ttl,
        };
        // From the group's lease on the spot; else behind the group's batch in Redis; else
        // (no batch in flight) alone, at once, handing on what queued behind it when it
        // returns (also if it is dropped before).
        match self
            .admissions
            .enter(&call, || self.admission(app, &q, holdable))
        {
            batch::Entered::Leased { used, visit: false } => {
                // Redis was not asked: nothing said about whether it answers.
                self.leased();
                Answer::ready(Ok(Some(Admitted::Yes { used })))
            }
            batch::Entered::Leased { used, visit: true } => Answer::later(async move {
                let decision = Ok(batch::Decision::Leased { used, visit: true });
                self.decided(appid, &q, decision).await
            }),
            batch::Entered::Lead(batch) => {
                let lead = Lead::new(self, appid, q.api, batch);
                Answer::later(async move {
                    let decision = lead.answer().await;
                    self.decided(appid, &q, decision).await
                })
            }
            batch::Entered::Queued(answer) => Answer::later(async move {
                let decision = answer.await.unwrap_or_else(|_| {
                    Err(StateError::Unavailable(
                        "the admission's batch was dropped".to_owned(),
                    ))
                });
                self.decided(appid, &q, decision).await
            }),
        }
    }

    /// The call's answer once `first` (its first try) or a later try is not held back: while
    /// it is (the quota spent, another instance holding calls of it), the others are asked to
    /// hand their leases back and the call tries again; after [`HELD_BACK_AT_MOST`] it is
    /// decided whatever they hold.
    async fn until_decided<'a>(
        &'a self,
        app: AppView<'a>,
        q: AdmitQuery<'a>,
        first: Answer<'a, Result<Option<Admitted>, StateError>>,
    ) -> Result<Admitted, StateError> {
        let since = Instant::now();
        let mut pause = Duration::from_millis(2);
        let mut answer = first.await?;
        loop {
            if let Some(admitted) = answer {
                return Ok(admitted);
            }
            if self
                .admissions
                .recall_due(app.appid(), q.api, Instant::now())
            {
                // Unheard, the call is decided after the wait all the same.
                if let Err(e) = self.recall(app.appid(), q.api).await {
                    tracing::debug!(error = %e, "lease recall not published");
                }
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(50));
            let holdable = since.elapsed() < HELD_BACK_AT_MOST;
            answer = self.attempt(app, q, holdable).await?;
        }
    }

    /// The channel on which instances ask each other to hand back leases.
    pub fn recall_channel(&self) -> String {
        format!("{}:recall", self.prefix)
    }

    /// Asks the other instances to hand back their leases of `appid`'s group for `api`.
    async fn recall(&self, appid: &str, api: Metered) -> Result<(), StateError> {
        let message = format!("{}\t{appid}\t{}", self.admissions.instance(), api.as_str());
        redis::cmd("PUBLISH")
            .arg(self.recall_channel())
            .arg(message)
            .query_async::<i64>(&mut self.conn.once())
            .await
            .map(drop)
            .map_err(unavailable)
    }

    /// Recalls other instances publish, as a stream of messages for
    /// [`RedisState::hand_back_recalled`]; it ends when the subscription is lost.
    pub async fn recalls(
        &self,
    ) -> Result<impl futures_util::Stream<Item = redis::Msg> + Send + use<>, StateError> {
        let mut pubsub = self.client.get_async_pubsub().await.map_err(unavailable)?;
        pubsub
            .subscribe(self.recall_channel())
            .await
            .map_err(unavailable)?;
        Ok(pubsub.into_on_message())
    }

    /// Hands back (at `now_ms`) the lease a recall of another instance names, if this instance
    /// holds it. Returns whether it did.
    pub async fn hand_back_recalled(
        &self,
        message: &[u8],
        now_ms: u64,
    ) -> Result<bool, StateError> {
        let Some((appid, api)) = std::str::from_utf8(message)
            .ok()
            .and_then(|text| self.recalled_group(text))
        else {
            return Ok(false);
        };
        let lease = self.admissions.recalled(appid, api);
        let lease = lease.map(|release| (Box::from(appid), api, release));
        Ok(self
            .give_back(lease.into_iter().collect(), now_ms * 1000)
            .await?
            > 0)
    }

    /// The group a recall names, unless it is this instance's own.
    fn recalled_group<'t>(&self, text: &'t str) -> Option<(&'t str, Metered)> {
        let mut parts = text.split('\t');
        let (from, appid, api) = (parts.next()?, parts.next()?, parts.next()?);
        let api = Metered::ALL.iter().copied().find(|m| m.as_str() == api)?;
        (from != self.admissions.instance() && parts.next().is_none()).then_some((appid, api))
    }

    /// Hands every lease this instance holds back to Redis (at `now_ms`), as a stopping
    /// instance does: their unused calls count no more. Returns how many were handed back.
    pub async fn release_leases(&self, now_ms: u64) -> Result<usize, StateError> {
        let leases = self.admissions.leases();
        let instance = self.admissions.instance();
        let given = leases.iter().map(|release| {
            batch::give_back(
                release,
                &self.scripts.admit,
                &self.conn,
                instance,
                now_ms * 1000,
            )
        });
        for answer in futures_util::future::join_all(given).await {
            answer?;
        }
        Ok(leases.len())
    }

    /// Hands back the leases that have nothing more to give at `now_ms` or have gone unused for
    /// `idle`, so that their units are not kept from other instances (and do not show in the
    /// quota they report) while this one has no calls for them. Calls of a group arriving
    /// meanwhile queue behind its hand-back. Returns how many were handed back.
    pub async fn release_idle_leases(
        &self,
        now_ms: u64,
        idle: Duration,
    ) -> Result<usize, StateError> {
        let now_us = now_ms * 1000;
        let idle_us = u64::try_from(idle.as_micros()).unwrap_or(u64::MAX);
        self.give_back(self.admissions.idle(now_us, idle_us), now_us)
            .await
    }

    /// Hands back `leases`, taken from their groups (marked busy), at `now_us`, then hands each
    /// group on: calls that queued behind the hand-back go to Redis. Returns how many.
    async fn give_back(
        &self,
        leases: Vec<(Box<str>, Metered, lease::Release)>,
        now_us: u64,
    ) -> Result<usize, StateError> {
        let instance = self.admissions.instance();
        let given = leases.iter().map(|(appid, api, release)| async move {
            let answer =
                batch::give_back(release, &self.scripts.admit, &self.conn, instance, now_us).await;
            self.hand_on(appid, *api, &mut batch::Sent::default());
            answer
        });
        let mut first_error = None;
        for answer in futures_util::future::join_all(given).await {
            if let Err(e) = answer {
                first_error.get_or_insert(e);
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(leases.len()),
        }
    }
}

/// The first call of an idle admission group, sent alone with what the group's lead hands
/// back. Dropped before its batch came back (its caller gone), the batch is seen through by a
/// task of its own: the grant is installed and the calls that queued behind it are sent on.
/// Dropped before it was ever sent, the call is not counted, but the lease is still handed back.
struct Lead {
    state: RedisState,
    appid: Box<str>,
    api: Metered,
    batch: Option<batch::Batch>,
    sent: Option<BoxFuture<'static, batch::Sent>>,
}

impl Lead {
    fn new(state: &RedisState, appid: &str, api: Metered, batch: batch::Batch) -> Lead {
        Lead {
            state: state.clone(),
            appid: appid.into(),
            api,
            batch: Some(batch),
            sent: None,
        }
    }

    async fn answer(mut self) -> Result<batch::Decision, StateError> {
        if let Some(batch) = self.batch.take() {
            let owned = self.state.clone();
            self.sent = Some(Box::pin(async move { owned.send(batch).await }));
        }
        let Some(sent) = self.sent.as_mut() else {
            unreachable!("a lead is answered once");
        };
        let mut sent = sent.await;
        self.sent = None;
        self.state.hand_on(&self.appid, self.api, &mut sent);
        sent.lead.unwrap_or_else(|| {
            Err(StateError::Unavailable(
                "the admission's batch gave no answer".to_owned(),
            ))
        })
    }
}

impl Drop for Lead {
    fn drop(&mut self) {
        let (state, appid, api) = (self.state.clone(), self.appid.clone(), self.api);
        let unsent = self.batch.take().map(batch::Batch::into_release);
        let sent = self.sent.take();
        if unsent.is_none() && sent.is_none() {
            return;
        }
        let finish = async move {
            let mut sent = match (sent, unsent) {
                (Some(sent), _) => sent.await,
                (None, release) => {
                    if let Some(release) = release.flatten() {
                        let now_us = crate::clock::wall_ms() * 1000;
                        let instance = state.admissions.instance();
                        let given = batch::give_back(
                            &release,
                            &state.scripts.admit,
                            &state.conn,
                            instance,
                            now_us,
                        );
                        // Not handed back, the lease's calls stay counted: as with a stopped
                        // instance.
                        drop(given.await);
                    }
                    batch::Sent::default()
                }
            };
            state.hand_on(&appid, api, &mut sent);
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn(finish)),
            Err(_) => self.state.admissions.discard(&self.appid, api),
        }
    }
}

/// Keeps `epochs` as the lineage's latest read, unless a later rotation is already held
/// (concurrent rotations and reads finish in any order).
fn remember(app: &AppRecords, lineage: Lineage, epochs: Option<Epochs>) {
    let mut cached = app
        .shared_epochs
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let cached = &mut cached[lineage.index()];
    let held = cached.and_then(|(_, e)| e).map(|e| e.current);
    let read = epochs.map(|e| e.current);
    if read >= held {
        *cached = Some((Instant::now(), epochs));
    }
}

fn wait_from_micros(micros: i64) -> Duration {
    Duration::from_micros(u64::try_from(micros).unwrap_or(0))
}

impl RateStore for RedisState {
    fn check<'a>(
        &'a self,
        app: AppView<'a>,
        api: Metered,
        now_ms: u64,
    ) -> BoxFuture<'a, Result<RateDecision, StateError>> {
        Box::pin(async move {
            let (interval, burst) = Self::gcra(app, api);
            let mut conn = self.conn.once();
            let (limited, wait): (i64, i64) = self
                .scripts
                .rate
                .key(self.rate_key(app.records, api))
                .arg(now_ms * 1000)
                .arg(interval)
                .arg(burst)
                .invoke_async(&mut conn)
                .await
                .map_err(unavailable)?;
            Ok(if limited == 1 {
                RateDecision::Limited {
                    wait: wait_from_micros(wait),
                }
            } else {
                RateDecision::Admitted
            })
        })
    }
}

impl Admission for RedisState {
    fn admit<'a>(
        &'a self,
        app: AppView<'a>,
        q: AdmitQuery<'a>,
    ) -> Answer<'a, Result<Admitted, StateError>> {
        match self.attempt(app, q, true) {
            Answer::Ready(Some(Ok(Some(admitted)))) => Answer::ready(Ok(admitted)),
            first => Answer::later(self.until_decided(app, q, first)),
        }
    }
}

impl VisitStore for RedisState {
    fn record<'a>(
        &'a self,
        appid: &'a str,
        openid: &'a str,
        now_secs: u64,
    ) -> BoxFuture<'a, Result<VisitOutcome, StateError>> {
        Box::pin(async move {
            // Repeating a visit changes nothing: safe to send again.
            let mut conn = self.conn.clone();
            let recorded: i64 = self
                .scripts
                .visit
                .key(self.visits_key(appid))
                .arg(now_secs)
                .arg(self.visit_ttl_secs)
                .arg(openid)
                .arg(self.max_visits_per_app)
                .invoke_async(&mut conn)
                .await
                .map_err(unavailable)?;
            Ok(if recorded == 1 {
                VisitOutcome::Recorded
            } else {
                VisitOutcome::AppFull(self.max_visits_per_app)
            })
        })
    }

    fn last_visit<'a>(
        &'a self,
        appid: &'a str,
        openid: &'a str,
    ) -> BoxFuture<'a, Result<Option<u64>, StateError>> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let (scored, kept): (Option<f64>, Option<u64>) = redis::pipe()
                .cmd("ZSCORE")
                .arg(self.visits_key(appid))
                .arg(openid)
                .cmd("GET")
                .arg(self.visit_key(appid, openid))
                .query_async(&mut conn)
                .await
                .map_err(unavailable)?;
            Ok(scored.map(|s| s as u64).or(kept))
        })
    }

    /// Visits expire by themselves (each app's set, and within it at every record).
    fn sweep(&self, _before_secs: u64) -> usize {
        0
    }

    fn held(&self) -> Option<usize> {
        None
    }
}

impl TokenStore for RedisState {
    /// The epochs read within [`EPOCHS_TRUSTED_FOR`], else read now. When Redis cannot be
    /// reached the last epochs read are used however old (or none: a token is then valid until
    /// it expires, as after a restart of the in-process backend), so checks keep being served.
    fn epochs<'a>(
        &'a self,
        app: &'a AppRecords,
        lineage: Lineage,
    ) -> Answer<'a, Result<Option<Epochs>, StateError>> {
        let cached = app
            .shared_epochs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)[lineage.index()];
        if let Some((read_at, epochs)) = cached
            && read_at.elapsed() < EPOCHS_TRUSTED_FOR
        {
            return Answer::ready(Ok(epochs));
        }
        Answer::later(async move {
            match self.read_epochs(app, lineage).await {
                Ok(epochs) => {
                    remember(app, lineage, epochs);
                    Ok(epochs)
                }
                Err(e) => {
                    if let Some(m) = &self.metrics {
                        m.fell_back("token_epochs", &e);
                    }
                    Ok(cached.and_then(|(_, epochs)| epochs))
                }
            }
        })
    }

    fn rotate<'a>(
        &'a self,
        app: &'a AppRecords,
        lineage: Lineage,
        now_ms: u64,
    ) -> BoxFuture<'a, Result<Epochs, StateError>> {
        Box::pin(self.run_rotate(app, lineage, now_ms, -1))
    }

    fn current_or_rotate<'a>(
        &'a self,
        app: &'a AppRecords,
        lineage: Lineage,
        now_ms: u64,
        fresh_ms: u64,
    ) -> BoxFuture<'a, Result<Epochs, StateError>> {
        Box::pin(self.run_rotate(
            app,
            lineage,
            now_ms,
            i64::try_from(fresh_ms).unwrap_or(i64::MAX),
        ))
    }

    fn force_stable<'a>(
        &'a self,
        app: &'a AppRecords,
        now_ms: u64,
        rules: ForceRules,
    ) -> BoxFuture<'a, Result<Result<Epochs, ForceRefused>, StateError>> {
        Box::pin(self.run_force(app, now_ms, rules))
    }
}

impl QuotaStore for RedisState {
    fn acquire<'a>(
        &'a self,
        app: &'a AppRecords,
        api: Metered,
        day: u32,
        limit: u64,
    ) -> BoxFuture<'a, Result<QuotaDecision, StateError>> {
        Box::pin(async move {
            let mut conn = self.conn.once();
            let (admitted, used): (i64, u64) = self
                .scripts
                .acquire
                .key(self.day_key(app, api, day))
                .arg(limit)
                .arg(DAY_KEY_TTL_SECS)
                .invoke_async(&mut conn)
                .await
                .map_err(unavailable)?;
            Ok(if admitted == 1 {
                QuotaDecision::Admitted { used }
            } else {
                QuotaDecision::Exhausted { used }
            })
        })
    }

    fn refund<'a>(
        &'a self,
        app: &'a AppRecords,
        api: Metered,
        day: u32,
    ) -> BoxFuture<'a, Result<(), StateError>> {
        Box::pin(async move {
            // Sent once, like every script that counts.
            let mut conn = self.conn.once();
            let _: i64 = self
                .scripts
                .refund
                .key(self.day_key(app, api, day))
                .invoke_async(&mut conn)
                .await
                .map_err(unavailable)?;
            Ok(())
        })
    }

    fn used<'a>(
        &'a self,
        app: &'a AppRecords,
        api: Metered,
        day: u32,
    ) -> BoxFuture<'a, Result<u64, StateError>> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let (used, held): (Option<u64>, HashMap<String, u64>) = redis::pipe()
                .cmd("GET")
                .arg(self.day_key(app, api, day))
                .cmd("HGETALL")
                .arg(self.held_key(app, api, day))
                .query_async(&mut conn)
                .await
                .map_err(unavailable)?;
            // Leases are counted but not yet used: this instance's unused units are known; of
            // another's lease only its size is, so the calls it admitted since its last run are
            // left out until it hands the lease back (within a second of its last call).
            let instance = self.admissions.instance();
            let others: u64 = held
                .iter()
                .filter(|(holder, _)| holder.as_str() != instance)
                .map(|(_, units)| units)
                .sum();
            let mine = self.admissions.held_units(app.appid(), api, day);
            Ok(used
                .unwrap_or(0)
                .saturating_sub(others)
                .saturating_sub(mine))
        })
    }

    fn reset<'a>(
        &'a self,
        app: &'a AppRecords,
        day: u32,
        month: u32,
        allowance: u32,
    ) -> BoxFuture<'a, Result<ResetDecision, StateError>> {
        Box::pin(async move {
            let mut conn = self.conn.once();
            let mut invocation = self
                .scripts
                .reset
                .key(self.app_key(app.appid(), format_args!("r:{month}")));
            for api in Metered::ALL {
                invocation
                    .key(self.day_key(app, api, day))
                    .key(self.held_key(app, api, day));
            }
            let remaining: i64 = invocation
                .arg(allowance)
                .arg(MONTH_KEY_TTL_SECS)
                .arg(DAY_KEY_TTL_SECS)
                .invoke_async(&mut conn)
                .await
                .map_err(unavailable)?;
            Ok(if remaining < 0 {
                ResetDecision::AllowanceSpent
            } else {
                ResetDecision::Reset {
                    remaining: remaining as u32,
                }
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;

    /// The Redis every machine of this kind runs on 127.0.0.1:6379 (`.ci/run` makes sure).
    const URL: &str = "redis://127.0.0.1:6379/0";

    /// A store with a prefix no other test (or run) shares.
    async fn fresh() -> RedisState {
        let prefix = crate::state::test_prefix("state");
        RedisState::connect(URL, &prefix, Duration::from_secs(7200))
            .await
            .expect("Redis on 127.0.0.1:6379 (.ci/run starts one)")
    }

    #[tokio::test]
    async fn redis_token_store_passes_the_conformance_suite() {
        crate::state::conformance::token_store(&fresh().await).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn redis_token_store_is_exact_under_concurrency() {
        crate::state::conformance::token_store_concurrent(std::sync::Arc::new(fresh().await)).await;
    }

    #[tokio::test]
    async fn redis_quota_store_passes_the_conformance_suite() {
        crate::state::conformance::quota_store(&fresh().await).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn redis_quota_store_is_exact_under_concurrency() {
        crate::state::conformance::quota_store_concurrent(std::sync::Arc::new(fresh().await)).await;
    }

    #[tokio::test]
    async fn redis_rate_store_passes_the_conformance_suite() {
        crate::state::conformance::rate_store(&fresh().await).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn redis_rate_store_is_exact_under_concurrency() {
        crate::state::conformance::rate_store_concurrent(Arc::new(fresh().await)).await;
    }

    #[tokio::test]
    async fn redis_visit_store_passes_the_conformance_suite() {
        crate::state::conformance::visit_store(&fresh().await).await;
    }

    #[tokio::test]
    async fn redis_admission_passes_the_conformance_suite() {
        let s = fresh().await;
        crate::state::conformance::admission(&s, &s).await;
    }

    /// The rate limit keeps governor's arithmetic at the limits the platform uses: 4000 per minute
    /// admits exactly 4000 at once, then one every 15 ms.
    #[tokio::test]
    async fn redis_rate_limit_at_4000_per_minute() {
        let s = fresh().await;
        let clock = crate::clock::ManualClock::new(1_764_000_000_000);
        let app = crate::state::conformance::app("wx00000000000000ad", 4000, 100_000, &clock);
        let mut conn = s.conn.clone();
        // A pipeline does not load scripts on its own.
        let _: String = redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(RATE)
            .query_async(&mut conn)
            .await
            .unwrap();
        let mut pipe = redis::pipe();
        for _ in 0..4001 {
            pipe.invoke_script(
                s.scripts
                    .rate
                    .key(s.rate_key(&app.records, Metered::MsgSecCheck))
                    .arg(clock.now_ms() * 1000)
                    .arg(15_000)
                    .arg(4000),
            );
        }
        let answers: Vec<(i64, i64)> = pipe.query_async(&mut conn).await.unwrap();
        assert!(answers[..4000].iter().all(|a| a.0 == 0));
        assert_eq!(answers[4000], (1, 15_000));
        clock.advance(Duration::from_millis(15));
        let admitted = s
            .check(app.view(), Metered::MsgSecCheck, clock.now_ms())
            .await;
        assert_eq!(admitted.unwrap(), RateDecision::Admitted);
    }

    /// An app's visits expire when they stop making their user fresh: each record drops the
    /// stale ones, and the app's set itself expires with its latest visit.
    #[tokio::test]
    async fn visits_expire_with_freshness() {
        let s = RedisState::connect(URL, &fresh().await.prefix, Duration::from_secs(7200))
            .await
            .unwrap();
        let app = "wx00000000000000ae";
        s.record(app, "u1", 1_764_000_000).await.unwrap();
        s.record(app, "u2", 1_764_003_600).await.unwrap();
        let mut conn = s.conn.clone();
        let ttl: i64 = redis::cmd("TTL")
            .arg(s.visits_key(app))
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!((7190..=7200).contains(&ttl), "{ttl}");
        // Two hours after u1's visit: u1 is dropped at the next record, u2 stays.
        s.record(app, "u3", 1_764_007_200).await.unwrap();
        let held: Vec<String> = redis::cmd("ZRANGE")
            .arg(s.visits_key(app))
            .arg(0)
            .arg(-1)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(held, ["u2", "u3"]);
        assert_eq!(s.last_visit(app, "u2").await.unwrap(), Some(1_764_003_600));
    }

    /// Each app holds at most its cap of users with a fresh visit: new users past it are
    /// refused, known ones refresh, other apps are unaffected, and room comes back as visits
    /// go stale.
    #[tokio::test]
    async fn each_app_holds_at_most_its_cap_of_visits() {
        let s = RedisState::connect(URL, &fresh().await.prefix, Duration::from_secs(100))
            .await
            .unwrap()
            .with_visit_cap(2);
        let (a, b) = ("wx00000000000000af", "wx00000000000000b0");
        assert_eq!(
            s.record(a, "u1", 1000).await.unwrap(),
            VisitOutcome::Recorded
        );
        assert_eq!(
            s.record(a, "u2", 1010).await.unwrap(),
            VisitOutcome::Recorded
        );
        assert_eq!(
            s.record(a, "u3", 1020).await.unwrap(),
            VisitOutcome::AppFull(2)
        );
        assert_eq!(
            s.record(a, "u1", 1030).await.unwrap(),
            VisitOutcome::Recorded
        );
        assert_eq!(
            s.record(b, "u3", 1030).await.unwrap(),
            VisitOutcome::Recorded
        );
        assert_eq!(s.last_visit(a, "u3").await.unwrap(), None);
        // u2's visit is stale from 1110: its place goes to u3.
        assert_eq!(
            s.record(a, "u3", 1110).await.unwrap(),
            VisitOutcome::Recorded
        );
        assert_eq!(s.last_visit(a, "u1").await.unwrap(), Some(1030));
    }

    /// Counters are created with their expiry in the same script: no key without a TTL.
    #[tokio::test]
    async fn every_counter_key_has_a_ttl() {
        let s = fresh().await;
        let app = AppRecords::new("wx00000000000000ee");
        s.acquire(&app, Metered::MsgSecCheck, 7, 10).await.unwrap();
        let clock = crate::clock::ManualClock::new(1_764_000_000_000);
        let full = crate::state::conformance::app("wx00000000000000ee", 10, 10, &clock);
        let query = AdmitQuery {
            api: Metered::MsgSecCheck,
            now_ms: clock.now_ms(),
            day: 8,
            openid: Some("u1"),
            visit_ttl: Duration::from_secs(7200),
        };
        s.record(full.appid(), "u1", clock.now_secs())
            .await
            .unwrap();
        assert_eq!(
            s.admit(full.view(), query).await.unwrap(),
            Admitted::Yes { used: 1 }
        );
        s.reset(&app, 7, 3, 5).await.unwrap();
        s.acquire(&app, Metered::MediaCheckAsync, 7, 10)
            .await
            .unwrap();
        let mut conn = s.conn.clone();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}:*", s.prefix))
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!(keys.len() >= 2, "{keys:?}");
        for key in keys.iter().filter(|k| !k.ends_with(":tok")) {
            let ttl: i64 = redis::cmd("TTL")
                .arg(key)
                .query_async(&mut conn)
                .await
                .unwrap();
            assert!(ttl > 0, "{key} has no TTL ({ttl})");
        }
    }

    /// The one-request admission script, one run per call (as admissions were decided before
    /// they were batched): the reference a batch must agree with. KEYS[1] rate limit, KEYS[2] day counter,
    /// KEYS[3] and KEYS[4] (optional) the app's visits and the user's visit as earlier versions
    /// kept it; ARGV[1..3] as [`RATE`], ARGV[4] the day's limit, ARGV[5] the counter's TTL (s),
    /// ARGV[6] the visit TTL (s), ARGV[7] the openid.
    /// Returns {0, used} admitted, {1, wait µs} rate-limited, {2, used} quota spent, {3, used} stale
    /// visit (counted, as the platform counts it).
    const ADMIT_ONE: &str = concat!(
        gcra!(),
        r"
local used = tonumber(redis.call('GET', KEYS[2]) or '0')
if used >= tonumber(ARGV[4]) then
  return {2, used}
end
used = redis.call('INCR', KEYS[2])
if used == 1 then
  redis.call('EXPIRE', KEYS[2], ARGV[5])
end
if #KEYS >= 3 then
  local last = tonumber(redis.call('ZSCORE', KEYS[3], ARGV[7]) or redis.call('GET', KEYS[4]) or '-1')
  if last < 0 or math.floor(now / 1000000) - last >= tonumber(ARGV[6]) then
    return {3, used}
  end
end
return {0, used}
"
    );

    /// Decides each of `calls` with the one-request script on `one`, and on `leased` as the
    /// gateway does ([`Admission::admit`]: from leases, queued behind a batch or alone), the
    /// calls of each cut of `cuts` issued together in order; then `leased` hands its leases back.
    /// Returns both answers per call.
    async fn both_ways(
        one: &RedisState,
        leased: &RedisState,
        app: &crate::state::conformance::TestApp,
        calls: &[AdmitQuery<'_>],
        cuts: &[usize],
    ) -> (Vec<Admitted>, Vec<Admitted>) {
        let reference = Script::new(ADMIT_ONE);
        let mut single = Vec::new();
        for q in calls {
            let r = one.admission(app.view(), q, false);
            let mut invocation = reference.key(&r.keys[0]);
            invocation.key(&r.keys[1]);
            if let Some(old) = &r.old_visit {
                invocation.key(&r.keys[2]).key(old);
            }
            let (interval, burst, limit) = r.limits;
            let (outcome, value): (i64, i64) = invocation
                .arg(r.now_us)
                .arg(interval)
                .arg(burst)
                .arg(limit)
                .arg(DAY_KEY_TTL_SECS)
                .arg(r.visit_ttl_secs)
                .arg(&r.openid)
                .invoke_async(&mut one.conn.clone())
                .await
                .unwrap();
            single.push(match outcome {
                0 => Admitted::Yes {
                    used: u64::try_from(value).unwrap(),
                },
                1 => Admitted::RateLimited {
                    wait: wait_from_micros(value),
                },
                2 => Admitted::QuotaExhausted,
                _ => Admitted::VisitExpired,
            });
        }
        let mut together = Vec::new();
        let mut rest = calls;
        for &cut in cuts.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (now, later) = rest.split_at(cut.min(rest.len()));
            rest = later;
            let answers = now.iter().map(|q| leased.admit(app.view(), *q));
            for answer in futures_util::future::join_all(answers).await {
                together.push(answer.unwrap());
            }
        }
        let last = calls.last().map_or(0, |q| q.now_ms);
        leased.release_leases(last).await.unwrap();
        (single, together)
    }

    /// Batches and leases admit exactly what one run per call admits, for any sequence of calls
    /// cut into any batches: two APIs interleaved (each its own group), users fresh, going
    /// stale, recorded by an earlier version's key, never seen and not named, the rate limit,
    /// the daily quota and the day's turn all reached, under limits too small for a lease and
    /// limits that grant them. Once the leases are handed back, the keys left behind agree too.
    #[test]
    fn batches_and_leases_admit_exactly_what_one_run_per_call_admits() {
        use proptest::prelude::*;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        // Every outcome (admitted, rate-limited, quota spent, stale visit) seen over the cases.
        let seen = std::cell::RefCell::new([0usize; 4]);
        // Calls the leases admitted over the cases.
        let leased = std::cell::Cell::new(0u64);
        let config = proptest::test_runner::Config {
            cases: 64,
            ..Default::default()
        };
        proptest!(config, |(
            calls in proptest::collection::vec((0..2usize, 0..5usize, 0..4000u64), 1..80),
            cuts in proptest::collection::vec(1..12usize, 1..20),
            limits in 0..3usize,
        )| {
            rt.block_on(async {
                let metrics = StateMetrics::new(&prometheus::Registry::new()).unwrap();
                let (one, batched) = (fresh().await, fresh().await.with_metrics(metrics.clone()));
                let clock = crate::clock::ManualClock::new(1_764_000_000_000);
                // Per minute and per day: no lease ever (an eighth of either is nothing), leases
                // of a few calls with a band of two intervals, leases of eight calls.
                let (per_minute, per_day) = [(5, 7), (400, 40), (60_000, 100)][limits];
                let app = crate::state::conformance::app("wx00000000000000af", per_minute, per_day, &clock);
                let start = clock.now_secs();
                // u0 fresh for another 100 s, u1 fresh, u2 fresh by an earlier version's key,
                // u3 never seen; the fifth choice names no user.
                for s in [&one, &batched] {
                    s.record(app.appid(), "u0", start - 7100).await.unwrap();
                    s.record(app.appid(), "u1", start).await.unwrap();
                    let _: () = redis::cmd("SET")
                        .arg(s.visit_key(app.appid(), "u2"))
                        .arg(start - 60)
                        .query_async(&mut s.conn.clone())
                        .await
                        .unwrap();
                }
                let users = [Some("u0"), Some("u1"), Some("u2"), Some("u3"), None];
                let apis = [Metered::MsgSecCheck, Metered::MediaCheckAsync];
                let mut now_ms = clock.now_ms();
                let queries: Vec<AdmitQuery<'_>> = calls
                    .iter()
                    .map(|&(api, user, gap_ms)| {
                        // Half the gaps under 40 ms, so that leases' bands are still running.
                        now_ms += if gap_ms % 2 == 0 { gap_ms / 100 } else { gap_ms };
                        AdmitQuery {
                            api: apis[api],
                            now_ms,
                            // A day every two minutes, so the quota starts again.
                            day: u32::try_from(now_ms / 120_000).unwrap(),
                            openid: users[user],
                            visit_ttl: Duration::from_secs(7200),
                        }
                    })
                    .collect();
                let (single, together) = both_ways(&one, &batched, &app, &queries, &cuts).await;
                prop_assert_eq!(&single, &together);
                leased.set(leased.get() + metrics.admission_leased_calls.get());
                for answer in &single {
                    let outcome = match answer {
                        Admitted::Yes { .. } => 0,
                        Admitted::RateLimited { .. } => 1,
                        Admitted::QuotaExhausted => 2,
                        Admitted::VisitExpired => 3,
                    };
                    seen.borrow_mut()[outcome] += 1;
                }
                let days: std::collections::BTreeSet<u32> = queries.iter().map(|q| q.day).collect();
                for api in apis {
                    let mut keys = vec![(one.rate_key(&app.records, api), batched.rate_key(&app.records, api))];
                    for &day in &days {
                        keys.push((one.day_key(&app.records, api, day), batched.day_key(&app.records, api, day)));
                    }
                    for (a, b) in keys {
                        let a: Option<String> = redis::cmd("GET").arg(&a).query_async(&mut one.conn.clone()).await.unwrap();
                        let b: Option<String> = redis::cmd("GET").arg(&b).query_async(&mut batched.conn.clone()).await.unwrap();
                        prop_assert_eq!(a, b);
                    }
                }
                Ok(())
            })?;
        });
        let seen = seen.into_inner();
        assert!(seen.iter().all(|&n| n > 0), "outcomes seen: {seen:?}");
        assert!(
            leased.get() > 100,
            "calls admitted from leases: {}",
            leased.get()
        );
    }

    /// Concurrent admissions, batched as they arrive or admitted from a lease, each get their
    /// own answer: 200 calls at once against a quota of 150 admit exactly 150, numbered 1 to
    /// 150; the runs' sizes and the leased calls in `/metrics` add up to the 200 calls.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_admissions_are_exact_and_each_answered() {
        let metrics = StateMetrics::new(&prometheus::Registry::new()).unwrap();
        let s = Arc::new(fresh().await.with_metrics(metrics.clone()));
        let clock = crate::clock::ManualClock::new(1_764_000_000_000);
        let app = Arc::new(crate::state::conformance::app(
            "wx00000000000000b0",
            100_000,
            150,
            &clock,
        ));
        let now_ms = clock.now_ms();
        let calls = (0..200).map(|_| {
            let (s, app) = (s.clone(), app.clone());
            tokio::spawn(async move {
                s.admit(
                    app.view(),
                    AdmitQuery {
                        api: Metered::MsgSecCheck,
                        now_ms,
                        day: 9,
                        openid: None,
                        visit_ttl: Duration::from_secs(7200),
                    },
                )
                .await
                .unwrap()
            })
        });
        let mut used: Vec<u64> = Vec::new();
        let mut refused = 0;
        for call in futures_util::future::join_all(calls).await {
            match call.unwrap() {
                Admitted::Yes { used: n } => used.push(n),
                Admitted::QuotaExhausted => refused += 1,
                other => panic!("unexpected {other:?}"),
            }
        }
        used.sort_unstable();
        assert_eq!(used, (1..=150).collect::<Vec<u64>>());
        assert_eq!(refused, 50);
        let runs = &metrics.admission_run_calls;
        let leased = metrics.admission_leased_calls.get();
        assert_eq!(runs.get_sample_sum() + leased as f64, 200.0);
        assert!((1..=200).contains(&runs.get_sample_count()));
    }

    /// When the tests of two instances run: any fixed time serves.
    const NOW_MS: u64 = 1_764_000_000_000;

    /// A msgSecCheck call of day 9 naming no user, at [`NOW_MS`].
    const TWO_INSTANCES_CALL: AdmitQuery<'static> = AdmitQuery {
        api: Metered::MsgSecCheck,
        now_ms: NOW_MS,
        day: 9,
        openid: None,
        visit_ttl: Duration::from_secs(7200),
    };

    /// Two instances on one fresh prefix, and an app allowed 60,000 calls a minute (one a
    /// millisecond: bands of 250 calls) and `per_day` a day.
    async fn two_instances(
        appid: &str,
        per_day: u32,
    ) -> (RedisState, RedisState, crate::state::conformance::TestApp) {
        let prefix = crate::state::test_prefix("state");
        let connect = || RedisState::connect(URL, &prefix, Duration::from_secs(7200));
        let (a, b) = (connect().await.unwrap(), connect().await.unwrap());
        let clock = crate::clock::ManualClock::new(NOW_MS);
        let app = crate::state::conformance::app(appid, 60_000, per_day, &clock);
        (a, b, app)
    }

    /// Two instances on one Redis: each first call ends in a lease, the second instance's
    /// charged past the first's band. The first hands back its units but not its band (that
    /// would move the second's calls earlier than they came); the second, whose band is still
    /// the rate limit's end, hands back both.
    #[tokio::test]
    async fn a_band_another_instance_charged_past_stays_spent() {
        // One call a millisecond, the whole minute's burst: bands of 250 calls, leases of 8.
        let (a, b, app) = two_instances("wx00000000000000b2", 100_000).await;
        let query = TWO_INSTANCES_CALL;
        let get = |key: String| {
            let mut conn = a.conn.clone();
            async move {
                let v: Option<u64> = redis::cmd("GET")
                    .arg(key)
                    .query_async(&mut conn)
                    .await
                    .unwrap();
                v.unwrap_or(0)
            }
        };
        let (rate, day) = (
            a.rate_key(&app.records, Metered::MsgSecCheck),
            a.day_key(&app.records, Metered::MsgSecCheck, 9),
        );
        let now_us = query.now_ms * 1000;
        assert_eq!(
            a.admit(app.view(), query).await.unwrap(),
            Admitted::Yes { used: 1 }
        );
        let a_end = get(rate.clone()).await;
        assert_eq!(
            a_end,
            now_us + 1000 + 250_000,
            "one call, then a band of 250"
        );
        assert_eq!(
            b.admit(app.view(), query).await.unwrap(),
            Admitted::Yes { used: 10 }
        );
        let b_end = get(rate.clone()).await;
        assert_eq!(b_end, a_end + 1000 + 250_000);
        assert_eq!(get(day.clone()).await, 18, "two calls, two leases of 8");

        assert_eq!(a.release_leases(query.now_ms).await.unwrap(), 1);
        assert_eq!(get(rate.clone()).await, b_end, "the first band stays spent");
        assert_eq!(get(day.clone()).await, 10, "its units are back");
        assert_eq!(b.release_leases(query.now_ms).await.unwrap(), 1);
        assert_eq!(get(rate).await, b_end - 250_000, "the last band is back");
        assert_eq!(get(day).await, 2);
    }

    /// The quota one instance reports leaves out the units leases hold: its own not yet used,
    /// and all of another's (whose calls since its last run it cannot see). An idle lease goes
    /// back on its own, and a call arriving meanwhile waits for the hand-back and is counted
    /// after it.
    #[tokio::test]
    async fn quota_leaves_out_leases_and_idle_leases_go_back() {
        let (a, b, app) = two_instances("wx00000000000000b3", 100_000).await;
        let api = Metered::MsgSecCheck;
        let query = TWO_INSTANCES_CALL;
        let held: std::collections::HashMap<String, u64> = redis::cmd("HGETALL")
            .arg(a.held_key(&app.records, api, 9))
            .query_async(&mut a.conn.clone())
            .await
            .unwrap();
        assert!(held.is_empty());
        assert_eq!(
            a.admit(app.view(), query).await.unwrap(),
            Admitted::Yes { used: 1 }
        );
        assert_eq!(a.used(&app.records, api, 9).await.unwrap(), 1);
        assert_eq!(b.used(&app.records, api, 9).await.unwrap(), 1);
        for used in 2..=4 {
            assert_eq!(
                a.admit(app.view(), query).await.unwrap(),
                Admitted::Yes { used }
            );
        }
        assert_eq!(a.used(&app.records, api, 9).await.unwrap(), 4);
        assert_eq!(
            b.used(&app.records, api, 9).await.unwrap(),
            1,
            "another instance's leased calls show once its lease is back"
        );

        let idle = Duration::from_secs(1);
        // The band of 250 calls (one a millisecond) runs until 251 ms.
        assert_eq!(
            a.release_idle_leases(query.now_ms + 250, idle)
                .await
                .unwrap(),
            0
        );
        let later = AdmitQuery {
            now_ms: query.now_ms + 251,
            ..query
        };
        // The hand-back takes the lease at its first poll; the call made after it queues.
        let mut release = std::pin::pin!(a.release_idle_leases(later.now_ms, idle));
        let polled = std::future::poll_fn(|cx| {
            std::task::Poll::Ready(release.as_mut().poll(cx).is_pending())
        });
        assert!(polled.await, "the hand-back waits for Redis");
        let (released, admitted) =
            futures_util::future::join(release, a.admit(app.view(), later)).await;
        assert_eq!(released.unwrap(), 1);
        assert_eq!(admitted.unwrap(), Admitted::Yes { used: 5 }, "after the 4");
        assert_eq!(b.used(&app.records, api, 9).await.unwrap(), 5);
        assert_eq!(a.used(&app.records, api, 9).await.unwrap(), 5);
    }

    /// Two instances of one app with a day of 100 calls: `a` makes the day's first call and
    /// holds the lease it was granted; `b` then calls until refused. Returns `b`'s admissions,
    /// with the day's query.
    async fn spend_the_day_beside_a_lease(
        a: &RedisState,
        b: &RedisState,
        app: &crate::state::conformance::TestApp,
    ) -> (u64, AdmitQuery<'static>) {
        let query = TWO_INSTANCES_CALL;
        assert_eq!(
            a.admit(app.view(), query).await.unwrap(),
            Admitted::Yes { used: 1 }
        );
        assert_eq!(a.admissions.held_units(app.appid(), query.api, 9), 8);
        let mut admitted = 0;
        loop {
            match b.admit(app.view(), query).await.unwrap() {
                Admitted::Yes { .. } => admitted += 1,
                Admitted::QuotaExhausted => return (admitted, query),
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    /// A call that finds the quota spent while another instance holds calls of it recalls
    /// them: the holder hands its lease back, and the day's every call is admitted somewhere.
    #[tokio::test]
    async fn a_call_at_the_spent_quota_recalls_what_other_instances_hold() {
        use futures_util::StreamExt;

        let (a, b, app) = two_instances("wx00000000000000b4", 100).await;
        let mut recalls = a.recalls().await.unwrap().boxed();
        let holder = a.clone();
        // Until the first recall it answers by handing a lease back.
        let hands_back = tokio::spawn(async move {
            while let Some(message) = recalls.next().await {
                let bytes = message.get_payload_bytes();
                if holder.hand_back_recalled(bytes, NOW_MS).await.unwrap() {
                    return true;
                }
            }
            false
        });
        let (admitted, query) = spend_the_day_beside_a_lease(&a, &b, &app).await;
        assert_eq!(admitted, 99, "all but the one call `a` made");
        assert!(hands_back.await.unwrap());
        assert_eq!(a.admissions.held_units(app.appid(), query.api, 9), 0);
        assert_eq!(a.used(&app.records, query.api, 9).await.unwrap(), 100);
    }

    /// An instance that does not answer a recall (stopped, or cut off from Redis) keeps its
    /// lease's calls for the day: the call that recalled them is refused after its wait, and
    /// the lease is no longer waited for. Handed back later after all, they are admitted.
    #[tokio::test]
    async fn a_lease_not_handed_back_on_recall_stays_counted_and_is_waited_for_once() {
        let (a, b, app) = two_instances("wx00000000000000b5", 100).await;
        let (admitted, query) = spend_the_day_beside_a_lease(&a, &b, &app).await;
        assert_eq!(admitted, 91, "`a` holds 8 of the 99 left");
        let held: HashMap<String, u64> = redis::cmd("HGETALL")
            .arg(b.held_key(&app.records, query.api, 9))
            .query_async(&mut b.conn.clone())
            .await
            .unwrap();
        assert!(held.is_empty(), "no longer waited for: {held:?}");
        assert_eq!(a.release_leases(query.now_ms).await.unwrap(), 1);
        for used in 93..=100 {
            assert_eq!(
                b.admit(app.view(), query).await.unwrap(),
                Admitted::Yes { used }
            );
        }
        assert_eq!(
            b.admit(app.view(), query).await.unwrap(),
            Admitted::QuotaExhausted
        );
    }

    /// A group's first call, dropped before it was ever sent (its caller gone), hands the call
    /// queued behind it to a driver: that one is answered, and counted as the day's first (the
    /// dropped one is not counted).
    #[tokio::test]
    async fn a_first_call_dropped_unsent_does_not_strand_the_calls_behind_it() {
        let s = fresh().await;
        let clock = crate::clock::ManualClock::new(1_764_000_000_000);
        let app = crate::state::conformance::app("wx00000000000000b1", 100, 100, &clock);
        let query = || AdmitQuery {
            api: Metered::MsgSecCheck,
            now_ms: clock.now_ms(),
            day: 9,
            openid: None,
            visit_ttl: Duration::from_secs(7200),
        };
        let first = s.admit(app.view(), query());
        let second = s.admit(app.view(), query());
        drop(first);
        let answer = tokio::time::timeout(Duration::from_secs(5), second)
            .await
            .expect("the queued call is answered")
            .unwrap();
        assert_eq!(answer, Admitted::Yes { used: 1 });
    }

    /// An unreachable Redis is an error the caller can answer with -1, not a hang or a panic.
    #[tokio::test]
    async fn an_unreachable_redis_is_reported() {
        let e = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            RedisState::connect("redis://127.0.0.1:1/0", "x", Duration::from_secs(1)),
        )
        .await
        .expect("fails promptly")
        .unwrap_err();
        assert!(matches!(e, StateError::Unavailable(_)));
    }
}
