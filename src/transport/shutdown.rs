//! The one shutdown signal: a `watch` channel that turns `true` once, which every listener and
//! long-lived task selects on.

use std::sync::atomic::AtomicBool;

use tokio::sync::watch;

/// Resolves when `rx` says to shut down, or when its sender is gone.
pub async fn shutdown_requested(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

/// Whether the listeners are draining (`/readyz` answers 503 once they are).
#[derive(Debug, Default)]
pub struct Readiness {
    pub draining: AtomicBool,
}
