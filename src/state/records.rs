//! What the state backends keep of an app in this process, and how they see an app.
//!
//! The in-process backend keeps its quota counters and token epochs here rather than in maps of
//! its own, and a shared backend its recent answer for the epochs: a request reaches them through
//! the one look-up of its app ([`crate::tenants`] holds these records in each app's slot).

use std::sync::Mutex;

use crate::limits::AppLimits;
use crate::state::memory::QuotaCell;
use crate::token::{Epochs, Forced, Lineage};

/// An app's records for the state backends. A shared backend keys by [`AppRecords::appid`];
/// the in-process one keeps its records in the fields.
#[derive(Debug)]
pub struct AppRecords {
    appid: Box<str>,
    /// The in-process quota counters ([`crate::state::memory::MemoryQuotaStore`]).
    pub(crate) quota: QuotaCell,
    /// The in-process token rotation record ([`crate::state::memory::MemoryTokenStore`]).
    pub(crate) tokens: Mutex<TokenRecord>,
    /// A shared backend's recent answer for the epochs of each [`Lineage`], and when it was read
    /// ([`crate::state::redis`]): tokens are verified on every request, revocation can wait a
    /// moment.
    pub(crate) shared_epochs: Mutex<[Option<SharedRead>; 2]>,
}

impl AppRecords {
    pub fn new(appid: &str) -> Self {
        AppRecords {
            appid: appid.into(),
            quota: QuotaCell::default(),
            tokens: Mutex::new(TokenRecord::default()),
            shared_epochs: Mutex::new([None; 2]),
        }
    }

    pub fn appid(&self) -> &str {
        &self.appid
    }
}

/// A shared backend's answer for one lineage's epochs, and when it was read.
pub(crate) type SharedRead = (std::time::Instant, Option<Epochs>);

/// An app's token state in the in-process backend: the epochs of each lineage, and its forced
/// stable-token refreshes.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct TokenRecord {
    pub(crate) epochs: [Option<Epochs>; 2],
    pub(crate) forced: Forced,
}

impl TokenRecord {
    pub(crate) fn epochs(&self, lineage: Lineage) -> Option<Epochs> {
        self.epochs[lineage.index()]
    }
}

/// An app as rate limits and admission see it: its records, and the limits of the version of
/// its settings in force.
#[derive(Debug, Clone, Copy)]
pub struct AppView<'a> {
    pub records: &'a AppRecords,
    pub limits: &'a AppLimits,
}

impl AppView<'_> {
    pub fn appid(&self) -> &str {
        self.records.appid()
    }
}
