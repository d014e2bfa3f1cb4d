//! Media checks (SPEC §4): durable jobs, the guarded fetcher, analysis, and signed pushes that
//! are retried until delivered.
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
//! wall-clock (they are persisted), read from the system clock. [`run`] is started on a thread
//! and runtime of its own (`crate::serve`), so saturated request workers cannot starve it.

pub mod audio;
pub mod bank;
pub mod fetch;
pub mod guard;
pub mod images;
pub mod meta;
pub mod pdq;
pub mod push;
pub mod qr;
pub mod queue;
pub mod shared;
pub mod sniff;
pub mod store;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

use crate::api::Gateway;
use crate::config::MediaConfig;
use crate::metrics::MediaMetrics;
use crate::state::AppRegistry;
use bank::{Bank, BankMatch};
use fetch::{FetchError, FetchLimits, Fetcher};
use push::{DetailItem, Event, MediaInfo, MediaVerdict, Recipe, ResultItem};
use queue::{JobQueue, LocalQueue, Taken};
use sniff::MediaKind;
use store::{Job, JobState, JobStore, StoreError};

/// The errcode a push carries when the media could not be downloaded (SPEC §4).
pub const DOWNLOAD_FAILED: i32 = -1008;
/// The errcode a push carries when the file is not what `media_type` said.
pub const WRONG_TYPE: i32 = 40004;

/// Why a submission was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("the media queue is full")]
    Busy,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The media pipeline of one gateway.
pub struct Media {
    config: MediaConfig,
    /// The global hash bank (apps' banks hang off their `AppSlot`).
    pub global_bank: arc_swap::ArcSwap<Bank>,
    /// One permit per core: analyses running at once.
    analysis: tokio::sync::Semaphore,
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

impl std::fmt::Debug for Media {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Media").finish_non_exhaustive()
    }
}

/// What a dispatched step works on.
struct Work {
    job: Job,
    host: String,
}

#[derive(Default)]
struct Sched {
    /// Every unfinished job, by trace_id.
    open: HashMap<String, Job>,
    /// Runnable jobs per app, in order.
    ready: HashMap<String, VecDeque<String>>,
    /// Apps with runnable jobs, in turn.
    ring: VecDeque<String>,
    /// Pushes waiting for their next attempt: (due, trace_id).
    timers: BinaryHeap<Reverse<(u64, String)>>,
    running: usize,
    running_app: HashMap<String, usize>,
    running_host: HashMap<String, usize>,
    /// With the shared queue: each held job's stream entry, by trace_id.
    entries: HashMap<String, String>,
}

/// Unix milliseconds by the system clock.
pub fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn host_of(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default()
}

impl Sched {
    /// Queues a job for its next step. A job ready to push goes ahead of the app's jobs still to
    /// be fetched: work in progress is finished before new work starts, so under a flood of
    /// submissions verdicts keep flowing instead of every job waiting behind every newer fetch.
    fn make_ready(&mut self, job: &Job) {
        let queue = self.ready.entry(job.appid.clone()).or_default();
        if queue.is_empty() {
            self.ring.push_back(job.appid.clone());
        }
        if job.state == JobState::Pushing {
            queue.push_front(job.trace_id.clone());
        } else {
            queue.push_back(job.trace_id.clone());
        }
    }

    /// Puts an unfinished job where it belongs: runnable now, or on the timer heap.
    fn place(&mut self, job: Job, now: u64) {
        if job.state == JobState::Pushing && job.next_at_ms > now {
            self.timers
                .push(Reverse((job.next_at_ms, job.trace_id.clone())));
        } else {
            self.make_ready(&job);
        }
        self.open.insert(job.trace_id.clone(), job);
    }

    /// The host a job's next step talks to.
    fn host(job: &Job, apps: &AppRegistry) -> String {
        match job.state {
            JobState::Pushing => apps
                .get(&job.appid)
                .and_then(|a| {
                    a.config
                        .push_url
                        .as_ref()
                        .and_then(|u| u.host_str().map(str::to_owned))
                })
                .unwrap_or_default(),
            _ => host_of(&job.media_url),
        }
    }

    /// Starts what the limits allow; returns the work and when the next timer is due.
    fn take(
        &mut self,
        now: u64,
        config: &MediaConfig,
        apps: &AppRegistry,
    ) -> (Vec<Work>, Option<u64>) {
        while let Some(Reverse((due, _))) = self.timers.peek() {
            if *due > now {
                break;
            }
            let Some(Reverse((_, trace))) = self.timers.pop() else {
                break;
            };
            if let Some(job) = self.open.get(&trace) {
                let job = job.clone();
                self.make_ready(&job);
            }
        }
        let mut out = Vec::new();
        let mut idle = 0;
        while self.running < config.workers.get() && idle < self.ring.len() {
            let Some(app) = self.ring.pop_front() else {
                break;
            };
            let mut started = false;
            let app_running = self.running_app.get(&app).copied().unwrap_or(0);
            if app_running < config.per_app.get()
                && let Some(queue) = self.ready.get_mut(&app)
            {
                // The first of the app's next few jobs whose host has room.
                let found = queue.iter().take(32).enumerate().find_map(|(i, trace)| {
                    let job = self.open.get(trace)?;
                    let host = Self::host(job, apps);
                    let busy = self.running_host.get(&host).copied().unwrap_or(0);
                    (busy < config.per_host.get()).then_some((i, host))
                });
                if let Some((i, host)) = found
                    && let Some(trace) = queue.remove(i)
                    && let Some(job) = self.open.get(&trace)
                {
                    self.running += 1;
                    *self.running_app.entry(app.clone()).or_default() += 1;
                    *self.running_host.entry(host.clone()).or_default() += 1;
                    out.push(Work {
                        job: job.clone(),
                        host,
                    });
                    started = true;
                }
            }
            if self.ready.get(&app).is_some_and(|q| !q.is_empty()) {
                self.ring.push_back(app);
            } else {
                self.ready.remove(&app);
            }
            idle = if started { 0 } else { idle + 1 };
        }
        let next = self.timers.peek().map(|Reverse((due, _))| *due);
        (out, next)
    }

