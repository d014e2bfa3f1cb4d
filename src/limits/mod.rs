//! Per-app protection as the platform applies it (SPEC §3 order, §5): a rate limit (GCRA, via
//! governor), a daily quota, and visit freshness.
//!
//! The decisions are pure given the time and the state: rate limiters are governor direct
//! limiters per app and API, driven by the injected clock; quota counting and visits are single
//! atomic decisions behind the state traits ([`crate::state::QuotaStore`],
//! [`crate::state::VisitStore`]); day and month boundaries are [`calendar`] arithmetic.
//!
//! Burst: governor's `Quota::per_minute(n)` lets an idle app spend its whole minute at once (a
//! burst of `n`) and then refills one call every `60/n` seconds, which is what "n per minute"
//! means to a client that spreads its calls, and never admits more than `n` in any 60 s window
//! after an idle period plus what refilled.

pub mod calendar;

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::Clock as GovernorClock;
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

use crate::clock::SharedClock;

/// The metered APIs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metered {
    MsgSecCheck,
    MediaCheckAsync,
    /// `/wxa/img_sec_check`, the v1 synchronous image check: limits of its own (SPEC §12).
    ImgSecCheck,
    /// `/wxa/visit/report`: metered so that no app can flood the visit store.
    VisitReport,
    /// `/wxa/getuserriskrank`.
    RiskRank,
}

impl Metered {
    pub const ALL: [Metered; 5] = [
        Metered::MsgSecCheck,
        Metered::MediaCheckAsync,
        Metered::ImgSecCheck,
        Metered::VisitReport,
        Metered::RiskRank,
    ];

    pub fn index(self) -> usize {
        self as usize
    }

    /// The path `quota/get` names it by.
    pub fn cgi_path(self) -> &'static str {
        match self {
            Metered::MsgSecCheck => "/wxa/msg_sec_check",
            Metered::MediaCheckAsync => "/wxa/media_check_async",
            Metered::ImgSecCheck => "/wxa/img_sec_check",
            Metered::VisitReport => "/wxa/visit/report",
            Metered::RiskRank => "/wxa/getuserriskrank",
        }
    }

    pub fn from_cgi_path(path: &str) -> Option<Metered> {
        Metered::ALL.into_iter().find(|m| m.cgi_path() == path)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Metered::MsgSecCheck => "msg_sec_check",
            Metered::MediaCheckAsync => "media_check_async",
            Metered::ImgSecCheck => "img_sec_check",
            Metered::VisitReport => "visit_report",
            Metered::RiskRank => "risk_rank",
        }
    }
}

/// Governor's view of the injected clock: time since the epoch.
#[derive(Clone)]
pub struct LimiterClock(pub SharedClock);

impl GovernorClock for LimiterClock {
    type Instant = Duration;

    fn now(&self) -> Duration {
        Duration::from_millis(self.0.now_ms())
    }
}

type Limiter = RateLimiter<NotKeyed, InMemoryState, LimiterClock, NoOpMiddleware<Duration>>;

/// One app's limits for one API.
pub struct ApiLimits {
    pub per_minute: NonZeroU32,
    pub per_day: NonZeroU32,
    limiter: Limiter,
}

impl std::fmt::Debug for ApiLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiLimits")
            .field("per_minute", &self.per_minute)
            .field("per_day", &self.per_day)
            .finish_non_exhaustive()
    }
}

impl ApiLimits {
    pub fn new(per_minute: NonZeroU32, per_day: NonZeroU32, clock: SharedClock) -> Self {
        ApiLimits {
            per_minute,
            per_day,
            limiter: RateLimiter::direct_with_clock(
                Quota::per_minute(per_minute),
                LimiterClock(clock),
            ),
        }
    }

    /// Takes one call from the rate limit, or says how long until one is available.
    pub fn check_rate(&self) -> Result<(), Duration> {
        self.limiter
            .check()
            .map_err(|not_until| not_until.wait_time_from(self.limiter.clock().now()))
    }
}

/// An app's limits for every metered API.
#[derive(Debug)]
pub struct AppLimits {
    apis: [ApiLimits; Metered::ALL.len()],
}

/// Calls per minute and per day.
pub type Allowance = (NonZeroU32, NonZeroU32);

impl AppLimits {
    /// `allowances` in the order of [`Metered::ALL`].
    pub fn new(allowances: [Allowance; Metered::ALL.len()], clock: &SharedClock) -> Self {
        AppLimits {
            apis: allowances.map(|(minute, day)| ApiLimits::new(minute, day, clock.clone())),
        }
    }

    pub fn api(&self, api: Metered) -> &ApiLimits {
        &self.apis[api.index()]
    }
}

/// Whether a visit at `last_secs` still makes the user fresh at `now_secs`: fresh for exactly
/// `ttl` after the visit (fresh at 119:59, stale at 120:00 for the default 120 minutes).
pub fn is_fresh(last_secs: Option<u64>, now_secs: u64, ttl: Duration) -> bool {
    last_secs.is_some_and(|last| now_secs.saturating_sub(last) < ttl.as_secs())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::ManualClock;

    fn nz(n: u32) -> NonZeroU32 {
        NonZeroU32::new(n).unwrap()
    }

    #[test]
    fn rate_limit_bursts_then_refills_per_minute() {
        let manual = ManualClock::new(1_000_000);
        let clock: SharedClock = Arc::new(manual.clone());
        let limits = ApiLimits::new(nz(6), nz(1000), clock.clone());
        for _ in 0..6 {
            assert!(limits.check_rate().is_ok());
        }
        let wait = limits.check_rate().unwrap_err();
        assert_eq!(wait, Duration::from_secs(10));
        manual.advance(Duration::from_millis(9_999));
        assert!(limits.check_rate().is_err());
        manual.advance(Duration::from_millis(1));
        assert!(limits.check_rate().is_ok());
        assert!(limits.check_rate().is_err());
        // A full idle minute refills the whole burst, and no more.
        manual.advance(Duration::from_secs(60));
        for _ in 0..6 {
            assert!(limits.check_rate().is_ok());
        }
        assert!(limits.check_rate().is_err());
    }

    #[test]
    fn freshness_boundary() {
        let ttl = Duration::from_secs(7200);
        assert!(is_fresh(Some(1000), 1000 + 7199, ttl));
        assert!(!is_fresh(Some(1000), 1000 + 7200, ttl));
        assert!(!is_fresh(None, 1000, ttl));
    }
}
