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
