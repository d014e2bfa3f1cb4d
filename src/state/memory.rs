//! The in-process backend: the default, and production code.
//!
//! Bounds: the token and quota stores keep one small record in each registered app's
//! [`AppRecords`] (apps are registered by the operator, so nothing here grows from client input). The
//! visit store is bounded by `limits.max_visits` and swept of expired entries.

use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::sync::PoisonError;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;

use super::journal::{JournaledVisit, VisitJournal};
use super::{
    Answer, AppRecords, AppView, BoxFuture, QuotaDecision, QuotaStore, RateDecision, RateStore,
    ResetDecision, StateError, TokenStore, VisitOutcome, VisitStore,
};
use crate::limits::Metered;
use crate::token::{Epochs, ForceRefused, ForceRules, Lineage};

/// Token rotation state, one record per app in its [`AppRecords`]. Each decision runs under the
/// record's lock, so concurrent rotations of one app serialise and never lose an epoch.
#[derive(Debug, Default)]
pub struct MemoryTokenStore;

impl MemoryTokenStore {
    pub fn new() -> Self {
        Self
    }

    fn decide(
        app: &AppRecords,
        lineage: Lineage,
        decide: impl FnOnce(Option<Epochs>) -> Epochs,
    ) -> Epochs {
        // A panic while the lock is held cannot leave a half-written record.
        let mut held = app.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        let next = decide(held.epochs(lineage));
        held.epochs[lineage.index()] = Some(next);
        next
    }
}

impl TokenStore for MemoryTokenStore {
    fn epochs<'a>(
        &'a self,
        app: &'a AppRecords,
        lineage: Lineage,
    ) -> Answer<'a, Result<Option<Epochs>, StateError>> {
        Answer::ready(Ok(app
            .tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .epochs(lineage)))
    }

    fn rotate<'a>(
        &'a self,
        app: &'a AppRecords,
        lineage: Lineage,
        now_ms: u64,
    ) -> BoxFuture<'a, Result<Epochs, StateError>> {
        let e = Self::decide(app, lineage, |cur| Epochs::rotated(cur, now_ms));
        Box::pin(std::future::ready(Ok(e)))
    }

    fn current_or_rotate<'a>(
        &'a self,
        app: &'a AppRecords,
        lineage: Lineage,
        now_ms: u64,
        fresh_ms: u64,
    ) -> BoxFuture<'a, Result<Epochs, StateError>> {
        let e = Self::decide(app, lineage, |cur| match cur {
            Some(e) if now_ms < e.current.saturating_add(fresh_ms) => e,
            other => Epochs::rotated(other, now_ms),
        });
        Box::pin(std::future::ready(Ok(e)))
    }

    fn force_stable<'a>(
        &'a self,
        app: &'a AppRecords,
        now_ms: u64,
        rules: ForceRules,
    ) -> BoxFuture<'a, Result<Result<Epochs, ForceRefused>, StateError>> {
        let mut held = app.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        let decision = held.forced.admit(rules, now_ms).map(|forced| {
            let next = Epochs::forced(held.epochs(Lineage::Stable), now_ms);
            held.forced = forced;
            held.epochs[Lineage::Stable.index()] = Some(next);
            next
        });
        drop(held);
        Box::pin(std::future::ready(Ok(decision)))
    }
}

/// Quota counters, kept in each app's [`AppRecords`]: one atomic word per API holding
/// `day << 40 | used`, and one for the monthly resets holding `month << 32 | count`. Every
/// decision is one compare-and-swap loop on one word, so concurrent callers can never admit more
/// than the limit.
#[derive(Debug, Default)]
pub struct MemoryQuotaStore;

/// One app's quota words.
#[derive(Debug, Default)]
pub(crate) struct QuotaCell {
    counters: [AtomicU64; Metered::ALL.len()],
    resets: AtomicU64,
}

impl QuotaCell {
    /// The quota word of `api` as held (its day and count packed).
    pub(crate) fn word(&self, api: Metered) -> u64 {
        self.counters[api.index()].load(Ordering::Acquire)
    }

    /// Puts back a quota word read from the store.
    pub(crate) fn set_word(&self, api: Metered, word: u64) {
        self.counters[api.index()].store(word, Ordering::Release);
    }

    /// The reset allowance word as held (its month and count packed).
    pub(crate) fn resets_word(&self) -> u64 {
        self.resets.load(Ordering::Acquire)
    }

    /// Puts back the reset allowance word read from the store.
    pub(crate) fn set_resets_word(&self, word: u64) {
        self.resets.store(word, Ordering::Release);
    }
}

const USED_BITS: u32 = 40;
const USED_MASK: u64 = (1 << USED_BITS) - 1;

fn unpack_used(word: u64, day: u32) -> u64 {
    if (word >> USED_BITS) as u32 == day {
        word & USED_MASK
    } else {
        0
    }
}

