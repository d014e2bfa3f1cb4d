//! State: small backend traits and their implementations.
//!
//! Each trait method is one atomic decision, so a shared backend can do it in one round trip
//! (one script) and the memory backend in one map-entry critical section. The memory backend
//! ([`memory`]) is production code and the default; [`redis`] holds the shared backend's
//! implementations (tokens and quotas so far). [`conformance`] holds the one test suite that
//! every backend must pass.
//!
//! Methods return boxed futures so the traits stay object-safe (`Arc<dyn TokenStore>`); the box
//! costs one small allocation per call, which is noise beside a network round trip. The two calls
//! every text check makes (a token's epochs, admission) return an [`Answer`] instead: the
//! in-process backend answers them on the spot, without a future to allocate and poll.

pub mod durable;
pub mod journal;
pub mod memory;
pub mod metrics;
pub mod persist;
pub mod records;
pub mod redis;
pub mod snapshot;
pub mod stores;

#[cfg(test)]
pub(crate) mod conformance;

use std::future::Future;
use std::pin::Pin;

use crate::limits::Metered;
use crate::token::{Epochs, ForceRefused, ForceRules, Lineage};

pub use records::{AppRecords, AppView};

/// A key prefix no other test, in this process or another, shares: the process id, the time
/// and a count.
#[cfg(test)]
pub(crate) fn test_prefix(name: &str) -> String {
    static COUNT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    format!(
        "modgate-test:{name}:{}:{}:{}",
        std::process::id(),
        crate::clock::wall_ms(),
        COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}

/// A future a backend returns.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A backend's answer to a call on the request path: known at once (the in-process backend), or
/// still to come (a shared backend's round trip). Awaiting it gives the value either way.
#[must_use = "an answer does nothing unless awaited"]
pub enum Answer<'a, T> {
    /// The value, taken by the first poll.
    Ready(Option<T>),
    Later(BoxFuture<'a, T>),
}

impl<'a, T> Answer<'a, T> {
    pub fn ready(value: T) -> Self {
        Answer::Ready(Some(value))
    }

    pub fn later(future: impl Future<Output = T> + Send + 'a) -> Self {
        Answer::Later(Box::pin(future))
    }
}

impl<T: Unpin> Future for Answer<'_, T> {
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<T> {
        match self.get_mut() {
            Answer::Ready(value) => match value.take() {
                Some(v) => std::task::Poll::Ready(v),
                None => panic!("an Answer polled after it completed"),
            },
            Answer::Later(future) => future.as_mut().poll(cx),
        }
    }
}

/// A backend could not answer. Callers answer errcode -1 (system busy) so SDKs back off and retry.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StateError {
    #[error("state backend unavailable: {0}")]
    Unavailable(String),
}

/// Per-app access-token rotation state (see [`crate::token`]), one set of epochs per token
/// [`Lineage`]. Holds one small record per app that has ever been issued a token: bounded by the
/// number of registered apps. Apps are keyed by their [`AppRecords`] here and in [`QuotaStore`],
/// so the in-process backend reaches its record without a look-up.
pub trait TokenStore: Send + Sync + 'static {
    /// The lineage's rotation state, if any token of it was issued since this backend started.
    fn epochs<'a>(
        &'a self,
        app: &'a AppRecords,
        lineage: Lineage,
    ) -> Answer<'a, Result<Option<Epochs>, StateError>>;

    /// Starts a new epoch at `now_ms`: the current one becomes the previous one.
    fn rotate<'a>(
        &'a self,
        app: &'a AppRecords,
        lineage: Lineage,
        now_ms: u64,
    ) -> BoxFuture<'a, Result<Epochs, StateError>>;

    /// The current epoch while `now_ms` is less than `fresh_ms` after its issue time, else a
    /// rotation.
    fn current_or_rotate<'a>(
        &'a self,
        app: &'a AppRecords,
        lineage: Lineage,
        now_ms: u64,
        fresh_ms: u64,
    ) -> BoxFuture<'a, Result<Epochs, StateError>>;

    /// A forced rotation of the stable lineage, which retires its current token at once
    /// ([`Epochs::forced`]), if `rules` allow one more today ([`crate::token::Forced::admit`]).
    fn force_stable<'a>(
        &'a self,
        app: &'a AppRecords,
        now_ms: u64,
        rules: ForceRules,
    ) -> BoxFuture<'a, Result<Result<Epochs, ForceRefused>, StateError>>;
}

