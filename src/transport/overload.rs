//! Load shedding on the API listener, driven by how long requests wait in the request runtime.
//!
//! Every request on a saturated runtime waits in its run queue behind the others; the wait is
//! what clients see as latency growing without bound. Every [`SAMPLE_EVERY`] a probe task is
//! handed to the runtime from a thread outside it and measures how long it waited to run: the
//! queueing delay a newly arrived request meets ([`Overload::watch`]). A controller turns it
//! into a share of requests to refuse at once: while the delay is above the target
//! (`server.overload_delay_ms`) the share grows by [`STEP_UP`] per sample; while it is below
//! half the target it shrinks by as much, and between the two by [`STEP_DOWN`]. Refused
//! requests get errcode -1 (which SDKs back off on and retry) with `Retry-After: 1`, before
//! their body is read or any work is done, so they cost a fraction of a check; the share
//! settles where the delay sits near the target, which keeps admitted requests' queueing near it
//! once the controller has acted. A request that has itself waited past the target to be read
//! (its connection's socket was seen readable that long ago, [`crate::transport::server::Waited`]) is
//! refused whatever the share: requests queued before the controller has acted are not served
//! late, and the wait of every admitted request is bounded by the target.
//! A refusal is not free (the request still arrives and is parsed), so against many clients
//! that never back off most requests are refused and the admitted rate falls well below
//! capacity (BENCHMARKS.md, "Overload"). Token requests are never refused: they are cheap, and
//! a client without a token only retries harder.
//!
//! The controller is deterministic (a fixed sequence of samples gives a fixed share) and which
//! requests are refused is spread evenly by a counter, not drawn at random.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::watch;

use super::server::Waited;

/// How often a probe is handed to the runtime (and the controller takes a sample).
pub const SAMPLE_EVERY: Duration = Duration::from_millis(10);

/// Share added per sample above the target: from nothing to everything in a fifth of a second.
pub const STEP_UP: f64 = 0.05;

/// Share removed per sample between half the target and the target (below half of it,
/// [`STEP_UP`] is removed): the share eases off while the delay is near the target.
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
        } else if delay < self.target / 2 {
            (self.share - STEP_UP).max(0.0)
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
    /// `delay_gauge` shows the runtime's queueing delay in seconds, `share_gauge` the share of
    /// requests refused now.
    pub fn new(
        target: Option<Duration>,
        delay_gauge: prometheus::Gauge,
        share_gauge: prometheus::Gauge,
    ) -> Arc<Self> {
        Arc::new(Overload {
            target,
            share: AtomicU32::new(0),
            seen: AtomicU64::new(0),
            delay_gauge,
            share_gauge,
        })
    }

    /// Whether to refuse a request that [`Waited`] this long to be read: when it waited longer
    /// than the target, or falls in the share refused now. A comparison and one relaxed load
    /// when nothing is shed.
    ///
    /// A request past the target is already late: served, it would answer late and hold up
    /// every request queued behind it, while a refusal costs a fraction of a check. This bounds
    /// the wait of every admitted request by the target (plus a tick of the coarse clock),
    /// whatever the controller's share, which acts on the runtime's queue as a whole and only
    /// after it has seen the delay.
    pub fn shed(&self, waited: Waited) -> bool {
        if self.target.is_some_and(|target| waited.0 > target) {
            return true;
        }
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
    /// notes how long it waited to run. Tasks handed in from outside the runtime join the back
    /// of its shared queue, behind every request task waiting there, so a probe waits as long
    /// as a newly arrived request does. (A timer inside the runtime would not: tokio runs the
    /// task a timer wakes next, ahead of the queue, and sees almost no delay.) The thread also
    /// drives the controller, every tick, with the larger of the last probe's wait and the age
    /// of the oldest probe still waiting: a queue that has just formed is seen as it forms, not
    /// only once a probe has waited through it.
    pub async fn watch(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let Some(target) = self.target else {
            return;
        };
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let runtime = tokio::runtime::Handle::current();
        let spawned = std::thread::Builder::new()
            .name("modgate-overload".into())
            .spawn({
                let (me, stop) = (Arc::clone(&self), Arc::clone(&stop));
                move || me.sample_until(&runtime, target, &stop)
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "the overload sampler could not start; nothing will be shed");
            return;
        }
        super::shutdown_requested(&mut shutdown).await;
        stop.store(true, Ordering::Relaxed);
        self.share.store(0, Ordering::Relaxed);
        self.share_gauge.set(0.0);
    }

    /// The sampler thread's loop.
    fn sample_until(
        &self,
        runtime: &tokio::runtime::Handle,
        target: Duration,
        stop: &std::sync::atomic::AtomicBool,
    ) {
        let ran = Arc::new(ProbesRan::default());
        let started = std::time::Instant::now();
        let micros = move |at: std::time::Instant| at.duration_since(started).as_micros() as u64;
        // Probes handed in and not yet seen to run: (sequence number, when handed).
        let mut waiting = std::collections::VecDeque::new();
        let mut controller = Controller::new(target);
        let mut episode = Episodes::default();
        let mut seq = 0u64;
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(SAMPLE_EVERY);
            let now = std::time::Instant::now();
            seq += 1;
            waiting.push_back((seq, now));
            let probe = Arc::clone(&ran);
            let handed = micros(now);
            runtime.spawn(async move {
                let waited = micros(std::time::Instant::now()).saturating_sub(handed);
                probe.last_wait_us.store(waited, Ordering::Relaxed);
                probe.last_seq.fetch_max(seq, Ordering::Relaxed);
            });
            let done = ran.last_seq.load(Ordering::Relaxed);
            while waiting.front().is_some_and(|(n, _)| *n <= done) {
                waiting.pop_front();
            }
            let oldest = waiting
                .iter()
                .find(|(n, _)| *n < seq)
                .map_or(Duration::ZERO, |(_, at)| now.duration_since(*at));
            let last = Duration::from_micros(ran.last_wait_us.load(Ordering::Relaxed));
            let delay = oldest.max(last);
            let share = controller.sample(delay);
            self.share
                .store((share * SCALE).round() as u32, Ordering::Relaxed);
            self.delay_gauge.set(delay.as_secs_f64());
            self.share_gauge.set(share);
            match episode.sample(share > 0.0) {
                Some(Episode::Started) => tracing::warn!(
                    delay_ms = delay.as_millis() as u64,
                    target_ms = target.as_millis() as u64,
                    "overloaded: refusing a share of requests with errcode -1"
                ),
                Some(Episode::Ended) => {
                    tracing::info!("load back under the target: no longer refusing requests");
                }
                None => {}
            }
        }
    }
}