impl MemoryQuotaStore {
    pub fn new() -> Self {
        Self
    }

    /// [`QuotaStore::acquire`], answered on the spot.
    pub fn acquire_now(
        &self,
        app: &AppRecords,
        api: Metered,
        day: u32,
        limit: u64,
    ) -> QuotaDecision {
        let counter = &app.quota.counters[api.index()];
        let mut current = counter.load(Ordering::Acquire);
        loop {
            let used = unpack_used(current, day);
            if used >= limit {
                break QuotaDecision::Exhausted { used };
            }
            let next = (u64::from(day) << USED_BITS) | (used + 1);
            match counter.compare_exchange_weak(current, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => break QuotaDecision::Admitted { used: used + 1 },
                Err(actual) => current = actual,
            }
        }
    }
}

impl QuotaStore for MemoryQuotaStore {
    fn acquire<'a>(
        &'a self,
        app: &'a AppRecords,
        api: Metered,
        day: u32,
        limit: u64,
    ) -> BoxFuture<'a, Result<QuotaDecision, StateError>> {
        Box::pin(std::future::ready(Ok(
            self.acquire_now(app, api, day, limit)
        )))
    }

    fn refund<'a>(
        &'a self,
        app: &'a AppRecords,
        api: Metered,
        day: u32,
    ) -> BoxFuture<'a, Result<(), StateError>> {
        let counter = &app.quota.counters[api.index()];
        let mut current = counter.load(Ordering::Acquire);
        loop {
            let used = unpack_used(current, day);
            if used == 0 {
                break;
            }
            let next = (u64::from(day) << USED_BITS) | (used - 1);
            match counter.compare_exchange_weak(current, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => break,
                Err(actual) => current = actual,
            }
        }
        Box::pin(std::future::ready(Ok(())))
    }

    fn used<'a>(
        &'a self,
        app: &'a AppRecords,
        api: Metered,
        day: u32,
    ) -> BoxFuture<'a, Result<u64, StateError>> {
        let used = unpack_used(app.quota.counters[api.index()].load(Ordering::Acquire), day);
        Box::pin(std::future::ready(Ok(used)))
    }

    fn reset<'a>(
        &'a self,
        app: &'a AppRecords,
        day: u32,
        month: u32,
        allowance: u32,
    ) -> BoxFuture<'a, Result<ResetDecision, StateError>> {
        let cell = &app.quota;
        let mut current = cell.resets.load(Ordering::Acquire);
        let decision = loop {
            let count = if (current >> 32) as u32 == month {
                current as u32
            } else {
                0
            };
            if count >= allowance {
                break ResetDecision::AllowanceSpent;
            }
            let next = (u64::from(month) << 32) | u64::from(count + 1);
            match cell.resets.compare_exchange_weak(
                current,
                next,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    for counter in &cell.counters {
                        counter.store(u64::from(day) << USED_BITS, Ordering::Release);
                    }
                    break ResetDecision::Reset {
                        remaining: allowance - count - 1,
                    };
                }
                Err(actual) => current = actual,
            }
        };
        Box::pin(std::future::ready(Ok(decision)))
    }
}

/// A hasher for keys that are already uniformly distributed 64-bit hashes.
#[derive(Default)]
pub struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only u64 keys are hashed (see `write_u64`); fold anything else in for safety.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// Visits: a map from a keyed 64-bit hash of `(appid, openid)` to the visit time in seconds and
/// the app's number (in this store, for its per-app count), packed in 8 bytes.
///
/// Cost per entry: an 8-byte key and an 8-byte value in a hashbrown table (one control byte,
/// load factor up to 7/8) — about 18–36 bytes depending on where the table is in its growth
/// cycle; 10 million users fit in well under 1 GiB (BENCHMARKS.md has the
/// measurement). The hash is SipHash with a per-process random key, so clients cannot aim
/// collisions at one another; an accidental collision (probability about n²/2⁶⁵) would let one
/// user borrow another's freshness, which is harmless.
///
/// Bound: at most `max_entries` in all and `max_per_app` of one app; at either, visits of known
/// users still refresh and new users are refused until the sweep frees room
/// ([`VisitOutcome::Full`], [`VisitOutcome::AppFull`]), so one app reporting users without end
/// cannot take the room of the others. The sweep (`retain`) locks one of many small shards at a
/// time, so requests never wait for a whole-map pass.
pub struct MemoryVisitStore {
    visits: DashMap<u64, u64, BuildHasherDefault<PassThrough>>,
    keys: std::hash::RandomState,
    entries: AtomicUsize,
    max_entries: usize,
    max_per_app: usize,
    /// Each app's number in the packed values (bounded by the apps that ever reported).
    app_numbers: DashMap<Box<str>, u32>,
    next_app_number: std::sync::atomic::AtomicU32,
    /// Entries held per app number.
    per_app: DashMap<u32, usize>,
    /// The visits recorded since the last flush, when they are persisted.
    journal: std::sync::OnceLock<VisitJournal>,
}

