//! The catalog: what the operator configures through the admin API and every instance must see
//! — apps made or replaced there, custom keyword tables, media hash banks — stored as JSON
//! documents by kind and key.
//!
//! Two implementations: the embedded store ([`Durable`]) for one process, and [`RedisCatalog`]
//! for instances sharing Redis. Calls block (they are rare, and their callers already work on the
//! blocking pool). A Redis write is one script that stores the document, bumps its version and
//! publishes `kind<TAB>key<TAB>version` on the change channel; every instance's
//! [`watch`] task applies what it hears, and after any gap in its subscription (a restart of
//! Redis, a network fault) compares every version with what it holds, so no change is missed for
//! long.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use dashmap::DashMap;
use redis::Script;

use super::durable::{Durable, DurableError, Kind};

/// The catalog could not be read or written.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct CatalogError(pub String);

impl From<DurableError> for CatalogError {
    fn from(e: DurableError) -> Self {
        CatalogError(e.to_string())
    }
}

/// A conditional write was not made: the document changed since the version the writer held.
pub const CHANGED_MEANWHILE: &str = "changed on another instance meanwhile";

/// What [`Catalog::scan`] calls with each document.
pub type Visit<'a> = dyn FnMut(&str, &[u8]) -> Result<(), CatalogError> + 'a;

/// The kinds a catalog holds.
pub const KINDS: [Kind; 4] = [Kind::Apps, Kind::Keywords, Kind::Banks, Kind::RiskLists];

/// A store of documents by kind and key, shared by every instance of a deployment.
pub trait Catalog: Send + Sync + 'static {
    /// The document under `key`, if any.
    fn get(&self, kind: Kind, key: &str) -> Result<Option<Vec<u8>>, CatalogError>;

    /// Stores `value` under `key`; every instance sees it. Returns once the store has it.
    fn put(&self, kind: Kind, key: &str, value: &[u8]) -> Result<(), CatalogError>;

    /// The version of the document this instance holds in force (0: none), for
    /// [`Catalog::put_over`]. One process serialises its own writes, so the embedded catalog
    /// needs none.
    fn held(&self, _kind: Kind, _key: &str) -> u64 {
        0
    }

    /// Stores `value` if the stored document is still the version `held` (read-modify-write
    /// changes made on two instances at once must not lose one another); otherwise refuses with
    /// [`CHANGED_MEANWHILE`]. The embedded catalog writes unconditionally.
    fn put_over(
        &self,
        kind: Kind,
        key: &str,
        value: &[u8],
        _held: u64,
    ) -> Result<(), CatalogError> {
        self.put(kind, key, value)
    }

    /// Calls `f` with every document of `kind`, one at a time, stopping at `f`'s first error.
    fn scan(&self, kind: Kind, f: &mut Visit<'_>) -> Result<(), CatalogError>;
}

impl Catalog for Durable {
    fn get(&self, kind: Kind, key: &str) -> Result<Option<Vec<u8>>, CatalogError> {
        Ok(Durable::get(self, kind, key)?)
    }

    fn put(&self, kind: Kind, key: &str, value: &[u8]) -> Result<(), CatalogError> {
        Ok(Durable::put(self, kind, key, value)?)
    }

    fn scan(&self, kind: Kind, f: &mut Visit<'_>) -> Result<(), CatalogError> {
        Durable::scan(self, kind, f)
    }
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Apps => "apps",
        Kind::Keywords => "keywords",
        Kind::Banks => "banks",
        Kind::RiskLists => "risk_lists",
        Kind::OpenJobs => "open_jobs",
        Kind::Jobs => "jobs",
        Kind::Review => "review",
        Kind::ReviewAudit => "review_audit",
    }
}

fn kind_named(name: &str) -> Option<Kind> {
    KINDS.into_iter().find(|k| kind_name(*k) == name)
}