    /// Records the end of a step.
    fn finish(&mut self, job: Job, host: &str, now: u64) {
        self.running = self.running.saturating_sub(1);
        decrement(&mut self.running_app, &job.appid);
        decrement(&mut self.running_host, host);
        if job.state.is_open() {
            self.place(job, now);
        } else {
            self.open.remove(&job.trace_id);
            self.entries.remove(&job.trace_id);
        }
    }
}

fn decrement(map: &mut HashMap<String, usize>, key: &str) {
    if let Some(n) = map.get_mut(key) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            map.remove(key);
        }
    }
}

impl Media {
    /// Opens the job queue: the embedded store's, or `shared` when instances share Redis. Jobs
    /// left unfinished are taken again by the dispatcher ([`run`]).
    pub fn open(
        config: MediaConfig,
        durable: Arc<crate::state::durable::Durable>,
        shared: Option<shared::SharedJobs>,
        metrics: MediaMetrics,
    ) -> Result<Media, String> {
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
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Ok(Media {
            lease: config.lease,
            config,
            global_bank: arc_swap::ArcSwap::from_pointee(Bank::default()),
            analysis: tokio::sync::Semaphore::new(cores),
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

    /// Accepts a job: durably written before this returns, or refused.
    pub async fn submit(&self, job: Job) -> Result<(), SubmitError> {
        if !self
            .queue
            .submit(&job, self.config.max_queued.get())
            .await?
        {
            self.metrics.jobs.with_label_values(&["refused_busy"]).inc();
            return Err(SubmitError::Busy);
        }
        self.metrics.jobs.with_label_values(&["accepted"]).inc();
        Ok(())
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

/// Runs the dispatcher until shutdown. Steps in flight at shutdown are abandoned; their jobs
/// are resumed from the store on the next start.
pub async fn run(gw: Arc<Gateway>, mut shutdown: watch::Receiver<bool>) {
    let media = &gw.media;
    let mut steps = JoinSet::new();
    steps.spawn(feed(Arc::clone(&gw), shutdown.clone()));
    let mut last_sweep = Instant::now();
    loop {
        let now = wall_ms();
        let (work, next_due) = media.sched().take(now, &media.config, &gw.apps);
        for w in work {
            let gw = Arc::clone(&gw);
            steps.spawn(async move {
                let host = w.host.clone();
                let job = step(&gw, w.job).await;
                let depth = {
                    let mut s = gw.media.sched();
                    s.finish(job, &host, wall_ms());
                    s.open.len()
                };
                gw.media.metrics.queue_depth.set(depth as i64);
                gw.media.wake.notify_one();
            });
        }
        while let Some(done) = steps.try_join_next() {
            if let Err(e) = done {
                tracing::error!(error = %e, "media step failed");
            }
        }
        if last_sweep.elapsed() >= SWEEP_EVERY {
            last_sweep = Instant::now();
            let gw = Arc::clone(&gw);
            steps.spawn(async move { sweep_finished(&gw).await });
        }
        let wait = next_due.map_or(SWEEP_EVERY, |due| {
            Duration::from_millis(due.saturating_sub(now))
        });
        tokio::select! {
            () = media.wake.notified() => {}
            () = tokio::time::sleep(wait.min(SWEEP_EVERY)) => {}
            () = crate::transport::shutdown_requested(&mut shutdown) => break,
        }
    }
    steps.shutdown().await;
}

/// Feeds the schedule from the queue: this instance's own unfinished jobs first, then new jobs
/// as the schedule has room; every lease / 3 keeps the jobs held and takes over those another
/// instance stopped renewing (a no-op in process). Runs until shutdown.
async fn feed(gw: Arc<Gateway>, mut shutdown: watch::Receiver<bool>) {
    let media = &gw.media;
    let maintain_every = media.lease / 3;
    let mut last_maintained = Instant::now();
    let mut failures = 0u32;
    loop {
        let step = async {
            if last_maintained.elapsed() >= maintain_every {
                let held: Vec<String> = media.sched().entries.values().cloned().collect();
                let taken = media.queue.maintain(&held).await?;
                if !taken.is_empty() {
                    tracing::warn!(
                        jobs = taken.len(),
                        "media jobs taken over from an instance that stopped renewing them"
                    );
                }
                media.take_over(taken);
                last_maintained = Instant::now();
            }
            let room = media
                .config
                .max_queued
                .get()
                .saturating_sub(media.depth())
                .min(1024);
            if room == 0 {
                tokio::time::sleep(Duration::from_millis(200)).await;
            } else {
                let wait = maintain_every
                    .saturating_sub(last_maintained.elapsed())
                    .clamp(Duration::from_millis(10), Duration::from_secs(1));
                media.take_over(media.queue.take(room, wait).await?);
            }
            Ok::<(), StoreError>(())
        };
        let result = tokio::select! {
            () = crate::transport::shutdown_requested(&mut shutdown) => return,
            r = step => r,
        };
        match result {
            Ok(()) => failures = 0,
            Err(e) => {
                failures += 1;
                if failures == 1 || failures.is_power_of_two() {
                    tracing::error!(error = %e, failures, "media job queue unreachable");
                }
                let backoff = Duration::from_millis(100 * u64::from(failures.min(50)));
                tokio::select! {
                    () = crate::transport::shutdown_requested(&mut shutdown) => return,
                    () = tokio::time::sleep(backoff) => {}
                }
            }
        }
    }
}

/// How often finished jobs past their retention are removed.
const SWEEP_EVERY: Duration = Duration::from_secs(600);

/// Removes finished jobs past `media.retention` from the store.
async fn sweep_finished(gw: &Gateway) {
    let cutoff = wall_ms().saturating_sub(gw.media.config.retention.as_millis() as u64);
    match gw.media.remove_finished_before(cutoff).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(removed = n, "finished media jobs past retention removed"),
        Err(e) => tracing::error!(error = %e, "media retention sweep failed"),
    }
}

/// Runs one step of a job and writes its new state; returns the job as it now is.
async fn step(gw: &Gateway, mut job: Job) -> Job {
    match job.state {
        JobState::Queued => analyse_step(gw, &mut job).await,
        JobState::Pushing => push_step(gw, &mut job).await,
        _ => return job,
    }
    if let Err(e) = gw.media.record(&job).await {
        // The job goes on in memory; after a restart the stored state repeats this step.
        tracing::error!(trace_id = %job.trace_id, error = %e, "media job state not stored");
    }
    job
}

async fn analyse_step(gw: &Gateway, job: &mut Job) {
    let m = &gw.media.metrics;
    let started = Instant::now();
    let fetched = gw.media.fetcher.fetch(&job.media_url).await;
    let outcome = match &fetched {
        Ok(_) => "ok",
        Err(e) => fetch_kind(e),
    };
    m.fetch_seconds
        .with_label_values(&[outcome])
        .observe(started.elapsed().as_secs_f64());
    let verdict = match fetched {
        Ok(bytes) => {
            m.fetch_bytes.inc_by(bytes.len() as u64);
            analyse_off_the_workers(gw, &job.appid, job.media_type, bytes).await
        }
        Err(e) => {
            tracing::info!(trace_id = %job.trace_id, error = %e, "media download failed");
            failed(DOWNLOAD_FAILED, format!("media download failed: {e}"))
        }
    };
    if verdict.errcode != 0 {
        job.last_error = Some(verdict.errmsg.clone());
    } else {
        let seen = match verdict.result.suggest.as_str() {
            "risky" => Some(crate::risk::Observed::Risky),
            "review" => Some(crate::risk::Observed::Review),
            _ => None,
        };
        if let (Some(seen), Some(app)) = (seen, gw.apps.get(&job.appid)) {
            let now = gw.clock.now_secs();
            app.slot
                .risk
                .verdict(&gw.config.risk, &job.openid, now, seen);
        }
    }
    if verdict.errcode == 0 {
        queue_for_review(gw, job, &verdict);
    }
    job.verdict = Some(verdict);
    let has_push_url = gw
        .apps
        .get(&job.appid)
        .is_some_and(|a| a.config.push_url.is_some());
    if has_push_url {
        job.state = JobState::Pushing;
        job.next_at_ms = wall_ms();
    } else {
        finish(gw, job, JobState::Done);
    }
}

/// Puts a `review` verdict, or a sampled `pass`, in the app's review queue.
fn queue_for_review(gw: &Gateway, job: &Job, verdict: &MediaVerdict) {
    let reason = match verdict.result.suggest.as_str() {
        "review" => crate::review::Reason::Review,
        "pass" if gw.review.sample_pass() => crate::review::Reason::Sample,
        _ => return,
    };
    let mut labels: Vec<u32> = std::iter::once(verdict.result.label)
        .chain(
            verdict
                .detail
                .iter()
                .filter(|d| d.suggest != "pass")
                .map(|d| d.label),
        )
        .collect();
    labels.sort_unstable();
    labels.dedup();
    let hits = verdict
        .detail
        .iter()
        .filter(|d| d.suggest != "pass")
        .map(|d| d.strategy.clone())
        .collect();
    let media_type = match job.media_type {
        MediaKind::Image => "image",
        MediaKind::Audio => "audio",
    };
    gw.review.enqueue(crate::review::Item {
        id: job.trace_id.clone(),
        appid: job.appid.clone(),
        openid: Some(job.openid.clone()),
        scene: job.scene,
        reason,
        suggest: verdict.result.suggest.clone(),
        label: verdict.result.label,
        labels,
        hits,
        content: crate::review::Content::Media {
            url: job.media_url.clone(),
            media_type: media_type.into(),
            analysis: serde_json::to_value(verdict).unwrap_or_default(),
            hash: verdict.media.as_ref().and_then(|m| m.hash.clone()),
        },
        created_ms: gw.clock.now_ms(),
        claim: None,
        decision: None,
    });
}

/// What an analysis consults besides the bytes.
pub struct Analysis<'a> {
    pub global: &'a Bank,
    pub app: Option<&'a Bank>,
    /// PDQ bits an image may differ from a bank entry.
    pub pdq_distance: u32,
    pub limits: images::ImageLimits,
    /// The text engine for text found in images (QR codes, embedded text); `None` skips both.
    pub text: Option<TextCheck<'a>>,
    /// Whether images are scanned for QR codes (`media.qr_scan`).
    pub qr_scan: bool,
}

/// How text found in media is judged.
pub struct TextCheck<'a> {
    pub engine: &'a crate::engine::Engine,
    /// The app's custom keyword table.
    pub table: Option<&'a crate::engine::matcher::Matcher>,
    /// What a QR code leading elsewhere is: `risky`, `review` or `pass`.
    pub qr_links: &'a str,
}

/// The media label set (SPEC §4) for an engine label: labels outside it become 21000, other.
fn media_label(code: u32) -> u32 {
    if [100, 10001, 20001, 20002, 20006, 21000].contains(&code) {
        code
    } else {
        21000
    }
}

fn severity(suggest: &str) -> u8 {
    match suggest {
        "risky" => 2,
        "review" => 1,
        _ => 0,
    }
}

/// The detail item for a piece of text found in media: the engine's verdict on it, and for a
/// QR code that leads elsewhere the configured link verdict; the more severe, or none.
fn judge_text(strategy: &str, text: &str, t: &TextCheck<'_>, link: bool) -> Option<DetailItem> {
    let verdict = t.engine.check_with(&[text], t.table);
    let mut best = None;
    if verdict.result.suggest != crate::engine::Suggest::Pass {
        let prob = verdict
            .detail
            .iter()
            .find_map(|d| match d {
                crate::engine::DetailItem::ContentModel(c) => Some(u32::from(c.prob)),
                _ => None,
            })
            .unwrap_or(90);
        best = Some(DetailItem {
            strategy: strategy.into(),
            errcode: 0,
            suggest: verdict.result.suggest.as_str().into(),
            label: media_label(verdict.result.label.code()),
            prob,
        });
    }
    if link && t.qr_links != "pass" {
        let link_item = DetailItem {
            strategy: strategy.into(),
            errcode: 0,
            suggest: t.qr_links.into(),
            label: 10001,
            prob: 90,
        };
        if best
            .as_ref()
            .is_none_or(|b| severity(&link_item.suggest) > severity(&b.suggest))
        {
            best = Some(link_item);
        }
    }
    best
}

/// The verdict on fetched bytes, deterministic for the same bytes and banks:
///
/// 1. the format, from the bytes: not the kind `media_type` said → errcode 40004 with the reason;
/// 2. images are decoded within limits (undecodable or oversized → 40004) and PDQ-hashed; a hash of
///    enough quality is matched against the global bank and the app's within `pdq_distance`;
///    audio must read as its container (else 40004 with the reason), its duration is read, and
///    it is matched by its SHA-256;
/// 3. images are scanned for QR codes: each code's text goes through the text engine (and the
///    app's keyword table), and a code that leads elsewhere is `media.qr_links` advertising;
///    text embedded in the file (PNG text chunks, JPEG comments, EXIF, XMP, GIF comments) goes
///    through the text engine too;
/// 4. detail: a `format` item, one `hash_bank` item per matching entry (`prob` is the share of
///    equal bits, 100 for an exact match), one `qr_code` or `image_text` item per code or text
///    judged not to pass;
/// 5. result: among bank matches the closest decides (a tie goes to the more severe); when that
///    is a `pass` entry the image is known-good and passes whatever else it holds; otherwise the
///    most severe of that and the QR items decides; nothing found → pass.
pub fn analyse(bytes: &[u8], expected: MediaKind, a: &Analysis<'_>) -> MediaVerdict {
    let expected_name = match expected {
        MediaKind::Image => "an image",
        MediaKind::Audio => "audio",
    };
    let format = match sniff::identify(bytes) {
        Some(format) if format.kind() == expected => format,
        Some(format) => {
            return failed(
                WRONG_TYPE,
                format!("media is {}, not {expected_name}", format.name()),
            );
        }
        None => {
            return failed(
                WRONG_TYPE,
                format!(
                    "media is not a supported image or audio format (expected {expected_name})"
                ),
            );
        }
    };
    let mut info = MediaInfo {
        format: format.name().into(),
        width: None,
        height: None,
        duration_ms: None,
        hash: None,
    };
    let banks = std::iter::once(a.global).chain(a.app);
    let mut matches: Vec<BankMatch<'_>> = Vec::new();
    let mut found_text: Vec<DetailItem> = Vec::new();
    match expected {
        MediaKind::Image => {
            let image = match images::decode(bytes, &a.limits) {
                Ok(image) => image,
                Err(e) => return failed(WRONG_TYPE, e.to_string()),
            };
            info.width = Some(image.width());
            info.height = Some(image.height());
            // Rotated and mirrored copies match too: the image's eight dihedral hashes.
            if let Some((hashes, quality)) = pdq::hash_image_dihedral(&image)
                && quality >= pdq::MIN_QUALITY
            {
                info.hash = Some(hashes[0].to_hex());
                for bank in banks {
                    matches.extend(bank.match_image_any(&hashes, a.pdq_distance));
                }
            }
            if let Some(t) = &a.text {
                let codes = if a.qr_scan {
                    qr::scan(&image)
                } else {
                    Vec::new()
                };
                for code in codes {
                    found_text.extend(judge_text("qr_code", &code, t, qr::points_elsewhere(&code)));
                }
                for text in meta::embedded_text(bytes, format) {
                    found_text.extend(judge_text("image_text", &text, t, false));
                }
            }
        }
        MediaKind::Audio => {
            match audio::probe(bytes, format) {
                Ok(audio) => {
                    info.duration_ms = Some((audio.duration_secs * 1000.0).round() as u64);
                    info.hash = Some(bank::content_hash(bytes));
                }
                Err(e) => return failed(WRONG_TYPE, e),
            }
            matches.extend(banks.filter_map(|b| b.match_audio(bytes)));
        }
    }
    let rank = |m: &BankMatch<'_>| severity(&m.entry.suggest);
    matches.sort_by(|x, y| {
        x.distance
            .cmp(&y.distance)
            .then_with(|| rank(y).cmp(&rank(x)))
            .then_with(|| x.entry.hash.cmp(&y.entry.hash))
    });
    let mut detail = vec![DetailItem {
        strategy: "format".into(),
        errcode: 0,
        suggest: "pass".into(),
        label: 100,
        prob: 100,
    }];
    detail.extend(matches.iter().map(|m| DetailItem {
        strategy: "hash_bank".into(),
        errcode: 0,
        suggest: m.entry.suggest.clone(),
        label: m.entry.label,
        prob: (256 - m.distance.min(256)) * 100 / 256,
    }));
    let known_good = matches.first().is_some_and(|m| m.entry.suggest == "pass");
    let mut result = ResultItem {
        suggest: "pass".into(),
        label: 100,
    };
    if !known_good {
        let bank_decision = matches
            .first()
            .map(|m| (m.entry.suggest.as_str(), m.entry.label));
        let text_decisions = found_text.iter().map(|d| (d.suggest.as_str(), d.label));
        for (suggest, label) in bank_decision.into_iter().chain(text_decisions) {
            if severity(suggest) > severity(&result.suggest) {
                result = ResultItem {
                    suggest: suggest.into(),
                    label,
                };
            }
        }
    }
    detail.extend(found_text);
    MediaVerdict {
        errcode: 0,
        errmsg: "ok".into(),
        detail,
        result,
        media: Some(info),
    }
}

/// Runs [`analyse`] on the blocking pool, at most one analysis per core at a time (decoding is
/// CPU and memory heavy; `media.workers` bounds network work, not this).
async fn analyse_off_the_workers(
    gw: &Gateway,
    appid: &str,
    kind: MediaKind,
    bytes: bytes::Bytes,
) -> MediaVerdict {
    let Ok(_permit) = gw.media.analysis.acquire().await else {
        return failed(-1, "media analysis is shutting down".into());
    };
    let global = gw.media.global_bank.load_full();
    let slot = gw.apps.get(appid).map(|a| Arc::clone(&a.slot));
    let app = slot.as_ref().and_then(|s| s.bank.load_full());
    let table = slot.as_ref().and_then(|s| s.table());
    let engine = gw.engine.load_full();
    let config = gw.media.config.clone();
    let done = tokio::task::spawn_blocking(move || {
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
        };
        analyse(&bytes, kind, &a)
    })
    .await;
    done.unwrap_or_else(|e| {
        tracing::error!(error = %e, "media analysis failed");
        failed(-1, "media analysis failed".into())
    })
}

/// A verdict for a check that could not be made: no detail, and `review`, never `pass`.
fn failed(errcode: i32, errmsg: String) -> MediaVerdict {
    MediaVerdict {
        errcode,
        errmsg,
        detail: Vec::new(),
        result: ResultItem {
            suggest: "review".into(),
            label: 100,
        },
        media: None,
    }
}

fn fetch_kind(e: &FetchError) -> &'static str {
    match e {
        FetchError::Url(_) => "bad_url",
        FetchError::Denied(_) => "denied",
        FetchError::TooLarge(_) => "too_large",
        FetchError::Status(_) => "status",
        FetchError::Timeout => "timeout",
        FetchError::Redirects => "redirects",
        FetchError::Transport(_) => "transport",
    }
}

