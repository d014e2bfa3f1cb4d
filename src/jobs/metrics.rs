//! The media pipeline's metrics: queue, jobs, fetches and pushes. Outcome labels come from fixed
//! sets.

use prometheus::{HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry};

/// The media pipeline: queue, jobs, fetches and pushes. Outcome labels come from fixed sets.
#[derive(Clone)]
pub struct MediaMetrics {
    /// Unfinished jobs (queued, being fetched, or waiting to be pushed).
    pub queue_depth: prometheus::IntGauge,
    /// Jobs by what became of them: `accepted`, `refused_busy`, `refused_app_share`,
    /// `delivered`, `dead`, `done`.
    pub jobs: IntCounterVec,
    /// Fetch latency by outcome (`ok` or an error kind).
    pub fetch_seconds: HistogramVec,
    pub fetch_bytes: IntCounter,
    /// Push attempts by outcome: `delivered` or an error kind.
    pub push_attempts: IntCounterVec,
    pub dead_letters: IntCounter,
}

impl MediaMetrics {
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let queue_depth = prometheus::IntGauge::new(
            "modgate_media_queue_depth",
            "Media jobs not yet finished (queued, in work, or waiting to push)",
        )?;
        let jobs = IntCounterVec::new(
            Opts::new("modgate_media_jobs_total", "Media jobs by outcome"),
            &["outcome"],
        )?;
        let fetch_seconds = HistogramVec::new(
            HistogramOpts::new("modgate_media_fetch_seconds", "Media fetch time by outcome")
                .buckets(vec![
                    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                ]),
            &["outcome"],
        )?;
        let fetch_bytes =
            IntCounter::new("modgate_media_fetch_bytes_total", "Bytes of media fetched")?;
        let push_attempts = IntCounterVec::new(
            Opts::new(
                "modgate_media_push_attempts_total",
                "Push attempts by outcome",
            ),
            &["outcome"],
        )?;
        let dead_letters = IntCounter::new(
            "modgate_media_dead_letters_total",
            "Media jobs dead-lettered after their last push attempt",
        )?;
        registry.register(Box::new(queue_depth.clone()))?;
        registry.register(Box::new(jobs.clone()))?;
        registry.register(Box::new(fetch_seconds.clone()))?;
        registry.register(Box::new(fetch_bytes.clone()))?;
        registry.register(Box::new(push_attempts.clone()))?;
        registry.register(Box::new(dead_letters.clone()))?;
        Ok(MediaMetrics {
            queue_depth,
            jobs,
            fetch_seconds,
            fetch_bytes,
            push_attempts,
            dead_letters,
        })
    }
}
