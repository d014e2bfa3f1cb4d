//! The catalog: what the operator configures through the admin API and every instance must see
//! (apps made or replaced there, custom keyword tables, media hash banks, risk lists), stored as
//! JSON documents by kind and key; the one way such a document changes ([`change`]); and what
//! each kind is and where it is in force ([`documents`]).
//!
//! Two implementations: the embedded store ([`Durable`]) for one process, and [`RedisCatalog`]
//! for instances sharing Redis. Calls block (they are rare, and their callers already work on the
//! blocking pool). A Redis write is one script that stores the document, bumps its version and
//! publishes `kind<TAB>key<TAB>version` on the change channel; every instance's
//! [`watch`] task applies what it hears, and after any gap in its subscription (a restart of
//! Redis, a network fault) compares every version with what it holds, so no change is missed for
//! long.

pub mod change;
pub mod documents;
pub mod edits;
pub mod redis;
pub mod watch;

use crate::state::durable::{Durable, DurableError, Kind};

pub use change::{Changed, Documents, Write};
pub use redis::RedisCatalog;

/// The catalog could not be read or written, or a document in it could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    /// A conditional write was not made: the document changed since the version the writer
    /// held ([`Catalog::put_over`]).
    #[error("changed on another instance meanwhile")]
    ChangedMeanwhile,
    /// The store did not answer, or failed.
    #[error("{0}")]
    Store(String),
    /// A stored document could not be used (the message names it), or a scan's visitor
    /// stopped the scan.
    #[error("{0}")]
    Document(String),
}

/// Why a change was not made. Nothing changed in any case.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// The change itself is invalid (the message says why).
    #[error("{0}")]
    Invalid(String),
    /// What the change names does not exist (the message says what).
    #[error("{0}")]
    NotFound(&'static str),
    /// Another instance changed the document meanwhile: read it again and retry.
    #[error("changed on another instance meanwhile; nothing changed: read it again and retry")]
    Conflict,
    /// The catalog could not store it.
    #[error("the change could not be stored; nothing changed")]
    Store(CatalogError),
    /// The task that built it failed.
    #[error("the change failed; nothing changed")]
    Failed(String),
}

impl From<CatalogError> for ChangeError {
    fn from(e: CatalogError) -> Self {
        match e {
            CatalogError::ChangedMeanwhile => ChangeError::Conflict,
            other => ChangeError::Store(other),
        }
    }
}

impl From<DurableError> for CatalogError {
    fn from(e: DurableError) -> Self {
        CatalogError::Store(e.to_string())
    }
}

/// What [`Catalog::scan`] calls with each document.
pub type Visit<'a> = dyn FnMut(&str, &[u8]) -> Result<(), CatalogError> + 'a;

/// The kinds a catalog holds.
pub const KINDS: [Kind; 4] = [Kind::Apps, Kind::Keywords, Kind::Banks, Kind::RiskLists];

/// A store of documents by kind and key, shared by every instance of a deployment.
pub trait Catalog: Send + Sync + 'static {
    /// The document under `key`, if any.
    fn get(&self, kind: Kind, key: &str) -> Result<Option<Vec<u8>>, CatalogError>;

    /// Stores `value` under `key`; every instance sees it. Returns once the store has it.
    fn put(&self, kind: Kind, key: &str, value: &[u8]) -> Result<(), CatalogError>;

    /// The version of the document this instance holds in force (0: none), for
    /// [`Catalog::put_over`]. One process serialises its own writes, so the embedded catalog
    /// needs none.
    fn held(&self, _kind: Kind, _key: &str) -> u64 {
        0
    }

    /// Stores `value` if the stored document is still the version `held` (read-modify-write
    /// changes made on two instances at once must not lose one another); otherwise refuses with
    /// [`CatalogError::ChangedMeanwhile`]. The embedded catalog writes unconditionally.
    fn put_over(
        &self,
        kind: Kind,
        key: &str,
        value: &[u8],
        _held: u64,
    ) -> Result<(), CatalogError> {
        self.put(kind, key, value)
    }

    /// Calls `f` with every document of `kind`, one at a time, stopping at `f`'s first error.
    fn scan(&self, kind: Kind, f: &mut Visit<'_>) -> Result<(), CatalogError>;
}

impl Catalog for Durable {
    fn get(&self, kind: Kind, key: &str) -> Result<Option<Vec<u8>>, CatalogError> {
        Ok(Durable::get(self, kind, key)?)
    }

    fn put(&self, kind: Kind, key: &str, value: &[u8]) -> Result<(), CatalogError> {
        Ok(Durable::put(self, kind, key, value)?)
    }

    fn scan(&self, kind: Kind, f: &mut Visit<'_>) -> Result<(), CatalogError> {
        Durable::scan(self, kind, f)
    }
}

pub(crate) fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Apps => "apps",
        Kind::Keywords => "keywords",
        Kind::Banks => "banks",
        Kind::RiskLists => "risk_lists",
        Kind::OpenJobs => "open_jobs",
        Kind::Jobs => "jobs",
        Kind::Review => "review",
        Kind::ReviewAudit => "review_audit",
        Kind::Counters => "counters",
        Kind::CounterShards => "counter_shards",
        Kind::Visits => "visits",
    }
}

pub(crate) fn kind_named(name: &str) -> Option<Kind> {
    KINDS.into_iter().find(|k| kind_name(*k) == name)
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)] // tests fail loudly on unexpected errors

    use super::*;

    /// What every catalog does: absent until put, the latest put wins, every document scanned
    /// once (300 documents: more than one page of Redis's HSCAN).
    pub(crate) fn conformance(c: &dyn Catalog) {
        assert_eq!(c.get(Kind::Keywords, "wx1").unwrap(), None);
        c.put(Kind::Keywords, "wx1", b"[1]").unwrap();
        c.put(Kind::Keywords, "wx1", b"[2]").unwrap();
        c.put(Kind::Banks, "wx1", b"[3]").unwrap();
        assert_eq!(
            c.get(Kind::Keywords, "wx1").unwrap().as_deref(),
            Some(&b"[2]"[..])
        );
        for i in 0..300 {
            c.put(Kind::Apps, &format!("wx{i:016}"), format!("{i}").as_bytes())
                .unwrap();
        }
        let mut seen = std::collections::HashMap::new();
        c.scan(Kind::Apps, &mut |key, doc| {
            assert!(
                seen.insert(key.to_owned(), doc.to_vec()).is_none(),
                "{key} twice"
            );
            Ok(())
        })
        .unwrap();
        assert_eq!(seen.len(), 300);
        assert_eq!(seen["wx0000000000000042"], b"42");
        // The first error stops the scan and is returned.
        let mut calls = 0;
        let e = c
            .scan(Kind::Apps, &mut |_, _| {
                calls += 1;
                Err(CatalogError::Document("stop".into()))
            })
            .unwrap_err();
        assert_eq!((e, calls), (CatalogError::Document("stop".into()), 1));
    }

    #[test]
    fn the_embedded_catalog_passes_the_conformance_suite() {
        let dir = std::env::temp_dir().join(format!("modgate-catalog-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        conformance(&Durable::open(&dir, 1 << 20).unwrap());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
