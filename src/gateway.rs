//! The running gateway: the parts both listeners' handlers share (apps, stores, the engine in
//! force, media jobs, the review queue, the catalog, metrics, the clock), and the decisions made
//! on them that know nothing of HTTP (admission, engine reloads, request ids).

use std::sync::Arc;
use std::time::Duration;

use crate::clock::SharedClock;
use crate::config::Config;
use crate::engine::Engine;
use crate::limits::{Metered, calendar};
use crate::metrics::Metrics;
use crate::rid::{Rid, RidGenerator};
use crate::state::redis::RedisState;
use crate::state::{
    Admission, AdmitQuery, Admitted, QuotaStore, StateError, TokenStore, VisitStore,
};
use crate::tenants::{App, AppRegistry};

/// The shared backend of a distributed deployment.
#[derive(Debug, Clone)]
pub struct Shared {
    pub state: RedisState,
    pub catalog: Arc<crate::catalog::RedisCatalog>,
}

/// Why a metered call was not admitted (SPEC's check order, steps 3 to 5).
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// 44991: over the per-minute rate limit; another call is allowed after the wait.
    #[error("rate limited for {0:?}")]
    RateLimited(Duration),
    /// 45009: the daily quota is used up.
    #[error("daily quota exceeded")]
    QuotaExceeded,
    /// 61010: the user has not visited recently enough.
    #[error("user visit expired")]
    VisitExpired,
    /// The shared backend could not decide.
    #[error(transparent)]
    Backend(#[from] StateError),
}

/// Everything the handlers share. One per process; cloned as an `Arc`.
pub struct Gateway {
    pub config: Config,
    pub apps: Arc<AppRegistry>,
    pub tokens: Arc<dyn TokenStore>,
    pub quotas: Arc<dyn QuotaStore>,
    pub visits: Arc<dyn VisitStore>,
    /// Rate limit, quota and visit decided together ([`Gateway::admit`]).
    pub admission: Arc<dyn Admission>,
    /// What the in-process backend keeps across restarts (quota counts, resets, token
    /// rotations, visits), written behind by the gateway every second; `None` with Redis.
    pub persisted: Option<Arc<crate::state::persist::Persisted>>,
    /// The shared backend, when instances share Redis (`state.backend = "redis"`).
    pub shared: Option<Shared>,
    /// The documents operators change (apps, keyword tables, hash banks, risk lists): stored in
    /// the catalog (the embedded store, or Redis shared by every instance) and changed only
    /// through it ([`crate::catalog`]).
    pub documents: crate::catalog::Documents,
    /// Media jobs: the queue, the fetcher and the schedule ([`crate::jobs`]).
    pub media: Arc<crate::jobs::MediaJobs>,
    /// The text engine in force. Readers take a snapshot per request; a reload builds a new
    /// engine off the async workers and swaps it in whole.
    pub engine: Arc<arc_swap::ArcSwap<Engine>>,
    /// What a verdict sets off: the user's risk record and the review queue.
    pub effects: crate::effects::Effects,
    pub metrics: Metrics,
    /// Verdicts waiting for a person ([`crate::review`]).
    pub review: Arc<crate::review::ReviewQueue>,
    /// Whether to shed a request now ([`crate::transport::overload`]).
    pub overload: Arc<crate::transport::overload::Overload>,
    pub clock: SharedClock,
    pub rids: RidGenerator,
    /// The platform behind the gateway, in pass-through mode (`[upstream] url`).
    pub upstream: Option<Arc<crate::upstream::Upstream>>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("apps", &self.apps.len())
            .finish_non_exhaustive()
    }
}

impl Gateway {
    /// Rebuilds the engine from the built-in lexicon and the operator's lexicon files (on the
    /// blocking pool) and swaps it in. On failure the engine in force stays, and the error says
    /// which file and line are at fault. Returns the number of patterns now in force.
    pub async fn reload_engine(&self) -> Result<usize, crate::engine::EngineError> {
        let config = self.config.engine.clone();
        let built = tokio::task::spawn_blocking(move || config.build())
            .await
            .map_err(|e| {
                crate::engine::EngineError::Lexicon(crate::engine::LexiconError {
                    source_name: "(reload)".into(),
                    line: 0,
                    message: format!("build task failed: {e}"),
                })
            })??;
        let patterns = built.matcher().len();
        self.engine.store(Arc::new(built));
        Ok(patterns)
    }

