//! Where media jobs wait and are recorded: the one small trait both backends implement.
//!
//! A job is submitted (durably, before its `trace_id` is answered), taken by an instance to work
//! on, saved at every change of state, and finished (delivered, dead or done), after which it
//! stays readable for the retention. [`LocalQueue`] keeps everything in the embedded store and
//! hands jobs to this process only; [`crate::jobs::shared::SharedJobs`] keeps them in Redis,
//! where every instance takes jobs and a dead instance's jobs are taken over when their lease
//! runs out. [`conformance`] is the behaviour both must show.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;

use super::store::{Job, JobState, JobStore, StoreError};
use crate::state::BoxFuture;

/// A job an instance has taken: the job, and its place in the queue (`entry`), which
/// [`JobQueue::save`] and [`JobQueue::finish`] name it by.
#[derive(Debug, Clone)]
pub struct Taken {
    pub entry: String,
    pub job: Job,
}

/// How many unfinished jobs the queue holds at most: in all, and of one app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    pub total: usize,
    pub per_app: usize,
}

/// What became of a submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// Stored durably and queued.
    Yes,
    /// Refused: `total` jobs are unfinished.
    Full,
    /// Refused: the job's app has `per_app` jobs unfinished.
    AppFull,
}

/// Media jobs waiting, in work and finished.
pub trait JobQueue: Send + Sync + 'static {
    /// Accepts `job` unless the queue or the job's app is at its [`Capacity`]; accepted once
    /// it is stored durably.
    fn submit<'a>(
        &'a self,
        job: &'a Job,
        capacity: Capacity,
    ) -> BoxFuture<'a, Result<Accepted, StoreError>>;

    /// Up to `max` jobs for this instance to work on (first those it held before a restart),
    /// waiting at most `wait` for one.
    fn take(&self, max: usize, wait: Duration) -> BoxFuture<'_, Result<Vec<Taken>, StoreError>>;

    /// Writes an unfinished job's new state.
    fn save<'a>(&'a self, job: &'a Job, entry: &'a str) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Writes a finished job and takes it off the queue.
    fn finish<'a>(&'a self, job: &'a Job, entry: &'a str) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Puts a dead job back on the queue as `job` says (an operator's retry).
    fn reopen<'a>(&'a self, job: &'a Job) -> BoxFuture<'a, Result<(), StoreError>>;

    /// A job's record.
    fn get<'a>(&'a self, trace_id: &'a str) -> BoxFuture<'a, Result<Option<Job>, StoreError>>;

    /// Jobs in one state, oldest first, at most `limit`.
    fn list(&self, state: JobState, limit: usize) -> BoxFuture<'_, Result<Vec<Job>, StoreError>>;

    /// Unfinished jobs (in the whole deployment).
    fn unfinished(&self) -> BoxFuture<'_, Result<u64, StoreError>>;

    /// Keeps the jobs this instance holds (`held`, by entry) as its own and returns jobs it
    /// takes over from an instance that stopped; called every lease / 3.
    fn maintain<'a>(&'a self, held: &'a [String]) -> BoxFuture<'a, Result<Vec<Taken>, StoreError>>;

    /// Forgets finished jobs that finished before `cutoff_ms`; returns how many it removed.
    fn forget_before(&self, cutoff_ms: u64) -> BoxFuture<'_, Result<usize, StoreError>>;
}

/// The in-process queue: records in the embedded store ([`JobStore`]), waiting jobs in memory.
pub struct LocalQueue {
    store: JobStore,
    inner: Mutex<Local>,
    arrived: Notify,
}

#[derive(Default)]
struct Local {
    /// Accepted (or resumed, or reopened) and not yet taken.
    waiting: VecDeque<Job>,
    /// Unfinished jobs, plus submissions being written.
    unfinished: usize,
    /// The same, by app (apps with none are absent).
    by_app: HashMap<String, usize>,
}

impl Local {
    fn opened(&mut self, appid: &str) {
        self.unfinished += 1;
        *self.by_app.entry(appid.to_owned()).or_default() += 1;
    }

    fn closed(&mut self, appid: &str) {
        self.unfinished = self.unfinished.saturating_sub(1);
        if let Some(n) = self.by_app.get_mut(appid) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.by_app.remove(appid);
            }
        }
    }
}