/// KEYS[1] the documents hash, KEYS[2] the versions hash; ARGV[1] key, ARGV[2] document,
/// ARGV[3] channel, ARGV[4] kind name, ARGV[5] the version the writer holds, or -1 to write
/// whatever is stored. Returns the new version, or -1 when the stored version is not the one
/// held (nothing written).
///
/// A version is Redis's clock in microseconds (or one more than the last version, if that is
/// later): versions keep growing even if Redis loses its data and the counting would start
/// again, so an instance never mistakes a new change for one it already holds.
const PUT: &str = r"
local held = tonumber(ARGV[5])
local last = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
if held >= 0 and last ~= held then
  return -1
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local t = redis.call('TIME')
local v = tonumber(t[1]) * 1000000 + tonumber(t[2])
if v <= last then v = last + 1 end
local text = string.format('%.0f', v)
redis.call('HSET', KEYS[2], ARGV[1], text)
redis.call('PUBLISH', ARGV[3], ARGV[4] .. '\t' .. ARGV[1] .. '\t' .. text)
return v
";

/// How long a catalog call may wait on Redis.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// The catalog in Redis: per kind a hash of documents (`{prefix}:cat:{kind}`) and a hash of
/// their versions (`{prefix}:catver:{kind}`).
pub struct RedisCatalog {
    client: redis::Client,
    prefix: String,
    channel: String,
    /// One blocking connection, made on first use and again after any error.
    conn: Mutex<Option<redis::Connection>>,
    put: Script,
    /// The version of each document this instance holds in force.
    known: DashMap<(Kind, String), u64>,
}

impl std::fmt::Debug for RedisCatalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCatalog")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

fn redis_err(e: redis::RedisError) -> CatalogError {
    CatalogError(format!("redis: {e}"))
}

impl RedisCatalog {
    pub fn new(client: redis::Client, prefix: &str, channel: String) -> Self {
        RedisCatalog {
            client,
            prefix: prefix.to_owned(),
            channel,
            conn: Mutex::new(None),
            put: Script::new(PUT),
            known: DashMap::new(),
        }
    }

    fn docs_key(&self, kind: Kind) -> String {
        format!("{}:cat:{}", self.prefix, kind_name(kind))
    }

    fn versions_key(&self, kind: Kind) -> String {
        format!("{}:catver:{}", self.prefix, kind_name(kind))
    }

    /// Runs `f` on the connection, connecting first if needed. A connection that broke since
    /// its last use (Redis restarted, say) is replaced and `f` tried once more on the new one:
    /// every catalog call may run twice (a write at worst bumps its version twice). Any other
    /// error drops the connection so the next call starts afresh.
    fn with_conn<T>(
        &self,
        mut f: impl FnMut(&mut redis::Connection) -> redis::RedisResult<T>,
    ) -> Result<T, CatalogError> {
        let mut held = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(conn) = held.as_mut() {
            match f(conn) {
                Ok(v) => return Ok(v),
                Err(e) if e.is_io_error() || e.is_connection_dropped() => *held = None,
                Err(e) => {
                    *held = None;
                    return Err(redis_err(e));
                }
            }
        }
        let mut conn = self
            .client
            .get_connection_with_timeout(IO_TIMEOUT)
            .map_err(redis_err)?;
        conn.set_read_timeout(Some(IO_TIMEOUT)).map_err(redis_err)?;
        conn.set_write_timeout(Some(IO_TIMEOUT))
            .map_err(redis_err)?;
        let result = f(&mut conn).map_err(redis_err);
        if result.is_ok() {
            *held = Some(conn);
        }
        result
    }

    /// Every document's version now.
    pub fn versions(&self, kind: Kind) -> Result<Vec<(String, u64)>, CatalogError> {
        self.with_conn(|c| redis::cmd("HGETALL").arg(self.versions_key(kind)).query(c))
    }

    /// The version this instance holds in force.
    pub fn known(&self, kind: Kind, key: &str) -> u64 {
        self.known.get(&(kind, key.to_owned())).map_or(0, |v| *v)
    }

