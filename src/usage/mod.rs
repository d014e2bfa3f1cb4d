//! Each app's checks by verdict and its refusals over time: per minute for the last hour and
//! per hour for the last day, kept in this process for the console's usage charts; and the
//! Prometheus series of the apps named in `metrics.apps` (verdicts by API and suggest, refusals
//! by API and reason), whichever layer the verdict comes from (a request handler or a media
//! job).
//!
//! The history costs one map lookup and one uncontended lock per verdict, and about 4 KB for
//! each app that had traffic since the process started. In Redis mode it is this instance's
//! share of the deployment's traffic; Prometheus, which scrapes every instance, has the sum.

pub mod metrics;

use std::sync::{Mutex, PoisonError};

use dashmap::DashMap;
use prometheus::Registry;
use serde::Serialize;

use metrics::AppSeries;

use crate::clock::wall_ms;
use crate::engine::Suggest;

/// The APIs whose verdicts are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checked {
    MsgSecCheck,
    ImgSecCheck,
    MediaCheckAsync,
}

impl Checked {
    pub const ALL: [Checked; 3] = [
        Checked::MsgSecCheck,
        Checked::ImgSecCheck,
        Checked::MediaCheckAsync,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Checked::MsgSecCheck => "msg_sec_check",
            Checked::ImgSecCheck => "img_sec_check",
            Checked::MediaCheckAsync => "media_check_async",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Counters of one bucket: verdicts by API and suggest, then refusals.
type Counts = [u32; 10];
const REFUSED: usize = 9;

fn slot(api: Checked, suggest: Suggest) -> usize {
    let s = match suggest {
        Suggest::Pass => 0,
        Suggest::Review => 1,
        Suggest::Risky => 2,
    };
    api.index() * 3 + s
}

/// `N` buckets of `step` each, the newest at the epoch last written.
struct Ring<const N: usize> {
    /// The epoch (time / step) each bucket holds.
    epoch: [u64; N],
    counts: [Counts; N],
}

impl<const N: usize> Ring<N> {
    fn new() -> Box<Self> {
        Box::new(Ring {
            epoch: [u64::MAX; N],
            counts: [[0; 10]; N],
        })
    }

    fn add(&mut self, epoch: u64, i: usize) {
        let s = (epoch % N as u64) as usize;
        if self.epoch[s] != epoch {
            self.epoch[s] = epoch;
            self.counts[s] = [0; 10];
        }
        self.counts[s][i] = self.counts[s][i].saturating_add(1);
    }

    /// The `N` buckets ending with `epoch`, oldest first (zeros where nothing happened).
    fn read(&self, epoch: u64) -> Vec<Counts> {
        (0..N as u64)
            .rev()
            .map(|back| {
                let e = epoch.wrapping_sub(back);
                let s = (e % N as u64) as usize;
                if self.epoch[s] == e {
                    self.counts[s]
                } else {
                    [0; 10]
                }
            })
            .collect()
    }
}

const MINUTE_MS: u64 = 60_000;
const HOUR_MS: u64 = 3_600_000;

struct History {
    minutes: Box<Ring<60>>,
    hours: Box<Ring<24>>,
}

impl History {
    fn new() -> Self {
        History {
            minutes: Ring::new(),
            hours: Ring::new(),
        }
    }

    fn add(&mut self, now_ms: u64, i: usize) {
        self.minutes.add(now_ms / MINUTE_MS, i);
        self.hours.add(now_ms / HOUR_MS, i);
    }
}

/// How far back a history reaches, and in what steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span {
    /// 60 one-minute steps.
    Hour,
    /// 24 one-hour steps.
    Day,
}

impl Span {
    pub fn parse(s: &str) -> Option<Span> {
        match s {
            "hour" => Some(Span::Hour),
            "day" => Some(Span::Day),
            _ => None,
        }
    }

    /// When the span ending at `now_ms` begins: the start of its first step.
    pub fn start_ms(self, now_ms: u64) -> u64 {
        let step = self.step_ms();
        (now_ms / step + 1 - self.steps()) * step
    }

    fn step_ms(self) -> u64 {
        match self {
            Span::Hour => MINUTE_MS,
            Span::Day => HOUR_MS,
        }
    }

    fn steps(self) -> u64 {
        match self {
            Span::Hour => 60,
            Span::Day => 24,
        }
    }
}

/// Verdicts of one API by suggest, one figure per step.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Verdicts {
    pub pass: Vec<u32>,
    pub review: Vec<u32>,
    pub risky: Vec<u32>,
}

/// One app's history over a span.
#[derive(Debug, Clone, Serialize)]
pub struct Series {
    pub appid: String,
    /// The first step's start (Unix ms) and each step's length.
    pub start_ms: u64,
    pub step_secs: u64,
    pub msg_sec_check: Verdicts,
    pub img_sec_check: Verdicts,
    pub media_check_async: Verdicts,
    /// Calls refused by a limit (rate, quota, visit), every API.
    pub refused: Vec<u32>,
}

