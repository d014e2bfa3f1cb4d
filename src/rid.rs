//! Request ids (`rid`) and v2 `trace_id`s: `xxxxxxxx-xxxxxxxx-xxxxxxxx`, lowercase hex.
//!
//! The first group is the Unix time in seconds. The last two groups are a 64-bit value that is
//! unique within the process: a random per-process 32-bit prefix joined to a 32-bit counter, passed
//! through a bijective mixer (the splitmix64 finalizer) so ids do not look sequential. A bijection
//! of distinct inputs gives distinct outputs, so two ids from one process never repeat unless the
//! counter wraps within one second (4 billion ids); two processes collide only if their random
//! prefixes are equal *and* their counters meet in the same second.

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};

/// A request id, formatted on display.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rid {
    secs: u32,
    unique: u64,
}

impl fmt::Display for Rid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text().as_str())
    }
}

/// A [`Rid`] written out, on the stack: every answer carries one, so it is not formatted through
/// `fmt` into a fresh `String`.
#[derive(Clone, Copy)]
pub struct RidText([u8; 26]);

impl RidText {
    pub fn as_str(&self) -> &str {
        // Only ASCII hex digits and dashes are ever written (see `Rid::text`).
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl Rid {
    /// The id as `xxxxxxxx-xxxxxxxx-xxxxxxxx`.
    pub fn text(&self) -> RidText {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [b'-'; 26];
        let groups = [self.secs, (self.unique >> 32) as u32, self.unique as u32];
        for (g, value) in groups.into_iter().enumerate() {
            let start = g * 9;
            for (i, byte) in out[start..start + 8].iter_mut().enumerate() {
                *byte = HEX[((value >> (28 - 4 * i)) & 0xf) as usize];
            }
        }
        RidText(out)
    }

    /// The id's unique part as a number below 2^53 (exact in JSON, as integer ids should be).
    pub fn number(&self) -> u64 {
        self.unique >> 11
    }
}

/// Makes unique [`Rid`]s.
#[derive(Debug)]
pub struct RidGenerator {
    prefix: u32,
    counter: AtomicU32,
}

impl RidGenerator {
    /// A generator with a random process prefix.
    pub fn new() -> Self {
        let mut buf = [0u8; 4];
        // Without OS randomness ids are still unique within this process; only the cross-process
        // guarantee weakens, which is not worth refusing to start over.
        let _ = getrandom::fill(&mut buf);
        Self::with_prefix(u32::from_le_bytes(buf))
    }

    /// A generator with a fixed prefix (tests).
    pub fn with_prefix(prefix: u32) -> Self {
        Self {
            prefix,
            counter: AtomicU32::new(0),
        }
    }

    /// The next id, stamped with `now_secs`.
    pub fn next(&self, now_secs: u64) -> Rid {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let raw = (u64::from(self.prefix) << 32) | u64::from(n);
        Rid {
            // Past 2106 the first group wraps; the format has only 8 hex digits for it.
            secs: now_secs as u32,
            unique: mix(raw),
        }
    }
}

impl Default for RidGenerator {
    fn default() -> Self {
        Self::new()
    }
}

/// The splitmix64 finalizer: a bijection on u64 (each step is invertible).
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn text_is_the_three_groups_in_hex() {
        let generator = RidGenerator::with_prefix(0x1234_5678);
        for secs in [0, 0x6744_b7a0, u64::from(u32::MAX)] {
            for _ in 0..100 {
                let rid = generator.next(secs);
                let want = format!(
                    "{:08x}-{:08x}-{:08x}",
                    rid.secs,
                    (rid.unique >> 32) as u32,
                    rid.unique as u32
                );
                assert_eq!(rid.text().as_str(), want);
                assert_eq!(rid.to_string(), want);
            }
        }
    }

    #[test]
    fn format_is_three_groups_of_eight_lowercase_hex() {
        let rid = RidGenerator::with_prefix(7).next(0x6744_b7a0);
        let s = rid.to_string();
        assert_eq!(s.len(), 26);
        let groups: Vec<&str> = s.split('-').collect();
        assert_eq!(groups.len(), 3);
        assert_eq!(groups[0], "6744b7a0");
        for g in groups {
            assert_eq!(g.len(), 8);
            assert!(
                g.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            );
        }
    }

    #[test]
    fn ids_are_unique_within_a_second() {
        let generator = RidGenerator::with_prefix(0);
        let ids: HashSet<String> = (0..100_000)
            .map(|_| generator.next(1).to_string())
            .collect();
        assert_eq!(ids.len(), 100_000);
    }

    #[test]
    fn different_prefixes_give_different_ids() {
        let a = RidGenerator::with_prefix(1).next(5);
        let b = RidGenerator::with_prefix(2).next(5);
        assert_ne!(a, b);
    }
}
