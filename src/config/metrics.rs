//! `[metrics]`: which apps get series of their own in `/metrics`.

use serde::Deserialize;

use super::check::Errors;
use crate::ids::is_valid_appid;

/// At most this many apps get series of their own: each adds a few dozen series.
pub const MAX_APPS_WITH_SERIES: usize = 100;

/// `[metrics]` as written.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawMetrics {
    pub apps: Option<Vec<String>>,
}

/// `[metrics]`, validated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetricsConfig {
    /// Apps whose checks and refusals are counted apart, by appid (the operator's choice, so
    /// the number of series stays bounded whatever clients send).
    pub apps: Vec<String>,
}

pub(super) fn validate(raw: RawMetrics, errs: &mut Errors) -> MetricsConfig {
    let mut apps = raw.apps.unwrap_or_default();
    if apps.len() > MAX_APPS_WITH_SERIES {
        errs.push(
            "metrics.apps",
            format!(
                "{} apps listed; at most {MAX_APPS_WITH_SERIES} get series of their own",
                apps.len()
            ),
        );
    }
    for (i, appid) in apps.iter().enumerate() {
        if !is_valid_appid(appid) {
            errs.push(
                format!("metrics.apps[{i}]"),
                format!("{appid:?} is not an appid (\"wx\" and 16 hex digits)"),
            );
        }
    }
    apps.sort();
    apps.dedup();
    MetricsConfig { apps }
}
