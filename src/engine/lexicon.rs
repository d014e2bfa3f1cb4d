//! Lexicon files: one file per label, one entry per line.
//!
//! ```text
//! # comment
//! 网络赌博<TAB>risky<TAB>95
//! 三黄片<TAB>pass<TAB>100
//! ```
//!
//! Each line is `word`, `suggest` (`risky`, `review` or `pass`) and `prob` (0–100), separated by
//! one or more tabs. The label comes from the file (the built-in files are listed below; operator
//! files are given with their label in the config). A `pass` entry is an allow entry: it
//! suppresses any deny hit it overlaps. Blank lines and lines starting with `#` are ignored.
//! The built-in lexicon is compiled into the binary, so `modgate check` works anywhere.

use std::path::Path;

use super::matcher::Rule;
use super::{Label, Suggest};

/// A parsed set of rules.
#[derive(Debug, Clone, Default)]
pub struct Lexicon {
    pub rules: Vec<Rule>,
}

/// A line or file that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{source_name}:{line}: {message}")]
pub struct LexiconError {
    pub source_name: String,
    /// 0 when the whole file is at fault.
    pub line: usize,
    pub message: String,
}

/// The files under `keywords/`, embedded at build time, with their labels.
pub const BUILTIN: &[(&str, Label, &str)] = &[
    (
        "advertising.txt",
        Label::Advertising,
        include_str!("../../keywords/advertising.txt"),
    ),
    (
        "politics.txt",
        Label::Politics,
        include_str!("../../keywords/politics.txt"),
    ),
    (
        "porn.txt",
        Label::Pornography,
        include_str!("../../keywords/porn.txt"),
    ),
    (
        "abuse.txt",
        Label::Abuse,
        include_str!("../../keywords/abuse.txt"),
    ),
    (
        "illegal.txt",
        Label::Illegal,
        include_str!("../../keywords/illegal.txt"),
    ),
    (
        "fraud.txt",
        Label::Fraud,
        include_str!("../../keywords/fraud.txt"),
    ),
    (
        "vulgar.txt",
        Label::Vulgar,
        include_str!("../../keywords/vulgar.txt"),
    ),
    (
        "copyright.txt",
        Label::Copyright,
        include_str!("../../keywords/copyright.txt"),
    ),
    (
        "other.txt",
        Label::Other,
        include_str!("../../keywords/other.txt"),
    ),
    (
        "allow.txt",
        Label::Normal,
        include_str!("../../keywords/allow.txt"),
    ),
];

impl Lexicon {
    /// The built-in lexicon.
    pub fn builtin() -> Result<Lexicon, LexiconError> {
        let mut lexicon = Lexicon::default();
        for (name, label, text) in BUILTIN {
            lexicon.add_source(name, *label, text)?;
        }
        Ok(lexicon)
    }

    /// Reads an operator's lexicon file.
    pub fn add_file(&mut self, path: &Path, label: Label) -> Result<(), LexiconError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| LexiconError {
            source_name: name.clone(),
            line: 0,
            message: format!("cannot read: {e}"),
        })?;
        self.add_source(&name, label, &text)
    }

    /// Parses one file's text and appends its rules.
    pub fn add_source(
        &mut self,
        source_name: &str,
        label: Label,
        text: &str,
    ) -> Result<(), LexiconError> {
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() || line.trim_start().starts_with('#') {
                continue;
            }
            let err = |message: String| LexiconError {
                source_name: source_name.to_owned(),
                line: i + 1,
                message,
            };
            let fields: Vec<&str> = line.split('\t').filter(|f| !f.is_empty()).collect();
            let [word, suggest, prob] = fields[..] else {
                return Err(err("expected `word<TAB>suggest<TAB>prob`".into()));
            };
            let word = word.trim();
            if word.is_empty() {
                return Err(err("empty word".into()));
            }
            let suggest = Suggest::parse(suggest.trim())
                .ok_or_else(|| err(format!("{:?} is not risky, review or pass", suggest.trim())))?;
            let prob = prob
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= 100)
                .ok_or_else(|| err(format!("{:?} is not a probability 0-100", prob.trim())))?;
            self.rules.push(Rule {
                word: word.to_owned(),
                label: if suggest == Suggest::Pass {
                    Label::Normal
                } else {
                    label
                },
                suggest,
                score: prob,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_parsed_and_errors_name_the_line() {
        let mut lex = Lexicon::default();
        lex.add_source(
            "t.txt",
            Label::Illegal,
            "# c\n\n赌博\trisky\t95\n三黄片\t\tpass\t100\n",
        )
        .unwrap();
        assert_eq!(
            lex.rules,
            [
                Rule {
                    word: "赌博".into(),
                    label: Label::Illegal,
                    suggest: Suggest::Risky,
                    score: 95
                },
                Rule {
                    word: "三黄片".into(),
                    label: Label::Normal,
                    suggest: Suggest::Pass,
                    score: 100
                },
            ]
        );
        let bad = [
            ("x\trisky", "expected"),
            ("x, risky, 5", "expected"),
            ("x\tmaybe\t5", "risky"),
            ("x\trisky\t101", "probability"),
            (" \trisky\t1", "empty word"),
        ];
        for (line, needle) in bad {
            let e = Lexicon::default()
                .add_source("t.txt", Label::Other, &format!("ok\tpass\t1\n{line}"))
                .unwrap_err();
            assert_eq!(e.line, 2, "{line}");
            assert!(e.message.contains(needle), "{line}: {e}");
        }
    }

    #[test]
    fn missing_operator_file_is_a_clear_error() {
        let e = Lexicon::default()
            .add_file(Path::new("/no/such/lexicon.txt"), Label::Other)
            .unwrap_err();
        assert!(
            e.to_string().contains("/no/such/lexicon.txt") && e.message.contains("cannot read")
        );
    }
}
