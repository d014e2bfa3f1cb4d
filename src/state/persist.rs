//! What the in-process backend keeps across restarts: each app's daily quota counts, its
//! monthly `clear_quota` allowance and its token rotations, and the visits that still make
//! their users fresh. Written behind the request path into the embedded store
//! ([`super::durable`]): the gateway calls [`Persisted::flush`] every second and once more at
//! shutdown, so a restart never hands a tenant a fresh quota or brings back a rotated token, and
//! a `kill -9` loses at most the last second.
//!
//! - Counters: every app's quota words (each carries its day or month) and token record, in
//!   [`snapshot::SHARDS`] values of the `counter_shards` table ([`super::snapshot`]); a flush
//!   rewrites the shards holding an app whose counters changed since the last one. (Stores from
//!   before kept one JSON row per app in `counters`: read at the start, deleted by the first
//!   flush, which writes their apps into shards in the same transaction.)
//! - Visits: one row per recorded visit (`visits` table), keyed by the visit time
//!   (zero-padded seconds), the appid and the openid, so the rows past freshness are one range
//!   at the front, dropped every minute. A user's repeated visits are several rows until the
//!   older ones age out; restoring keeps the latest. The visits recorded since the last flush
//!   wait in a journal of at most [`MAX_JOURNAL`] entries; past it (a flood of reports within
//!   one second) the rest are held in memory only and counted, not written.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use serde::Deserialize;

use super::AppRecords;
use super::durable::{Change, Durable, DurableError, Kind};
pub use super::journal::MAX_JOURNAL;
use super::memory::MemoryVisitStore;
use super::snapshot::{self, SHARDS, Snapshot, shard_key, shard_of};
use crate::limits::Metered;
use crate::token::{Epochs, Forced};

/// An app's counters as stores from before the shards kept them (one JSON row per app).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
struct Legacy {
    /// The quota words by API name (each packs its day and count).
    quota: HashMap<String, u64>,
    /// The reset allowance word (month and count).
    resets: u64,
    /// Token epochs by lineage (`token`, `stable`): current and previous issue times.
    epochs: [Option<(u64, Option<u64>)>; 2],
    /// Forced refreshes of the stable token: day, count, last (ms).
    forced: (u32, u32, u64),
}

impl Legacy {
    fn snapshot(&self) -> Snapshot {
        Snapshot {
            quota: Metered::ALL.map(|api| self.quota.get(api.as_str()).copied().unwrap_or(0)),
            resets: self.resets,
            epochs: self
                .epochs
                .map(|e| e.map(|(current, previous)| Epochs { current, previous })),
            forced: Forced {
                day: self.forced.0,
                count: self.forced.1,
                last_ms: self.forced.2,
            },
        }
    }
}

/// Every app's counters as last written (or read at the start), by shard, and what the next
/// flush must write.
struct Shards {
    apps: Vec<HashMap<String, Snapshot>>,
    /// Shards changed since they were last written.
    dirty: BTreeSet<usize>,
    /// Rows of the earlier per-app layout, deleted when their apps are first written to shards.
    legacy: Vec<String>,
}

/// The key of a visit row: its time first, so that rows past freshness are a prefix.
fn visit_key(at: u32, appid: &str, openid: &str) -> String {
    format!("{at:010}\t{appid}\t{openid}")
}

/// The key below which every row is older than `before` (seconds).
fn visits_before(before: u32) -> String {
    format!("{before:010}")
}

/// The in-process backend's persistence.
pub struct Persisted {
    durable: Arc<Durable>,
    visits: Arc<MemoryVisitStore>,
    /// Every app's counters as stored; held for the whole of a flush, so two never interleave.
    shards: Mutex<Shards>,
    /// When stale visit rows were last dropped (seconds).
    pruned_at: AtomicU64,
}

impl std::fmt::Debug for Persisted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Persisted").finish_non_exhaustive()
    }
}

/// What one flush wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flushed {
    /// Apps whose counters changed.
    pub apps: usize,
    /// Shards rewritten for them.
    pub shards: usize,
    pub visits: usize,
}

impl Persisted {
    /// Persistence of `visits` (whose journal it turns on) and of apps' counters, in `durable`.
    pub fn new(durable: Arc<Durable>, visits: Arc<MemoryVisitStore>) -> Self {
        visits.keep_journal();
        Persisted {
            durable,
            visits,
            shards: Mutex::new(Shards {
                apps: vec![HashMap::new(); SHARDS],
                dirty: BTreeSet::new(),
                legacy: Vec::new(),
            }),
            pruned_at: AtomicU64::new(0),
        }
    }

