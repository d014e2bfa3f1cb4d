//! State: small backend traits and their implementations.
//!
//! Each trait method is one atomic decision, so a shared backend can do it in one round trip
//! (one script) and the memory backend in one map-entry critical section. The memory backend
//! ([`memory`]) is production code and the default. [`conformance`] holds the one test suite
//! that every backend must pass.
//!
//! Methods return boxed futures so the traits stay object-safe (`Arc<dyn TokenStore>`); the box
//! costs one small allocation per call, which is noise beside a network round trip and cheap
//! beside an HTTP request.

pub mod apps;
pub mod memory;

#[cfg(test)]
pub(crate) mod conformance;

use std::future::Future;
use std::pin::Pin;

use crate::token::Epochs;

pub use apps::{App, AppRegistry};

/// A future a backend returns.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A backend could not answer. Callers answer errcode -1 (system busy) so SDKs back off and retry.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StateError {
    #[error("state backend unavailable: {0}")]
    Unavailable(String),
}

/// Per-app access-token rotation state (see [`crate::token`]). Holds one small record per app
/// that has ever been issued a token: bounded by the number of registered apps.
pub trait TokenStore: Send + Sync + 'static {
    /// The app's rotation state, if any token was issued since this backend started.
    fn epochs<'a>(&'a self, appid: &'a str) -> BoxFuture<'a, Result<Option<Epochs>, StateError>>;

    /// Starts a new epoch at `now_ms`: the current one becomes the previous one.
    fn rotate<'a>(
        &'a self,
        appid: &'a str,
        now_ms: u64,
    ) -> BoxFuture<'a, Result<Epochs, StateError>>;

    /// The current epoch when it is still within `ttl_ms` of its issue time, else a rotation.
    fn current_or_rotate<'a>(
        &'a self,
        appid: &'a str,
        now_ms: u64,
        ttl_ms: u64,
    ) -> BoxFuture<'a, Result<Epochs, StateError>>;
}
