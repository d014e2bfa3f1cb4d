//! `[risk]`: the user risk model's settings ([`crate::risk`]).

use std::num::NonZeroUsize;
use std::time::Duration;

use serde::Deserialize;

use super::check::Errors;

pub const DEFAULT_HISTORY_HALF_LIFE_SECS: u64 = 1800;
pub const DEFAULT_REGISTRATION_WINDOW_SECS: u64 = 3600;
pub const DEFAULT_MAX_USERS: u64 = 50_000;

/// `[risk]`: the user risk model ([`crate::risk`]).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawRisk {
    pub history_half_life_secs: Option<i64>,
    pub registration_window_secs: Option<i64>,
    pub max_users: Option<i64>,
}

/// Model settings (`[risk]`).
#[derive(Debug, Clone)]
pub struct RiskSettings {
    pub history_half_life: Duration,
    pub registration_window: Duration,
    /// Users (and, separately, registration keys) remembered per app.
    pub max_users: NonZeroUsize,
}

impl Default for RiskSettings {
    fn default() -> Self {
        RiskSettings {
            history_half_life: Duration::from_secs(DEFAULT_HISTORY_HALF_LIFE_SECS),
            registration_window: Duration::from_secs(DEFAULT_REGISTRATION_WINDOW_SECS),
            max_users: NonZeroUsize::new(DEFAULT_MAX_USERS as usize).unwrap_or(NonZeroUsize::MIN),
        }
    }
}

/// Validates `[risk]`, adding every problem to `errs`.
pub(super) fn validate(raw: RawRisk, errs: &mut Errors) -> RiskSettings {
    RiskSettings {
        history_half_life: Duration::from_secs(errs.positive(
            "risk.history_half_life_secs",
            raw.history_half_life_secs,
            DEFAULT_HISTORY_HALF_LIFE_SECS,
            30 * 86_400,
        )),
        registration_window: Duration::from_secs(errs.positive(
            "risk.registration_window_secs",
            raw.registration_window_secs,
            DEFAULT_REGISTRATION_WINDOW_SECS,
            30 * 86_400,
        )),
        max_users: NonZeroUsize::new(errs.positive(
            "risk.max_users",
            raw.max_users,
            DEFAULT_MAX_USERS,
            10_000_000,
        ) as usize)
        .unwrap_or(NonZeroUsize::MIN),
    }
}
