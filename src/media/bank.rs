//! Hash banks: lists of known-bad (or known-good) media, one global and one per app.
//!
//! An image entry is a PDQ hash and matches every image within the configured Hamming distance
//! (`media.pdq_distance`, customary 31); an audio entry is the SHA-256 of the file and matches
//! that exact file. Each entry carries the `label` and `suggest` a match reports, and an optional
//! note for operators. A bank is replaced whole when it changes (validated all-or-nothing, like
//! keyword tables), so a check sees one version from start to end.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::pdq::PdqHash;
use super::sniff::MediaKind;
use crate::engine::Suggest;

/// The scope name of the global bank (an appid names an app's own).
pub const GLOBAL: &str = "global";
/// Most entries in one bank.
pub const MAX_ENTRIES: usize = 100_000;
/// Longest note, in characters.
pub const MAX_NOTE_CHARS: usize = 200;
/// Labels a media entry may carry (SPEC §4's media set, less 100 "normal").
pub const LABELS: [u32; 5] = [10001, 20001, 20002, 20006, 21000];

/// One entry as operators write it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BankEntry {
    /// 64 hex digits: a PDQ hash for an image, the file's SHA-256 for audio.
    pub hash: String,
    /// `image` or `audio`.
    pub kind: MediaKind,
    pub label: u32,
    /// `risky`, `review` or `pass` (a pass entry marks known-good media).
    pub suggest: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Why a bank change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BankError {
    #[error("a bank holds at most {MAX_ENTRIES} entries; this one would have {0}")]
    TooMany(usize),
    #[error("entry {index} ({hash:?}): {reason}")]
    Invalid {
        index: usize,
        hash: String,
        reason: String,
    },
    #[error("{0}")]
    Format(String),
}

impl BankEntry {
    /// The suggest a match reports (checked when the bank was built; `review` for an entry
    /// never checked).
    pub fn suggested(&self) -> Suggest {
        Suggest::parse(&self.suggest).unwrap_or(Suggest::Review)
    }

    /// Checks and normalizes (lowercase hex) one entry.
    fn validated(mut self, index: usize) -> Result<BankEntry, BankError> {
        let invalid = |hash: &str, reason: &str| BankError::Invalid {
            index,
            hash: hash.chars().take(70).collect(),
            reason: reason.to_owned(),
        };
        self.hash = self.hash.trim().to_ascii_lowercase();
        if self.hash.len() != 64 || !self.hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid(&self.hash, "hash must be 64 hex digits"));
        }
        if !LABELS.contains(&self.label) {
            return Err(invalid(
                &self.hash,
                "label must be one of 10001, 20001, 20002, 20006, 21000",
            ));
        }
        if !matches!(self.suggest.as_str(), "risky" | "review" | "pass") {
            return Err(invalid(&self.hash, "suggest must be risky, review or pass"));
        }
        if self
            .note
            .as_ref()
            .is_some_and(|n| n.chars().count() > MAX_NOTE_CHARS)
        {
            return Err(invalid(&self.hash, "note is longer than 200 characters"));
        }
        Ok(self)
    }
}

/// A bank ready for matching.
#[derive(Debug, Default)]
pub struct Bank {
    entries: Vec<BankEntry>,
    images: Vec<(PdqHash, usize)>,
    audio: HashMap<[u8; 32], usize>,
}

/// One entry that matched, with how closely (0 for exact).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BankMatch<'a> {
    pub entry: &'a BankEntry,
    pub distance: u32,
}

fn hex32(text: &str) -> Option<[u8; 32]> {
    PdqHash::from_hex(text).map(|h| h.0)
}