/// The outcome of counting one call against a daily quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaDecision {
    /// Counted; `used` includes this call.
    Admitted { used: u64 },
    /// Not counted: the day's quota is spent.
    Exhausted { used: u64 },
}

/// The outcome of a quota reset request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetDecision {
    /// Today's counts are zero again; `remaining` resets are left this month.
    Reset { remaining: u32 },
    /// The monthly allowance is spent; nothing changed.
    AllowanceSpent,
}

/// Daily quota counters per app and API, and the monthly reset allowance. Days and months are
/// numbers computed by the caller (see [`crate::limits::calendar`]); a counter from an earlier
/// day counts as zero. Holds one small record per app that has made a metered call.
pub trait QuotaStore: Send + Sync + 'static {
    /// Counts one call if fewer than `limit` were counted on `day`. Exact under concurrency.
    fn acquire<'a>(
        &'a self,
        app: &'a AppRecords,
        api: Metered,
        day: u32,
        limit: u64,
    ) -> BoxFuture<'a, Result<QuotaDecision, StateError>>;

    /// Gives back one call counted on `day` (a call admitted and then refused further on, such
    /// as a media job the queue had no room for). Nothing when `day`'s count is already zero.
    fn refund<'a>(
        &'a self,
        app: &'a AppRecords,
        api: Metered,
        day: u32,
    ) -> BoxFuture<'a, Result<(), StateError>>;

    /// Calls counted on `day`.
    fn used<'a>(
        &'a self,
        app: &'a AppRecords,
        api: Metered,
        day: u32,
    ) -> BoxFuture<'a, Result<u64, StateError>>;

    /// Zeroes the app's counts for `day` if fewer than `allowance` resets were made in `month`.
    fn reset<'a>(
        &'a self,
        app: &'a AppRecords,
        day: u32,
        month: u32,
        allowance: u32,
    ) -> BoxFuture<'a, Result<ResetDecision, StateError>>;
}

/// The outcome of recording a visit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VisitOutcome {
    Recorded,
    /// A new user could not be recorded: the store is at its capacity (a documented policy:
    /// existing users keep refreshing, new ones wait for the sweep to free room).
    Full,
    /// A new user could not be recorded: the app holds this many users with a fresh visit, its
    /// cap (`limits.max_visits_per_app`). The app's existing users keep refreshing.
    AppFull(usize),
}

/// When each user last visited each app.
pub trait VisitStore: Send + Sync + 'static {
    /// Records a visit at `now_secs` (the latest visit wins).
    fn record<'a>(
        &'a self,
        appid: &'a str,
        openid: &'a str,
        now_secs: u64,
    ) -> BoxFuture<'a, Result<VisitOutcome, StateError>>;

    /// The user's latest visit, if one is still held.
    fn last_visit<'a>(
        &'a self,
        appid: &'a str,
        openid: &'a str,
    ) -> BoxFuture<'a, Result<Option<u64>, StateError>>;

    /// Drops every visit made before `before_secs`; returns how many were dropped. A backend
    /// whose entries expire by themselves (Redis TTLs) drops nothing here.
    fn sweep(&self, before_secs: u64) -> usize;

    /// Entries held, when this process holds them (the in-process backend); `None` for a shared
    /// backend, whose size is the shared server's to report.
    fn held(&self) -> Option<usize>;
}

/// The outcome of taking one call from a per-minute rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateDecision {
    Admitted,
    /// Refused; one call becomes available after `wait`.
    Limited {
        wait: std::time::Duration,
    },
}

/// Per-app, per-API rate limits: GCRA with a burst of the whole minute (governor's
/// `Quota::per_minute(n)`): an idle app may spend `n` calls at once, then one every `60/n` s.
pub trait RateStore: Send + Sync + 'static {
    /// Takes one call from the app's limit for `api` at `now_ms`.
    fn check<'a>(
        &'a self,
        app: AppView<'a>,
        api: Metered,
        now_ms: u64,
    ) -> BoxFuture<'a, Result<RateDecision, StateError>>;
}

/// What [`Admission::admit`] decides on: steps 3–5 of the check order for one metered call.
#[derive(Debug, Clone, Copy)]
pub struct AdmitQuery<'a> {
    pub api: Metered,
    pub now_ms: u64,
    /// The quota day ([`crate::limits::calendar::day_number`]).
    pub day: u32,
    /// The user whose visit must be fresh, when the API names one.
    pub openid: Option<&'a str>,
    /// How long a visit keeps a user fresh.
    pub visit_ttl: std::time::Duration,
}

