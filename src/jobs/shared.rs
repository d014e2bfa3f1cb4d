//! Media jobs shared by every instance through Redis (`state.backend = "redis"`).
//!
//! - Each job's record is a JSON string, `{prefix}:job:{trace_id}`, written at every change of
//!   state; a finished one expires after `media.retention_hours`.
//! - Work is a Redis stream, `{prefix}:media:q`, read by the consumer group `workers`: every
//!   instance is a consumer and takes new entries as its scheduler has room. An entry stays
//!   pending with its consumer until the job is finished (delivered, dead or done), when it is
//!   acknowledged and deleted — pushes waiting for a retry included, so a job is owned by one
//!   instance at a time.
//! - Leases: an instance renews its pending entries every `lease / 3` (`XCLAIM ... JUSTID`
//!   resets their idle time); any instance reclaims entries idle longer than the lease
//!   (`XAUTOCLAIM`), i.e. those of an instance that died, and resumes them from their record.
//!   A restarted instance keeps its consumer name (stored in its data directory) and takes its
//!   own pending entries back at once.
//! - Acceptance is one script: refused when `media.max_queued` jobs are unfinished across the
//!   deployment, or `media.max_queued_per_app` of the job's app (counted in the hash
//!   `{prefix}:media:open_by_app`), else the record, the stream entry and the open counts are
//!   written together, and
//!   only then is the `trace_id` answered. How durable that is follows Redis's own persistence
//!   (`appendonly yes`; `appendfsync always` to survive a power loss without losing the last
//!   second).
//! - Dead letters are indexed in a sorted set, `{prefix}:media:dead`, by the time they died.
//!
//! Delivery is at least once: a worker slower than the lease may find its job reclaimed and
//! pushed by another instance too; the `trace_id` is the receiver's de-duplication key.

use std::time::Duration;

use redis::Script;
use redis::streams::{StreamAutoClaimReply, StreamReadReply};

use super::queue::{Accepted, Capacity, JobQueue, Taken};
use super::store::{Job, JobState, StoreError};
use crate::state::BoxFuture;

/// The consumer group every instance reads the queue as.
const GROUP: &str = "workers";

/// KEYS[1] record, KEYS[2] stream, KEYS[3] open count, KEYS[4] open counts by app; ARGV[1] job
/// JSON, ARGV[2] trace_id, ARGV[3] max unfinished, ARGV[4] appid, ARGV[5] max unfinished of one
/// app. Returns 1 accepted, 0 busy, 2 the app at its share.
const SUBMIT: &str = r"
local open = tonumber(redis.call('GET', KEYS[3]) or '0')
if open >= tonumber(ARGV[3]) then
  return 0
end
local mine = tonumber(redis.call('HGET', KEYS[4], ARGV[4]) or '0')
if mine >= tonumber(ARGV[5]) then
  return 2
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('XADD', KEYS[2], '*', 'trace', ARGV[2])
redis.call('INCR', KEYS[3])
redis.call('HINCRBY', KEYS[4], ARGV[4], 1)
return 1
";

/// KEYS[1] record, KEYS[2] stream, KEYS[3] open count, KEYS[4] dead index, KEYS[5] open counts
/// by app; ARGV[1] job JSON, ARGV[2] entry id, ARGV[3] retention (s), ARGV[4] 1 if dead,
/// ARGV[5] finished (ms), ARGV[6] trace_id, ARGV[7] group, ARGV[8] appid. Acknowledges and
/// deletes the entry; counts the job finished only if this call removed its entry (a job
/// finished twice, after a reclaim, counts once).
const FINISH: &str = r"
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
redis.call('XACK', KEYS[2], ARGV[7], ARGV[2])
local removed = redis.call('XDEL', KEYS[2], ARGV[2])
if removed == 1 then
  local open = tonumber(redis.call('GET', KEYS[3]) or '0')
  if open > 0 then redis.call('DECR', KEYS[3]) end
  local mine = tonumber(redis.call('HGET', KEYS[5], ARGV[8]) or '0')
  if mine > 1 then
    redis.call('HINCRBY', KEYS[5], ARGV[8], -1)
  elseif mine == 1 then
    redis.call('HDEL', KEYS[5], ARGV[8])
  end
end
if ARGV[4] == '1' then
  redis.call('ZADD', KEYS[4], ARGV[5], ARGV[6])
end
return removed
";

