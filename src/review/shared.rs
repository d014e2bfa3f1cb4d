//! The review queue in Redis, shared by every instance of a deployment (`state.backend =
//! "redis"`): an item queued by one instance is listed, claimed and decided through any.
//!
//! Keys (under the deployment's prefix):
//! - `review:item:{id}`: the queued item as JSON, without claim or decision; it expires after
//!   the retention (so stored content is deleted by Redis itself);
//! - `review:claim:{id}`: `reviewer TAB until_ms`; `review:decision:{id}`: the decision as JSON
//!   (both expire with their item);
//! - per app, sorted by the time queued: `review:all:{app}`, `review:open:{app}` (undecided),
//!   `review:samples:{app}` (undecided samples), `review:decided:{app}`; `review:apps`;
//! - `review:audit`: the audit log, newest first, trimmed to [`super::AUDIT_MAX`].
//!
//! Queueing (with the bound's eviction), claims, releases and decisions are each one script, so
//! two instances can never both claim or decide an item.

use redis::Script;

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use super::{
    AUDIT_MAX, AuditEntry, AuditFilter, Claim, Decision, Filter, Item, Queued, Reason, ReviewError,
    ReviewMetrics, ReviewSettings, State, Store, Swept, audit_entry, reason_str,
};
use crate::state::BoxFuture;
use crate::state::redis::Retrying;

const ENQUEUE: &str = r"
if redis.call('EXISTS', KEYS[5]) == 1 then return 1 end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[5]) then
  local victim = redis.call('ZRANGE', KEYS[4], 0, 0)[1]
  if not victim and ARGV[3] == 'review' then victim = redis.call('ZRANGE', KEYS[3], 0, 0)[1] end
  if not victim then return 0 end
  for i = 1, 4 do redis.call('ZREM', KEYS[i], victim) end
  redis.call('DEL', ARGV[8] .. 'item:' .. victim, ARGV[8] .. 'claim:' .. victim, ARGV[8] .. 'decision:' .. victim)
end
redis.call('SET', KEYS[5], ARGV[4], 'PX', ARGV[6])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
if ARGV[3] == 'sample' then redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1]) end
redis.call('SADD', KEYS[6], ARGV[7])
return 1
";

/// Shared by CLAIM and DECIDE: the item's standing for `reviewer` at `now`.
const STANDING: &str = r"
local function standing(item, claim, decision, reviewer, now)
  if redis.call('EXISTS', item) == 0 then return {'missing'} end
  local d = redis.call('GET', decision)
  if d then return {'decided', d} end
  local c = redis.call('GET', claim)
  if c then
    local tab = string.find(c, '\t', 1, true)
    local holder = string.sub(c, 1, tab - 1)
    if tonumber(string.sub(c, tab + 1)) > now then
      if holder ~= reviewer then return {'other', holder} end
      return {'mine'}
    end
  end
  return {'free'}
end
";

const CLAIM: &str = r"
local s = standing(KEYS[1], KEYS[2], KEYS[3], ARGV[1], tonumber(ARGV[2]))
if s[1] ~= 'free' and s[1] ~= 'mine' then return s end
if ARGV[4] == 'release' then
  if s[1] ~= 'mine' then return {'unclaimed'} end
  redis.call('DEL', KEYS[2])
  return {'ok'}
end
redis.call('SET', KEYS[2], ARGV[1] .. '\t' .. ARGV[3], 'PX', redis.call('PTTL', KEYS[1]))
return {'ok'}
";

const DECIDE: &str = r"
local s = standing(KEYS[1], KEYS[2], KEYS[3], ARGV[1], tonumber(ARGV[2]))
if s[1] == 'free' then return {'unclaimed'} end
if s[1] ~= 'mine' then return s end
redis.call('SET', KEYS[3], ARGV[3], 'PX', redis.call('PTTL', KEYS[1]))
redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[4], ARGV[5])
redis.call('ZREM', KEYS[5], ARGV[5])
redis.call('ZADD', KEYS[6], ARGV[6], ARGV[5])
redis.call('LPUSH', KEYS[7], ARGV[4])
redis.call('LTRIM', KEYS[7], 0, tonumber(ARGV[7]) - 1)
return {'ok'}
";

