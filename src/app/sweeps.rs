//! Background tasks of a serving gateway: the visit and review sweeps, and the shared backend's
//! ping and hand-back of idle admission leases.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::gateway::Gateway;
use crate::state::redis::RedisState;

/// How often idle admission leases are looked for, and how long unused makes one idle.
const LEASE_SWEEP: Duration = Duration::from_millis(500);
const LEASE_IDLE: Duration = Duration::from_secs(1);

/// Hands back, until shutdown, the admission leases this instance no longer uses
/// ([`RedisState::release_idle_leases`]): a lease left held keeps its calls from the other
/// instances and counted in the quota they report. Also hands back at once a lease another
/// instance recalls, having found the quota spent ([`RedisState::hand_back_recalled`]); while
/// not subscribed to recalls, it subscribes again at each sweep.
pub(super) async fn hand_back_idle_leases(
    state: RedisState,
    clock: crate::clock::SharedClock,
    mut shutdown: watch::Receiver<bool>,
) {
    use futures_util::StreamExt;

    let mut sweeps = tokio::time::interval(LEASE_SWEEP);
    sweeps.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut recalls: Option<futures_util::stream::BoxStream<'static, redis::Msg>> = None;
    loop {
        let recalled = async {
            match &mut recalls {
                Some(stream) => stream.next().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = crate::transport::shutdown_requested(&mut shutdown) => return,
            _ = sweeps.tick() => {
                match state.release_idle_leases(clock.now_ms(), LEASE_IDLE).await {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(leases = n, "idle admission leases handed back"),
                    // Counted as used until the day ends, as an instance's that stopped; the
                    // backend's reachability is reported by the ping.
                    Err(e) => tracing::debug!(error = %e, "idle admission leases not handed back"),
                }
                if recalls.is_none() {
                    match state.recalls().await {
                        Ok(stream) => recalls = Some(stream.boxed()),
                        Err(e) => tracing::debug!(error = %e, "lease recalls not subscribed"),
                    }
                }
            }
            message = recalled => match message {
                Some(message) => {
                    let handed = state
                        .hand_back_recalled(message.get_payload_bytes(), clock.now_ms())
                        .await;
                    if let Err(e) = handed {
                        tracing::debug!(error = %e, "recalled admission lease not handed back");
                    }
                }
                None => recalls = None,
            },
        }
    }
}

/// Pings the shared backend every second until shutdown, so `modgate_state_backend_up` is
/// true without traffic and a connection broken while idle is replaced before a request needs
/// it.
pub(super) async fn ping_backend(
    state: RedisState,
    metrics: crate::state::metrics::StateMetrics,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            () = crate::transport::shutdown_requested(&mut shutdown) => return,
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        match state.ping().await {
            Ok(()) => metrics.answered(),
            Err(e) => metrics.unreachable("ping", &e),
        }
    }
}

/// Writes what the in-process backend keeps across restarts (quota counts, resets, token
/// rotations, visits) every second until shutdown; the last flush is [`flush_persisted`]'s,
/// once nothing can change them any more.
pub(super) async fn persist_counters(gw: Arc<Gateway>, mut shutdown: watch::Receiver<bool>) {
    if gw.persisted.is_none() {
        return;
    }
    loop {
        tokio::select! {
            () = crate::transport::shutdown_requested(&mut shutdown) => return,
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        flush_persisted(&gw).await;
    }
}

/// Writes what changed of the persisted state now (on the blocking pool).
pub(super) async fn flush_persisted(gw: &Arc<Gateway>) {
    let Some(persisted) = gw.persisted.clone() else {
        return;
    };
    let apps = gw.apps.all();
    let now_secs = gw.clock.now_ms() / 1000;
    let ttl = gw.config.limits.visit_ttl.as_secs();
    let dropped_before = persisted.unjournaled();
    let started = std::time::Instant::now();
    let flushed = tokio::task::spawn_blocking(move || {
        persisted.flush(apps.iter().map(|a| &a.slot.records), now_secs, ttl)
    })
    .await;
    match flushed {
        Ok(Ok(f)) if f.apps + f.visits > 0 => tracing::debug!(
            apps = f.apps,
            shards = f.shards,
            visits = f.visits,
            ms = started.elapsed().as_secs_f64() * 1e3,
            "quota counts, token rotations and visits written"
        ),
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::error!(
            error = %e,
            "quota counts, token rotations and visits not written; retried in a second"
        ),
        Err(e) => tracing::error!(error = %e, "writing quota counts and visits failed"),
    }
    if let Some(p) = &gw.persisted
        && p.unjournaled() > dropped_before
    {
        tracing::warn!(
            visits = p.unjournaled() - dropped_before,
            "visits recorded faster than they are written: held in memory only"
        );
    }
}

/// Deletes review items past their retention, every minute.
pub(super) async fn sweep_review(gw: Arc<Gateway>, mut shutdown: watch::Receiver<bool>) {
    loop {
        match gw.review.sweep(gw.clock.now_ms()).await {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "review items past retention deleted"),
            Err(e) => tracing::error!(error = %e, "review sweep failed"),
        }
        tokio::select! {
            () = crate::transport::shutdown_requested(&mut shutdown) => return,
            () = tokio::time::sleep(Duration::from_secs(60)) => {}
        }
    }
}

