//! The human review queue (SPEC §11): `review` verdicts, and a sample of `pass` verdicts, kept
//! per app for people to confirm.
//!
//! - **What goes in**: every msgSecCheck v2 answer with suggest `review` (the checked fields),
//!   every media analysis with suggest `review` (the URL, the analysis and the file's hash), and
//!   one in [`ReviewSettings::pass_sample_every`] `pass` verdicts of either kind (spread evenly
//!   by a counter). The item's id is the request's trace_id.
//! - **Bounded**: at most `review.max_items_per_app` items per app. When an app's queue is full,
//!   a new item first evicts the app's oldest decided item; failing that, a new `review` item
//!   evicts the oldest undecided `pass` sample; failing that, the new item is dropped and
//!   counted (`modgate_review_dropped_total{reason="full"}`). A person's pending work is never
//!   displaced by a sample.
//! - **Claims**: a reviewer claims an item before deciding it; a claim lasts
//!   `review.claim_secs` and another reviewer's claim or decision on it answers 409 meanwhile.
//! - **Decisions** (confirm risky or confirm pass, with a reason) are recorded on the item and in
//!   an audit log (reviewer, time, outcome, reason, what was fed back). The audit log holds no
//!   content and keeps its newest `AUDIT_MAX` entries.
//! - **Retention**: items (with the stored texts, URLs and analyses) are deleted
//!   `review.retention_secs` (default 7 days) after they were enqueued, decided or not.
//! - **Persistence**: items and audit entries live in the embedded store (`data_dir`), so the
//!   queue survives a restart. Enqueues happen on the request path, so they only hand the item's
//!   id to one writer task that stores items in batches (one transaction per batch, an item
//!   waiting at most `WRITE_LINGER` for others to join it, so a steady trickle of enqueues costs
//!   a commit per linger rather than one per item); a claim or
//!   decision is stored before it is answered. Every write stores an item's state as it is when
//!   written, under one lock from read to commit, so a batch never commits an older state of an
//!   item over a newer one. With `state.backend = "redis"` the queue lives in Redis instead
//!   ([`shared`]), shared by every instance; the writer task then hands items to it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

pub use crate::config::ReviewSettings;
use crate::engine::Suggest;
use crate::state::BoxFuture;
use crate::state::durable::Durable;
pub use metrics::ReviewMetrics;

mod local;
pub mod metrics;
pub mod shared;

/// Audit entries kept (the oldest go first).
pub const AUDIT_MAX: usize = 100_000;
/// Enqueued items waiting for the writer; past this, new items are dropped and counted.
const WRITE_BACKLOG: usize = 16_384;
/// Items the writer stores in one transaction at most.
const WRITE_BATCH: usize = 512;
/// How long the writer lets a batch that is not full gather more items before committing it.
/// A commit costs the same for one item as for hundreds (~0.3 ms of CPU in the embedded store),
/// and enqueues arrive one by one (one sampled pass per 1,000 checks is ~80 a second on one
/// core), so without it every item would be a commit of its own.
const WRITE_LINGER: Duration = Duration::from_millis(50);

/// Why an item is in the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The verdict was `review`.
    Review,
    /// A sampled `pass` verdict.
    Sample,
}

/// What was checked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Content {
    /// The fields of a msgSecCheck request that were checked, by name (`content`, `title`,
    /// `nickname`, `signature`).
    Text { fields: Vec<(String, String)> },
    /// A media job: the URL, `image` or `audio`, the analysis as pushed, and the file's hash
    /// (PDQ for an image, SHA-256 for audio) when the file could be read.
    Media {
        url: String,
        media_type: String,
        analysis: serde_json::Value,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        hash: Option<String>,
    },
}

/// The outcome a reviewer confirms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Risky,
    Pass,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Risky => "risky",
            Outcome::Pass => "pass",
        }
    }
}

/// A recorded decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub outcome: Outcome,
    pub reviewer: String,
    pub reason: String,
    pub decided_ms: u64,
    /// What the decision fed back (a keyword or bank entry), if it was asked to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feedback: Option<String>,
}

/// A claim on an item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claim {
    pub reviewer: String,
    pub until_ms: u64,
}

/// One queued verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    pub id: String,
    pub appid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub openid: Option<String>,
    pub scene: u8,
    pub reason: Reason,
    /// The verdict's suggest and label.
    pub suggest: Suggest,
    pub label: u32,
    /// The verdict's label and those of every strategy that did not pass.
    pub labels: Vec<u32>,
    /// The words and strategies that hit (built-in words, custom keywords, bank entries).
    pub hits: Vec<String>,
    pub content: Content,
    pub created_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim: Option<Claim>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
}

/// Where an item stands, as the API filters and shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Pending,
    Claimed,
    Decided,
}

impl State {
    pub fn parse(s: &str) -> Option<State> {
        match s {
            "pending" => Some(State::Pending),
            "claimed" => Some(State::Claimed),
            "decided" => Some(State::Decided),
            _ => None,
        }
    }
}

impl Item {
    pub fn state(&self, now_ms: u64) -> State {
        if self.decision.is_some() {
            State::Decided
        } else if self.claim.as_ref().is_some_and(|c| c.until_ms > now_ms) {
            State::Claimed
        } else {
            State::Pending
        }
    }

    fn kind(&self) -> &'static str {
        match self.content {
            Content::Text { .. } => "text",
            Content::Media { .. } => "media",
        }
    }
}

