//! The guarded HTTP client: one for fetching media, one for pushing verdicts, sharing the
//! [`Guard`].
//!
//! - Literal hosts are judged before the request; names are resolved by [`GuardedResolver`],
//!   which refuses a name if any address it resolves to is denied and hands the client only the
//!   addresses it checked, so the connection goes to a checked address (no second lookup that a
//!   rebinding DNS server could answer differently).
//! - Media redirects are followed at most [`MAX_REDIRECTS`] times, each hop's URL judged again
//!   (its name resolved through the same resolver); pushes follow none (a 3xx is a failure).
//! - No proxies from the environment, no transparent decompression (no `Accept-Encoding` is
//!   sent and none is undone), connect and total timeouts.
//! - The body is read in chunks and abandoned as soon as it passes the size cap, whatever
//!   `Content-Length` announced.

use std::error::Error as StdError;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use url::Url;

use super::guard::{Denied, Guard};
use super::push::Signed;

/// Redirect hops a media fetch follows.
pub const MAX_REDIRECTS: usize = 3;

/// Why a fetch or push failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("invalid URL: {0}")]
    Url(String),
    #[error("{0}")]
    Denied(Denied),
    #[error("the body is larger than {0} bytes")]
    TooLarge(u64),
    #[error("the server answered HTTP {0}")]
    Status(u16),
    #[error("timed out")]
    Timeout,
    #[error("more than {MAX_REDIRECTS} redirects")]
    Redirects,
    #[error("{0}")]
    Transport(String),
}

/// The timeouts and cap the clients are built with.
#[derive(Debug, Clone)]
pub struct FetchLimits {
    pub connect_timeout: Duration,
    pub fetch_timeout: Duration,
    pub push_timeout: Duration,
    pub max_bytes: u64,
}

/// Raised by the redirect policy past [`MAX_REDIRECTS`].
#[derive(Debug)]
struct TooManyRedirects;

impl std::fmt::Display for TooManyRedirects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "more than {MAX_REDIRECTS} redirects")
    }
}

impl StdError for TooManyRedirects {}

