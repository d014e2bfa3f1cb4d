//! The one shutdown signal: a `watch` channel that turns `true` once, which every listener and
//! long-lived task selects on.

use tokio::sync::watch;

/// Resolves when `rx` says to shut down, or when its sender is gone.
pub async fn shutdown_requested(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}
