//! Admissions of one instance, by app and API (a group): answered from the group's lease
//! ([`super::lease`]) when it holds room, else batched: while one batch of a group is in Redis,
//! the group's next calls queue, and go together when it returns (a group commit for checks);
//! calls of other groups, and an idle group's first call, go at once. A batch is one script run
//! over its calls in arrival order ([`ADMIT_BATCH`]), so it admits exactly what the one-request
//! script would for the same sequence: it reads the rate limit's arrival time and the day's
//! counter once, decides each call in turn, and writes each back once. The run first takes back
//! what the group's lease did not use, and ends by granting the next lease. Every key of a run
//! carries the app's hash tag (one Redis Cluster slot).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use redis::Script;

use super::lease::{Fresh, Grant, Keys, Lease, Limits, Release, Sizing};
use super::{Retrying, unavailable};
use crate::limits::Metered;
use crate::state::StateError;

/// KEYS[1] rate limit, KEYS[2] day counter, KEYS[3] the app's visits, KEYS[4] the day's
/// reservations (instance → units), KEYS[5] and KEYS[6] the counter and reservations the handed
/// back lease was of, KEYS[7..] the visit key of earlier versions for each call naming a user, in
/// order. ARGV[1] the rate limit's interval (µs), ARGV[2] its burst, ARGV[3] the day's limit,
/// ARGV[4] the counter's TTL (s), ARGV[5] the band handed back (µs; -1 for no lease) and
/// ARGV[6] where it ends, ARGV[7] the units handed back, ARGV[8] and ARGV[9] the tokens and
/// units the lease asks for (0 for none), ARGV[10] this instance, ARGV[11] the run's latest time
/// (µs); then four per call: now (µs), the visit TTL (s), the openid ('' for none), and 1 when
/// the call may be held back (else 0).
///
/// The band goes back only while the rate limit still ends where the band does: once another
/// instance has been charged past it, taking the band out of the middle would move that
/// instance's calls earlier than they came, so the unused band stays spent.
///
/// A call that finds the quota spent while another instance holds a reservation of the day is
/// held back ({4, used}: nothing charged) when it may be: the holder may hand calls back. A call
/// that may not be held back is decided as ever, and the reservations of other instances are
/// dropped from the record (they did not answer a recall in time: their units stay counted).
///
/// Returns three integers per call, {0, used} admitted, {1, wait µs} rate-limited, {2, used}
/// quota spent, {3, used} stale visit, each with the user's visit when it was read (else -1);
/// then the grant: units, the band's start and end (µs), the day's counter after it. A grant
/// takes at most an eighth of what either limit has left, and nothing unless both have room.
pub(super) const ADMIT_BATCH: &str = r"
local t = tonumber(ARGV[1])
local tolerance = t * (tonumber(ARGV[2]) - 1)
local limit = tonumber(ARGV[3])
local band = tonumber(ARGV[5])
local me = ARGV[10]
local run_now = tonumber(ARGV[11])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
local touched = false
if band >= 0 then
  local units = tonumber(ARGV[7])
  if units > 0 then
    local held = tonumber(redis.call('GET', KEYS[5]) or '0')
    if held > 0 then
      redis.call('DECRBY', KEYS[5], math.min(units, held))
    end
  end
  redis.call('HDEL', KEYS[6], me)
  if band > 0 and tat == tonumber(ARGV[6]) then
    tat = tat - band
    touched = true
  end