    /// Records that this instance holds `version` of the document in force (a later one is
    /// never replaced by an earlier one).
    pub fn hold(&self, kind: Kind, key: &str, version: u64) {
        let mut entry = self.known.entry((kind, key.to_owned())).or_insert(0);
        *entry = (*entry).max(version);
    }

    /// [`PUT`]: unconditionally with `held` -1, else only over that version. The writer puts
    /// the change in force itself right after, so it holds the new version at once.
    fn write(&self, kind: Kind, key: &str, value: &[u8], held: i64) -> Result<(), CatalogError> {
        let version: i64 = self.with_conn(|c| {
            self.put
                .key(self.docs_key(kind))
                .key(self.versions_key(kind))
                .arg(key)
                .arg(value)
                .arg(&self.channel)
                .arg(kind_name(kind))
                .arg(held)
                .invoke(c)
        })?;
        let version = u64::try_from(version).map_err(|_| CatalogError(CHANGED_MEANWHILE.into()))?;
        self.hold(kind, key, version);
        Ok(())
    }

    /// The document and its version, read together.
    pub fn get_versioned(
        &self,
        kind: Kind,
        key: &str,
    ) -> Result<Option<(Vec<u8>, u64)>, CatalogError> {
        let (doc, version): (Option<Vec<u8>>, Option<u64>) = self.with_conn(|c| {
            redis::pipe()
                .atomic()
                .cmd("HGET")
                .arg(self.docs_key(kind))
                .arg(key)
                .cmd("HGET")
                .arg(self.versions_key(kind))
                .arg(key)
                .query(c)
        })?;
        Ok(doc.map(|d| (d, version.unwrap_or(0))))
    }
}

impl Catalog for RedisCatalog {
    fn get(&self, kind: Kind, key: &str) -> Result<Option<Vec<u8>>, CatalogError> {
        self.with_conn(|c| {
            redis::cmd("HGET")
                .arg(self.docs_key(kind))
                .arg(key)
                .query(c)
        })
    }

    fn put(&self, kind: Kind, key: &str, value: &[u8]) -> Result<(), CatalogError> {
        self.write(kind, key, value, -1)
    }

    fn held(&self, kind: Kind, key: &str) -> u64 {
        self.known(kind, key)
    }

    fn put_over(&self, kind: Kind, key: &str, value: &[u8], held: u64) -> Result<(), CatalogError> {
        self.write(kind, key, value, i64::try_from(held).unwrap_or(i64::MAX))
    }

    fn scan(&self, kind: Kind, f: &mut Visit<'_>) -> Result<(), CatalogError> {
        // HSCAN pages through the hash, so 10,000 tables are never all in memory at once.
        let mut cursor: u64 = 0;
        loop {
            let (next, page): (u64, Vec<(String, Vec<u8>)>) = self.with_conn(|c| {
                redis::cmd("HSCAN")
                    .arg(self.docs_key(kind))
                    .arg(cursor)
                    .arg("COUNT")
                    .arg(64)
                    .query(c)
            })?;
            for (key, doc) in &page {
                f(key, doc)?;
            }
            if next == 0 {
                return Ok(());
            }
            cursor = next;
        }
    }
}

/// A change heard on the channel: the kind, the key and the version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heard {
    pub kind: Kind,
    pub key: String,
    pub version: u64,
}

/// What the change channel carries: a catalog document's new version, or a token rotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Changed(Heard),
    Rotated { appid: String },
}

/// Parses one message of the change channel.
pub fn parse_message(text: &str) -> Option<Message> {
    let mut parts = text.split('\t');
    let first = parts.next()?;
    if first == "tok" {
        return Some(Message::Rotated {
            appid: parts.next()?.to_owned(),
        });
    }
    let kind = kind_named(first)?;
    let key = parts.next()?.to_owned();
    let version = parts.next()?.parse().ok()?;
    Some(Message::Changed(Heard { kind, key, version }))
}

