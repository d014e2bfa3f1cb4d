//! modgate: a self-hosted content-moderation gateway that speaks the wire protocol of WeChat's
//! mini-program content-security APIs.
//!
//! # Layout
//!
//! Requests flow `api -> {engine, limits, media} -> state`:
//!
//! - [`config`]: raw TOML, then a validated [`config::Config`] (all errors at once).
//! - [`server`]: the hyper accept loop (connection limit, header timeout, graceful drain).
//! - [`api`]: HTTP only: routing, wire types, the one error-to-response mapping.
//! - [`engine`]: the pure, synchronous text engine (normalize, lexicon, automaton, verdict).
//! - [`token`]: access-token minting and verification (pure).
//! - [`state`]: small backend traits and their implementations.
//! - [`metrics`], [`rid`], [`clock`]: Prometheus metrics, request ids, injected time.
//!
//! [`run`] (or [`build`] then [`serve`]) starts both listeners on already-bound sockets and
//! returns after a graceful shutdown, so tests run the real server on `127.0.0.1:0`.

pub mod api;
pub mod clock;
pub mod config;
pub mod engine;
#[doc(hidden)]
pub mod fuzzing;
pub mod ids;
pub mod limits;
pub mod media;
pub mod metrics;
pub mod review;
pub mod rid;
pub mod risk;
pub mod state;
pub mod token;
pub mod transport;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::api::Gateway;
use crate::clock::{SharedClock, SystemClock};
use crate::config::Backend;
use crate::config::Config;
use crate::config::RawApp;
use crate::engine::table::{CustomTable, TableError};
use crate::engine::{Engine, EngineError, Lexicon};
use crate::metrics::Metrics;
use crate::rid::RidGenerator;
use crate::state::catalog::{self, Catalog, CatalogError, RedisCatalog};
use crate::state::durable::{Durable, DurableError, Kind};
use crate::state::redis::RedisState;
use crate::state::{App, AppRegistry, Stores};
use crate::transport::server::{self, ServerOptions};

/// The two bound sockets.
#[derive(Debug)]
pub struct Listeners {
    /// The WeChat-compatible API.
    pub api: TcpListener,
    /// `/metrics`, `/healthz`, `/readyz` (and later `/admin/*`).
    pub admin: TcpListener,
}

/// What a caller may inject.
#[derive(Clone)]
pub struct Options {
    pub clock: SharedClock,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            clock: Arc::new(SystemClock),
        }
    }
}

/// Whether the gateway is draining (for `/readyz`).
#[derive(Debug, Default)]
pub struct Readiness {
    pub draining: AtomicBool,
}

