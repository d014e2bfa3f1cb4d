//! The review queue in this process, stored in the embedded store: every item in memory (per
//! app, oldest first, with its undecided items counted as they change), written through on
//! every change.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use super::{
    AUDIT_MAX, AuditEntry, AuditFilter, Claim, Decision, Filter, Item, Queued, Reason, ReviewError,
    ReviewMetrics, ReviewSettings, Store, Swept, audit_entry, audit_key, holds, matches,
};
use crate::state::BoxFuture;
use crate::state::durable::{Change, Durable, Kind};

#[derive(Default)]
struct Inner {
    /// Items by id.
    items: HashMap<String, Item>,
    /// Each app's item ids, oldest first.
    order: HashMap<String, VecDeque<String>>,
    /// Each app's undecided items, counted as they change.
    open: HashMap<String, i64>,
    /// Each app's undecided `pass` samples ([`Reason::Sample`]), counted as they change: with
    /// `open`, whether a full queue holds anything a new item could evict, known without
    /// looking through it.
    open_samples: HashMap<String, i64>,
    /// Newest last.
    audit: VecDeque<AuditEntry>,
}

impl Inner {
    fn undecided(&self, appid: &str) -> i64 {
        self.open.get(appid).copied().unwrap_or(0)
    }

    fn undecided_samples(&self, appid: &str) -> i64 {
        self.open_samples.get(appid).copied().unwrap_or(0)
    }

    /// Counts an undecided item of `appid` in (`by` 1) or out (-1: removed or decided).
    fn count_undecided(&mut self, appid: &str, reason: Reason, by: i64) {
        *self.open.entry(appid.to_owned()).or_default() += by;
        if reason == Reason::Sample {
            *self.open_samples.entry(appid.to_owned()).or_default() += by;
        }
    }

    fn insert(&mut self, item: Item) {
        self.order
            .entry(item.appid.clone())
            .or_default()
            .push_back(item.id.clone());
        if item.decision.is_none() {
            self.count_undecided(&item.appid, item.reason, 1);
        }
        self.items.insert(item.id.clone(), item);
    }

    /// Removes one item; its id is found from the front (evictions take the oldest).
    fn remove(&mut self, id: &str) -> Option<Item> {
        let item = self.items.remove(id)?;
        if let Some(ids) = self.order.get_mut(&item.appid)
            && let Some(at) = ids.iter().position(|other| other == id)
        {
            ids.remove(at);
        }
        if item.decision.is_none() {
            self.count_undecided(&item.appid, item.reason, -1);
        }
        Some(item)
    }
}

/// The queue of every app, in this process.
pub(super) struct LocalStore {
    max_items_per_app: usize,
    inner: Mutex<Inner>,
    durable: Arc<Durable>,
    /// Held from reading items' state to committing it, so an older state of an item is never
    /// committed after a newer one (the writer's batch against a claim or decision).
    store_lock: tokio::sync::Mutex<()>,
}

