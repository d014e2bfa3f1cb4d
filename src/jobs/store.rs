//! Media jobs and their durable record.
//!
//! Every change to a job is written to the embedded store before anything acts on it: a
//! submission is answered with its `trace_id` only after the job's record is committed with an
//! fsync. Writes go through one writer thread that commits whatever has queued up meanwhile in a
//! single transaction (group commit), so many concurrent submissions share one fsync.
//!
//! Unfinished jobs live in one table and finished ones in another (a job moves in the same
//! transaction that finishes it), so a start reads only the jobs it must resume, however many
//! finished ones are kept for read-back.

use std::sync::Arc;
use std::sync::mpsc;

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::media::sniff::MediaKind;
use crate::media::verdict::MediaVerdict;
use crate::state::durable::{Change, Durable, DurableError, Kind};

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Accepted; the media is still to be fetched and analysed.
    Queued,
    /// Analysed; the verdict is still to be delivered.
    Pushing,
    /// The app's receiver acknowledged the push.
    Delivered,
    /// Every push attempt failed; kept for inspection.
    Dead,
    /// Analysed, and the app has no push URL: the verdict can only be read back.
    Done,
}

impl JobState {
    /// Whether the job still has work to do.
    pub fn is_open(self) -> bool {
        matches!(self, JobState::Queued | JobState::Pushing)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Pushing => "pushing",
            JobState::Delivered => "delivered",
            JobState::Dead => "dead",
            JobState::Done => "done",
        }
    }
}

/// One media check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub trace_id: String,
    pub appid: String,
    pub openid: String,
    pub scene: u8,
    pub media_url: String,
    pub media_type: MediaKind,
    pub created_ms: u64,
    pub state: JobState,
    /// Set once the media has been analysed (or could not be fetched).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<MediaVerdict>,
    /// Push attempts made so far.
    #[serde(default)]
    pub attempts: u32,
    /// When the next push attempt is due (Unix ms).
    #[serde(default)]
    pub next_at_ms: u64,
    /// What went wrong last (fetch or push), for operators.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When the job reached a final state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_ms: Option<u64>,
    /// The API version it was submitted with: 2, or 1 (no scene, no openid; a v1-shaped push).
    /// Jobs stored before versions were kept are v2.
    #[serde(default = "v2")]
    pub version: u8,
}

fn v2() -> u8 {
    2
}

/// The store could not take a write.
#[derive(Debug, Clone, thiserror::Error)]
#[error("media job store: {0}")]
pub struct StoreError(pub String);

impl From<DurableError> for StoreError {
    fn from(e: DurableError) -> Self {
        StoreError(e.to_string())
    }
}

struct Pending {
    changes: Vec<Change>,
    done: oneshot::Sender<Result<(), StoreError>>,
}

/// Jobs in the embedded store, written through the group-commit thread. Clones share the
/// thread; dropping the last one stops it and waits for it, so the store is closed afterwards.
#[derive(Clone)]
pub struct JobStore {
    durable: Arc<Durable>,
    writer: Arc<Writer>,
}

struct Writer {
    queue: Option<mpsc::Sender<Pending>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Closing the channel ends the thread's loop once the queued writes are done.
        drop(self.queue.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl std::fmt::Debug for JobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobStore").finish_non_exhaustive()
    }
}

/// At most this many changes go into one transaction.
const MAX_BATCH: usize = 4096;

impl JobStore {
    /// Starts the writer thread; it ends when the store is dropped.
    pub fn start(durable: Arc<Durable>) -> std::io::Result<JobStore> {
        let (writes, queue) = mpsc::channel::<Pending>();
        let db = Arc::clone(&durable);
        let thread = std::thread::Builder::new()
            .name("modgate-jobs".into())
            .spawn(move || {
                while let Ok(first) = queue.recv() {
                    let mut batch = vec![first];
                    while batch.len() < MAX_BATCH {
                        match queue.try_recv() {
                            Ok(p) => batch.push(p),
                            Err(_) => break,
                        }
                    }
                    let mut changes = Vec::with_capacity(batch.len() * 2);
                    let mut waiters = Vec::with_capacity(batch.len());
                    for p in batch {
                        changes.extend(p.changes);
                        waiters.push(p.done);
                    }
                    let result = db.apply(&changes).map_err(StoreError::from);
                    for w in waiters {
                        let _ = w.send(result.clone());
                    }
                }
            })?;
        Ok(JobStore {
            durable,
            writer: Arc::new(Writer {
                queue: Some(writes),
                thread: Some(thread),
            }),
        })
    }

    /// Writes the job (to the open or the finished table, as its state says) and returns once
    /// it is on disk.
    pub async fn put(&self, job: &Job) -> Result<(), StoreError> {
        let value = serde_json::to_vec(job).map_err(|e| StoreError(e.to_string()))?;
        let key = job.trace_id.clone();
        let changes = if job.state.is_open() {
            vec![Change::Put(Kind::OpenJobs, key, value)]
        } else {
            vec![
                Change::Delete(Kind::OpenJobs, key.clone()),
                Change::Put(Kind::Jobs, key, value),
            ]
        };
        self.submit(changes).await
    }

