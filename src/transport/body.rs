//! Reading a request body whole, within a limit: judged first by the length the client
//! announced, then frame by frame as it arrives.

use bytes::{Bytes, BytesMut};
use http::header;
use http_body_util::BodyExt;
use hyper::body::Incoming;

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
pub async fn read_frames(mut body: Incoming, limit: u64) -> Result<Bytes, ReadError> {
    // Frame by frame rather than through `BodyExt::collect`, whose future (a frame queue and
    // a trailer map) is several times larger: a body that arrives in one frame (the usual
    // case) is returned as it came, without a copy.
    let mut first: Option<Bytes> = None;
    let mut joined: Option<BytesMut> = None;
    let mut total: u64 = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| ReadError::Unreadable)?;
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
pub async fn read(req: http::Request<Incoming>, limit: u64) -> Result<Bytes, ReadError> {
    announced_length(req.headers(), limit)?;
    read_frames(req.into_body(), limit).await
}