fn finish(gw: &Gateway, job: &mut Job, state: JobState) {
    job.state = state;
    job.finished_ms = Some(wall_ms());
    let m = &gw.media.metrics;
    m.jobs.with_label_values(&[state.as_str()]).inc();
    if state == JobState::Dead {
        m.dead_letters.inc();
    }
}

async fn push_step(gw: &Gateway, job: &mut Job) {
    let Some(app) = gw.apps.get(&job.appid) else {
        job.last_error = Some("the app is no longer registered".into());
        finish(gw, job, JobState::Dead);
        return;
    };
    let Some(url) = app.config.push_url.clone() else {
        finish(gw, job, JobState::Done);
        return;
    };
    let Some(verdict) = job.verdict.clone() else {
        // Cannot happen (a job is analysed before it pushes); analyse again rather than lose it.
        job.state = JobState::Queued;
        return;
    };
    let c = &app.config;
    let recipe = Recipe {
        format: c.push_format,
        mode: c.push_mode,
        token: c.push_token.as_ref().map_or("", |t| t.expose()),
        aes_key: c.aes_key.as_ref(),
        appid: &c.appid,
        original_id: c.original_id.as_deref().unwrap_or(""),
    };
    let now_secs = gw.clock.now_secs();
    let event = Event::new(
        recipe.original_id,
        &job.openid,
        now_secs,
        &job.appid,
        &job.trace_id,
        &verdict,
    );
    let mut random = [0u8; 24];
    let _ = getrandom::fill(&mut random);
    let nonce = u32::from_le_bytes([random[16], random[17], random[18], random[19]]).to_string();
    let salt: [u8; 16] = random[..16].try_into().unwrap_or([0; 16]);
    let signed = push::sign(&recipe, &event, now_secs, &nonce, &salt);
    job.attempts += 1;
    let m = &gw.media.metrics;
    match gw.media.fetcher.push(&url, &signed).await {
        Ok(_) => {
            m.push_attempts.with_label_values(&["delivered"]).inc();
            job.last_error = None;
            finish(gw, job, JobState::Delivered);
        }
        Err(e) => {
            m.push_attempts.with_label_values(&[fetch_kind(&e)]).inc();
            job.last_error = Some(format!("push attempt {} failed: {e}", job.attempts));
            let retries = &gw.media.config.push_retry;
            match retries.get(job.attempts as usize - 1) {
                Some(wait) => {
                    let jitter =
                        u32::from_le_bytes([random[20], random[21], random[22], random[23]]);
                    job.next_at_ms = wall_ms() + jittered(*wait, jitter).as_millis() as u64;
                }
                None => {
                    tracing::warn!(trace_id = %job.trace_id, attempts = job.attempts, error = %e, "push dead-lettered");
                    finish(gw, job, JobState::Dead);
                }
            }
        }
    }
}

