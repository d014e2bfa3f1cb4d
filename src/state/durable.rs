//! The embedded durable store: a redb database under `state.data_dir` holding what must survive a
//! restart — apps created or replaced through the admin API, custom keyword tables, and media
//! jobs, risk lists and the review queue.
//!
//! Values are JSON documents keyed by appid. Each write is one redb transaction, committed with
//! redb's default immediate durability (fsync before `commit` returns), so an admin call answers
//! only after its change is on disk. Calls block: async callers run them on the blocking pool.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use super::metrics::{SLOW_WRITE, StoreMetrics};

/// What a key-value table holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Apps,
    Keywords,
    /// Unfinished media jobs by trace_id ([`crate::jobs::store`]).
    OpenJobs,
    /// Finished media jobs by trace_id.
    Jobs,
    /// Media hash banks: `global`, or by appid ([`crate::media::bank`]).
    Banks,
    /// Risk black and white lists, by appid ([`crate::risk`]).
    RiskLists,
    /// Review queue items by id ([`crate::review`]).
    Review,
    /// Review decisions, by decision time and id.
    ReviewAudit,
    /// Each app's quota counts, reset allowance and token rotations, one JSON row by appid:
    /// the layout before [`Kind::CounterShards`], read once and then deleted.
    Counters,
    /// Every app's quota counts, reset allowance and token rotations, in shards of apps
    /// (in-process backend only, [`crate::state::persist`]).
    CounterShards,
    /// Visits still making their user fresh, by time, appid and openid.
    Visits,
}

/// One change in a batch written by [`Durable::apply`].
#[derive(Debug, Clone)]
pub enum Change {
    Put(Kind, String, Vec<u8>),
    Delete(Kind, String),
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 11] = [
        Kind::Apps,
        Kind::Keywords,
        Kind::OpenJobs,
        Kind::Jobs,
        Kind::Banks,
        Kind::RiskLists,
        Kind::Review,
        Kind::ReviewAudit,
        Kind::Counters,
        Kind::CounterShards,
        Kind::Visits,
    ];

    fn table(self) -> TableDefinition<'static, &'static str, &'static [u8]> {
        match self {
            Kind::Apps => TableDefinition::new("apps"),
            Kind::Keywords => TableDefinition::new("keywords"),
            Kind::OpenJobs => TableDefinition::new("open_jobs"),
            Kind::Jobs => TableDefinition::new("jobs"),
            Kind::Banks => TableDefinition::new("banks"),
            Kind::RiskLists => TableDefinition::new("risk_lists"),
            Kind::Review => TableDefinition::new("review"),
            Kind::ReviewAudit => TableDefinition::new("review_audit"),
            Kind::Counters => TableDefinition::new("counters"),
            Kind::CounterShards => TableDefinition::new("counter_shards"),
            Kind::Visits => TableDefinition::new("visits"),
        }
    }
}

/// The store could not be opened, read or written.
#[derive(Debug, thiserror::Error)]
#[error("embedded store {path}: {message}")]
pub struct DurableError {
    pub path: PathBuf,
    pub message: String,
}

/// Writes `changes` in `txn`, in order.
fn write_changes(txn: &redb::WriteTransaction, changes: &[Change]) -> Result<(), redb::Error> {
    for change in changes {
        match change {
            Change::Put(kind, key, value) => {
                txn.open_table(kind.table())?
                    .insert(key.as_str(), value.as_slice())?;
            }
            Change::Delete(kind, key) => {
                txn.open_table(kind.table())?.remove(key.as_str())?;
            }
        }
    }
    Ok(())
}

/// The open database.
pub struct Durable {
    db: Database,
    path: PathBuf,
    /// Transactions committed since opening.
    commits: std::sync::atomic::AtomicU64,
    /// The name its metrics and log lines give it.
    name: &'static str,
    /// Where each write's steps are timed, once the gateway's registry exists.
    timings: OnceLock<StoreMetrics>,
}

