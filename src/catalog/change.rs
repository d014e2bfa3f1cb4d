//! The one way a stored document changes, whatever its kind: take the writers' lock, note the
//! version held, read the document in force, build the new one off the async workers (parse,
//! merge, validate, compile), store it (conditionally, when it was built on the one in force:
//! a change made meanwhile on another instance is never lost), and only then put it in force,
//! whole. A request sees the old document or the new one, never a mix.
//!
//! A document whose stored form is known once it is validated (a keyword table: its entries)
//! is written while it compiles, so the change takes the longer of the two, not their sum.

use std::sync::Arc;
use std::time::Instant;

use super::documents::{Document, InForce};
use super::{Catalog, CatalogError, ChangeError};
use crate::config::{AppConfig, RawApp};
use crate::state::durable::Kind;
use crate::tenants::App;

/// How a change is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    /// The new document replaces whatever is stored: it does not depend on it.
    Replace,
    /// The new document was built on the one in force: stored only if that is still the one
    /// stored.
    Edit,
}

/// A new document from an edit: built, or validated with its stored form known, to be built
/// (the slow part) while that form is written.
pub enum Draft<D> {
    Built(D),
    Valid {
        json: Vec<u8>,
        build: Box<dyn FnOnce() -> Result<D, ChangeError> + Send>,
    },
}

impl<D> From<D> for Draft<D> {
    fn from(doc: D) -> Self {
        Draft::Built(doc)
    }
}

/// A change in force: the new document, what the edit returned beside it, how long the edit
/// waited for the blocking pool, when the document was built (counted from before that wait)
/// and how long the store write took.
#[derive(Debug)]
pub struct Changed<D, R> {
    pub doc: Arc<D>,
    pub extra: R,
    pub queued_ms: f64,
    pub built_ms: f64,
    pub write_ms: f64,
}

/// The catalog, where its documents are in force, and the lock that serialises changes.
pub struct Documents {
    catalog: Arc<dyn Catalog>,
    place: InForce,
    /// Serialises changes, so read-modify-write changes never interleave on this instance.
    writes: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Documents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Documents").finish_non_exhaustive()
    }
}

impl Documents {
    pub fn new(catalog: Arc<dyn Catalog>, place: InForce) -> Self {
        Documents {
            catalog,
            place,
            writes: tokio::sync::Mutex::new(()),
        }
    }

    pub fn catalog(&self) -> &Arc<dyn Catalog> {
        &self.catalog
    }

    /// Where documents are in force.
    pub fn place(&self) -> &InForce {
        &self.place
    }

    /// Changes the document of kind `D` under `key`: `edit` builds the new document from the
    /// one in force (on the blocking pool), which is then stored and put in force.
    pub async fn change<D, R, T, E>(
        &self,
        key: &str,
        write: Write,
        edit: E,
    ) -> Result<Changed<D, R>, ChangeError>
    where
        D: Document,
        R: Send + 'static,
        T: Into<Draft<D>>,
        E: FnOnce(Option<Arc<D>>) -> Result<(T, R), ChangeError> + Send + 'static,
    {
        let _writes = self.writes.lock().await;
        // The version held is read before the document in force: a change arriving in between
        // makes the conditional write refuse (a false alarm at worst), never lose it.
        let held = self.catalog.held(D::KIND, key);
        let current = D::in_force(&self.place, key)?;
        let catalog = Arc::clone(&self.catalog);
        let owned = key.to_owned();
        let started = Instant::now();
        let task = tokio::task::spawn_blocking(move || {
            let since = |at: Instant| at.elapsed().as_secs_f64() * 1e3;
            let queued_ms = since(started);
            let store = |json: &[u8]| {
                let at = Instant::now();
                match write {
                    Write::Replace => catalog.put(D::KIND, &owned, json),
                    Write::Edit => catalog.put_over(D::KIND, &owned, json, held),
                }?;
                Ok::<_, ChangeError>(since(at))
            };
            let (draft, extra) = edit(current.clone())?;
            let (doc, built_ms, write_ms) = match draft.into() {
                Draft::Built(doc) => {
                    let built_ms = since(started);
                    let write_ms = store(&doc.json())?;
                    (doc, built_ms, write_ms)
                }
                Draft::Valid { json, build } => {
                    // The build goes to a thread of its own and this one writes at once, so the
                    // fsync is under way while the compile runs, even on one core.
                    let (stored, built) = std::thread::scope(|s| {
                        let builder = s.spawn(move || build().map(|doc| (doc, since(started))));
                        let stored = store(&json);
                        let built = builder.join().unwrap_or_else(|_| {
                            Err(ChangeError::Failed("the build panicked".into()))
                        });
                        (stored, built)
                    });
                    let write_ms = stored?;
                    match built {
                        Ok((doc, built_ms)) => (doc, built_ms, write_ms),
                        Err(e) => {
                            // Validated input compiles; should it not, the store goes back to
                            // the document in force, so that a restart loads what ran.
                            tracing::error!(key = owned, kind = ?D::KIND, error = %e, "a validated document failed to build after it was stored");
                            if let Some(current) = &current {
                                catalog.put(D::KIND, &owned, &current.json())?;
                            }
                            return Err(e);
                        }
                    }
                }
            };
            Ok::<_, ChangeError>((doc, extra, queued_ms, built_ms, write_ms))
        });
        let (doc, extra, queued_ms, built_ms, write_ms) = task
            .await
            .map_err(|e| ChangeError::Failed(e.to_string()))??;
        let doc = Arc::new(doc);
        D::put_in_force(&self.place, key, Arc::clone(&doc))?;
        Ok(Changed {
            doc,
            extra,
            queued_ms,
            built_ms,
            write_ms,
        })
    }