/// One audit log entry: who decided what, when; no content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: String,
    pub appid: String,
    pub kind: String,
    pub outcome: Outcome,
    pub reviewer: String,
    pub reason: String,
    pub decided_ms: u64,
    /// How long the item waited for its decision.
    pub age_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feedback: Option<String>,
}

/// Filters for [`ReviewQueue::list`].
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub appid: Option<String>,
    pub label: Option<u32>,
    pub state: Option<State>,
    /// Only items not yet decided (pending or claimed).
    pub undecided: bool,
    /// Only items at least this old.
    pub min_age: Option<Duration>,
    /// Only items at most this old.
    pub max_age: Option<Duration>,
    /// Only items whose text, URL, hits, openid or id contain this (compared lowercased; the
    /// API lowercases it).
    pub text: Option<String>,
    /// Only text items (`Some(false)`) or only media items (`Some(true)`).
    pub media: Option<bool>,
    /// Only items queued for this reason.
    pub reason: Option<Reason>,
    /// Matching items skipped before the page (oldest first).
    pub offset: usize,
    pub limit: usize,
}

/// Filters for [`ReviewQueue::audit`], newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub appid: Option<String>,
    pub reviewer: Option<String>,
    pub outcome: Option<Outcome>,
    /// Only entries of items of this kind (`text` or `media`).
    pub kind: Option<String>,
    /// Only decisions made at or after this time (Unix ms).
    pub since_ms: Option<u64>,
    /// Only decisions made before this time (Unix ms).
    pub until_ms: Option<u64>,
    pub offset: usize,
    pub limit: usize,
}

impl AuditFilter {
    /// Whether only the newest `offset + limit` entries can be wanted (no test but the page).
    fn is_page_only(&self) -> bool {
        self.appid.is_none()
            && self.reviewer.is_none()
            && self.outcome.is_none()
            && self.kind.is_none()
            && self.since_ms.is_none()
            && self.until_ms.is_none()
    }

    pub(crate) fn matches(&self, e: &AuditEntry) -> bool {
        self.appid.as_deref().is_none_or(|a| e.appid == a)
            && self.reviewer.as_deref().is_none_or(|r| e.reviewer == r)
            && self.outcome.is_none_or(|o| e.outcome == o)
            && self.kind.as_deref().is_none_or(|k| e.kind == k)
            && self.since_ms.is_none_or(|t| e.decided_ms >= t)
            && self.until_ms.is_none_or(|t| e.decided_ms < t)
    }

    /// How many of the newest entries a store must read to answer: all of them, unless the
    /// filter is a page only.
    pub(crate) fn read_at_most(&self) -> Option<usize> {
        self.is_page_only().then(|| self.offset + self.limit)
    }
}

/// Why a claim or decision was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReviewError {
    #[error("no such review item")]
    NotFound,
    #[error("claimed by {0} until their claim runs out")]
    ClaimedByOther(String),
    #[error("already decided by {0}")]
    Decided(String),
    #[error("claim the item before deciding it")]
    NotClaimed,
    #[error("the review store could not be written: {0}")]
    Store(String),
}

/// What became of an item handed to a store on the request path.
pub(crate) enum Queued {
    /// In the queue; the writer is to store it, and `evicted` (an item it displaced) with it.
    /// `depth` is the app's undecided count now, where the store knows it at once.
    Yes {
        evicted: Option<String>,
        depth: Option<i64>,
    },
    /// The app's queue is full and nothing in it could be displaced.
    Full,
}

/// What a retention sweep removed: how many items, and the undecided counts of the apps that
/// lost some.
pub(crate) type Swept = (usize, Vec<(String, i64)>);

/// Where the items live: this process ([`local`], the embedded store behind it) or Redis,
/// shared by every instance ([`shared`]). Each method is one decision on the store.
pub(crate) trait Store: Send + Sync + 'static {
    /// Takes an item on the request path (no I/O: what is to be stored goes to the writer).
    fn queue(&self, item: Item) -> Queued;

    /// Stores the items the writer was handed.
    fn store<'a>(&'a self, ids: Vec<String>) -> BoxFuture<'a, Result<(), ReviewError>>;

    fn get<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<Item>, ReviewError>>;

    fn undecided<'a>(&'a self, appid: &'a str) -> BoxFuture<'a, Result<i64, ReviewError>>;

    fn list<'a>(
        &'a self,
        filter: &'a Filter,
        now_ms: u64,
    ) -> BoxFuture<'a, Result<(Vec<Item>, usize), ReviewError>>;

    /// Claims the item for `reviewer` until `until` (ms), or with `None` gives up their claim.
    fn claim<'a>(
        &'a self,
        id: &'a str,
        reviewer: &'a str,
        now_ms: u64,
        until: Option<u64>,
    ) -> BoxFuture<'a, Result<Item, ReviewError>>;

    /// Records a decision; returns the item, its audit entry and the app's undecided count.
    fn decide<'a>(
        &'a self,
        id: &'a str,
        decision: Decision,
        now_ms: u64,
    ) -> BoxFuture<'a, Result<(Item, AuditEntry, i64), ReviewError>>;

    /// The entries `filter` selects, newest first, and how many matched in all.
    fn audit<'a>(
        &'a self,
        filter: &'a AuditFilter,
    ) -> BoxFuture<'a, Result<(Vec<AuditEntry>, usize), ReviewError>>;

    /// Deletes the items enqueued before `horizon_ms`; returns how many, and the undecided
    /// counts of the apps that lost some.
    fn sweep<'a>(&'a self, horizon_ms: u64) -> BoxFuture<'a, Result<Swept, ReviewError>>;
}