impl LocalQueue {
    /// The queue over `store`; every unfinished job in it is waiting to be taken again.
    pub fn open(store: JobStore) -> Result<LocalQueue, StoreError> {
        let mut waiting = Vec::new();
        let unreadable = store.scan_open(|job| waiting.push(job))?;
        for bad in unreadable {
            tracing::error!(record = %bad, "unreadable media job record skipped");
        }
        if !waiting.is_empty() {
            tracing::info!(jobs = waiting.len(), "resuming unfinished media jobs");
        }
        waiting.sort_by_key(|j| j.created_ms);
        let mut local = Local::default();
        for job in &waiting {
            local.opened(&job.appid);
        }
        local.waiting = waiting.into();
        Ok(LocalQueue {
            store,
            inner: Mutex::new(local),
            arrived: Notify::new(),
        })
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Local> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs blocking store work on the blocking pool.
    async fn join<T: Send + 'static>(
        f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| StoreError(e.to_string()))?
    }
}

impl JobQueue for LocalQueue {
    /// Not cancel-safe: the room taken before the write is given back or filled only after
    /// it, so a caller must run it to the end (the API runs each submission as a task of its
    /// own).
    fn submit<'a>(
        &'a self,
        job: &'a Job,
        capacity: Capacity,
    ) -> BoxFuture<'a, Result<Accepted, StoreError>> {
        Box::pin(async move {
            {
                let mut q = self.inner();
                if q.unfinished >= capacity.total {
                    return Ok(Accepted::Full);
                }
                if q.by_app.get(&job.appid).copied().unwrap_or(0) >= capacity.per_app {
                    return Ok(Accepted::AppFull);
                }
                q.opened(&job.appid);
            }
            let written = self.store.put(job).await;
            let mut q = self.inner();
            match written {
                Ok(()) => {
                    q.waiting.push_back(job.clone());
                    drop(q);
                    self.arrived.notify_one();
                    Ok(Accepted::Yes)
                }
                Err(e) => {
                    q.closed(&job.appid);
                    Err(e)
                }
            }
        })
    }

    fn take(&self, max: usize, wait: Duration) -> BoxFuture<'_, Result<Vec<Taken>, StoreError>> {
        Box::pin(async move {
            let take = |q: &mut Local| -> Vec<Taken> {
                let n = max.min(q.waiting.len());
                q.waiting
                    .drain(..n)
                    .map(|job| Taken {
                        entry: job.trace_id.clone(),
                        job,
                    })
                    .collect()
            };
            let arrived = self.arrived.notified();
            let taken = take(&mut self.inner());
            if !taken.is_empty() || max == 0 {
                return Ok(taken);
            }
            let _ = tokio::time::timeout(wait, arrived).await;
            Ok(take(&mut self.inner()))
        })
    }

    fn save<'a>(&'a self, job: &'a Job, _entry: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(self.store.put(job))
    }

    fn finish<'a>(
        &'a self,
        job: &'a Job,
        _entry: &'a str,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.store.put(job).await?;
            self.inner().closed(&job.appid);
            Ok(())
        })
    }

    fn reopen<'a>(&'a self, job: &'a Job) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.store.reopen(job).await?;
            let mut q = self.inner();
            q.opened(&job.appid);
            q.waiting.push_back(job.clone());
            drop(q);
            self.arrived.notify_one();
            Ok(())
        })
    }

    fn get<'a>(&'a self, trace_id: &'a str) -> BoxFuture<'a, Result<Option<Job>, StoreError>> {
        let (store, trace) = (self.store.clone(), trace_id.to_owned());
        Box::pin(Self::join(move || store.get(&trace)))
    }

    fn list(&self, state: JobState, limit: usize) -> BoxFuture<'_, Result<Vec<Job>, StoreError>> {
        let store = self.store.clone();
        Box::pin(Self::join(move || {
            let mut found = Vec::new();
            let keep = |job: Job| {
                if job.state == state {
                    found.push(job);
                }
            };
            if state.is_open() {
                store.scan_open(keep)?;
            } else {
                store.scan_finished(keep)?;
            }
            found.sort_by_key(|j| j.created_ms);
            found.truncate(limit);
            Ok(found)
        }))
    }

    fn unfinished(&self) -> BoxFuture<'_, Result<u64, StoreError>> {
        let n = self.inner().unfinished as u64;
        Box::pin(std::future::ready(Ok(n)))
    }

    /// One process holds every job: nothing to renew or take over.
    fn maintain<'a>(
        &'a self,
        _held: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Taken>, StoreError>> {
        Box::pin(std::future::ready(Ok(Vec::new())))
    }

    fn forget_before(&self, cutoff_ms: u64) -> BoxFuture<'_, Result<usize, StoreError>> {
        Box::pin(async move {
            let store = self.store.clone();
            let old = Self::join(move || {
                let mut old = Vec::new();
                store.scan_finished(|job| {
                    if job.finished_ms.is_some_and(|t| t < cutoff_ms) {
                        old.push(job.trace_id);
                    }
                })?;
                Ok(old)
            })
            .await?;
            for chunk in old.chunks(10_000) {
                self.store.delete_finished(chunk.to_vec()).await?;
            }
            Ok(old.len())
        })
    }
}

