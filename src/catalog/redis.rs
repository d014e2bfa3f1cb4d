//! The catalog in Redis, shared by every instance: one script stores a document, bumps its
//! version and publishes the change ([`super::watch`] hears it on the other instances).

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use dashmap::DashMap;
use redis::Script;

use super::{Catalog, CatalogError, Visit, kind_name};
use crate::state::durable::Kind;

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
    pub(super) client: redis::Client,
    prefix: String,
    pub(super) channel: String,
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
    CatalogError::Store(format!("redis: {e}"))
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
        let version = u64::try_from(version).map_err(|_| CatalogError::ChangedMeanwhile)?;
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

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)] // tests fail loudly on unexpected errors

    use super::*;
    use crate::catalog::tests::conformance;
    use crate::state::durable::Durable;

    pub(crate) fn redis_catalog(prefix: &str) -> RedisCatalog {
        let client = redis::Client::open("redis://127.0.0.1:6379/0").unwrap();
        RedisCatalog::new(client, prefix, format!("{prefix}:changes"))
    }

    pub(crate) fn fresh_prefix(name: &str) -> String {
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
        assert_eq!(e, CatalogError::ChangedMeanwhile);
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
}
