//! Per-app custom keyword tables: validation, CSV/JSON parsing, and the compiled form.
//!
//! A table holds up to [`MAX_ENTRIES`] entries, each `keyword` (1–50 characters that normalize to
//! something matchable), `label` (a SPEC label code), `level` (0–100) and `suggest` (`risky`,
//! `review`, `pass`; a pass entry is an allow entry). Validation is all-or-nothing: the first
//! invalid entry, or too many entries, refuses the whole table, and the error names it.

use serde::{Deserialize, Serialize};

use super::matcher::{Matcher, Rule};
use super::normalize::{Normalized, normalize};
use super::{Label, Suggest};

/// Most entries in one app's table.
pub const MAX_ENTRIES: usize = 1000;
/// Longest keyword, in characters.
pub const MAX_KEYWORD_CHARS: usize = 50;

/// One entry as operators write it (JSON or a CSV row).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeywordEntry {
    pub keyword: String,
    pub label: u32,
    pub level: u8,
    pub suggest: String,
}

/// Why a table was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TableError {
    #[error("a table holds at most {MAX_ENTRIES} entries; this one has {0}")]
    TooMany(usize),
    #[error("entry {index} ({keyword:?}): {reason}")]
    Invalid {
        index: usize,
        keyword: String,
        reason: String,
    },
    #[error("{0}")]
    Format(String),
}

/// A validated, compiled table. Immutable: a change builds a new one.
///
/// The matcher keeps every entry as written, in order (its rules are the entries), so listing,
/// exporting and persisting read them back from it: one copy of each keyword in memory, which
/// matters when there are thousands of apps.
#[derive(Debug)]
pub struct CustomTable {
    pub matcher: Matcher,
}

impl CustomTable {
    /// Validates and compiles `entries` (the matcher build is the slow part: call it off the async
    /// workers for large tables).
    pub fn build(entries: Vec<KeywordEntry>) -> Result<CustomTable, TableError> {
        CustomTable::validate(entries)?.compile()
    }

    /// Validates `entries`: the stored form is known from here, before the matcher is built.
    pub fn validate(entries: Vec<KeywordEntry>) -> Result<ValidTable, TableError> {
        if entries.len() > MAX_ENTRIES {
            return Err(TableError::TooMany(entries.len()));
        }
        let mut rules = Vec::with_capacity(entries.len());
        for (index, e) in entries.into_iter().enumerate() {
            let invalid = |reason: &str| TableError::Invalid {
                index,
                keyword: e.keyword.chars().take(MAX_KEYWORD_CHARS + 10).collect(),
                reason: reason.to_owned(),
            };
            let chars = e.keyword.chars().count();
            if e.keyword.trim().is_empty() {
                return Err(invalid("keyword is empty"));
            }
            if chars > MAX_KEYWORD_CHARS {
                return Err(invalid("keyword is longer than 50 characters"));
            }
            let norm = normalize(&e.keyword);
            if norm.text.is_empty() {
                return Err(invalid("keyword has no letters or digits to match"));
            }
            let label = Label::from_code(e.label).ok_or_else(|| {
                invalid("label must be one of 100, 10001, 20001, 20002, 20003, 20006, 20008, 20012, 20013, 21000")
            })?;
            if e.level > 100 {
                return Err(invalid("level must be 0 to 100"));
            }
            let suggest = Suggest::parse(&e.suggest)
                .ok_or_else(|| invalid("suggest must be risky, review or pass"))?;
            rules.push((
                Rule {
                    word: e.keyword,
                    label,
                    suggest,
                    score: e.level,
                },
                norm,
            ));
        }
        Ok(ValidTable { rules })
    }

    /// The entries as written, in order. (Validation made every field round-trip: the label
    /// code, level and suggest string come back as they were given.)
    pub fn entries(&self) -> Vec<KeywordEntry> {
        self.matcher
            .rules()
            .map(|r| written(r.word, r.label, r.score, r.suggest))
            .collect()
    }

    /// The entries as a JSON array (what the embedded store keeps).
    pub fn json(&self) -> Vec<u8> {
        // Serializing plain strings and numbers into memory cannot fail.
        serde_json::to_vec(&self.entries()).unwrap_or_default()
    }