/// Samples without shedding after which an episode of shedding is over (a second): under
/// sustained overload the share touches zero and rises again many times a second, and that is
/// one episode to an operator, logged once as it starts and once as it ends.
pub const QUIET_SAMPLES: u32 = 100;

/// A change in the shedding episode, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Episode {
    Started,
    Ended,
}

/// Follows shedding from sample to sample and tells when an episode starts and ends.
#[derive(Debug, Default)]
pub struct Episodes {
    /// Within an episode (shedding, or not yet quiet for [`QUIET_SAMPLES`]).
    within: bool,
    /// Samples without shedding since the last one with it.
    quiet: u32,
}

impl Episodes {
    pub fn sample(&mut self, shedding: bool) -> Option<Episode> {
        if shedding {
            self.quiet = 0;
            if !self.within {
                self.within = true;
                return Some(Episode::Started);
            }
        } else if self.within {
            self.quiet += 1;
            if self.quiet >= QUIET_SAMPLES {
                self.within = false;
                return Some(Episode::Ended);
            }
        }
        None
    }
}

/// What the probes report back to the sampler thread.
#[derive(Default)]
struct ProbesRan {
    /// The highest sequence number of a probe that has run.
    last_seq: AtomicU64,
    /// How long the probe that ran last waited, in µs.
    last_wait_us: AtomicU64,
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn gauge() -> prometheus::Gauge {
        prometheus::Gauge::new("g", "a gauge no registry holds").unwrap_or_else(|e| panic!("{e}"))
    }

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
        // Near the target (between half of it and it) the share eases off slowly...
        for _ in 0..50 {
            share = c.sample(60 * MS);
        }
        assert!((share - 0.5).abs() < 1e-9, "{share}");
        // ... and well below it, as fast as it rose.
        for _ in 0..6 {
            share = c.sample(5 * MS);
        }
        assert!((share - 0.2).abs() < 1e-9, "{share}");
        for _ in 0..4 {
            share = c.sample(Duration::ZERO);
        }
        assert_eq!(share, 0.0);
    }

    #[test]
    fn refusals_are_exactly_the_share_and_evenly_spread() {
        let o = Overload::new(Some(100 * MS), gauge(), gauge());
        assert!(
            !(0..1000).any(|_| o.shed(Waited::default())),
            "nothing is refused at share 0"
        );
        o.share.store(250_000, Ordering::Relaxed);
        let refused: Vec<bool> = (0..1000).map(|_| o.shed(Waited::default())).collect();
        assert_eq!(refused.iter().filter(|r| **r).count(), 250);
        // Evenly: one in every four.
        for window in refused.chunks(4) {
            assert_eq!(window.iter().filter(|r| **r).count(), 1, "{window:?}");
        }
        o.share.store(1_000_000, Ordering::Relaxed);
        assert!((0..1000).all(|_| o.shed(Waited::default())));
    }

    #[test]
    fn shedding_that_flickers_is_one_episode_logged_once_each_way() {
        let mut e = Episodes::default();
        let mut changes = Vec::new();
        // Two seconds of a share that touches zero for 30 samples in every 60, then quiet.
        for i in 0..200 {
            changes.extend(e.sample(i % 60 < 30));
        }
        for _ in 0..QUIET_SAMPLES - 1 {
            changes.extend(e.sample(false));
        }
        assert_eq!(changes, [Episode::Started], "still within the episode");
        changes.extend(e.sample(false));
        assert_eq!(changes, [Episode::Started, Episode::Ended]);
        // A later overload is a new episode.
        assert_eq!(e.sample(true), Some(Episode::Started));
        assert_eq!(e.sample(true), None);
    }

    #[test]
    fn a_request_that_waited_past_the_target_is_refused_whatever_the_share() {
        let o = Overload::new(Some(100 * MS), gauge(), gauge());
        assert!(!o.shed(Waited(100 * MS)), "at the target is not past it");
        assert!(o.shed(Waited(101 * MS)));
        // Late refusals do not count against the share's spacing.
        o.share.store(500_000, Ordering::Relaxed);
        assert!(o.shed(Waited(Duration::from_secs(3))));
        let refused: Vec<bool> = (0..4).map(|_| o.shed(Waited(MS))).collect();
        assert_eq!(refused, [false, true, false, true]);
        // Shedding off: nothing is refused, however late.
        let off = Overload::new(None, gauge(), gauge());
        assert!(!off.shed(Waited(Duration::from_secs(60))));
    }
}
