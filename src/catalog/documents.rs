//! The kinds of stored document: how each is read back from the catalog, what is stored, and
//! where it is in force (an app's slot, or the global hash bank). The start-up load, the changes
//! made through the admin API and those heard from other instances all go through here.

use std::sync::Arc;

use super::ChangeError;
use super::watch::Apply;
use crate::clock::SharedClock;
use crate::config::{AppConfig, LimitsConfig, RawApp, TokenConfig};
use crate::engine::table::{CustomTable, TableError};
use crate::jobs::MediaJobs;
use crate::media::bank::{self, Bank};
use crate::risk::{ListEntry, RiskLists};
use crate::state::durable::Kind;
use crate::state::redis::RedisState;
use crate::tenants::{App, AppRegistry};

/// A kind of document the catalog keeps, built.
pub trait Document: Sized + Send + Sync + 'static {
    const KIND: Kind;

    /// Builds the document from what the catalog stores.
    fn parse(json: &[u8]) -> Result<Self, String>;

    /// What the catalog stores.
    fn json(&self) -> Vec<u8>;

    /// The document in force under `key` (none yet: `None`); refused when `key` names nothing
    /// that can hold one.
    fn in_force(place: &InForce, key: &str) -> Result<Option<Arc<Self>>, ChangeError>;

    /// Puts `doc` in force under `key`.
    fn put_in_force(place: &InForce, key: &str, doc: Arc<Self>) -> Result<(), ChangeError>;
}

/// An app's custom keyword table.
impl Document for CustomTable {
    const KIND: Kind = Kind::Keywords;

    fn parse(json: &[u8]) -> Result<Self, String> {
        parse_table(json).map_err(|e| e.to_string())
    }

    fn json(&self) -> Vec<u8> {
        CustomTable::json(self)
    }

    fn in_force(place: &InForce, key: &str) -> Result<Option<Arc<Self>>, ChangeError> {
        Ok(place.app(key)?.slot.table())
    }

    fn put_in_force(place: &InForce, key: &str, doc: Arc<Self>) -> Result<(), ChangeError> {
        place.app(key)?.slot.table.store(Some(doc));
        Ok(())
    }
}

/// A media hash bank: the global one (key [`bank::GLOBAL`]) or an app's.
impl Document for Bank {
    const KIND: Kind = Kind::Banks;

    fn parse(json: &[u8]) -> Result<Self, String> {
        bank::parse_entries(json, false)
            .and_then(Bank::build)
            .map_err(|e| e.to_string())
    }

    fn json(&self) -> Vec<u8> {
        serde_json::to_vec(self.entries()).unwrap_or_default()
    }

    fn in_force(place: &InForce, key: &str) -> Result<Option<Arc<Self>>, ChangeError> {
        if key == bank::GLOBAL {
            return Ok(Some(place.jobs.global_bank.load_full()));
        }
        Ok(place.app_or(key, NO_SUCH_SCOPE)?.slot.bank.load_full())
    }

    fn put_in_force(place: &InForce, key: &str, doc: Arc<Self>) -> Result<(), ChangeError> {
        if key == bank::GLOBAL {
            place.jobs.global_bank.store(doc);
        } else {
            place.app_or(key, NO_SUCH_SCOPE)?.slot.bank.store(Some(doc));
        }
        Ok(())
    }
}

/// An app's risk black and white lists.
impl Document for RiskLists {
    const KIND: Kind = Kind::RiskLists;

    fn parse(json: &[u8]) -> Result<Self, String> {
        serde_json::from_slice::<Vec<ListEntry>>(json)
            .map_err(|e| e.to_string())
            .and_then(|entries| RiskLists::build(entries).map_err(|e| e.to_string()))
    }

    fn json(&self) -> Vec<u8> {
        serde_json::to_vec(&self.entries()).unwrap_or_default()
    }

    fn in_force(place: &InForce, key: &str) -> Result<Option<Arc<Self>>, ChangeError> {
        Ok(place.app(key)?.slot.risk_lists.load_full())
    }

    fn put_in_force(place: &InForce, key: &str, doc: Arc<Self>) -> Result<(), ChangeError> {
        place.app(key)?.slot.risk_lists.store(Some(doc));
        Ok(())
    }
}

/// What a bank change names when its scope is neither `global` nor an app.
pub const NO_SUCH_SCOPE: &str = "no such app (scope is `global` or an appid)";

/// A stored keyword table, built.
pub fn parse_table(json: &[u8]) -> Result<CustomTable, TableError> {
    serde_json::from_slice(json)
        .map_err(|e| TableError::Format(e.to_string()))
        .and_then(CustomTable::build)
}

/// A stored app, validated.
pub fn parse_app(json: &[u8]) -> Result<AppConfig, String> {
    let raw = serde_json::from_slice::<RawApp>(json).map_err(|e| e.to_string())?;
    raw.validate().map_err(|e| e.to_string())
}

/// Where documents are in force, and what an app's runtime form is built with.
#[derive(Clone)]
pub struct InForce {
    pub apps: Arc<AppRegistry>,
    /// Media jobs, which hold the global hash bank.
    pub jobs: Arc<MediaJobs>,
    pub tokens: TokenConfig,
    pub limits: LimitsConfig,
    pub clock: SharedClock,
}

impl InForce {
    /// The runtime form of an app's settings.
    pub fn new_app(&self, config: AppConfig) -> App {
        App::new(config, &self.tokens, &self.limits, &self.clock)
    }

    /// The app registered as `appid`.
    pub fn app(&self, appid: &str) -> Result<Arc<App>, ChangeError> {
        self.app_or(appid, "no such app")
    }

    fn app_or(&self, appid: &str, missing: &'static str) -> Result<Arc<App>, ChangeError> {
        self.apps.get(appid).ok_or(ChangeError::NotFound(missing))
    }
}

/// Changes made on other instances, put in force here.
impl Apply for InForce {
    fn apply(&self, kind: Kind, key: &str, doc: &[u8]) -> Result<(), String> {
        match kind {
            Kind::Apps => {
                let app = parse_app(doc)?;
                self.apps.put(self.new_app(app));
            }
            Kind::Keywords => {
                let table = CustomTable::parse(doc)?;
                let count = table.len();
                CustomTable::put_in_force(self, key, Arc::new(table))
                    .map_err(|_| "the table belongs to no app")?;
                tracing::info!(
                    appid = key,
                    count,
                    "keyword table changed elsewhere, in force"
                );
            }
            Kind::Banks => {
                let bank = Bank::parse(doc)?;
                Bank::put_in_force(self, key, Arc::new(bank))
                    .map_err(|_| "the bank belongs to no app")?;
            }
            Kind::RiskLists => {
                let lists = RiskLists::parse(doc)?;
                RiskLists::put_in_force(self, key, Arc::new(lists))
                    .map_err(|_| "the risk lists belong to no app")?;
            }
            Kind::OpenJobs
            | Kind::Jobs
            | Kind::Review
            | Kind::ReviewAudit
            | Kind::Counters
            | Kind::CounterShards
            | Kind::Visits => {
                return Err("not a catalog kind".into());
            }
        }
        Ok(())
    }

    fn rotated(&self, appid: &str) {
        if let Some(app) = self.apps.get(appid) {
            RedisState::forget_epochs(&app.slot.records);
        }
    }
}
