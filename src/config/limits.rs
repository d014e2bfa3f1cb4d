//! `[limits]`: rate limits, daily quotas and visit freshness.

use std::num::{NonZeroU32, NonZeroUsize};
use std::time::Duration;

use serde::Deserialize;

use super::check::Errors;

pub const DEFAULT_TEXT_PER_MINUTE: u64 = 4000;
pub const DEFAULT_MEDIA_PER_MINUTE: u64 = 2000;
pub const DEFAULT_TEXT_PER_DAY: u64 = 2_000_000;
pub const DEFAULT_MEDIA_PER_DAY: u64 = 200_000;
/// `/wxa/img_sec_check`'s own limits, as the platform documents them.
pub const DEFAULT_IMAGE_PER_MINUTE: u64 = 1000;
pub const DEFAULT_IMAGE_PER_DAY: u64 = 100_000;
/// Visit reports (each of up to 1000 openids) an app may make per minute and per day.
pub const DEFAULT_VISIT_REPORT_PER_MINUTE: u64 = 2000;
pub const DEFAULT_VISIT_REPORT_PER_DAY: u64 = 1_000_000;
/// getUserRiskRank calls per minute and per day.
pub const DEFAULT_RISK_RANK_PER_MINUTE: u64 = 2000;
pub const DEFAULT_RISK_RANK_PER_DAY: u64 = 1_000_000;
/// China's offset from UTC (no DST): the platform's quota day starts at midnight there.
pub const DEFAULT_DAY_OFFSET_HOURS: i8 = 8;
pub const DEFAULT_RESETS_PER_MONTH: u32 = 10;
/// A user must have visited within 120 minutes.
pub const DEFAULT_VISIT_TTL_SECS: u64 = 7200;
pub const DEFAULT_MAX_VISITS: u64 = 20_000_000;
pub const DEFAULT_VISIT_SWEEP_SECS: u64 = 60;

/// Whether a check that names a user needs a recent visit of theirs (SPEC §5, §12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VisitCheck {
    /// The 120-minute rule: a user not seen by `/wxa/visit/report` (or a login) is 61010.
    #[default]
    Report,
    /// No visit rule: never 61010. Rate limits and quotas apply as before.
    Off,
}

impl VisitCheck {
    pub fn as_str(self) -> &'static str {
        match self {
            VisitCheck::Report => "report",
            VisitCheck::Off => "off",
        }
    }

    /// `key`'s value, checked; `None` (after recording the problem) when it is neither word.
    pub(super) fn parse(errs: &mut Errors, key: &str, value: &str) -> Option<VisitCheck> {
        match value {
            "report" => Some(VisitCheck::Report),
            "off" => Some(VisitCheck::Off),
            other => {
                errs.push(key, format!("{other:?} must be \"report\" or \"off\""));
                None
            }
        }
    }
}

/// `[limits]`: rate limits, daily quotas and visit freshness.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawLimits {
    pub enforce: Option<bool>,
    pub text_per_minute: Option<i64>,
    pub media_per_minute: Option<i64>,
    pub text_per_day: Option<i64>,
    pub media_per_day: Option<i64>,
    pub image_per_minute: Option<i64>,
    pub image_per_day: Option<i64>,
    pub visit_report_per_minute: Option<i64>,
    pub visit_report_per_day: Option<i64>,
    pub risk_rank_per_minute: Option<i64>,
    pub risk_rank_per_day: Option<i64>,
    pub day_offset_hours: Option<i64>,
    pub resets_per_month: Option<i64>,
    pub visit_ttl_secs: Option<i64>,
    pub max_visits: Option<i64>,
    pub max_visits_per_app: Option<i64>,
    pub visit_sweep_secs: Option<i64>,
    pub visit_check: Option<String>,
}

/// Validated `[limits]`.
#[derive(Debug, Clone)]
pub struct LimitsConfig {
    /// `false` skips rate limits, quotas and the visit check (benchmarks and tests only).
    pub enforce: bool,
    pub text_per_minute: NonZeroU32,
    pub media_per_minute: NonZeroU32,
    pub text_per_day: NonZeroU32,
    pub media_per_day: NonZeroU32,
    /// `/wxa/img_sec_check` (v1 synchronous image check).
    pub image_per_minute: NonZeroU32,
    pub image_per_day: NonZeroU32,
    /// `/wxa/visit/report`.
    pub visit_report_per_minute: NonZeroU32,
    pub visit_report_per_day: NonZeroU32,
    /// `/wxa/getuserriskrank`.
    pub risk_rank_per_minute: NonZeroU32,
    pub risk_rank_per_day: NonZeroU32,
    /// The quota day's offset from UTC (China: +8, no DST).
    pub day_offset_hours: i8,
    pub resets_per_month: u32,
    pub visit_ttl: Duration,
    pub max_visits: NonZeroUsize,
    /// Users with a fresh visit one app may hold (in process and in Redis); by default a tenth
    /// of `max_visits`.
    pub max_visits_per_app: NonZeroUsize,
    pub visit_sweep: Duration,
    /// The visit rule of apps that do not set their own.
    pub visit_check: VisitCheck,
}

