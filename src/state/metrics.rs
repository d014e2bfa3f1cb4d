//! The shared state backend's health metrics, and the embedded stores' write timings.

use std::sync::Arc;
use std::time::Duration;

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

/// A store write slower than this in all is counted and logged.
pub const SLOW_WRITE: Duration = Duration::from_millis(50);

/// The embedded stores' writes: each step's time, and the slow writes.
#[derive(Clone, Debug)]
pub struct StoreMetrics {
    /// Seconds per step of a write, by store and step: `wait` (for the store's one write
    /// transaction at a time), `write` (the transaction's inserts and deletes), `commit` (the
    /// commit, its fsync included).
    pub seconds: HistogramVec,
    /// Writes over [`SLOW_WRITE`] in all, by store and the step that took longest.
    pub slow: IntCounterVec,
}

impl StoreMetrics {
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let seconds = HistogramVec::new(
            HistogramOpts::new(
                "modgate_store_write_seconds",
                "Embedded store writes: seconds per step (wait, write, commit), by store",
            )
            .buckets(vec![
                0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5,
            ]),
            &["store", "step"],
        )?;
        let slow = IntCounterVec::new(
            Opts::new(
                "modgate_store_slow_commits_total",
                "Embedded store writes that took over 50 ms, by store and their longest step",
            ),
            &["store", "step"],
        )?;
        registry.register(Box::new(seconds.clone()))?;
        registry.register(Box::new(slow.clone()))?;
        Ok(StoreMetrics { seconds, slow })
    }
}

/// The shared state backend's health, and what the gateway does while it cannot be reached.
#[derive(Clone)]
pub struct StateMetrics {
    /// 1 while the shared backend answers (always 1 for the in-process backend).
    pub up: prometheus::IntGauge,
    /// Decisions made without the shared backend, by operation (`admission`, `token_epochs`).
    pub fallbacks: IntCounterVec,
    /// Calls decided by each admission script run in Redis (one run per app and API in a
    /// batch): how much of Redis's per-run cost each call shares.
    pub admission_run_calls: prometheus::Histogram,
    /// Calls admitted from this instance's leases, without a run in Redis.
    pub admission_leased_calls: prometheus::IntCounter,
    /// The embedded stores' write timings.
    pub store: StoreMetrics,
    /// When the last "degraded" log line was written (ms since the Unix epoch): at most one
    /// line per [`StateMetrics::LOG_EVERY_MS`].
    last_log_ms: Arc<std::sync::atomic::AtomicU64>,
}

impl StateMetrics {
    /// At most one "degraded" log line per this many milliseconds.
    pub const LOG_EVERY_MS: u64 = 10_000;

    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let up = prometheus::IntGauge::new(
            "modgate_state_backend_up",
            "1 while the state backend answers",
        )?;
        let fallbacks = IntCounterVec::new(
            Opts::new(
                "modgate_state_fallbacks_total",
                "Decisions made without the shared state backend, by operation",
            ),
            &["op"],
        )?;
        let admission_run_calls = prometheus::Histogram::with_opts(
            HistogramOpts::new(
                "modgate_state_admission_run_calls",
                "Calls decided by each admission script run in Redis (one run per app and API in a batch)",
            )
            .buckets(vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0]),
        )?;
        let admission_leased_calls = prometheus::IntCounter::new(
            "modgate_state_admission_leased_calls_total",
            "Calls admitted from this instance's leases of the rate limit and quota, without a run in Redis",
        )?;
        registry.register(Box::new(up.clone()))?;
        registry.register(Box::new(admission_leased_calls.clone()))?;
        registry.register(Box::new(fallbacks.clone()))?;
        registry.register(Box::new(admission_run_calls.clone()))?;
        up.set(1);
        Ok(StateMetrics {
            up,
            fallbacks,
            admission_run_calls,
            admission_leased_calls,
            store: StoreMetrics::new(registry)?,
            last_log_ms: Arc::default(),
        })
    }

    /// Counts a decision made without the backend, and says so in the log at most once per
    /// [`Self::LOG_EVERY_MS`].
    pub fn fell_back(&self, op: &'static str, error: &dyn std::fmt::Display) {
        self.fallbacks.with_label_values(&[op]).inc();
        self.unreachable(op, error);
    }

    /// The backend did not answer; says so in the log at most once per
    /// [`Self::LOG_EVERY_MS`].
    pub fn unreachable(&self, op: &'static str, error: &dyn std::fmt::Display) {
        self.up.set(0);
        let now = crate::clock::wall_ms();
        let last = self.last_log_ms.load(std::sync::atomic::Ordering::Relaxed);
        if now.saturating_sub(last) >= Self::LOG_EVERY_MS
            && self
                .last_log_ms
                .compare_exchange(
                    last,
                    now,
                    std::sync::atomic::Ordering::Relaxed,
                    std::sync::atomic::Ordering::Relaxed,
                )
                .is_ok()
        {
            tracing::warn!(
                op,
                error = %error,
                "state backend unreachable: text checks are served under this instance's own \
                 rate limiter, without daily quotas or visit checks; media submissions are refused"
            );
        }
    }

    /// The backend answered.
    pub fn answered(&self) {
        if self.up.get() == 0 {
            self.up.set(1);
            tracing::info!("state backend reachable again");
        }
    }
}
