//! Prometheus metrics. Names follow `modgate_<name>_<unit>[_total]`; every label takes values
//! from a fixed set (API names, errcodes the gateway defines, suggests, labels), so cardinality is
//! bounded whatever clients send.

use std::sync::{Arc, OnceLock};

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use crate::engine::{Label, Suggest};
use crate::jobs::metrics::MediaMetrics;
use crate::limits::Metered;
use crate::review::metrics::ReviewMetrics;
use crate::state::metrics::StateMetrics;
use crate::upstream::metrics::UpstreamMetrics;
use crate::usage::{Checked, Usage};

/// The WeChat-compatible APIs, as metric label values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    MsgSecCheck,
    Token,
    StableToken,
    QuotaGet,
    ClearQuota,
    VisitReport,
    MediaCheckAsync,
    MediaResult,
    RiskRank,
    ImgSecCheck,
    /// Requests passed on to the upstream (pass-through mode).
    Forwarded,
    /// Unknown paths and methods.
    Other,
}

impl Api {
    const COUNT: usize = 12;

    fn index(self) -> usize {
        self as usize
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Api::MsgSecCheck => "msg_sec_check",
            Api::Token => "token",
            Api::StableToken => "stable_token",
            Api::QuotaGet => "quota_get",
            Api::ClearQuota => "clear_quota",
            Api::VisitReport => "visit_report",
            Api::MediaCheckAsync => "media_check_async",
            Api::MediaResult => "media_result",
            Api::RiskRank => "get_user_risk_rank",
            Api::ImgSecCheck => "img_sec_check",
            Api::Forwarded => "forwarded",
            Api::Other => "other",
        }
    }
}

/// All metrics of one gateway.
#[derive(Clone)]
pub struct Metrics {
    pub media: MediaMetrics,
    pub state: StateMetrics,
    pub review: ReviewMetrics,
    pub upstream: UpstreamMetrics,
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    request_wait: Histogram,
    verdicts: IntCounterVec,
    connections: IntGaugeVec,
    http_refused: IntCounterVec,
    shed: IntCounterVec,
    risk_lookups: IntCounterVec,
    scheduling_delay: prometheus::Gauge,
    shed_share: prometheus::Gauge,
    refusals: IntCounterVec,
    quota_admitted: IntCounterVec,
    visits: prometheus::IntGauge,
    skipped: IntCounterVec,
    /// Each app's verdicts and refusals: the console's history, and the series of the apps
    /// listed in `[metrics] apps`.
    pub usage: Arc<Usage>,
    /// Children resolved once, so the hot path skips hashing label values. Filled lazily, so
    /// a series appears in `/metrics` only once it has happened.
    hot: Arc<Hot>,
}

/// Errcodes answered often enough (refusals under overload, floods of bad tokens, limits) to
/// keep their counters at hand; other errcodes are looked up by label.
const HOT_ERRCODES: [i32; 8] = [-1, 40001, 40014, 41001, 42001, 44991, 45009, 61010];

#[derive(Default)]
struct Hot {
    ok: [OnceLock<IntCounter>; Api::COUNT],
    errors: [[OnceLock<IntCounter>; HOT_ERRCODES.len()]; Api::COUNT],
    shed: [OnceLock<IntCounter>; Api::COUNT],
    latency: [OnceLock<Histogram>; Api::COUNT],
    verdicts: [[[OnceLock<IntCounter>; Label::ALL.len()]; 3]; Api::COUNT],
    quota: [OnceLock<IntCounter>; Metered::ALL.len()],
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Result<Self, prometheus::Error> {
        Self::with_apps(&[])
    }