/// The first of the three checks that refused, or the admission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admitted {
    /// Counted against the day's quota; `used` includes this call.
    Yes { used: u64 },
    /// 44991: nothing else was counted.
    RateLimited { wait: std::time::Duration },
    /// 45009: the rate limit took its call, the quota did not.
    QuotaExhausted,
    /// 61010: the call was counted against both limits (as the platform counts it).
    VisitExpired,
}

/// Rate limit, daily quota and visit freshness decided together, in that order: one round trip
/// for a shared backend. [`Stepwise`] composes the three in-process stores.
pub trait Admission: Send + Sync + 'static {
    fn admit<'a>(
        &'a self,
        app: AppView<'a>,
        query: AdmitQuery<'a>,
    ) -> Answer<'a, Result<Admitted, StateError>>;
}

/// The per-request state stores of one gateway.
pub struct Stores {
    pub tokens: std::sync::Arc<dyn TokenStore>,
    pub quotas: std::sync::Arc<dyn QuotaStore>,
    pub visits: std::sync::Arc<dyn VisitStore>,
    pub admission: std::sync::Arc<dyn Admission>,
    /// The in-process visits, which [`persist::Persisted`] keeps across restarts; `None` for a
    /// shared backend.
    pub local_visits: Option<std::sync::Arc<memory::MemoryVisitStore>>,
}

impl Stores {
    /// Everything in this process; at most `max_visits` visits held, `max_visits_per_app` of
    /// one app.
    pub fn in_process(max_visits: usize, max_visits_per_app: usize) -> Stores {
        let quotas = std::sync::Arc::new(memory::MemoryQuotaStore::new());
        let visits = std::sync::Arc::new(memory::MemoryVisitStore::new(
            max_visits,
            max_visits_per_app,
        ));
        let admission = std::sync::Arc::new(Stepwise {
            rates: memory::MemoryRateStore,
            quotas: std::sync::Arc::clone(&quotas),
            visits: std::sync::Arc::clone(&visits),
        });
        Stores {
            tokens: std::sync::Arc::new(memory::MemoryTokenStore::new()),
            quotas,
            visits: std::sync::Arc::clone(&visits) as std::sync::Arc<dyn VisitStore>,
            admission,
            local_visits: Some(visits),
        }
    }

    /// Everything in Redis.
    pub fn shared(state: &redis::RedisState) -> Stores {
        Stores {
            tokens: std::sync::Arc::new(state.clone()),
            quotas: std::sync::Arc::new(state.clone()),
            visits: std::sync::Arc::new(state.clone()),
            admission: std::sync::Arc::new(state.clone()),
            local_visits: None,
        }
    }
}

/// [`Admission`] by the in-process stores, one after the other. Each step is a few atomic
/// operations, so the decision is made on the spot.
pub struct Stepwise {
    pub rates: memory::MemoryRateStore,
    pub quotas: std::sync::Arc<memory::MemoryQuotaStore>,
    pub visits: std::sync::Arc<memory::MemoryVisitStore>,
}

impl Stepwise {
    fn decide(&self, app: AppView<'_>, q: AdmitQuery<'_>) -> Admitted {
        if let RateDecision::Limited { wait } = self.rates.check_now(app, q.api) {
            return Admitted::RateLimited { wait };
        }
        let limit = u64::from(app.limits.api(q.api).per_day.get());
        let used = match self.quotas.acquire_now(app.records, q.api, q.day, limit) {
            QuotaDecision::Admitted { used } => used,
            QuotaDecision::Exhausted { .. } => return Admitted::QuotaExhausted,
        };
        if let Some(openid) = q.openid {
            let last = self.visits.last_visit_now(app.appid(), openid);
            if !crate::limits::is_fresh(last, q.now_ms / 1000, q.visit_ttl) {
                return Admitted::VisitExpired;
            }
        }
        Admitted::Yes { used }
    }
}

impl Admission for Stepwise {
    fn admit<'a>(
        &'a self,
        app: AppView<'a>,
        q: AdmitQuery<'a>,
    ) -> Answer<'a, Result<Admitted, StateError>> {
        Answer::ready(Ok(self.decide(app, q)))
    }
}
