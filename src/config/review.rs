//! `[review]`: the human review queue's settings ([`crate::review`]).

use std::time::Duration;

use serde::Deserialize;

use super::check::Errors;

/// One `pass` verdict in this many is sampled for review.
pub const DEFAULT_PASS_SAMPLE_EVERY: u64 = 1000;
pub const DEFAULT_MAX_ITEMS_PER_APP: u64 = 10_000;
/// Seven days.
pub const DEFAULT_RETENTION_SECS: u64 = 7 * 86_400;
pub const DEFAULT_CLAIM_SECS: u64 = 900;

/// `[review]`: the human review queue ([`crate::review`]).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawReview {
    pub pass_sample_every: Option<i64>,
    pub max_items_per_app: Option<i64>,
    pub retention_secs: Option<i64>,
    pub claim_secs: Option<i64>,
}

/// `[review]`, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct ReviewSettings {
    /// One `pass` verdict in this many is sampled for review; 0 samples none.
    pub pass_sample_every: u64,
    pub max_items_per_app: usize,
    pub retention: Duration,
    pub claim: Duration,
}

impl Default for ReviewSettings {
    fn default() -> Self {
        ReviewSettings {
            pass_sample_every: DEFAULT_PASS_SAMPLE_EVERY,
            max_items_per_app: DEFAULT_MAX_ITEMS_PER_APP as usize,
            retention: Duration::from_secs(DEFAULT_RETENTION_SECS),
            claim: Duration::from_secs(DEFAULT_CLAIM_SECS),
        }
    }
}

/// Validates `[review]`, adding every problem to `errs`.
pub(super) fn validate(raw: RawReview, errs: &mut Errors) -> ReviewSettings {
    ReviewSettings {
        pass_sample_every: match raw.pass_sample_every {
            None => DEFAULT_PASS_SAMPLE_EVERY,
            Some(0) => 0,
            v => errs.positive(
                "review.pass_sample_every",
                v,
                DEFAULT_PASS_SAMPLE_EVERY,
                1_000_000_000,
            ),
        },
        max_items_per_app: errs.positive(
            "review.max_items_per_app",
            raw.max_items_per_app,
            DEFAULT_MAX_ITEMS_PER_APP,
            1_000_000,
        ) as usize,
        retention: Duration::from_secs(errs.positive(
            "review.retention_secs",
            raw.retention_secs,
            DEFAULT_RETENTION_SECS,
            366 * 86_400,
        )),
        claim: Duration::from_secs(errs.positive(
            "review.claim_secs",
            raw.claim_secs,
            DEFAULT_CLAIM_SECS,
            86_400,
        )),
    }
}
