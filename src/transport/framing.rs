//! A guard under hyper that follows each connection's request framing and refuses a request that
//! carries both `Content-Length` and `Transfer-Encoding`.
//!
//! Such a request is the classic smuggling vector: a front proxy that frames by one header and a
//! backend that frames by the other disagree on where the next request starts. hyper frames it
//! by its chunks, drops the `Content-Length` and closes the connection after answering, so
//! nothing hidden in the body is ever served here; but RFC 9112 §6.1 lets a server reject the
//! message outright, and that is the unambiguous answer for whatever sits in front of us. hyper
//! offers no such option, and the handler never sees the dropped header, so the guard reads the
//! stream as hyper does: it finds each request head with `httparse` (the parser hyper uses),
//! skips the body by its length or its chunks, and when a head carries both headers it alters
//! the head's final byte so that hyper's own parser fails on it and answers 400, in order after
//! any earlier pipelined responses, and closes.
//!
//! The guard only ever changes that one byte. Whenever it cannot follow the framing (an
//! unparseable head, an upgrade, chunk syntax it does not expect) it stops inspecting that
//! connection and leaves the judgement to hyper, which rejects such input itself: a request it
//! does not understand is never refused because of the guard.

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// hyper's default limit on headers per request; a head with more fails there too.
const MAX_HEADERS: usize = 100;

/// Heads longer than this are past hyper's buffer limit (about 400 KiB) and fail there.
const MAX_HEAD: usize = 512 * 1024;

/// Where the reader is within the stream of requests on one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading a request head (bytes so far kept in `Framing::head`).
    Head,
    /// Skipping a body of this many more bytes.
    Body(u64),
    /// Inside a chunked body.
    Chunked(Chunk),
    /// No longer inspecting: hyper judges the rest of the connection.
    Opaque,
}

/// Position within a chunked body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Reading the hexadecimal size (value so far, digits so far).
    Size(u64, u8),
    /// After the size: whitespace or an extension, up to the CR.
    SizeTail(u64),
    /// The LF ending the size line.
    SizeLf(u64),
    /// Chunk data still to skip.
    Data(u64),
    /// The CRLF after the data.
    DataCr,
    DataLf,
    /// At the start of a trailer line (or of the empty line ending the body).
    TrailerStart,
    /// Inside a trailer line.
    Trailer,
    /// The LF ending a trailer line.
    TrailerLf,
    /// The LF of the empty line ending the body.
    EndLf,
}

/// The framing tracker for one connection; [`Guarded`] feeds it every byte read.
#[derive(Debug)]
pub struct Framing {
    state: State,
    /// The current head's bytes, when it has arrived over several reads.
    head: Vec<u8>,
    /// Requests refused because of conflicting framing headers.
    refused: u64,
}

impl Default for Framing {
    fn default() -> Self {
        Framing {
            state: State::Head,
            head: Vec::new(),
            refused: 0,
        }
    }
}

/// What a complete request head says about the body that follows.
#[derive(Debug, PartialEq, Eq)]
enum HeadVerdict {
    /// The body's framing, and the head's length.
    Follow(State, usize),
    /// Both Content-Length and Transfer-Encoding: refuse (head length).
    Conflict(usize),
    /// More bytes needed.
    Partial,
    /// Not something the guard follows.
    Opaque,
}

/// How a head is judged: by [`plain_head`] when it is a usual one, else by the full parse.
fn judge(bytes: &[u8]) -> HeadVerdict {
    match plain_head(bytes) {
        Quick::Judged(verdict) => verdict,
        Quick::Incomplete => HeadVerdict::Partial,
        Quick::Unusual => judge_head(bytes),
    }
}

/// What [`plain_head`] makes of a head.
#[derive(Debug, PartialEq, Eq)]
enum Quick {
    Judged(HeadVerdict),
    /// Every line so far is usual, but the head has not ended.
    Incomplete,
    /// A line that is not: the full parse decides.
    Unusual,
}

