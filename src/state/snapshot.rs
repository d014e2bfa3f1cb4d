//! An app's counters as the flush sees them ([`Snapshot`]), and how they are stored: in
//! [`SHARDS`] values, each holding every app whose appid hashes there, in a compact binary form.
//! A flush rewrites the shards that hold an app whose counters changed, so 10,000 busy apps cost
//! 256 small rewrites a second rather than 10,000 B-tree inserts, and one busy app costs one.
//!
//! A shard's value: a format byte ([`FORMAT`]); the metered APIs its quota words are in (a
//! count, then each name, length-prefixed), so that an API added later reads as unused; then one
//! record per app: the appid (length-prefixed), its quota words, the reset allowance word, both
//! token lineages' epochs (a tag: none, current only, current and previous; then two words), and
//! the forced-refresh day, count and time. Integers are little-endian.

use std::collections::HashMap;
use std::sync::PoisonError;

use super::AppRecords;
use crate::limits::Metered;
use crate::token::{Epochs, Forced};

/// How many values the counters are spread over.
pub const SHARDS: usize = 256;

/// The format byte of a shard value.
const FORMAT: u8 = 1;

/// The shard `appid` is stored in: FNV-1a, fixed here so that it never changes between builds.
pub fn shard_of(appid: &str) -> usize {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in appid.bytes() {
        hash = (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193);
    }
    hash as usize % SHARDS
}

/// The key a shard is stored under.
pub fn shard_key(shard: usize) -> String {
    format!("{shard:03}")
}

/// An app's counters: what a flush compares with what it last wrote (no allocation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Snapshot {
    pub quota: [u64; Metered::ALL.len()],
    pub resets: u64,
    pub epochs: [Option<Epochs>; 2],
    pub forced: Forced,
}

impl Snapshot {
    /// The counters of `records` now.
    pub fn of(records: &AppRecords) -> Snapshot {
        let tokens = *records
            .tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        Snapshot {
            quota: Metered::ALL.map(|api| records.quota.word(api)),
            resets: records.quota.resets_word(),
            epochs: tokens.epochs,
            forced: tokens.forced,
        }
    }

    /// Puts these counters back into `records`.
    pub fn restore(&self, records: &AppRecords) {
        for api in Metered::ALL {
            records.quota.set_word(api, self.quota[api.index()]);
        }
        records.quota.set_resets_word(self.resets);
        let mut tokens = records
            .tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        tokens.epochs = self.epochs;
        tokens.forced = self.forced;
    }
}

/// A shard's value holding `apps`.
pub fn encode<'a>(apps: impl IntoIterator<Item = (&'a str, &'a Snapshot)>) -> Vec<u8> {
    let mut out = vec![FORMAT, Metered::ALL.len() as u8];
    for api in Metered::ALL {
        out.push(api.as_str().len() as u8);
        out.extend_from_slice(api.as_str().as_bytes());
    }
    for (appid, s) in apps {
        // Appids are validated to 32 characters at most; a longer key could not be read back.
        let Ok(len) = u8::try_from(appid.len()) else {
            tracing::error!(appid, "appid too long to store its counters; skipped");
            continue;
        };
        out.push(len);
        out.extend_from_slice(appid.as_bytes());
        for word in s.quota {
            out.extend_from_slice(&word.to_le_bytes());
        }
        out.extend_from_slice(&s.resets.to_le_bytes());
        for epochs in s.epochs {
            let (tag, current, previous) = match epochs {
                None => (0u8, 0, 0),
                Some(Epochs {
                    current,
                    previous: None,
                }) => (1, current, 0),
                Some(Epochs {
                    current,
                    previous: Some(p),
                }) => (2, current, p),
            };
            out.push(tag);
            out.extend_from_slice(&current.to_le_bytes());
            out.extend_from_slice(&previous.to_le_bytes());
        }
        out.extend_from_slice(&s.forced.day.to_le_bytes());
        out.extend_from_slice(&s.forced.count.to_le_bytes());
        out.extend_from_slice(&s.forced.last_ms.to_le_bytes());
    }
    out
}

/// Why a stored shard could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("unknown format {0}")]
    Format(u8),
    #[error("cut short at byte {0}")]
    Short(usize),
    #[error("an appid or API name is not UTF-8 at byte {0}")]
    Text(usize),
    #[error("unknown token epochs tag {tag} at byte {at}")]
    Tag { tag: u8, at: usize },
}

/// Reads a value a step at a time.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or(DecodeError::Short(self.at))?;
        let taken = &self.bytes[self.at..end];
        self.at = end;
        Ok(taken)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut a = [0; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn text(&mut self) -> Result<&'a str, DecodeError> {
        let at = self.at;
        let len = usize::from(self.u8()?);
        std::str::from_utf8(self.take(len)?).map_err(|_| DecodeError::Text(at))
    }
}