impl std::fmt::Debug for MemoryVisitStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryVisitStore")
            .field("entries", &self.len())
            .finish_non_exhaustive()
    }
}

/// A visit time and an app number packed in one word.
fn pack_visit(at: u32, app: u32) -> u64 {
    (u64::from(app) << 32) | u64::from(at)
}

fn visit_time(packed: u64) -> u32 {
    packed as u32
}

fn visit_app(packed: u64) -> u32 {
    (packed >> 32) as u32
}

impl MemoryVisitStore {
    /// At most `max_entries` visits, and `max_per_app` of one app.
    pub fn new(max_entries: usize, max_per_app: usize) -> Self {
        MemoryVisitStore {
            visits: DashMap::with_hasher_and_shard_amount(BuildHasherDefault::default(), 256),
            keys: std::hash::RandomState::new(),
            entries: AtomicUsize::new(0),
            max_entries,
            max_per_app,
            app_numbers: DashMap::new(),
            next_app_number: std::sync::atomic::AtomicU32::new(0),
            per_app: DashMap::new(),
            journal: std::sync::OnceLock::new(),
        }
    }

    fn key(&self, appid: &str, openid: &str) -> u64 {
        self.keys.hash_one((appid, openid))
    }

    fn app_number(&self, appid: &str) -> u32 {
        if let Some(n) = self.app_numbers.get(appid) {
            return *n;
        }
        *self
            .app_numbers
            .entry(appid.into())
            .or_insert_with(|| self.next_app_number.fetch_add(1, Ordering::Relaxed))
    }

    /// Records a visit (the latest wins), within both caps.
    fn record_now(&self, appid: &str, openid: &str, at: u32) -> VisitOutcome {
        let key = self.key(appid, openid);
        let app = self.app_number(appid);
        match self.visits.entry(key) {
            Entry::Occupied(mut o) => {
                let v = o.get_mut();
                *v = pack_visit(visit_time(*v).max(at), visit_app(*v));
                VisitOutcome::Recorded
            }
            Entry::Vacant(v) => {
                // Reserve a place first so concurrent inserts cannot overshoot either cap.
                let outcome = self.reserve(app);
                if outcome == VisitOutcome::Recorded {
                    v.insert(pack_visit(at, app));
                }
                outcome
            }
        }
    }

    /// Journals every visit recorded from now on, for [`crate::state::persist`].
    pub fn keep_journal(&self) {
        let _ = self.journal.set(VisitJournal::default());
    }

    /// The visits journaled since the last call.
    pub fn take_journal(&self) -> Vec<JournaledVisit> {
        self.journal
            .get()
            .map(VisitJournal::take)
            .unwrap_or_default()
    }

    /// Puts back visits taken from the journal that could not be written.
    pub fn rejournal(&self, visits: Vec<JournaledVisit>) {
        if let Some(journal) = self.journal.get() {
            for v in visits {
                journal.push(v);
            }
        }
    }

    /// Visits not journaled because the journal was full.
    pub fn journal_dropped(&self) -> u64 {
        self.journal
            .get()
            .map_or(0, |j| j.dropped.load(Ordering::Relaxed))
    }

    /// A visit read back from the store at start-up (not journaled again).
    pub fn restore(&self, appid: &str, openid: &str, at: u64) {
        let _ = self.record_now(appid, openid, u32::try_from(at).unwrap_or(u32::MAX));
    }

    /// Takes a place for a new user of app `app`, in all and in the app's share.
    fn reserve(&self, app: u32) -> VisitOutcome {
        let reserved = self
            .entries
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max_entries).then_some(n + 1)
            });
        if reserved.is_err() {
            return VisitOutcome::Full;
        }
        let mut held = self.per_app.entry(app).or_insert(0);
        if *held >= self.max_per_app {
            drop(held);
            self.entries.fetch_sub(1, Ordering::AcqRel);
            return VisitOutcome::AppFull(self.max_per_app);
        }
        *held += 1;
        VisitOutcome::Recorded
    }
}