/// The queue of every app.
pub struct ReviewQueue {
    settings: ReviewSettings,
    store: Box<dyn Store>,
    /// Ids of items to store, for the writer.
    writes: mpsc::Sender<String>,
    /// Taken by [`ReviewQueue::write_batches`].
    pending_writes: Mutex<Option<mpsc::Receiver<String>>>,
    passes: AtomicU64,
    /// Changes handed to the writer, and changes it has stored ([`ReviewQueue::flush`]).
    handed: AtomicU64,
    stored: Arc<AtomicU64>,
    metrics: ReviewMetrics,
}

pub(crate) fn audit_key(e: &AuditEntry) -> String {
    format!("{:016}-{}", e.decided_ms, e.id)
}

impl ReviewQueue {
    /// Opens the queue: in Redis when `shared` is given, else in the embedded store, loading
    /// what it holds (less what is past retention).
    pub fn open(
        settings: ReviewSettings,
        durable: Arc<Durable>,
        metrics: ReviewMetrics,
        now_ms: u64,
        shared: Option<shared::SharedReview>,
    ) -> Result<Arc<ReviewQueue>, String> {
        let store: Box<dyn Store> = match shared {
            Some(redis) => Box::new(shared::SharedStore::new(redis, &settings, metrics.clone())),
            None => Box::new(local::LocalStore::open(
                &settings, durable, &metrics, now_ms,
            )?),
        };
        let (tx, rx) = mpsc::channel(WRITE_BACKLOG);
        Ok(Arc::new(ReviewQueue {
            settings,
            store,
            writes: tx,
            pending_writes: Mutex::new(Some(rx)),
            passes: AtomicU64::new(0),
            handed: AtomicU64::new(0),
            stored: Arc::default(),
            metrics,
        }))
    }

    pub fn settings(&self) -> &ReviewSettings {
        &self.settings
    }

    /// Whether this `pass` verdict is one of the sampled ones.
    pub fn sample_pass(&self) -> bool {
        let every = self.settings.pass_sample_every;
        every > 0 && self.passes.fetch_add(1, Ordering::Relaxed) % every == every - 1
    }

    /// Queues an item (see the module docs for what happens when the app's queue is full).
    /// Returns whether it was queued.
    pub fn enqueue(&self, item: Item) -> bool {
        let kind = item.kind();
        let reason = item.reason;
        let id = item.id.clone();
        let appid = item.appid.clone();
        // Reserve the writer's slot first: an item is in the queue only if it will be stored.
        let Ok(permit) = self.writes.try_reserve() else {
            self.metrics
                .dropped
                .with_label_values(&["store_busy"])
                .inc();
            return false;
        };
        let (evicted, depth) = match self.store.queue(item) {
            Queued::Yes { evicted, depth } => (evicted, depth),
            Queued::Full => {
                self.metrics.dropped.with_label_values(&["full"]).inc();
                return false;
            }
        };
        if let Some(old) = evicted {
            // Handed over before the new item, so stored no later than it.
            match self.writes.try_send(old) {
                Ok(()) => {
                    self.handed.fetch_add(1, Ordering::AcqRel);
                }
                // The stored copy outlives its eviction until the retention sweep.
                Err(e) => tracing::debug!(error = %e, "evicted review item left for the sweep"),
            }
        }
        self.handed.fetch_add(1, Ordering::AcqRel);
        permit.send(id);
        // A store that learns the outcome only when the writer hands the item over counts it
        // then.
        if let Some(depth) = depth {
            self.metrics
                .enqueued
                .with_label_values(&[kind, reason_str(reason)])
                .inc();
            self.metrics.depth.with_label_values(&[&appid]).set(depth);
        }
        true
    }

    /// Stores enqueued items in batches until every sender is gone (call once, on a task).
    pub async fn write_batches(self: Arc<Self>) {
        let taken = self
            .pending_writes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        let Some(mut rx) = taken else { return };
        let mut batch = Vec::with_capacity(WRITE_BATCH);
        while rx.recv_many(&mut batch, WRITE_BATCH).await > 0 {
            if batch.len() < WRITE_BATCH {
                tokio::time::sleep(WRITE_LINGER).await;
                while batch.len() < WRITE_BATCH
                    && let Ok(id) = rx.try_recv()
                {
                    batch.push(id);
                }
            }
            let ids = std::mem::take(&mut batch);
            let count = ids.len() as u64;
            if let Err(e) = self.store.store(ids).await {
                tracing::error!(error = %e, "review items not stored");
            }
            // Counted either way: a failed batch is logged, not retried.
            self.stored.fetch_add(count, Ordering::AcqRel);
        }
    }

