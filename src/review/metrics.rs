//! The review queue's metrics.

/// Review queue metrics ([`crate::review`]).
#[derive(Clone)]
pub struct ReviewMetrics {
    pub depth: prometheus::IntGaugeVec,
    pub enqueued: prometheus::IntCounterVec,
    pub dropped: prometheus::IntCounterVec,
    pub decisions: prometheus::IntCounterVec,
    pub decision_age: prometheus::Histogram,
}

impl ReviewMetrics {
    pub fn new(registry: &prometheus::Registry) -> Result<Self, prometheus::Error> {
        use prometheus::{Histogram, HistogramOpts, IntCounterVec, IntGaugeVec, Opts};
        let depth = IntGaugeVec::new(
            Opts::new(
                "modgate_review_queue_depth",
                "Review items not yet decided, by app",
            ),
            &["appid"],
        )?;
        let enqueued = IntCounterVec::new(
            Opts::new(
                "modgate_review_enqueued_total",
                "Verdicts put in the review queue, by kind (text, media) and reason (review, sample)",
            ),
            &["kind", "reason"],
        )?;
        let dropped = IntCounterVec::new(
            Opts::new(
                "modgate_review_dropped_total",
                "Verdicts not queued for review, by reason (full, store_busy)",
            ),
            &["reason"],
        )?;
        let decisions = IntCounterVec::new(
            Opts::new(
                "modgate_review_decisions_total",
                "Review decisions, by outcome (risky, pass)",
            ),
            &["outcome"],
        )?;
        let decision_age = Histogram::with_opts(
            HistogramOpts::new(
                "modgate_review_decision_age_seconds",
                "How long an item waited in the review queue for its decision",
            )
            .buckets(vec![
                60.0,
                300.0,
                900.0,
                3600.0,
                4.0 * 3600.0,
                86_400.0,
                3.0 * 86_400.0,
                7.0 * 86_400.0,
            ]),
        )?;
        registry.register(Box::new(depth.clone()))?;
        registry.register(Box::new(enqueued.clone()))?;
        registry.register(Box::new(dropped.clone()))?;
        registry.register(Box::new(decisions.clone()))?;
        registry.register(Box::new(decision_age.clone()))?;
        Ok(ReviewMetrics {
            depth,
            enqueued,
            dropped,
            decisions,
            decision_age,
        })
    }
}