    /// Creates and registers every metric, with series of their own for `apps` (their
    /// verdicts and refusals, each at zero from the start). Other apps are counted only in the
    /// deployment's totals, so the number of series stays the operator's choice.
    pub fn with_apps(apps: &[String]) -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "modgate_api_requests_total",
                "API requests by API and errcode",
            ),
            &["api", "errcode"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "modgate_api_request_duration_seconds",
                "Time from request head to response, by API",
            )
            .buckets(vec![
                0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05,
                0.1, 0.25, 0.5, 1.0, 2.5,
            ]),
            &["api"],
        )?;
        let verdicts = IntCounterVec::new(
            Opts::new(
                "modgate_verdicts_total",
                "Verdicts by API, suggest and label",
            ),
            &["api", "suggest", "label"],
        )?;
        let connections = IntGaugeVec::new(
            Opts::new(
                "modgate_connections_open",
                "Open HTTP connections by listener",
            ),
            &["listener"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        let request_wait = Histogram::with_opts(
            HistogramOpts::new(
                "modgate_api_request_wait_seconds",
                "Time requests waited unread after they arrived, before their handler ran",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
        )?;
        registry.register(Box::new(request_wait.clone()))?;
        registry.register(Box::new(verdicts.clone()))?;
        registry.register(Box::new(connections.clone()))?;
        let http_refused = IntCounterVec::new(
            Opts::new(
                "modgate_http_refused_total",
                "Requests refused below the API by listener and reason",
            ),
            &["listener", "reason"],
        )?;
        registry.register(Box::new(http_refused.clone()))?;
        let shed = IntCounterVec::new(
            Opts::new(
                "modgate_overload_shed_total",
                "Requests refused with errcode -1 because the gateway was overloaded, by API",
            ),
            &["api"],
        )?;
        let scheduling_delay = prometheus::Gauge::new(
            "modgate_scheduling_delay_seconds",
            "How long the last probe task waited in the request runtime's queue",
        )?;
        let shed_share = prometheus::Gauge::new(
            "modgate_overload_shed_ratio",
            "Share of requests being shed (0 to 1)",
        )?;
        registry.register(Box::new(shed.clone()))?;
        let risk_lookups = IntCounterVec::new(
            Opts::new(
                "modgate_risk_lookups_total",
                "getuserriskrank answers by scene, rank and what decided it (list or model)",
            ),
            &["scene", "rank", "source"],
        )?;
        registry.register(Box::new(risk_lookups.clone()))?;
        registry.register(Box::new(scheduling_delay.clone()))?;
        registry.register(Box::new(shed_share.clone()))?;
        let refusals = IntCounterVec::new(
            Opts::new(
                "modgate_limit_refusals_total",
                "Calls refused by a limit, by API and reason (rate, quota, visit)",
            ),
            &["api", "reason"],
        )?;
        let quota_admitted = IntCounterVec::new(
            Opts::new(
                "modgate_quota_admitted_total",
                "Calls counted against a daily quota, by API",
            ),
            &["api"],
        )?;
        let visits = prometheus::IntGauge::new(
            "modgate_visit_entries",
            "Visit entries held (fresh or not yet swept)",
        )?;
        registry.register(Box::new(refusals.clone()))?;
        registry.register(Box::new(quota_admitted.clone()))?;
        registry.register(Box::new(visits.clone()))?;
        // The process's own: CPU seconds, resident and virtual memory, open and maximum file
        // descriptors, threads, start time (`process_*`, read from /proc at each scrape).
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        let build_info = IntGaugeVec::new(
            Opts::new(
                "modgate_build_info",
                "Always 1; the running build's version as a label",
            ),
            &["version"],
        )?;
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        registry.register(Box::new(build_info))?;
        let skipped = IntCounterVec::new(
            Opts::new(
                "modgate_stored_records_skipped_total",
                "Stored records that could not be used at start and were skipped, by kind",
            ),
            &["kind"],
        )?;
        registry.register(Box::new(skipped.clone()))?;
        let usage = Arc::new(Usage::new(&registry, apps)?);
        let media = MediaMetrics::new(&registry)?;
        let state = StateMetrics::new(&registry)?;
        let review = ReviewMetrics::new(&registry)?;
        let upstream = UpstreamMetrics::new(&registry)?;
        Ok(Self {
            media,
            state,
            review,
            upstream,
            registry,
            requests,
            latency,
            request_wait,
            verdicts,
            connections,
            http_refused,
            shed,
            risk_lookups,
            scheduling_delay,
            shed_share,
            refusals,
            quota_admitted,
            visits,
            skipped,
            usage,
            hot: Arc::default(),
        })
    }

    /// Records one finished API request.
    pub fn request(&self, api: Api, errcode: i32, seconds: f64) {
        let i = api.index();
        if errcode == 0 {
            self.hot.ok[i]
                .get_or_init(|| self.requests.with_label_values(&[api.as_str(), "0"]))
                .inc();
        } else if let Some(k) = HOT_ERRCODES.iter().position(|&c| c == errcode) {
            self.hot.errors[i][k]
                .get_or_init(|| {
                    self.requests
                        .with_label_values(&[api.as_str(), &errcode.to_string()])
                })
                .inc();
        } else {
            self.requests
                .with_label_values(&[api.as_str(), &errcode.to_string()])
                .inc();
        }
        self.hot.latency[i]
            .get_or_init(|| self.latency.with_label_values(&[api.as_str()]))
            .observe(seconds);
    }

    /// Records how long a request waited unread before its handler ran.
    pub fn request_waited(&self, waited: std::time::Duration) {
        self.request_wait.observe(waited.as_secs_f64());
    }

    /// Records one verdict.
    pub fn verdict(&self, api: Api, suggest: Suggest, label: Label) {
        let l = Label::ALL.iter().position(|x| *x == label).unwrap_or(0);
        self.hot.verdicts[api.index()][suggest as usize][l]
            .get_or_init(|| {
                self.verdicts.with_label_values(&[
                    api.as_str(),
                    suggest.as_str(),
                    &label.code().to_string(),
                ])
            })
            .inc();
    }

    /// Records a call refused by a limit.
    pub fn refusal(&self, api: Metered, reason: &'static str) {
        self.refusals
            .with_label_values(&[api.as_str(), reason])
            .inc();
    }

    /// Records a call counted against its daily quota.
    pub fn quota_admitted(&self, api: Metered) {
        self.hot.quota[api.index()]
            .get_or_init(|| self.quota_admitted.with_label_values(&[api.as_str()]))
            .inc();
    }

    /// Sets the number of visit entries held.
    pub fn visit_entries(&self, n: usize) {
        self.visits.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Records a request shed under overload.
    pub fn shed(&self, api: Api) {
        self.hot.shed[api.index()]
            .get_or_init(|| self.shed.with_label_values(&[api.as_str()]))
            .inc();
    }

    /// Records one risk rank answer.
    pub fn risk_lookup(&self, scene: u8, rank: u8, source: &'static str) {
        const DIGITS: [&str; 5] = ["0", "1", "2", "3", "4"];
        let digit = |n: u8| DIGITS.get(usize::from(n)).copied().unwrap_or("other");
        self.risk_lookups
            .with_label_values(&[digit(scene), digit(rank), source])
            .inc();
    }

    /// The gauge of the request runtime's scheduling delay.
    pub fn scheduling_delay(&self) -> prometheus::Gauge {
        self.scheduling_delay.clone()
    }

    /// The gauge of the share of requests shed.
    /// Records a verdict of `appid`'s.
    pub fn app_verdict(&self, appid: &str, api: Checked, suggest: Suggest) {
        self.usage.verdict(appid, api, suggest);
    }

    /// Records a call of `appid`'s refused by a limit.
    pub fn app_refusal(&self, appid: &str, api: Metered, reason: &'static str) {
        self.usage.refusal(appid, api.as_str(), reason);
    }

    /// A stored record of `kind` could not be used at start and was skipped.
    pub fn stored_record_skipped(&self, kind: &str) {
        self.skipped.with_label_values(&[kind]).inc();
    }

    pub fn shed_share(&self) -> prometheus::Gauge {
        self.shed_share.clone()
    }

    /// The metrics one listener's accept loop keeps.
    pub fn listener(&self, listener: &'static str) -> crate::transport::server::ListenerMetrics {
        crate::transport::server::ListenerMetrics {
            open: self.connections.with_label_values(&[listener]),
            conflicting_framing: self
                .http_refused
                .with_label_values(&[listener, "conflicting_framing"]),
            client_share: self
                .http_refused
                .with_label_values(&[listener, "client_share"]),
            body_timeouts: self
                .http_refused
                .with_label_values(&[listener, "body_timeout"]),
        }
    }

    /// The text exposition format.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 * 1024);
        // Encoding into a Vec only fails on invalid metric families, which `register` prevents.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests fail loudly by design

    use super::*;

    /// The value of the series `name{labels}` in a rendered scrape (0 when absent).
    fn value(scrape: &str, series: &str) -> f64 {
        scrape
            .lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or(0.0)
    }

    #[test]
    fn errcodes_kept_at_hand_and_looked_up_count_alike() {
        let m = Metrics::new().unwrap();
        for _ in 0..3 {
            m.request(Api::MsgSecCheck, -1, 0.001);
            m.shed(Api::MsgSecCheck);
        }
        m.request(Api::MsgSecCheck, 41001, 0.001);
        m.request(Api::MsgSecCheck, 0, 0.001);
        m.request(Api::MsgSecCheck, 47001, 0.001); // not among the hot errcodes
        m.request(Api::Token, -1, 0.001); // another API's own counter
        let scrape = String::from_utf8(m.render()).unwrap();
        let requests = |api: &str, code: &str| {
            value(
                &scrape,
                &format!(r#"modgate_api_requests_total{{api="{api}",errcode="{code}"}}"#),
            )
        };
        assert_eq!(requests("msg_sec_check", "-1"), 3.0, "{scrape}");
        assert_eq!(requests("msg_sec_check", "41001"), 1.0);
        assert_eq!(requests("msg_sec_check", "0"), 1.0);
        assert_eq!(requests("msg_sec_check", "47001"), 1.0);
        assert_eq!(requests(Api::Token.as_str(), "-1"), 1.0);
        assert_eq!(
            value(
                &scrape,
                r#"modgate_overload_shed_total{api="msg_sec_check"}"#
            ),
            3.0
        );
    }
}