    /// Writes a finished job back as unfinished (an operator's retry) and returns once it is on
    /// disk.
    pub async fn reopen(&self, job: &Job) -> Result<(), StoreError> {
        let value = serde_json::to_vec(job).map_err(|e| StoreError(e.to_string()))?;
        let key = job.trace_id.clone();
        self.submit(vec![
            Change::Delete(Kind::Jobs, key.clone()),
            Change::Put(Kind::OpenJobs, key, value),
        ])
        .await
    }

    /// Removes finished jobs' records and returns once that is on disk.
    pub async fn delete_finished(&self, trace_ids: Vec<String>) -> Result<(), StoreError> {
        let changes = trace_ids
            .into_iter()
            .map(|t| Change::Delete(Kind::Jobs, t))
            .collect();
        self.submit(changes).await
    }

    async fn submit(&self, changes: Vec<Change>) -> Result<(), StoreError> {
        let (done, wait) = oneshot::channel();
        self.writer
            .queue
            .as_ref()
            .ok_or_else(|| StoreError("the writer has stopped".into()))?
            .send(Pending { changes, done })
            .map_err(|_| StoreError("the writer has stopped".into()))?;
        wait.await
            .map_err(|_| StoreError("the writer has stopped".into()))?
    }

    /// One job's record (blocking: call from the blocking pool).
    pub fn get(&self, trace_id: &str) -> Result<Option<Job>, StoreError> {
        let found = match self.durable.get(Kind::OpenJobs, trace_id)? {
            Some(json) => Some(json),
            None => self.durable.get(Kind::Jobs, trace_id)?,
        };
        match found {
            None => Ok(None),
            Some(json) => serde_json::from_slice(&json)
                .map(Some)
                .map_err(|e| StoreError(format!("job {trace_id}: {e}"))),
        }
    }

    /// Calls `f` with every unfinished job (blocking); see [`JobStore::scan`].
    pub fn scan_open(&self, f: impl FnMut(Job)) -> Result<Vec<String>, StoreError> {
        self.scan(Kind::OpenJobs, f)
    }

    /// Calls `f` with every finished job (blocking); see [`JobStore::scan`].
    pub fn scan_finished(&self, f: impl FnMut(Job)) -> Result<Vec<String>, StoreError> {
        self.scan(Kind::Jobs, f)
    }

    /// Calls `f` with every job of one table, one at a time. A record that cannot be read is
    /// reported by its key and skipped, so one bad record cannot stop the others.
    fn scan(&self, kind: Kind, mut f: impl FnMut(Job)) -> Result<Vec<String>, StoreError> {
        let mut unreadable = Vec::new();
        self.durable.scan(kind, |key, json| {
            match serde_json::from_slice::<Job>(json) {
                Ok(job) => f(job),
                Err(e) => unreadable.push(format!("{key}: {e}")),
            }
            Ok::<(), DurableError>(())
        })?;
        Ok(unreadable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(i: usize) -> Job {
        Job {
            trace_id: format!("t{i:05}"),
            appid: "wx0123456789abcdef".into(),
            openid: "o1".into(),
            scene: 1,
            media_url: "http://example.com/a.png".into(),
            media_type: MediaKind::Image,
            created_ms: 1,
            state: JobState::Queued,
            verdict: None,
            attempts: 0,
            next_at_ms: 0,
            last_error: None,
            finished_ms: None,
            version: 2,
        }
    }

    /// Concurrent writes all land (sharing commits) and survive reopening; finished jobs move to
    /// their own table; deletes stick.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writes_are_group_committed_and_durable() {
        let dir = std::env::temp_dir().join(format!("modgate-jobs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        {
            let store =
                Arc::new(JobStore::start(Arc::new(Durable::open(&dir, 1 << 20).unwrap())).unwrap());
            let mut tasks = Vec::new();
            for i in 0..500 {
                let store = Arc::clone(&store);
                tasks.push(tokio::spawn(async move { store.put(&job(i)).await }));
            }
            for t in tasks {
                t.await.unwrap().unwrap();
            }
            // Two jobs finish: they move to the finished table; one is then deleted.
            for i in [7, 8] {
                let mut j = job(i);
                j.state = JobState::Delivered;
                store.put(&j).await.unwrap();
            }
            store.delete_finished(vec!["t00007".into()]).await.unwrap();
        }
        let store = JobStore::start(Arc::new(Durable::open(&dir, 1 << 20).unwrap())).unwrap();
        let mut open = Vec::new();
        assert!(
            store
                .scan_open(|j| open.push(j.trace_id))
                .unwrap()
                .is_empty()
        );
        assert_eq!(open.len(), 498);
        assert!(!open.contains(&"t00007".to_string()) && !open.contains(&"t00008".to_string()));
        let mut finished = Vec::new();
        store.scan_finished(|j| finished.push(j.trace_id)).unwrap();
        assert_eq!(finished, ["t00008"]);
        assert_eq!(store.get("t00042").unwrap(), Some(job(42)));
        assert_eq!(
            store.get("t00008").unwrap().unwrap().state,
            JobState::Delivered
        );
        assert_eq!(store.get("t00007").unwrap(), None);
        // An operator's retry moves a finished job back.
        let mut again = store.get("t00008").unwrap().unwrap();
        again.state = JobState::Pushing;
        store.reopen(&again).await.unwrap();
        let mut finished = Vec::new();
        store.scan_finished(|j| finished.push(j.trace_id)).unwrap();
        assert!(finished.is_empty());
        assert_eq!(
            store.get("t00008").unwrap().unwrap().state,
            JobState::Pushing
        );
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
