//! Lexicon files: `word, label, suggest, prob` per line.
//!
//! ```text
//! # comment
//! 赌博, 20006, risky, 95
//! ```
//!
//! `label` is a SPEC label code, `suggest` is `risky`, `review` or `pass`, `prob` is 0–100. Blank
//! lines and lines starting with `#` are ignored. The built-in lexicon is the files under
//! `keywords/`, compiled into the binary so `modgate check` works anywhere.

use super::{Label, Suggest};

/// One lexicon word and what a hit on it means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LexiconEntry {
    pub word: String,
    pub label: Label,
    pub suggest: Suggest,
    pub prob: u8,
}

/// A parsed set of entries.
#[derive(Debug, Clone, Default)]
pub struct Lexicon {
    pub entries: Vec<LexiconEntry>,
}

/// A line that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{source_name}:{line}: {message}")]
pub struct LexiconError {
    pub source_name: String,
    pub line: usize,
    pub message: String,
}

/// The files under `keywords/`, embedded at build time.
const BUILTIN: &[(&str, &str)] = &[
    ("abuse.txt", include_str!("../../keywords/abuse.txt")),
    (
        "advertising.txt",
        include_str!("../../keywords/advertising.txt"),
    ),
    ("fraud.txt", include_str!("../../keywords/fraud.txt")),
    ("illegal.txt", include_str!("../../keywords/illegal.txt")),
    ("politics.txt", include_str!("../../keywords/politics.txt")),
    ("porn.txt", include_str!("../../keywords/porn.txt")),
    (
        "wechat-test.txt",
        include_str!("../../keywords/wechat-test.txt"),
    ),
];

impl Lexicon {
    /// The built-in lexicon.
    pub fn builtin() -> Result<Lexicon, LexiconError> {
        let mut lexicon = Lexicon::default();
        for (name, text) in BUILTIN {
            lexicon.add_source(name, text)?;
        }
        Ok(lexicon)
    }

    /// Parses one file's text and appends its entries.
    pub fn add_source(&mut self, source_name: &str, text: &str) -> Result<(), LexiconError> {
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let err = |message: String| LexiconError {
                source_name: source_name.to_owned(),
                line: i + 1,
                message,
            };
            let fields: Vec<&str> = line.rsplitn(4, ',').map(str::trim).collect();
            let [prob, suggest, label, word] = fields[..] else {
                return Err(err("expected `word, label, suggest, prob`".into()));
            };
            if word.is_empty() {
                return Err(err("empty word".into()));
            }
            let label = label
                .parse::<u32>()
                .ok()
                .and_then(Label::from_code)
                .ok_or_else(|| err(format!("{label:?} is not a label code")))?;
            let suggest = Suggest::parse(suggest)
                .ok_or_else(|| err(format!("{suggest:?} is not risky, review or pass")))?;
            let prob = prob
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= 100)
                .ok_or_else(|| err(format!("{prob:?} is not a probability 0-100")))?;
            self.entries.push(LexiconEntry {
                word: word.to_owned(),
                label,
                suggest,
                prob,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_lexicon_parses() {
        let lex = Lexicon::builtin().unwrap();
        assert!(lex.entries.len() > 50);
    }

    #[test]
    fn lines_are_parsed_and_errors_name_the_line() {
        let mut lex = Lexicon::default();
        lex.add_source("t.txt", "# c\n\n赌博, 20006, risky, 95\n")
            .unwrap();
        assert_eq!(
            lex.entries,
            [LexiconEntry {
                word: "赌博".into(),
                label: Label::Illegal,
                suggest: Suggest::Risky,
                prob: 95
            }]
        );
        let bad = [
            ("x, 20006, risky", "expected"),
            ("x, 12345, risky, 5", "label"),
            ("x, 20006, maybe, 5", "risky"),
            ("x, 20006, risky, 101", "probability"),
            (" , 20006, risky, 1", "empty word"),
        ];
        for (line, needle) in bad {
            let e = Lexicon::default()
                .add_source("t.txt", &format!("ok, 100, pass, 1\n{line}"))
                .unwrap_err();
            assert_eq!(e.line, 2, "{line}");
            assert!(e.message.contains(needle), "{line}: {e}");
        }
    }
}