    pub fn len(&self) -> usize {
        self.matcher.rule_count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Heap bytes held (for capacity planning and the scale benchmark).
    pub fn heap_bytes(&self) -> usize {
        self.matcher.heap_bytes()
    }
}

/// An entry as it was written, from its validated parts.
fn written(keyword: &str, label: Label, level: u8, suggest: Suggest) -> KeywordEntry {
    KeywordEntry {
        keyword: keyword.to_owned(),
        label: label.code(),
        level,
        suggest: suggest.as_str().to_owned(),
    }
}

/// A table's entries, validated and not yet compiled.
#[derive(Debug)]
pub struct ValidTable {
    /// Each rule beside its word, normalized (the matcher is built from both).
    rules: Vec<(Rule, Normalized)>,
}

impl ValidTable {
    /// The entries as a JSON array: what [`CustomTable::json`] gives once compiled.
    pub fn json(&self) -> Vec<u8> {
        let entries: Vec<KeywordEntry> = self
            .rules
            .iter()
            .map(|(r, _)| written(&r.word, r.label, r.score, r.suggest))
            .collect();
        serde_json::to_vec(&entries).unwrap_or_default()
    }

    /// Builds the matcher: the slow part.
    pub fn compile(self) -> Result<CustomTable, TableError> {
        let matcher = Matcher::new_compact_normalized(self.rules)
            .map_err(|e| TableError::Format(e.to_string()))?;
        Ok(CustomTable { matcher })
    }
}

/// Parses a JSON array of entries (or a single entry object).
pub fn parse_json(body: &[u8]) -> Result<Vec<KeywordEntry>, TableError> {
    // The common case, a well-formed array, in one typed pass; anything else goes the slower way
    // below, which names the entry at fault.
    if let Ok(entries) = serde_json::from_slice::<Vec<KeywordEntry>>(body) {
        if entries.len() > MAX_ENTRIES {
            return Err(TableError::TooMany(entries.len()));
        }
        return Ok(entries);
    }
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        Many(Vec<serde_json::Value>),
        One(serde_json::Value),
    }
    let parsed: OneOrMany = serde_json::from_slice(body).map_err(|e| {
        TableError::Format(format!(
            "body is not valid JSON (line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    let values = match parsed {
        OneOrMany::Many(v) => v,
        OneOrMany::One(v) => vec![v],
    };
    if values.len() > MAX_ENTRIES {
        return Err(TableError::TooMany(values.len()));
    }
    values
        .into_iter()
        .enumerate()
        .map(|(index, v)| {
            let keyword = v
                .get("keyword")
                .and_then(|k| k.as_str())
                .unwrap_or("")
                .chars()
                .take(60)
                .collect();
            serde_json::from_value(v).map_err(|e| TableError::Invalid {
                index,
                keyword,
                reason: format!("{e}"),
            })
        })
        .collect()
}

/// Parses CSV with a header naming the columns `keyword,label,level,suggest` (any order).
pub fn parse_csv(body: &[u8]) -> Result<Vec<KeywordEntry>, TableError> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(body);
    let headers = reader
        .headers()
        .map_err(|e| TableError::Format(format!("CSV header: {e}")))?
        .clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| TableError::Format(format!("CSV header must name the column `{name}`")))
    };
    let (k, l, v, s) = (
        col("keyword")?,
        col("label")?,
        col("level")?,
        col("suggest")?,
    );
    let mut entries = Vec::new();
    for (index, record) in reader.records().enumerate() {
        let record =
            record.map_err(|e| TableError::Format(format!("CSV row {}: {e}", index + 1)))?;
        if entries.len() >= MAX_ENTRIES {
            return Err(TableError::TooMany(index + 1));
        }
        let field = |i: usize| record.get(i).unwrap_or("");
        let keyword = field(k).to_owned();
        let invalid = |reason: &str| TableError::Invalid {
            index,
            keyword: keyword.chars().take(60).collect(),
            reason: reason.to_owned(),
        };
        let label = field(l)
            .parse()
            .map_err(|_| invalid("label must be a number"))?;
        let level = field(v)
            .parse()
            .map_err(|_| invalid("level must be 0 to 100"))?;
        entries.push(KeywordEntry {
            keyword: keyword.clone(),
            label,
            level,
            suggest: field(s).to_owned(),
        });
    }
    Ok(entries)
}