end
local used0 = tonumber(redis.call('GET', KEYS[2]) or '0')
local used = used0
local others = nil
local legacy = 7
local out = {}
for i = 12, #ARGV, 4 do
  local now = tonumber(ARGV[i])
  local openid = ARGV[i + 2]
  local old = nil
  if openid ~= '' then
    old = KEYS[legacy]
    legacy = legacy + 1
  end
  local at = tat
  if at < now then at = now end
  local held = false
  if used >= limit and at - now <= tolerance then
    if others == nil then
      others = redis.call('HLEN', KEYS[4]) - redis.call('HEXISTS', KEYS[4], me)
    end
    if others > 0 then
      if ARGV[i + 3] == '1' then
        held = true
      else
        local fields = redis.call('HKEYS', KEYS[4])
        for _, holder in ipairs(fields) do
          if holder ~= me then redis.call('HDEL', KEYS[4], holder) end
        end
        others = 0
      end
    end
  end
  if held then
    out[#out + 1] = 4
    out[#out + 1] = used
    out[#out + 1] = -1
  elseif at - now > tolerance then
    out[#out + 1] = 1
    out[#out + 1] = at - tolerance - now
    out[#out + 1] = -1
  else
    tat = at + t
    touched = true
    if used >= limit then
      out[#out + 1] = 2
      out[#out + 1] = used
      out[#out + 1] = -1
    else
      used = used + 1
      local outcome = 0
      local last = -1
      if old then
        last = tonumber(redis.call('ZSCORE', KEYS[3], openid) or redis.call('GET', old) or '-1')
        if last < 0 or math.floor(now / 1000000) - last >= tonumber(ARGV[i + 1]) then
          outcome = 3
        end
      end
      out[#out + 1] = outcome
      out[#out + 1] = used
      out[#out + 1] = last
    end
  end
end
local granted, from, to = 0, 0, 0
local want = tonumber(ARGV[9])
if want > 0 then
  local at = tat
  if at < run_now then at = run_now end
  local room = math.floor((run_now + tolerance - at) / t) + 1
  local tokens = math.min(tonumber(ARGV[8]), math.floor(room / 8))
  local units = math.min(want, math.floor((limit - used) / 8), tokens)
  if units > 0 then
    granted = units
    from = at
    tat = at + tokens * t
    to = tat
    touched = true
    used = used + units
    redis.call('HSET', KEYS[4], me, units)
    redis.call('EXPIRE', KEYS[4], ARGV[4])
  end
end
if touched then
  local px = math.ceil((tat - run_now) / 1000)
  if px < 0 then px = 0 end
  redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', string.format('%.0f', px + 1000))
end
if used > used0 then
  local added = used - used0
  if redis.call('INCRBY', KEYS[2], added) == added then
    redis.call('EXPIRE', KEYS[2], ARGV[4])
  end
end
out[#out + 1] = granted
out[#out + 1] = from
out[#out + 1] = to
out[#out + 1] = used
return out
";

/// How often a call held back asks the other instances to hand back their leases.
const RECALL_EVERY: Duration = Duration::from_millis(50);

/// One call's part of a batch.
pub(super) struct Request {
    /// The app and API's keys: rate limit, day counter, visits, the day's reservations.
    pub keys: [String; 4],
    /// The visit key of earlier versions, when the call names a user.
    pub old_visit: Option<String>,
    /// One run holds calls that agree on the limits and the day.
    pub limits: Limits,
    pub day: u32,
    pub now_us: u64,
    pub visit_ttl_secs: u64,
    pub openid: String,
    /// Whether the call may be held back while another instance holds calls of the day.
    pub holdable: bool,
}

/// How one call was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Decision {
    /// By a run in Redis: the script's outcome and value, and the user's visit when it was read
    /// (else -1).
    Decided { outcome: i64, value: i64, last: i64 },
    /// By the group's lease, against both limits (`used` counts it); when `visit`, the user's
    /// visit is still to be read.
    Leased { used: u64, visit: bool },
}

type Reply = tokio::sync::oneshot::Sender<Result<Decision, StateError>>;

/// Calls to send in one go, in order: the group's first call (no reply: its caller awaits the
/// batch itself) or those that queued; what the group's lease hands back; the grant asked for.
pub(super) struct Batch {
    calls: Vec<(Request, Option<Reply>)>,
    release: Option<Release>,
    want: (u64, u64),
}

impl Batch {
    /// What the group's lease hands back with the batch, for a batch never sent.
    pub fn into_release(self) -> Option<Release> {
        self.release
    }
}

/// What came back of a batch: the answer of the call without a reply, if any, and the grant,
/// with what the lease needs of the run that granted it.
#[derive(Default)]
pub(super) struct Sent {
    pub lead: Option<Result<Decision, StateError>>,
    grant: Option<(Grant, u32, Limits, Keys)>,
}

/// One call as the group's lease sees it.
pub(super) struct Call<'a> {
    pub appid: &'a str,
    pub api: Metered,
    pub now_us: u64,
    pub limits: Limits,
    pub day: u32,
    pub openid: Option<&'a str>,
    pub visit_ttl: Duration,
}

/// Where [`Admissions::enter`] put a call.
pub(super) enum Entered {
    /// Admitted by the lease ([`Decision::Leased`]).
    Leased { used: u64, visit: bool },
    /// The group was idle: the caller sends this batch, then hands the group on
    /// ([`Admissions::after`]).
    Lead(Batch),
    /// Behind the group's batch in Redis.
    Queued(tokio::sync::oneshot::Receiver<Result<Decision, StateError>>),
}

#[derive(Default)]
struct Group {
    /// A batch of the group is in Redis; calls wait in `waiting`.
    busy: bool,
    waiting: Vec<(Request, Reply)>,
    lease: Option<Lease>,
    sizing: Sizing,
    /// When this instance last asked the others to hand back their leases of the group.
    recalled: Option<std::time::Instant>,
}

impl Group {
    /// Takes the lease to hand back, unless a batch of the group is in Redis (it holds none):
    /// the group is marked busy, so its calls queue behind the hand-back.
    fn hand_back(&mut self) -> Option<Release> {
        if self.busy {
            return None;
        }
        let lease = self.lease.take()?;
        self.sizing.learn(&lease);
        self.busy = true;
        Some(lease.release())
    }
}

#[derive(Default)]
struct AppEntry {
    groups: [Group; Metered::ALL.len()],
    fresh: Fresh,
}

/// The groups of this instance, by app.
pub(super) struct Admissions {
    apps: Mutex<HashMap<Box<str>, AppEntry>>,
    /// This instance's field in the records of reservations.
    instance: String,
}

impl Default for Admissions {
    fn default() -> Self {
        let mut id = [0u8; 8];
        // A name that no other instance takes: 64 random bits, else the process and the time.
        let instance = match getrandom::fill(&mut id) {
            Ok(()) => format!("{:016x}", u64::from_le_bytes(id)),
            Err(_) => format!("{}-{}", std::process::id(), crate::clock::wall_ms()),
        };
        Admissions {
            apps: Mutex::default(),
            instance,
        }
    }
}

impl Admissions {
    fn apps(&self) -> std::sync::MutexGuard<'_, HashMap<Box<str>, AppEntry>> {
        self.apps.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Admits `call` from its group's lease, or queues it behind the group's batch in Redis,
    /// or (the group idle) makes it the group's next batch, with what the lease hands back.
    /// `request` builds the call's part of a batch.
    pub fn enter(&self, call: &Call<'_>, request: impl FnOnce() -> Request) -> Entered {
        let mut apps = self.apps();
        let entry = match apps.get_mut(call.appid) {
            Some(entry) => entry,
            None => apps.entry(call.appid.into()).or_default(),
        };
        let group = &mut entry.groups[call.api.index()];
        if group.busy {
            let (reply, answer) = tokio::sync::oneshot::channel();
            group.waiting.push((request(), reply));
            return Entered::Queued(answer);
        }
        if let Some(lease) = &mut group.lease
            && let Some(used) = lease.take(call.now_us, call.limits, call.day)
        {
            let visit = call.openid.is_some_and(|openid| {
                !entry
                    .fresh
                    .is_fresh(openid, call.now_us / 1_000_000, call.visit_ttl)
            });
            return Entered::Leased { used, visit };
        }
        group.busy = true;
        let release = group.lease.take().map(|lease| {
            group.sizing.learn(&lease);
            lease.release()
        });
        Entered::Lead(Batch {
            calls: vec![(request(), None)],
            release,
            want: group.sizing.want(call.limits.0),
        })
    }

    /// After a batch of `appid`'s group for `api` came back: installs the lease it granted,
    /// answers from it what queued meanwhile, and returns the rest as the group's next batch,
    /// or None (the group idle again).
    pub fn after(&self, appid: &str, api: Metered, sent: &mut Sent) -> Option<Batch> {
        let mut apps = self.apps();
        let entry = apps.get_mut(appid)?;
        let group = &mut entry.groups[api.index()];
        if let Some((grant, day, limits, keys)) = sent.grant.take() {
            group.lease = Some(Lease::new(grant, day, limits, keys));
        }
        let mut rest = Vec::new();
        for (request, reply) in std::mem::take(&mut group.waiting) {
            let leased = match &mut group.lease {
                Some(lease) if rest.is_empty() => {
                    lease.take(request.now_us, request.limits, request.day)
                }
                _ => None,
            };
            match leased {
                Some(used) => {
                    let visit = !request.openid.is_empty()
                        && !entry.fresh.is_fresh(
                            &request.openid,
                            request.now_us / 1_000_000,
                            Duration::from_secs(request.visit_ttl_secs),
                        );
                    let _ = reply.send(Ok(Decision::Leased { used, visit }));
                }
                None => rest.push((request, Some(reply))),
            }
        }
        let Some((last, _)) = rest.last() else {
            group.busy = false;
            return None;
        };
        let want = group.sizing.want(last.limits.0);
        let release = group.lease.take().map(|lease| {
            group.sizing.learn(&lease);
            lease.release()
        });
        Some(Batch {
            calls: rest,
            release,
            want,
        })
    }

    /// Drops `appid`'s group for `api` with whatever waits in it (each waiting call's reply
    /// with it, which answers as the backend unavailable), its lease with it.
    pub fn discard(&self, appid: &str, api: Metered) {
        if let Some(entry) = self.apps().get_mut(appid) {
            entry.groups[api.index()] = Group::default();
        }
    }

    /// Remembers that `openid` visited `appid` at `last` (s).
    pub fn remember_visit(&self, appid: &str, openid: &str, last: u64) {
        if let Some(entry) = self.apps().get_mut(appid) {
            entry.fresh.remember(openid, last);
        }
    }

    /// Units of `day` this instance holds for `appid` and `api`: counted in Redis, not yet used.
    pub fn held_units(&self, appid: &str, api: Metered, day: u32) -> u64 {
        self.apps().get(appid).map_or(0, |entry| {
            entry.groups[api.index()]
                .lease
                .as_ref()
                .map_or(0, |lease| lease.units_of(day))
        })
    }

    /// Takes every lease not in use by a batch, to be handed back ([`give_back`]).
    pub fn leases(&self) -> Vec<Release> {
        let mut apps = self.apps();
        let mut releases = Vec::new();
        for entry in apps.values_mut() {
            for group in &mut entry.groups {
                if !group.busy
                    && let Some(lease) = group.lease.take()
                {
                    releases.push(lease.release());
                }
            }
        }
        releases
    }

    /// Takes every lease [`Lease::idle`] at `now_us` whose group has no batch in Redis, marking
    /// the group busy (calls queue behind the hand-back, as behind a batch): hand each back
    /// ([`give_back`]), then hand the group on ([`Admissions::after`]).
    pub fn idle(&self, now_us: u64, idle_us: u64) -> Vec<(Box<str>, Metered, Release)> {
        let mut apps = self.apps();
        let mut idle = Vec::new();
        for (appid, entry) in apps.iter_mut() {
            for (group, &api) in entry.groups.iter_mut().zip(Metered::ALL.iter()) {
                if group
                    .lease
                    .as_ref()
                    .is_some_and(|l| l.idle(now_us, idle_us))
                    && let Some(release) = group.hand_back()
                {
                    idle.push((appid.clone(), api, release));
                }
            }
        }
        idle
    }

    /// Takes the lease of `appid`'s group for `api`, another instance having asked for it, as
    /// [`Admissions::idle`] takes an idle one.
    pub fn recalled(&self, appid: &str, api: Metered) -> Option<Release> {
        self.apps().get_mut(appid)?.groups[api.index()].hand_back()
    }

    /// Whether to ask the other instances (again) to hand back their leases of `appid`'s group
    /// for `api`: at most once per [`RECALL_EVERY`].
    pub fn recall_due(&self, appid: &str, api: Metered, now: std::time::Instant) -> bool {
        let mut apps = self.apps();
        let Some(entry) = apps.get_mut(appid) else {
            return false;
        };
        let group = &mut entry.groups[api.index()];
        if group
            .recalled
            .is_some_and(|at| now.saturating_duration_since(at) < RECALL_EVERY)
        {
            return false;
        }
        group.recalled = Some(now);
        true
    }

    pub fn instance(&self) -> &str {
        &self.instance
    }
}

/// Sends `batch`: its runs pipelined on one connection, so Redis decides every call in the
/// order it queued. Each call with a reply gets its answer; the rest comes back.
pub(super) async fn send(
    batch: Batch,
    script: &Script,
    conn: &Retrying,
    instance: &str,
    sizes: Option<&prometheus::Histogram>,
) -> Sent {
    let Batch {
        calls,
        release,
        want,
    } = batch;
    let runs = runs(calls);
    if let Some(sizes) = sizes {
        for run in &runs {
            sizes.observe(run.len() as f64);
        }
    }
    let count = runs.len();
    let sent = runs.iter().enumerate().map(|(i, run)| {
        let mut conn = conn.once();
        let want = if i + 1 == count { want } else { (0, 0) };
        let invocation = invocation(
            script,
            run.iter().map(|(r, _)| r),
            release.as_ref().filter(|_| i == 0),
            want,
            instance,
        );
        async move { invocation.invoke_async::<Vec<i64>>(&mut conn).await }
    });
    let answers = futures_util::future::join_all(sent).await;
    let mut lead = None;
    let mut grant = None;
    for (run, answer) in runs.into_iter().zip(answers) {
        let answer = answered(answer, run.len());
        if let Ok((_, Some(g))) = &answer {
            let first = &run[0].0;
            let keys = Keys {
                rate: first.keys[0].clone(),
                day: first.keys[1].clone(),
                held: first.keys[3].clone(),
            };
            grant = Some((*g, first.day, first.limits, keys));
        }
        match answer {
            Ok((decisions, _)) => {
                for ((_, reply), decision) in run.into_iter().zip(decisions) {
                    match reply {
                        Some(reply) => drop(reply.send(Ok(decision))),
                        None => lead = Some(Ok(decision)),
                    }
                }
            }
            Err(e) => {
                for (_, reply) in run {
                    match reply {
                        Some(reply) => drop(reply.send(Err(e.clone()))),
                        None => lead = Some(Err(e.clone())),
                    }
                }
            }
        }
    }
    Sent { lead, grant }
}

/// Hands `release` back in a run of no calls at `now_us`.
pub(super) async fn give_back(
    release: &Release,
    script: &Script,
    conn: &Retrying,
    instance: &str,
    now_us: u64,
) -> Result<(), StateError> {
    let keys = &release.keys;
    let mut invocation = script.prepare_invoke();
    // No call, no grant: the visits and the grant's reservations are never read (the lease's
    // counter stands in for them).
    invocation
        .key(&keys.rate)
        .key(&keys.day)
        .key(&keys.day)
        .key(&keys.held)
        .key(&keys.day)
        .key(&keys.held);
    invocation
        .arg(1)
        .arg(1)
        .arg(0)
        .arg(super::DAY_KEY_TTL_SECS)
        .arg(i64::try_from(release.band).unwrap_or(i64::MAX))
        .arg(release.end)
        .arg(release.units)
        .arg(0)
        .arg(0)
        .arg(instance)
        .arg(now_us);
    invocation
        .invoke_async::<Vec<i64>>(&mut conn.once())
        .await
        .map(drop)
        .map_err(unavailable)
}

/// Splits a batch where the day or the app's limits change (one run but at a day's turn or a
/// change of limits), keeping arrival order.
fn runs<R>(batch: Vec<(Request, R)>) -> Vec<Vec<(Request, R)>> {
    let mut runs: Vec<Vec<(Request, R)>> = Vec::new();
    for (request, reply) in batch {
        match runs.last_mut() {
            Some(run) if run[0].0.day == request.day && run[0].0.limits == request.limits => {
                run.push((request, reply));
            }
            _ => runs.push(vec![(request, reply)]),
        }
    }
    runs
}

/// The script's invocation for one run (all of `requests` share their keys and limits).
pub(super) fn invocation<'a>(
    script: &'a Script,
    requests: impl Iterator<Item = &'a Request> + Clone,
    release: Option<&'a Release>,
    want: (u64, u64),
    instance: &'a str,
) -> redis::ScriptInvocation<'a> {
    let first = requests.clone().next().expect("a run holds a call");
    let mut invocation = script.prepare_invoke();
    for key in &first.keys {
        invocation.key(key);
    }
    match release {
        Some(r) => invocation.key(&r.keys.day).key(&r.keys.held),
        None => invocation.key(&first.keys[1]).key(&first.keys[3]),
    };
    let (interval, burst, limit) = first.limits;
    let run_now = requests.clone().map(|r| r.now_us).max().unwrap_or(0);
    invocation
        .arg(interval)
        .arg(burst)
        .arg(limit)
        .arg(super::DAY_KEY_TTL_SECS)
        .arg(release.map_or(-1, |r| i64::try_from(r.band).unwrap_or(i64::MAX)))
        .arg(release.map_or(0, |r| r.end))
        .arg(release.map_or(0, |r| r.units))
        .arg(want.0)
        .arg(want.1)
        .arg(instance)
        .arg(run_now);
    for r in requests {
        if let Some(old) = &r.old_visit {
            invocation.key(old);
        }
        invocation
            .arg(r.now_us)
            .arg(r.visit_ttl_secs)
            .arg(&r.openid)
            .arg(u8::from(r.holdable));
    }
    invocation
}

/// A run's answer as one decision per call and the grant, or why there is none.
fn answered(
    answer: Result<Vec<i64>, redis::RedisError>,
    calls: usize,
) -> Result<(Vec<Decision>, Option<Grant>), StateError> {
    let values = answer.map_err(unavailable)?;
    if values.len() != 3 * calls + 4 {
        return Err(StateError::Unavailable(format!(
            "the admission script answered {} values for {calls} calls",
            values.len()
        )));
    }
    let (decisions, grant) = values.split_at(3 * calls);
    let decisions = decisions
        .chunks_exact(3)
        .map(|d| Decision::Decided {
            outcome: d[0],
            value: d[1],
            last: d[2],
        })
        .collect();
    let count = |v: i64| u64::try_from(v).unwrap_or(0);
    let grant = (grant[0] > 0).then(|| Grant {
        units: count(grant[0]),
        start: count(grant[1]),
        end: count(grant[2]),
        top: count(grant[3]),
    });
    Ok((decisions, grant))
}