    /// Puts back what was stored for `apps` (their counters) and every visit still fresh at
    /// `now_secs`; returns how many visits. A record that cannot be read is logged and skipped.
    /// The counters of apps not among `apps` are kept as they are stored.
    pub fn restore<'a>(
        &self,
        apps: impl IntoIterator<Item = &'a AppRecords>,
        now_secs: u64,
        ttl_secs: u64,
    ) -> Result<usize, DurableError> {
        let mut shards = self.shards.lock().unwrap_or_else(PoisonError::into_inner);
        let mut stored: HashMap<String, Snapshot> = HashMap::new();
        // Rows of the earlier layout first: a shard written since would override them (the
        // flush that writes the shards deletes the rows, so both are never there at once).
        for (appid, json) in self.durable.all(Kind::Counters)? {
            match serde_json::from_slice::<Legacy>(&json) {
                Ok(c) => {
                    stored.insert(appid.clone(), c.snapshot());
                }
                Err(e) => tracing::error!(
                    appid,
                    error = %e,
                    "stored quota and token counters unreadable; starting from none"
                ),
            }
            shards.legacy.push(appid);
        }
        for (key, bytes) in self.durable.all(Kind::CounterShards)? {
            match snapshot::decode(&bytes) {
                Ok(apps) => stored.extend(apps),
                Err(e) => tracing::error!(
                    shard = key,
                    error = %e,
                    "a shard of stored quota and token counters is unreadable; its apps start from none"
                ),
            }
        }
        for records in apps {
            if let Some(s) = stored.get(records.appid()) {
                s.restore(records);
            }
        }
        let moved = !shards.legacy.is_empty();
        for (appid, s) in stored {
            let shard = shard_of(&appid);
            if moved {
                shards.dirty.insert(shard);
            }
            shards.apps[shard].insert(appid, s);
        }
        drop(shards);
        let from = visits_before(u32::try_from(now_secs.saturating_sub(ttl_secs)).unwrap_or(0));
        let mut restored = 0;
        self.durable
            .scan_from(Kind::Visits, &from, |key, _| -> Result<(), DurableError> {
                let mut parts = key.splitn(3, '\t');
                let (Some(at), Some(appid), Some(openid)) =
                    (parts.next(), parts.next(), parts.next())
                else {
                    tracing::warn!(key, "stored visit row unreadable; skipped");
                    return Ok(());
                };
                let Ok(at) = at.parse::<u64>() else {
                    tracing::warn!(key, "stored visit row unreadable; skipped");
                    return Ok(());
                };
                self.visits.restore(appid, openid, at);
                restored += 1;
                Ok(())
            })?;
        Ok(restored)
    }

    /// Writes what changed since the last flush, in one transaction: the shards holding an app
    /// of `apps` whose counters changed, and the journaled visits; once a minute, drops the
    /// visit rows that no longer make anyone fresh at `now_secs`.
    pub fn flush<'a>(
        &self,
        apps: impl IntoIterator<Item = &'a AppRecords>,
        now_secs: u64,
        ttl_secs: u64,
    ) -> Result<Flushed, DurableError> {
        let mut shards = self.shards.lock().unwrap_or_else(PoisonError::into_inner);
        let mut changed = 0;
        for records in apps {
            let now = Snapshot::of(records);
            let shard = shard_of(records.appid());
            let held = &mut shards.apps[shard];
            match held.get_mut(records.appid()) {
                Some(s) if *s == now => continue,
                Some(s) => *s = now,
                None => {
                    held.insert(records.appid().to_owned(), now);
                }
            }
            changed += 1;
            shards.dirty.insert(shard);
        }
        let mut changes: Vec<Change> = shards
            .dirty
            .iter()
            .map(|&shard| {
                let apps = &shards.apps[shard];
                let value = snapshot::encode(apps.iter().map(|(k, v)| (k.as_str(), v)));
                Change::Put(Kind::CounterShards, shard_key(shard), value)
            })
            .collect();
        changes.extend(
            shards
                .legacy
                .iter()
                .map(|appid| Change::Delete(Kind::Counters, appid.clone())),
        );
        let visits = self.visits.take_journal();
        let flushed = Flushed {
            apps: changed,
            shards: shards.dirty.len(),
            visits: visits.len(),
        };
        for v in &visits {
            changes.push(Change::Put(
                Kind::Visits,
                visit_key(v.at, &v.appid, &v.openid),
                Vec::new(),
            ));
        }
        let prune = now_secs.saturating_sub(self.pruned_at.load(Ordering::Relaxed)) >= 60;
        if changes.is_empty() && !prune {
            return Ok(flushed);
        }
        let before = u32::try_from(now_secs.saturating_sub(ttl_secs)).unwrap_or(0);
        let upto = prune.then(|| visits_before(before));
        if let Err(e) = self
            .durable
            .apply_and_trim(&changes, Kind::Visits, upto.as_deref())
        {
            // Written next time: the journal's entries go back, the shards stay dirty.
            self.visits.rejournal(visits);
            return Err(e);
        }
        if prune {
            self.pruned_at.store(now_secs, Ordering::Relaxed);
        }
        shards.dirty.clear();
        shards.legacy.clear();
        Ok(flushed)
    }

    /// Visits held in memory only: the journal was full when they came.
    pub fn unjournaled(&self) -> u64 {
        self.visits.journal_dropped()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{QuotaStore, VisitStore};

    fn dir(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!(
            "modgate-persist-{name}-{}-{}",
            std::process::id(),
            crate::clock::wall_ms()
        ));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[tokio::test]
    async fn counters_and_fresh_visits_come_back_after_a_restart() {
        let dir = dir("restart");
        let app = AppRecords::new("wx00000000000000aa");
        {
            let durable = Arc::new(Durable::open(&dir, 1 << 20).unwrap());
            let visits = Arc::new(MemoryVisitStore::new(100, 100));
            let p = Persisted::new(Arc::clone(&durable), Arc::clone(&visits));
            let quotas = crate::state::memory::MemoryQuotaStore::new();
            for _ in 0..3 {
                quotas
                    .acquire(&app, Metered::MsgSecCheck, 20_000, 10)
                    .await
                    .unwrap();
            }
            quotas.reset(&app, 20_000, 600, 10).await.unwrap();
            quotas
                .acquire(&app, Metered::MediaCheckAsync, 20_000, 10)
                .await
                .unwrap();
            app.tokens.lock().unwrap().epochs[0] = Some(Epochs {
                current: 7,
                previous: Some(5),
            });
            visits.record(app.appid(), "old", 1_000).await.unwrap();
            visits.record(app.appid(), "fresh", 9_000).await.unwrap();
            let f = p.flush([&app], 9_000, 7_200).unwrap();
            assert_eq!(
                f,
                Flushed {
                    apps: 1,
                    shards: 1,
                    visits: 2
                }
            );
            // Nothing changed: nothing written.
            assert_eq!(p.flush([&app], 9_001, 7_200).unwrap(), Flushed::default());
        }
        let durable = Arc::new(Durable::open(&dir, 1 << 20).unwrap());
        let visits = Arc::new(MemoryVisitStore::new(100, 100));
        let p = Persisted::new(Arc::clone(&durable), Arc::clone(&visits));
        let again = AppRecords::new("wx00000000000000aa");
        assert_eq!(p.restore([&again], 9_100, 7_200).unwrap(), 1);
        let quotas = crate::state::memory::MemoryQuotaStore::new();
        assert_eq!(
            quotas
                .used(&again, Metered::MsgSecCheck, 20_000)
                .await
                .unwrap(),
            0
        );
        assert_eq!(
            quotas
                .used(&again, Metered::MediaCheckAsync, 20_000)
                .await
                .unwrap(),
            1
        );
        assert_eq!(again.tokens.lock().unwrap().epochs[0].unwrap().current, 7);
        assert_eq!(
            visits.last_visit(again.appid(), "fresh").await.unwrap(),
            Some(9_000)
        );
        assert_eq!(visits.last_visit(again.appid(), "old").await.unwrap(), None);
        // The allowance came back too: nine resets left this month, not ten.
        assert_eq!(
            quotas.reset(&again, 20_000, 600, 10).await.unwrap(),
            crate::state::ResetDecision::Reset { remaining: 8 }
        );
    }

    #[tokio::test]
    async fn a_flush_rewrites_only_the_shards_of_apps_that_changed() {
        let dir = dir("shards");
        let durable = Arc::new(Durable::open(&dir, 1 << 20).unwrap());
        let visits = Arc::new(MemoryVisitStore::new(100, 100));
        let p = Persisted::new(Arc::clone(&durable), visits);
        let apps: Vec<AppRecords> = (0..1_000)
            .map(|i| AppRecords::new(&format!("wx{i:016x}")))
            .collect();
        let quotas = crate::state::memory::MemoryQuotaStore::new();
        for app in &apps {
            quotas
                .acquire(app, Metered::MsgSecCheck, 20_000, 100)
                .await
                .unwrap();
        }
        let holding: std::collections::HashSet<usize> =
            apps.iter().map(|a| shard_of(a.appid())).collect();
        let f = p.flush(&apps, 9_000, 7_200).unwrap();
        assert_eq!((f.apps, f.shards), (1_000, holding.len()));
        assert_eq!(
            durable.all(Kind::CounterShards).unwrap().len(),
            holding.len()
        );
        // One app more: its shard alone, holding every app of that shard.
        quotas
            .acquire(&apps[7], Metered::MsgSecCheck, 20_000, 100)
            .await
            .unwrap();
        let commits = durable.commits();
        let f = p.flush(&apps, 9_001, 7_200).unwrap();
        assert_eq!((f.apps, f.shards), (1, 1));
        assert_eq!(durable.commits(), commits + 1);
        let key = shard_key(shard_of(apps[7].appid()));
        let stored =
            snapshot::decode(&durable.get(Kind::CounterShards, &key).unwrap().unwrap()).unwrap();
        let together = apps
            .iter()
            .filter(|a| shard_of(a.appid()) == shard_of(apps[7].appid()))
            .count();
        assert_eq!(stored.len(), together);
        assert_eq!(stored[apps[7].appid()], Snapshot::of(&apps[7]));
        // Nothing changed: nothing written.
        let f = p.flush(&apps, 9_002, 7_200).unwrap();
        assert_eq!((f.apps, f.shards), (0, 0));
        assert_eq!(durable.commits(), commits + 1);
        drop(p);
        drop(durable);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn rows_of_the_earlier_layout_move_into_shards_and_apps_not_running_keep_theirs() {
        let dir = dir("legacy");
        let durable = Arc::new(Durable::open(&dir, 1 << 20).unwrap());
        let quotas = crate::state::memory::MemoryQuotaStore::new();
        // As the per-app layout wrote them: a running app and one not in this configuration.
        for (appid, used) in [("wx00000000000000aa", 5), ("wx00000000000000bb", 9)] {
            let scratch = AppRecords::new(appid);
            for _ in 0..used {
                quotas
                    .acquire(&scratch, Metered::MsgSecCheck, 20_000, 100)
                    .await
                    .unwrap();
            }
            let json = serde_json::json!({
                "quota": { "msg_sec_check": scratch.quota.word(Metered::MsgSecCheck) },
                "resets": 0,
                "epochs": [[11, null], null],
                "forced": [0, 0, 0],
            });
            durable
                .put(Kind::Counters, appid, json.to_string().as_bytes())
                .unwrap();
        }
        let running = AppRecords::new("wx00000000000000aa");
        {
            let p = Persisted::new(
                Arc::clone(&durable),
                Arc::new(MemoryVisitStore::new(100, 100)),
            );
            p.restore([&running], 9_000, 7_200).unwrap();
            assert_eq!(
                quotas
                    .used(&running, Metered::MsgSecCheck, 20_000)
                    .await
                    .unwrap(),
                5
            );
            assert_eq!(
                running.tokens.lock().unwrap().epochs[0].unwrap().current,
                11
            );
            // The first flush writes both apps into shards and deletes the rows, at once.
            let f = p.flush([&running], 9_000, 7_200).unwrap();
            assert_eq!(f.apps, 0, "nothing changed since the restore");
            assert!(durable.all(Kind::Counters).unwrap().is_empty());
            assert!(!durable.all(Kind::CounterShards).unwrap().is_empty());
        }
        // Restarted with both apps running: each has its own counts back.
        let p = Persisted::new(
            Arc::clone(&durable),
            Arc::new(MemoryVisitStore::new(100, 100)),
        );
        let a = AppRecords::new("wx00000000000000aa");
        let b = AppRecords::new("wx00000000000000bb");
        p.restore([&a, &b], 9_000, 7_200).unwrap();
        for (app, used) in [(&a, 5), (&b, 9)] {
            assert_eq!(
                quotas
                    .used(app, Metered::MsgSecCheck, 20_000)
                    .await
                    .unwrap(),
                used
            );
        }
        drop(p);
        drop(durable);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