/// KEYS[1..3] as [`SUBMIT`], KEYS[4] dead index, KEYS[5] open counts by app; ARGV[1] job JSON,
/// ARGV[2] trace_id, ARGV[3] appid. Puts a dead job back on the queue (an operator's retry);
/// a job no longer dead (retried already) is left as it is.
const REOPEN: &str = r"
if redis.call('ZREM', KEYS[4], ARGV[2]) == 0 then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('XADD', KEYS[2], '*', 'trace', ARGV[2])
redis.call('INCR', KEYS[3])
redis.call('HINCRBY', KEYS[5], ARGV[3], 1)
return 1
";

/// The shared queue, as seen by one instance.
#[derive(Clone)]
pub struct SharedJobs {
    conn: crate::state::redis::Retrying,
    /// For `XREADGROUP ... BLOCK`, which holds its connection while it waits.
    blocking: crate::state::redis::Retrying,
    prefix: String,
    consumer: String,
    lease: Duration,
    retention: Duration,
    scripts: std::sync::Arc<[Script; 3]>,
    /// Whether this consumer's own pending entries (from before a restart) were taken back.
    own_taken: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl std::fmt::Debug for SharedJobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedJobs")
            .field("consumer", &self.consumer)
            .finish_non_exhaustive()
    }
}

fn store_err(e: redis::RedisError) -> StoreError {
    StoreError(format!("redis: {e}"))
}

impl SharedJobs {
    /// The queue under `prefix`, read as `consumer`; creates the consumer group if needed.
    pub async fn open(
        conn: crate::state::redis::Retrying,
        blocking: crate::state::redis::Retrying,
        prefix: &str,
        consumer: String,
        lease: Duration,
        retention: Duration,
    ) -> Result<SharedJobs, StoreError> {
        let jobs = SharedJobs {
            conn,
            blocking,
            prefix: prefix.to_owned(),
            consumer,
            lease,
            retention,
            scripts: std::sync::Arc::new([
                Script::new(SUBMIT),
                Script::new(FINISH),
                Script::new(REOPEN),
            ]),
            own_taken: std::sync::Arc::default(),
        };
        let mut conn = jobs.conn.clone();
        let created: redis::RedisResult<()> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(jobs.stream())
            .arg(GROUP)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(&mut conn)
            .await;
        match created {
            Ok(()) => {}
            Err(e) if e.code() == Some("BUSYGROUP") => {}
            Err(e) => return Err(store_err(e)),
        }
        Ok(jobs)
    }

    pub fn consumer(&self) -> &str {
        &self.consumer
    }

    pub fn lease(&self) -> Duration {
        self.lease
    }

    fn stream(&self) -> String {
        format!("{}:media:q", self.prefix)
    }

    fn open_count(&self) -> String {
        format!("{}:media:open", self.prefix)
    }

    fn open_by_app(&self) -> String {
        format!("{}:media:open_by_app", self.prefix)
    }

    fn dead_index(&self) -> String {
        format!("{}:media:dead", self.prefix)
    }

    fn record(&self, trace_id: &str) -> String {
        format!("{}:job:{trace_id}", self.prefix)
    }

    fn json(job: &Job) -> Result<Vec<u8>, StoreError> {
        serde_json::to_vec(job).map_err(|e| StoreError(e.to_string()))
    }

    /// Accepts a job unless the deployment or its app is at `capacity`; accepted once Redis
    /// holds it. Sent once: repeated after a lost reply, it could queue the job twice.
    async fn submit_job(&self, job: &Job, capacity: Capacity) -> Result<Accepted, StoreError> {
        let mut conn = self.conn.once();
        let accepted: i64 = self.scripts[0]
            .key(self.record(&job.trace_id))
            .key(self.stream())
            .key(self.open_count())
            .key(self.open_by_app())
            .arg(Self::json(job)?)
            .arg(&job.trace_id)
            .arg(capacity.total)
            .arg(&job.appid)
            .arg(capacity.per_app)
            .invoke_async(&mut conn)
            .await
            .map_err(store_err)?;
        Ok(match accepted {
            1 => Accepted::Yes,
            2 => Accepted::AppFull,
            _ => Accepted::Full,
        })
    }

