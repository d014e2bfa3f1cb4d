//! The per-request cost of the limits (rate limit + daily quota + visit check) on the memory
//! backend, with 10 million visits held across 1,000 apps, and the memory those visits take.
//!
//! Run: `cargo bench --bench limits`. The memory figure is printed before the timings; it is only
//! measured in a real bench run (not under `cargo test`, which runs each bench once, in debug).

use std::future::Future;
use std::hint::black_box;
use std::num::NonZeroU32;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use modgate::clock::{ManualClock, SharedClock};
use modgate::limits::{AppLimits, Metered, calendar, is_fresh};
use modgate::state::AppRecords;
use modgate::state::memory::{MemoryQuotaStore, MemoryVisitStore};
use modgate::state::{QuotaDecision, QuotaStore, VisitOutcome, VisitStore};

/// The memory backend's futures are ready at once; poll one without a runtime.
fn ready<T>(fut: impl Future<Output = T>) -> T {
    let mut fut = pin!(fut);
    match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("memory backend futures are always ready"),
    }
}

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn appid(i: usize) -> String {
    format!("wx{i:016x}")
}

fn bench(c: &mut Criterion) {
    let real_run = std::env::args().any(|a| a == "--bench");
    let (apps, users) = if real_run { (1000, 10_000) } else { (10, 100) };
    let manual = ManualClock::new(1_732_782_400_000);
    let clock: SharedClock = Arc::new(manual.clone());
    let now = clock.now_secs();

    let before = rss_bytes();
    let visits = MemoryVisitStore::new(20_000_000, 20_000_000);
    for a in 0..apps {
        let app = appid(a);
        for u in 0..users {
            let outcome = ready(visits.record(&app, &format!("o{u:027}"), now));
            assert_eq!(outcome.expect("memory backend"), VisitOutcome::Recorded);
        }
    }
    let after = rss_bytes();
    if real_run {
        let n = visits.len();
        eprintln!(
            "visits: {n} entries across {apps} apps: resident memory +{:.0} MiB ({:.1} bytes per entry)",
            (after - before) as f64 / (1 << 20) as f64,
            (after - before) as f64 / n as f64
        );
    }

    let quotas = MemoryQuotaStore::new();
    let nz = |n: u32| NonZeroU32::new(n).expect("non-zero");
    let limits = AppLimits::new(
        [
            (nz(u32::MAX), nz(u32::MAX)),
            (nz(2000), nz(200_000)),
            (nz(1000), nz(100_000)),
            (nz(2000), nz(1_000_000)),
            (nz(2000), nz(1_000_000)),
        ],
        &clock,
    );
    let ttl = Duration::from_secs(7200);
    let app = appid(7);
    let slot = AppRecords::new(&app);
    let openid = format!("o{:027}", 4321);

    c.bench_function("limits: rate + quota + visit (one admitted call)", |b| {
        b.iter(|| {
            limits
                .api(Metered::MsgSecCheck)
                .check_rate()
                .expect("far below the rate");
            let day = calendar::day_number(clock.now_secs(), 8);
            let decision = ready(quotas.acquire(&slot, Metered::MsgSecCheck, day, u64::MAX >> 24));
            assert!(matches!(decision, Ok(QuotaDecision::Admitted { .. })));
            let last = ready(visits.last_visit(&app, &openid)).expect("memory backend");
            black_box(is_fresh(last, clock.now_secs(), ttl))
        })
    });
    c.bench_function("limits: visit record (existing user)", |b| {
        b.iter(|| black_box(ready(visits.record(&app, &openid, now))))
    });
    c.bench_function("limits: baseline (day number and clock read only)", |b| {
        b.iter(|| black_box(calendar::day_number(clock.now_secs(), 8)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