/// Resolves names with the system resolver and refuses any name with a denied address.
struct GuardedResolver {
    guard: Arc<Guard>,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let guard = Arc::clone(&self.guard);
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if addrs.is_empty() {
                return Err(format!("{host} has no addresses").into());
            }
            for a in &addrs {
                guard.check_ip(a.ip()).map_err(Denied::for_name)?;
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The two clients.
#[derive(Debug, Clone)]
pub struct Fetcher {
    media: reqwest::Client,
    push: reqwest::Client,
    guard: Arc<Guard>,
    max_bytes: u64,
}

impl Fetcher {
    pub fn new(guard: Guard, limits: &FetchLimits) -> Result<Fetcher, String> {
        crate::transport::install_tls_provider();
        let guard = Arc::new(guard);
        let base = || {
            reqwest::Client::builder()
                .no_proxy()
                .dns_resolver(Arc::new(GuardedResolver {
                    guard: Arc::clone(&guard),
                }))
                .connect_timeout(limits.connect_timeout)
                .user_agent(concat!("modgate/", env!("CARGO_PKG_VERSION")))
                .pool_idle_timeout(Duration::from_secs(30))
        };
        let hops = Arc::clone(&guard);
        let media = base()
            .timeout(limits.fetch_timeout)
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() > MAX_REDIRECTS {
                    attempt.error(TooManyRedirects)
                } else if let Err(e) = hops.check_url(attempt.url()) {
                    attempt.error(e)
                } else {
                    attempt.follow()
                }
            }))
            .build()
            .map_err(|e| e.to_string())?;
        let push = base()
            .timeout(limits.push_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Fetcher {
            media,
            push,
            guard,
            max_bytes: limits.max_bytes,
        })
    }

    pub fn guard(&self) -> &Guard {
        &self.guard
    }

    /// Fetches a media URL: its bytes, at most the cap.
    pub async fn fetch(&self, url: &str) -> Result<Bytes, FetchError> {
        let url = Url::parse(url).map_err(|e| FetchError::Url(e.to_string()))?;
        self.guard.check_url(&url).map_err(FetchError::Denied)?;
        let mut resp = self.media.get(url).send().await.map_err(classify)?;
        let status = resp.status();
        if !status.is_success() {
            return Err(FetchError::Status(status.as_u16()));
        }
        let cap = self.max_bytes;
        if resp.content_length().is_some_and(|n| n > cap) {
            return Err(FetchError::TooLarge(cap));
        }
        let initial = resp.content_length().unwrap_or(64 * 1024).min(cap);
        let mut body = BytesMut::with_capacity(usize::try_from(initial).unwrap_or(0));
        while let Some(chunk) = resp.chunk().await.map_err(classify)? {
            if (body.len() + chunk.len()) as u64 > cap {
                return Err(FetchError::TooLarge(cap));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    }

    /// Posts a signed push to `url` (its own query kept, the signature parameters appended);
    /// the receiver's status when it is 2xx.
    pub async fn push(&self, url: &Url, signed: &Signed) -> Result<u16, FetchError> {
        self.guard.check_url(url).map_err(FetchError::Denied)?;
        let mut target = url.clone();
        let query = match url.query() {
            Some(q) if !q.is_empty() => format!("{q}&{}", signed.query),
            _ => signed.query.clone(),
        };
        target.set_query(Some(&query));
        let resp = self
            .push
            .post(target)
            .header(http::header::CONTENT_TYPE, signed.content_type)
            .body(signed.body.clone())
            .send()
            .await
            .map_err(classify)?;
        let status = resp.status();
        if status.is_success() {
            Ok(status.as_u16())
        } else {
            Err(FetchError::Status(status.as_u16()))
        }
    }
}

/// Maps a client error to what went wrong, looking through its causes for the guard's refusal.
fn classify(e: reqwest::Error) -> FetchError {
    if e.is_timeout() {
        return FetchError::Timeout;
    }
    let mut source: Option<&(dyn StdError + 'static)> = Some(&e);
    let mut innermost = String::new();
    while let Some(s) = source {
        if let Some(d) = s.downcast_ref::<Denied>() {
            return FetchError::Denied(d.clone());
        }
        if s.downcast_ref::<TooManyRedirects>().is_some() {
            return FetchError::Redirects;
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::TimedOut
        {
            return FetchError::Timeout;
        }
        innermost = s.to_string();
        source = s.source();
    }
    let outer = e.without_url().to_string();
    if innermost.is_empty() || innermost == outer {
        FetchError::Transport(outer)
    } else {
        FetchError::Transport(format!("{outer}: {innermost}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::dns::Resolve as _;

    fn name(s: &str) -> reqwest::dns::Name {
        s.parse().unwrap()
    }

    /// A name is judged by what it resolves to: `localhost` is refused unless loopback is
    /// allowed, and then only the checked addresses are handed to the client.
    #[tokio::test]
    async fn names_are_judged_by_every_address_they_resolve_to() {
        let strict = GuardedResolver {
            guard: Arc::new(Guard::default()),
        };
        let err = match strict.resolve(name("localhost")).await {
            Ok(_) => panic!("localhost must be refused"),
            Err(e) => e,
        };
        let denied = err.downcast_ref::<Denied>().expect("the guard's refusal");
        assert_eq!(*denied, Denied::Resolved("loopback"));
        // The refusal does not say what the name resolved to.
        let told = denied.to_string();
        assert!(
            !told.contains("127.0.0.1") && !told.contains("::1"),
            "{told}"
        );

        let allowing = GuardedResolver {
            guard: Arc::new(Guard::new(vec![
                "127.0.0.0/8".parse().unwrap(),
                "::1/128".parse().unwrap(),
            ])),
        };
        let addrs: Vec<SocketAddr> = allowing.resolve(name("localhost")).await.unwrap().collect();
        assert!(!addrs.is_empty());
        assert!(addrs.iter().all(|a| a.ip().is_loopback()), "{addrs:?}");
    }

    /// The client classifies its failures; the guard's refusal survives the error chain.
    #[tokio::test]
    async fn a_refusal_inside_the_client_is_reported_as_such() {
        let fetcher = Fetcher::new(
            Guard::default(),
            &FetchLimits {
                connect_timeout: Duration::from_secs(1),
                fetch_timeout: Duration::from_secs(2),
                push_timeout: Duration::from_secs(2),
                max_bytes: 1024,
            },
        )
        .unwrap();
        // A name (so the resolver, not the literal check, refuses it) on a port nothing serves.
        match fetcher.fetch("http://localhost:9/a.png").await {
            Err(FetchError::Denied(Denied::Resolved("loopback"))) => {}
            other => panic!("expected the guard's refusal, got {other:?}"),
        }
        assert_eq!(
            fetcher.fetch("http://127.0.0.1:9/a.png").await,
            Err(FetchError::Denied(Denied::Address(
                "127.0.0.1".parse().unwrap(),
                "loopback"
            )))
        );
    }
}