impl Bank {
    /// Validates every entry (all or nothing); a later entry with the same kind and hash
    /// replaces an earlier one.
    pub fn build(entries: Vec<BankEntry>) -> Result<Bank, BankError> {
        if entries.len() > MAX_ENTRIES {
            return Err(BankError::TooMany(entries.len()));
        }
        let mut kept: Vec<BankEntry> = Vec::with_capacity(entries.len());
        let mut at: HashMap<(MediaKind, String), usize> = HashMap::new();
        for (index, e) in entries.into_iter().enumerate() {
            let e = e.validated(index)?;
            match at.get(&(e.kind, e.hash.clone())) {
                Some(&i) => kept[i] = e,
                None => {
                    at.insert((e.kind, e.hash.clone()), kept.len());
                    kept.push(e);
                }
            }
        }
        let mut bank = Bank {
            entries: kept,
            ..Bank::default()
        };
        for (i, e) in bank.entries.iter().enumerate() {
            // Validated above: 64 hex digits.
            let Some(bytes) = hex32(&e.hash) else {
                continue;
            };
            match e.kind {
                MediaKind::Image => bank.images.push((PdqHash(bytes), i)),
                MediaKind::Audio => {
                    bank.audio.insert(bytes, i);
                }
            }
        }
        Ok(bank)
    }

    pub fn entries(&self) -> &[BankEntry] {
        &self.entries
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Image entries within `max_distance` of `hash`, closest first.
    pub fn match_image(&self, hash: &PdqHash, max_distance: u32) -> Vec<BankMatch<'_>> {
        self.match_image_any(std::slice::from_ref(hash), max_distance)
    }

    /// Image entries within `max_distance` of any of `hashes` (an image's dihedral variants),
    /// each at its closest, closest first.
    pub fn match_image_any(&self, hashes: &[PdqHash], max_distance: u32) -> Vec<BankMatch<'_>> {
        let mut found: Vec<BankMatch<'_>> = self
            .images
            .iter()
            .filter_map(|(h, i)| {
                let distance = hashes.iter().map(|x| h.distance(x)).min()?;
                (distance <= max_distance).then(|| BankMatch {
                    entry: &self.entries[*i],
                    distance,
                })
            })
            .collect();
        found.sort_by(|a, b| {
            a.distance
                .cmp(&b.distance)
                .then_with(|| a.entry.hash.cmp(&b.entry.hash))
        });
        found
    }

    /// The audio entry for exactly these bytes.
    pub fn match_audio(&self, bytes: &[u8]) -> Option<BankMatch<'_>> {
        let digest: [u8; 32] = Sha256::digest(bytes).into();
        self.audio.get(&digest).map(|i| BankMatch {
            entry: &self.entries[*i],
            distance: 0,
        })
    }
}

/// SHA-256 of a file, as an audio entry's hash.
pub fn content_hash(bytes: &[u8]) -> String {
    PdqHash(Sha256::digest(bytes).into()).to_hex()
}