/// Writes entries as CSV with a header.
pub fn to_csv(entries: &[KeywordEntry]) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record(["keyword", "label", "level", "suggest"]);
    for e in entries {
        let _ = w.write_record([
            e.keyword.as_str(),
            &e.label.to_string(),
            &e.level.to_string(),
            &e.suggest,
        ]);
    }
    w.into_inner().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(keyword: &str, label: u32, level: u8, suggest: &str) -> KeywordEntry {
        KeywordEntry {
            keyword: keyword.into(),
            label,
            level,
            suggest: suggest.into(),
        }
    }

    #[test]
    fn the_stored_form_is_known_before_the_matcher_is_built() {
        let entries = vec![
            entry("赌博", 20006, 90, "risky"),
            entry("加微信", 20012, 40, "review"),
            entry("Ｑ Ｑ", 100, 0, "pass"),
            entry("赌博", 20006, 10, "review"),
        ];
        let valid = CustomTable::validate(entries.clone()).unwrap();
        let stored = valid.json();
        let table = valid.compile().unwrap();
        assert_eq!(stored, table.json());
        assert_eq!(table.entries(), entries);
    }

    #[test]
    fn validation_names_the_entry() {
        let cases = [
            (entry("", 20006, 50, "risky"), "empty"),
            (entry(&"字".repeat(51), 20006, 50, "risky"), "50 characters"),
            (entry("!!!", 20006, 50, "risky"), "no letters"),
            (entry("ok", 12345, 50, "risky"), "label"),
            (entry("ok", 20006, 101, "risky"), "level"),
            (entry("ok", 20006, 50, "maybe"), "suggest"),
        ];
        for (bad, needle) in cases {
            let err = CustomTable::build(vec![entry("fine", 100, 1, "pass"), bad]).unwrap_err();
            let msg = err.to_string();
            assert!(msg.starts_with("entry 1 ") && msg.contains(needle), "{msg}");
        }
        let many: Vec<KeywordEntry> = (0..1001)
            .map(|i| entry(&format!("w{i}"), 20006, 1, "risky"))
            .collect();
        assert_eq!(
            CustomTable::build(many).unwrap_err(),
            TableError::TooMany(1001)
        );
        assert!(CustomTable::build(vec![entry(&"字".repeat(50), 20006, 100, "risky")]).is_ok());
    }

    #[test]
    fn entries_that_normalize_alike_are_all_kept_and_the_most_severe_reports() {
        let entries = vec![
            entry("賭博", 20006, 40, "review"),
            entry("赌博", 20006, 90, "risky"),
            entry("ＤＵ博", 20006, 10, "review"),
        ];
        let table = CustomTable::build(entries.clone()).unwrap();
        assert_eq!(table.entries(), entries);
        assert_eq!(table.len(), 3);
        assert_eq!(table.matcher.len(), 2);
        let norm = normalize("去赌博吧");
        let mut hits = Vec::new();
        table.matcher.scan(&norm, &mut hits);
        let words: Vec<&str> = hits
            .iter()
            .map(|h| table.matcher.rule(h.rule).word)
            .collect();
        assert_eq!(words, ["赌博"]);
    }

    #[test]
    fn csv_and_json_round_trip() {
        let entries = vec![
            entry("竞品,名字", 10001, 40, "review"),
            entry("三黄片", 100, 100, "pass"),
        ];
        let csv = to_csv(&entries);
        assert_eq!(parse_csv(&csv).unwrap(), entries);
        let table = CustomTable::build(entries.clone()).unwrap();
        assert_eq!(table.entries(), entries);
        assert_eq!(parse_json(&table.json()).unwrap(), entries);
        let json = serde_json::to_vec(&entries).unwrap();
        assert_eq!(parse_json(&json).unwrap(), entries);
        // Columns in any order; a single JSON object is one entry.
        let reordered = b"suggest,level,keyword,label\nrisky,90,abc,20006\n";
        assert_eq!(
            parse_csv(reordered).unwrap(),
            [entry("abc", 20006, 90, "risky")]
        );
        let one = br#"{"keyword":"x1","label":20006,"level":5,"suggest":"risky"}"#;
        assert_eq!(parse_json(one).unwrap().len(), 1);
        assert!(
            parse_csv(b"keyword,label\nx,1\n")
                .unwrap_err()
                .to_string()
                .contains("`level`")
        );
        let e = parse_json(br#"[{"keyword":"x","label":20006,"level":500,"suggest":"risky"}]"#)
            .unwrap_err();
        assert!(e.to_string().starts_with("entry 0 (\"x\")"), "{e}");
    }
}