/// The review queue's Redis side.
pub struct SharedReview {
    conn: Retrying,
    /// `{deployment prefix}:review:`.
    prefix: String,
    enqueue: Script,
    claim: Script,
    decide: Script,
}

fn store_err(e: redis::RedisError) -> ReviewError {
    ReviewError::Store(e.to_string())
}

impl SharedReview {
    pub fn new(conn: Retrying, deployment_prefix: &str) -> SharedReview {
        SharedReview {
            conn,
            prefix: format!("{deployment_prefix}:review:"),
            enqueue: Script::new(ENQUEUE),
            claim: Script::new(&format!("{STANDING}{CLAIM}")),
            decide: Script::new(&format!("{STANDING}{DECIDE}")),
        }
    }

    fn key(&self, what: &str, name: &str) -> String {
        format!("{}{what}:{name}", self.prefix)
    }

    /// Queues one item; `Ok(false)` when the app's queue is full and nothing could be evicted.
    pub async fn enqueue(
        &self,
        item: &Item,
        max_items: usize,
        retention_ms: u64,
    ) -> Result<bool, ReviewError> {
        let mut conn = self.conn.clone();
        let json = serde_json::to_string(item).map_err(|e| ReviewError::Store(e.to_string()))?;
        let reason = match item.reason {
            Reason::Review => "review",
            Reason::Sample => "sample",
        };
        let queued: i64 = self
            .enqueue
            .key(self.key("all", &item.appid))
            .key(self.key("open", &item.appid))
            .key(self.key("samples", &item.appid))
            .key(self.key("decided", &item.appid))
            .key(self.key("item", &item.id))
            .key(format!("{}apps", self.prefix))
            .arg(&item.id)
            .arg(item.created_ms)
            .arg(reason)
            .arg(json)
            .arg(max_items)
            .arg(retention_ms.max(1))
            .arg(&item.appid)
            .arg(&self.prefix)
            .invoke_async(&mut conn)
            .await
            .map_err(store_err)?;
        Ok(queued == 1)
    }