    /// Writes an unfinished job's record.
    async fn save_job(&self, job: &Job) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        redis::cmd("SET")
            .arg(self.record(&job.trace_id))
            .arg(Self::json(job)?)
            .query_async::<()>(&mut conn)
            .await
            .map_err(store_err)
    }

    /// Writes a finished job's record (expiring after the retention) and takes its entry off
    /// the queue.
    async fn finish_job(&self, job: &Job, entry: &str) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let _: i64 = self.scripts[1]
            .key(self.record(&job.trace_id))
            .key(self.stream())
            .key(self.open_count())
            .key(self.dead_index())
            .key(self.open_by_app())
            .arg(Self::json(job)?)
            .arg(entry)
            .arg(self.retention.as_secs().max(1))
            .arg(u8::from(job.state == JobState::Dead))
            .arg(job.finished_ms.unwrap_or(0))
            .arg(&job.trace_id)
            .arg(GROUP)
            .arg(&job.appid)
            .invoke_async(&mut conn)
            .await
            .map_err(store_err)?;
        Ok(())
    }

    /// Puts a dead job back on the queue as `job` says (an operator's retry). Repeated after a
    /// lost reply, it finds the job no longer dead and does nothing.
    async fn reopen_job(&self, job: &Job) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let _: i64 = self.scripts[2]
            .key(self.record(&job.trace_id))
            .key(self.stream())
            .key(self.open_count())
            .key(self.dead_index())
            .key(self.open_by_app())
            .arg(Self::json(job)?)
            .arg(&job.trace_id)
            .arg(&job.appid)
            .invoke_async(&mut conn)
            .await
            .map_err(store_err)?;
        Ok(())
    }

    /// A job's record.
    async fn get_job(&self, trace_id: &str) -> Result<Option<Job>, StoreError> {
        let mut conn = self.conn.clone();
        let json: Option<Vec<u8>> = redis::cmd("GET")
            .arg(self.record(trace_id))
            .query_async(&mut conn)
            .await
            .map_err(store_err)?;
        json.map(|j| {
            serde_json::from_slice(&j).map_err(|e| StoreError(format!("job {trace_id}: {e}")))
        })
        .transpose()
    }

    /// Records of many jobs, in order (unreadable or missing ones left out).
    async fn get_many(&self, traces: &[String]) -> Result<Vec<Job>, StoreError> {
        if traces.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.conn.clone();
        let keys: Vec<String> = traces.iter().map(|t| self.record(t)).collect();
        let found: Vec<Option<Vec<u8>>> = redis::cmd("MGET")
            .arg(keys)
            .query_async(&mut conn)
            .await
            .map_err(store_err)?;
        Ok(found
            .into_iter()
            .flatten()
            .filter_map(|j| serde_json::from_slice(&j).ok())
            .collect())
    }

    /// Jobs in one state, oldest first, at most `limit`: dead ones from their index,
    /// unfinished ones from the queue, other finished ones by a scan of the records.
    async fn list_jobs(&self, state: JobState, limit: usize) -> Result<Vec<Job>, StoreError> {
        let mut conn = self.conn.clone();
        let mut jobs = match state {
            JobState::Dead => {
                let traces: Vec<String> = redis::cmd("ZRANGE")
                    .arg(self.dead_index())
                    .arg(0)
                    .arg(limit.saturating_sub(1))
                    .query_async(&mut conn)
                    .await
                    .map_err(store_err)?;
                self.get_many(&traces).await?
            }
            JobState::Queued | JobState::Pushing => {
                let mut found = Vec::new();
                let mut from = "-".to_owned();
                loop {
                    let page: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
                        .arg(self.stream())
                        .arg(&from)
                        .arg("+")
                        .arg("COUNT")
                        .arg(1000)
                        .query_async(&mut conn)
                        .await
                        .map_err(store_err)?;
                    let Some(last) = page.ids.last().map(|e| e.id.clone()) else {
                        break;
                    };
                    let traces: Vec<String> =
                        page.ids.iter().filter_map(|e| e.get("trace")).collect();
                    found.extend(
                        self.get_many(&traces)
                            .await?
                            .into_iter()
                            .filter(|j| j.state == state),
                    );
                    if found.len() >= limit || page.ids.len() < 1000 {
                        break;
                    }
                    from = format!("({last}");
                }
                found
            }
            JobState::Delivered | JobState::Done => {
                let mut found = Vec::new();
                let mut cursor: u64 = 0;
                loop {
                    let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(self.record("*"))
                        .arg("COUNT")
                        .arg(1000)
                        .query_async(&mut conn)
                        .await
                        .map_err(store_err)?;
                    let prefix_len = self.record("").len();
                    let traces: Vec<String> =
                        keys.iter().map(|k| k[prefix_len..].to_owned()).collect();
                    found.extend(
                        self.get_many(&traces)
                            .await?
                            .into_iter()
                            .filter(|j| j.state == state),
                    );
                    if next == 0 {
                        break;
                    }
                    cursor = next;
                }
                found
            }
        };
        jobs.sort_by_key(|j| j.created_ms);
        jobs.truncate(limit);
        Ok(jobs)
    }

    /// Drops dead letters that died before `cutoff_ms` from the index (their records have
    /// expired).
    async fn trim_dead(&self, cutoff_ms: u64) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        redis::cmd("ZREMRANGEBYSCORE")
            .arg(self.dead_index())
            .arg("-inf")
            .arg(format!("({cutoff_ms}"))
            .query_async::<()>(&mut conn)
            .await
            .map_err(store_err)
    }

    /// Unfinished jobs across the deployment.
    async fn count_unfinished(&self) -> Result<u64, StoreError> {
        let mut conn = self.conn.clone();
        let n: Option<u64> = redis::cmd("GET")
            .arg(self.open_count())
            .query_async(&mut conn)
            .await
            .map_err(store_err)?;
        Ok(n.unwrap_or(0))
    }

    /// Turns stream entries into taken jobs; entries whose record is gone are acknowledged and
    /// dropped (nothing is left to do for them).
    async fn resolve(
        &self,
        entries: Vec<(String, Option<String>)>,
    ) -> Result<Vec<Taken>, StoreError> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        // One MGET for all the records.
        let mut conn = self.conn.clone();
        let keys: Vec<String> = entries
            .iter()
            .map(|(_, trace)| self.record(trace.as_deref().unwrap_or("")))
            .collect();
        let records: Vec<Option<Vec<u8>>> = redis::cmd("MGET")
            .arg(keys)
            .query_async(&mut conn)
            .await
            .map_err(store_err)?;
        let mut taken = Vec::with_capacity(entries.len());
        for ((entry, trace), record) in entries.into_iter().zip(records) {
            let job = record.and_then(|json| serde_json::from_slice::<Job>(&json).ok());
            match job {
                Some(job) if job.state.is_open() => taken.push(Taken { entry, job }),
                Some(job) => {
                    // Finished elsewhere after all (a reclaimed job finished twice).
                    self.finish_job(&job, &entry).await?;
                }
                None => {
                    tracing::error!(
                        entry,
                        ?trace,
                        "media queue entry without a readable job record dropped"
                    );
                    let _: () = redis::pipe()
                        .cmd("XACK")
                        .arg(self.stream())
                        .arg(GROUP)
                        .arg(&entry)
                        .ignore()
                        .cmd("XDEL")
                        .arg(self.stream())
                        .arg(&entry)
                        .ignore()
                        .query_async(&mut conn)
                        .await
                        .map_err(store_err)?;
                }
            }
        }
        Ok(taken)
    }

    fn entries(reply: StreamReadReply) -> Vec<(String, Option<String>)> {
        reply
            .keys
            .into_iter()
            .flat_map(|k| k.ids)
            .map(|e| {
                let trace = e.get("trace");
                (e.id, trace)
            })
            .collect()
    }

    /// Up to `count` new jobs, waiting at most `block` for one to arrive.
    async fn take_new(&self, count: usize, block: Duration) -> Result<Vec<Taken>, StoreError> {
        let mut conn = self.blocking.clone();
        let reply: Option<StreamReadReply> = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(GROUP)
            .arg(&self.consumer)
            .arg("COUNT")
            .arg(count.max(1))
            .arg("BLOCK")
            .arg(block.as_millis() as u64)
            .arg("STREAMS")
            .arg(self.stream())
            .arg(">")
            .query_async(&mut conn)
            .await
            .map_err(store_err)?;
        match reply {
            Some(r) => self.resolve(Self::entries(r)).await,
            None => Ok(Vec::new()),
        }
    }

    /// The jobs this consumer held when it last stopped (its pending entries).
    async fn take_own_pending(&self) -> Result<Vec<Taken>, StoreError> {
        let mut all = Vec::new();
        let mut from = "0".to_owned();
        loop {
            let mut conn = self.conn.clone();
            let reply: Option<StreamReadReply> = redis::cmd("XREADGROUP")
                .arg("GROUP")
                .arg(GROUP)
                .arg(&self.consumer)
                .arg("COUNT")
                .arg(1000)
                .arg("STREAMS")
                .arg(self.stream())
                .arg(&from)
                .query_async(&mut conn)
                .await
                .map_err(store_err)?;
            let entries = reply.map(Self::entries).unwrap_or_default();
            let Some(last) = entries.last().map(|e| e.0.clone()) else {
                break;
            };
            let n = entries.len();
            all.extend(self.resolve(entries).await?);
            if n < 1000 {
                break;
            }
            from = last;
        }
        Ok(all)
    }

    /// Renews the lease on the entries this instance holds that are still its own (one another
    /// instance took over stays with that instance).
    async fn renew(&self, held: &[String]) -> Result<(), StoreError> {
        if held.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn.clone();
        let pending: redis::streams::StreamPendingCountReply = redis::cmd("XPENDING")
            .arg(self.stream())
            .arg(GROUP)
            .arg("-")
            .arg("+")
            .arg(held.len().max(1000))
            .arg(&self.consumer)
            .query_async(&mut conn)
            .await
            .map_err(store_err)?;
        let mine: std::collections::HashSet<&str> =
            pending.ids.iter().map(|p| p.id.as_str()).collect();
        let renew: Vec<&String> = held.iter().filter(|e| mine.contains(e.as_str())).collect();
        for chunk in renew.chunks(1000) {
            let _: Vec<String> = redis::cmd("XCLAIM")
                .arg(self.stream())
                .arg(GROUP)
                .arg(&self.consumer)
                .arg(0)
                .arg(chunk)
                .arg("JUSTID")
                .query_async(&mut conn)
                .await
                .map_err(store_err)?;
        }
        Ok(())
    }

    /// Takes over up to `count` entries whose holder has not renewed them for a lease.
    async fn reclaim(&self, count: usize) -> Result<Vec<Taken>, StoreError> {
        let mut conn = self.conn.clone();
        let reply: StreamAutoClaimReply = redis::cmd("XAUTOCLAIM")
            .arg(self.stream())
            .arg(GROUP)
            .arg(&self.consumer)
            .arg(self.lease.as_millis() as u64)
            .arg("0-0")
            .arg("COUNT")
            .arg(count.max(1))
            .query_async(&mut conn)
            .await
            .map_err(store_err)?;
        let entries = reply
            .claimed
            .into_iter()
            .map(|e| {
                let trace = e.get("trace");
                (e.id, trace)
            })
            .collect();
        self.resolve(entries).await
    }
}