/// One app's totals over a span.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Totals {
    pub appid: String,
    /// Verdicts of every API.
    pub checks: u64,
    pub pass: u64,
    pub review: u64,
    pub risky: u64,
    pub refused: u64,
}

/// The usage counters of one process.
pub struct Usage {
    /// By appid. The apps are the configured ones, not keys a client chooses: hashed with
    /// foldhash, as the app map is, rather than SipHash (one look-up every verdict).
    history: DashMap<Box<str>, Mutex<History>, foldhash::fast::RandomState>,
    series: AppSeries,
}

impl std::fmt::Debug for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Usage")
            .field("apps", &self.history.len())
            .finish_non_exhaustive()
    }
}

impl Usage {
    /// Registers the per-app series; `listed` apps get theirs, each at zero from the start.
    pub fn new(registry: &Registry, listed: &[String]) -> Result<Self, prometheus::Error> {
        Ok(Usage {
            history: DashMap::default(),
            series: AppSeries::new(registry, listed)?,
        })
    }

    fn add(&self, appid: &str, now_ms: u64, i: usize) {
        // The common case: the app is known; its shard is only read-locked meanwhile.
        if let Some(h) = self.history.get(appid) {
            h.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .add(now_ms, i);
            return;
        }
        self.history
            .entry(appid.into())
            .or_insert_with(|| Mutex::new(History::new()))
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .add(now_ms, i);
    }

    /// Records a verdict of `appid`'s.
    pub fn verdict(&self, appid: &str, api: Checked, suggest: Suggest) {
        self.verdict_at(appid, api, suggest, wall_ms());
    }

    pub fn verdict_at(&self, appid: &str, api: Checked, suggest: Suggest, now_ms: u64) {
        self.add(appid, now_ms, slot(api, suggest));
        self.series.verdict(appid, api, suggest);
    }

    /// Records a call of `appid`'s to `api` refused by a limit (`reason`).
    pub fn refusal(&self, appid: &str, api: &'static str, reason: &'static str) {
        self.refusal_at(appid, api, reason, wall_ms());
    }

    pub fn refusal_at(&self, appid: &str, api: &'static str, reason: &'static str, now_ms: u64) {
        self.add(appid, now_ms, REFUSED);
        self.series.refusal(appid, api, reason);
    }

    fn read(&self, appid: &str, span: Span, now_ms: u64) -> Option<Vec<Counts>> {
        let h = self.history.get(appid)?;
        let h = h.lock().unwrap_or_else(PoisonError::into_inner);
        Some(match span {
            Span::Hour => h.minutes.read(now_ms / MINUTE_MS),
            Span::Day => h.hours.read(now_ms / HOUR_MS),
        })
    }

    /// `appid`'s history over `span` ending now (zeros for an app with no traffic).
    pub fn series(&self, appid: &str, span: Span, now_ms: u64) -> Series {
        let steps = self
            .read(appid, span, now_ms)
            .unwrap_or_else(|| vec![[0; 10]; span.steps() as usize]);
        let column = |i: usize| steps.iter().map(|c| c[i]).collect::<Vec<u32>>();
        let verdicts = |api: Checked| Verdicts {
            pass: column(slot(api, Suggest::Pass)),
            review: column(slot(api, Suggest::Review)),
            risky: column(slot(api, Suggest::Risky)),
        };
        let step = span.step_ms();
        Series {
            appid: appid.to_owned(),
            start_ms: span.start_ms(now_ms),
            step_secs: step / 1000,
            msg_sec_check: verdicts(Checked::MsgSecCheck),
            img_sec_check: verdicts(Checked::ImgSecCheck),
            media_check_async: verdicts(Checked::MediaCheckAsync),
            refused: column(REFUSED),
        }
    }