/// The judgement of the usual head, without a full parse: a request line of an upper-case
/// method (not CONNECT) ending in ` HTTP/1.x`, every line ended by CRLF, no header line
/// beginning with `t` or `u` in either case (so neither Transfer-Encoding nor Upgrade can be
/// among them) or with whitespace, and at most one `Content-Length` of plain digits.
///
/// It does not check the characters of the target or the header names and values. A head
/// with bad ones is followed here by its `Content-Length` where httparse would fail, and hyper
/// refuses it with 400 and closes the connection, so the guard's reading of what follows it
/// never matters. Where httparse accepts the head, the two judge alike (a test compares them).
///
/// Each line is judged on its own bytes alone, so a head's prefix is `Unusual` only if the
/// whole head is: however the head is split into reads, it is judged the same way.
fn plain_head(bytes: &[u8]) -> Quick {
    const CONTENT_LENGTH: &[u8] = b"content-length:";
    let mut lines = memchr::memchr_iter(b'\n', bytes);
    let Some(first_end) = lines.next() else {
        return Quick::Incomplete;
    };
    let request_line = &bytes[..first_end];
    let Some(method_len) = request_line.iter().position(|&b| b == b' ') else {
        return Quick::Unusual;
    };
    let method = &request_line[..method_len];
    if method.is_empty()
        || !method.iter().all(u8::is_ascii_uppercase)
        || method == b"CONNECT"
        || !(request_line.ends_with(b" HTTP/1.1\r") || request_line.ends_with(b" HTTP/1.0\r"))
    {
        return Quick::Unusual;
    }
    let mut content_length: Option<&[u8]> = None;
    let mut start = first_end + 1;
    for end in lines {
        let Some(line) = bytes[start..end].strip_suffix(b"\r") else {
            return Quick::Unusual;
        };
        match line.first() {
            None => {
                let Some(v) = content_length else {
                    return Quick::Judged(HeadVerdict::Follow(State::Head, end + 1));
                };
                let v = v.trim_ascii();
                if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
                    return Quick::Unusual;
                }
                // At most 19 digits: below u64::MAX.
                let n = v.iter().fold(0u64, |n, &d| n * 10 + u64::from(d - b'0'));
                let next = if n == 0 { State::Head } else { State::Body(n) };
                return Quick::Judged(HeadVerdict::Follow(next, end + 1));
            }
            Some(b't' | b'T' | b'u' | b'U' | b' ' | b'\t') => return Quick::Unusual,
            Some(b'c' | b'C')
                if line.len() >= CONTENT_LENGTH.len()
                    && line[..CONTENT_LENGTH.len()].eq_ignore_ascii_case(CONTENT_LENGTH) =>
            {
                if content_length.is_some() {
                    return Quick::Unusual;
                }
                content_length = Some(&line[CONTENT_LENGTH.len()..]);
            }
            Some(_) => {}
        }
        start = end + 1;
    }
    Quick::Incomplete
}

/// Whether the quick judgement of `bytes` (a head, and perhaps more) agrees with the full one:
/// where [`plain_head`] judges, httparse either judges alike or rejects the head (and hyper with
/// it). For the fuzz target.
pub fn quick_judgement_agrees(bytes: &[u8]) -> Result<(), String> {
    let Quick::Judged(quick) = plain_head(bytes) else {
        return Ok(());
    };
    let full = judge_head(bytes);
    if quick == full {
        return Ok(());
    }
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    match httparse::Request::new(&mut headers).parse(bytes) {
        Err(_) => Ok(()),
        parsed => Err(format!(
            "quick {quick:?}, full {full:?}, httparse {parsed:?}"
        )),
    }
}

