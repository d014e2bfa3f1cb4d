//! The one way a stored document changes, whatever its kind: take the writers' lock, note the
//! version held, read the document in force, build the new one off the async workers (parse,
//! merge, validate, compile), store it (conditionally, when it was built on the one in force:
//! a change made meanwhile on another instance is never lost), and only then put it in force,
//! whole. A request sees the old document or the new one, never a mix.

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

/// A change in force: the new document, what the edit returned beside it, and how long the
/// build and the write took (from the start of the blocking task).
#[derive(Debug)]
pub struct Changed<D, R> {
    pub doc: Arc<D>,
    pub extra: R,
    pub built_ms: f64,
    pub stored_ms: f64,
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
    pub async fn change<D, R, E>(
        &self,
        key: &str,
        write: Write,
        edit: E,
    ) -> Result<Changed<D, R>, ChangeError>
    where
        D: Document,
        R: Send + 'static,
        E: FnOnce(Option<Arc<D>>) -> Result<(D, R), ChangeError> + Send + 'static,
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
            let (doc, extra) = edit(current)?;
            let built_ms = started.elapsed().as_secs_f64() * 1e3;
            let json = doc.json();
            match write {
                Write::Replace => catalog.put(D::KIND, &owned, &json),
                Write::Edit => catalog.put_over(D::KIND, &owned, &json, held),
            }?;
            let stored_ms = started.elapsed().as_secs_f64() * 1e3;
            Ok::<_, ChangeError>((doc, extra, built_ms, stored_ms))
        });
        let (doc, extra, built_ms, stored_ms) = task
            .await
            .map_err(|e| ChangeError::Failed(e.to_string()))??;
        let doc = Arc::new(doc);
        D::put_in_force(&self.place, key, Arc::clone(&doc))?;
        Ok(Changed {
            doc,
            extra,
            built_ms,
            stored_ms,
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
