//! Pass-through mode's metrics: forwarded requests by the upstream's answer, and token checks.

use prometheus::{Histogram, HistogramOpts, IntCounterVec, IntGauge, Opts, Registry};

#[derive(Clone)]
pub struct UpstreamMetrics {
    /// Forwarded requests by the upstream's HTTP status, or `error` / `timeout` when it gave
    /// none.
    pub requests: IntCounterVec,
    /// Time until the upstream's answer began.
    pub seconds: Histogram,
    /// Unknown tokens checked with the upstream, by outcome: `known`, `refused`, `unknown_app`,
    /// `error`, or `paced` (not checked: over `token_checks_per_second`).
    pub token_checks: IntCounterVec,
    /// Platform tokens (and refusals) remembered.
    pub tokens: IntGauge,
    /// Visits recorded from login answers.
    pub logins: prometheus::IntCounter,
}

impl UpstreamMetrics {
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let requests = IntCounterVec::new(
            Opts::new(
                "modgate_upstream_requests_total",
                "Requests forwarded to the upstream, by its HTTP status (or error, timeout)",
            ),
            &["status"],
        )?;
        let seconds = Histogram::with_opts(
            HistogramOpts::new(
                "modgate_upstream_seconds",
                "Time from forwarding a request to the upstream's answer head",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ]),
        )?;
        let token_checks = IntCounterVec::new(
            Opts::new(
                "modgate_upstream_token_checks_total",
                "Tokens not issued through the gateway, checked with the upstream, by outcome",
            ),
            &["outcome"],
        )?;
        let tokens = IntGauge::new(
            "modgate_upstream_tokens",
            "Platform tokens (and refused ones) remembered",
        )?;
        let logins = prometheus::IntCounter::new(
            "modgate_upstream_login_visits_total",
            "Visits recorded from login answers passing through",
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(seconds.clone()))?;
        registry.register(Box::new(token_checks.clone()))?;
        registry.register(Box::new(tokens.clone()))?;
        registry.register(Box::new(logins.clone()))?;
        Ok(UpstreamMetrics {
            requests,
            seconds,
            token_checks,
            tokens,
            logins,
        })
    }
}