    /// Waits (up to `within`) until the writer has stored every item enqueued so far; returns
    /// whether it has. Shutdown calls it so nothing enqueued is lost.
    pub async fn flush(&self, within: Duration) -> bool {
        let target = self.handed.load(Ordering::Acquire);
        let deadline = tokio::time::Instant::now() + within;
        while self.stored.load(Ordering::Acquire) < target {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        true
    }

    /// One item.
    pub async fn get(&self, id: &str) -> Result<Option<Item>, ReviewError> {
        self.store.get(id).await
    }

    /// How many of an app's items are not yet decided.
    pub async fn undecided(&self, appid: &str) -> Result<i64, ReviewError> {
        self.store.undecided(appid).await
    }

    /// Items matching `filter`, oldest first, and how many matched in all.
    pub async fn list(
        &self,
        filter: &Filter,
        now_ms: u64,
    ) -> Result<(Vec<Item>, usize), ReviewError> {
        self.store.list(filter, now_ms).await
    }

    /// Claims an item for `reviewer` (again, to extend their own claim).
    pub async fn claim(&self, id: &str, reviewer: &str, now_ms: u64) -> Result<Item, ReviewError> {
        let until = now_ms + self.settings.claim.as_millis() as u64;
        self.store.claim(id, reviewer, now_ms, Some(until)).await
    }

    /// Gives up `reviewer`'s claim.
    pub async fn release(
        &self,
        id: &str,
        reviewer: &str,
        now_ms: u64,
    ) -> Result<Item, ReviewError> {
        self.store.claim(id, reviewer, now_ms, None).await
    }

    /// Checks that `reviewer` may decide the item now (they hold its claim).
    pub async fn may_decide(
        &self,
        id: &str,
        reviewer: &str,
        now_ms: u64,
    ) -> Result<Item, ReviewError> {
        let item = self.get(id).await?.ok_or(ReviewError::NotFound)?;
        holds(&item, reviewer, now_ms)?;
        Ok(item)
    }

    /// Records a decision (the caller has checked [`ReviewQueue::may_decide`] and applied any
    /// feedback). The item and its audit entry are stored before this returns.
    pub async fn decide(
        &self,
        id: &str,
        decision: Decision,
        now_ms: u64,
    ) -> Result<Item, ReviewError> {
        let (updated, entry, depth) = self.store.decide(id, decision, now_ms).await?;
        self.metrics
            .decisions
            .with_label_values(&[entry.outcome.as_str()])
            .inc();
        self.metrics
            .decision_age
            .observe(entry.age_ms as f64 / 1000.0);
        self.metrics
            .depth
            .with_label_values(&[&updated.appid])
            .set(depth);
        Ok(updated)
    }

    /// The audit entries `filter` selects, newest first, and how many matched in all.
    pub async fn audit(
        &self,
        filter: &AuditFilter,
    ) -> Result<(Vec<AuditEntry>, usize), ReviewError> {
        self.store.audit(filter).await
    }

    /// Deletes the items enqueued before the retention horizon. Returns how many.
    pub async fn sweep(&self, now_ms: u64) -> Result<usize, ReviewError> {
        let horizon = now_ms.saturating_sub(self.settings.retention.as_millis() as u64);
        let (removed, depths) = self.store.sweep(horizon).await?;
        for (appid, depth) in depths {
            self.metrics.depth.with_label_values(&[&appid]).set(depth);
        }
        Ok(removed)
    }
}

/// Whether `reviewer` holds the item's claim now, else why not.
pub(crate) fn holds(item: &Item, reviewer: &str, now_ms: u64) -> Result<(), ReviewError> {
    if let Some(d) = &item.decision {
        return Err(ReviewError::Decided(d.reviewer.clone()));
    }
    match &item.claim {
        Some(c) if c.until_ms > now_ms && c.reviewer == reviewer => Ok(()),
        Some(c) if c.until_ms > now_ms => Err(ReviewError::ClaimedByOther(c.reviewer.clone())),
        _ => Err(ReviewError::NotClaimed),
    }
}

pub(crate) fn audit_entry(item: &Item, decision: &Decision) -> AuditEntry {
    AuditEntry {
        id: item.id.clone(),
        appid: item.appid.clone(),
        kind: item.kind().to_owned(),
        outcome: decision.outcome,
        reviewer: decision.reviewer.clone(),
        reason: decision.reason.clone(),
        decided_ms: decision.decided_ms,
        age_ms: decision.decided_ms.saturating_sub(item.created_ms),
        feedback: decision.feedback.clone(),
    }
}

/// Whether an item passes a filter (every backend applies the same test).
pub(crate) fn matches(filter: &Filter, i: &Item, now_ms: u64) -> bool {
    let age = Duration::from_millis(now_ms.saturating_sub(i.created_ms));
    filter
        .label
        .is_none_or(|l| i.label == l || i.labels.contains(&l))
        && filter.state.is_none_or(|s| i.state(now_ms) == s)
        && (!filter.undecided || i.decision.is_none())
        && filter.min_age.is_none_or(|m| age >= m)
        && filter.max_age.is_none_or(|m| age <= m)
        && filter
            .media
            .is_none_or(|m| m == matches!(i.content, Content::Media { .. }))
        && filter.reason.is_none_or(|r| i.reason == r)
        && filter.text.as_deref().is_none_or(|t| contains_text(i, t))
}

/// Whether `needle` (lowercase) is in the item's checked text, URL, hits, openid or id.
fn contains_text(i: &Item, needle: &str) -> bool {
    let has = |s: &str| s.to_lowercase().contains(needle);
    let content = match &i.content {
        Content::Text { fields } => fields.iter().any(|(_, text)| has(text)),
        Content::Media { url, .. } => has(url),
    };
    content || i.hits.iter().any(|h| has(h)) || i.openid.as_deref().is_some_and(has) || has(&i.id)
}

/// One page of `found` (sorted oldest first) and the count of all of it.
pub(crate) fn page<T>(found: Vec<T>, offset: usize, limit: usize) -> (Vec<T>, usize) {
    let total = found.len();
    (found.into_iter().skip(offset).take(limit).collect(), total)
}

pub(crate) fn reason_str(r: Reason) -> &'static str {
    match r {
        Reason::Review => "review",
        Reason::Sample => "sample",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The newest ten audit entries, of one app or all.
    fn last(appid: Option<&str>) -> AuditFilter {
        AuditFilter {
            appid: appid.map(str::to_owned),
            limit: 10,
            ..AuditFilter::default()
        }
    }

    fn metrics() -> ReviewMetrics {
        ReviewMetrics::new(&prometheus::Registry::new()).unwrap_or_else(|e| panic!("{e}"))
    }

    fn queue(dir: &std::path::Path, settings: ReviewSettings) -> Arc<ReviewQueue> {
        let durable = Arc::new(Durable::open(dir, 1 << 20).unwrap_or_else(|e| panic!("{e}")));
        ReviewQueue::open(settings, durable, metrics(), 1_000_000, None)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// A queue in the Redis on 127.0.0.1:6379 (`.ci/run` starts one), under `prefix`.
    async fn shared_queue(
        dir: &std::path::Path,
        prefix: &str,
        settings: ReviewSettings,
    ) -> Arc<ReviewQueue> {
        let state = crate::state::redis::RedisState::connect(
            "redis://127.0.0.1:6379/0",
            prefix,
            Duration::from_secs(7200),
        )
        .await
        .unwrap_or_else(|e| panic!("Redis on 127.0.0.1:6379: {e}"));
        let durable = Arc::new(Durable::open(dir, 1 << 20).unwrap_or_else(|e| panic!("{e}")));
        let shared = shared::SharedReview::new(state.connection(), state.prefix());
        ReviewQueue::open(settings, durable, metrics(), 1_000_000, Some(shared))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn fresh_prefix(name: &str) -> String {
        crate::state::test_prefix(&format!("review-{name}"))
    }

    fn item(id: &str, reason: Reason, created_ms: u64) -> Item {
        Item {
            id: id.into(),
            appid: "wxapp".into(),
            openid: Some("o1".into()),
            scene: 2,
            reason,
            suggest: if reason == Reason::Review {
                Suggest::Review
            } else {
                Suggest::Pass
            },
            label: 100,
            labels: vec![100],
            hits: vec![],
            content: Content::Text {
                fields: vec![("content".into(), format!("text {id}"))],
            },
            created_ms,
            claim: None,
            decision: None,
        }
    }

    async fn ids(q: &ReviewQueue) -> Vec<String> {
        let filter = Filter {
            limit: 100,
            ..Filter::default()
        };
        q.list(&filter, 1_000_000)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .0
            .into_iter()
            .map(|i| i.id)
            .collect()
    }

    fn decision(reviewer: &str) -> Decision {
        Decision {
            outcome: Outcome::Risky,
            reviewer: reviewer.into(),
            reason: "spam".into(),
            decided_ms: 1_000_500,
            feedback: None,
        }
    }

    /// Queues items through the writer, as the gateway does, and waits until they are stored.
    async fn queued(q: &Arc<ReviewQueue>, items: Vec<Item>) {
        for i in items {
            q.enqueue(i);
        }
        assert!(q.flush(Duration::from_secs(10)).await);
    }

    /// The bound's policy, on either backend.
    async fn eviction_order(q: Arc<ReviewQueue>) {
        let writer = tokio::spawn(Arc::clone(&q).write_batches());
        let r = Reason::Review;
        let s = Reason::Sample;
        queued(
            &q,
            vec![item("r1", r, 1), item("s1", s, 2), item("r2", r, 3)],
        )
        .await;
        // Full: a sample is dropped, nothing displaced.
        queued(&q, vec![item("s2", s, 4)]).await;
        assert_eq!(ids(&q).await, ["r1", "s1", "r2"]);
        // A review displaces the oldest undecided sample.
        queued(&q, vec![item("r3", r, 5)]).await;
        assert_eq!(ids(&q).await, ["r1", "r2", "r3"]);
        // Only pending reviews left: a new review is dropped.
        queued(&q, vec![item("r4", r, 6)]).await;
        assert_eq!(ids(&q).await, ["r1", "r2", "r3"]);
        // A decided item goes first.
        q.claim("r2", "ann", 1_000_000).await.unwrap();
        q.decide("r2", decision("ann"), 1_000_000).await.unwrap();
        queued(&q, vec![item("s3", s, 7)]).await;
        assert_eq!(ids(&q).await, ["r1", "r3", "s3"]);
        let m = q.metrics.dropped.with_label_values(&["full"]).get();
        assert_eq!(m, 2, "s2 and r4");
        writer.abort();
        let _ = writer.await;
    }

    /// Claims, their expiry, decisions and the audit log, on either backend.
    async fn claims(q: Arc<ReviewQueue>) {
        let writer = tokio::spawn(Arc::clone(&q).write_batches());
        queued(&q, vec![item("r1", Reason::Review, 1)]).await;
        let now = 1_000_000;
        assert_eq!(
            q.may_decide("r1", "ann", now).await.unwrap_err(),
            ReviewError::NotClaimed
        );
        q.claim("r1", "ann", now).await.unwrap();
        assert_eq!(
            q.claim("r1", "bob", now + 1).await,
            Err(ReviewError::ClaimedByOther("ann".into()))
        );
        assert_eq!(
            q.decide("r1", decision("bob"), now + 1).await,
            Err(ReviewError::ClaimedByOther("ann".into()))
        );
        assert_eq!(
            q.release("r1", "bob", now + 1).await,
            Err(ReviewError::ClaimedByOther("ann".into()))
        );
        // Ann's claim runs out after claim_secs: Bob may take it.
        let later = now + 900_000;
        q.claim("r1", "bob", later).await.unwrap();
        assert!(q.may_decide("r1", "bob", later).await.is_ok());
        let decided = q.decide("r1", decision("bob"), later).await.unwrap();
        assert_eq!(decided.state(later), State::Decided);
        assert_eq!(decided.decision.as_ref().unwrap().reviewer, "bob");
        assert_eq!(
            q.claim("r1", "ann", later).await,
            Err(ReviewError::Decided("bob".into()))
        );
        assert_eq!(
            q.claim("nope", "ann", later).await,
            Err(ReviewError::NotFound)
        );
        let audit = q.audit(&last(None)).await.unwrap().0;
        assert_eq!(audit.len(), 1);
        assert_eq!(audit[0].reviewer, "bob");
        assert_eq!(audit[0].age_ms, 1_000_500 - 1);
        assert_eq!(q.audit(&last(Some("other-app"))).await.unwrap().0.len(), 0);
        writer.abort();
        let _ = writer.await;
    }

    /// Text search, kinds and reasons combined with paging; the audit log's filters and pages.
    async fn search_and_pages(q: Arc<ReviewQueue>) {
        let writer = tokio::spawn(Arc::clone(&q).write_batches());
        let mut media = item("m1", Reason::Review, 5);
        media.content = Content::Media {
            url: "http://cdn.example/Flyer.PNG".into(),
            media_type: "image".into(),
            analysis: serde_json::Value::Null,
            hash: None,
        };
        let mut hit = item("t3", Reason::Review, 3);
        hit.hits = vec!["蓝莓果酱".into()];
        queued(
            &q,
            vec![
                item("t1", Reason::Review, 1),
                item("t2", Reason::Sample, 2),
                hit,
                item("t4", Reason::Review, 4),
                media,
            ],
        )
        .await;
        let now = 1_000_000;
        let found = async |filter: Filter| -> (Vec<String>, usize) {
            let (items, total) = q
                .list(
                    &Filter {
                        limit: 100,
                        ..filter
                    },
                    now,
                )
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            (items.into_iter().map(|i| i.id).collect(), total)
        };
        let text = |t: &str| Filter {
            text: Some(t.to_lowercase()),
            ..Filter::default()
        };
        // The checked text, a hit, the URL (any case), the openid, the id.
        assert_eq!(found(text("text t2")).await, (vec!["t2".into()], 1));
        assert_eq!(found(text("蓝莓")).await, (vec!["t3".into()], 1));
        assert_eq!(found(text("flyer.png")).await, (vec!["m1".into()], 1));
        assert_eq!(found(text("o1")).await.1, 5);
        assert_eq!(found(text("nowhere")).await.1, 0);
        // Filters combine.
        let reviews_of_text = Filter {
            media: Some(false),
            reason: Some(Reason::Review),
            ..Filter::default()
        };
        assert_eq!(
            found(reviews_of_text.clone()).await,
            (vec!["t1".into(), "t3".into(), "t4".into()], 3)
        );
        assert_eq!(
            found(Filter {
                media: Some(true),
                ..Filter::default()
            })
            .await
            .0,
            ["m1"]
        );
        // Pages: the total counts every match; the page is the slice after `offset`.
        let page = |offset, limit| Filter {
            offset,
            limit,
            ..reviews_of_text.clone()
        };
        let (items, total) = q
            .list(&page(1, 1), now)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((items[0].id.as_str(), items.len(), total), ("t3", 1, 3));
        assert!(
            q.list(&page(3, 10), now)
                .await
                .unwrap_or_else(|e| panic!("{e}"))
                .0
                .is_empty()
        );

        // Audit: three decisions by two reviewers, filtered and paged.
        for (id, who, outcome, at) in [
            ("t1", "ann", Outcome::Risky, 10),
            ("t2", "bob", Outcome::Pass, 20),
            ("m1", "ann", Outcome::Pass, 30),
        ] {
            q.claim(id, who, at).await.unwrap_or_else(|e| panic!("{e}"));
            let d = Decision {
                outcome,
                reviewer: who.into(),
                reason: String::new(),
                decided_ms: at,
                feedback: None,
            };
            q.decide(id, d, at).await.unwrap_or_else(|e| panic!("{e}"));
        }
        let audit = async |f: AuditFilter| -> (Vec<String>, usize) {
            let (entries, total) = q
                .audit(&AuditFilter { limit: 100, ..f })
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            (entries.into_iter().map(|e| e.id).collect(), total)
        };
        let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            audit(AuditFilter::default()).await,
            (ids(&["m1", "t2", "t1"]), 3)
        );
        let ann = AuditFilter {
            reviewer: Some("ann".into()),
            ..AuditFilter::default()
        };
        assert_eq!(audit(ann.clone()).await, (ids(&["m1", "t1"]), 2));
        let ann_pass = AuditFilter {
            outcome: Some(Outcome::Pass),
            ..ann.clone()
        };
        assert_eq!(audit(ann_pass).await, (ids(&["m1"]), 1));
        let media_only = AuditFilter {
            kind: Some("media".into()),
            ..AuditFilter::default()
        };
        assert_eq!(audit(media_only).await.0, ids(&["m1"]));
        let window = AuditFilter {
            since_ms: Some(15),
            until_ms: Some(30),
            ..AuditFilter::default()
        };
        assert_eq!(audit(window).await, (ids(&["t2"]), 1));
        // A page of the whole log, and a page of a filtered one.
        let (entries, total) = q
            .audit(&AuditFilter {
                offset: 1,
                limit: 1,
                ..AuditFilter::default()
            })
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((entries[0].id.as_str(), total), ("t2", 3));
        let (entries, total) = q
            .audit(&AuditFilter {
                offset: 1,
                limit: 5,
                ..ann
            })
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((entries[0].id.as_str(), entries.len(), total), ("t1", 1, 2));
        writer.abort();
        let _ = writer.await;
    }

    #[tokio::test]
    async fn search_filters_and_pages_of_items_and_audit() {
        let dir = tempdir();
        search_and_pages(queue(dir.path(), ReviewSettings::default())).await;
    }

    #[tokio::test]
    async fn in_redis_search_filters_and_pages_of_items_and_audit() {
        let dir = tempdir();
        let q = shared_queue(
            dir.path(),
            &fresh_prefix("search"),
            ReviewSettings::default(),
        )
        .await;
        search_and_pages(q).await;
    }

    fn bounded() -> ReviewSettings {
        ReviewSettings {
            max_items_per_app: 3,
            ..ReviewSettings::default()
        }
    }

    #[tokio::test]
    async fn a_full_queue_evicts_decided_then_samples_and_never_pending_reviews() {
        let dir = tempdir();
        eviction_order(queue(dir.path(), bounded())).await;
    }

    #[tokio::test]
    async fn in_redis_a_full_queue_evicts_the_same_way() {
        let dir = tempdir();
        eviction_order(shared_queue(dir.path(), &fresh_prefix("bound"), bounded()).await).await;
    }

    /// A full queue judges what it may evict from counts kept as items come, go and are decided
    /// (it looks through the items only when the counts say a victim is there): the counts must
    /// hold across a reopen, an eviction, the retention sweep and a decision.
    #[tokio::test]
    async fn a_full_queue_counts_what_it_may_evict_across_reopen_sweep_and_decisions() {
        let dir = tempdir();
        let (r, s) = (Reason::Review, Reason::Sample);
        {
            let q = queue(dir.path(), bounded());
            let writer = tokio::spawn(Arc::clone(&q).write_batches());
            queued(
                &q,
                vec![
                    item("r0", r, 1),
                    item("s1", s, 500_000),
                    item("s2", s, 999_001),
                ],
            )
            .await;
            writer.abort();
            let _ = writer.await;
        }
        let q = queue(dir.path(), bounded());
        let writer = tokio::spawn(Arc::clone(&q).write_batches());
        // Counted again from the store: nothing decided, so a sample is dropped...
        queued(&q, vec![item("s3", s, 999_002)]).await;
        assert_eq!(ids(&q).await, ["r0", "s1", "s2"]);
        // ...and a review displaces the oldest sample.
        queued(&q, vec![item("r2", r, 999_003)]).await;
        assert_eq!(ids(&q).await, ["r0", "s2", "r2"]);
        // The sweep takes the week-old review; the queue fills again.
        let week = 7 * 86_400_000;
        assert_eq!(q.sweep(1 + week + 1).await.unwrap(), 1);
        queued(&q, vec![item("r3", r, 999_004)]).await;
        assert_eq!(ids(&q).await, ["s2", "r2", "r3"]);
        // Once r2 is decided, a new sample evicts it rather than being dropped.
        q.claim("r2", "ann", 1_000_000).await.unwrap();
        q.decide("r2", decision("ann"), 1_000_000).await.unwrap();
        queued(&q, vec![item("s4", s, 999_005)]).await;
        assert_eq!(ids(&q).await, ["s2", "r3", "s4"]);
        // Nothing decided again: a review displaces the oldest of the two samples.
        queued(&q, vec![item("r4", r, 999_006)]).await;
        assert_eq!(ids(&q).await, ["r3", "s4", "r4"]);
        let dropped = q.metrics.dropped.with_label_values(&["full"]).get();
        assert_eq!(dropped, 1, "s3 alone");
        writer.abort();
        let _ = writer.await;
    }

    #[tokio::test]
    async fn claims_exclude_other_reviewers_until_they_run_out() {
        let dir = tempdir();
        claims(queue(dir.path(), ReviewSettings::default())).await;
    }

    #[tokio::test]
    async fn in_redis_claims_exclude_other_reviewers_until_they_run_out() {
        let dir = tempdir();
        claims(
            shared_queue(
                dir.path(),
                &fresh_prefix("claims"),
                ReviewSettings::default(),
            )
            .await,
        )
        .await;
    }

    #[tokio::test]
    async fn in_redis_two_instances_share_one_queue_and_one_claim() {
        let prefix = fresh_prefix("two");
        let (da, db) = (tempdir(), tempdir());
        let a = shared_queue(da.path(), &prefix, ReviewSettings::default()).await;
        let b = shared_queue(db.path(), &prefix, ReviewSettings::default()).await;
        let writer = tokio::spawn(Arc::clone(&a).write_batches());
        queued(&a, vec![item("x1", Reason::Review, 999_000)]).await;
        assert_eq!(ids(&b).await, ["x1"], "queued on one, listed on the other");
        // Both try to claim at once: exactly one wins.
        let (ca, cb) = tokio::join!(
            a.claim("x1", "ann", 1_000_000),
            b.claim("x1", "bob", 1_000_000)
        );
        assert!(ca.is_ok() != cb.is_ok(), "{ca:?} {cb:?}");
        let winner = if ca.is_ok() { "ann" } else { "bob" };
        let via = if ca.is_ok() { &b } else { &a };
        via.decide("x1", decision(winner), 1_000_000).await.unwrap();
        let item = a.get("x1").await.unwrap().unwrap();
        assert_eq!(item.decision.unwrap().reviewer, winner);
        assert_eq!(b.audit(&last(Some("wxapp"))).await.unwrap().0.len(), 1);
        // Retention: past it, the sweep forgets the item (Redis expires its content itself).
        let week = 7 * 86_400_000;
        assert_eq!(b.sweep(999_000 + week + 1).await.unwrap(), 1);
        assert!(ids(&a).await.is_empty());
        writer.abort();
        let _ = writer.await;
    }

    #[tokio::test]
    async fn items_and_audit_survive_a_reopen_and_retention_deletes_content() {
        let dir = tempdir();
        {
            let q = queue(dir.path(), ReviewSettings::default());
            let writer = tokio::spawn(Arc::clone(&q).write_batches());
            q.enqueue(item("old", Reason::Review, 1));
            q.enqueue(item("new", Reason::Review, 999_000));
            q.claim("new", "ann", 1_000_000).await.unwrap();
            q.decide("new", decision("ann"), 1_000_000).await.unwrap();
            assert!(q.flush(Duration::from_secs(10)).await);
            writer.abort();
            let _ = writer.await; // drops the writer's handle on the store
        }
        let q = queue(dir.path(), ReviewSettings::default());
        assert_eq!(ids(&q).await, ["old", "new"]);
        let new = q.get("new").await.unwrap().unwrap();
        assert_eq!(new.decision.unwrap().reviewer, "ann");
        assert_eq!(q.audit(&last(Some("wxapp"))).await.unwrap().0.len(), 1);
        // Seven days after "old" was enqueued it is gone, here and in the store.
        let week = 7 * 86_400_000;
        assert_eq!(q.sweep(1 + week + 1).await.unwrap(), 1);
        assert_eq!(ids(&q).await, ["new"]);
        drop(q);
        let q = queue(dir.path(), ReviewSettings::default());
        assert_eq!(ids(&q).await, ["new"]);
        assert_eq!(
            q.audit(&last(None)).await.unwrap().0.len(),
            1,
            "the audit log keeps the decision"
        );
    }

    #[tokio::test]
    async fn items_enqueued_one_by_one_share_commits() {
        let dir = tempdir();
        let durable =
            Arc::new(Durable::open(dir.path(), 1 << 20).unwrap_or_else(|e| panic!("{e}")));
        let q = ReviewQueue::open(
            ReviewSettings::default(),
            Arc::clone(&durable),
            metrics(),
            1_000_000,
            None,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let writer = tokio::spawn(Arc::clone(&q).write_batches());
        let before = durable.commits();
        // A trickle, as sampled passes arrive: one item a millisecond or so.
        for n in 0..40 {
            q.enqueue(item(&format!("t{n}"), Reason::Sample, 1_000 + n));
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert!(q.flush(Duration::from_secs(10)).await);
        let commits = durable.commits() - before;
        assert!(
            (1..=8).contains(&commits),
            "40 items over ~40 ms took {commits} commits"
        );
        assert_eq!(ids(&q).await.len(), 40);
        drop(q);
        drop(durable);
        writer.abort();
        let _ = writer.await;
        // And they are in the store, not only in memory.
        let q = queue(dir.path(), ReviewSettings::default());
        assert_eq!(ids(&q).await.len(), 40);
    }

    #[test]
    fn one_pass_in_every_n_is_sampled() {
        let dir = tempdir();
        let q = queue(
            dir.path(),
            ReviewSettings {
                pass_sample_every: 4,
                ..ReviewSettings::default()
            },
        );
        let picked: Vec<bool> = (0..12).map(|_| q.sample_pass()).collect();
        assert_eq!(picked.iter().filter(|p| **p).count(), 3);
        assert!(picked[3] && picked[7] && picked[11]);
        let off_dir = tempdir();
        let off = queue(
            off_dir.path(),
            ReviewSettings {
                pass_sample_every: 0,
                ..ReviewSettings::default()
            },
        );
        assert!(!(0..100).any(|_| off.sample_pass()));
    }

    /// A fresh directory under the target dir, removed on drop.
    struct TempDir(std::path::PathBuf);
    impl TempDir {
        fn path(&self) -> &std::path::Path {
            &self.0
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    fn tempdir() -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "modgate-review-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        TempDir(dir)
    }
}
