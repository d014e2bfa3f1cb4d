//! Serving a built gateway: the API listener on the request runtime, the admin listener and the
//! media pipeline on threads and runtimes of their own, the background tasks, and the drain.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use super::Listeners;
use super::sweeps::{
    flush_persisted, hand_back_idle_leases, persist_counters, ping_backend, sweep_review,
    sweep_visits,
};
use crate::catalog::watch::Apply;
use crate::gateway::Gateway;
use crate::transport::server::{self, ServerOptions};
use crate::transport::shutdown::Readiness;
use crate::{admin, api, jobs};

/// Serves a built gateway on `listeners` until `shutdown` resolves, then drains: `/readyz` turns
/// 503, the API listener stops accepting and finishes in-flight requests, and the admin listener
/// closes last.
pub async fn serve(
    gw: Arc<Gateway>,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send,
) {
    let ready = Arc::new(Readiness::default());
    let server = &gw.config.server;
    let api_opts = ServerOptions {
        name: "api",
        max_connections: server.max_connections.get(),
        max_connections_per_client: server.max_connections_per_client.get(),
        header_read_timeout: server.header_read_timeout,
        body_read_timeout: server.body_read_timeout,
        drain_timeout: server.drain_timeout,
    };
    // The operators' listener: few clients, all trusted, so no per-client share.
    let admin_opts = ServerOptions {
        name: "admin",
        max_connections: 256,
        max_connections_per_client: 256,
        ..api_opts.clone()
    };

    let (stop_api, api_rx) = watch::channel(false);
    let (stop_admin, admin_rx) = watch::channel(false);
    let sweeper = tokio::spawn(sweep_visits(Arc::clone(&gw), api_rx.clone()));
    let persister = tokio::spawn(persist_counters(Arc::clone(&gw), api_rx.clone()));
    // Review items are stored in batches by one writer; the sweep deletes what is past retention.
    let review_writer = tokio::spawn(Arc::clone(&gw.review).write_batches());
    let review_sweeper = tokio::spawn(sweep_review(Arc::clone(&gw), api_rx.clone()));
    // Measures the request runtime's queueing delay, which decides how much to shed.
    let overload = tokio::spawn(Arc::clone(&gw.overload).watch(api_rx.clone()));
    // Changes made on other instances (tables, banks, apps, token rotations) are put in force
    // here by a watcher of the shared change channel; it stops with the admin listener.
    let pinger = gw.shared.as_ref().map(|s| {
        tokio::spawn(ping_backend(
            s.state.clone(),
            gw.metrics.state.clone(),
            api_rx.clone(),
        ))
    });
    let lease_sweeper = gw.shared.as_ref().map(|s| {
        tokio::spawn(hand_back_idle_leases(
            s.state.clone(),
            gw.clock.clone(),
            api_rx.clone(),
        ))
    });
    let watcher = gw.shared.as_ref().map(|s| {
        let apply: Arc<dyn Apply> = Arc::new(gw.documents.place().clone());
        tokio::spawn(crate::catalog::watch::watch(
            Arc::clone(&s.catalog),
            apply,
            admin_rx.clone(),
        ))
    });
    // The media pipeline on a thread and runtime of its own: with submissions saturating the
    // request workers, its steps would otherwise wait behind them and starve.
    let media = {
        let (gw, rx) = (Arc::clone(&gw), api_rx.clone());
        let pipeline = jobs::Pipeline {
            jobs: Arc::clone(&gw.media),
            apps: Arc::clone(&gw.apps),
            engine: Arc::clone(&gw.engine),
            effects: gw.effects.clone(),
            clock: Arc::clone(&gw.clock),
            usage: Arc::clone(&gw.metrics.usage),
        };
        on_own_thread("modgate-media", || {}, move || jobs::run(pipeline, rx))
    };
    let api_gw = Arc::clone(&gw);
    let api = tokio::spawn(server::serve(
        listeners.api,
        api_opts,
        gw.metrics.listener("api"),
        move |req, waited| api::handle(Arc::clone(&api_gw), req, waited),
        api_rx,
    ));
    let admin = spawn_admin(
        Arc::clone(&gw),
        Arc::clone(&ready),
        listeners.admin,
        admin_opts,
        admin_rx,
    );

    shutdown.await;
    ready.draining.store(true, Ordering::Release);
    let _ = stop_api.send(true);
    if let Err(e) = api.await {
        tracing::error!(error = %e, "api listener task failed");
    }
    let _ = stop_admin.send(true);
    let _ = sweeper.await;
    let _ = overload.await;
    if let Some(watcher) = watcher {
        let _ = watcher.await;
    }
    if let Some(pinger) = pinger {
        let _ = pinger.await;
    }
    if let Some(lease_sweeper) = lease_sweeper {
        let _ = lease_sweeper.await;
    }
    if media.await.is_err() {
        tracing::error!("media dispatcher thread failed");
    }
    // No call is admitted here any more: the calls this instance holds leases of go back to the
    // shared quota and rate limits.
    if let Some(shared) = &gw.shared {
        match shared.state.release_leases(gw.clock.now_ms()).await {
            Ok(n) => tracing::info!(leases = n, "admission leases handed back"),
            Err(e) => {
                tracing::warn!(error = %e, "admission leases not handed back: their calls stay counted today")
            }
        }
    }
    // Everything that could enqueue a review item has stopped: store what is left.
    let _ = review_sweeper.await;
    if !gw.review.flush(Duration::from_secs(10)).await {
        tracing::error!("review items enqueued last were not all stored before shutdown");
    }
    review_writer.abort();
    if admin.await.is_err() {
        tracing::error!("admin listener thread failed");
    }
    // Nothing counts or records any more: what changed since the last second is written.
    let _ = persister.await;
    flush_persisted(&gw).await;
    tracing::info!("shutdown complete");
}

