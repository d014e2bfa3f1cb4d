//! Admissions batched per app and API: while one batch of an app's calls to an API is in Redis,
//! that app's next calls to it queue, and go together when it returns (a group commit for
//! checks); calls of other apps, and an idle app's first call, go at once. A batch is one script
//! run over its requests in arrival order ([`ADMIT_BATCH`]), so it admits exactly what the
//! one-request script would for the same sequence: it reads the rate limit's arrival time and
//! the day's counter once, decides each request in turn, and writes each back once. Every key
//! of a run carries the app's hash tag (one Redis Cluster slot).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use redis::Script;

use super::{Retrying, unavailable};
use crate::state::StateError;

/// KEYS[1] rate limit, KEYS[2] day counter, KEYS[3] the app's visits, KEYS[4..] the visit key
/// of earlier versions for each request naming a user, in order. ARGV[1] the rate limit's
/// interval (µs), ARGV[2] its burst, ARGV[3] the day's limit, ARGV[4] the counter's TTL (s); then
/// three per request: now (µs), the visit TTL (s), the openid ('' for none).
/// Returns two integers per request, as the one-request script's answer:
/// {0, used} admitted, {1, wait µs} rate-limited, {2, used} quota spent, {3, used} stale visit.
pub(super) const ADMIT_BATCH: &str = r"
local t = tonumber(ARGV[1])
local tolerance = t * (tonumber(ARGV[2]) - 1)
local limit = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
local used0 = tonumber(redis.call('GET', KEYS[2]) or '0')
local used = used0
local last_now = nil
local legacy = 4
local out = {}
for i = 5, #ARGV, 3 do
  local now = tonumber(ARGV[i])
  local openid = ARGV[i + 2]
  local old = nil
  if openid ~= '' then
    old = KEYS[legacy]
    legacy = legacy + 1
  end
  local at = tat
  if at < now then at = now end
  if at - now > tolerance then
    out[#out + 1] = 1
    out[#out + 1] = at - tolerance - now
  else
    tat = at + t
    last_now = now
    if used >= limit then
      out[#out + 1] = 2
      out[#out + 1] = used
    else
      used = used + 1
      local outcome = 0
      if old then
        local last = tonumber(redis.call('ZSCORE', KEYS[3], openid) or redis.call('GET', old) or '-1')
        if last < 0 or math.floor(now / 1000000) - last >= tonumber(ARGV[i + 1]) then
          outcome = 3
        end
      end
      out[#out + 1] = outcome
      out[#out + 1] = used
    end
  end
end
if last_now then
  redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', string.format('%.0f', math.ceil((tat - last_now) / 1000) + 1000))
end
if used > used0 then
  local added = used - used0
  if redis.call('INCRBY', KEYS[2], added) == added then
    redis.call('EXPIRE', KEYS[2], ARGV[4])
  end
end
return out
";

/// One admission's part of a batch.
pub(super) struct Request {
    /// The app and API's keys: rate limit, day counter, visits.
    pub keys: [String; 3],
    /// The visit key of earlier versions, when the request names a user.
    pub old_visit: Option<String>,
    /// Interval (µs), burst, the day's limit: one run holds requests that agree on them.
    pub limits: (u64, u32, u32),
    pub now_us: u64,
    pub visit_ttl_secs: u64,
    pub openid: String,
}

type Reply = tokio::sync::oneshot::Sender<Result<(i64, i64), StateError>>;

/// The admissions waiting, by app and API (their rate limit key): a group is present while a
/// batch of it is in Redis, holding what arrived since. Groups are independent, so one app's
/// batch never waits for another's.
#[derive(Default)]
pub(super) struct Queue {
    groups: Mutex<HashMap<String, Vec<(Request, Reply)>>>,
}

impl Queue {
    /// Queues `request` behind its group's batch in flight, or, when none is, marks the group
    /// busy and hands the request back: the caller sends it alone at once ([`alone`]), then
    /// hands what queued meanwhile to [`drive`] ([`Queue::hand_off`]).
    pub fn push(&self, request: Request, reply: Reply) -> Option<Request> {
        let mut groups = self.groups.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(waiting) = groups.get_mut(&request.keys[0]) {
            waiting.push((request, reply));
            return None;
        }
        groups.insert(request.keys[0].clone(), Vec::new());
        Some(request)
    }

    /// After a batch of group `key`: true when calls queued meanwhile (the caller starts
    /// [`drive`] for them), false when none did (the group is idle again).
    pub fn hand_off(&self, key: &str) -> bool {
        let mut groups = self.groups.lock().unwrap_or_else(PoisonError::into_inner);
        match groups.get(key) {
            Some(waiting) if !waiting.is_empty() => true,
            _ => {
                groups.remove(key);
                false
            }
        }
    }

    /// Drops group `key` with whatever waits in it (each waiting call's reply with it).
    pub fn discard(&self, key: &str) {
        let mut groups = self.groups.lock().unwrap_or_else(PoisonError::into_inner);
        groups.remove(key);
    }

    /// What waits in group `key`, or None (and the group idle) when nothing does.
    fn take(&self, key: &str) -> Option<Vec<(Request, Reply)>> {
        let mut groups = self.groups.lock().unwrap_or_else(PoisonError::into_inner);
        match groups.get_mut(key) {
            Some(waiting) if !waiting.is_empty() => Some(std::mem::take(waiting)),
            _ => {
                groups.remove(key);
                None
            }
        }
    }
}

/// Sends one request as a run of its own (the first call of an idle group).
pub(super) async fn alone(
    request: &Request,
    script: &Script,
    conn: &Retrying,
    sizes: Option<&prometheus::Histogram>,
) -> Result<(i64, i64), StateError> {
    if let Some(sizes) = sizes {
        sizes.observe(1.0);
    }
    let answer = invocation(script, std::iter::once(request))
        .invoke_async::<Vec<i64>>(&mut conn.once())
        .await;
    Ok(answered(answer, 1)?[0])
}

/// Sends what waits in group `key` of `queue`, a batch at a time, until nothing does; each
/// run's number of calls goes to `sizes`.
pub(super) async fn drive(
    queue: &Queue,
    key: &str,
    script: &Script,
    conn: &Retrying,
    sizes: Option<&prometheus::Histogram>,
) {
    while let Some(batch) = queue.take(key) {
        let runs = runs(batch);
        if let Some(sizes) = sizes {
            for run in &runs {
                sizes.observe(run.len() as f64);
            }
        }
        let sent = runs.iter().map(|run| {
            let mut conn = conn.once();
            let invocation = invocation(script, run.iter().map(|(r, _)| r));
            async move { invocation.invoke_async::<Vec<i64>>(&mut conn).await }
        });
        let answers = futures_util::future::join_all(sent).await;
        for (run, answer) in runs.into_iter().zip(answers) {
            reply(run, answer);
        }
    }
}

/// Splits a group's batch where the day or the app's limits change (one run but at a day's
/// turn or a change of limits), keeping arrival order: the runs are sent in order on one
/// connection, so Redis decides every call in the order it queued.
fn runs(batch: Vec<(Request, Reply)>) -> Vec<Vec<(Request, Reply)>> {
    let mut runs: Vec<Vec<(Request, Reply)>> = Vec::new();
    for (request, reply) in batch {
        match runs.last_mut() {
            Some(run)
                if run[0].0.keys[1] == request.keys[1] && run[0].0.limits == request.limits =>
            {
                run.push((request, reply));
            }
            _ => runs.push(vec![(request, reply)]),
        }
    }
    runs
}

/// The script's invocation for one run (all of `requests` share their keys and limits).
pub(super) fn invocation<'a>(
    script: &Script,
    mut requests: impl Iterator<Item = &'a Request>,
) -> redis::ScriptInvocation<'_> {
    let first = requests.next().expect("a run holds a request");
    let mut invocation = script.prepare_invoke();
    for key in &first.keys {
        invocation.key(key);
    }
    let (interval, burst, limit) = first.limits;
    invocation
        .arg(interval)
        .arg(burst)
        .arg(limit)
        .arg(super::DAY_KEY_TTL_SECS);
    for r in std::iter::once(first).chain(requests) {
        if let Some(old) = &r.old_visit {
            invocation.key(old);
        }
        invocation
            .arg(r.now_us)
            .arg(r.visit_ttl_secs)
            .arg(&r.openid);
    }
    invocation
}

/// Hands each request of `run` its answer.
fn reply(run: Vec<(Request, Reply)>, answer: Result<Vec<i64>, redis::RedisError>) {
    match answered(answer, run.len()) {
        Ok(pairs) => {
            for ((_, reply), pair) in run.into_iter().zip(pairs) {
                let _ = reply.send(Ok(pair));
            }
        }
        Err(e) => {
            for (_, reply) in run {
                let _ = reply.send(Err(e.clone()));
            }
        }
    }
}

/// A run's answer as one `(outcome, value)` pair per request, or why there is none.
fn answered(
    answer: Result<Vec<i64>, redis::RedisError>,
    requests: usize,
) -> Result<Vec<(i64, i64)>, StateError> {
    let values = answer.map_err(unavailable)?;
    if values.len() != 2 * requests {
        return Err(StateError::Unavailable(format!(
            "the admission script answered {} values for {requests} requests",
            values.len()
        )));
    }
    Ok(values.chunks_exact(2).map(|p| (p[0], p[1])).collect())
}
