//! Media check jobs (SPEC §4): durable jobs, the guarded fetcher, the steps that analyse and
//! push, and signed pushes that are retried until delivered.
//!
//! A job's life: accepted (written to the embedded store before its `trace_id` is answered) →
//! fetched and analysed → pushed, with retries on a backoff schedule → delivered, or
//! dead-lettered after the last attempt. Every state change is written to the store before the
//! next step, so a restart resumes each unfinished job where it was (a fetch may be repeated, a
//! push may be sent again: delivery is at-least-once, the `trace_id` being the de-duplication
//! key).
//!
//! Scheduling: one dispatcher hands out work to at most `media.workers` concurrent steps, at
//! most `media.per_app` per app and `media.per_host` per destination host, taking apps in turn
//! so one busy app cannot starve the others; a job ready to push goes ahead of its app's jobs
//! still to be fetched. Pushes waiting for a retry sit in a timer heap. Times for retries are
//! wall-clock (they are persisted), read from the system clock. [`dispatch::run`] is started on a
//! thread and runtime of its own, so saturated request workers cannot starve it.

pub mod dispatch;
pub mod fetch;
pub mod guard;
pub mod metrics;
pub mod push;
pub mod queue;
mod scheduler;
pub mod shared;
pub mod store;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;

use crate::clock::wall_ms;
use crate::config::MediaConfig;
use crate::engine::Engine;
use crate::media::bank::Bank;
use crate::media::models::ModelSettings;
use crate::media::sniff::MediaKind;
use crate::media::verdict::MediaVerdict;
use crate::media::{Analysis, TextCheck, analyse, failed, images};
use crate::tenants::AppSlot;
use crate::vision::pool::{Loaded, Pool};
use fetch::{FetchLimits, Fetcher};
use metrics::MediaMetrics;
use queue::{Accepted, Capacity, JobQueue, LocalQueue, Taken};
use scheduler::Sched;
use store::{Job, JobState, JobStore, StoreError};

pub use dispatch::{Pipeline, run};

/// Why a submission was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("the media queue is full")]
    Busy,
    /// The app has its share of the queue (`media.max_queued_per_app`) unfinished.
    #[error("this app has {0} media jobs unfinished, its share of the queue")]
    AppShare(usize),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The media jobs of one gateway: their queue, schedule and fetcher.
pub struct MediaJobs {
    config: MediaConfig,
    /// The global hash bank (apps' banks hang off their `AppSlot`).
    pub global_bank: arc_swap::ArcSwap<Bank>,
    /// The threads that decode and analyse files and run the media models.
    pool: crate::vision::pool::Pool,
    /// Where jobs wait and are recorded: the embedded store, or Redis shared by every
    /// instance.
    queue: Arc<dyn JobQueue>,
    /// How long a shared job is held without renewing its lease.
    lease: Duration,
    fetcher: Fetcher,
    sched: Mutex<Sched>,
    wake: Notify,
    metrics: MediaMetrics,
}

impl std::fmt::Debug for MediaJobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaJobs").finish_non_exhaustive()
    }
}

impl MediaJobs {
    /// The verdict on `bytes` ([`analyse`]) with the global bank and the app's bank and keyword
    /// table, run on the analysis pool (`media.analysis_workers` threads, each with its own
    /// model sessions; `media.workers` bounds network work, not this). Jobs and the synchronous
    /// image check both come here.
    pub async fn analyse(
        &self,
        slot: Option<Arc<AppSlot>>,
        engine: Arc<Engine>,
        kind: MediaKind,
        bytes: bytes::Bytes,
    ) -> MediaVerdict {
        let global = self.global_bank.load_full();
        let app = slot.as_ref().and_then(|s| s.bank.load_full());
        let table = slot.as_ref().and_then(|s| s.table());
        let config = self.config.clone();
        let without = match self.pool.loaded() {
            Loaded::Without(why) => why,
            _ => String::new(),
        };
        let done = self
            .pool
            .run(move |models| {
                let a = Analysis {
                    global: &global,
                    app: app.as_deref(),
                    pdq_distance: config.pdq_distance,
                    limits: images::ImageLimits {
                        max_pixels: config.max_pixels,
                        ..images::ImageLimits::default()
                    },
                    text: Some(TextCheck {
                        engine: &engine,
                        table: table.as_deref().map(|t| &t.matcher),
                        qr_links: config.qr_links,
                    }),
                    qr_scan: config.qr_scan,
                    models: ModelSettings {
                        nsfw_review: config.nsfw_review,
                        nsfw_risky: config.nsfw_risky,
                        ocr: config.ocr,
                        timeout: config.model_timeout,
                        without,
                    },
                };
                analyse(&bytes, kind, &a, models)
            })
            .await;
        done.unwrap_or_else(|e| {
            tracing::error!(error = %e, "media analysis failed");
            failed(-1, "media analysis failed".into())
        })
    }