/// Nice value asked for the admin thread and its blocking pool: above the request workers, so
/// table builds, health checks and scrapes keep their latency when requests saturate the cores.
const ADMIN_NICE: i32 = -5;

/// Serves the admin listener on a thread of its own with its own runtime (and blocking pool), so
/// admin work never queues behind request tasks. Resolves when that thread has finished.
fn spawn_admin(
    gw: Arc<Gateway>,
    ready: Arc<Readiness>,
    listener: TcpListener,
    opts: ServerOptions,
    shutdown: watch::Receiver<bool>,
) -> tokio::sync::oneshot::Receiver<()> {
    let listener = match listener.into_std() {
        Ok(l) => l,
        Err(e) => {
            // Not expected for a listener this process bound and registered.
            tracing::error!(error = %e, "admin listener cannot move to its own thread; not served");
            return tokio::sync::oneshot::channel().1;
        }
    };
    on_own_thread("modgate-admin", raise_priority, move || async move {
        let listener = match TcpListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "admin listener cannot be served");
                return;
            }
        };
        let metrics = gw.metrics.listener("admin");
        server::serve(
            listener,
            opts,
            metrics,
            // The admin listener is never shed: how long a request waited does not matter.
            move |req, _waited| admin::handle(Arc::clone(&gw), Arc::clone(&ready), req),
            shutdown,
        )
        .await;
    })
}

/// Runs `task` on a thread of its own, in a current-thread runtime of its own (with its own
/// blocking pool), calling `setup` first on that thread and on each of its pool's threads.
/// Resolves when the task has finished (or could not start, which is logged).
fn on_own_thread<F, Fut>(
    name: &'static str,
    setup: fn(),
    task: F,
) -> tokio::sync::oneshot::Receiver<()>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    let (done, finished) = tokio::sync::oneshot::channel();
    let thread = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            setup();
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .thread_name(format!("{name}-blocking"))
                .on_thread_start(setup)
                .build();
            match runtime {
                Ok(rt) => rt.block_on(task()),
                Err(e) => tracing::error!(thread = name, error = %e, "runtime cannot start"),
            }
            let _ = done.send(());
        });
    if let Err(e) = thread {
        tracing::error!(thread = name, error = %e, "thread cannot start");
    }
    finished
}

/// Raises the calling thread's scheduling priority to [`ADMIN_NICE`] when the process may (root or
/// `CAP_SYS_NICE`); otherwise leaves it, saying so once.
fn raise_priority() {
    static REFUSED: std::sync::Once = std::sync::Once::new();
    let tid = rustix::thread::gettid();
    if let Err(e) = rustix::process::setpriority_process(Some(tid), ADMIN_NICE) {
        REFUSED.call_once(|| {
            tracing::info!(error = %e, "admin threads keep normal priority (raising it needs CAP_SYS_NICE)");
        });
    }
}