/// The apps a shard's value holds.
pub fn decode(bytes: &[u8]) -> Result<HashMap<String, Snapshot>, DecodeError> {
    let mut r = Reader { bytes, at: 0 };
    let format = r.u8()?;
    if format != FORMAT {
        return Err(DecodeError::Format(format));
    }
    // Where each stored quota word goes: an API this build does not know is skipped.
    let mut apis = Vec::new();
    for _ in 0..r.u8()? {
        let name = r.text()?;
        apis.push(Metered::ALL.into_iter().find(|m| m.as_str() == name));
    }
    let mut apps = HashMap::new();
    while r.at < bytes.len() {
        let appid = r.text()?.to_owned();
        let mut s = Snapshot::default();
        for api in &apis {
            let word = r.u64()?;
            if let Some(api) = api {
                s.quota[api.index()] = word;
            }
        }
        s.resets = r.u64()?;
        for epochs in &mut s.epochs {
            let at = r.at;
            let tag = r.u8()?;
            let (current, previous) = (r.u64()?, r.u64()?);
            *epochs = match tag {
                0 => None,
                1 => Some(Epochs {
                    current,
                    previous: None,
                }),
                2 => Some(Epochs {
                    current,
                    previous: Some(previous),
                }),
                tag => return Err(DecodeError::Tag { tag, at }),
            };
        }
        s.forced = Forced {
            day: r.u32()?,
            count: r.u32()?,
            last_ms: r.u64()?,
        };
        apps.insert(appid, s);
    }
    Ok(apps)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn epochs() -> impl Strategy<Value = Option<Epochs>> {
        prop_oneof![
            Just(None),
            (any::<u64>(), proptest::option::of(any::<u64>()))
                .prop_map(|(current, previous)| Some(Epochs { current, previous })),
        ]
    }

    fn snapshot() -> impl Strategy<Value = Snapshot> {
        (
            any::<[u64; Metered::ALL.len()]>(),
            any::<u64>(),
            epochs(),
            epochs(),
            (any::<u32>(), any::<u32>(), any::<u64>()),
        )
            .prop_map(|(quota, resets, e0, e1, (day, count, last_ms))| Snapshot {
                quota,
                resets,
                epochs: [e0, e1],
                forced: Forced {
                    day,
                    count,
                    last_ms,
                },
            })
    }

    proptest! {
        #[test]
        fn every_field_of_every_app_reads_back(
            apps in proptest::collection::hash_map("[a-z0-9]{1,32}", snapshot(), 0..40)
        ) {
            let bytes = encode(apps.iter().map(|(k, v)| (k.as_str(), v)));
            prop_assert_eq!(decode(&bytes).unwrap(), apps);
        }

        #[test]
        fn a_value_cut_short_is_refused_not_misread(
            apps in proptest::collection::hash_map("[a-z0-9]{1,32}", snapshot(), 1..5),
            cut in 1usize..400,
        ) {
            let bytes = encode(apps.iter().map(|(k, v)| (k.as_str(), v)));
            let cut = bytes.len().saturating_sub(cut);
            {
                // Either refused, or (cut at a record's end) the records before the cut, exactly.
                match decode(&bytes[..cut]) {
                    Err(_) => {}
                    Ok(read) => {
                        prop_assert!(read.len() < apps.len());
                        for (appid, s) in read {
                            prop_assert_eq!(apps.get(&appid), Some(&s));
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn an_api_unknown_to_this_build_is_skipped_and_a_missing_one_reads_as_unused() {
        // A value written by a build metering one API named `later` besides msg_sec_check.
        let mut bytes = vec![FORMAT, 2];
        for name in ["later", "msg_sec_check"] {
            bytes.push(name.len() as u8);
            bytes.extend_from_slice(name.as_bytes());
        }
        bytes.push(3);
        bytes.extend_from_slice(b"wx1");
        bytes.extend_from_slice(&99u64.to_le_bytes());
        bytes.extend_from_slice(&7u64.to_le_bytes());
        bytes.extend_from_slice(&5u64.to_le_bytes());
        for _ in 0..2 {
            bytes.push(0);
            bytes.extend_from_slice(&[0; 16]);
        }
        bytes.extend_from_slice(&[0; 16]);
        let read = decode(&bytes).unwrap();
        let s = read["wx1"];
        assert_eq!(s.quota[Metered::MsgSecCheck.index()], 7);
        assert_eq!(s.quota[Metered::MediaCheckAsync.index()], 0);
        assert_eq!(s.resets, 5);
        assert_eq!(decode(&[9]), Err(DecodeError::Format(9)));
    }

    #[test]
    fn shards_are_fixed_and_spread() {
        // Fixed: a stored shard must be found again by every later build.
        assert_eq!(
            shard_of("wx0000000000000000"),
            shard_of("wx0000000000000000")
        );
        assert_eq!(shard_of(""), 0x811c_9dc5 % SHARDS);
        let mut counts = [0usize; SHARDS];
        for i in 0..10_000 {
            counts[shard_of(&format!("wx{i:016x}"))] += 1;
        }
        // 39 apps a shard on average: none empty, none with more than three times that.
        assert!(counts.iter().all(|&c| c > 0 && c < 120), "{counts:?}");
    }
}
