//! The registry of apps, read on every request.
//!
//! Every instance keeps all apps in process memory: an app record is a few hundred bytes and a
//! lookup must not cost a network round trip. Later backends persist the registry and push changes
//! into it; readers only ever see whole `Arc<App>` values, so a replaced app is never half-updated.

use std::sync::Arc;

use dashmap::DashMap;

use crate::clock::SharedClock;
use crate::config::{AppConfig, LimitsConfig, TokenConfig};
use crate::limits::AppLimits;
use crate::token::AppKey;

/// A registered app, with its derived token key and its rate limiters.
#[derive(Debug)]
pub struct App {
    pub config: AppConfig,
    pub token_key: AppKey,
    pub limits: AppLimits,
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
            (
                config.text_per_minute.unwrap_or(limits.text_per_minute),
                config.text_per_day.unwrap_or(limits.text_per_day),
            ),
            (
                config.media_per_minute.unwrap_or(limits.media_per_minute),
                config.media_per_day.unwrap_or(limits.media_per_day),
            ),
            clock,
        );
        Self {
            config,
            token_key,
            limits,
        }
    }

    pub fn appid(&self) -> &str {
        &self.config.appid
    }
}

/// All apps by appid.
#[derive(Debug, Default)]
pub struct AppRegistry {
    apps: DashMap<String, Arc<App>>,
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

    /// The app, if registered.
    pub fn get(&self, appid: &str) -> Option<Arc<App>> {
        self.apps.get(appid).map(|a| Arc::clone(a.value()))
    }

    /// Adds or replaces an app as one value.
    pub fn put(&self, app: App) {
        self.apps.insert(app.config.appid.clone(), Arc::new(app));
    }

    pub fn len(&self) -> usize {
        self.apps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.apps.is_empty()
    }
}
