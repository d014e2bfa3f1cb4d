//! The shared backend: Redis, for several gateway instances behind one load balancer.
//!
//! Every decision is one Lua script, so it is atomic in Redis and costs one round trip:
//!
//! - token epochs: one hash per app, `{prefix}:tok:{appid}` with fields `cur` and `prev`; a
//!   rotation moves `cur` to `prev` and sets a new `cur` strictly after the old one;
//! - daily quotas: one counter per app, API and day, `{prefix}:q:{appid}:{api}:{day}`, created
//!   with its expiry in the same script (two days: no key is ever left without a TTL);
//! - monthly resets: `{prefix}:r:{appid}:{month}`, likewise created with a 40-day expiry.
//!
//! Errors (Redis unreachable, a script failing) become [`StateError::Unavailable`], which
//! callers answer with errcode -1 so SDKs back off and retry.

use redis::Script;
use redis::aio::ConnectionManager;

use super::{AppSlot, BoxFuture, QuotaDecision, QuotaStore, ResetDecision, StateError, TokenStore};
use crate::limits::Metered;
use crate::token::Epochs;

/// Seconds a daily counter lives: long enough to outlast its day in any time zone.
const DAY_KEY_TTL_SECS: u64 = 2 * 86_400;
/// Seconds a monthly reset counter lives.
const MONTH_KEY_TTL_SECS: u64 = 40 * 86_400;

/// KEYS[1] epochs hash; ARGV[1] now (ms); ARGV[2] ttl (ms) or -1 to rotate unconditionally.
/// Returns {current, previous or -1}.
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
return {next, cur or -1}
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

/// KEYS[1] month counter, KEYS[2..] the day's counters; ARGV[1] allowance; ARGV[2] ttl (s).
/// Returns the resets remaining, or -1 when the allowance is spent.
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
for i = 2, #KEYS do
  redis.call('DEL', KEYS[i])
end
return allowance - count
";

/// Token epochs and quotas in Redis.
#[derive(Clone)]
pub struct RedisState {
    conn: ConnectionManager,
    prefix: String,
    rotate: std::sync::Arc<Script>,
    acquire: std::sync::Arc<Script>,
    reset: std::sync::Arc<Script>,
}

impl std::fmt::Debug for RedisState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisState")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

fn unavailable(e: redis::RedisError) -> StateError {
    StateError::Unavailable(e.to_string())
}

impl RedisState {
    /// Connects (the manager reconnects by itself after a failure). Keys start with `prefix`.
    pub async fn connect(url: &str, prefix: &str) -> Result<RedisState, StateError> {
        let client = redis::Client::open(url).map_err(unavailable)?;
        let conn = client.get_connection_manager().await.map_err(unavailable)?;
        Ok(RedisState {
            conn,
            prefix: prefix.to_owned(),
            rotate: std::sync::Arc::new(Script::new(ROTATE)),
            acquire: std::sync::Arc::new(Script::new(ACQUIRE)),
            reset: std::sync::Arc::new(Script::new(RESET)),
        })
    }

    fn epochs_key(&self, app: &AppSlot) -> String {
        format!("{}:tok:{}", self.prefix, app.appid())
    }

    fn day_key(&self, app: &AppSlot, api: Metered, day: u32) -> String {
        format!("{}:q:{}:{}:{day}", self.prefix, app.appid(), api.as_str())
    }

    async fn run_rotate(
        &self,
        app: &AppSlot,
        now_ms: u64,
        ttl_ms: i64,
    ) -> Result<Epochs, StateError> {
        let mut conn = self.conn.clone();
        let (current, previous): (i64, i64) = self
            .rotate
            .key(self.epochs_key(app))
            .arg(now_ms)
            .arg(ttl_ms)
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(Epochs {
            current: current as u64,
            previous: (previous >= 0).then_some(previous as u64),
        })
    }
}

impl TokenStore for RedisState {
    fn epochs<'a>(&'a self, app: &'a AppSlot) -> BoxFuture<'a, Result<Option<Epochs>, StateError>> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let (current, previous): (Option<u64>, Option<u64>) = redis::cmd("HMGET")
                .arg(self.epochs_key(app))
                .arg("cur")
                .arg("prev")
                .query_async(&mut conn)
                .await
                .map_err(unavailable)?;
            Ok(current.map(|current| Epochs { current, previous }))
        })
    }

    fn rotate<'a>(
        &'a self,
        app: &'a AppSlot,
        now_ms: u64,
    ) -> BoxFuture<'a, Result<Epochs, StateError>> {
        Box::pin(self.run_rotate(app, now_ms, -1))
    }

    fn current_or_rotate<'a>(
        &'a self,
        app: &'a AppSlot,
        now_ms: u64,
        ttl_ms: u64,
    ) -> BoxFuture<'a, Result<Epochs, StateError>> {
        Box::pin(self.run_rotate(app, now_ms, i64::try_from(ttl_ms).unwrap_or(i64::MAX)))
    }
}

impl QuotaStore for RedisState {
    fn acquire<'a>(
        &'a self,
        app: &'a AppSlot,
        api: Metered,
        day: u32,
        limit: u64,
    ) -> BoxFuture<'a, Result<QuotaDecision, StateError>> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let (admitted, used): (i64, u64) = self
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

    fn used<'a>(
        &'a self,
        app: &'a AppSlot,
        api: Metered,
        day: u32,
    ) -> BoxFuture<'a, Result<u64, StateError>> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let used: Option<u64> = redis::cmd("GET")
                .arg(self.day_key(app, api, day))
                .query_async(&mut conn)
                .await
                .map_err(unavailable)?;
            Ok(used.unwrap_or(0))
        })
    }

    fn reset<'a>(
        &'a self,
        app: &'a AppSlot,
        day: u32,
        month: u32,
        allowance: u32,
    ) -> BoxFuture<'a, Result<ResetDecision, StateError>> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let mut invocation =
                self.reset
                    .key(format!("{}:r:{}:{month}", self.prefix, app.appid()));
            for api in Metered::ALL {
                invocation.key(self.day_key(app, api, day));
            }
            let remaining: i64 = invocation
                .arg(allowance)
                .arg(MONTH_KEY_TTL_SECS)
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

    /// The Redis every machine of this kind runs on 127.0.0.1:6379 (`.ci/run` makes sure).
    const URL: &str = "redis://127.0.0.1:6379/0";

    /// A store with a prefix no other test (or run) shares.
    async fn fresh() -> RedisState {
        let prefix = format!(
            "modgate-test:{}:{}",
            std::process::id(),
            crate::media::wall_ms()
        );
        RedisState::connect(URL, &prefix)
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

    /// Counters are created with their expiry in the same script: no key without a TTL.
    #[tokio::test]
    async fn every_counter_key_has_a_ttl() {
        let s = fresh().await;
        let app = AppSlot::new("wx00000000000000ee");
        s.acquire(&app, Metered::MsgSecCheck, 7, 10).await.unwrap();
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
        for key in keys.iter().filter(|k| !k.contains(":tok:")) {
            let ttl: i64 = redis::cmd("TTL")
                .arg(key)
                .query_async(&mut conn)
                .await
                .unwrap();
            assert!(ttl > 0, "{key} has no TTL ({ttl})");
        }
    }

    /// An unreachable Redis is an error the caller can answer with -1, not a hang or a panic.
    #[tokio::test]
    async fn an_unreachable_redis_is_reported() {
        let e = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            RedisState::connect("redis://127.0.0.1:1/0", "x"),
        )
        .await
        .expect("fails promptly")
        .unwrap_err();
        assert!(matches!(e, StateError::Unavailable(_)));
    }
}