/// The full judgement, by httparse.
fn judge_head(bytes: &[u8]) -> HeadVerdict {
    // Left uninitialised: the parser writes only the headers it finds (a cleared array would
    // cost a 3 KiB memset per request).
    let mut headers = [const { std::mem::MaybeUninit::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    let len = match req.parse_with_uninit_headers(bytes, &mut headers) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return HeadVerdict::Partial,
        Err(_) => return HeadVerdict::Opaque,
    };
    if req.method == Some("CONNECT") {
        return HeadVerdict::Opaque;
    }
    let mut content_length: Option<&[u8]> = None;
    let mut transfer_encoding: Option<&[u8]> = None;
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            content_length = Some(h.value);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            // hyper frames by the last Transfer-Encoding line.
            transfer_encoding = Some(h.value);
        } else if h.name.eq_ignore_ascii_case("upgrade") {
            return HeadVerdict::Opaque;
        }
    }
    match (content_length, transfer_encoding) {
        (Some(_), Some(_)) => HeadVerdict::Conflict(len),
        (None, Some(te)) => {
            let last = te.rsplit(|&b| b == b',').next().unwrap_or(te);
            if last.trim_ascii().eq_ignore_ascii_case(b"chunked") {
                HeadVerdict::Follow(State::Chunked(Chunk::Size(0, 0)), len)
            } else {
                HeadVerdict::Opaque
            }
        }
        (Some(cl), None) => match std::str::from_utf8(cl.trim_ascii())
            .ok()
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse::<u64>().ok())
        {
            Some(0) => HeadVerdict::Follow(State::Head, len),
            Some(n) => HeadVerdict::Follow(State::Body(n), len),
            None => HeadVerdict::Opaque,
        },
        (None, None) => HeadVerdict::Follow(State::Head, len),
    }
}

/// Makes a complete head unparseable by changing its final byte (the LF that ends it): hyper's
/// parser then fails with a malformed-line error, answers 400 and closes the connection.
const POISON: u8 = 0;

impl Framing {
    /// Requests refused on this connection so far.
    pub fn refused(&self) -> u64 {
        self.refused
    }

    /// Inspects bytes just read, in order, changing at most the final byte of a refused head.
    pub fn inspect(&mut self, bytes: &mut [u8]) {
        let mut at = 0;
        while at < bytes.len() {
            match self.state {
                State::Opaque => return,
                State::Head => at = self.head_bytes(bytes, at),
                State::Body(n) => {
                    let take = n.min((bytes.len() - at) as u64);
                    at += take as usize;
                    self.state = if take == n {
                        State::Head
                    } else {
                        State::Body(n - take)
                    };
                }
                State::Chunked(Chunk::Data(n)) => {
                    let take = n.min((bytes.len() - at) as u64);
                    at += take as usize;
                    self.state = State::Chunked(if take == n {
                        Chunk::DataCr
                    } else {
                        Chunk::Data(n - take)
                    });
                }
                State::Chunked(c) => {
                    self.state = chunk_byte(c, bytes[at]);
                    at += 1;
                }
            }
        }
    }

    /// Feeds head bytes from `bytes[at..]`; returns where the head ended (or the end of `bytes`).
    fn head_bytes(&mut self, bytes: &mut [u8], at: usize) -> usize {
        // The usual case: a whole head within one read, judged in place without copying.
        let (verdict, base) = if self.head.is_empty() {
            (judge(&bytes[at..]), 0)
        } else {
            let base = self.head.len();
            self.head.extend_from_slice(&bytes[at..]);
            // Parse again only when the new bytes could end the head, so a head trickled a
            // byte at a time costs linear, not quadratic, time.
            let fresh = &self.head[base.saturating_sub(2)..];
            let may_end =
                fresh.windows(2).any(|w| w == b"\n\n") || fresh.windows(3).any(|w| w == b"\n\r\n");
            let verdict = if may_end {
                judge(&self.head)
            } else {
                HeadVerdict::Partial
            };
            (verdict, base)
        };
        match verdict {
            HeadVerdict::Partial => {
                if self.head.is_empty() {
                    self.head.extend_from_slice(&bytes[at..]);
                }
                if self.head.len() > MAX_HEAD {
                    self.head = Vec::new();
                    self.state = State::Opaque;
                }
                bytes.len()
            }
            HeadVerdict::Opaque => {
                self.head = Vec::new();
                self.state = State::Opaque;
                bytes.len()
            }
            HeadVerdict::Conflict(len) => {
                let end = at + len - base; // just past the head's final byte, within `bytes`
                bytes[end - 1] = POISON;
                self.refused += 1;
                self.head = Vec::new();
                self.state = State::Opaque;
                bytes.len()
            }
            HeadVerdict::Follow(next, len) => {
                self.head.clear();
                self.state = next;
                at + len - base
            }
        }
    }
}