/// Starting the gateway failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("building the text engine: {0}")]
    Engine(#[from] EngineError),
    #[error("registering metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("{0}")]
    Durable(#[from] DurableError),
    #[error("embedded store holds an invalid {0}")]
    Stored(String),
    #[error("media pipeline: {0}")]
    Media(String),
    #[error("shared state: {0}")]
    Shared(String),
    #[error("catalog: {0}")]
    Catalog(CatalogError),
    #[error("review queue: {0}")]
    Review(String),
}

/// The shared backend of a distributed deployment.
#[derive(Debug, Clone)]
pub struct Shared {
    pub state: RedisState,
    pub catalog: Arc<RedisCatalog>,
}

/// Builds the shared gateway state from a validated config. With the Redis backend this
/// connects to Redis (and fails if it cannot be reached: the catalog is loaded from it).
pub async fn build(config: Config, options: Options) -> Result<Arc<Gateway>, RunError> {
    let engine = build_engine(&config.engine)?;
    let metrics = Metrics::new()?;
    let durable = Arc::new(Durable::open(
        &config.state.data_dir,
        config.state.store_cache_bytes,
    )?);
    let shared = match config.state.backend {
        Backend::Memory => None,
        Backend::Redis => {
            let state = RedisState::connect(
                config.state.redis_url.as_str(),
                &config.state.redis_prefix,
                config.limits.visit_ttl,
            )
            .await
            .map_err(|e| RunError::Shared(e.to_string()))?
            .with_metrics(metrics.state.clone());
            let catalog = Arc::new(RedisCatalog::new(
                state.client().clone(),
                state.prefix(),
                state.changes_channel(),
            ));
            Some(Shared { state, catalog })
        }
    };
    let catalog: Arc<dyn Catalog> = match &shared {
        Some(s) => Arc::clone(&s.catalog) as Arc<dyn Catalog>,
        None => Arc::clone(&durable) as Arc<dyn Catalog>,
    };
    // Versions are read before the documents: a change made while loading has a later version,
    // which the change watcher's first resynchronisation applies.
    let mut versions = Vec::new();
    if let Some(s) = &shared {
        for kind in catalog::KINDS {
            for (key, version) in s.catalog.versions(kind).map_err(RunError::Catalog)? {
                versions.push((kind, key, version));
            }
        }
    }
    let apps = AppRegistry::new(
        config
            .apps
            .iter()
            .cloned()
            .map(|a| App::new(a, &config.tokens, &config.limits, &options.clock)),
    );
    // Apps created or replaced through the admin API overlay the config file's.
    catalog
        .scan(Kind::Apps, &mut |appid, json| {
            let app =
                parse_app(json).map_err(|e| CatalogError(format!("stored app {appid}: {e}")))?;
            apps.put(App::new(
                app,
                &config.tokens,
                &config.limits,
                &options.clock,
            ));
            Ok(())
        })
        .map_err(RunError::Catalog)?;
    let shared_jobs = match &shared {
        Some(s) => {
            let consumer = crate::media::shared::consumer_name(&config.state.data_dir)
                .map_err(|e| RunError::Media(format!("instance name: {e}")))?;
            let blocking = s
                .state
                .dedicated_connection(Duration::from_secs(1))
                .await
                .map_err(|e| RunError::Shared(e.to_string()))?;
            let jobs = crate::media::shared::SharedJobs::open(
                s.state.connection(),
                blocking,
                s.state.prefix(),
                consumer,
                config.media.lease,
                config.media.retention,
            )
            .await
            .map_err(|e| RunError::Shared(e.to_string()))?;
            Some(jobs)
        }
        None => None,
    };
    let media = crate::media::Media::open(
        config.media.clone(),
        Arc::clone(&durable),
        shared_jobs,
        metrics.media.clone(),
    )
    .map_err(RunError::Media)?;
    for (appid, table) in load_tables(&*catalog)? {
        match apps.get(&appid) {
            Some(app) => app.slot.table.store(Some(table)),
            // Kept in the store: creating the app again through the admin API brings it back.
            None => tracing::warn!(
                appid,
                "a stored keyword table belongs to no app; not loaded"
            ),
        }
    }
    catalog
        .scan(Kind::Banks, &mut |scope, json| {
            let bank = parse_bank(json)
                .map_err(|e| CatalogError(format!("stored hash bank {scope}: {e}")))?;
            if scope == crate::media::bank::GLOBAL {
                media.global_bank.store(Arc::new(bank));
            } else if let Some(app) = apps.get(scope) {
                app.slot.bank.store(Some(Arc::new(bank)));
            } else {
                tracing::warn!(
                    appid = scope,
                    "a stored hash bank belongs to no app; not loaded"
                );
            }
            Ok(())
        })
        .map_err(RunError::Catalog)?;
    catalog
        .scan(Kind::RiskLists, &mut |appid, json| {
            let lists = parse_risk_lists(json)
                .map_err(|e| CatalogError(format!("stored risk lists {appid}: {e}")))?;
            match apps.get(appid) {
                Some(app) => app.slot.risk_lists.store(Some(Arc::new(lists))),
                None => tracing::warn!(appid, "stored risk lists belong to no app; not loaded"),
            }
            Ok(())
        })
        .map_err(RunError::Catalog)?;
    if let Some(s) = &shared {
        for (kind, key, version) in versions {
            s.catalog.hold(kind, &key, version);
        }
    }
    let stores = match &shared {
        Some(s) => Stores::shared(&s.state),
        None => Stores::in_process(config.limits.max_visits.get()),
    };
    let review = crate::review::ReviewQueue::open(
        config.review.clone(),
        Arc::clone(&durable),
        metrics.review.clone(),
        options.clock.now_ms(),
        shared.as_ref().map(|s| {
            crate::review::shared::SharedReview::new(s.state.connection(), s.state.prefix())
        }),
    )
    .map_err(RunError::Review)?;
    Ok(Arc::new(Gateway {
        review,
        durable,
        catalog,
        shared,
        media,
        admin_writes: tokio::sync::Mutex::new(()),
        apps,
        tokens: stores.tokens,
        quotas: stores.quotas,
        visits: stores.visits,
        admission: stores.admission,
        engine: arc_swap::ArcSwap::from_pointee(engine),
        overload: transport::overload::Overload::new(
            config.server.overload_delay,
            metrics.scheduling_delay(),
            metrics.shed_share(),
        ),
        metrics,
        clock: options.clock,
        rids: RidGenerator::new(),
        config,
    }))
}

/// A stored app, validated.
fn parse_app(json: &[u8]) -> Result<config::AppConfig, String> {
    let raw = serde_json::from_slice::<RawApp>(json).map_err(|e| e.to_string())?;
    raw.validate().map_err(|e| e.to_string())
}

/// Stored risk lists, built.
fn parse_risk_lists(json: &[u8]) -> Result<crate::risk::RiskLists, String> {
    serde_json::from_slice::<Vec<crate::risk::ListEntry>>(json)
        .map_err(|e| e.to_string())
        .and_then(|entries| crate::risk::RiskLists::build(entries).map_err(|e| e.to_string()))
}

/// A stored hash bank, built.
fn parse_bank(json: &[u8]) -> Result<crate::media::bank::Bank, String> {
    crate::media::bank::parse_entries(json, false)
        .and_then(crate::media::bank::Bank::build)
        .map_err(|e| e.to_string())
}

/// A stored keyword table, built.
fn parse_table(json: &[u8]) -> Result<CustomTable, TableError> {
    serde_json::from_slice(json)
        .map_err(|e| TableError::Format(e.to_string()))
        .and_then(CustomTable::build)
}

/// Changes made on other instances, put in force here.
impl catalog::Apply for Gateway {
    fn apply(&self, kind: Kind, key: &str, doc: &[u8]) -> Result<(), String> {
        match kind {
            Kind::Apps => {
                let app = parse_app(doc)?;
                self.apps.put(App::new(
                    app,
                    &self.config.tokens,
                    &self.config.limits,
                    &self.clock,
                ));
            }
            Kind::Keywords => {
                let app = self.apps.get(key).ok_or("the table belongs to no app")?;
                let table = parse_table(doc).map_err(|e| e.to_string())?;
                let count = table.len();
                app.slot.table.store(Some(Arc::new(table)));
                tracing::info!(
                    appid = key,
                    count,
                    "keyword table changed elsewhere, in force"
                );
            }
            Kind::Banks => {
                let bank = parse_bank(doc)?;
                if key == crate::media::bank::GLOBAL {
                    self.media.global_bank.store(Arc::new(bank));
                } else {
                    let app = self.apps.get(key).ok_or("the bank belongs to no app")?;
                    app.slot.bank.store(Some(Arc::new(bank)));
                }
            }
            Kind::RiskLists => {
                let lists = parse_risk_lists(doc)?;
                let app = self
                    .apps
                    .get(key)
                    .ok_or("the risk lists belong to no app")?;
                app.slot.risk_lists.store(Some(Arc::new(lists)));
            }
            Kind::OpenJobs | Kind::Jobs | Kind::Review | Kind::ReviewAudit => {
                return Err("not a catalog kind".into());
            }
        }
        Ok(())
    }

    fn rotated(&self, appid: &str) {
        if let Some(app) = self.apps.get(appid) {
            RedisState::forget_epochs(&app.slot);
        }
    }
}

/// Loads every stored keyword table, compiling them on all cores while the store is read one
/// table at a time (10,000 tables of 1,000 entries are ~600 MB of JSON: never all at once).
fn load_tables(
    catalog: &dyn Catalog,
) -> Result<dashmap::DashMap<String, Arc<CustomTable>>, RunError> {
    let tables = dashmap::DashMap::new();
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (send, receive) = std::sync::mpsc::sync_channel::<(String, Vec<u8>)>(workers * 4);
    let receive = std::sync::Mutex::new(receive);
    let failed = std::sync::Mutex::new(None::<RunError>);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    // The lock is held only to take the next table off the channel.
                    let next = receive.lock().map(|r| r.recv());
                    let Ok(Ok((appid, json))) = next else { break };
                    match parse_table(&json) {
                        Ok(table) => {
                            tables.insert(appid, Arc::new(table));
                        }
                        Err(e) => {
                            let e = RunError::Stored(format!("keyword table of {appid}: {e}"));
                            if let Ok(mut failed) = failed.lock() {
                                failed.get_or_insert(e);
                            }
                        }
                    }
                }
            });
        }
        let read = catalog
            .scan(Kind::Keywords, &mut |appid, json| {
                // A send fails only when every worker has gone, which they do not before the end.
                send.send((appid.to_owned(), json.to_vec()))
                    .map_err(|_| CatalogError("keyword tables: loader stopped".into()))
            })
            .map_err(RunError::Catalog);
        drop(send);
        if let Err(e) = read
            && let Ok(mut failed) = failed.lock()
        {
            failed.get_or_insert(e);
        }
    });
    match failed.into_inner() {
        Ok(Some(e)) => Err(e),
        _ => Ok(tables),
    }
}

