//! The accept loop shared by both listeners: HTTP/1.1 on hyper with keep-alive, a header read
//! timeout, a connection limit, and graceful draining.
//!
//! The connection limit is a semaphore taken *before* `accept`, so when it is full further
//! clients wait in the kernel's backlog rather than being accepted and then starved. On shutdown
//! the loop stops accepting, drops the listener, asks every connection to finish its in-flight
//! request and close (idle keep-alive connections close at once), and waits up to the drain
//! timeout before abandoning stragglers.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use crate::api::Response;

/// Per-listener settings.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// For logs and the open-connections gauge.
    pub name: &'static str,
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    pub drain_timeout: Duration,
}

/// Resolves when `rx` says to shut down, or when its sender is gone.
pub async fn shutdown_requested(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

/// Serves `listener` until `shutdown` turns true, then drains.
pub async fn serve<F, Fut>(
    listener: TcpListener,
    opts: ServerOptions,
    open_connections: prometheus::IntGauge,
    handler: F,
    mut shutdown: watch::Receiver<bool>,
) where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(opts.max_connections));
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(opts.header_read_timeout)
        .keep_alive(true);

    loop {
        let permit = tokio::select! {
            biased;
            () = shutdown_requested(&mut shutdown) => break,
            p = Arc::clone(&permits).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break, // the semaphore is never closed; nothing to serve without it
            },
        };
        let stream = tokio::select! {
            biased;
            () = shutdown_requested(&mut shutdown) => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(listener = opts.name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        let service = service_fn(move |req| {
            let fut = handler(req);
            async move { Ok::<_, Infallible>(fut.await) }
        });
        let conn = builder.serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        let gauge = open_connections.clone();
        gauge.inc();
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            gauge.dec();
            drop(permit);
        });
    }

    drop(listener);
    tracing::info!(
        listener = opts.name,
        "stopped accepting; draining connections"
    );
    if tokio::time::timeout(opts.drain_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            listener = opts.name,
            "drain timeout reached; closing remaining connections"
        );
    }
}