/// One byte of chunked framing outside chunk data (which is skipped in bulk).
fn chunk_byte(c: Chunk, b: u8) -> State {
    let next = match c {
        Chunk::Size(value, digits) => match (b as char).to_digit(16) {
            Some(d) if digits < 16 => Chunk::Size(value << 4 | u64::from(d), digits + 1),
            Some(_) => return State::Opaque, // overflow: hyper refuses it
            None if digits == 0 => return State::Opaque,
            None => match b {
                b'\r' => Chunk::SizeLf(value),
                b' ' | b'\t' | b';' => Chunk::SizeTail(value),
                _ => return State::Opaque,
            },
        },
        Chunk::SizeTail(value) => match b {
            b'\r' => Chunk::SizeLf(value),
            b'\n' => return State::Opaque,
            _ => Chunk::SizeTail(value),
        },
        Chunk::SizeLf(value) => match b {
            b'\n' if value == 0 => Chunk::TrailerStart,
            b'\n' => Chunk::Data(value),
            _ => return State::Opaque,
        },
        // Data is skipped in bulk by `Framing::inspect`; one byte of it, should it come here:
        Chunk::Data(n) if n > 1 => Chunk::Data(n - 1),
        Chunk::Data(_) => Chunk::DataCr,
        Chunk::DataCr => match b {
            b'\r' => Chunk::DataLf,
            _ => return State::Opaque,
        },
        Chunk::DataLf => match b {
            b'\n' => Chunk::Size(0, 0),
            _ => return State::Opaque,
        },
        Chunk::TrailerStart => match b {
            b'\r' => Chunk::EndLf,
            _ => Chunk::Trailer,
        },
        Chunk::Trailer => match b {
            b'\r' => Chunk::TrailerLf,
            _ => Chunk::Trailer,
        },
        Chunk::TrailerLf => match b {
            b'\n' => Chunk::TrailerStart,
            _ => return State::Opaque,
        },
        Chunk::EndLf => match b {
            b'\n' => return State::Head,
            _ => return State::Opaque,
        },
    };
    State::Chunked(next)
}

/// A connection's byte stream with its framing followed on the way in; writes pass through.
pub struct Guarded<S> {
    inner: S,
    framing: Framing,
    refused: prometheus::IntCounter,
}