/// Validates `[limits]`, adding every problem to `errs`.
pub(super) fn validate(raw: RawLimits, errs: &mut Errors) -> LimitsConfig {
    let nz = |v: u64| NonZeroU32::new(v as u32).unwrap_or(NonZeroU32::MIN);
    let max_visits = errs.positive(
        "limits.max_visits",
        raw.max_visits,
        DEFAULT_MAX_VISITS,
        1_000_000_000,
    ) as usize;
    LimitsConfig {
        enforce: raw.enforce.unwrap_or(true),
        text_per_minute: nz(errs.positive(
            "limits.text_per_minute",
            raw.text_per_minute,
            DEFAULT_TEXT_PER_MINUTE,
            u32::MAX as u64,
        )),
        media_per_minute: nz(errs.positive(
            "limits.media_per_minute",
            raw.media_per_minute,
            DEFAULT_MEDIA_PER_MINUTE,
            u32::MAX as u64,
        )),
        text_per_day: nz(errs.positive(
            "limits.text_per_day",
            raw.text_per_day,
            DEFAULT_TEXT_PER_DAY,
            u32::MAX as u64,
        )),
        media_per_day: nz(errs.positive(
            "limits.media_per_day",
            raw.media_per_day,
            DEFAULT_MEDIA_PER_DAY,
            u32::MAX as u64,
        )),
        image_per_minute: nz(errs.positive(
            "limits.image_per_minute",
            raw.image_per_minute,
            DEFAULT_IMAGE_PER_MINUTE,
            u32::MAX as u64,
        )),
        image_per_day: nz(errs.positive(
            "limits.image_per_day",
            raw.image_per_day,
            DEFAULT_IMAGE_PER_DAY,
            u32::MAX as u64,
        )),
        visit_report_per_minute: nz(errs.positive(
            "limits.visit_report_per_minute",
            raw.visit_report_per_minute,
            DEFAULT_VISIT_REPORT_PER_MINUTE,
            u32::MAX as u64,
        )),
        visit_report_per_day: nz(errs.positive(
            "limits.visit_report_per_day",
            raw.visit_report_per_day,
            DEFAULT_VISIT_REPORT_PER_DAY,
            u32::MAX as u64,
        )),
        risk_rank_per_minute: nz(errs.positive(
            "limits.risk_rank_per_minute",
            raw.risk_rank_per_minute,
            DEFAULT_RISK_RANK_PER_MINUTE,
            u32::MAX as u64,
        )),
        risk_rank_per_day: nz(errs.positive(
            "limits.risk_rank_per_day",
            raw.risk_rank_per_day,
            DEFAULT_RISK_RANK_PER_DAY,
            u32::MAX as u64,
        )),
        day_offset_hours: match raw.day_offset_hours {
            None => DEFAULT_DAY_OFFSET_HOURS,
            Some(h) if (-12..=14).contains(&h) => h as i8,
            Some(h) => {
                errs.push(
                    "limits.day_offset_hours",
                    format!("{h} is out of range (-12..=14)"),
                );
                DEFAULT_DAY_OFFSET_HOURS
            }
        },
        resets_per_month: match raw.resets_per_month {
            None => DEFAULT_RESETS_PER_MONTH,
            Some(n) if (0..=1000).contains(&n) => n as u32,
            Some(n) => {
                errs.push(
                    "limits.resets_per_month",
                    format!("{n} is out of range (0..=1000)"),
                );
                DEFAULT_RESETS_PER_MONTH
            }
        },
        visit_ttl: Duration::from_secs(errs.positive(
            "limits.visit_ttl_secs",
            raw.visit_ttl_secs,
            DEFAULT_VISIT_TTL_SECS,
            86_400 * 30,
        )),
        max_visits: NonZeroUsize::new(max_visits).unwrap_or(NonZeroUsize::MIN),
        max_visits_per_app: NonZeroUsize::new(errs.positive(
            "limits.max_visits_per_app",
            raw.max_visits_per_app,
            max_visits as u64 / 10,
            1_000_000_000,
        ) as usize)
        .unwrap_or(NonZeroUsize::MIN),
        visit_sweep: Duration::from_secs(errs.positive(
            "limits.visit_sweep_secs",
            raw.visit_sweep_secs,
            DEFAULT_VISIT_SWEEP_SECS,
            3600,
        )),
        visit_check: match raw.visit_check.as_deref() {
            None => VisitCheck::default(),
            Some(v) => VisitCheck::parse(errs, "limits.visit_check", v).unwrap_or_default(),
        },
    }
}
