//! The behaviour every backend must show. Each backend's tests call these functions with a fresh
//! store.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use super::{
    Admission, AdmitQuery, Admitted, AppRecords, AppView, QuotaDecision, QuotaStore, RateDecision,
    RateStore, ResetDecision, TokenStore, VisitOutcome, VisitStore,
};
use crate::clock::{Clock, ManualClock, SharedClock};
use crate::limits::{AppLimits, Metered};
use crate::token::{Epochs, ForceRefused, ForceRules, Lineage};

/// An app as the state layer sees it: its records and its limits.
pub struct TestApp {
    pub records: AppRecords,
    pub limits: AppLimits,
}

impl TestApp {
    pub fn view(&self) -> AppView<'_> {
        AppView {
            records: &self.records,
            limits: &self.limits,
        }
    }

    pub fn appid(&self) -> &str {
        self.records.appid()
    }
}

/// An app with `text_per_minute` / `text_per_day` limits (and the default media limits) whose
/// in-process limiters run on `clock`.
pub fn app(appid: &str, per_minute: u32, per_day: u32, clock: &ManualClock) -> TestApp {
    let shared: SharedClock = Arc::new(clock.clone());
    let n = |v: u32| NonZeroU32::new(v).expect("a limit above zero");
    TestApp {
        records: AppRecords::new(appid),
        limits: AppLimits::new(
            [
                (n(per_minute), n(per_day)),
                (n(2000), n(200_000)),
                (n(1000), n(100_000)),
                (n(2000), n(1_000_000)),
                (n(2000), n(1_000_000)),
            ],
            &shared,
        ),
    }
}

/// Rate limits: GCRA with a burst of the whole minute, exactly as governor's
/// `Quota::per_minute`: six at once, then one every ten seconds; another API is not touched.
pub async fn rate_store(store: &dyn RateStore) {
    let clock = ManualClock::new(1_700_000_000_000);
    let app = app("wx00000000000000aa", 6, 1000, &clock);
    let check = |clock: &ManualClock| store.check(app.view(), Metered::MsgSecCheck, clock.now_ms());
    for _ in 0..6 {
        assert_eq!(check(&clock).await.unwrap(), RateDecision::Admitted);
    }
    assert_eq!(
        check(&clock).await.unwrap(),
        RateDecision::Limited {
            wait: Duration::from_secs(10)
        }
    );
    assert_eq!(
        store
            .check(app.view(), Metered::MediaCheckAsync, clock.now_ms())
            .await
            .unwrap(),
        RateDecision::Admitted
    );
    clock.advance(Duration::from_millis(9_999));
    assert!(matches!(
        check(&clock).await.unwrap(),
        RateDecision::Limited { .. }
    ));
    clock.advance(Duration::from_millis(1));
    assert_eq!(check(&clock).await.unwrap(), RateDecision::Admitted);
    assert!(matches!(
        check(&clock).await.unwrap(),
        RateDecision::Limited { .. }
    ));
    // A full idle minute refills the whole burst, and no more.
    clock.advance(Duration::from_secs(60));
    for _ in 0..6 {
        assert_eq!(check(&clock).await.unwrap(), RateDecision::Admitted);
    }
    assert!(matches!(
        check(&clock).await.unwrap(),
        RateDecision::Limited { .. }
    ));
}

/// Rate limits under concurrency: 200 calls at one instant against a limit of 100 per minute
/// admit exactly 100.
pub async fn rate_store_concurrent(store: Arc<dyn RateStore>) {
    let clock = ManualClock::new(1_700_000_000_000);
    let app = Arc::new(app("wx00000000000000ab", 100, 1000, &clock));
    let now = clock.now_ms();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let (store, app) = (Arc::clone(&store), Arc::clone(&app));
        tasks.spawn(async move {
            let mut admitted = 0;
            for _ in 0..50 {
                if store
                    .check(app.view(), Metered::MsgSecCheck, now)
                    .await
                    .unwrap()
                    == RateDecision::Admitted
                {
                    admitted += 1;
                }
            }
            admitted
        });
    }
    let mut admitted = 0;
    while let Some(n) = tasks.join_next().await {
        admitted += n.unwrap();
    }
    assert_eq!(admitted, 100);
}