    /// Items by id, with their claims and decisions (`None` for one that is gone).
    async fn items(&self, ids: &[String]) -> Result<Vec<Option<Item>>, ReviewError> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(300) {
            let mut keys = Vec::with_capacity(chunk.len() * 3);
            for id in chunk {
                keys.push(self.key("item", id));
                keys.push(self.key("claim", id));
                keys.push(self.key("decision", id));
            }
            let mut conn = self.conn.clone();
            let values: Vec<Option<String>> = redis::cmd("MGET")
                .arg(&keys)
                .query_async(&mut conn)
                .await
                .map_err(store_err)?;
            for triple in values.chunks(3) {
                out.push(assemble(triple));
            }
        }
        Ok(out)
    }

    pub async fn get(&self, id: &str) -> Result<Option<Item>, ReviewError> {
        Ok(self.items(&[id.to_owned()]).await?.pop().flatten())
    }

    async fn apps(&self) -> Result<Vec<String>, ReviewError> {
        let mut conn = self.conn.clone();
        redis::cmd("SMEMBERS")
            .arg(format!("{}apps", self.prefix))
            .query_async(&mut conn)
            .await
            .map_err(store_err)
    }

    pub async fn list(
        &self,
        filter: &Filter,
        now_ms: u64,
    ) -> Result<(Vec<Item>, usize), ReviewError> {
        let apps = match &filter.appid {
            Some(a) => vec![a.clone()],
            None => self.apps().await?,
        };
        // The age window as a range of queue times.
        let newest = filter
            .min_age
            .map_or(u64::MAX, |a| now_ms.saturating_sub(a.as_millis() as u64));
        let oldest = filter
            .max_age
            .map_or(0, |a| now_ms.saturating_sub(a.as_millis() as u64));
        let set =
            if filter.undecided || matches!(filter.state, Some(State::Pending | State::Claimed)) {
                "open"
            } else if filter.state == Some(State::Decided) {
                "decided"
            } else {
                "all"
            };
        let mut found = Vec::new();
        for app in apps {
            let mut conn = self.conn.clone();
            let ids: Vec<String> = redis::cmd("ZRANGEBYSCORE")
                .arg(self.key(set, &app))
                .arg(oldest)
                .arg(if newest == u64::MAX {
                    "+inf".to_owned()
                } else {
                    newest.to_string()
                })
                .query_async(&mut conn)
                .await
                .map_err(store_err)?;
            for item in self.items(&ids).await?.into_iter().flatten() {
                if super::matches(filter, &item, now_ms) {
                    found.push(item);
                }
            }
        }
        found.sort_by_key(|i| i.created_ms);
        Ok(super::page(found, filter.offset, filter.limit))
    }

    /// Claims or releases (`release`) an item for `reviewer`.
    pub async fn claim(
        &self,
        id: &str,
        reviewer: &str,
        now_ms: u64,
        until_ms: u64,
        release: bool,
    ) -> Result<Item, ReviewError> {
        let mut conn = self.conn.clone();
        let answer: Vec<String> = self
            .claim
            .key(self.key("item", id))
            .key(self.key("claim", id))
            .key(self.key("decision", id))
            .arg(reviewer)
            .arg(now_ms)
            .arg(until_ms)
            .arg(if release { "release" } else { "claim" })
            .invoke_async(&mut conn)
            .await
            .map_err(store_err)?;
        refusal(&answer)?;
        self.get(id).await?.ok_or(ReviewError::NotFound)
    }

    /// Records a decision, with its audit entry, if `reviewer` holds the item's claim.
    pub async fn decide(
        &self,
        item: &Item,
        decision: &Decision,
        entry: &AuditEntry,
        now_ms: u64,
    ) -> Result<Item, ReviewError> {
        let mut conn = self.conn.clone();
        let answer: Vec<String> = self
            .decide
            .key(self.key("item", &item.id))
            .key(self.key("claim", &item.id))
            .key(self.key("decision", &item.id))
            .key(self.key("open", &item.appid))
            .key(self.key("samples", &item.appid))
            .key(self.key("decided", &item.appid))
            .key(format!("{}audit", self.prefix))
            .arg(&decision.reviewer)
            .arg(now_ms)
            .arg(serde_json::to_string(decision).unwrap_or_default())
            .arg(serde_json::to_string(entry).unwrap_or_default())
            .arg(&item.id)
            .arg(item.created_ms)
            .arg(AUDIT_MAX)
            .invoke_async(&mut conn)
            .await
            .map_err(store_err)?;
        refusal(&answer)?;
        self.get(&item.id).await?.ok_or(ReviewError::NotFound)
    }

    pub async fn audit(
        &self,
        filter: &AuditFilter,
    ) -> Result<(Vec<AuditEntry>, usize), ReviewError> {
        let mut conn = self.conn.clone();
        // A filter reads the whole log (at most AUDIT_MAX entries); a page only, its part.
        let last: isize = match filter.read_at_most() {
            Some(n) => n as isize - 1,
            None => -1,
        };
        let total: usize = if filter.read_at_most().is_some() {
            redis::cmd("LLEN")
                .arg(format!("{}audit", self.prefix))
                .query_async(&mut conn)
                .await
                .map_err(store_err)?
        } else {
            0
        };
        let raw: Vec<String> = redis::cmd("LRANGE")
            .arg(format!("{}audit", self.prefix))
            .arg(0)
            .arg(last)
            .query_async(&mut conn)
            .await
            .map_err(store_err)?;
        let found: Vec<AuditEntry> = raw
            .iter()
            .filter_map(|j| serde_json::from_str::<AuditEntry>(j).ok())
            .filter(|e| filter.matches(e))
            .collect();
        let (page, matched) = super::page(found, filter.offset, filter.limit);
        Ok((page, total.max(matched)))
    }

    /// Forgets the ids of items queued before `horizon_ms` (Redis has expired the items) and
    /// returns each app's undecided count.
    pub async fn sweep(&self, horizon_ms: u64) -> Result<(usize, Vec<(String, i64)>), ReviewError> {
        let mut removed = 0;
        let mut depths = Vec::new();
        for app in self.apps().await? {
            let mut conn = self.conn.clone();
            let mut pipe = redis::pipe();
            for set in ["all", "open", "samples", "decided"] {
                pipe.cmd("ZREMRANGEBYSCORE")
                    .arg(self.key(set, &app))
                    .arg("-inf")
                    .arg(format!("({horizon_ms}"));
            }
            pipe.cmd("ZCARD").arg(self.key("open", &app));
            let (all, _, _, _, open): (usize, usize, usize, usize, i64) =
                pipe.query_async(&mut conn).await.map_err(store_err)?;
            removed += all;
            depths.push((app, open));
        }
        Ok((removed, depths))
    }

    /// An app's undecided items.
    pub async fn undecided(&self, appid: &str) -> Result<i64, ReviewError> {
        let mut conn = self.conn.clone();
        redis::cmd("ZCARD")
            .arg(self.key("open", appid))
            .query_async(&mut conn)
            .await
            .map_err(store_err)
    }
}