impl VisitStore for MemoryVisitStore {
    fn record<'a>(
        &'a self,
        appid: &'a str,
        openid: &'a str,
        now_secs: u64,
    ) -> BoxFuture<'a, Result<VisitOutcome, StateError>> {
        let at = u32::try_from(now_secs).unwrap_or(u32::MAX);
        let outcome = self.record_now(appid, openid, at);
        if outcome == VisitOutcome::Recorded
            && let Some(journal) = self.journal.get()
        {
            journal.push(JournaledVisit {
                at,
                appid: appid.into(),
                openid: openid.into(),
            });
        }
        Box::pin(std::future::ready(Ok(outcome)))
    }

    fn last_visit<'a>(
        &'a self,
        appid: &'a str,
        openid: &'a str,
    ) -> BoxFuture<'a, Result<Option<u64>, StateError>> {
        Box::pin(std::future::ready(Ok(self.last_visit_now(appid, openid))))
    }

    fn sweep(&self, before_secs: u64) -> usize {
        let before = u32::try_from(before_secs).unwrap_or(u32::MAX);
        let mut removed = std::collections::HashMap::<u32, usize>::new();
        self.visits.retain(|_, packed| {
            let keep = visit_time(*packed) >= before;
            if !keep {
                *removed.entry(visit_app(*packed)).or_default() += 1;
            }
            keep
        });
        let mut total = 0;
        for (app, n) in removed {
            total += n;
            if let Some(mut held) = self.per_app.get_mut(&app) {
                *held = held.saturating_sub(n);
            }
        }
        self.entries.fetch_sub(total, Ordering::AcqRel);
        total
    }

    fn held(&self) -> Option<usize> {
        Some(self.len())
    }
}

impl MemoryVisitStore {
    /// [`VisitStore::last_visit`], answered on the spot.
    pub fn last_visit_now(&self, appid: &str, openid: &str) -> Option<u64> {
        self.visits
            .get(&self.key(appid, openid))
            .map(|v| u64::from(visit_time(*v)))
    }

    /// Entries held now.
    pub fn len(&self) -> usize {
        self.entries.load(Ordering::Acquire)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Rate limits in process: governor direct limiters, one per app and API, held in the app
/// (a replaced app starts a fresh limiter, as its limits may have changed). Governor reads the
/// gateway's injected clock, which is where `now_ms` comes from too.
#[derive(Debug, Default)]
pub struct MemoryRateStore;

impl RateStore for MemoryRateStore {
    fn check<'a>(
        &'a self,
        app: AppView<'a>,
        api: Metered,
        _now_ms: u64,
    ) -> BoxFuture<'a, Result<RateDecision, StateError>> {
        Box::pin(std::future::ready(Ok(self.check_now(app, api))))
    }
}

impl MemoryRateStore {
    /// [`RateStore::check`], answered on the spot.
    pub fn check_now(&self, app: AppView<'_>, api: Metered) -> RateDecision {
        match app.limits.api(api).check_rate() {
            Ok(()) => RateDecision::Admitted,
            Err(wait) => RateDecision::Limited { wait },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_token_store_passes_the_conformance_suite() {
        crate::state::conformance::token_store(&MemoryTokenStore::new()).await;
    }

    #[tokio::test]
    async fn memory_quota_store_passes_the_conformance_suite() {
        crate::state::conformance::quota_store(&MemoryQuotaStore::new()).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn memory_quota_store_is_exact_under_concurrency() {
        crate::state::conformance::quota_store_concurrent(std::sync::Arc::new(
            MemoryQuotaStore::new(),
        ))
        .await;
    }

    #[tokio::test]
    async fn memory_visit_store_passes_the_conformance_suite() {
        crate::state::conformance::visit_store(&MemoryVisitStore::new(3, 3)).await;
    }

    /// The in-process store's own bound: the capacity (3 here) refuses new users but never known
    /// ones, and the sweep frees room.
    #[tokio::test]
    async fn memory_visit_store_is_bounded_and_swept() {
        let store = MemoryVisitStore::new(3, 3);
        let app = "wx00000000000000aa";
        store.record(app, "u1", 100).await.unwrap();
        store.record(app, "u2", 200).await.unwrap();
        store.record(app, "u3", 300).await.unwrap();
        assert_eq!(store.held(), Some(3));
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

    #[tokio::test]
    async fn memory_rate_store_passes_the_conformance_suite() {
        crate::state::conformance::rate_store(&MemoryRateStore).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn memory_rate_store_is_exact_under_concurrency() {
        crate::state::conformance::rate_store_concurrent(std::sync::Arc::new(MemoryRateStore))
            .await;
    }

    #[tokio::test]
    async fn stepwise_admission_passes_the_conformance_suite() {
        let visits = std::sync::Arc::new(MemoryVisitStore::new(100, 100));
        let admission = crate::state::Stepwise {
            rates: MemoryRateStore,
            quotas: std::sync::Arc::new(MemoryQuotaStore::new()),
            visits: visits.clone(),
        };
        crate::state::conformance::admission(&admission, &*visits).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn memory_token_store_is_exact_under_concurrency() {
        crate::state::conformance::token_store_concurrent(std::sync::Arc::new(
            MemoryTokenStore::new(),
        ))
        .await;
    }
}