/// Admission: rate limit, quota and visit in that order, each refusal counting what the
/// platform counts (a rate refusal nothing, a quota refusal the rate call, a stale visit both).
/// `visits` is the store `admission` reads visits from.
pub async fn admission(admission: &dyn Admission, visits: &dyn VisitStore) {
    let clock = ManualClock::new(1_700_000_000_000);
    let app = app("wx00000000000000ac", 3, 5, &clock);
    let ttl = Duration::from_secs(7200);
    let query = |clock: &ManualClock, openid: Option<&'static str>, day: u32| AdmitQuery {
        api: Metered::MsgSecCheck,
        now_ms: clock.now_ms(),
        day,
        openid,
        visit_ttl: ttl,
    };
    let admit = |q| admission.admit(app.view(), q);
    assert_eq!(
        admit(query(&clock, Some("u1"), 9)).await.unwrap(),
        Admitted::VisitExpired
    );
    visits
        .record(app.appid(), "u1", clock.now_secs())
        .await
        .unwrap();
    assert_eq!(
        admit(query(&clock, Some("u1"), 9)).await.unwrap(),
        Admitted::Yes { used: 2 }
    );
    assert_eq!(
        admit(query(&clock, None, 9)).await.unwrap(),
        Admitted::Yes { used: 3 }
    );
    // Three calls spent the burst: the fourth waits 20 s (one call per 20 s) and counts nothing.
    assert_eq!(
        admit(query(&clock, None, 9)).await.unwrap(),
        Admitted::RateLimited {
            wait: Duration::from_secs(20)
        }
    );
    clock.advance(Duration::from_secs(60));
    assert_eq!(
        admit(query(&clock, Some("u1"), 9)).await.unwrap(),
        Admitted::Yes { used: 4 }
    );
    assert_eq!(
        admit(query(&clock, None, 9)).await.unwrap(),
        Admitted::Yes { used: 5 }
    );
    assert_eq!(
        admit(query(&clock, None, 9)).await.unwrap(),
        Admitted::QuotaExhausted
    );
    // The quota refusal took the minute's last call.
    assert!(matches!(
        admit(query(&clock, None, 10)).await.unwrap(),
        Admitted::RateLimited { .. }
    ));
    // A new day counts from zero; a visit two hours old is stale (fresh for exactly 7200 s).
    clock.advance(Duration::from_secs(7200 - 60));
    assert_eq!(
        admit(query(&clock, None, 10)).await.unwrap(),
        Admitted::Yes { used: 1 }
    );
    assert_eq!(
        admit(query(&clock, Some("u1"), 10)).await.unwrap(),
        Admitted::VisitExpired
    );
    assert_eq!(
        admit(query(&clock, Some("u2"), 10)).await.unwrap(),
        Admitted::VisitExpired
    );
    assert!(matches!(
        admit(query(&clock, None, 10)).await.unwrap(),
        Admitted::RateLimited { .. }
    ));
}

