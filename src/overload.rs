//! Load shedding on the API listener, driven by how late the request runtime runs its tasks.
//!
//! Every request on a saturated runtime waits in its run queue behind the others; the wait is
//! what clients see as latency growing without bound. A sampler task asks to wake every
//! [`SAMPLE_EVERY`] and measures how late it actually runs: that lateness is the queueing delay
//! a newly arrived request meets. A controller turns it into a share of requests to refuse at
//! once: while the delay is above the target (`server.overload_delay_ms`) the share grows by
//! [`STEP_UP`] per sample, while it is below it shrinks by [`STEP_DOWN`]. Refused requests get
//! errcode -1 (which SDKs back off on and retry) with `Retry-After: 1`, before their body is
//! read or any work is done, so they cost a fraction of a check; the share settles where the
//! delay sits at the target: the admitted requests keep a bounded latency and the gateway keeps
//! answering at its capacity however much more is offered. Token requests are never refused:
//! they are cheap, and a client without a token only retries harder.
//!
//! The controller is deterministic (a fixed sequence of samples gives a fixed share) and which
//! requests are refused is spread evenly by a counter, not drawn at random.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

/// How often the sampler asks to wake.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(10);

/// Share added per sample above the target: from nothing to everything in half a second.
pub const STEP_UP: f64 = 0.02;

/// Share removed per sample at or below the target: back to nothing within a second.
pub const STEP_DOWN: f64 = 0.01;

/// The share of requests to refuse, as a function of the samples seen so far.
#[derive(Debug, Clone)]
pub struct Controller {
    target: Duration,
    share: f64,
}

impl Controller {
    pub fn new(target: Duration) -> Self {
        Controller { target, share: 0.0 }
    }

    /// Takes one measured delay; returns the new share (0 to 1).
    pub fn sample(&mut self, delay: Duration) -> f64 {
        self.share = if delay > self.target {
            (self.share + STEP_UP).min(1.0)
        } else {
            (self.share - STEP_DOWN).max(0.0)
        };
        self.share
    }
}

/// Shares are kept in millionths.
const SCALE: f64 = 1_000_000.0;

/// Shared between the sampler and the request path.
pub struct Overload {
    /// `None`: shedding is off (`server.overload_delay_ms = 0`).
    target: Option<Duration>,
    /// The share refused now, in millionths.
    share: AtomicU32,
    /// Requests seen, to spread refusals evenly.
    seen: AtomicU64,
    delay_gauge: prometheus::Gauge,
    share_gauge: prometheus::Gauge,
}

impl Overload {
    pub fn new(target: Option<Duration>, metrics: &crate::metrics::Metrics) -> Arc<Self> {
        Arc::new(Overload {
            target,
            share: AtomicU32::new(0),
            seen: AtomicU64::new(0),
            delay_gauge: metrics.scheduling_delay(),
            share_gauge: metrics.shed_share(),
        })
    }

    /// Whether to refuse this request. One relaxed load when nothing is shed.
    pub fn shed(&self) -> bool {
        let share = self.share.load(Ordering::Relaxed);
        if share == 0 {
            return false;
        }
        // Refuse request n when the running total of `share` crosses a whole million: exactly
        // `share` in every million, evenly spaced.
        let n = self.seen.fetch_add(1, Ordering::Relaxed);
        let before = n.wrapping_mul(u64::from(share)) / SCALE as u64;
        let after = (n + 1).wrapping_mul(u64::from(share)) / SCALE as u64;
        after > before
    }

    /// Samples the runtime it runs on until `shutdown`; does nothing when shedding is off.
    pub async fn watch(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let Some(target) = self.target else {
            return;
        };
        let mut controller = Controller::new(target);
        let mut was_shedding = false;
        loop {
            let due = Instant::now() + SAMPLE_EVERY;
            tokio::select! {
                () = crate::server::shutdown_requested(&mut shutdown) => break,
                () = tokio::time::sleep_until(due) => {}
            }
            let delay = Instant::now().saturating_duration_since(due);
            let share = controller.sample(delay);
            self.share
                .store((share * SCALE).round() as u32, Ordering::Relaxed);
            self.delay_gauge.set(delay.as_secs_f64());
            self.share_gauge.set(share);
            let shedding = share > 0.0;
            if shedding != was_shedding {
                if shedding {
                    tracing::warn!(
                        delay_ms = delay.as_millis() as u64,
                        target_ms = target.as_millis() as u64,
                        "overloaded: refusing a share of requests with errcode -1"
                    );
                } else {
                    tracing::info!("load back under the target: no longer refusing requests");
                }
                was_shedding = shedding;
            }
        }
        self.share.store(0, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn the_share_climbs_while_late_and_falls_back_when_not() {
        let mut c = Controller::new(100 * MS);
        assert_eq!(c.sample(100 * MS), 0.0, "at the target is not over it");
        let mut share = 0.0;
        for _ in 0..10 {
            share = c.sample(150 * MS);
        }
        assert!((share - 0.2).abs() < 1e-9, "{share}");
        for _ in 0..100 {
            share = c.sample(500 * MS);
        }
        assert_eq!(share, 1.0);
        for _ in 0..50 {
            share = c.sample(5 * MS);
        }
        assert!((share - 0.5).abs() < 1e-9, "{share}");
        for _ in 0..60 {
            share = c.sample(Duration::ZERO);
        }
        assert_eq!(share, 0.0);
    }

    #[test]
    fn refusals_are_exactly_the_share_and_evenly_spread() {
        let metrics = crate::metrics::Metrics::new().unwrap_or_else(|e| panic!("{e}"));
        let o = Overload::new(Some(100 * MS), &metrics);
        assert!(
            !(0..1000).any(|_| o.shed()),
            "nothing is refused at share 0"
        );
        o.share.store(250_000, Ordering::Relaxed);
        let refused: Vec<bool> = (0..1000).map(|_| o.shed()).collect();
        assert_eq!(refused.iter().filter(|r| **r).count(), 250);
        // Evenly: one in every four.
        for window in refused.chunks(4) {
            assert_eq!(window.iter().filter(|r| **r).count(), 1, "{window:?}");
        }
        o.share.store(1_000_000, Ordering::Relaxed);
        assert!((0..1000).all(|_| o.shed()));
    }
}
