//! One file out of a `multipart/form-data` body, within limits (`/wxa/img_sec_check`).
//!
//! Parsing is multer's; this module bounds it: the body as a whole (the file plus
//! [`OVERHEAD_BYTES`] of headers and small fields), every part, and the number of parts. No more
//! than those bounds is ever held, however the body is cut into frames or where it stops.

use bytes::{Bytes, BytesMut};
use futures_util::Stream;

/// What a body may carry besides the file: part headers, boundaries, a few small fields.
pub const OVERHEAD_BYTES: u64 = 64 << 10;

/// The bounds of an upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadLimits {
    /// The largest file (and the largest part of any name).
    pub file_bytes: u64,
    /// Parts read at most.
    pub max_parts: usize,
}

impl UploadLimits {
    /// The largest whole body.
    pub fn body_bytes(&self) -> u64 {
        self.file_bytes.saturating_add(OVERHEAD_BYTES)
    }
}

/// Why no file came out of an upload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UploadError {
    /// The `Content-Type` is not `multipart/form-data` with a boundary.
    #[error("the body must be multipart/form-data with a boundary")]
    NotMultipart,
    /// More parts than [`UploadLimits::max_parts`].
    #[error("the body has more than {0} parts")]
    TooManyParts(usize),
    /// A part is over [`UploadLimits::file_bytes`].
    #[error("the file is larger than {0} bytes")]
    FileTooLarge(u64),
    /// The body is over [`UploadLimits::body_bytes`] (the parser reads ahead as far as the
    /// client has sent, so a large body of many small parts ends here too).
    #[error("the body is larger than {0} bytes")]
    BodyTooLarge(u64),
    /// Not well-formed multipart: what is wrong.
    #[error("the multipart body {0}")]
    Malformed(&'static str),
    /// No part of the wanted name, or an empty one.
    #[error("no part named `{0}`")]
    Missing(&'static str),
    /// The client went away or sent a broken chunked body.
    #[error("the body could not be read")]
    Unreadable,
    /// The body did not arrive whole within the body read timeout.
    #[error("the body did not arrive in time")]
    TimedOut,
}

impl From<multer::Error> for UploadError {
    fn from(e: multer::Error) -> Self {
        use multer::Error as E;
        match e {
            E::FieldSizeExceeded { limit, .. } => UploadError::FileTooLarge(limit),
            E::StreamSizeExceeded { limit } => UploadError::BodyTooLarge(limit),
            E::IncompleteStream | E::IncompleteFieldData { .. } | E::IncompleteHeaders => {
                UploadError::Malformed("is cut short")
            }
            E::ReadHeaderFailed(_) | E::DecodeHeaderName { .. } | E::DecodeHeaderValue { .. } => {
                UploadError::Malformed("has a part whose headers cannot be read")
            }
            E::NoMultipart | E::DecodeContentType(_) | E::NoBoundary => UploadError::NotMultipart,
            E::StreamReadFailed(e) => match e.downcast_ref::<super::body::BodyError>() {
                Some(super::body::BodyError::TimedOut) => UploadError::TimedOut,
                _ => UploadError::Unreadable,
            },
            _ => UploadError::Malformed("is not valid multipart/form-data"),
        }
    }
}

/// The content of the first part named `name` in a body of type `content_type`, after reading
/// the body to its end (a body cut short is refused even past the file). Other parts are read
/// and dropped; empty files count as missing.
pub async fn file_part<S, E>(
    content_type: Option<&str>,
    body: S,
    name: &'static str,
    limits: UploadLimits,
) -> Result<Bytes, UploadError>
where
    S: Stream<Item = Result<Bytes, E>> + Send + 'static,
    E: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
{
    let boundary = multer::parse_boundary(content_type.ok_or(UploadError::NotMultipart)?)
        .map_err(|_| UploadError::NotMultipart)?;
    let constraints = multer::Constraints::new().size_limit(
        multer::SizeLimit::new()
            .whole_stream(limits.body_bytes())
            .per_field(limits.file_bytes),
    );
    let mut multipart = multer::Multipart::with_constraints(body, boundary, constraints);
    let mut file: Option<Bytes> = None;
    let mut parts = 0usize;
    while let Some(mut field) = multipart.next_field().await? {
        parts += 1;
        if parts > limits.max_parts {
            return Err(UploadError::TooManyParts(limits.max_parts));
        }
        let wanted = file.is_none() && field.name() == Some(name);
        let mut held = BytesMut::new();
        while let Some(chunk) = field.chunk().await? {
            if wanted {
                held.extend_from_slice(&chunk);
            }
        }
        if wanted {
            file = Some(held.freeze());
        }
    }
    file.filter(|f| !f.is_empty())
        .ok_or(UploadError::Missing(name))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests fail loudly on unexpected errors

    use futures_util::FutureExt;

    use super::*;

    const LIMITS: UploadLimits = UploadLimits {
        file_bytes: 1000,
        max_parts: 4,
    };
    const CT: &str = "multipart/form-data; boundary=XyZ";

    fn part(name: &str, content: &[u8]) -> Vec<u8> {
        let mut p = format!(
            "--XyZ\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"a.png\"\r\n\
             Content-Type: image/png\r\n\r\n"
        )
        .into_bytes();
        p.extend_from_slice(content);
        p.extend_from_slice(b"\r\n");
        p
    }

    fn body(parts: &[Vec<u8>]) -> Vec<u8> {
        let mut b = parts.concat();
        b.extend_from_slice(b"--XyZ--\r\n");
        b
    }

    /// Runs [`file_part`] over `data` delivered in frames of `frame` bytes.
    fn run(ct: Option<&str>, data: &[u8], frame: usize) -> Result<Bytes, UploadError> {
        let frames: Vec<Result<Bytes, std::io::Error>> = data
            .chunks(frame.max(1))
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        file_part(ct, futures_util::stream::iter(frames), "media", LIMITS)
            .now_or_never()
            .expect("a ready stream never waits")
    }

    #[test]
    fn the_named_part_comes_out_whatever_the_framing() {
        let data = body(&[
            part("other", b"x"),
            part("media", b"\x89PNG..."),
            part("media", b"2"),
        ]);
        for frame in [1, 3, 7, 64, data.len()] {
            assert_eq!(
                run(Some(CT), &data, frame).unwrap(),
                Bytes::from_static(b"\x89PNG..."),
                "frames of {frame}"
            );
        }
    }

    #[test]
    fn bad_uploads_are_refused_with_what_is_wrong() {
        let good = body(&[part("media", b"abc")]);
        assert_eq!(run(None, &good, 64), Err(UploadError::NotMultipart));
        assert_eq!(
            run(Some("multipart/form-data"), &good, 64),
            Err(UploadError::NotMultipart)
        );
        assert_eq!(
            run(Some("application/json"), &good, 64),
            Err(UploadError::NotMultipart)
        );
        assert_eq!(
            run(Some(CT), &body(&[part("file", b"abc")]), 64),
            Err(UploadError::Missing("media"))
        );
        assert_eq!(
            run(Some(CT), &body(&[part("media", b"")]), 64),
            Err(UploadError::Missing("media"))
        );
        // A part over the file limit, and a body over the whole limit in small parts.
        assert_eq!(
            run(Some(CT), &body(&[part("media", &[7; 1001])]), 64),
            Err(UploadError::FileTooLarge(1000))
        );
        let five: Vec<Vec<u8>> = (0..5).map(|_| part("x", b"y")).collect();
        assert_eq!(
            run(Some(CT), &body(&five), 16),
            Err(UploadError::TooManyParts(4))
        );
        let many: Vec<Vec<u8>> = (0..10_000).map(|_| part("x", b"y")).collect();
        assert_eq!(
            run(Some(CT), &body(&many), 4096),
            Err(UploadError::BodyTooLarge(LIMITS.body_bytes()))
        );
        // Cut short: inside the file, and after it before the closing boundary.
        let cut = &good[..good.len() - 20];
        assert_eq!(
            run(Some(CT), cut, 8),
            Err(UploadError::Malformed("is cut short"))
        );
        let unclosed = part("media", b"abc");
        assert_eq!(
            run(Some(CT), &unclosed, 8),
            Err(UploadError::Malformed("is cut short"))
        );
    }
}
