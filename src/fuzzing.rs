//! The properties the fuzz targets check, one function per parser that takes outside input.
//! `fuzz/fuzz_targets/*` call them under libFuzzer; `tests/fuzz_corpora.rs` replays every checked-in
//! corpus through them on each test run, so an input that once failed stays fixed.
//!
//! Each function panics (the fuzzer's finding) when a property fails; inputs a parser refuses
//! are fine, as long as the refusal is an error value and not a panic.

use std::net::IpAddr;

use crate::api::wire::{self, MediaCheckBody, MsgSecCheckBody, VisitReportBody};
use crate::engine::table::{self, CustomTable};
use crate::jobs::guard::Guard;
use crate::media::bank::{self, Bank};

/// Request bodies of the WeChat-compatible API: parsed leniently or refused with a
/// describable error, never a panic.
pub fn request_json(data: &[u8]) {
    match wire::parse_body::<MsgSecCheckBody<'_>>(data) {
        Ok(_) => {}
        Err(e) => assert!(!e.describe().is_empty()),
    }
    let _ = wire::parse_body::<MediaCheckBody<'_>>(data);
    let _ = wire::parse_body::<VisitReportBody<'_>>(data);
}

/// The configuration file: valid, or every problem reported with the key that holds it.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(errors) = crate::config::Config::from_toml(text) {
        assert!(!errors.0.is_empty());
        for e in &errors.0 {
            assert!(!e.key.is_empty() && !e.message.is_empty(), "{e:?}");
        }
    }
}

/// CSV and JSON imports of keyword tables and hash banks: what parses and builds writes back and
/// parses again to the same entries.
pub fn csv_import(data: &[u8]) {
    for parsed in [table::parse_csv(data), table::parse_json(data)] {
        let Ok(entries) = parsed else { continue };
        assert!(entries.len() <= table::MAX_ENTRIES);
        if CustomTable::build(entries.clone()).is_ok() {
            let again = table::parse_csv(&table::to_csv(&entries)).expect("written CSV parses");
            assert_eq!(again, entries, "keyword CSV round trip");
        }
    }
    for csv in [true, false] {
        let Ok(entries) = bank::parse_entries(data, csv) else {
            continue;
        };
        if let Ok(built) = Bank::build(entries.clone()) {
            let json = serde_json::to_vec(built.entries()).expect("entries serialize");
            let again = bank::parse_entries(&json, false).expect("written JSON parses");
            assert_eq!(again, built.entries(), "bank JSON round trip");
        }
    }
}

/// The media URL guard: whatever it lets through is an http(s) URL whose literal host, if any,
/// is none of the addresses that must never be fetched, judged here independently of the guard.
pub fn url_guard(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(url) = url::Url::parse(text) else {
        return;
    };
    if Guard::new(Vec::new()).check_url(&url).is_err() {
        return;
    }
    assert!(matches!(url.scheme(), "http" | "https"), "{url}");
    let literal = match url.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
        Some(url::Host::Domain(_)) => return,
        None => panic!("allowed without a host: {url}"),
    };
    assert!(!never_fetched(literal), "allowed {literal} in {url}");
}

/// Loopback, private, link-local, unspecified, broadcast, shared (CGNAT) and unique-local
/// addresses, and IPv4 ones written as IPv4-mapped IPv6.
fn never_fetched(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return never_fetched(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
        }
    }
}

/// The request framing guard under hyper: however the bytes are split into reads, it sees the
/// same requests and changes the same bytes; it changes at most one byte (the last of a refused
/// head), and never refuses a stream that has no Transfer-Encoding header at all; and its quick
/// judgement of a usual head agrees with httparse wherever httparse accepts the head.
pub fn request_framing(data: &[u8]) {
    use crate::transport::framing::Framing;
    let run = |step: usize| {
        let mut f = Framing::default();
        let mut out = data.to_vec();
        for piece in out.chunks_mut(step.max(1)) {
            f.inspect(piece);
        }
        (out, f.refused())
    };
    let (whole, refused) = run(data.len());
    let step = data.first().map_or(1, |&b| usize::from(b % 16) + 1);
    for split in [run(1), run(step)] {
        assert_eq!(split, (whole.clone(), refused), "reads split differently");
    }
    let changed = whole.iter().zip(data).filter(|(a, b)| a != b).count();
    assert!(
        changed as u64 == refused && refused <= 1,
        "{changed} bytes changed"
    );
    if let Err(e) = crate::transport::framing::quick_judgement_agrees(data) {
        panic!("the quick head judgement disagrees: {e}");
    }
    let lower = data.to_ascii_lowercase();
    if !lower.windows(17).any(|w| w == b"transfer-encoding") {
        assert_eq!(refused, 0, "refused without Transfer-Encoding");
    }
}

