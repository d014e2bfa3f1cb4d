//! Wall-clock time, injected.
//!
//! Everything that depends on the time of day (token expiry, rids, later quotas and visits) asks a
//! [`Clock`] rather than calling `SystemTime::now()`, so tests can pin boundaries exactly with a
//! [`ManualClock`] instead of sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A source of wall-clock time, as milliseconds since the Unix epoch.
pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since 1970-01-01T00:00:00Z.
    fn now_ms(&self) -> u64;

    /// Whole seconds since the Unix epoch.
    fn now_secs(&self) -> u64 {
        self.now_ms() / 1000
    }
}

/// The operating system's clock, read from the kernel's coarse real-time clock where there is
/// one: it advances once per scheduler tick (1 to 10 ms) and is read from memory the kernel
/// shares with the process, without the hardware counter that the precise clock reads. Nothing
/// that asks needs finer: expiry and visits count seconds, rids seconds, and the tightest rate
/// limit spaces calls 15 ms apart. The request path asks once or twice per request.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn now_ms(&self) -> u64 {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::RealtimeCoarse);
        // A clock set before 1970 is a broken host; treat it as the epoch.
        let secs = u64::try_from(t.tv_sec).unwrap_or(0);
        secs.saturating_mul(1000) + u64::try_from(t.tv_nsec).unwrap_or(0) / 1_000_000
    }

    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    fn now_ms(&self) -> u64 {
        use std::time::{SystemTime, UNIX_EPOCH};
        // A clock set before 1970 is a broken host; treat it as the epoch rather than panicking.
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}

/// Milliseconds since the Unix epoch by the system's clock ([`SystemClock`]), for the times
/// that are stored rather than compared with injected ones: when a media job was made, when its
/// next push is due, when it finished.
pub fn wall_ms() -> u64 {
    SystemClock.now_ms()
}

/// A clock that only moves when told to. Cloning shares the same time.
#[derive(Debug, Clone)]
pub struct ManualClock {
    ms: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock reading `ms` milliseconds since the epoch.
    pub fn new(ms: u64) -> Self {
        Self {
            ms: Arc::new(AtomicU64::new(ms)),
        }
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.ms.fetch_add(by, Ordering::SeqCst);
    }

    /// Sets the clock to an absolute time.
    pub fn set_ms(&self, ms: u64) {
        self.ms.store(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.ms.load(Ordering::SeqCst)
    }
}

/// The clock handle the rest of the crate passes around.
pub type SharedClock = Arc<dyn Clock>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(1_000);
        let shared = clock.clone();
        assert_eq!(shared.now_ms(), 1_000);
        clock.advance(Duration::from_secs(2));
        assert_eq!(shared.now_ms(), 3_000);
        assert_eq!(shared.now_secs(), 3);
        clock.set_ms(42);
        assert_eq!(shared.now_ms(), 42);
    }

    #[test]
    fn system_clock_is_after_2024() {
        assert!(SystemClock.now_secs() > 1_700_000_000);
    }

    fn precise_ms() -> u64 {
        use std::time::{SystemTime, UNIX_EPOCH};
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }

    #[test]
    fn system_clock_trails_the_precise_clock_by_at_most_a_tick() {
        let mut last = 0;
        for _ in 0..1000 {
            let before = precise_ms();
            let coarse = SystemClock.now_ms();
            let after = precise_ms();
            // Never ahead of the precise clock, behind it by less than a slow tick (10 ms) plus
            // the rounding of both to milliseconds.
            assert!(coarse <= after, "{coarse} ahead of {after}");
            assert!(
                coarse + 11 >= before,
                "{coarse} more than a tick behind {before}"
            );
            assert!(coarse >= last, "went back from {last} to {coarse}");
            last = coarse;
        }
    }
}