/// What the watcher does with a change: put the document in force on this instance.
pub trait Apply: Send + Sync + 'static {
    /// Puts `doc` (the document under `key` in `kind`) in force. An error is logged and the
    /// version not recorded, so the next resynchronisation tries again.
    fn apply(&self, kind: Kind, key: &str, doc: &[u8]) -> Result<(), String>;

    /// Another instance rotated the app's token epochs.
    fn rotated(&self, appid: &str);
}

/// Listens on the change channel until `shutdown`, applying every change newer than what this
/// instance holds; on (re)subscribing, first compares every version. Reconnects with backoff.
pub async fn watch(
    catalog: Arc<RedisCatalog>,
    apply: Arc<dyn Apply>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    use futures_util::StreamExt;

    let mut backoff = Duration::from_millis(100);
    loop {
        let subscribed = async {
            let mut pubsub = catalog.client.get_async_pubsub().await?;
            pubsub.subscribe(&catalog.channel).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        let pubsub = tokio::select! {
            () = crate::transport::shutdown_requested(&mut shutdown) => return,
            r = subscribed => r,
        };
        let mut pubsub = match pubsub {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "change subscription failed; retrying");
                tokio::select! {
                    () = crate::transport::shutdown_requested(&mut shutdown) => return,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        backoff = Duration::from_millis(100);
        // Anything changed while not subscribed is found by its version.
        resync(&catalog, &apply).await;
        let mut messages = pubsub.on_message();
        loop {
            let message = tokio::select! {
                () = crate::transport::shutdown_requested(&mut shutdown) => return,
                m = messages.next() => m,
            };
            let Some(message) = message else {
                tracing::warn!("change subscription lost; resubscribing");
                break;
            };
            let Ok(text) = message.get_payload::<String>() else {
                continue;
            };
            match parse_message(&text) {
                Some(Message::Rotated { appid }) => apply.rotated(&appid),
                Some(Message::Changed(heard)) => {
                    if heard.version > catalog.known(heard.kind, &heard.key) {
                        fetch_and_apply(&catalog, &apply, heard.kind, &heard.key).await;
                    }
                }
                None => tracing::warn!(message = text, "unknown change message ignored"),
            }
        }
    }
}

/// Applies every document whose version differs from the one held. Apps first, so a table's
/// app exists before the table.
pub async fn resync(catalog: &Arc<RedisCatalog>, apply: &Arc<dyn Apply>) {
    for kind in KINDS {
        let c = Arc::clone(catalog);
        let versions = tokio::task::spawn_blocking(move || c.versions(kind)).await;
        let versions = match versions {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "catalog resynchronisation failed");
                return;
            }
            Err(e) => {
                tracing::error!(error = %e, "catalog resynchronisation task failed");
                return;
            }
        };
        for (key, version) in versions {
            if version > catalog.known(kind, &key) {
                fetch_and_apply(catalog, apply, kind, &key).await;
            }
        }
    }
}

