//! Building the gateway: the engine, the stores (in process, or Redis shared by every
//! instance), media jobs, the review queue, and the documents stored in the catalog loaded and
//! put in force (apps, keyword tables compiled on every core, hash banks, risk lists).

use std::sync::Arc;
use std::time::Duration;

use super::{Options, RunError};
use crate::catalog::documents::{Document, InForce, parse_app, parse_table};
use crate::catalog::{self, Catalog, CatalogError, Documents, RedisCatalog};
use crate::config::{Backend, Config};
use crate::engine::table::CustomTable;
use crate::gateway::{Gateway, Shared};
use crate::jobs::MediaJobs;
use crate::media::bank::Bank;
use crate::metrics::Metrics;
use crate::rid::RidGenerator;
use crate::risk::RiskLists;
use crate::state::Stores;
use crate::state::durable::{Durable, Kind};
use crate::state::redis::RedisState;
use crate::state::stores::Embedded;
use crate::tenants::AppRegistry;
use crate::upstream::Upstream;

/// Builds the shared gateway state from a validated config. With the Redis backend this
/// connects to Redis (and fails if it cannot be reached: the catalog is loaded from it).
pub async fn build(config: Config, options: Options) -> Result<Arc<Gateway>, RunError> {
    let engine = config.engine.build()?;
    let metrics = Metrics::with_apps(&config.metrics.apps)?;
    let embedded = Embedded::open(&config.state.data_dir, config.state.store_cache_bytes)?;
    embedded.observe(&metrics.state.store);
    let shared = match config.state.backend {
        Backend::Memory => None,
        Backend::Redis => Some(connect(&config, &metrics).await?),
    };
    let catalog: Arc<dyn Catalog> = match &shared {
        Some(s) => Arc::clone(&s.catalog) as Arc<dyn Catalog>,
        None => Arc::clone(&embedded.catalog) as Arc<dyn Catalog>,
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
    let media = Arc::new(open_media_jobs(&config, &embedded.jobs, &shared, &metrics).await?);
    let place = InForce {
        apps: Arc::new(AppRegistry::default()),
        jobs: Arc::clone(&media),
        tokens: config.tokens.clone(),
        limits: config.limits.clone(),
        clock: Arc::clone(&options.clock),
    };
    for app in &config.apps {
        place.apps.put(place.new_app(app.clone()));
    }
    load_documents(&*catalog, &place, &metrics)?;
    if let Some(s) = &shared {
        for (kind, key, version) in versions {
            s.catalog.hold(kind, &key, version);
        }
    }
    let stores = match &shared {
        Some(s) => Stores::shared(&s.state),
        None => Stores::in_process(
            config.limits.max_visits.get(),
            config.limits.max_visits_per_app.get(),
        ),
    };
    let persisted = match &stores.local_visits {
        Some(visits) => {
            let persisted = crate::state::persist::Persisted::new(
                Arc::clone(&embedded.counters),
                Arc::clone(visits),
            );
            let apps = place.apps.all();
            let now_secs = options.clock.now_ms() / 1000;
            let restored = persisted
                .restore(
                    apps.iter().map(|a| &a.slot.records),
                    now_secs,
                    config.limits.visit_ttl.as_secs(),
                )
                .map_err(RunError::Durable)?;
            tracing::info!(
                apps = apps.len(),
                visits = restored,
                "quota counts, token rotations and visits restored"
            );
            Some(Arc::new(persisted))
        }
        None => None,
    };
    let review = crate::review::ReviewQueue::open(
        config.review.clone(),
        Arc::clone(&embedded.review),
        metrics.review.clone(),
        options.clock.now_ms(),
        shared.as_ref().map(|s| {
            crate::review::shared::SharedReview::new(s.state.connection(), s.state.prefix())
        }),
    )
    .map_err(RunError::Review)?;
    let upstream = match &config.upstream {
        Some(up) => Some(Arc::new(
            Upstream::new(up.clone(), metrics.upstream.clone()).map_err(RunError::Upstream)?,
        )),
        None => None,
    };
    Ok(Arc::new(Gateway {
        upstream,
        effects: crate::effects::Effects::new(Arc::clone(&review), config.risk.clone()),
        review,
        apps: Arc::clone(&place.apps),
        documents: Documents::new(catalog, place),
        shared,
        media,
        tokens: stores.tokens,
        quotas: stores.quotas,
        visits: stores.visits,
        admission: stores.admission,
        persisted,
        engine: Arc::new(arc_swap::ArcSwap::from_pointee(engine)),
        overload: crate::transport::overload::Overload::new(
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

/// Connects to the shared backend: its state and its catalog.
async fn connect(config: &Config, metrics: &Metrics) -> Result<Shared, RunError> {
    let state = RedisState::connect_with_ca(
        config.state.redis_url.as_str(),
        config.state.redis_ca.as_deref(),
        &config.state.redis_prefix,
        config.limits.visit_ttl,
    )
    .await
    .map_err(|e| RunError::Shared(e.to_string()))?
    .with_visit_cap(config.limits.max_visits_per_app.get())
    .with_metrics(metrics.state.clone());
    let catalog = Arc::new(RedisCatalog::new(
        state.client().clone(),
        state.prefix(),
        state.changes_channel(),
    ));
    Ok(Shared { state, catalog })
}

/// Opens media jobs on the embedded store's queue, or on the shared backend's.
async fn open_media_jobs(
    config: &Config,
    durable: &Arc<Durable>,
    shared: &Option<Shared>,
    metrics: &Metrics,
) -> Result<MediaJobs, RunError> {
    let shared_jobs = match shared {
        Some(s) => {
            let consumer = crate::jobs::shared::consumer_name(&config.state.data_dir)
                .map_err(|e| RunError::Media(format!("instance name: {e}")))?;
            let blocking = s
                .state
                .dedicated_connection(Duration::from_secs(1))
                .await
                .map_err(|e| RunError::Shared(e.to_string()))?;
            let jobs = crate::jobs::shared::SharedJobs::open(
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
    MediaJobs::open(
        config.media.clone(),
        Arc::clone(durable),
        shared_jobs,
        metrics.media.clone(),
    )
    .map_err(RunError::Media)
}

/// Puts in force every document the catalog holds: apps made through the admin API (over the
/// config file's), then keyword tables, hash banks and risk lists. A document whose app is not
/// registered stays stored (creating the app again brings it back) and is not loaded. A document
/// that cannot be used is logged, counted in `modgate_stored_records_skipped_total` and skipped:
/// one bad record must not keep every instance from starting (it stays stored, to be replaced
/// through the admin API). Only a store that cannot be read stops the start.
fn load_documents(
    catalog: &dyn Catalog,
    place: &InForce,
    metrics: &Metrics,
) -> Result<(), RunError> {
    let skip = |kind: &'static str, key: &str, e: String| {
        tracing::error!(kind, key, error = %e, "a stored record cannot be used; skipped");
        metrics.stored_record_skipped(kind);
    };
    let started = std::time::Instant::now();
    let mut apps = 0usize;
    catalog
        .scan(Kind::Apps, &mut |appid, json| {
            match parse_app(json) {
                Ok(app) => {
                    place.apps.put(place.new_app(app));
                    apps += 1;
                }
                Err(e) => skip("app", appid, e),
            }
            Ok(())
        })
        .map_err(RunError::Catalog)?;
    tracing::info!(
        stored_apps = apps,
        "loading: stored apps in force; reading keyword tables"
    );
    let (tables, bad) = load_tables(catalog)?;
    for (appid, e) in bad {
        skip("keyword_table", &appid, e);
    }
    let loaded = tables.len();
    for (appid, table) in tables {
        if CustomTable::put_in_force(place, &appid, table).is_err() {
            tracing::warn!(
                appid,
                "a stored keyword table belongs to no app; not loaded"
            );
        }
    }
    catalog
        .scan(Kind::Banks, &mut |scope, json| {
            match Bank::parse(json) {
                Ok(bank) => {
                    if Bank::put_in_force(place, scope, Arc::new(bank)).is_err() {
                        tracing::warn!(
                            appid = scope,
                            "a stored hash bank belongs to no app; not loaded"
                        );
                    }
                }
                Err(e) => skip("hash_bank", scope, e),
            }
            Ok(())
        })
        .map_err(RunError::Catalog)?;
    catalog
        .scan(Kind::RiskLists, &mut |appid, json| {
            match RiskLists::parse(json) {
                Ok(lists) => {
                    if RiskLists::put_in_force(place, appid, Arc::new(lists)).is_err() {
                        tracing::warn!(appid, "stored risk lists belong to no app; not loaded");
                    }
                }
                Err(e) => skip("risk_lists", appid, e),
            }
            Ok(())
        })
        .map_err(RunError::Catalog)?;
    tracing::info!(
        keyword_tables = loaded,
        ms = started.elapsed().as_millis() as u64,
        "loading: stored documents in force"
    );
    Ok(())
}

/// Stored tables by appid, and the stored tables that could not be used with why.
type Loaded = (
    dashmap::DashMap<String, Arc<CustomTable>>,
    Vec<(String, String)>,
);

/// Loads every stored keyword table, compiling them on all cores while the store is read one
/// table at a time (10,000 tables of 1,000 entries are ~600 MB of JSON: never all at once),
/// logging progress every few seconds.
fn load_tables(catalog: &dyn Catalog) -> Result<Loaded, RunError> {
    let tables = dashmap::DashMap::new();
    let bad = std::sync::Mutex::new(Vec::new());
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (send, receive) = std::sync::mpsc::sync_channel::<(String, Vec<u8>)>(workers * 4);
    let receive = std::sync::Mutex::new(receive);
    let read = std::thread::scope(|scope| {
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
                            if let Ok(mut bad) = bad.lock() {
                                bad.push((appid, e.to_string()));
                            }
                        }
                    }
                }
            });
        }
        let (mut sent, mut said) = (0usize, std::time::Instant::now());
        let read = catalog
            .scan(Kind::Keywords, &mut |appid, json| {
                sent += 1;
                if said.elapsed() >= PROGRESS_EVERY {
                    said = std::time::Instant::now();
                    tracing::info!(keyword_tables = sent, "loading: keyword tables read so far");
                }
                // A send fails only when every worker has gone, which they do not before the end.
                send.send((appid.to_owned(), json.to_vec()))
                    .map_err(|_| CatalogError::Document("keyword tables: loader stopped".into()))
            })
            .map_err(RunError::Catalog);
        drop(send);
        read
    });
    read?;
    let bad = bad.into_inner().unwrap_or_default();
    Ok((tables, bad))
}

/// How often a long start says how far it got.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);

/// The custom keyword table `appid` has stored, read from the deployment's catalog the way the
/// gateway loads it: for checking texts offline against a table in force. With the embedded
/// store, a running gateway holds it open and this fails saying so.
pub async fn stored_table(config: &Config, appid: &str) -> Result<Option<CustomTable>, RunError> {
    let json = match config.state.backend {
        Backend::Memory => {
            let dir = &config.state.data_dir;
            if !dir.join("catalog.redb").exists() && !dir.join("modgate.redb").exists() {
                return Err(RunError::Stored(format!(
                    "store: nothing is stored in {} (state.data_dir)",
                    dir.display()
                )));
            }
            let embedded = Embedded::open(dir, config.state.store_cache_bytes)?;
            Catalog::get(&*embedded.catalog, Kind::Keywords, appid).map_err(RunError::Catalog)?
        }
        Backend::Redis => {
            let metrics = Metrics::new()?;
            let shared = connect(config, &metrics).await?;
            let (catalog, key) = (Arc::clone(&shared.catalog), appid.to_owned());
            tokio::task::spawn_blocking(move || catalog.get(Kind::Keywords, &key))
                .await
                .map_err(|e| RunError::Shared(e.to_string()))?
                .map_err(RunError::Catalog)?
        }
    };
    json.map(|j| {
        parse_table(&j).map_err(|e| RunError::Stored(format!("keyword table of {appid}: {e}")))
    })
    .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stored tables are compiled on several threads: all of them arrive, each under its own
    /// appid, and a corrupt one is set aside with its appid and why, the others still loaded.
    #[test]
    fn stored_tables_load_in_parallel_and_a_bad_one_is_set_aside() {
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
        let (tables, bad) = load_tables(&durable).unwrap();
        assert_eq!(tables.len(), 50);
        assert!(bad.is_empty());
        for i in 0..50 {
            let t = tables.get(&format!("wx{i:016}")).unwrap();
            assert_eq!(t.entries()[0].keyword, format!("词{i}"));
            assert_eq!(t.entries()[0].level, i);
        }
        durable
            .put(Kind::Keywords, "wx00000000000000zz", b"[{\"keyword\":1}]")
            .unwrap();
        let (tables, bad) = load_tables(&durable).unwrap();
        assert_eq!(tables.len(), 50);
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].0, "wx00000000000000zz");
        assert!(bad[0].1.contains("invalid type"), "{:?}", bad[0]);
        drop(durable);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