    /// What the analysis pool runs with (for `/readyz`).
    pub fn models(&self) -> Loaded {
        self.pool.loaded()
    }

    /// Opens the job queue: the embedded store's, or `shared` when instances share Redis. Jobs
    /// left unfinished are taken again by the dispatcher ([`dispatch::run`]).
    pub fn open(
        config: MediaConfig,
        durable: Arc<crate::state::durable::Durable>,
        shared: Option<shared::SharedJobs>,
        metrics: MediaMetrics,
    ) -> Result<MediaJobs, String> {
        let store = JobStore::start(durable).map_err(|e| format!("media job writer: {e}"))?;
        let queue: Arc<dyn JobQueue> = match shared {
            Some(shared) => {
                let mut left = 0usize;
                store.scan_open(|_| left += 1).map_err(|e| e.to_string())?;
                if left > 0 {
                    // Switch backends with an empty queue: these stay where they are.
                    tracing::warn!(
                        jobs = left,
                        "unfinished media jobs in the embedded store are not resumed with the \
                         shared backend"
                    );
                }
                Arc::new(shared)
            }
            None => Arc::new(LocalQueue::open(store).map_err(|e| e.to_string())?),
        };
        let fetcher = Fetcher::new(
            guard::Guard::new(config.allow_networks.clone()),
            &FetchLimits {
                connect_timeout: config.connect_timeout,
                fetch_timeout: config.fetch_timeout,
                push_timeout: config.push_timeout,
                max_bytes: config.max_bytes,
            },
        )?;
        let files = match &config.models_dir {
            Some(dir) => crate::vision::ModelFiles::find(dir),
            None => Err("media models are switched off (media.models = false)".into()),
        };
        let workers = config.analysis_workers.get();
        let pool = Pool::start(files, workers, workers * 2);
        Ok(MediaJobs {
            lease: config.lease,
            config,
            global_bank: arc_swap::ArcSwap::from_pointee(Bank::default()),
            pool,
            queue,
            fetcher,
            sched: Mutex::new(Sched::default()),
            wake: Notify::new(),
            metrics,
        })
    }

    fn sched(&self) -> MutexGuard<'_, Sched> {
        // No code path panics while holding the lock; recover the data if one ever does.
        self.sched.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn fetcher(&self) -> &Fetcher {
        &self.fetcher
    }

    /// Accepts a job: durably written before this returns, or refused. Not cancel-safe: the
    /// caller runs it to the end (the API runs each submission as a task of its own), or a
    /// place in the queue taken before the write is never given back or filled.
    pub async fn submit(&self, job: Job) -> Result<(), SubmitError> {
        let capacity = Capacity {
            total: self.config.max_queued.get(),
            per_app: self.config.max_queued_per_app.get(),
        };
        match self.queue.submit(&job, capacity).await? {
            Accepted::Yes => {
                self.metrics.jobs.with_label_values(&["accepted"]).inc();
                Ok(())
            }
            Accepted::Full => {
                self.metrics.jobs.with_label_values(&["refused_busy"]).inc();
                Err(SubmitError::Busy)
            }
            Accepted::AppFull => {
                self.metrics
                    .jobs
                    .with_label_values(&["refused_app_share"])
                    .inc();
                Err(SubmitError::AppShare(capacity.per_app))
            }
        }
    }

    /// Writes a job's new state (a finished job also leaves the queue).
    async fn record(&self, job: &Job) -> Result<(), StoreError> {
        let entry = self
            .sched()
            .entries
            .get(&job.trace_id)
            .cloned()
            .unwrap_or_else(|| job.trace_id.clone());
        if job.state.is_open() {
            self.queue.save(job, &entry).await
        } else {
            self.queue.finish(job, &entry).await
        }
    }

