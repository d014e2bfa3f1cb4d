//! What the in-process backend keeps across restarts: each app's daily quota counts, its
//! monthly `clear_quota` allowance and its token rotations, and the visits that still make
//! their users fresh. Written behind the request path into the embedded store
//! ([`super::durable`]): the gateway calls [`Persisted::flush`] every second and once more at
//! shutdown, so a restart never hands a tenant a fresh quota or brings back a rotated token, and
//! a `kill -9` loses at most the last second.
//!
//! - Counters: one small JSON record per app (`counters` table, by appid), the quota words as
//!   they are in memory (each carries its day or month) and the token record; written when it
//!   changed since the last flush.
//! - Visits: one row per recorded visit (`visits` table), keyed by the visit time
//!   (zero-padded seconds), the appid and the openid, so the rows past freshness are one range
//!   at the front, dropped every minute. A user's repeated visits are several rows until the
//!   older ones age out; restoring keeps the latest. The visits recorded since the last flush
//!   wait in a journal of at most [`MAX_JOURNAL`] entries; past it (a flood of reports within
//!   one second) the rest are held in memory only and counted, not written.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};

use super::AppRecords;
use super::durable::{Change, Durable, DurableError, Kind};
pub use super::journal::MAX_JOURNAL;
use super::memory::MemoryVisitStore;
use crate::limits::Metered;
use crate::token::{Epochs, Forced};

/// An app's counters as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Counters {
    /// The quota words by API name (each packs its day and count).
    quota: HashMap<String, u64>,
    /// The reset allowance word (month and count).
    resets: u64,
    /// Token epochs by lineage (`token`, `stable`): current and previous issue times.
    epochs: [Option<(u64, Option<u64>)>; 2],
    /// Forced refreshes of the stable token: day, count, last (ms).
    forced: (u32, u32, u64),
}

/// An app's counters as held in memory: what a flush compares with what it last wrote (no
/// allocation), building the stored [`Counters`] only for an app whose counters changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Snapshot {
    quota: [u64; Metered::ALL.len()],
    resets: u64,
    epochs: [Option<Epochs>; 2],
    forced: Forced,
}

impl Snapshot {
    fn of(records: &AppRecords) -> Snapshot {
        let tokens = *records
            .tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        Snapshot {
            quota: Metered::ALL.map(|api| records.quota.word(api)),
            resets: records.quota.resets_word(),
            epochs: tokens.epochs,
            forced: tokens.forced,
        }
    }

    fn stored(&self) -> Counters {
        Counters {
            quota: Metered::ALL
                .iter()
                .zip(self.quota)
                .map(|(api, word)| (api.as_str().to_owned(), word))
                .collect(),
            resets: self.resets,
            epochs: self.epochs.map(|e| e.map(|e| (e.current, e.previous))),
            forced: (self.forced.day, self.forced.count, self.forced.last_ms),
        }
    }
}

fn restore_counters(records: &AppRecords, c: &Counters) {
    for api in Metered::ALL {
        if let Some(word) = c.quota.get(api.as_str()) {
            records.quota.set_word(api, *word);
        }
    }
    records.quota.set_resets_word(c.resets);
    let mut tokens = records
        .tokens
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    tokens.epochs = c
        .epochs
        .map(|e| e.map(|(current, previous)| Epochs { current, previous }));
    tokens.forced = Forced {
        day: c.forced.0,
        count: c.forced.1,
        last_ms: c.forced.2,
    };
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
    /// What each app's counters were when last written.
    written: Mutex<HashMap<String, Snapshot>>,
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
    pub apps: usize,
    pub visits: usize,
}

impl Persisted {
    /// Persistence of `visits` (whose journal it turns on) and of apps' counters, in `durable`.
    pub fn new(durable: Arc<Durable>, visits: Arc<MemoryVisitStore>) -> Self {
        visits.keep_journal();
        Persisted {
            durable,
            visits,
            written: Mutex::new(HashMap::new()),
            pruned_at: AtomicU64::new(0),
        }
    }

    /// Puts back what was stored for `apps` (their counters) and every visit still fresh at
    /// `now_secs`; returns how many visits. A record that cannot be read is logged and skipped.
    pub fn restore<'a>(
        &self,
        apps: impl IntoIterator<Item = &'a AppRecords>,
        now_secs: u64,
        ttl_secs: u64,
    ) -> Result<usize, DurableError> {
        let mut written = self.written.lock().unwrap_or_else(PoisonError::into_inner);
        for records in apps {
            let Some(bytes) = self.durable.get(Kind::Counters, records.appid())? else {
                continue;
            };
            match serde_json::from_slice::<Counters>(&bytes) {
                Ok(c) => {
                    restore_counters(records, &c);
                    written.insert(records.appid().to_owned(), Snapshot::of(records));
                }
                Err(e) => tracing::error!(
                    appid = records.appid(),
                    error = %e,
                    "stored quota and token counters unreadable; starting from none"
                ),
            }
        }
        drop(written);
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

    /// Writes what changed since the last flush, in one transaction: the counters of `apps`
    /// that changed and the journaled visits; once a minute, drops the visit rows that no
    /// longer make anyone fresh at `now_secs`.
    pub fn flush<'a>(
        &self,
        apps: impl IntoIterator<Item = &'a AppRecords>,
        now_secs: u64,
        ttl_secs: u64,
    ) -> Result<Flushed, DurableError> {
        let mut changes = Vec::new();
        let mut changed = Vec::new();
        {
            let written = self.written.lock().unwrap_or_else(PoisonError::into_inner);
            for records in apps {
                let now = Snapshot::of(records);
                if written.get(records.appid()) != Some(&now) {
                    let json = serde_json::to_vec(&now.stored()).unwrap_or_default();
                    changes.push(Change::Put(
                        Kind::Counters,
                        records.appid().to_owned(),
                        json,
                    ));
                    changed.push((records.appid().to_owned(), now));
                }
            }
        }
        let visits = self.visits.take_journal();
        let flushed = Flushed {
            apps: changed.len(),
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
            // Written next time: the journal's entries go back, the counters stay unwritten.
            self.visits.rejournal(visits);
            return Err(e);
        }
        if prune {
            self.pruned_at.store(now_secs, Ordering::Relaxed);
        }
        let mut written = self.written.lock().unwrap_or_else(PoisonError::into_inner);
        written.extend(changed);
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
            assert_eq!(f, Flushed { apps: 1, visits: 2 });
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
}