impl<Q: JobQueue + ?Sized> JobQueue for Arc<Q> {
    fn submit<'a>(
        &'a self,
        job: &'a Job,
        capacity: Capacity,
    ) -> BoxFuture<'a, Result<Accepted, StoreError>> {
        (**self).submit(job, capacity)
    }
    fn take(&self, max: usize, wait: Duration) -> BoxFuture<'_, Result<Vec<Taken>, StoreError>> {
        (**self).take(max, wait)
    }
    fn save<'a>(&'a self, job: &'a Job, entry: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        (**self).save(job, entry)
    }
    fn finish<'a>(&'a self, job: &'a Job, entry: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        (**self).finish(job, entry)
    }
    fn reopen<'a>(&'a self, job: &'a Job) -> BoxFuture<'a, Result<(), StoreError>> {
        (**self).reopen(job)
    }
    fn get<'a>(&'a self, trace_id: &'a str) -> BoxFuture<'a, Result<Option<Job>, StoreError>> {
        (**self).get(trace_id)
    }
    fn list(&self, state: JobState, limit: usize) -> BoxFuture<'_, Result<Vec<Job>, StoreError>> {
        (**self).list(state, limit)
    }
    fn unfinished(&self) -> BoxFuture<'_, Result<u64, StoreError>> {
        (**self).unfinished()
    }
    fn maintain<'a>(&'a self, held: &'a [String]) -> BoxFuture<'a, Result<Vec<Taken>, StoreError>> {
        (**self).maintain(held)
    }
    fn forget_before(&self, cutoff_ms: u64) -> BoxFuture<'_, Result<usize, StoreError>> {
        (**self).forget_before(cutoff_ms)
    }
}

/// The behaviour every job queue must show. `fresh` makes a new queue over the same storage
/// (a restart of this instance).
#[cfg(test)]
pub mod conformance {
    use super::*;
    use crate::media::sniff::MediaKind;

    pub fn job(trace: &str, created_ms: u64) -> Job {
        Job {
            trace_id: trace.into(),
            appid: "wx00000000000000aa".into(),
            openid: "u1".into(),
            scene: 1,
            media_url: "http://h.example/a.png".into(),
            media_type: MediaKind::Image,
            created_ms,
            state: JobState::Queued,
            verdict: None,
            attempts: 0,
            next_at_ms: 0,
            last_error: None,
            finished_ms: None,
            version: 2,
        }
    }

    const WAIT: Duration = Duration::from_millis(200);
    /// Three unfinished jobs in all, and no smaller share per app.
    const ROOM: Capacity = Capacity {
        total: 3,
        per_app: 3,
    };