/// Token rotation: epochs start empty, rotate strictly forward, and `current_or_rotate` keeps a
/// live epoch and replaces an expired one; the two lineages never touch each other; forced
/// stable refreshes retire the current token and follow the platform's rules.
pub async fn token_store(store: &dyn TokenStore) {
    let app = &AppRecords::new("wx00000000000000aa");
    let (token, stable) = (Lineage::Token, Lineage::Stable);
    assert_eq!(store.epochs(app, token).await.unwrap(), None);

    let first = store
        .current_or_rotate(app, token, 1_000, 10_000)
        .await
        .unwrap();
    assert_eq!(
        first,
        Epochs {
            current: 1_000,
            previous: None
        }
    );
    // Still live: the same epoch comes back, whatever the time inside its life.
    assert_eq!(
        store
            .current_or_rotate(app, token, 10_999, 10_000)
            .await
            .unwrap(),
        first
    );
    // Expired: a new epoch, the old one kept as previous.
    let second = store
        .current_or_rotate(app, token, 11_000, 10_000)
        .await
        .unwrap();
    assert_eq!(
        second,
        Epochs {
            current: 11_000,
            previous: Some(1_000)
        }
    );

    // Forced rotations in one millisecond still move forward.
    let third = store.rotate(app, token, 11_000).await.unwrap();
    assert_eq!(
        third,
        Epochs {
            current: 11_001,
            previous: Some(11_000)
        }
    );
    assert_eq!(store.epochs(app, token).await.unwrap(), Some(third));

    // The stable lineage is untouched by all of that, and rotating it leaves the other alone.
    assert_eq!(store.epochs(app, stable).await.unwrap(), None);
    let s1 = store.rotate(app, stable, 20_000).await.unwrap();
    assert_eq!(s1.current, 20_000);
    assert_eq!(store.epochs(app, token).await.unwrap(), Some(third));

    // Forced refreshes: the current stable token is retired at once; the gap and the daily
    // count are kept by the store.
    let rules = |day| ForceRules {
        day,
        per_day: 2,
        min_gap_ms: 30_000,
    };
    let f1 = store.force_stable(app, 21_000, rules(7)).await.unwrap();
    assert_eq!(
        f1,
        Ok(Epochs {
            current: 21_000,
            previous: None
        })
    );
    assert_eq!(
        store.force_stable(app, 50_999, rules(7)).await.unwrap(),
        Err(ForceRefused::TooSoon)
    );
    assert_eq!(
        store
            .force_stable(app, 51_000, rules(7))
            .await
            .unwrap()
            .map(|e| e.current),
        Ok(51_000)
    );
    assert_eq!(
        store.force_stable(app, 90_000, rules(7)).await.unwrap(),
        Err(ForceRefused::DailyLimit)
    );
    // A refused refresh changes nothing; the next day allows more.
    assert_eq!(
        store.epochs(app, stable).await.unwrap().map(|e| e.current),
        Some(51_000)
    );
    assert!(
        store
            .force_stable(app, 90_000, rules(8))
            .await
            .unwrap()
            .is_ok()
    );
    assert_eq!(store.epochs(app, token).await.unwrap(), Some(third));

    // Apps are independent.
    assert_eq!(
        store
            .epochs(&AppRecords::new("wx00000000000000bb"), token)
            .await
            .unwrap(),
        None
    );
}

/// Concurrent rotations of one app never hand out the same epoch twice.
pub async fn token_store_concurrent(store: std::sync::Arc<dyn TokenStore>) {
    let app = std::sync::Arc::new(AppRecords::new("wx00000000000000cc"));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = std::sync::Arc::clone(&store);
        let app = std::sync::Arc::clone(&app);
        tasks.push(tokio::spawn(async move {
            let mut seen = Vec::with_capacity(100);
            for _ in 0..100 {
                seen.push(
                    store
                        .rotate(&app, Lineage::Token, 5_000)
                        .await
                        .unwrap()
                        .current,
                );
            }
            seen
        }));
    }
    let mut all = std::collections::HashSet::new();
    for t in tasks {
        for epoch in t.await.unwrap() {
            assert!(all.insert(epoch), "epoch {epoch} issued twice");
        }
    }
    assert_eq!(all.len(), 800);
    let last = store.epochs(&app, Lineage::Token).await.unwrap().unwrap();
    assert_eq!(last.current, 5_799);
}

