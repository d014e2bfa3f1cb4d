//! The embedded stores, one redb file per concern, each with its own writer: the catalog
//! (apps, keyword tables, hash banks, risk lists), the media jobs, the review queue, and the
//! counters (quota counts, token rotations, visits). A write waits only for writes of its own
//! concern: a keyword table's replacement never queues behind the counters' flush of 10,000
//! apps or a batch of media jobs. Every write is still committed with an fsync before it is
//! answered or in force.
//!
//! Data directories from before the split hold everything in `modgate.redb`: [`Embedded::open`]
//! copies each kind into its new file, then renames the old file to `modgate.redb.split` (a
//! crash before the rename copies again on the next start; the copies overwrite).

use std::path::Path;
use std::sync::Arc;

use super::durable::{Durable, DurableError, Kind};
use super::metrics::StoreMetrics;

/// Rows copied per transaction when splitting an old store.
const SPLIT_BATCH: usize = 1000;

/// The gateway's embedded stores.
#[derive(Debug, Clone)]
pub struct Embedded {
    pub catalog: Arc<Durable>,
    pub jobs: Arc<Durable>,
    pub review: Arc<Durable>,
    pub counters: Arc<Durable>,
}

/// Each store: its file, its name, what it holds, and its share of the page cache (in
/// quarters).
const LAYOUT: [(&str, &str, &[Kind], usize); 4] = [
    (
        "catalog.redb",
        "catalog",
        &[Kind::Apps, Kind::Keywords, Kind::Banks, Kind::RiskLists],
        1,
    ),
    ("jobs.redb", "jobs", &[Kind::OpenJobs, Kind::Jobs], 1),
    (
        "review.redb",
        "review",
        &[Kind::Review, Kind::ReviewAudit],
        1,
    ),
    (
        "counters.redb",
        "counters",
        &[Kind::Counters, Kind::CounterShards, Kind::Visits],
        1,
    ),
];

impl Embedded {
    /// Opens (creating if needed) the four stores under `dir`, sharing `cache_bytes` of page
    /// cache, splitting an old single-file store first.
    pub fn open(dir: &Path, cache_bytes: usize) -> Result<Embedded, DurableError> {
        let total: usize = LAYOUT.iter().map(|l| l.3).sum();
        let mut opened = Vec::with_capacity(LAYOUT.len());
        for (file, name, kinds, share) in LAYOUT {
            let cache = (cache_bytes / total * share).max(1 << 20);
            opened.push(Arc::new(Durable::open_as(dir, file, name, kinds, cache)?));
        }
        let [catalog, jobs, review, counters]: [Arc<Durable>; 4] = opened
            .try_into()
            .unwrap_or_else(|_| unreachable!("four stores in the layout"));
        let stores = Embedded {
            catalog,
            jobs,
            review,
            counters,
        };
        stores.split_old(dir)?;
        Ok(stores)
    }

    /// Times every store's writes into `metrics`.
    pub fn observe(&self, metrics: &StoreMetrics) {
        for store in [&self.catalog, &self.jobs, &self.review, &self.counters] {
            store.observe(metrics.clone());
        }
    }

    /// The store that holds `kind`.
    pub fn of(&self, kind: Kind) -> &Arc<Durable> {
        match kind {
            Kind::Apps | Kind::Keywords | Kind::Banks | Kind::RiskLists => &self.catalog,
            Kind::OpenJobs | Kind::Jobs => &self.jobs,
            Kind::Review | Kind::ReviewAudit => &self.review,
            Kind::Counters | Kind::CounterShards | Kind::Visits => &self.counters,
        }
    }

    /// Moves what an old single-file store holds into the split stores.
    fn split_old(&self, dir: &Path) -> Result<(), DurableError> {
        let old_path = dir.join("modgate.redb");
        if !old_path.exists() {
            return Ok(());
        }
        let old = Durable::open(dir, 16 << 20)?;
        let mut moved = 0usize;
        for kind in Kind::ALL {
            let into = self.of(kind);
            let mut batch = Vec::with_capacity(SPLIT_BATCH);
            old.scan(kind, |key, value| -> Result<(), DurableError> {
                batch.push(super::durable::Change::Put(
                    kind,
                    key.to_owned(),
                    value.to_vec(),
                ));
                if batch.len() == SPLIT_BATCH {
                    into.apply(&batch)?;
                    moved += batch.len();
                    batch.clear();
                }
                Ok(())
            })?;
            if !batch.is_empty() {
                into.apply(&batch)?;
                moved += batch.len();
            }
        }
        drop(old);
        let kept = dir.join("modgate.redb.split");
        std::fs::rename(&old_path, &kept).map_err(|e| DurableError {
            path: old_path.clone(),
            message: format!("moved into the split stores, but could not be renamed: {e}"),
        })?;
        tracing::info!(
            records = moved,
            kept = %kept.display(),
            "the embedded store was split into one file per concern"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_old_single_file_store_is_split_once_and_nothing_is_lost() {
        let dir = std::env::temp_dir().join(format!("modgate-stores-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        {
            let old = Durable::open(&dir, 1 << 20).unwrap();
            for kind in Kind::ALL {
                for i in 0..(SPLIT_BATCH + 3) {
                    old.put(kind, &format!("{kind:?}-{i:05}"), format!("{i}").as_bytes())
                        .unwrap();
                }
            }
        }
        let stores = Embedded::open(&dir, 4 << 20).unwrap();
        assert!(!dir.join("modgate.redb").exists());
        assert!(dir.join("modgate.redb.split").exists());
        for kind in Kind::ALL {
            let rows = stores.of(kind).all(kind).unwrap();
            assert_eq!(rows.len(), SPLIT_BATCH + 3, "{kind:?}");
            assert_eq!(rows[7], (format!("{kind:?}-00007"), b"7".to_vec()));
        }
        // Each kind lives in its own concern's file only.
        assert!(
            stores.jobs.all(Kind::Apps).is_err(),
            "no apps table in jobs.redb"
        );
        stores.catalog.put(Kind::Apps, "wxnew", b"new").unwrap();
        drop(stores);
        // Reopened: nothing split again, everything still there.
        let stores = Embedded::open(&dir, 4 << 20).unwrap();
        assert_eq!(
            stores.catalog.all(Kind::Apps).unwrap().len(),
            SPLIT_BATCH + 4
        );
        assert_eq!(
            stores.counters.all(Kind::Visits).unwrap().len(),
            SPLIT_BATCH + 3
        );
        drop(stores);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