/// Reads the document and puts it in force (on the blocking pool: building a table or a bank is
/// CPU work).
async fn fetch_and_apply(
    catalog: &Arc<RedisCatalog>,
    apply: &Arc<dyn Apply>,
    kind: Kind,
    key: &str,
) {
    let (c, a, k) = (Arc::clone(catalog), Arc::clone(apply), key.to_owned());
    let done = tokio::task::spawn_blocking(move || -> Result<(), String> {
        let Some((doc, version)) = c.get_versioned(kind, &k).map_err(|e| e.to_string())? else {
            return Ok(());
        };
        if version <= c.known(kind, &k) {
            return Ok(());
        }
        a.apply(kind, &k, &doc)?;
        c.hold(kind, &k, version);
        Ok(())
    })
    .await;
    match done {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(key, ?kind, error = %e, "shared change not applied"),
        Err(e) => tracing::error!(key, ?kind, error = %e, "shared change task failed"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests fail loudly on unexpected errors

    use super::*;

    /// What every catalog does: absent until put, the latest put wins, every document scanned
    /// once (300 documents: more than one page of Redis's HSCAN).
    fn conformance(c: &dyn Catalog) {
        assert_eq!(c.get(Kind::Keywords, "wx1").unwrap(), None);
        c.put(Kind::Keywords, "wx1", b"[1]").unwrap();
        c.put(Kind::Keywords, "wx1", b"[2]").unwrap();
        c.put(Kind::Banks, "wx1", b"[3]").unwrap();
        assert_eq!(
            c.get(Kind::Keywords, "wx1").unwrap().as_deref(),
            Some(&b"[2]"[..])
        );
        for i in 0..300 {
            c.put(Kind::Apps, &format!("wx{i:016}"), format!("{i}").as_bytes())
                .unwrap();
        }
        let mut seen = std::collections::HashMap::new();
        c.scan(Kind::Apps, &mut |key, doc| {
            assert!(
                seen.insert(key.to_owned(), doc.to_vec()).is_none(),
                "{key} twice"
            );
            Ok(())
        })
        .unwrap();
        assert_eq!(seen.len(), 300);
        assert_eq!(seen["wx0000000000000042"], b"42");
        // The first error stops the scan and is returned.
        let mut calls = 0;
        let e = c
            .scan(Kind::Apps, &mut |_, _| {
                calls += 1;
                Err(CatalogError("stop".into()))
            })
            .unwrap_err();
        assert_eq!((e.0.as_str(), calls), ("stop", 1));
    }

    #[test]
    fn the_embedded_catalog_passes_the_conformance_suite() {
        let dir = std::env::temp_dir().join(format!("modgate-catalog-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        conformance(&Durable::open(&dir, 1 << 20).unwrap());
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn redis_catalog(prefix: &str) -> RedisCatalog {
        let client = redis::Client::open("redis://127.0.0.1:6379/0").unwrap();
        RedisCatalog::new(client, prefix, format!("{prefix}:changes"))
    }

    fn fresh_prefix(name: &str) -> String {
        crate::state::test_prefix(name)
    }

    /// Two instances changing one document from what each holds: the second write finds the
    /// document changed and is refused; after taking the change in, it goes through.
    #[test]
    fn a_conditional_write_does_not_lose_another_instances_change() {
        let prefix = fresh_prefix("cas");
        let (a, b) = (redis_catalog(&prefix), redis_catalog(&prefix));
        a.put_over(Kind::Keywords, "wx1", b"[1]", a.held(Kind::Keywords, "wx1"))
            .unwrap();
        let e = b
            .put_over(Kind::Keywords, "wx1", b"[2]", b.held(Kind::Keywords, "wx1"))
            .unwrap_err();
        assert_eq!(e.0, CHANGED_MEANWHILE);
        assert_eq!(b.get(Kind::Keywords, "wx1").unwrap().unwrap(), b"[1]");
        // b takes a's change in (as its watcher would), then writes over it.
        let (_, version) = b.get_versioned(Kind::Keywords, "wx1").unwrap().unwrap();
        b.hold(Kind::Keywords, "wx1", version);
        b.put_over(
            Kind::Keywords,
            "wx1",
            b"[1,2]",
            b.held(Kind::Keywords, "wx1"),
        )
        .unwrap();
        assert_eq!(a.get(Kind::Keywords, "wx1").unwrap().unwrap(), b"[1,2]");
        // The embedded catalog writes unconditionally (one process serialises its writes).
        let dir = std::env::temp_dir().join(format!("modgate-cas-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let d = Durable::open(&dir, 1 << 20).unwrap();
        Catalog::put_over(&d, Kind::Keywords, "wx1", b"[3]", 42).unwrap();
        assert_eq!(
            Catalog::get(&d, Kind::Keywords, "wx1").unwrap().unwrap(),
            b"[3]"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_redis_catalog_passes_the_conformance_suite() {
        conformance(&redis_catalog(&fresh_prefix("cat")));
    }

    /// Records what the watcher applies; refuses documents reading `bad`.
    #[derive(Default)]
    struct Recorder {
        applied: Mutex<Vec<(Kind, String, Vec<u8>)>>,
        rotated: Mutex<Vec<String>>,
    }

    impl Apply for Recorder {
        fn apply(&self, kind: Kind, key: &str, doc: &[u8]) -> Result<(), String> {
            if doc == b"bad" {
                return Err("bad document".into());
            }
            self.applied
                .lock()
                .unwrap()
                .push((kind, key.to_owned(), doc.to_vec()));
            Ok(())
        }

        fn rotated(&self, appid: &str) {
            self.rotated.lock().unwrap().push(appid.to_owned());
        }
    }

    async fn until(what: &str, mut done: impl FnMut() -> bool) {
        for _ in 0..200 {
            if done() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("not within 2 s: {what}");
    }

    /// Another instance's watcher applies every change: those made before it subscribed (by
    /// version), those made after (by message); one it could not apply is not held, so the next
    /// resynchronisation tries it again; the writer holds its own versions.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn changes_reach_every_instance() {
        let prefix = fresh_prefix("watch");
        let writer = Arc::new(redis_catalog(&prefix));
        let reader = Arc::new(redis_catalog(&prefix));
        let w = Arc::clone(&writer);
        tokio::task::spawn_blocking(move || {
            w.put(Kind::Apps, "wx1", b"app").unwrap();
            w.put(Kind::Keywords, "wx1", b"bad").unwrap();
        })
        .await
        .unwrap();
        let recorder = Arc::new(Recorder::default());
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let watcher = tokio::spawn(watch(
            Arc::clone(&reader),
            Arc::clone(&recorder) as Arc<dyn Apply>,
            stopped,
        ));
        until("the app made before subscribing", || {
            recorder.applied.lock().unwrap().len() == 1
        })
        .await;
        assert_eq!(
            reader.known(Kind::Keywords, "wx1"),
            0,
            "a failed apply is not held"
        );

        // After subscribing: by message, in order.
        let w = Arc::clone(&writer);
        tokio::task::spawn_blocking(move || {
            w.put(Kind::Keywords, "wx1", b"[1]").unwrap();
            w.put(Kind::Banks, "global", b"[2]").unwrap();
        })
        .await
        .unwrap();
        until("two changes by message", || {
            recorder.applied.lock().unwrap().len() == 3
        })
        .await;
        let applied = recorder.applied.lock().unwrap().clone();
        assert_eq!(applied[1], (Kind::Keywords, "wx1".into(), b"[1]".to_vec()));
        assert_eq!(applied[2], (Kind::Banks, "global".into(), b"[2]".to_vec()));
        // Both hold the version now stored; the writer held its own as it wrote it, so its own
        // watcher would skip it.
        let stored: Vec<(String, u64)> = writer.versions(Kind::Keywords).unwrap();
        assert_eq!(stored.len(), 1);
        assert!(
            stored[0].1 > 1_700_000_000_000_000,
            "a clock version: {stored:?}"
        );
        assert_eq!(reader.known(Kind::Keywords, "wx1"), stored[0].1);
        assert_eq!(writer.known(Kind::Keywords, "wx1"), stored[0].1);

        // A token rotation message.
        let mut conn = writer
            .client
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let _: i64 = redis::cmd("PUBLISH")
            .arg(&writer.channel)
            .arg("tok\twx1")
            .query_async(&mut conn)
            .await
            .unwrap();
        until("the rotation", || {
            recorder.rotated.lock().unwrap().len() == 1
        })
        .await;
        stop.send(true).unwrap();
        watcher.await.unwrap();
    }

    #[test]
    fn messages_parse() {
        assert_eq!(
            parse_message("keywords\twx1\t7"),
            Some(Message::Changed(Heard {
                kind: Kind::Keywords,
                key: "wx1".into(),
                version: 7
            }))
        );
        assert_eq!(
            parse_message("tok\twx1"),
            Some(Message::Rotated {
                appid: "wx1".into()
            })
        );
        assert_eq!(parse_message("jobs\twx1\t7"), None);
        assert_eq!(parse_message("keywords\twx1"), None);
        assert_eq!(parse_message("banks\tglobal\tx"), None);
    }
}