impl JobQueue for SharedJobs {
    fn submit<'a>(
        &'a self,
        job: &'a Job,
        capacity: Capacity,
    ) -> BoxFuture<'a, Result<Accepted, StoreError>> {
        Box::pin(self.submit_job(job, capacity))
    }

    fn take(&self, max: usize, wait: Duration) -> BoxFuture<'_, Result<Vec<Taken>, StoreError>> {
        Box::pin(async move {
            use std::sync::atomic::Ordering;
            if !self.own_taken.load(Ordering::Acquire) {
                let own = self.take_own_pending().await?;
                self.own_taken.store(true, Ordering::Release);
                if !own.is_empty() {
                    return Ok(own);
                }
            }
            self.take_new(max, wait).await
        })
    }

    fn save<'a>(&'a self, job: &'a Job, _entry: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(self.save_job(job))
    }

    fn finish<'a>(&'a self, job: &'a Job, entry: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(self.finish_job(job, entry))
    }

    fn reopen<'a>(&'a self, job: &'a Job) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(self.reopen_job(job))
    }

    fn get<'a>(&'a self, trace_id: &'a str) -> BoxFuture<'a, Result<Option<Job>, StoreError>> {
        Box::pin(self.get_job(trace_id))
    }

    fn list(&self, state: JobState, limit: usize) -> BoxFuture<'_, Result<Vec<Job>, StoreError>> {
        Box::pin(self.list_jobs(state, limit))
    }

    fn unfinished(&self) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(self.count_unfinished())
    }

    fn maintain<'a>(&'a self, held: &'a [String]) -> BoxFuture<'a, Result<Vec<Taken>, StoreError>> {
        Box::pin(async move {
            self.renew(held).await?;
            self.reclaim(256).await
        })
    }

    /// Finished records expire by themselves; the dead-letter index is trimmed here.
    fn forget_before(&self, cutoff_ms: u64) -> BoxFuture<'_, Result<usize, StoreError>> {
        Box::pin(async move {
            self.trim_dead(cutoff_ms).await?;
            Ok(0)
        })
    }
}