/// Entries from a JSON array (or one object) or a CSV with the header
/// `hash,kind,label,suggest,note` (`note` optional).
pub fn parse_entries(body: &[u8], csv: bool) -> Result<Vec<BankEntry>, BankError> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace()).copied();
    if !csv && first == Some(b'{') {
        return serde_json::from_slice::<BankEntry>(body)
            .map(|e| vec![e])
            .map_err(|e| BankError::Format(format!("invalid entry JSON: {e}")));
    }
    if !csv && first == Some(b'[') {
        return serde_json::from_slice(body)
            .map_err(|e| BankError::Format(format!("invalid entries JSON: {e}")));
    }
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(body);
    let headers = reader
        .headers()
        .map_err(|e| BankError::Format(format!("CSV header: {e}")))?
        .clone();
    let col = |name: &str| headers.iter().position(|h| h == name);
    let need = |name: &str| {
        col(name)
            .ok_or_else(|| BankError::Format(format!("CSV header must name the column `{name}`")))
    };
    let (h, k, l, s) = (
        need("hash")?,
        need("kind")?,
        need("label")?,
        need("suggest")?,
    );
    let n = col("note");
    let mut out = Vec::new();
    for (index, record) in reader.records().enumerate() {
        let record =
            record.map_err(|e| BankError::Format(format!("CSV row {}: {e}", index + 1)))?;
        let field = |i: usize| record.get(i).unwrap_or("").to_owned();
        let invalid = |reason: &str| BankError::Invalid {
            index,
            hash: field(h),
            reason: reason.to_owned(),
        };
        let kind = match field(k).as_str() {
            "image" => MediaKind::Image,
            "audio" => MediaKind::Audio,
            _ => return Err(invalid("kind must be image or audio")),
        };
        out.push(BankEntry {
            hash: field(h),
            kind,
            label: field(l)
                .parse()
                .map_err(|_| invalid("label must be a number"))?,
            suggest: field(s),
            note: n.map(field).filter(|v| !v.is_empty()),
        });
        if out.len() > MAX_ENTRIES {
            return Err(BankError::TooMany(out.len()));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(hash: &str, kind: MediaKind, suggest: &str) -> BankEntry {
        BankEntry {
            hash: hash.into(),
            kind,
            label: 20002,
            suggest: suggest.into(),
            note: None,
        }
    }

    #[test]
    fn images_match_within_the_distance_and_audio_exactly() {
        let base = PdqHash([0xAA; 32]);
        let mut near = base;
        near.0[0] ^= 0b0000_0111; // 3 bits away
        let mut far = base;
        for b in far.0.iter_mut().take(5) {
            *b ^= 0xFF; // 40 bits away
        }
        let audio = b"RIFF....WAVEfmt some audio";
        let bank = Bank::build(vec![
            entry(&base.to_hex(), MediaKind::Image, "risky"),
            entry(&content_hash(audio), MediaKind::Audio, "review"),
        ])
        .unwrap();
        let m = bank.match_image(&near, 31);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].distance, 3);
        assert!(bank.match_image(&far, 31).is_empty());
        assert_eq!(bank.match_audio(audio).unwrap().entry.suggest, "review");
        assert!(bank.match_audio(b"RIFF....WAVEfmt other audio").is_none());
    }

    #[test]
    fn invalid_entries_are_named_and_duplicates_replace() {
        let h = "A".repeat(64);
        let bad = Bank::build(vec![
            entry(&h, MediaKind::Image, "risky"),
            entry("123", MediaKind::Image, "risky"),
        ])
        .unwrap_err();
        assert_eq!(
            bad.to_string(),
            "entry 1 (\"123\"): hash must be 64 hex digits"
        );
        let mut wrong_label = entry(&h, MediaKind::Image, "risky");
        wrong_label.label = 100;
        assert!(
            Bank::build(vec![wrong_label])
                .unwrap_err()
                .to_string()
                .contains("label")
        );
        assert!(Bank::build(vec![entry(&h, MediaKind::Image, "maybe")]).is_err());
        let bank = Bank::build(vec![
            entry(&h, MediaKind::Image, "risky"),
            entry(&h.to_lowercase(), MediaKind::Image, "pass"),
        ])
        .unwrap();
        assert_eq!(bank.len(), 1);
        assert_eq!(bank.entries()[0].suggest, "pass");
        assert_eq!(bank.entries()[0].hash, h.to_lowercase());
    }

    #[test]
    fn entries_parse_from_json_and_csv() {
        let h = "b".repeat(64);
        let json = format!(
            r#"[{{"hash":"{h}","kind":"image","label":20002,"suggest":"risky","note":"known"}}]"#
        );
        let e = parse_entries(json.as_bytes(), false).unwrap();
        assert_eq!(e[0].note.as_deref(), Some("known"));
        let one = format!(r#"{{"hash":"{h}","kind":"audio","label":20001,"suggest":"review"}}"#);
        assert_eq!(
            parse_entries(one.as_bytes(), false).unwrap()[0].kind,
            MediaKind::Audio
        );
        let csv = format!(
            "hash,kind,label,suggest,note\n{h},image,20006,risky,\n{h},audio,21000,review,a note\n"
        );
        let e = parse_entries(csv.as_bytes(), true).unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].note, None);
        assert_eq!(e[1].note.as_deref(), Some("a note"));
        let e = parse_entries(b"hash,kind,label,suggest\nx,video,1,risky\n", true).unwrap_err();
        assert!(e.to_string().contains("kind must be image or audio"), "{e}");
        assert!(
            parse_entries(b"hash,label\n", true)
                .unwrap_err()
                .to_string()
                .contains("`kind`")
        );
    }
}