/// The item from its three keys' values.
pub(crate) fn assemble(values: &[Option<String>]) -> Option<Item> {
    let mut item: Item = serde_json::from_str(values.first()?.as_deref()?).ok()?;
    if let Some(Some(c)) = values.get(1)
        && let Some((reviewer, until)) = c.split_once('\t')
    {
        item.claim = Some(Claim {
            reviewer: reviewer.to_owned(),
            until_ms: until.parse().unwrap_or(0),
        });
    }
    if let Some(Some(d)) = values.get(2) {
        item.decision = serde_json::from_str(d).ok();
        item.claim = None;
    }
    Some(item)
}

/// A script's refusal as the error it stands for.
pub(crate) fn refusal(answer: &[String]) -> Result<(), ReviewError> {
    match answer.first().map(String::as_str) {
        Some("ok") => Ok(()),
        Some("missing") => Err(ReviewError::NotFound),
        Some("other") => Err(ReviewError::ClaimedByOther(
            answer.get(1).cloned().unwrap_or_default(),
        )),
        Some("decided") => {
            let by = answer
                .get(1)
                .and_then(|d| serde_json::from_str::<Decision>(d).ok())
                .map(|d| d.reviewer)
                .unwrap_or_default();
            Err(ReviewError::Decided(by))
        }
        Some("unclaimed") => Err(ReviewError::NotClaimed),
        other => Err(ReviewError::Store(format!("unexpected answer {other:?}"))),
    }
}

/// The review queue in Redis: items queued on the request path are staged here until the
/// writer hands them over (Redis applies the per-app bound then).
pub(crate) struct SharedStore {
    redis: SharedReview,
    staged: Mutex<HashMap<String, Item>>,
    max_items_per_app: usize,
    retention_ms: u64,
    metrics: ReviewMetrics,
}

impl SharedStore {
    pub(crate) fn new(
        redis: SharedReview,
        settings: &ReviewSettings,
        metrics: ReviewMetrics,
    ) -> SharedStore {
        SharedStore {
            redis,
            staged: Mutex::new(HashMap::new()),
            max_items_per_app: settings.max_items_per_app,
            retention_ms: settings.retention.as_millis() as u64,
            metrics,
        }
    }