/// This instance's consumer name: made once and kept in the data directory, so a restart takes
/// its own unfinished jobs back at once instead of waiting out their lease.
pub fn consumer_name(data_dir: &std::path::Path) -> std::io::Result<String> {
    let path = data_dir.join("instance-id");
    match std::fs::read_to_string(&path) {
        Ok(name) if !name.trim().is_empty() => Ok(name.trim().to_owned()),
        _ => {
            std::fs::create_dir_all(data_dir)?;
            let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
            let name = format!(
                "{}-{:016x}",
                host.trim()
                    .chars()
                    .filter(char::is_ascii_alphanumeric)
                    .collect::<String>(),
                getrandom::u64().unwrap_or(u64::from(std::process::id()))
            );
            std::fs::write(&path, &name)?;
            Ok(name)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::queue::conformance;

    async fn queue(prefix: &str, consumer: &str, lease: Duration) -> SharedJobs {
        let state = crate::state::redis::RedisState::connect(
            "redis://127.0.0.1:6379/0",
            prefix,
            Duration::from_secs(60),
        )
        .await
        .expect("Redis on 127.0.0.1:6379 (.ci/run starts one)");
        let blocking = state
            .dedicated_connection(Duration::from_secs(1))
            .await
            .expect("a second connection");
        SharedJobs::open(
            state.connection(),
            blocking,
            prefix,
            consumer.to_owned(),
            lease,
            Duration::from_secs(3600),
        )
        .await
        .expect("the consumer group")
    }

    fn fresh_prefix(name: &str) -> String {
        crate::state::test_prefix(name)
    }

    #[tokio::test]
    async fn the_shared_queue_passes_the_conformance_suite() {
        let prefix = fresh_prefix("jobs");
        let q = queue(&prefix, "a", Duration::from_secs(60)).await;
        conformance::job_queue(&q, async || {
            queue(&prefix, "a", Duration::from_secs(60)).await
        })
        .await;
    }

    /// Leases: a holder that renews keeps its job; one that stops loses it to another instance
    /// once the lease has run out, with the job as last saved.
    #[tokio::test]
    async fn a_job_whose_lease_runs_out_is_taken_over() {
        let prefix = fresh_prefix("lease");
        let lease = Duration::from_millis(300);
        let a = queue(&prefix, "a", lease).await;
        let b = queue(&prefix, "b", lease).await;
        let room = Capacity {
            total: 10,
            per_app: 10,
        };
        let accepted = a.submit(&conformance::job("j1", 1), room).await.unwrap();
        assert_eq!(accepted, Accepted::Yes);
        let held = a.take(10, Duration::from_millis(200)).await.unwrap();
        assert_eq!(held.len(), 1);
        let mut job = held[0].job.clone();
        job.state = JobState::Pushing;
        job.attempts = 2;
        a.save(&job, &held[0].entry).await.unwrap();
        // Renewed twice within the lease: b finds nothing to take over.
        for _ in 0..3 {
            tokio::time::sleep(lease / 2).await;
            assert!(
                a.maintain(&[held[0].entry.clone()])
                    .await
                    .unwrap()
                    .is_empty()
            );
            assert!(
                b.maintain(&[]).await.unwrap().is_empty(),
                "taken over while renewed"
            );
        }
        // a stops renewing.
        tokio::time::sleep(lease + lease / 2).await;
        let taken = b.maintain(&[]).await.unwrap();
        assert_eq!(taken.len(), 1);
        assert_eq!(taken[0].job.state, JobState::Pushing);
        assert_eq!(taken[0].job.attempts, 2);
        // a's renewal does not claim it back: it is b's now.
        a.maintain(&[held[0].entry.clone()]).await.unwrap();
        let mut conn = a.conn.clone();
        let pending: redis::streams::StreamPendingCountReply = redis::cmd("XPENDING")
            .arg(a.stream())
            .arg(GROUP)
            .arg("-")
            .arg("+")
            .arg(10)
            .query_async(&mut conn)
            .await
            .unwrap();
        let owners: Vec<&str> = pending.ids.iter().map(|p| p.consumer.as_str()).collect();
        assert_eq!(owners, ["b"]);
        // b finishes it once; a late finish by a does not count it twice.
        job.state = JobState::Delivered;
        job.finished_ms = Some(5);
        b.finish(&job, &taken[0].entry).await.unwrap();
        a.finish(&job, &held[0].entry).await.unwrap();
        assert_eq!(b.unfinished().await.unwrap(), 0);
    }
}
