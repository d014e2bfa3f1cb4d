//! Operators' black and white lists: entries by type and value, parsed from JSON or CSV,
//! validated, and indexed for lookups.

use serde::{Deserialize, Serialize};

use super::model::{MAX_RANK, Subject};

/// Which list an entry is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ListKind {
    Black,
    White,
}

/// What an entry matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryType {
    Openid,
    Mobile,
    Ip,
}

impl EntryType {
    pub fn parse(s: &str) -> Option<EntryType> {
        match s {
            "openid" => Some(EntryType::Openid),
            "mobile" => Some(EntryType::Mobile),
            "ip" => Some(EntryType::Ip),
            _ => None,
        }
    }
}

/// One list entry, as stored and as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListEntry {
    pub list: ListKind,
    #[serde(rename = "type")]
    pub kind: EntryType,
    pub value: String,
    pub rank: u8,
    #[serde(default)]
    pub note: String,
}

/// An entry as an operator writes it: `rank` may be left out.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    list: ListKind,
    #[serde(rename = "type")]
    kind: EntryType,
    value: String,
    #[serde(default)]
    rank: Option<u8>,
    #[serde(default)]
    note: String,
}

/// Entries per app at most.
pub const MAX_LIST_ENTRIES: usize = 100_000;
/// Longest note, in characters.
const MAX_NOTE_CHARS: usize = 256;

/// A refused list change, naming the entry (1-based, as the request numbered them).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ListError {
    #[error("entry {0}: {1}")]
    Entry(usize, String),
    #[error("{0}")]
    Format(String),
    #[error("more than {MAX_LIST_ENTRIES} entries")]
    TooMany,
}

fn check_entry(i: usize, raw: RawEntry) -> Result<ListEntry, ListError> {
    let bad = |why: String| ListError::Entry(i + 1, why);
    let value = raw.value.trim().to_owned();
    match raw.kind {
        EntryType::Openid => {
            crate::ids::check_openid(&value).map_err(|e| bad(format!("`value`: {e}")))?
        }
        EntryType::Mobile => {
            let digits = value.strip_prefix('+').unwrap_or(&value);
            if digits.is_empty() || digits.len() > 20 || !digits.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(bad(
                    "`value`: a mobile number is up to 20 digits, optionally after `+`".into(),
                ));
            }
        }
        EntryType::Ip => {
            if value.parse::<std::net::IpAddr>().is_err() {
                return Err(bad(format!("`value`: {value:?} is not an IP address")));
            }
        }
    }
    let rank = raw.rank.unwrap_or(match raw.list {
        ListKind::Black => MAX_RANK,
        ListKind::White => 0,
    });
    if rank > MAX_RANK {
        return Err(bad(format!("`rank` must be 0 to {MAX_RANK}")));
    }
    if raw.note.chars().count() > MAX_NOTE_CHARS {
        return Err(bad(format!(
            "`note` is longer than {MAX_NOTE_CHARS} characters"
        )));
    }
    let value = match raw.kind {
        // One spelling per address (`::ffff:1.2.3.4` stays as written: a different address).
        EntryType::Ip => value
            .parse::<std::net::IpAddr>()
            .map_or(value, |ip| ip.to_string()),
        _ => value,
    };
    Ok(ListEntry {
        list: raw.list,
        kind: raw.kind,
        value,
        rank,
        note: raw.note,
    })
}

/// Parses entries: a JSON array (or one object), or CSV with the header
/// `list,type,value,rank,note` (rank and note may be empty).
pub fn parse_entries(bytes: &[u8], csv: bool) -> Result<Vec<ListEntry>, ListError> {
    let raws: Vec<RawEntry> = if csv {
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_reader(bytes);
        let headers = reader
            .headers()
            .map_err(|e| ListError::Format(format!("CSV: {e}")))?
            .clone();
        let wanted = ["list", "type", "value", "rank", "note"];
        if headers.iter().collect::<Vec<_>>() != wanted {
            return Err(ListError::Format(
                "CSV header must be `list,type,value,rank,note`".into(),
            ));
        }
        let mut out = Vec::new();
        for (i, row) in reader.records().enumerate() {
            let row = row.map_err(|e| ListError::Entry(i + 1, format!("CSV: {e}")))?;
            let field = |k: usize| row.get(k).unwrap_or("");
            let list = match field(0) {
                "black" => ListKind::Black,
                "white" => ListKind::White,
                other => {
                    return Err(ListError::Entry(
                        i + 1,
                        format!("`list` must be black or white, not {other:?}"),
                    ));
                }
            };
            let kind = EntryType::parse(field(1)).ok_or_else(|| {
                ListError::Entry(i + 1, "`type` must be openid, mobile or ip".into())
            })?;
            let rank = match field(3) {
                "" => None,
                r => Some(r.parse::<u8>().map_err(|_| {
                    ListError::Entry(i + 1, format!("`rank` must be 0 to {MAX_RANK}"))
                })?),
            };
            out.push(RawEntry {
                list,
                kind,
                value: field(2).to_owned(),
                rank,
                note: field(4).to_owned(),
            });
            if out.len() > MAX_LIST_ENTRIES {
                return Err(ListError::TooMany);
            }
        }
        out
    } else {
        let v: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| ListError::Format(format!("JSON: {e}")))?;
        let items = match v {
            serde_json::Value::Array(items) => items,
            one @ serde_json::Value::Object(_) => vec![one],
            _ => {
                return Err(ListError::Format(
                    "expected a JSON array of entries (or one entry)".into(),
                ));
            }
        };
        if items.len() > MAX_LIST_ENTRIES {
            return Err(ListError::TooMany);
        }
        items
            .into_iter()
            .enumerate()
            .map(|(i, item)| {
                serde_json::from_value(item).map_err(|e| ListError::Entry(i + 1, e.to_string()))
            })
            .collect::<Result<_, _>>()?
    };
    raws.into_iter()
        .enumerate()
        .map(|(i, r)| check_entry(i, r))
        .collect()
}