/// Multipart uploads (`/wxa/img_sec_check`), with the boundary `B`: whatever the body, the same
/// answer however it is framed (whole, in 1-byte and in 7-byte frames); a file that comes out is
/// non-empty, within the limit, and a piece of the body.
pub fn multipart_upload(data: &[u8]) {
    use futures_util::FutureExt;

    use crate::transport::multipart::{UploadLimits, file_part};

    let limits = UploadLimits {
        file_bytes: 4096,
        max_parts: 8,
    };
    let run = |frame: usize| {
        let frames: Vec<Result<bytes::Bytes, std::io::Error>> = data
            .chunks(frame)
            .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
            .collect();
        file_part(
            Some("multipart/form-data; boundary=B"),
            futures_util::stream::iter(frames),
            "media",
            limits,
        )
        .now_or_never()
        .expect("a ready stream never waits")
    };
    let whole = run(data.len().max(1));
    assert_eq!(run(1), whole, "1-byte frames");
    assert_eq!(run(7), whole, "7-byte frames");
    if let Ok(file) = whole {
        assert!(!file.is_empty() && file.len() as u64 <= limits.file_bytes);
        assert!(
            data.windows(file.len()).any(|w| w == &file[..]),
            "the file is a piece of the body"
        );
    }
}

/// Text embedded in image files (`media/meta.rs`) and format sniffing (`media/sniff.rs`): the
/// walks never panic and keep to their bounds (at most [`MAX_TEXTS`] texts, none empty, about
/// [`MAX_TOTAL_BYTES`] in all), and a file sniffed as a format stays that format whatever
/// follows what the sniffer read.
///
/// [`MAX_TEXTS`]: crate::media::meta::MAX_TEXTS
/// [`MAX_TOTAL_BYTES`]: crate::media::meta::MAX_TOTAL_BYTES
pub fn media_meta(data: &[u8]) {
    use crate::media::meta::{MAX_TEXTS, MAX_TOTAL_BYTES, embedded_text};
    use crate::media::sniff::{Format, identify};

    if let Some(format) = identify(data) {
        let mut longer = data.to_vec();
        longer.extend_from_slice(&[0u8; 32]);
        assert_eq!(
            identify(&longer),
            Some(format),
            "more bytes changed the format"
        );
    }
    for format in [Format::Png, Format::Jpeg, Format::Gif, Format::Webp] {
        let texts = embedded_text(data, format);
        assert!(texts.len() <= MAX_TEXTS, "{} texts", texts.len());
        assert!(texts.iter().all(|t| !t.is_empty()), "an empty text");
        let total: usize = texts.iter().map(String::len).sum();
        // The last text may cross the total by at most its own length, itself bounded.
        assert!(total <= 2 * MAX_TOTAL_BYTES, "{total} bytes of text");
    }
}

/// Audio containers (`media/audio.rs`): every format's probe answers a duration that is a
/// finite, non-negative number of seconds, or an error that says why; never a panic.
pub fn audio_probe(data: &[u8]) {
    use crate::media::audio::probe;
    use crate::media::sniff::Format;

    // libFuzzer's panic hook aborts on every panic, even one caught where it happens; the probe
    // catches its demuxer's own (symphonia's), so the default hook goes back. A panic that
    // escapes the probe still ends the run: the harness aborts on it.
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| drop(std::panic::take_hook()));

    for format in [
        Format::Mp3,
        Format::Aac,
        Format::Ac3,
        Format::Wma,
        Format::Flac,
        Format::Ogg,
        Format::Wav,
    ] {
        match probe(data, format) {
            Ok(info) => assert!(
                info.duration_secs.is_finite() && info.duration_secs >= 0.0,
                "{format:?}: {info:?}"
            ),
            Err(why) => assert!(!why.is_empty(), "{format:?}: an empty error"),
        }
    }
}