/// `wait` scaled by a factor in [0.8, 1.2) drawn from `random`, so retries of many jobs that
/// failed together do not arrive together.
fn jittered(wait: Duration, random: u32) -> Duration {
    let unit = f64::from(random) / (f64::from(u32::MAX) + 1.0);
    wait.mul_f64(0.8 + 0.4 * unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn analysis_passes_the_right_kind_and_names_the_wrong_one() {
        let empty = Bank::default();
        let a = analysis(&empty, None);
        let png = encode(&pdq::tests::scene(120, 90, 1), image::ImageFormat::Png);
        let v = analyse(&png, MediaKind::Image, &a);
        assert_eq!((v.errcode, v.result.suggest.as_str()), (0, "pass"));
        assert_eq!(v.detail.len(), 1);
        let v = analyse(&png, MediaKind::Audio, &a);
        assert_eq!(v.errcode, WRONG_TYPE);
        assert_eq!(v.errmsg, "media is png, not audio");
        assert_eq!(v.result.suggest, "review");
        let v = analyse(b"<html>", MediaKind::Image, &a);
        assert!(v.errmsg.contains("not a supported"), "{}", v.errmsg);
        // The right magic, but no image behind it.
        let v = analyse(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", MediaKind::Image, &a);
        assert_eq!(v.errcode, WRONG_TYPE);
        assert!(v.errmsg.contains("cannot be decoded"), "{}", v.errmsg);
    }

    fn analysis<'a>(global: &'a Bank, app: Option<&'a Bank>) -> Analysis<'a> {
        Analysis {
            global,
            app,
            pdq_distance: 31,
            limits: images::ImageLimits::default(),
            text: None,
            qr_scan: true,
        }
    }

    fn encode(img: &image::RgbImage, format: image::ImageFormat) -> Vec<u8> {
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    fn banked(hash: String, kind: MediaKind, label: u32, suggest: &str) -> bank::BankEntry {
        bank::BankEntry {
            hash,
            kind,
            label,
            suggest: suggest.into(),
            note: None,
        }
    }

    /// A banked image is found in a resized, re-encoded copy; the closest entry decides; the
    /// app's bank and the global bank both count; audio matches by exact content.
    #[test]
    fn bank_matches_compose_into_the_verdict() {
        let original = pdq::tests::scene(640, 480, 21);
        let h = pdq::hash_image(&image::DynamicImage::ImageRgb8(original.clone()))
            .unwrap()
            .0;
        let copy =
            image::imageops::resize(&original, 320, 240, image::imageops::FilterType::Triangle);
        let copy = encode(&copy, image::ImageFormat::Jpeg);
        let global =
            Bank::build(vec![banked(h.to_hex(), MediaKind::Image, 20002, "risky")]).unwrap();
        let v = analyse(&copy, MediaKind::Image, &analysis(&global, None));
        assert_eq!(
            (v.result.suggest.as_str(), v.result.label),
            ("risky", 20002)
        );
        assert_eq!(v.detail[1].strategy, "hash_bank");
        assert!(
            v.detail[1].prob >= 88 && v.detail[1].prob <= 100,
            "{:?}",
            v.detail[1]
        );
        // A rotated copy is caught through the dihedral hashes.
        let turned = image::DynamicImage::ImageRgb8(original.clone())
            .rotate90()
            .to_rgb8();
        let turned = encode(&turned, image::ImageFormat::Png);
        let v = analyse(&turned, MediaKind::Image, &analysis(&global, None));
        assert_eq!(v.result.suggest, "risky", "{v:?}");
        // The same image known-good in the app's bank, exactly: closer, so it passes.
        let exact = pdq::hash_image(&image::load_from_memory(&copy).unwrap())
            .unwrap()
            .0;
        let app = Bank::build(vec![banked(
            exact.to_hex(),
            MediaKind::Image,
            20002,
            "pass",
        )])
        .unwrap();
        let v = analyse(&copy, MediaKind::Image, &analysis(&global, Some(&app)));
        assert_eq!(v.result.suggest, "pass");
        assert_eq!(v.detail.len(), 3);
        assert_eq!(v.detail[1].prob, 100);
        // An unrelated image matches nothing.
        let other = encode(&pdq::tests::scene(640, 480, 99), image::ImageFormat::Png);
        let v = analyse(&other, MediaKind::Image, &analysis(&global, None));
        assert_eq!((v.result.suggest.as_str(), v.detail.len()), ("pass", 1));
        // Audio: exact content only.
        let wav = audio::tests::wav(0.5);
        let audio_bank = Bank::build(vec![banked(
            bank::content_hash(&wav),
            MediaKind::Audio,
            20001,
            "review",
        )])
        .unwrap();
        let v = analyse(&wav, MediaKind::Audio, &analysis(&audio_bank, None));
        assert_eq!(
            (v.result.suggest.as_str(), v.result.label),
            ("review", 20001)
        );
        assert_eq!(v.media.as_ref().unwrap().duration_ms, Some(500));
        let other_wav = audio::tests::wav(0.6);
        let v = analyse(&other_wav, MediaKind::Audio, &analysis(&audio_bank, None));
        assert_eq!(v.result.suggest, "pass");
        // Audio that does not read as its container fails with the reason.
        let v = analyse(&wav[..30], MediaKind::Audio, &analysis(&audio_bank, None));
        assert_eq!(v.errcode, WRONG_TYPE);
        assert!(v.errmsg.contains("not a valid wav file"), "{}", v.errmsg);
    }

    #[test]
    fn jitter_stays_within_a_fifth() {
        let wait = Duration::from_secs(100);
        assert_eq!(jittered(wait, 0), Duration::from_secs(80));
        assert!(jittered(wait, u32::MAX) < Duration::from_secs(120));
        assert!(jittered(wait, u32::MAX) > Duration::from_secs(119));
    }

    fn job(trace: &str, app: &str, url: &str) -> Job {
        Job {
            trace_id: trace.into(),
            appid: app.into(),
            openid: "o".into(),
            scene: 1,
            media_url: url.into(),
            media_type: MediaKind::Image,
            created_ms: 0,
            state: JobState::Queued,
            verdict: None,
            attempts: 0,
            next_at_ms: 0,
            last_error: None,
            finished_ms: None,
        }
    }

    fn config(workers: usize, per_app: usize, per_host: usize) -> MediaConfig {
        let mut c = crate::config::Config::default().media;
        c.workers = std::num::NonZeroUsize::new(workers).unwrap();
        c.per_app = std::num::NonZeroUsize::new(per_app).unwrap();
        c.per_host = std::num::NonZeroUsize::new(per_host).unwrap();
        c
    }

    /// The dispatcher honours the global, per-app and per-host bounds and takes apps in turn.
    #[test]
    fn scheduling_respects_every_bound_and_takes_apps_in_turn() {
        let apps = AppRegistry::default();
        let mut s = Sched::default();
        for i in 0..10 {
            s.place(
                job(
                    &format!("a{i}"),
                    "A",
                    &format!("http://h{}.example/x", i % 2),
                ),
                0,
            );
        }
        for i in 0..3 {
            s.place(job(&format!("b{i}"), "B", "http://h0.example/y"), 0);
        }
        let c = config(5, 3, 2);
        let (work, _) = s.take(0, &c, &apps);
        let traces: Vec<&str> = work.iter().map(|w| w.job.trace_id.as_str()).collect();
        // A gets h0 then h1 then h0 (per-app 3); B shares h0, which is then full (per-host 2).
        assert_eq!(traces, ["a0", "b0", "a1", "a3"]);
        assert_eq!(s.running, 4);
        assert_eq!(s.running_host["h0.example"], 2);
        // Finishing b0 frees h0 and a B slot: b1 goes next.
        let mut b0 = work[1].job.clone();
        b0.state = JobState::Delivered;
        s.finish(b0, "h0.example", 0);
        let (work, _) = s.take(0, &c, &apps);
        let traces: Vec<&str> = work.iter().map(|w| w.job.trace_id.as_str()).collect();
        assert_eq!(traces, ["b1"]);
        assert!(!s.open.contains_key("b0"));
    }

    /// Finished jobs past retention go; recent ones stay readable; a reopened pipeline resumes
    /// exactly the unfinished jobs.
    #[tokio::test]
    async fn retention_removes_old_finished_jobs_and_a_restart_resumes_open_ones() {
        let dir = std::env::temp_dir().join(format!("modgate-media-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let durable = Arc::new(crate::state::durable::Durable::open(&dir, 1 << 20).unwrap());
        let metrics = || crate::metrics::Metrics::new().unwrap().media;
        let media = Media::open(config(4, 4, 4), Arc::clone(&durable), None, metrics()).unwrap();
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

        let media = Media::open(config(4, 4, 4), durable, None, metrics()).unwrap();
        assert_eq!(media.queue.unfinished().await.unwrap(), 1);
        let resumed = media.queue.take(10, Duration::ZERO).await.unwrap();
        assert_eq!(resumed.len(), 1);
        assert_eq!(resumed[0].job.trace_id, "open");
        assert_eq!(resumed[0].job.state, JobState::Queued);
        drop(media);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A QR code drawn into a photo, `scale` pixels per module with a 4-module quiet zone.
    pub(crate) fn with_qr(photo: &image::RgbImage, text: &str, scale: u32) -> image::RgbImage {
        let code = qrcode::QrCode::new(text.as_bytes()).unwrap();
        let modules = code.width() as u32;
        let colors = code.to_colors();
        let mut out = photo.clone();
        let side = (modules + 8) * scale;
        for y in 0..side {
            for x in 0..side {
                let (mx, my) = ((x / scale) as i64 - 4, (y / scale) as i64 - 4);
                let dark = mx >= 0
                    && my >= 0
                    && (mx as u32) < modules
                    && (my as u32) < modules
                    && colors[(my as u32 * modules + mx as u32) as usize] == qrcode::Color::Dark;
                let v = if dark { 0 } else { 255 };
                out.put_pixel(x + 20, y + 20, image::Rgb([v, v, v]));
            }
        }
        out
    }

    /// QR codes are found and judged: a link is advertising (as configured), risky text in a
    /// code is risky, a plain harmless code passes; without a text check there is no scan.
    #[test]
    fn qr_codes_are_read_and_judged() {
        let engine = crate::build_engine(&crate::config::EngineConfig::default()).unwrap();
        let empty = Bank::default();
        let photo = pdq::tests::scene(640, 480, 5);
        let check = |text: &str, links: &str| {
            let png = encode(&with_qr(&photo, text, 6), image::ImageFormat::Png);
            let mut a = analysis(&empty, None);
            a.text = Some(TextCheck {
                engine: &engine,
                table: None,
                qr_links: links,
            });
            analyse(&png, MediaKind::Image, &a)
        };
        let v = check("https://example.com/promo", "risky");
        assert_eq!(
            (v.result.suggest.as_str(), v.result.label),
            ("risky", 10001),
            "{v:?}"
        );
        assert_eq!(v.detail.last().unwrap().strategy, "qr_code");
        let v = check("https://example.com/promo", "review");
        assert_eq!(
            (v.result.suggest.as_str(), v.result.label),
            ("review", 10001)
        );
        let v = check("我们去网络赌博吧", "risky");
        assert_eq!(
            (v.result.suggest.as_str(), v.result.label),
            ("risky", 20006),
            "{v:?}"
        );
        // Text embedded in the file is judged too.
        let mut a = analysis(&empty, None);
        a.text = Some(TextCheck {
            engine: &engine,
            table: None,
            qr_links: "risky",
        });
        for (file, what) in [
            (meta::tests::png_with_text("网络赌博"), "png"),
            (meta::tests::jpeg_with_text("网络赌博"), "jpeg"),
            (meta::tests::gif_with_comment("网络赌博"), "gif"),
        ] {
            let v = analyse(&file, MediaKind::Image, &a);
            assert_eq!(
                (v.result.suggest.as_str(), v.result.label),
                ("risky", 20006),
                "{what}: {v:?}"
            );
            assert_eq!(v.detail.last().unwrap().strategy, "image_text", "{what}");
        }
        let v = check("今天天气很好", "risky");
        assert_eq!(
            (v.result.suggest.as_str(), v.detail.len()),
            ("pass", 1),
            "{v:?}"
        );
        // Without a text check the code is not read.
        let png = encode(
            &with_qr(&photo, "https://example.com", 6),
            image::ImageFormat::Png,
        );
        let v = analyse(&png, MediaKind::Image, &analysis(&empty, None));
        assert_eq!(v.result.suggest, "pass");
    }

    /// A job ready to push is taken before the app's jobs still waiting to be fetched.
    #[test]
    fn pushes_go_ahead_of_fetches() {
        let apps = AppRegistry::default();
        let mut s = Sched::default();
        for i in 0..5 {
            s.place(job(&format!("f{i}"), "A", "http://h.example/x"), 0);
        }
        let mut p = job("p", "A", "http://h.example/x");
        p.state = JobState::Pushing;
        s.place(p, 0);
        let (work, _) = s.take(0, &config(1, 1, 1), &apps);
        assert_eq!(work[0].job.trace_id, "p");
    }

    /// A push waiting for a retry is not runnable before its time, and is after.
    #[test]
    fn retries_wait_for_their_time() {
        let apps = AppRegistry::default();
        let mut s = Sched::default();
        let mut j = job("t", "A", "http://h.example/x");
        j.state = JobState::Pushing;
        j.next_at_ms = 1_000;
        s.place(j, 0);
        let c = config(5, 5, 5);
        let (work, next) = s.take(999, &c, &apps);
        assert!(work.is_empty());
        assert_eq!(next, Some(1_000));
        let (work, next) = s.take(1_000, &c, &apps);
        assert_eq!(work.len(), 1);
        assert_eq!(next, None);
    }
}
