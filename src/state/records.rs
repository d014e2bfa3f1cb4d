//! What the state backends keep of an app in this process, and how they see an app.
//!
//! The in-process backend keeps its quota counters and token epochs here rather than in maps of
//! its own, and a shared backend its recent answer for the epochs: a request reaches them through
//! the one look-up of its app ([`crate::tenants`] holds these records in each app's slot).

use std::sync::Mutex;

use crate::limits::AppLimits;
use crate::state::memory::QuotaCell;
use crate::token::Epochs;

/// An app's records for the state backends. A shared backend keys by [`AppRecords::appid`];
/// the in-process one keeps its records in the fields.
#[derive(Debug)]
pub struct AppRecords {
    appid: Box<str>,
    /// The in-process quota counters ([`crate::state::memory::MemoryQuotaStore`]).
    pub(crate) quota: QuotaCell,
    /// The in-process token rotation record ([`crate::state::memory::MemoryTokenStore`]).
    pub(crate) epochs: Mutex<Option<Epochs>>,
    /// A shared backend's recent answer for the epochs, and when it was read
    /// ([`crate::state::redis`]): tokens are verified on every request, revocation can wait a
    /// moment.
    pub(crate) shared_epochs: Mutex<Option<(std::time::Instant, Option<Epochs>)>>,
}

impl AppRecords {
    pub fn new(appid: &str) -> Self {
        AppRecords {
            appid: appid.into(),
            quota: QuotaCell::default(),
            epochs: Mutex::new(None),
            shared_epochs: Mutex::new(None),
        }
    }

    pub fn appid(&self) -> &str {
        &self.appid
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