    /// Every app with traffic over `span` ending now, the busiest (most checks, then most
    /// refusals) first.
    pub fn totals(&self, span: Span, now_ms: u64) -> Vec<Totals> {
        let appids: Vec<String> = self.history.iter().map(|e| e.key().to_string()).collect();
        let mut all: Vec<Totals> = appids
            .into_iter()
            .filter_map(|appid| {
                let steps = self.read(&appid, span, now_ms)?;
                let sum = |of: &dyn Fn(&Counts) -> u32| -> u64 {
                    steps.iter().map(|c| u64::from(of(c))).sum()
                };
                let by = |s: Suggest| {
                    sum(&|c: &Counts| Checked::ALL.iter().map(|&a| c[slot(a, s)]).sum())
                };
                let (pass, review, risky) =
                    (by(Suggest::Pass), by(Suggest::Review), by(Suggest::Risky));
                let refused = sum(&|c: &Counts| c[REFUSED]);
                let checks = pass + review + risky;
                (checks + refused > 0).then_some(Totals {
                    appid,
                    checks,
                    pass,
                    review,
                    risky,
                    refused,
                })
            })
            .collect();
        all.sort_by(|a, b| {
            (b.checks, b.refused)
                .cmp(&(a.checks, a.refused))
                .then_with(|| a.appid.cmp(&b.appid))
        });
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage() -> Usage {
        Usage::new(&Registry::new(), &["wxlisted".into()]).unwrap()
    }

    #[test]
    fn verdicts_land_in_their_minute_and_hour_and_age_out() {
        let u = usage();
        let t0 = 1_700_000_000_000 / HOUR_MS * HOUR_MS; // on the hour
        u.verdict_at("wxa", Checked::MsgSecCheck, Suggest::Pass, t0);
        u.verdict_at("wxa", Checked::MsgSecCheck, Suggest::Risky, t0 + 1);
        u.verdict_at(
            "wxa",
            Checked::MediaCheckAsync,
            Suggest::Review,
            t0 + 61_000,
        );
        u.refusal_at("wxa", "msg_sec_check", "rate", t0 + 61_000);

        let now = t0 + 61_000;
        let s = u.series("wxa", Span::Hour, now);
        assert_eq!(s.step_secs, 60);
        assert_eq!(s.start_ms, t0 + MINUTE_MS - 59 * MINUTE_MS);
        assert_eq!(s.msg_sec_check.pass.len(), 60);
        // The last two minutes: t0's, then t0 + 1 min's.
        assert_eq!(s.msg_sec_check.pass[58..], [1, 0]);
        assert_eq!(s.msg_sec_check.risky[58..], [1, 0]);
        assert_eq!(s.media_check_async.review[58..], [0, 1]);
        assert_eq!(s.refused[58..], [0, 1]);
        assert_eq!(
            s.img_sec_check,
            Verdicts {
                pass: vec![0; 60],
                review: vec![0; 60],
                risky: vec![0; 60],
            }
        );
        let day = u.series("wxa", Span::Day, now);
        assert_eq!(day.msg_sec_check.pass[23], 1);
        assert_eq!(day.refused[23], 1);

        // An hour on, the minutes have aged out; the hours have not.
        let later = now + HOUR_MS;
        assert!(
            u.series("wxa", Span::Hour, later)
                .refused
                .iter()
                .all(|&n| n == 0)
        );
        assert_eq!(u.series("wxa", Span::Day, later).refused[22], 1);
        // A bucket reused a day on starts from zero.
        u.verdict_at(
            "wxa",
            Checked::MsgSecCheck,
            Suggest::Pass,
            t0 + 24 * HOUR_MS,
        );
        let next_day = u.series("wxa", Span::Day, t0 + 24 * HOUR_MS);
        assert_eq!(next_day.msg_sec_check.pass[23], 1);
        assert_eq!(next_day.msg_sec_check.risky.iter().sum::<u32>(), 0);
    }

    #[test]
    fn totals_rank_the_busiest_apps_first() {
        let u = usage();
        let now = 1_700_000_000_000;
        for _ in 0..3 {
            u.verdict_at("wxb", Checked::MsgSecCheck, Suggest::Pass, now);
        }
        u.verdict_at("wxa", Checked::ImgSecCheck, Suggest::Risky, now);
        u.refusal_at("wxc", "media_check_async", "quota", now);
        u.verdict_at(
            "wxold",
            Checked::MsgSecCheck,
            Suggest::Pass,
            now - 2 * HOUR_MS,
        );
        let t = u.totals(Span::Hour, now);
        let order: Vec<&str> = t.iter().map(|t| t.appid.as_str()).collect();
        assert_eq!(
            order,
            ["wxb", "wxa", "wxc"],
            "wxold had no traffic this hour"
        );
        assert_eq!(
            t[1],
            Totals {
                appid: "wxa".into(),
                checks: 1,
                pass: 0,
                review: 0,
                risky: 1,
                refused: 0,
            }
        );
        assert_eq!(u.totals(Span::Day, now).len(), 4);
    }

    #[test]
    fn only_listed_apps_get_prometheus_series() {
        let registry = Registry::new();
        let u = Usage::new(&registry, &["wxlisted".into()]).unwrap();
        u.verdict("wxlisted", Checked::MediaCheckAsync, Suggest::Risky);
        u.verdict("wxother", Checked::MediaCheckAsync, Suggest::Risky);
        u.refusal("wxlisted", "media_check_async", "quota");
        let families = registry.gather();
        let series = |name: &str| -> Vec<(Vec<String>, f64)> {
            families
                .iter()
                .filter(|f| f.name() == name)
                .flat_map(|f| f.get_metric())
                .map(|m| {
                    let labels = m.get_label().iter().map(|l| l.value().to_owned()).collect();
                    (labels, m.get_counter().get_value())
                })
                .collect()
        };
        // Labels come sorted by name: api, appid, suggest.
        let verdicts = series("modgate_app_verdicts_total");
        assert_eq!(
            verdicts.len(),
            9,
            "three APIs by three suggests, at zero from the start"
        );
        assert!(verdicts.iter().all(|(l, _)| l[1] == "wxlisted"));
        let counted: Vec<&Vec<String>> = verdicts
            .iter()
            .filter(|(_, v)| *v > 0.0)
            .map(|(l, _)| l)
            .collect();
        assert_eq!(
            counted,
            [&vec![
                "media_check_async".to_string(),
                "wxlisted".into(),
                "risky".into()
            ]]
        );
        assert_eq!(series("modgate_app_refusals_total").len(), 1);
    }
}
