//! A request's body as handlers receive it ([`RequestBody`]: hyper's, under a deadline its
//! connection keeps), and reading one whole within a limit: judged first by the length the
//! client announced, then frame by frame as it arrives.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures_util::task::AtomicWaker;
use http::header;
use http_body_util::BodyExt;
use hyper::body::{Frame, Incoming, SizeHint};

/// The deadline of the body a connection's current request is sending. The connection's
/// listener starts it when it hands a request with a body to its handler ([`BodyWatch::start`])
/// and its sweep ends it once the body read timeout has passed ([`BodyWatch::expire_before`]);
/// the body then fails with [`BodyError::TimedOut`] wherever the handler is reading it. A flag
/// and a waker, like the header timeout's: no timer per request.
#[derive(Debug, Default)]
pub struct BodyWatch {
    /// When the body began to be awaited, on the listener's clock (ms, at least 1); 0: no
    /// body is being awaited.
    since_ms: AtomicU64,
    expired: AtomicBool,
    waker: AtomicWaker,
}

impl BodyWatch {
    /// A body starts being awaited at `now_ms`.
    pub fn start(&self, now_ms: u64) {
        self.expired.store(false, Ordering::Release);
        self.since_ms.store(now_ms.max(1), Ordering::Release);
    }

    /// The body has arrived whole, failed, or was dropped.
    fn stop(&self) {
        self.since_ms.store(0, Ordering::Release);
    }

    /// Ends the body's wait if it began at `before_ms` or earlier; returns whether it did (a
    /// wait already ended is not ended again).
    pub fn expire_before(&self, before_ms: u64) -> bool {
        let since = self.since_ms.load(Ordering::Acquire);
        if since == 0 || since > before_ms || self.expired.swap(true, Ordering::AcqRel) {
            return false;
        }
        self.waker.wake();
        true
    }
}

/// Why a body's frames stopped.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The connection failed or the client sent a broken chunked body.
    #[error(transparent)]
    Read(#[from] hyper::Error),
    /// The body did not arrive whole within the listener's body read timeout.
    #[error("the request body did not arrive in time")]
    TimedOut,
}

/// A request's body: hyper's, failing with [`BodyError::TimedOut`] once its connection's body
/// read timeout has passed. A slow sender holds its connection (one of the listener's limited
/// number) no longer than that, however the handler reads the body.
#[derive(Debug)]
pub struct RequestBody {
    inner: Incoming,
    watch: Option<Arc<BodyWatch>>,
}

impl RequestBody {
    /// `inner` under `watch`'s deadline, which the caller has started.
    pub fn watched(inner: Incoming, watch: Arc<BodyWatch>) -> Self {
        RequestBody {
            inner,
            watch: Some(watch),
        }
    }

    /// `inner` with no deadline (a body already whole, or a server of its own).
    pub fn unwatched(inner: Incoming) -> Self {
        RequestBody { inner, watch: None }
    }

    fn stop_watching(&mut self) {
        if let Some(watch) = self.watch.take() {
            watch.stop();
        }
    }
}

impl Drop for RequestBody {
    fn drop(&mut self) {
        self.stop_watching();
    }
}

impl hyper::body::Body for RequestBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        if let Some(watch) = &this.watch {
            if watch.expired.load(Ordering::Acquire) {
                this.stop_watching();
                return Poll::Ready(Some(Err(BodyError::TimedOut)));
            }
            watch.waker.register(cx.waker());
        }
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(None | Some(Err(_))) => this.stop_watching(),
            Poll::Ready(Some(Ok(_))) if this.inner.is_end_stream() => this.stop_watching(),
            _ => {}
        }
        polled.map(|frame| frame.map(|r| r.map_err(BodyError::Read)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Why a body was not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// `Content-Length` is not a number.
    #[error("invalid Content-Length")]
    BadLength,
    /// The body is (or was announced to be) over the limit, in bytes.
    #[error("request body too large: the limit is {0} bytes")]
    TooLarge(u64),
    /// The client went away or sent a broken chunked body.
    #[error("request body could not be read")]
    Unreadable,
    /// The body did not arrive whole within the body read timeout.
    #[error("request body not received in time")]
    TimedOut,
}

impl From<BodyError> for ReadError {
    fn from(e: BodyError) -> Self {
        match e {
            BodyError::Read(_) => ReadError::Unreadable,
            BodyError::TimedOut => ReadError::TimedOut,
        }
    }
}

/// Judges the body's length as the client announced it (`Content-Length`): refused when it is
/// not a number or exceeds `limit`, before a byte of the body is read.
pub fn announced_length(headers: &http::HeaderMap, limit: u64) -> Result<(), ReadError> {
    if let Some(len) = headers.get(header::CONTENT_LENGTH) {
        let len: u64 = len
            .to_str()
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or(ReadError::BadLength)?;
        if len > limit {
            return Err(ReadError::TooLarge(limit));
        }
    }
    Ok(())
}

/// Reads a whole body (after its announced length was judged, [`announced_length`]), refusing
/// it as soon as it crosses `limit`.
pub async fn read_frames(mut body: RequestBody, limit: u64) -> Result<Bytes, ReadError> {
    // Frame by frame rather than through `BodyExt::collect`, whose future (a frame queue and
    // a trailer map) is several times larger: a body that arrives in one frame (the usual
    // case) is returned as it came, without a copy.
    let mut first: Option<Bytes> = None;
    let mut joined: Option<BytesMut> = None;
    let mut total: u64 = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers: nothing the APIs read
        };
        total = total.saturating_add(data.len() as u64);
        if total > limit {
            return Err(ReadError::TooLarge(limit));
        }
        match (&mut joined, first.take()) {
            (Some(buf), _) => buf.extend_from_slice(&data),
            (None, None) => first = Some(data),
            (None, Some(earlier)) => {
                let mut buf = BytesMut::with_capacity(earlier.len() + data.len());
                buf.extend_from_slice(&earlier);
                buf.extend_from_slice(&data);
                joined = Some(buf);
            }
        }
    }
    Ok(match joined {
        Some(buf) => buf.freeze(),
        None => first.unwrap_or_default(),
    })
}

/// A whole body within `limit` ([`announced_length`], then [`read_frames`]).
pub async fn read(req: http::Request<RequestBody>, limit: u64) -> Result<Bytes, ReadError> {
    announced_length(req.headers(), limit)?;
    read_frames(req.into_body(), limit).await
}