/// Reclaims expired visits every `limits.visit_sweep` until shutdown, on the blocking pool (a
/// pass over millions of entries must not occupy an async worker).
pub(super) async fn sweep_visits(gw: Arc<Gateway>, mut shutdown: watch::Receiver<bool>) {
    let every = gw.config.limits.visit_sweep;
    if gw.visits.held().is_none() {
        // A shared backend expires visits itself.
        return;
    }
    loop {
        tokio::select! {
            () = crate::transport::shutdown_requested(&mut shutdown) => return,
            () = tokio::time::sleep(every) => {}
        }
        let ttl = gw.config.limits.visit_ttl.as_secs();
        // Stale means `now - last >= ttl`, i.e. `last < now - ttl + 1`.
        let before = gw.clock.now_secs().saturating_sub(ttl) + 1;
        let visits = Arc::clone(&gw.visits);
        match tokio::task::spawn_blocking(move || (visits.sweep(before), visits.held())).await {
            Ok((removed, Some(left))) => {
                gw.metrics.visit_entries(left);
                tracing::debug!(removed, left, "visits swept");
            }
            Ok((_, None)) => {}
            Err(e) => tracing::error!(error = %e, "visit sweep failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::app::{Options, build};
    use crate::clock::ManualClock;
    use crate::config::Config;

    /// The background sweep reclaims expired visits on its own schedule (tokio time is paused and
    /// advanced by hand; the wall clock is the injected one).
    #[tokio::test(start_paused = true)]
    async fn visits_are_swept_in_the_background() {
        let dir = std::env::temp_dir().join(format!("modgate-sweep-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let config = Config::from_toml(&format!(
            "[limits]\nvisit_sweep_secs = 30\nvisit_ttl_secs = 600\n[state]\ndata_dir = \"{}\"\n",
            dir.display()
        ))
        .unwrap();
        let manual = ManualClock::new(1_000_000_000);
        let gw = build(
            config,
            Options {
                clock: Arc::new(manual.clone()),
            },
        )
        .await
        .unwrap();
        let (stop, rx) = watch::channel(false);
        let sweeper = tokio::spawn(sweep_visits(Arc::clone(&gw), rx));
        let now = gw.clock.now_secs();
        gw.visits
            .record("wx00000000000000aa", "old", now)
            .await
            .unwrap();
        manual.advance(Duration::from_secs(300));
        gw.visits
            .record("wx00000000000000aa", "new", now + 300)
            .await
            .unwrap();
        assert_eq!(gw.visits.held(), Some(2));
        // 10 minutes after the first visit it has expired; the next sweep removes only it.
        manual.advance(Duration::from_secs(300));
        tokio::time::advance(Duration::from_secs(31)).await;
        // The sweep itself runs on the blocking pool (real threads): let virtual time pass in
        // small steps until it has reported back.
        for _ in 0..100_000 {
            if gw.visits.held() == Some(1) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert_eq!(gw.visits.held(), Some(1));
        assert_eq!(
            gw.visits
                .last_visit("wx00000000000000aa", "old")
                .await
                .unwrap(),
            None
        );
        assert!(
            gw.visits
                .last_visit("wx00000000000000aa", "new")
                .await
                .unwrap()
                .is_some()
        );
        let _ = stop.send(true);
        sweeper.await.unwrap();
    }
}