    /// Steps 3–5 of the SPEC's check order for a metered call that passed validation: the
    /// per-minute rate limit (44991), the daily quota (45009, counted only here, so refusals at
    /// earlier steps consume nothing), and, when the API names a user, visit freshness (61010).
    pub async fn admit(
        &self,
        app: &App,
        api: Metered,
        openid: Option<&str>,
    ) -> Result<(), Refused> {
        self.admit_at(app, api, openid, self.clock.now_ms()).await
    }

    /// [`Gateway::admit`] at a time the caller has read.
    pub async fn admit_at(
        &self,
        app: &App,
        api: Metered,
        openid: Option<&str>,
        now_ms: u64,
    ) -> Result<(), Refused> {
        let limits = &self.config.limits;
        if !limits.enforce {
            return Ok(());
        }
        let query = AdmitQuery {
            api,
            now_ms,
            day: self.quota_day(now_ms / 1000),
            openid: openid.filter(|_| self.checks_visits(app)),
            visit_ttl: limits.visit_ttl,
        };
        let decision = match self.admission.admit(app.view(), query).await {
            Ok(decision) => decision,
            // Without the shared backend, text checks go on under this instance's own rate
            // limiter (no daily quota, no visit check); media jobs are refused (-1).
            Err(e) if api == Metered::MsgSecCheck => {
                self.metrics.state.fell_back("admission", &e);
                match app.limits.api(api).check_rate() {
                    Ok(()) => return Ok(()),
                    Err(wait) => Admitted::RateLimited { wait },
                }
            }
            Err(e) => return Err(Refused::Backend(e)),
        };
        match decision {
            Admitted::Yes { .. } => {
                self.metrics.quota_admitted(api);
                Ok(())
            }
            Admitted::RateLimited { wait } => {
                self.metrics.refusal(api, "rate");
                self.metrics.app_refusal(app.appid(), api, "rate");
                Err(Refused::RateLimited(wait))
            }
            Admitted::QuotaExhausted => {
                self.metrics.refusal(api, "quota");
                self.metrics.app_refusal(app.appid(), api, "quota");
                Err(Refused::QuotaExceeded)
            }
            Admitted::VisitExpired => {
                self.metrics.quota_admitted(api);
                self.metrics.refusal(api, "visit");
                self.metrics.app_refusal(app.appid(), api, "visit");
                Err(Refused::VisitExpired)
            }
        }
    }

    /// The app's custom keyword table in force now, if it has one. The caller keeps this `Arc` for
    /// the whole check, so a concurrent replacement cannot change the table under it.
    pub fn table(&self, app: &App) -> Option<Arc<crate::engine::table::CustomTable>> {
        app.slot.table()
    }

    /// Whether calls of `app` that name a user need a recent visit of theirs (the app's
    /// `visit_check`, else `limits.visit_check`). Separate from rate limits and quotas.
    pub fn checks_visits(&self, app: &App) -> bool {
        app.config
            .visit_check
            .unwrap_or(self.config.limits.visit_check)
            == crate::config::VisitCheck::Report
    }

    /// The quota day a time falls in: days since 1970-01-01 in the quota's offset from UTC
    /// (`limits.day_offset_hours`). Every daily count and reset is keyed by it.
    pub fn quota_day(&self, now_secs: u64) -> u32 {
        calendar::day_number(now_secs, self.config.limits.day_offset_hours)
    }

    /// A fresh request id.
    pub fn rid(&self) -> Rid {
        self.rids.next(self.clock.now_secs())
    }

    /// A fresh request id stamped with a time the caller has read.
    pub fn rid_at(&self, now_ms: u64) -> Rid {
        self.rids.next(now_ms / 1000)
    }
}
