//! Tenants: the registry of apps, read on every request, and each app's lasting slot.
//!
//! Every instance keeps all apps in process memory: an app record is a few hundred bytes and a
//! lookup must not cost a network round trip. Later backends persist the registry and push changes
//! into it; readers only ever see whole `Arc<App>` values, so a replaced app is never half-updated.
//!
//! A request finds everything of its app through one look-up: the [`App`] holds the settings, the
//! token key and the rate limiters, and its [`AppSlot`] the keyword table in force and the
//! in-process backend's quota and token records. With thousands of apps each of those would
//! otherwise be a separate cold hash look-up per request (BENCHMARKS.md, "Custom keyword tables at
//! scale").

use std::sync::Arc;

use arc_swap::ArcSwapOption;
use dashmap::DashMap;
use dashmap::mapref::entry::Entry;

use crate::clock::SharedClock;
use crate::config::{AppConfig, LimitsConfig, TokenConfig};
use crate::engine::table::CustomTable;
use crate::limits::AppLimits;
use crate::state::{AppRecords, AppView};
use crate::token::AppKey;

/// A registered app, with its derived token key and its rate limiters.
#[derive(Debug)]
pub struct App {
    pub config: AppConfig,
    pub token_key: AppKey,
    pub limits: AppLimits,
    /// What outlives a replacement of the app's settings.
    pub slot: Arc<AppSlot>,
    /// Set once the registry holds a newer version of the app (new settings, a new secret):
    /// whatever was derived from this version, such as a token it verified, no longer counts.
    replaced: std::sync::atomic::AtomicBool,
}

/// An app's lasting place in this process: made when the app is first registered and handed on
/// to every later version of its settings, so its keyword table, quota counts and token epochs
/// survive a replacement of the app. The state traits take the slot's [`AppRecords`] as the
/// app's key: a shared backend uses its appid, the in-process one keeps its records there.
#[derive(Debug)]
pub struct AppSlot {
    /// The custom keyword table in force; a change swaps the whole `Arc`, so a check that loaded
    /// it sees one table from start to end.
    pub table: ArcSwapOption<CustomTable>,
    /// The app's media hash bank, if it has one.
    pub bank: ArcSwapOption<crate::media::bank::Bank>,
    /// The app's risk black and white lists, if it has any.
    pub risk_lists: ArcSwapOption<crate::risk::RiskLists>,
    /// What this instance has observed of the app's users, for their risk rank.
    pub risk: crate::risk::RiskBook,
    /// What the state backends keep of the app in this process (quota counts, token epochs).
    pub records: AppRecords,
}

impl AppSlot {
    pub fn new(appid: &str) -> Self {
        AppSlot {
            table: ArcSwapOption::empty(),
            bank: ArcSwapOption::empty(),
            risk_lists: ArcSwapOption::empty(),
            risk: crate::risk::RiskBook::default(),
            records: AppRecords::new(appid),
        }
    }

    pub fn appid(&self) -> &str {
        self.records.appid()
    }

    /// The keyword table in force, if the app has one.
    pub fn table(&self) -> Option<Arc<CustomTable>> {
        self.table.load_full()
    }
}

impl App {
    /// Builds the runtime form of an app: its overrides, or the defaults.
    pub fn new(
        config: AppConfig,
        tokens: &TokenConfig,
        limits: &LimitsConfig,
        clock: &SharedClock,
    ) -> Self {
        let token_key = AppKey::derive(
            tokens.key.as_ref().map(|k| k.expose()),
            &config.appid,
            config.secret.expose(),
        );
        let limits = AppLimits::new(
            [
                (
                    config.text_per_minute.unwrap_or(limits.text_per_minute),
                    config.text_per_day.unwrap_or(limits.text_per_day),
                ),
                (
                    config.media_per_minute.unwrap_or(limits.media_per_minute),
                    config.media_per_day.unwrap_or(limits.media_per_day),
                ),
                (
                    config.image_per_minute.unwrap_or(limits.image_per_minute),
                    config.image_per_day.unwrap_or(limits.image_per_day),
                ),
                (limits.visit_report_per_minute, limits.visit_report_per_day),
                (limits.risk_rank_per_minute, limits.risk_rank_per_day),
            ],
            clock,
        );
        let slot = Arc::new(AppSlot::new(&config.appid));
        Self {
            config,
            token_key,
            limits,
            slot,
            replaced: std::sync::atomic::AtomicBool::new(false),
        }
    }

    pub fn appid(&self) -> &str {
        &self.config.appid
    }

    /// The app as rate limits and admission see it.
    pub fn view(&self) -> AppView<'_> {
        AppView {
            records: &self.slot.records,
            limits: &self.limits,
        }
    }

    /// Whether this is the version of the app the registry holds now. Apps are replaced, never
    /// removed, so this answers without a look-up.
    pub fn is_current(&self) -> bool {
        !self.replaced.load(std::sync::atomic::Ordering::Acquire)
    }
}

/// All apps by appid. Only the operator adds keys (clients only look up), so a fast hash that is
/// not built to resist chosen collisions is safe here.
#[derive(Debug)]
pub struct AppRegistry {
    apps: DashMap<String, Arc<App>, foldhash::fast::RandomState>,
    /// Unique among the registries this process ever made (see [`AppRegistry::id`]).
    id: u64,
}

impl Default for AppRegistry {
    fn default() -> Self {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Self {
            apps: DashMap::default(),
            id: NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        }
    }
}

impl AppRegistry {
    /// A registry holding the given apps.
    pub fn new(apps: impl IntoIterator<Item = App>) -> Self {
        let registry = Self::default();
        for app in apps {
            registry.put(app);
        }
        registry
    }

    /// Which registry this is: no two registries of one process share an id, so a record made
    /// from one's apps can tell it is being consulted by another (several gateways in one
    /// process, as in tests, each have their own).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The app, if registered.
    pub fn get(&self, appid: &str) -> Option<Arc<App>> {
        self.apps.get(appid).map(|a| Arc::clone(a.value()))
    }

    /// Adds or replaces an app as one value. A replacement takes over the old version's slot.
    pub fn put(&self, mut app: App) {
        match self.apps.entry(app.config.appid.clone()) {
            Entry::Occupied(mut held) => {
                app.slot = Arc::clone(&held.get().slot);
                let old = held.insert(Arc::new(app));
                old.replaced
                    .store(true, std::sync::atomic::Ordering::Release);
            }
            Entry::Vacant(free) => {
                free.insert(Arc::new(app));
            }
        }
    }

    /// Every registered app (a snapshot).
    pub fn all(&self) -> Vec<Arc<App>> {
        self.apps.iter().map(|a| Arc::clone(a.value())).collect()
    }

    pub fn len(&self) -> usize {
        self.apps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.apps.is_empty()
    }
}
