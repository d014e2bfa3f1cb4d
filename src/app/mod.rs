//! The gateway's life: building it from a validated config (the stores, the catalog's stored
//! documents, the tenants, media jobs and the review queue), serving it on two bound listeners,
//! and draining it.
//!
//! [`run`] (or [`build`] then [`serve`]) starts both listeners on already-bound sockets and
//! returns after a graceful shutdown, so tests run the real server on `127.0.0.1:0`.

mod build;
pub mod loading;
pub mod offline;
mod serve;
mod sweeps;

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::catalog::CatalogError;
use crate::clock::{SharedClock, SystemClock};
use crate::config::Config;
use crate::engine::EngineError;
use crate::state::durable::DurableError;

pub use build::{build, stored_table};
pub use serve::serve;

/// The two bound sockets.
#[derive(Debug)]
pub struct Listeners {
    /// The WeChat-compatible API.
    pub api: TcpListener,
    /// `/metrics`, `/healthz`, `/readyz`, `/admin/*` and the console.
    pub admin: TcpListener,
}

/// What a caller may inject.
#[derive(Clone)]
pub struct Options {
    pub clock: SharedClock,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            clock: Arc::new(SystemClock),
        }
    }
}

/// Starting the gateway failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("building the text engine: {0}")]
    Engine(#[from] EngineError),
    #[error("registering metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("{0}")]
    Durable(#[from] DurableError),
    #[error("embedded store holds an invalid {0}")]
    Stored(String),
    #[error("media pipeline: {0}")]
    Media(String),
    #[error("shared state: {0}")]
    Shared(String),
    #[error("catalog: {0}")]
    Catalog(CatalogError),
    #[error("review queue: {0}")]
    Review(String),
    #[error("upstream: {0}")]
    Upstream(String),
}

/// Builds the gateway and serves it; see [`serve`].
pub async fn run(
    config: Config,
    listeners: Listeners,
    options: Options,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), RunError> {
    serve(build(config, options).await?, listeners, shutdown).await;
    Ok(())
}
