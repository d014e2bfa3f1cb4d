//! Load shedding on the API listener, driven by how late the request runtime runs its tasks.
//!
//! Every request on a saturated runtime waits in its run queue behind the others; the wait is
//! what clients see as latency growing without bound. Every [`SAMPLE_EVERY`] a probe task is
//! handed to the runtime from a thread outside it and measures how long it waited to run: the
//! queueing delay a newly arrived request meets ([`Overload::watch`]). A controller turns it into a share of requests to refuse at
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

/// How often the sampler asks to wake.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(10);

/// Share added per sample above the target: from nothing to everything in a fifth of a second.
pub const STEP_UP: f64 = 0.05;

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

    /// Samples the runtime it is called on until `shutdown`; does nothing when shedding is off.
    ///
    /// A thread of its own hands the runtime a probe task every [`SAMPLE_EVERY`]; each probe
    /// measures how long it waited to run. Tasks handed in from outside the runtime join the
    /// back of its shared queue, behind every request task waiting there, so a probe waits as
    /// long as a newly arrived request does. (A timer inside the runtime would not: tokio runs
    /// the task a timer wakes next, ahead of the queue, and would see almost no delay.)
    pub async fn watch(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let Some(target) = self.target else {
            return;
        };
        let probes = Arc::new(Probes {
            controller: std::sync::Mutex::new((Controller::new(target), false)),
            target,
        });
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let runtime = tokio::runtime::Handle::current();
        let spawned = std::thread::Builder::new()
            .name("modgate-overload".into())
            .spawn({
                let (me, stop) = (Arc::clone(&self), Arc::clone(&stop));
                move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(SAMPLE_EVERY);
                        let (me, probes) = (Arc::clone(&me), Arc::clone(&probes));
                        let handed = std::time::Instant::now();
                        runtime.spawn(async move { probes.sample(&me, handed.elapsed()) });
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "the overload sampler could not start; nothing will be shed");
            return;
        }
        crate::server::shutdown_requested(&mut shutdown).await;
        stop.store(true, Ordering::Relaxed);
        self.share.store(0, Ordering::Relaxed);
        self.share_gauge.set(0.0);
    }
}

/// The controller, fed by the probes in the order they run.
struct Probes {
    /// The controller, and whether the last sample was shedding.
    controller: std::sync::Mutex<(Controller, bool)>,
    target: Duration,
}

impl Probes {
    fn sample(&self, overload: &Overload, delay: Duration) {
        let mut guard = self
            .controller
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (controller, was_shedding) = &mut *guard;
        let share = controller.sample(delay);
        overload
            .share
            .store((share * SCALE).round() as u32, Ordering::Relaxed);
        overload.delay_gauge.set(delay.as_secs_f64());
        overload.share_gauge.set(share);
        let shedding = share > 0.0;
        if shedding != *was_shedding {
            if shedding {
                tracing::warn!(
                    delay_ms = delay.as_millis() as u64,
                    target_ms = self.target.as_millis() as u64,
                    "overloaded: refusing a share of requests with errcode -1"
                );
            } else {
                tracing::info!("load back under the target: no longer refusing requests");
            }
            *was_shedding = shedding;
        }
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
        for _ in 0..4 {
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