/// Writes entries as CSV with the header `parse_entries` reads.
pub fn to_csv(entries: &[ListEntry]) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record(["list", "type", "value", "rank", "note"]);
    for e in entries {
        let list = match e.list {
            ListKind::Black => "black",
            ListKind::White => "white",
        };
        let kind = match e.kind {
            EntryType::Openid => "openid",
            EntryType::Mobile => "mobile",
            EntryType::Ip => "ip",
        };
        let _ = w.write_record([list, kind, &e.value, &e.rank.to_string(), &e.note]);
    }
    w.into_inner().unwrap_or_default()
}

/// One app's lists, indexed for lookups.
#[derive(Debug, Default)]
pub struct RiskLists {
    by_key: std::collections::HashMap<(EntryType, String), ListEntry>,
}

impl RiskLists {
    /// Builds the lists; a later entry with the same type and value replaces an earlier one.
    pub fn build(entries: Vec<ListEntry>) -> Result<RiskLists, ListError> {
        if entries.len() > MAX_LIST_ENTRIES {
            return Err(ListError::TooMany);
        }
        let mut by_key = std::collections::HashMap::with_capacity(entries.len());
        for e in entries {
            by_key.insert((e.kind, e.value.clone()), e);
        }
        Ok(RiskLists { by_key })
    }

    /// Every entry, in a stable order (type, then value).
    pub fn entries(&self) -> Vec<ListEntry> {
        let mut all: Vec<ListEntry> = self.by_key.values().cloned().collect();
        all.sort_by(|a, b| (a.kind, &a.value).cmp(&(b.kind, &b.value)));
        all
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// The entry deciding for this user: openid, then mobile number, then client IP.
    pub fn matching(&self, who: &Subject<'_>) -> Option<&ListEntry> {
        let get = |kind, value: &str| self.by_key.get(&(kind, value.to_owned()));
        get(EntryType::Openid, who.openid)
            .or_else(|| who.mobile.and_then(|m| get(EntryType::Mobile, m.trim())))
            .or_else(|| {
                who.client_ip.and_then(|ip| {
                    let ip = ip.trim();
                    let canonical = ip.parse::<std::net::IpAddr>().map(|a| a.to_string());
                    get(EntryType::Ip, canonical.as_deref().unwrap_or(ip))
                })
            })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests fail loudly by design

    use super::*;
    use crate::risk::model::tests::who;

    #[test]
    fn lists_parse_validate_and_pick_the_most_specific_entry() {
        let json = br#"[
            {"list":"black","type":"ip","value":"10.0.0.1","note":"proxy farm"},
            {"list":"white","type":"openid","value":"vip","note":"staff"},
            {"list":"black","type":"mobile","value":"+8613800000000","rank":3}
        ]"#;
        let entries = parse_entries(json, false).unwrap();
        assert_eq!(entries[0].rank, 4);
        assert_eq!(entries[1].rank, 0);
        let csv = to_csv(&entries);
        assert_eq!(parse_entries(&csv, true).unwrap(), entries);
        let lists = RiskLists::build(entries).unwrap();
        // The openid's white entry beats the IP's black one.
        assert_eq!(lists.matching(&who("vip")).unwrap().rank, 0);
        assert_eq!(lists.matching(&who("other")).unwrap().rank, 4);
        let mut m = who("other");
        m.mobile = Some("+8613800000000");
        assert_eq!(lists.matching(&m).unwrap().rank, 3);
        m.client_ip = Some("10.0.0.2");
        m.mobile = None;
        assert!(lists.matching(&m).is_none());

        for (bad, why) in [
            (
                &br#"[{"list":"grey","type":"ip","value":"1.1.1.1"}]"#[..],
                "entry 1",
            ),
            (
                br#"[{"list":"black","type":"ip","value":"1.1.1"}]"#,
                "not an IP",
            ),
            (
                br#"[{"list":"black","type":"openid","value":"a b"}]"#,
                "openid",
            ),
            (
                br#"[{"list":"black","type":"mobile","value":"12ab"}]"#,
                "mobile",
            ),
            (
                br#"[{"list":"black","type":"ip","value":"1.1.1.1","rank":5}]"#,
                "rank",
            ),
            (br#"{"nope":1}"#, "entry 1"),
            (b"42", "expected"),
        ] {
            let e = parse_entries(bad, false).unwrap_err().to_string();
            assert!(e.contains(why), "{e}");
        }
        let e = parse_entries(b"list,type,value\nblack,ip,1.1.1.1\n", true).unwrap_err();
        assert!(e.to_string().contains("header"), "{e}");
    }
}