impl std::fmt::Debug for Durable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Durable")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Durable {
    /// Opens (creating if needed) `dir/modgate.redb` holding every kind, with a page cache of
    /// `cache_bytes`: one file for everything (the gateway keeps one per concern,
    /// [`super::stores::Embedded`]).
    pub fn open(dir: &Path, cache_bytes: usize) -> Result<Durable, DurableError> {
        Durable::open_as(dir, "modgate.redb", "store", &Kind::ALL, cache_bytes)
    }

    /// Opens (creating if needed) `dir/file`, holding `kinds`, named `name` in metrics and logs.
    pub fn open_as(
        dir: &Path,
        file: &str,
        name: &'static str,
        kinds: &[Kind],
        cache_bytes: usize,
    ) -> Result<Durable, DurableError> {
        let path = dir.join(file);
        let err = |message: String| DurableError {
            path: path.clone(),
            message,
        };
        std::fs::create_dir_all(dir)
            .map_err(|e| err(format!("cannot create the directory: {e}")))?;
        let db = redb::Builder::new()
            .set_cache_size(cache_bytes)
            .create(&path)
            .map_err(|e| err(e.to_string()))?;
        let durable = Durable {
            db,
            path: path.clone(),
            commits: std::sync::atomic::AtomicU64::new(0),
            name,
            timings: OnceLock::new(),
        };
        // Create the tables up front so reads never meet a missing table.
        durable.write(|txn| {
            for kind in kinds {
                txn.open_table(kind.table())?;
            }
            Ok(())
        })?;
        Ok(durable)
    }

    fn err(&self, e: impl std::fmt::Display) -> DurableError {
        DurableError {
            path: self.path.clone(),
            message: e.to_string(),
        }
    }

    /// Times every write's steps into `metrics` from now on.
    pub fn observe(&self, metrics: StoreMetrics) {
        let _ = self.timings.set(metrics);
    }

    /// One write transaction: waits for the store's writer slot, runs `f`, commits (an fsync).
    /// Each step is timed; a write slower than [`SLOW_WRITE`] in all is counted and logged
    /// with the step that took longest.
    fn write(
        &self,
        f: impl FnOnce(&redb::WriteTransaction) -> Result<(), redb::Error>,
    ) -> Result<(), DurableError> {
        let start = Instant::now();
        let txn = self.db.begin_write().map_err(|e| self.err(e))?;
        let begun = Instant::now();
        f(&txn).map_err(|e| self.err(e))?;
        let written = Instant::now();
        txn.commit().map_err(|e| self.err(e))?;
        let committed = Instant::now();
        self.commits
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.timed([
            ("wait", begun - start),
            ("write", written - begun),
            ("commit", committed - written),
        ]);
        Ok(())
    }

    fn timed(&self, steps: [(&'static str, Duration); 3]) {
        let Some(m) = self.timings.get() else {
            return;
        };
        for (step, took) in steps {
            m.seconds
                .with_label_values(&[self.name, step])
                .observe(took.as_secs_f64());
        }
        let total: Duration = steps.iter().map(|(_, d)| *d).sum();
        if total > SLOW_WRITE {
            let (longest, _) = steps
                .iter()
                .copied()
                .max_by_key(|(_, d)| *d)
                .unwrap_or(("commit", total));
            m.slow.with_label_values(&[self.name, longest]).inc();
            let ms = |d: Duration| d.as_secs_f64() * 1000.0;
            tracing::warn!(
                store = self.name,
                step = longest,
                total_ms = ms(total),
                wait_ms = ms(steps[0].1),
                write_ms = ms(steps[1].1),
                commit_ms = ms(steps[2].1),
                "slow store write"
            );
        }
    }

    /// Transactions committed since the store was opened (each one an fsync).
    pub fn commits(&self) -> u64 {
        self.commits.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Stores `value` under `key`, replacing what was there.
    pub fn put(&self, kind: Kind, key: &str, value: &[u8]) -> Result<(), DurableError> {
        self.write(|txn| {
            txn.open_table(kind.table())?.insert(key, value)?;
            Ok(())
        })
    }

    /// Applies every change in one transaction: one fsync for the lot (group commit).
    pub fn apply(&self, changes: &[Change]) -> Result<(), DurableError> {
        self.write(|txn| write_changes(txn, changes))
    }

    /// Applies every change and removes every key of `trim` below `below` (when given), in one
    /// transaction.
    pub fn apply_and_trim(
        &self,
        changes: &[Change],
        trim: Kind,
        below: Option<&str>,
    ) -> Result<(), DurableError> {
        self.write(|txn| {
            write_changes(txn, changes)?;
            if let Some(below) = below {
                txn.open_table(trim.table())?
                    .retain_in::<&str, _>(..below, |_, _| false)?;
            }
            Ok(())
        })
    }

    /// Calls `f` with every `(key, value)` stored from `from` on, in key order, stopping at the
    /// first error `f` returns.
    pub fn scan_from<E: From<DurableError>>(
        &self,
        kind: Kind,
        from: &str,
        mut f: impl FnMut(&str, &[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = txn.open_table(kind.table()).map_err(|e| self.err(e))?;
        for item in table.range::<&str>(from..).map_err(|e| self.err(e))? {
            let (k, v) = item.map_err(|e| self.err(e))?;
            f(k.value(), v.value())?;
        }
        Ok(())
    }

    /// The value stored under `key`, if any.
    pub fn get(&self, kind: Kind, key: &str) -> Result<Option<Vec<u8>>, DurableError> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = txn.open_table(kind.table()).map_err(|e| self.err(e))?;
        let found = table.get(key).map_err(|e| self.err(e))?;
        Ok(found.map(|v| v.value().to_vec()))
    }

    /// Calls `f` with every stored `(key, value)`, in key order, one at a time (without holding
    /// them all in memory), stopping at the first error `f` returns.
    pub fn scan<E: From<DurableError>>(
        &self,
        kind: Kind,
        mut f: impl FnMut(&str, &[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = txn.open_table(kind.table()).map_err(|e| self.err(e))?;
        for item in table.iter().map_err(|e| self.err(e))? {
            let (k, v) = item.map_err(|e| self.err(e))?;
            f(k.value(), v.value())?;
        }
        Ok(())
    }

    /// Every stored `(key, value)`, in key order.
    pub fn all(&self, kind: Kind) -> Result<Vec<(String, Vec<u8>)>, DurableError> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = txn.open_table(kind.table()).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for item in table.iter().map_err(|e| self.err(e))? {
            let (k, v) = item.map_err(|e| self.err(e))?;
            out.push((k.value().to_owned(), v.value().to_vec()));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_survive_reopening() {
        let dir = std::env::temp_dir().join(format!("modgate-durable-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        {
            let d = Durable::open(&dir, 1 << 20).unwrap();
            d.put(Kind::Apps, "wx1", b"one").unwrap();
            d.put(Kind::Apps, "wx1", b"two").unwrap();
            d.put(Kind::Keywords, "wx1", b"[]").unwrap();
        }
        let d = Durable::open(&dir, 1 << 20).unwrap();
        assert_eq!(
            d.all(Kind::Apps).unwrap(),
            [("wx1".to_owned(), b"two".to_vec())]
        );
        assert_eq!(d.all(Kind::Keywords).unwrap().len(), 1);
        assert_eq!(
            d.get(Kind::Apps, "wx1").unwrap().as_deref(),
            Some(&b"two"[..])
        );
        assert_eq!(d.get(Kind::Apps, "wx2").unwrap(), None);
        // A second open of the same file in one process is refused, with the path in the error.
        let e = Durable::open(&dir, 1 << 20).unwrap_err().to_string();
        assert!(e.contains("modgate.redb"), "{e}");
    }

    #[test]
    fn every_write_is_timed_by_step_and_a_slow_one_is_counted_by_its_longest_step() {
        let dir =
            std::env::temp_dir().join(format!("modgate-durable-timed-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let registry = prometheus::Registry::new();
        let metrics = StoreMetrics::new(&registry).unwrap();
        let d = Durable::open_as(&dir, "timed.redb", "catalog", &[Kind::Apps], 1 << 20).unwrap();
        d.observe(metrics.clone());
        d.put(Kind::Apps, "wx1", b"one").unwrap();
        for step in ["wait", "write", "commit"] {
            let h = metrics.seconds.with_label_values(&["catalog", step]);
            assert_eq!(h.get_sample_count(), 1, "{step}");
        }
        assert_eq!(
            metrics.slow.with_label_values(&["catalog", "write"]).get(),
            0
        );
        // A transaction that takes 60 ms of work: slow, and the work is what took the time.
        d.write(|txn| {
            std::thread::sleep(Duration::from_millis(60));
            txn.open_table(Kind::Apps.table())?
                .insert("wx2", &b"two"[..])?;
            Ok(())
        })
        .unwrap();
        assert_eq!(
            metrics.slow.with_label_values(&["catalog", "write"]).get(),
            1
        );
        assert_eq!(
            metrics.slow.with_label_values(&["catalog", "commit"]).get(),
            0
        );
        drop(d);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