impl LocalStore {
    /// Loads what the embedded store holds, less what is past retention (deleted now).
    pub(super) fn open(
        settings: &ReviewSettings,
        durable: Arc<Durable>,
        metrics: &ReviewMetrics,
        now_ms: u64,
    ) -> Result<LocalStore, String> {
        let mut inner = Inner::default();
        let mut expired = Vec::new();
        let horizon = now_ms.saturating_sub(settings.retention.as_millis() as u64);
        let mut items: Vec<Item> = Vec::new();
        for (key, json) in durable.all(Kind::Review).map_err(|e| e.to_string())? {
            match serde_json::from_slice::<Item>(&json) {
                Ok(item) if item.created_ms >= horizon => items.push(item),
                Ok(_) => expired.push(Change::Delete(Kind::Review, key)),
                Err(e) => {
                    tracing::warn!(id = key, error = %e, "unreadable review item dropped");
                    expired.push(Change::Delete(Kind::Review, key));
                }
            }
        }
        items.sort_by(|a, b| (a.created_ms, &a.id).cmp(&(b.created_ms, &b.id)));
        for item in items {
            inner.insert(item);
        }
        let mut audit = durable.all(Kind::ReviewAudit).map_err(|e| e.to_string())?;
        audit.sort_by(|a, b| a.0.cmp(&b.0));
        let surplus = audit.len().saturating_sub(AUDIT_MAX);
        for (n, (key, json)) in audit.into_iter().enumerate() {
            if n < surplus {
                expired.push(Change::Delete(Kind::ReviewAudit, key));
                continue;
            }
            if let Ok(entry) = serde_json::from_slice::<AuditEntry>(&json) {
                inner.audit.push_back(entry);
            }
        }
        if !expired.is_empty() {
            durable.apply(&expired).map_err(|e| e.to_string())?;
        }
        for appid in inner.order.keys() {
            metrics
                .depth
                .with_label_values(&[appid])
                .set(inner.undecided(appid));
        }
        Ok(LocalStore {
            max_items_per_app: settings.max_items_per_app,
            inner: Mutex::new(inner),
            durable,
            store_lock: tokio::sync::Mutex::new(()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves consistent data (every change is one insert or
        // remove), so a poisoned lock is taken over.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn list_here(&self, filter: &Filter, now_ms: u64) -> (Vec<Item>, usize) {
        let inner = self.lock();
        let apps: Vec<&String> = match &filter.appid {
            Some(a) => inner.order.keys().filter(|k| *k == a).collect(),
            None => inner.order.keys().collect(),
        };
        let mut found: Vec<&Item> = apps
            .into_iter()
            .flat_map(|a| inner.order.get(a).into_iter().flatten())
            .filter_map(|id| inner.items.get(id))
            .filter(|i| matches(filter, i, now_ms))
            .collect();
        // Stable: items queued in the same millisecond keep the order they were queued in.
        found.sort_by_key(|i| i.created_ms);
        let (items, total) = super::page(found, filter.offset, filter.limit);
        (items.into_iter().cloned().collect(), total)
    }

    async fn claim_here(
        &self,
        id: &str,
        reviewer: &str,
        now_ms: u64,
        until: u64,
    ) -> Result<Item, ReviewError> {
        let updated = {
            let mut inner = self.lock();
            let item = inner.items.get_mut(id).ok_or(ReviewError::NotFound)?;
            if let Some(d) = &item.decision {
                return Err(ReviewError::Decided(d.reviewer.clone()));
            }
            if let Some(c) = &item.claim
                && c.until_ms > now_ms
                && c.reviewer != reviewer
            {
                return Err(ReviewError::ClaimedByOther(c.reviewer.clone()));
            }
            item.claim = Some(Claim {
                reviewer: reviewer.to_owned(),
                until_ms: until,
            });
            item.clone()
        };
        self.persist(vec![updated.id.clone()], Vec::new()).await?;
        Ok(updated)
    }

    async fn release_here(
        &self,
        id: &str,
        reviewer: &str,
        now_ms: u64,
    ) -> Result<Item, ReviewError> {
        let updated = {
            let mut inner = self.lock();
            let item = inner.items.get_mut(id).ok_or(ReviewError::NotFound)?;
            if let Some(d) = &item.decision {
                return Err(ReviewError::Decided(d.reviewer.clone()));
            }
            match &item.claim {
                Some(c) if c.until_ms > now_ms && c.reviewer != reviewer => {
                    return Err(ReviewError::ClaimedByOther(c.reviewer.clone()));
                }
                Some(c) if c.until_ms > now_ms => item.claim = None,
                _ => return Err(ReviewError::NotClaimed),
            }
            item.clone()
        };
        self.persist(vec![updated.id.clone()], Vec::new()).await?;
        Ok(updated)
    }

    async fn decide_here(
        &self,
        id: &str,
        decision: Decision,
        now_ms: u64,
    ) -> Result<(Item, AuditEntry, i64), ReviewError> {
        let (updated, entry, depth) = {
            let mut inner = self.lock();
            let item = inner.items.get_mut(id).ok_or(ReviewError::NotFound)?;
            holds(item, &decision.reviewer, now_ms)?;
            let entry = audit_entry(item, &decision);
            item.claim = None;
            item.decision = Some(decision);
            let updated = item.clone();
            inner.count_undecided(&updated.appid, updated.reason, -1);
            inner.audit.push_back(entry.clone());
            let depth = inner.undecided(&updated.appid);
            (updated, entry, depth)
        };
        let mut changes = vec![Change::Put(
            Kind::ReviewAudit,
            audit_key(&entry),
            serde_json::to_vec(&entry).unwrap_or_default(),
        )];
        {
            let mut inner = self.lock();
            while inner.audit.len() > AUDIT_MAX {
                if let Some(old) = inner.audit.pop_front() {
                    changes.push(Change::Delete(Kind::ReviewAudit, audit_key(&old)));
                }
            }
        }
        self.persist(vec![updated.id.clone()], changes).await?;
        Ok((updated, entry, depth))
    }

    async fn sweep_here(&self, horizon: u64) -> Result<(usize, Vec<(String, i64)>), ReviewError> {
        let (gone, depths) = {
            let mut inner = self.lock();
            let old: Vec<String> = inner
                .items
                .values()
                .filter(|i| i.created_ms < horizon)
                .map(|i| i.id.clone())
                .collect();
            let mut apps = Vec::new();
            for id in &old {
                if let Some(item) = inner.items.remove(id) {
                    if item.decision.is_none() {
                        inner.count_undecided(&item.appid, item.reason, -1);
                    }
                    apps.push(item.appid);
                }
            }
            apps.sort();
            apps.dedup();
            // One pass per app over its order, not one per removed item.
            let Inner { items, order, .. } = &mut *inner;
            for appid in &apps {
                if let Some(ids) = order.get_mut(appid) {
                    ids.retain(|id| items.contains_key(id));
                }
            }
            let depths: Vec<(String, i64)> = apps
                .into_iter()
                .map(|a| {
                    let d = inner.undecided(&a);
                    (a, d)
                })
                .collect();
            (old, depths)
        };
        let count = gone.len();
        if count > 0 {
            self.persist(gone, Vec::new()).await?;
        }
        Ok((count, depths))
    }

    /// Stores the items named (their state now; a Delete for one that is gone) and `extra`,
    /// in one transaction.
    async fn persist(&self, ids: Vec<String>, extra: Vec<Change>) -> Result<(), ReviewError> {
        let _order = self.store_lock.lock().await;
        let mut changes: Vec<Change> = {
            let inner = self.lock();
            ids.into_iter()
                .map(|id| match inner.items.get(&id) {
                    Some(item) => Change::Put(
                        Kind::Review,
                        id,
                        serde_json::to_vec(item).unwrap_or_default(),
                    ),
                    None => Change::Delete(Kind::Review, id),
                })
                .collect()
        };
        changes.extend(extra);
        let durable = Arc::clone(&self.durable);
        tokio::task::spawn_blocking(move || durable.apply(&changes))
            .await
            .map_err(|e| ReviewError::Store(e.to_string()))?
            .map_err(|e| ReviewError::Store(e.to_string()))
    }
}

impl Store for LocalStore {
    fn queue(&self, item: Item) -> Queued {
        let reason = item.reason;
        let mut inner = self.lock();
        let appid = item.appid.clone();
        let held = inner.order.get(&appid).map_or(0, VecDeque::len);
        let mut evicted = None;
        if held >= self.max_items_per_app {
            let any_decided = held as i64 > inner.undecided(&appid);
            let displaceable =
                any_decided || (reason == Reason::Review && inner.undecided_samples(&appid) > 0);
            // Scanned in place (oldest first) only when the counts say it will find a victim: a
            // queue left full of undecided samples drops each new sample at once, rather than
            // looking through every item of the app to find nothing.
            let victim = if !displaceable {
                None
            } else {
                let ids = inner.order.get(&appid).into_iter().flatten();
                let mut decided = None;
                let mut sample = None;
                for id in ids {
                    match inner.items.get(id) {
                        Some(i) if i.decision.is_some() => {
                            decided = Some(id);
                            break;
                        }
                        Some(i) if i.reason == Reason::Sample && sample.is_none() => {
                            sample = Some(id);
                            if !any_decided {
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                match (decided, reason) {
                    (Some(id), _) => Some(id.clone()),
                    (None, Reason::Review) => sample.cloned(),
                    (None, Reason::Sample) => None,
                }
            };
            match victim {
                Some(id) => evicted = inner.remove(&id).map(|i| i.id),
                None => return Queued::Full,
            }
        }
        inner.insert(item);
        let depth = inner.undecided(&appid);
        Queued::Yes {
            evicted,
            depth: Some(depth),
        }
    }

    fn store<'a>(&'a self, ids: Vec<String>) -> BoxFuture<'a, Result<(), ReviewError>> {
        Box::pin(self.persist(ids, Vec::new()))
    }

    fn get<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<Item>, ReviewError>> {
        let found = self.lock().items.get(id).cloned();
        Box::pin(std::future::ready(Ok(found)))
    }

    fn undecided<'a>(&'a self, appid: &'a str) -> BoxFuture<'a, Result<i64, ReviewError>> {
        let count = self.lock().undecided(appid);
        Box::pin(std::future::ready(Ok(count)))
    }

    fn list<'a>(
        &'a self,
        filter: &'a Filter,
        now_ms: u64,
    ) -> BoxFuture<'a, Result<(Vec<Item>, usize), ReviewError>> {
        Box::pin(std::future::ready(Ok(self.list_here(filter, now_ms))))
    }

    fn claim<'a>(
        &'a self,
        id: &'a str,
        reviewer: &'a str,
        now_ms: u64,
        until: Option<u64>,
    ) -> BoxFuture<'a, Result<Item, ReviewError>> {
        match until {
            Some(until) => Box::pin(self.claim_here(id, reviewer, now_ms, until)),
            None => Box::pin(self.release_here(id, reviewer, now_ms)),
        }
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
        let inner = self.lock();
        let found: Vec<&AuditEntry> = inner
            .audit
            .iter()
            .rev()
            .filter(|e| filter.matches(e))
            .collect();
        let (page, total) = super::page(found, filter.offset, filter.limit);
        let page = page.into_iter().cloned().collect();
        Box::pin(std::future::ready(Ok((page, total))))
    }

    fn sweep<'a>(&'a self, horizon_ms: u64) -> BoxFuture<'a, Result<Swept, ReviewError>> {
        Box::pin(self.sweep_here(horizon_ms))
    }
}