    /// Queues staged items in Redis (one script each, on the shared connection's pipeline).
    async fn hand_over(&self, ids: Vec<String>) -> Result<(), ReviewError> {
        let shared = &self.redis;
        let items: Vec<Item> = {
            let mut staged = self.staged.lock().unwrap_or_else(PoisonError::into_inner);
            ids.iter().filter_map(|id| staged.remove(id)).collect()
        };
        let retention = self.retention_ms;
        let queued = futures_util::future::join_all(
            items
                .iter()
                .map(|item| shared.enqueue(item, self.max_items_per_app, retention)),
        )
        .await;
        let mut apps: Vec<&str> = Vec::new();
        let mut failed = None;
        for (item, queued) in items.iter().zip(queued) {
            match queued {
                Ok(true) => {
                    self.metrics
                        .enqueued
                        .with_label_values(&[item.kind(), reason_str(item.reason)])
                        .inc();
                    apps.push(&item.appid);
                }
                Ok(false) => self.metrics.dropped.with_label_values(&["full"]).inc(),
                Err(e) => {
                    self.metrics
                        .dropped
                        .with_label_values(&["store_busy"])
                        .inc();
                    failed = Some(e);
                }
            }
        }
        apps.sort_unstable();
        apps.dedup();
        for app in apps {
            if let Ok(depth) = shared.undecided(app).await {
                self.metrics.depth.with_label_values(&[app]).set(depth);
            }
        }
        failed.map_or(Ok(()), Err)
    }

    async fn decide_here(
        &self,
        id: &str,
        decision: Decision,
        now_ms: u64,
    ) -> Result<(Item, AuditEntry, i64), ReviewError> {
        let item = self.redis.get(id).await?.ok_or(ReviewError::NotFound)?;
        let entry = audit_entry(&item, &decision);
        let updated = self.redis.decide(&item, &decision, &entry, now_ms).await?;
        let depth = self.redis.undecided(&updated.appid).await.unwrap_or(0);
        Ok((updated, entry, depth))
    }
}

impl Store for SharedStore {
    fn queue(&self, item: Item) -> Queued {
        self.staged
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(item.id.clone(), item);
        Queued::Yes {
            evicted: None,
            depth: None,
        }
    }

    fn store<'a>(&'a self, ids: Vec<String>) -> BoxFuture<'a, Result<(), ReviewError>> {
        Box::pin(self.hand_over(ids))
    }

    fn get<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<Item>, ReviewError>> {
        Box::pin(self.redis.get(id))
    }

    fn undecided<'a>(&'a self, appid: &'a str) -> BoxFuture<'a, Result<i64, ReviewError>> {
        Box::pin(self.redis.undecided(appid))
    }

    fn list<'a>(
        &'a self,
        filter: &'a Filter,
        now_ms: u64,
    ) -> BoxFuture<'a, Result<(Vec<Item>, usize), ReviewError>> {
        Box::pin(self.redis.list(filter, now_ms))
    }

    fn claim<'a>(
        &'a self,
        id: &'a str,
        reviewer: &'a str,
        now_ms: u64,
        until: Option<u64>,
    ) -> BoxFuture<'a, Result<Item, ReviewError>> {
        Box::pin(
            self.redis
                .claim(id, reviewer, now_ms, until.unwrap_or(0), until.is_none()),
        )
    }

    fn decide<'a>(
        &'a self,
        id: &'a str,
        decision: Decision,
        now_ms: u64,
    ) -> BoxFuture<'a, Result<(Item, AuditEntry, i64), ReviewError>> {
        Box::pin(self.decide_here(id, decision, now_ms))
    }

    fn audit<'a>(
        &'a self,
        filter: &'a AuditFilter,
    ) -> BoxFuture<'a, Result<(Vec<AuditEntry>, usize), ReviewError>> {
        Box::pin(self.redis.audit(filter))
    }

    fn sweep<'a>(&'a self, horizon_ms: u64) -> BoxFuture<'a, Result<Swept, ReviewError>> {
        // Redis expires the items themselves; their ids are dropped from the app's sets.
        Box::pin(self.redis.sweep(horizon_ms))
    }
}
