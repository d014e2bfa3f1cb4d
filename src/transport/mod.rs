//! Transport: HTTP/1.1 on bound sockets, knowing nothing of the APIs served over it.
//!
//! - [`server`]: the accept loop (connection limit, header timeout, graceful drain) that calls a
//!   handler per request;
//! - [`framing`]: the guard that refuses ambiguous request framing before hyper parses it;
//! - [`overload`]: whether to shed a request, from how long it waited to be read;
//! - [`shutdown`]: the one shutdown signal every long-lived task selects on;
//! - [`response`]: the response type every handler answers with, and [`body`]: reading a
//!   request body within a limit; [`query`]: a query string's parameters.

pub mod body;
pub mod framing;
pub mod multipart;
pub mod overload;
pub mod query;
pub mod response;
pub mod server;
pub mod shutdown;

pub use response::Response;
pub use shutdown::shutdown_requested;

/// Makes rustls (with ring) the process's TLS provider, which every HTTP client built afterwards
/// (the media fetcher, pushes, the upstream in pass-through mode) uses; calling it again is
/// harmless.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
