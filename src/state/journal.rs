//! The journal of visits recorded since they were last written to the embedded store.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// Visits waiting for the next flush, at most.
pub const MAX_JOURNAL: usize = 1_000_000;

/// One visit as the journal holds it until it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournaledVisit {
    pub at: u32,
    pub appid: Arc<str>,
    pub openid: Box<str>,
}

/// The visits recorded since the last flush.
#[derive(Debug, Default)]
pub struct VisitJournal {
    entries: Mutex<Vec<JournaledVisit>>,
    /// Visits not journaled because the journal was full.
    pub dropped: AtomicU64,
}

impl VisitJournal {
    pub fn push(&self, visit: JournaledVisit) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() < MAX_JOURNAL {
            entries.push(visit);
        } else {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn take(&self) -> Vec<JournaledVisit> {
        std::mem::take(&mut *self.entries.lock().unwrap_or_else(PoisonError::into_inner))
    }
}
