//! The dispatcher and the steps of a job: fetch and analyse, then push with retries; what a
//! verdict sets off is handed to [`crate::effects`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::MediaJobs;
use super::fetch::FetchError;
use super::push::{self, Event, Recipe};
use super::store::{Job, JobState, StoreError};
use crate::clock::{SharedClock, wall_ms};
use crate::effects::{Effects, Judged};
use crate::engine::{Engine, Suggest};
use crate::media::sniff::MediaKind;
use crate::media::verdict::MediaVerdict;
use crate::media::{DOWNLOAD_FAILED, failed};
use crate::review::{Content, Item, Reason};
use crate::tenants::AppRegistry;
use crate::usage::{Checked, Usage};

/// What the pipeline works with: its own jobs, and the few handles of the gateway a step needs.
#[derive(Clone)]
pub struct Pipeline {
    pub jobs: Arc<MediaJobs>,
    pub apps: Arc<AppRegistry>,
    /// The text engine in force (for text found in files).
    pub engine: Arc<ArcSwap<Engine>>,
    pub effects: Effects,
    pub clock: SharedClock,
    /// Each app's verdicts over time.
    pub usage: Arc<Usage>,
}

/// Runs the dispatcher until shutdown. Steps in flight at shutdown are abandoned; their jobs
/// are resumed from the store on the next start.
pub async fn run(p: Pipeline, mut shutdown: watch::Receiver<bool>) {
    let media = &p.jobs;
    let mut steps = JoinSet::new();
    steps.spawn(feed(p.clone(), shutdown.clone()));
    let mut last_sweep = Instant::now();
    loop {
        let now = wall_ms();
        let (work, next_due) = media.sched().take(now, &media.config, &p.apps);
        for w in work {
            let p = p.clone();
            steps.spawn(async move {
                let host = w.host.clone();
                let job = step(&p, w.job).await;
                let depth = {
                    let mut s = p.jobs.sched();
                    s.finish(job, &host, wall_ms());
                    s.open.len()
                };
                p.jobs.metrics.queue_depth.set(depth as i64);
                p.jobs.wake.notify_one();
            });
        }
        while let Some(done) = steps.try_join_next() {
            if let Err(e) = done {
                tracing::error!(error = %e, "media step failed");
            }
        }
        if last_sweep.elapsed() >= SWEEP_EVERY {
            last_sweep = Instant::now();
            let p = p.clone();
            steps.spawn(async move { sweep_finished(&p).await });
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
async fn feed(p: Pipeline, mut shutdown: watch::Receiver<bool>) {
    let media = &p.jobs;
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
async fn sweep_finished(p: &Pipeline) {
    let cutoff = wall_ms().saturating_sub(p.jobs.config.retention.as_millis() as u64);
    match p.jobs.remove_finished_before(cutoff).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(removed = n, "finished media jobs past retention removed"),
        Err(e) => tracing::error!(error = %e, "media retention sweep failed"),
    }
}

/// Runs one step of a job and writes its new state; returns the job as it now is.
async fn step(p: &Pipeline, mut job: Job) -> Job {
    match job.state {
        JobState::Queued => analyse_step(p, &mut job).await,
        JobState::Pushing => push_step(p, &mut job).await,
        _ => return job,
    }
    if let Err(e) = p.jobs.record(&job).await {
        // The job goes on in memory; after a restart the stored state repeats this step.
        tracing::error!(trace_id = %job.trace_id, error = %e, "media job state not stored");
    }
    job
}

async fn analyse_step(p: &Pipeline, job: &mut Job) {
    let m = &p.jobs.metrics;
    let started = Instant::now();
    let fetched = p.jobs.fetcher.fetch(&job.media_url).await;
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
            {
                let slot = p.apps.get(&job.appid).map(|a| Arc::clone(&a.slot));
                p.jobs
                    .analyse(slot, p.engine.load_full(), job.media_type, bytes)
                    .await
            }
        }
        Err(e) => {
            tracing::info!(trace_id = %job.trace_id, error = %e, "media download failed");
            failed(DOWNLOAD_FAILED, format!("media download failed: {e}"))
        }
    };
    if verdict.errcode != 0 {
        job.last_error = Some(verdict.errmsg.clone());
    } else {
        let app = p.apps.get(&job.appid);
        let suggest = verdict.result.suggest;
        p.usage
            .verdict(&job.appid, Checked::MediaCheckAsync, suggest);
        let now_ms = p.clock.now_ms();
        p.effects.verdict(
            // A v1 job names no user: nothing to remember of one.
            app.as_ref()
                .filter(|_| !job.openid.is_empty())
                .map(|a| &a.slot.risk),
            &job.openid,
            now_ms,
            Judged::Media,
            suggest,
            |reason| review_item(job, &verdict, reason, now_ms),
        );
    }
    job.verdict = Some(verdict);
    let has_push_url = p
        .apps
        .get(&job.appid)
        .is_some_and(|a| a.config.push_url.is_some());
    if has_push_url {
        job.state = JobState::Pushing;
        job.next_at_ms = wall_ms();
    } else {
        finish(p, job, JobState::Done);
    }
}

/// A media verdict as a review item.
fn review_item(job: &Job, verdict: &MediaVerdict, reason: Reason, now_ms: u64) -> Item {
    let mut labels: Vec<u32> = std::iter::once(verdict.result.label)
        .chain(
            verdict
                .detail
                .iter()
                .filter(|d| d.suggest != Suggest::Pass)
                .map(|d| d.label),
        )
        .collect();
    labels.sort_unstable();
    labels.dedup();
    let hits = verdict
        .detail
        .iter()
        .filter(|d| d.suggest != Suggest::Pass)
        .map(|d| d.strategy.clone())
        .collect();
    let media_type = match job.media_type {
        MediaKind::Image => "image",
        MediaKind::Audio => "audio",
    };
    Item {
        id: job.trace_id.clone(),
        appid: job.appid.clone(),
        openid: Some(job.openid.clone()).filter(|o| !o.is_empty()),
        scene: job.scene,
        reason,
        suggest: verdict.result.suggest,
        label: verdict.result.label,
        labels,
        hits,
        content: Content::Media {
            url: job.media_url.clone(),
            media_type: media_type.into(),
            analysis: serde_json::to_value(verdict).unwrap_or_default(),
            hash: verdict.media.as_ref().and_then(|m| m.hash.clone()),
        },
        created_ms: now_ms,
        claim: None,
        decision: None,
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

fn finish(p: &Pipeline, job: &mut Job, state: JobState) {
    job.state = state;
    job.finished_ms = Some(wall_ms());
    let m = &p.jobs.metrics;
    m.jobs.with_label_values(&[state.as_str()]).inc();
    if state == JobState::Dead {
        m.dead_letters.inc();
    }
}

async fn push_step(p: &Pipeline, job: &mut Job) {
    let Some(app) = p.apps.get(&job.appid) else {
        job.last_error = Some("the app is no longer registered".into());
        finish(p, job, JobState::Dead);
        return;
    };
    let Some(url) = app.config.push_url.clone() else {
        finish(p, job, JobState::Done);
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
    let now_secs = p.clock.now_secs();
    let event = if job.version == 1 {
        Event::v1(
            recipe.original_id,
            now_secs,
            &job.appid,
            &job.trace_id,
            &verdict,
        )
    } else {
        Event::new(
            recipe.original_id,
            &job.openid,
            now_secs,
            &job.appid,
            &job.trace_id,
            &verdict,
        )
    };
    let mut random = [0u8; 24];
    let _ = getrandom::fill(&mut random);
    let nonce = u32::from_le_bytes([random[16], random[17], random[18], random[19]]).to_string();
    let salt: [u8; 16] = random[..16].try_into().unwrap_or([0; 16]);
    let signed = push::sign(&recipe, &event, now_secs, &nonce, &salt);
    job.attempts += 1;
    let m = &p.jobs.metrics;
    match p.jobs.fetcher.push(&url, &signed).await {
        Ok(_) => {
            m.push_attempts.with_label_values(&["delivered"]).inc();
            job.last_error = None;
            finish(p, job, JobState::Delivered);
        }
        Err(e) => {
            m.push_attempts.with_label_values(&[fetch_kind(&e)]).inc();
            job.last_error = Some(format!("push attempt {} failed: {e}", job.attempts));
            let retries = &p.jobs.config.push_retry;
            match retries.get(job.attempts as usize - 1) {
                Some(wait) => {
                    let jitter =
                        u32::from_le_bytes([random[20], random[21], random[22], random[23]]);
                    job.next_at_ms = wall_ms() + jittered(*wait, jitter).as_millis() as u64;
                }
                None => {
                    tracing::warn!(trace_id = %job.trace_id, attempts = job.attempts, error = %e, "push dead-lettered");
                    finish(p, job, JobState::Dead);
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
    fn jitter_stays_within_a_fifth() {
        let wait = Duration::from_secs(100);
        assert_eq!(jittered(wait, 0), Duration::from_secs(80));
        assert!(jittered(wait, u32::MAX) < Duration::from_secs(120));
        assert!(jittered(wait, u32::MAX) > Duration::from_secs(119));
    }
}