    /// Jobs taken from the queue join this instance's schedule (unless already held).
    fn take_over(&self, taken: Vec<Taken>) {
        if taken.is_empty() {
            return;
        }
        let depth = {
            let mut s = self.sched();
            let now = wall_ms();
            for t in taken {
                if s.open.contains_key(&t.job.trace_id) {
                    continue;
                }
                s.entries.insert(t.job.trace_id.clone(), t.entry);
                s.place(t.job, now);
            }
            s.open.len()
        };
        self.metrics.queue_depth.set(depth as i64);
        self.wake.notify_one();
    }

    /// A job by trace_id: the live record when this instance holds it, else the stored one.
    pub async fn job(&self, trace_id: &str) -> Result<Option<Job>, StoreError> {
        if let Some(job) = self.sched().open.get(trace_id) {
            return Ok(Some(job.clone()));
        }
        self.queue.get(trace_id).await
    }

    /// Stored jobs in one state, oldest first, at most `limit`.
    pub async fn list(&self, state: JobState, limit: usize) -> Result<Vec<Job>, StoreError> {
        self.queue.list(state, limit).await
    }

    /// Puts a dead-lettered job back to pushing with a fresh schedule; `None` when there is no
    /// dead job with that trace_id.
    pub async fn retry(&self, trace_id: &str) -> Result<Option<Job>, StoreError> {
        let Some(mut job) = self.job(trace_id).await? else {
            return Ok(None);
        };
        if job.state != JobState::Dead {
            return Ok(None);
        }
        job.state = JobState::Pushing;
        job.attempts = 0;
        job.next_at_ms = wall_ms();
        job.finished_ms = None;
        self.queue.reopen(&job).await?;
        Ok(Some(job))
    }

    /// Forgets finished jobs that finished before `cutoff_ms`; returns how many.
    pub async fn remove_finished_before(&self, cutoff_ms: u64) -> Result<usize, StoreError> {
        self.queue.forget_before(cutoff_ms).await
    }

    /// Unfinished jobs.
    pub fn depth(&self) -> usize {
        self.sched().open.len()
    }
}

#[cfg(test)]
mod tests {
    use super::scheduler::tests::{config, job};
    use super::*;

    /// Finished jobs past retention go; recent ones stay readable; a reopened pipeline resumes
    /// exactly the unfinished jobs.
    #[tokio::test]
    async fn retention_removes_old_finished_jobs_and_a_restart_resumes_open_ones() {
        let dir = std::env::temp_dir().join(format!("modgate-media-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let durable = Arc::new(crate::state::durable::Durable::open(&dir, 1 << 20).unwrap());
        let metrics = || crate::metrics::Metrics::new().unwrap().media;
        let media =
            MediaJobs::open(config(4, 4, 4), Arc::clone(&durable), None, metrics()).unwrap();
        for trace in ["open", "old", "recent"] {
            media
                .submit(job(trace, "A", "http://h.example/x"))
                .await
                .unwrap();
        }
        let taken = media.queue.take(10, Duration::ZERO).await.unwrap();
        assert_eq!(taken.len(), 3);
        for t in &taken[1..] {
            let mut j = t.job.clone();
            (j.state, j.finished_ms) = if j.trace_id == "old" {
                (JobState::Delivered, Some(1_000))
            } else {
                (JobState::Dead, Some(wall_ms()))
            };
            media.queue.finish(&j, &t.entry).await.unwrap();
        }
        assert_eq!(media.queue.unfinished().await.unwrap(), 1);
        let removed = media
            .remove_finished_before(wall_ms() - 60_000)
            .await
            .unwrap();
        assert_eq!(removed, 1);
        assert!(media.job("old").await.unwrap().is_none());
        assert_eq!(
            media.job("recent").await.unwrap().unwrap().state,
            JobState::Dead
        );
        let dead = media.list(JobState::Dead, 10).await.unwrap();
        assert_eq!(dead.len(), 1);
        drop(media);

        let media = MediaJobs::open(config(4, 4, 4), durable, None, metrics()).unwrap();
        assert_eq!(media.queue.unfinished().await.unwrap(), 1);
        let resumed = media.queue.take(10, Duration::ZERO).await.unwrap();
        assert_eq!(resumed.len(), 1);
        assert_eq!(resumed[0].job.trace_id, "open");
        assert_eq!(resumed[0].job.state, JobState::Queued);
        drop(media);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