/// The built-in lexicon plus the operator's lexicon files.
pub fn build_engine(config: &config::EngineConfig) -> Result<Engine, EngineError> {
    let mut lexicon = Lexicon::builtin()?;
    for (path, label) in &config.lexicon_files {
        lexicon.add_file(path, *label)?;
    }
    Engine::new(lexicon)
}

/// Builds the gateway and serves it; see [`serve`].
pub async fn run(
    config: Config,
    listeners: Listeners,
    options: Options,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), RunError> {
    serve(build(config, options).await?, listeners, shutdown).await;
    Ok(())
}

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
        header_read_timeout: server.header_read_timeout,
        drain_timeout: server.drain_timeout,
    };
    let admin_opts = ServerOptions {
        name: "admin",
        max_connections: 256,
        ..api_opts.clone()
    };

    let (stop_api, api_rx) = watch::channel(false);
    let (stop_admin, admin_rx) = watch::channel(false);
    let sweeper = tokio::spawn(sweep_visits(Arc::clone(&gw), api_rx.clone()));
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
    let watcher = gw.shared.as_ref().map(|s| {
        let apply: Arc<dyn catalog::Apply> = Arc::clone(&gw) as Arc<dyn catalog::Apply>;
        tokio::spawn(catalog::watch(
            Arc::clone(&s.catalog),
            apply,
            admin_rx.clone(),
        ))
    });
    // The media pipeline on a thread and runtime of its own: with submissions saturating the
    // request workers, its steps would otherwise wait behind them and starve.
    let media = {
        let (gw, rx) = (Arc::clone(&gw), api_rx.clone());
        on_own_thread("modgate-media", || {}, move || media::run(gw, rx))
    };
    let api_gw = Arc::clone(&gw);
    let api = tokio::spawn(server::serve(
        listeners.api,
        api_opts,
        gw.metrics.listener("api"),
        move |req, waited| Arc::clone(&api_gw).handle(req, waited),
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
    if media.await.is_err() {
        tracing::error!("media dispatcher thread failed");
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
            move |req, _waited| api::admin::handle(Arc::clone(&gw), Arc::clone(&ready), req),
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

/// Pings the shared backend every second until shutdown, so `modgate_state_backend_up` is
/// true without traffic and a connection broken while idle is replaced before a request needs
/// it.
async fn ping_backend(
    state: RedisState,
    metrics: crate::metrics::StateMetrics,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            () = transport::shutdown_requested(&mut shutdown) => return,
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        match state.ping().await {
            Ok(()) => metrics.answered(),
            Err(e) => metrics.unreachable("ping", &e),
        }
    }
}

/// Reclaims expired visits every `limits.visit_sweep` until shutdown, on the blocking pool (a
/// pass over millions of entries must not occupy an async worker).
/// Deletes review items past their retention, every minute.
async fn sweep_review(gw: Arc<Gateway>, mut shutdown: watch::Receiver<bool>) {
    loop {
        match gw.review.sweep(gw.clock.now_ms()).await {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "review items past retention deleted"),
            Err(e) => tracing::error!(error = %e, "review sweep failed"),
        }
        tokio::select! {
            () = transport::shutdown_requested(&mut shutdown) => return,
            () = tokio::time::sleep(Duration::from_secs(60)) => {}
        }
    }
}

async fn sweep_visits(gw: Arc<Gateway>, mut shutdown: watch::Receiver<bool>) {
    let every = gw.config.limits.visit_sweep;
    if gw.visits.held().is_none() {
        // A shared backend expires visits itself.
        return;
    }
    loop {
        tokio::select! {
            () = transport::shutdown_requested(&mut shutdown) => return,
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
    use crate::clock::ManualClock;

    /// Stored tables are compiled on several threads: all of them arrive, each under its own
    /// appid, and a corrupt one stops the start with its appid named.
    #[test]
    fn stored_tables_load_in_parallel_and_a_bad_one_is_named() {
        let dir = std::env::temp_dir().join(format!("modgate-load-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let durable = Durable::open(&dir, 1 << 20).unwrap();
        for i in 0..50 {
            let json =
                format!(r#"[{{"keyword":"词{i}","label":20006,"level":{i},"suggest":"risky"}}]"#);
            durable
                .put(Kind::Keywords, &format!("wx{i:016}"), json.as_bytes())
                .unwrap();
        }
        let tables = load_tables(&durable).unwrap();
        assert_eq!(tables.len(), 50);
        for i in 0..50 {
            let t = tables.get(&format!("wx{i:016}")).unwrap();
            assert_eq!(t.entries()[0].keyword, format!("词{i}"));
            assert_eq!(t.entries()[0].level, i);
        }
        durable
            .put(Kind::Keywords, "wx00000000000000zz", b"[{\"keyword\":1}]")
            .unwrap();
        let e = load_tables(&durable).unwrap_err().to_string();
        assert!(e.contains("keyword table of wx00000000000000zz"), "{e}");
        drop(durable);
        let _ = std::fs::remove_dir_all(&dir);
    }

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