impl<S> Guarded<S> {
    /// `refused` counts requests refused for conflicting framing headers.
    pub fn new(inner: S, refused: prometheus::IntCounter) -> Self {
        Guarded {
            inner,
            framing: Framing::default(),
            refused,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Guarded<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            let refused = this.framing.refused();
            this.framing.inspect(&mut buf.filled_mut()[before..]);
            if this.framing.refused() > refused {
                this.refused.inc();
                tracing::debug!("request with both Content-Length and Transfer-Encoding refused");
            }
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Guarded<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests fail loudly by design

    use super::*;

    /// Feeds `input` in pieces of `step` bytes; returns what hyper would read and the tracker.
    fn feed(input: &[u8], step: usize) -> (Vec<u8>, Framing) {
        let mut f = Framing::default();
        let mut out = input.to_vec();
        for piece in out.chunks_mut(step) {
            f.inspect(piece);
        }
        (out, f)
    }

    const PIPELINE: &[u8] = b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello\
GET /b HTTP/1.1\r\nHost: x\r\n\r\n\
POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
5;ext=1\r\nhello\r\n10 \r\n0123456789abcdef\r\n0\r\nX-Trailer: y\r\n\r\n\
POST /d HTTP/1.1\r\nHost: x\r\ncontent-length: 0\r\n\r\n";

    #[test]
    fn follows_lengths_chunks_and_trailers_across_any_split() {
        for step in 1..=PIPELINE.len() {
            let (out, f) = feed(PIPELINE, step);
            assert_eq!(out, PIPELINE, "step {step}");
            assert_eq!(f.state, State::Head, "step {step}");
            assert_eq!(f.refused(), 0);
            assert!(f.head.is_empty());
        }
    }

    #[test]
    fn a_head_with_both_framing_headers_is_poisoned_in_its_last_byte() {
        for (cl_first, te) in [
            (true, "chunked"),
            (false, "chunked"),
            (true, "gzip, chunked"),
        ] {
            let head = if cl_first {
                format!("POST /x HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: {te}\r\n\r\n")
            } else {
                format!("POST /x HTTP/1.1\r\nTransfer-Encoding: {te}\r\nContent-Length: 4\r\n\r\n")
            };
            let mut input = PIPELINE.to_vec();
            input.extend_from_slice(head.as_bytes());
            input.extend_from_slice(b"0\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n");
            for step in [1, 7, input.len()] {
                let (out, f) = feed(&input, step);
                assert_eq!(f.refused(), 1);
                let end = PIPELINE.len() + head.len();
                assert_eq!(out[end - 1], POISON);
                out.iter()
                    .zip(&input)
                    .enumerate()
                    .filter(|(i, _)| *i != end - 1)
                    .for_each(|(i, (a, b))| assert_eq!(a, b, "byte {i} changed"));
                // hyper's parser fails on the poisoned head.
                let mut headers = [httparse::EMPTY_HEADER; 16];
                let parsed = httparse::Request::new(&mut headers).parse(&out[PIPELINE.len()..]);
                assert!(parsed.is_err(), "{parsed:?}");
            }
        }
    }

    #[test]
    fn text_that_looks_like_headers_inside_a_body_is_not_a_head() {
        let body =
            b"\r\n\r\nPOST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n";
        let mut input =
            format!("POST /x HTTP/1.1\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
        input.extend_from_slice(body);
        let mut chunked = b"POST /y HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        chunked.extend_from_slice(format!("{:x}\r\n", body.len()).as_bytes());
        chunked.extend_from_slice(body);
        chunked.extend_from_slice(b"\r\n0\r\n\r\n");
        input.extend_from_slice(&chunked);
        for step in [1, 3, input.len()] {
            let (out, f) = feed(&input, step);
            assert_eq!(out, input);
            assert_eq!(f.refused(), 0);
            assert_eq!(f.state, State::Head);
        }
    }

    #[test]
    fn what_it_cannot_follow_is_left_to_hyper() {
        for input in [
            &b"POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n"[..],
            b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
            b"GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
            b"\x01garbage\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n11111111111111111\r\n",
        ] {
            let (out, f) = feed(input, 1);
            assert_eq!(out, input);
            assert_eq!(
                f.state,
                State::Opaque,
                "{:?}",
                String::from_utf8_lossy(input)
            );
            assert_eq!(f.refused(), 0);
        }
    }

    #[test]
    fn an_endless_head_is_not_buffered_past_the_limit() {
        let mut f = Framing::default();
        let mut line = b"GET / HTTP/1.1\r\n".to_vec();
        f.inspect(&mut line);
        let mut filler = vec![b'a'; 4096];
        for _ in 0..200 {
            f.inspect(&mut filler);
        }
        assert_eq!(f.state, State::Opaque);
        assert!(f.head.capacity() == 0);
    }

    #[test]
    fn the_quick_judgement_takes_usual_heads_and_agrees_with_httparse() {
        let usual: &[&[u8]] = &[
            b"POST /wxa/msg_sec_check?access_token=abc HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Length: 178\r\n\r\n",
            b"POST /x HTTP/1.1\r\nhost: a\r\ncontent-type: application/json\r\ncontent-length:  7 \r\naccept: */*\r\n\r\n{\"a\":1}",
            b"POST /x HTTP/1.0\r\nCONTENT-LENGTH: 0\r\n\r\n",
            b"GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.1\r\n",
            b"GET / HTTP/1.1\r\n\r\n",
            b"DELETE /admin/apps/wx1 HTTP/1.1\r\nAuthorization: Bearer t\r\nContent-Length: 18446744073\r\n\r\n",
        ];
        for &head in usual {
            let shown = String::from_utf8_lossy(head);
            let Quick::Judged(quick) = plain_head(head) else {
                panic!("not judged quickly: {shown:?}");
            };
            assert_eq!(quick, judge_head(head), "{shown:?}");
        }
        // Everything else goes to the full parse.
        let unusual: &[&[u8]] = &[
            b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"POST /x HTTP/1.1\r\nContent-Length: 4\r\ntransfer-encoding: chunked\r\n\r\n",
            b"POST /x HTTP/1.1\r\nTE: trailers\r\nContent-Length: 4\r\n\r\n",
            b"GET / HTTP/1.1\r\nupgrade: websocket\r\n\r\n",
            b"CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n",
            b"post /x HTTP/1.1\r\nContent-Length: 4\r\n\r\n",
            b"POST /x HTTP/1.1\nContent-Length: 4\n\n",
            b"POST /x HTTP/1.1\r\nContent-Length: 4\n\r\n",
            b"POST /x HTTP/1.1\r\nX: a\r\n b\r\nContent-Length: 4\r\n\r\n",
            b"POST /x HTTP/1.1\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\n",
            b"POST /x HTTP/1.1\r\nContent-Length: +4\r\n\r\n",
            b"POST /x HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
            b"POST /x HTTP/2.0\r\nContent-Length: 4\r\n\r\n",
            b"\r\nPOST /x HTTP/1.1\r\nContent-Length: 4\r\n\r\n",
            b"\x01garbage\r\n\r\n",
        ];
        for &head in unusual {
            let shown = String::from_utf8_lossy(head);
            assert_eq!(plain_head(head), Quick::Unusual, "{shown:?}");
        }
        // An unfinished usual head waits for its end, whatever httparse makes of it so far.
        for head in [
            &b"POST /x HTTP/1.1\r\nContent-Length: 4\r\n"[..],
            b"POST /\x7f",
        ] {
            let shown = String::from_utf8_lossy(head);
            assert_eq!(plain_head(head), Quick::Incomplete, "{shown:?}");
        }
        // A head httparse rejects may be followed by its length: hyper refuses it and closes.
        let bad = b"POST /a b HTTP/1.1\r\nContent-Length: 4\r\n\r\n";
        assert_eq!(
            plain_head(bad),
            Quick::Judged(HeadVerdict::Follow(State::Body(4), bad.len()))
        );
        assert_eq!(judge_head(bad), HeadVerdict::Opaque);
        for head in usual.iter().chain(unusual).chain([&&bad[..]]) {
            quick_judgement_agrees(head).unwrap();
        }
    }

    #[test]
    fn a_head_judged_quickly_whole_is_judged_alike_when_split() {
        // httparse rejects the first head's target early, at its 8th byte; the quick judgement
        // follows the head whole, and must do so however it arrives.
        let input = b"POST /wx\x7f/a HTTP/1.1\r\nHost: a\r\n\r\nhelloPOST /b HTTP/1.1\r\n\
Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
        let (whole, f) = feed(input, input.len());
        assert_eq!(f.refused(), 1);
        for step in 1..input.len() {
            let (out, f) = feed(input, step);
            assert_eq!((&out, f.refused()), (&whole, 1), "step {step}");
        }
    }
}