    /// Stores an app (`raw`, validated as `config`) and puts it in force; a new app takes back
    /// the documents stored for its appid earlier (the app since dropped from the config file).
    /// Returns the app and whether it existed.
    pub async fn put_app(
        &self,
        raw: &RawApp,
        config: AppConfig,
    ) -> Result<(Arc<App>, bool), ChangeError> {
        let _writes = self.writes.lock().await;
        let appid = config.appid.clone();
        let existed = self.place.apps.get(&appid).is_some();
        let json = serde_json::to_vec(raw).unwrap_or_default();
        let catalog = Arc::clone(&self.catalog);
        let key = appid.clone();
        tokio::task::spawn_blocking(move || catalog.put(Kind::Apps, &key, &json))
            .await
            .map_err(|e| ChangeError::Store(CatalogError::Store(e.to_string())))??;
        let app = self.place.new_app(config);
        if !existed {
            app.slot.table.store(self.stored(&appid).await);
            app.slot.bank.store(self.stored(&appid).await);
            app.slot.risk_lists.store(self.stored(&appid).await);
        }
        self.place.apps.put(app);
        let app = self
            .place
            .apps
            .get(&appid)
            .ok_or(ChangeError::NotFound("no such app"))?;
        Ok((app, existed))
    }

    /// The document of kind `D` stored under `key`, built on the blocking pool; none when there
    /// is none or it cannot be read back (logged: what is stored was validated first).
    pub async fn stored<D: Document>(&self, key: &str) -> Option<Arc<D>> {
        let catalog = Arc::clone(&self.catalog);
        let owned = key.to_owned();
        let loaded = tokio::task::spawn_blocking(move || -> Result<Option<D>, String> {
            match catalog.get(D::KIND, &owned).map_err(|e| e.to_string())? {
                Some(json) => D::parse(&json).map(Some),
                None => Ok(None),
            }
        })
        .await;
        match loaded {
            Ok(Ok(found)) => found.map(Arc::new),
            Ok(Err(e)) => {
                tracing::error!(key, kind = ?D::KIND, error = %e, "stored document could not be loaded");
                None
            }
            Err(e) => {
                tracing::error!(key, kind = ?D::KIND, error = %e, "loading task failed");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::edits::keywords;
    use crate::engine::table::{CustomTable, KeywordEntry};
    use crate::state::durable::Durable;
    use crate::tenants::AppRegistry;

    const APPID: &str = "wx00000000000000aa";

    fn documents(dir: &std::path::Path) -> (Documents, Arc<Durable>) {
        let config = crate::config::Config::default();
        let durable = Arc::new(Durable::open(dir, 1 << 20).unwrap());
        let mut media = config.media.clone();
        // No models: nothing here analyses media.
        media.models_dir = None;
        let jobs = crate::jobs::MediaJobs::open(
            media,
            Arc::clone(&durable),
            None,
            crate::metrics::Metrics::new().unwrap().media,
        )
        .unwrap();
        let place = InForce {
            apps: Arc::new(AppRegistry::default()),
            jobs: Arc::new(jobs),
            tokens: config.tokens.clone(),
            limits: config.limits.clone(),
            clock: Arc::new(crate::clock::SystemClock),
        };
        let raw: RawApp = serde_json::from_value(serde_json::json!({
            "appid": APPID,
            "secret": "0123456789abcdef0123456789abcdef",
        }))
        .unwrap();
        place.apps.put(place.new_app(raw.validate().unwrap()));
        let catalog: Arc<dyn Catalog> = Arc::clone(&durable) as Arc<dyn Catalog>;
        (Documents::new(catalog, place), durable)
    }

    fn entry(keyword: &str) -> KeywordEntry {
        KeywordEntry {
            keyword: keyword.into(),
            label: 20006,
            level: 90,
            suggest: "risky".into(),
        }
    }

    fn stored(durable: &Durable) -> Vec<KeywordEntry> {
        let json = durable.get(Kind::Keywords, APPID).unwrap().unwrap();
        serde_json::from_slice(&json).unwrap()
    }

    #[tokio::test]
    async fn a_table_is_stored_while_it_compiles_and_a_failed_build_puts_the_store_back() {
        let dir = std::env::temp_dir().join(format!("modgate-change-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (docs, durable) = documents(&dir);
        let first = vec![entry("赌博"), entry("代开发票")];
        let changed = docs
            .change(APPID, Write::Replace, {
                let first = first.clone();
                move |_: Option<Arc<CustomTable>>| Ok((keywords(first)?, ()))
            })
            .await
            .unwrap();
        assert_eq!(changed.doc.entries(), first);
        assert_eq!(stored(&durable), first);
        let in_force = docs.place().app(APPID).unwrap().slot.table().unwrap();
        assert_eq!(in_force.entries(), first);

        // Stored, then the build fails: the error is answered, the table in force stays, and
        // the store holds it again.
        let failed = docs
            .change(APPID, Write::Replace, |_: Option<Arc<CustomTable>>| {
                let draft = Draft::Valid {
                    json: br#"[{"keyword":"x","label":20006,"level":1,"suggest":"risky"}]"#
                        .to_vec(),
                    build: Box::new(|| Err(ChangeError::Failed("no automaton".into()))),
                };
                Ok((draft, ()))
            })
            .await;
        assert!(matches!(failed, Err(ChangeError::Failed(ref m)) if m == "no automaton"));
        assert_eq!(stored(&durable), first);
        let in_force = docs.place().app(APPID).unwrap().slot.table().unwrap();
        assert_eq!(in_force.entries(), first);
        drop(docs);
        drop(durable);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
