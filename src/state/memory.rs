//! The in-process backend: the default, and production code.
//!
//! Bounds: the token store holds one 24-byte record (plus the appid key) per app that has been
//! issued a token; apps are registered by the operator, so the map cannot grow from client input.

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;

use super::{BoxFuture, StateError, TokenStore};
use crate::token::Epochs;

/// Token rotation state in a concurrent map. Each decision runs under the map's entry lock, so
/// concurrent rotations of one app serialise and never lose an epoch.
#[derive(Debug, Default)]
pub struct MemoryTokenStore {
    epochs: DashMap<String, Epochs>,
}

impl MemoryTokenStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn decide(&self, appid: &str, decide: impl FnOnce(Option<Epochs>) -> Epochs) -> Epochs {
        match self.epochs.entry(appid.to_owned()) {
            Entry::Occupied(mut o) => {
                let next = decide(Some(*o.get()));
                *o.get_mut() = next;
                next
            }
            Entry::Vacant(v) => *v.insert(decide(None)),
        }
    }
}

impl TokenStore for MemoryTokenStore {
    fn epochs<'a>(&'a self, appid: &'a str) -> BoxFuture<'a, Result<Option<Epochs>, StateError>> {
        let found = self.epochs.get(appid).map(|e| *e.value());
        Box::pin(std::future::ready(Ok(found)))
    }

    fn rotate<'a>(
        &'a self,
        appid: &'a str,
        now_ms: u64,
    ) -> BoxFuture<'a, Result<Epochs, StateError>> {
        let e = self.decide(appid, |cur| Epochs::rotated(cur, now_ms));
        Box::pin(std::future::ready(Ok(e)))
    }

    fn current_or_rotate<'a>(
        &'a self,
        appid: &'a str,
        now_ms: u64,
        ttl_ms: u64,
    ) -> BoxFuture<'a, Result<Epochs, StateError>> {
        let e = self.decide(appid, |cur| match cur {
            Some(e) if now_ms < e.current.saturating_add(ttl_ms) => e,
            other => Epochs::rotated(other, now_ms),
        });
        Box::pin(std::future::ready(Ok(e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_token_store_passes_the_conformance_suite() {
        crate::state::conformance::token_store(&MemoryTokenStore::new()).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn memory_token_store_is_exact_under_concurrency() {
        crate::state::conformance::token_store_concurrent(std::sync::Arc::new(
            MemoryTokenStore::new(),
        ))
        .await;
    }
}