/// Quotas: counting stops at the limit, days start from zero, APIs and apps are independent,
/// resets zero today's counts and are limited per month.
pub async fn quota_store(store: &dyn QuotaStore) {
    let (app, other) = (
        &AppRecords::new("wx00000000000000aa"),
        &AppRecords::new("wx00000000000000bb"),
    );
    let text = Metered::MsgSecCheck;
    for i in 1..=3 {
        assert_eq!(
            store.acquire(app, text, 100, 3).await.unwrap(),
            QuotaDecision::Admitted { used: i }
        );
    }
    assert_eq!(
        store.acquire(app, text, 100, 3).await.unwrap(),
        QuotaDecision::Exhausted { used: 3 }
    );
    assert_eq!(store.used(app, text, 100).await.unwrap(), 3);
    // A refund gives one call back, on its day only, and never below zero.
    store.refund(app, text, 100).await.unwrap();
    assert_eq!(store.used(app, text, 100).await.unwrap(), 2);
    assert_eq!(
        store.acquire(app, text, 100, 3).await.unwrap(),
        QuotaDecision::Admitted { used: 3 }
    );
    store.refund(app, text, 99).await.unwrap();
    assert_eq!(store.used(app, text, 100).await.unwrap(), 3);
    store.refund(other, text, 100).await.unwrap();
    assert_eq!(store.used(other, text, 100).await.unwrap(), 0);
    // Other API, other app, next day: untouched.
    assert_eq!(
        store
            .used(app, Metered::MediaCheckAsync, 100)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store.acquire(other, text, 100, 3).await.unwrap(),
        QuotaDecision::Admitted { used: 1 }
    );
    assert_eq!(store.used(app, text, 101).await.unwrap(), 0);
    assert_eq!(
        store.acquire(app, text, 101, 3).await.unwrap(),
        QuotaDecision::Admitted { used: 1 }
    );
    // Resets: two allowed in month 7, then refused; a new month allows again.
    assert_eq!(
        store.reset(app, 101, 7, 2).await.unwrap(),
        ResetDecision::Reset { remaining: 1 }
    );
    assert_eq!(store.used(app, text, 101).await.unwrap(), 0);
    assert_eq!(
        store.reset(app, 101, 7, 2).await.unwrap(),
        ResetDecision::Reset { remaining: 0 }
    );
    assert_eq!(
        store.reset(app, 101, 7, 2).await.unwrap(),
        ResetDecision::AllowanceSpent
    );
    assert_eq!(
        store.reset(app, 131, 8, 2).await.unwrap(),
        ResetDecision::Reset { remaining: 1 }
    );
    // The other app's counters were not reset.
    assert_eq!(store.used(other, text, 100).await.unwrap(), 1);
}

/// Many concurrent callers against a quota of 1000 get exactly 1000 admissions.
pub async fn quota_store_concurrent(store: std::sync::Arc<dyn QuotaStore>) {
    let app = std::sync::Arc::new(AppRecords::new("wx00000000000000dd"));
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let store = std::sync::Arc::clone(&store);
        let app = std::sync::Arc::clone(&app);
        tasks.push(tokio::spawn(async move {
            let mut admitted = 0;
            for _ in 0..100 {
                if let QuotaDecision::Admitted { .. } = store
                    .acquire(&app, Metered::MsgSecCheck, 5, 1000)
                    .await
                    .unwrap()
                {
                    admitted += 1;
                }
            }
            admitted
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    assert_eq!(total, 1000);
    assert_eq!(
        store.used(&app, Metered::MsgSecCheck, 5).await.unwrap(),
        1000
    );
}

/// Visits: the latest visit wins; users and apps are apart.
pub async fn visit_store(store: &dyn VisitStore) {
    let app = "wx00000000000000aa";
    assert_eq!(store.last_visit(app, "u1").await.unwrap(), None);
    assert_eq!(
        store.record(app, "u1", 100).await.unwrap(),
        VisitOutcome::Recorded
    );
    assert_eq!(
        store.record(app, "u1", 90).await.unwrap(),
        VisitOutcome::Recorded
    );
    assert_eq!(store.last_visit(app, "u1").await.unwrap(), Some(100));
    assert_eq!(
        store.last_visit("wx00000000000000bb", "u1").await.unwrap(),
        None
    );
    store.record(app, "u2", 200).await.unwrap();
    assert_eq!(store.last_visit(app, "u2").await.unwrap(), Some(200));
    store.record(app, "u1", 310).await.unwrap();
    assert_eq!(store.last_visit(app, "u1").await.unwrap(), Some(310));
}