/// What a push receiver answers (`jobs/fetch.rs`, through the HTTP client): a push counts as
/// delivered exactly when the answer's status line is a 2xx one, whatever follows; any other
/// answer (malformed, cut short, another status) is a failed attempt, never a panic or a hang.
pub fn push_answer(data: &[u8]) {
    use std::io::{Read, Write};
    use std::sync::OnceLock;

    use crate::jobs::fetch::{FetchLimits, Fetcher};
    use crate::jobs::guard::Guard;
    use crate::jobs::push::Signed;

    static CLIENT: OnceLock<(tokio::runtime::Runtime, Fetcher)> = OnceLock::new();
    let (runtime, fetcher) = CLIENT.get_or_init(|| {
        let limits = FetchLimits {
            connect_timeout: std::time::Duration::from_secs(1),
            fetch_timeout: std::time::Duration::from_secs(2),
            push_timeout: std::time::Duration::from_secs(2),
            max_bytes: 1 << 20,
        };
        let guard = Guard::new(vec!["127.0.0.0/8".parse().expect("a network")]);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        (runtime, Fetcher::new(guard, &limits).expect("a fetcher"))
    });
    // A receiver of its own for each answer (a fresh port: no pooled connection carries one
    // answer over to the next push): it reads the request's head, answers the input, closes.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let url = url::Url::parse(&format!(
        "http://{}/push?app=1",
        listener.local_addr().expect("its address")
    ))
    .expect("a URL");
    let answer = data.to_vec();
    let receiver = std::thread::spawn(move || {
        let Ok((mut stream, _)) = listener.accept() else {
            return;
        };
        let _ = stream.set_read_timeout(Some(std::time::Duration::from_millis(500)));
        let mut request = Vec::new();
        let mut buf = [0u8; 4096];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => request.extend_from_slice(&buf[..n]),
            }
        }
        let _ = stream.write_all(&answer);
    });
    let signed = Signed {
        body: b"{}".to_vec(),
        content_type: "application/json",
        query: "signature=s&timestamp=1&nonce=n".into(),
    };
    let outcome = runtime.block_on(fetcher.push(&url, &signed));
    let _ = receiver.join();
    // The status line: the first line after any empty ones, without its CR.
    let status_line = data
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .find(|l| !l.is_empty())
        .unwrap_or_default();
    let mut words = status_line.split(|&b| b == b' ');
    let version = words.next().unwrap_or_default();
    let code = words.next().unwrap_or_default();
    let two_xx = (version == b"HTTP/1.1" || version == b"HTTP/1.0")
        && code.len() == 3
        && code[0] == b'2'
        && code.iter().all(u8::is_ascii_digit);
    if let Ok(status) = outcome {
        assert!((200..300).contains(&status), "delivered with {status}");
        assert!(
            two_xx,
            "delivered on {:?}",
            String::from_utf8_lossy(status_line)
        );
    }
}

/// Replies from Redis as the shared backend decodes them (`state/redis.rs`, `jobs/shared.rs`,
/// `review/shared.rs`): any reply the protocol parser yields converts into each shape the code
/// reads, or fails as an error; job records, review items and scripts' refusals decode or are
/// refused; never a panic.
pub fn redis_replies(data: &[u8]) {
    use redis::FromRedisValue;
    use redis::streams::{StreamAutoClaimReply, StreamReadReply};

    fn shape<T: FromRedisValue>(value: &redis::Value) {
        let _ = T::from_redis_value(value.clone());
    }

    if let Ok(value) = redis::parse_redis_value(data) {
        shape::<(Option<u64>, Option<u64>)>(&value);
        shape::<(i64, i64)>(&value);
        shape::<(i64, u64)>(&value);
        shape::<(Option<f64>, Option<u64>)>(&value);
        shape::<Option<u64>>(&value);
        shape::<Option<Vec<u8>>>(&value);
        shape::<Vec<Option<Vec<u8>>>>(&value);
        shape::<Vec<String>>(&value);
        shape::<StreamAutoClaimReply>(&value);
        shape::<StreamReadReply>(&value);
        if let Ok(values) = Vec::<Option<String>>::from_redis_value(value.clone()) {
            let _ = crate::review::shared::assemble(&values);
        }
        if let Ok(answer) = Vec::<String>::from_redis_value(value) {
            let _ = crate::review::shared::refusal(&answer);
        }
    }
    // A record read back: a job, a review item (with its claim and decision beside it).
    let _ = serde_json::from_slice::<crate::jobs::store::Job>(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let mut fields = text.splitn(3, '\u{1}').map(|f| Some(f.to_owned()));
        let values: Vec<Option<String>> = (0..3).map(|_| fields.next().flatten()).collect();
        let _ = crate::review::shared::assemble(&values);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The oracle the URL property judges by knows the addresses it must.
    #[test]
    fn the_independent_oracle_knows_the_forbidden_addresses() {
        for bad in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "0.1.2.3",
            "100.64.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "::ffff:10.0.0.1",
            "fc00::1",
            "fe80::1",
        ] {
            assert!(never_fetched(bad.parse().unwrap()), "{bad}");
        }
        for good in ["8.8.8.8", "1.1.1.1", "100.128.0.1", "2001:4860:4860::8888"] {
            assert!(!never_fetched(good.parse().unwrap()), "{good}");
        }
    }
}