    pub async fn job_queue<Q: JobQueue>(q: &Q, restart: impl AsyncFnOnce() -> Q) {
        // Bounded by unfinished jobs.
        for i in 0..3 {
            let accepted = q.submit(&job(&format!("t{i}"), 10 + i), ROOM).await;
            assert_eq!(accepted.unwrap(), Accepted::Yes);
        }
        let full = q.submit(&job("t3", 13), ROOM).await.unwrap();
        assert_eq!(full, Accepted::Full, "full at 3");
        assert_eq!(q.unfinished().await.unwrap(), 3);
        assert_eq!(q.get("t1").await.unwrap().unwrap().state, JobState::Queued);
        assert_eq!(q.get("nope").await.unwrap(), None);

        // Taken in order, once.
        let taken = q.take(2, WAIT).await.unwrap();
        let traces: Vec<&str> = taken.iter().map(|t| t.job.trace_id.as_str()).collect();
        assert_eq!(traces, ["t0", "t1"]);
        let rest = q.take(10, WAIT).await.unwrap();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].job.trace_id, "t2");
        assert!(q.take(10, WAIT).await.unwrap().is_empty());

        // Saved states are read back; listing by state, oldest first.
        let mut t0 = taken[0].job.clone();
        t0.state = JobState::Pushing;
        t0.attempts = 1;
        q.save(&t0, &taken[0].entry).await.unwrap();
        assert_eq!(q.get("t0").await.unwrap().unwrap().attempts, 1);
        let pushing = q.list(JobState::Pushing, 10).await.unwrap();
        assert_eq!(pushing.len(), 1);
        let queued: Vec<String> = q
            .list(JobState::Queued, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|j| j.trace_id)
            .collect();
        assert_eq!(queued, ["t1", "t2"]);

        // Finishing frees room; dead letters are listed and can be reopened.
        t0.state = JobState::Delivered;
        t0.finished_ms = Some(1_000);
        q.finish(&t0, &taken[0].entry).await.unwrap();
        let mut t1 = taken[1].job.clone();
        t1.state = JobState::Dead;
        t1.finished_ms = Some(2_000);
        q.finish(&t1, &taken[1].entry).await.unwrap();
        assert_eq!(q.unfinished().await.unwrap(), 1);
        assert_eq!(
            q.get("t0").await.unwrap().unwrap().state,
            JobState::Delivered
        );
        let dead = q.list(JobState::Dead, 10).await.unwrap();
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].trace_id, "t1");
        assert_eq!(q.list(JobState::Delivered, 10).await.unwrap().len(), 1);
        assert_eq!(q.submit(&job("t4", 14), ROOM).await.unwrap(), Accepted::Yes);

        t1.state = JobState::Pushing;
        t1.finished_ms = None;
        t1.attempts = 0;
        q.reopen(&t1).await.unwrap();
        assert!(q.list(JobState::Dead, 10).await.unwrap().is_empty());
        assert_eq!(q.unfinished().await.unwrap(), 3);
        let again: Vec<String> = q
            .take(10, WAIT)
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.job.trace_id)
            .collect();
        assert_eq!(again, ["t4", "t1"]);
        assert!(q.maintain(&[]).await.unwrap().is_empty());

        // A restart of this instance gets back every job it held unfinished, as last saved.
        let q = restart().await;
        let taken_back = q.take(10, WAIT).await.unwrap();
        let mut back: Vec<(String, JobState)> = taken_back
            .iter()
            .map(|t| (t.job.trace_id.clone(), t.job.state))
            .collect();
        back.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            back,
            [
                ("t1".to_owned(), JobState::Pushing),
                ("t2".to_owned(), JobState::Queued),
                ("t4".to_owned(), JobState::Queued),
            ]
        );
        assert_eq!(q.unfinished().await.unwrap(), 3);

        // An app at its share is refused (its count survived the restart); another app is not.
        let shares = Capacity {
            total: 10,
            per_app: 3,
        };
        let refused = q.submit(&job("t5", 15), shares).await.unwrap();
        assert_eq!(refused, Accepted::AppFull);
        let mut other = job("t6", 16);
        other.appid = "wx00000000000000bb".into();
        assert_eq!(q.submit(&other, shares).await.unwrap(), Accepted::Yes);
        assert_eq!(q.unfinished().await.unwrap(), 4);
        // Finishing one of the first app's jobs gives it room again.
        let held = taken_back.iter().find(|t| t.job.trace_id == "t2").unwrap();
        let mut t2 = held.job.clone();
        t2.state = JobState::Done;
        t2.finished_ms = Some(3_000);
        q.finish(&t2, &held.entry).await.unwrap();
        assert_eq!(
            q.submit(&job("t5", 15), shares).await.unwrap(),
            Accepted::Yes
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_local_queue_passes_the_conformance_suite() {
        let dir = std::env::temp_dir().join(format!("modgate-queue-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let durable = Arc::new(crate::state::durable::Durable::open(&dir, 1 << 20).unwrap());
        let q = LocalQueue::open(JobStore::start(Arc::clone(&durable)).unwrap()).unwrap();
        conformance::job_queue(&q, async || {
            LocalQueue::open(JobStore::start(Arc::clone(&durable)).unwrap()).unwrap()
        })
        .await;
    }
}
