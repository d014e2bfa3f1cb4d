//! The behaviour every backend must show. Each backend's tests call these functions with a fresh
//! store.

use super::{
    AppSlot, QuotaDecision, QuotaStore, ResetDecision, TokenStore, VisitOutcome, VisitStore,
};
use crate::limits::Metered;
use crate::token::Epochs;

/// Token rotation: epochs start empty, rotate strictly forward, and `current_or_rotate` keeps a
/// live epoch and replaces an expired one.
pub async fn token_store(store: &dyn TokenStore) {
    let app = &AppSlot::new("wx00000000000000aa");
    assert_eq!(store.epochs(app).await.unwrap(), None);

    let first = store.current_or_rotate(app, 1_000, 10_000).await.unwrap();
    assert_eq!(
        first,
        Epochs {
            current: 1_000,
            previous: None
        }
    );
    // Still live: the same epoch comes back, whatever the time inside its life.
    assert_eq!(
        store.current_or_rotate(app, 10_999, 10_000).await.unwrap(),
        first
    );
    // Expired: a new epoch, the old one kept as previous.
    let second = store.current_or_rotate(app, 11_000, 10_000).await.unwrap();
    assert_eq!(
        second,
        Epochs {
            current: 11_000,
            previous: Some(1_000)
        }
    );

    // Forced rotations in one millisecond still move forward.
    let third = store.rotate(app, 11_000).await.unwrap();
    assert_eq!(
        third,
        Epochs {
            current: 11_001,
            previous: Some(11_000)
        }
    );
    assert_eq!(store.epochs(app).await.unwrap(), Some(third));

    // Apps are independent.
    assert_eq!(
        store
            .epochs(&AppSlot::new("wx00000000000000bb"))
            .await
            .unwrap(),
        None
    );
}

/// Concurrent rotations of one app never hand out the same epoch twice.
pub async fn token_store_concurrent(store: std::sync::Arc<dyn TokenStore>) {
    let app = std::sync::Arc::new(AppSlot::new("wx00000000000000cc"));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = std::sync::Arc::clone(&store);
        let app = std::sync::Arc::clone(&app);
        tasks.push(tokio::spawn(async move {
            let mut seen = Vec::with_capacity(100);
            for _ in 0..100 {
                seen.push(store.rotate(&app, 5_000).await.unwrap().current);
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
    let last = store.epochs(&app).await.unwrap().unwrap();
    assert_eq!(last.current, 5_799);
}

/// Quotas: counting stops at the limit, days start from zero, APIs and apps are independent,
/// resets zero today's counts and are limited per month.
pub async fn quota_store(store: &dyn QuotaStore) {
    let (app, other) = (
        &AppSlot::new("wx00000000000000aa"),
        &AppSlot::new("wx00000000000000bb"),
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
    let app = std::sync::Arc::new(AppSlot::new("wx00000000000000dd"));
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

/// Visits: the latest visit wins, the sweep drops old ones, the capacity (3 here) refuses new
/// users but never known ones.
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
    store.record(app, "u3", 300).await.unwrap();
    assert_eq!(store.len(), 3);
    assert_eq!(
        store.record(app, "u4", 300).await.unwrap(),
        VisitOutcome::Full
    );
    assert_eq!(
        store.record(app, "u1", 310).await.unwrap(),
        VisitOutcome::Recorded
    );
    // Sweep everything before 250: u2 goes, room for u4.
    assert_eq!(store.sweep(250), 1);
    assert_eq!(store.len(), 2);
    assert_eq!(store.last_visit(app, "u2").await.unwrap(), None);
    assert_eq!(
        store.record(app, "u4", 320).await.unwrap(),
        VisitOutcome::Recorded
    );
    assert_eq!(store.len(), 3);
}
