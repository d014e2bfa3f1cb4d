//! The text engine: pure and synchronous (no tokio, no I/O).
//!
//! An [`Engine`] is built once from a [`Lexicon`] into an immutable value behind an `Arc`, so it
//! is cheap to clone and share across request tasks; reloading means building a new one and
//! swapping it in. Checking a text is: [`normalize`](normalize::normalize) it, run the
//! Aho-Corasick automaton over the normalized stream reporting *all* overlapping hits, drop Latin
//! hits that are not on word boundaries, then [`compose`](verdict::compose) the verdict.

pub mod lexicon;
pub mod normalize;
pub mod verdict;

use std::sync::Arc;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};

pub use lexicon::{Lexicon, LexiconEntry, LexiconError};
pub use verdict::{ContentModel, DetailItem, Outcome, Verdict};

/// How severe a verdict is. Ordered: `Pass < Review < Risky`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Suggest {
    Pass,
    Review,
    Risky,
}

impl Suggest {
    pub fn as_str(self) -> &'static str {
        match self {
            Suggest::Pass => "pass",
            Suggest::Review => "review",
            Suggest::Risky => "risky",
        }
    }

    pub fn parse(s: &str) -> Option<Suggest> {
        match s {
            "pass" => Some(Suggest::Pass),
            "review" => Some(Suggest::Review),
            "risky" => Some(Suggest::Risky),
            _ => None,
        }
    }
}

/// The SPEC's label set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Label {
    Normal,
    Advertising,
    Politics,
    Pornography,
    Abuse,
    Illegal,
    Fraud,
    Vulgar,
    Copyright,
    Other,
}

impl Label {
    pub const ALL: [Label; 10] = [
        Label::Normal,
        Label::Advertising,
        Label::Politics,
        Label::Pornography,
        Label::Abuse,
        Label::Illegal,
        Label::Fraud,
        Label::Vulgar,
        Label::Copyright,
        Label::Other,
    ];

    pub fn code(self) -> u32 {
        match self {
            Label::Normal => 100,
            Label::Advertising => 10001,
            Label::Politics => 20001,
            Label::Pornography => 20002,
            Label::Abuse => 20003,
            Label::Illegal => 20006,
            Label::Fraud => 20008,
            Label::Vulgar => 20012,
            Label::Copyright => 20013,
            Label::Other => 21000,
        }
    }

    pub fn from_code(code: u32) -> Option<Label> {
        Label::ALL.into_iter().find(|l| l.code() == code)
    }
}

/// Building an engine failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("lexicon: {0}")]
    Lexicon(#[from] LexiconError),
    #[error("lexicon word {0:?} is empty after normalization")]
    EmptyWord(String),
    #[error("automaton: {0}")]
    Automaton(#[from] aho_corasick::BuildError),
}

/// One lexicon hit in a checked text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    /// Index into the engine's entries.
    pub entry: u32,
    /// Byte range in the normalized text.
    pub start: u32,
    pub end: u32,
}

/// The built text engine. Cloning shares it.
#[derive(Clone, Debug)]
pub struct Engine {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    entries: Vec<LexiconEntry>,
    /// Per pattern (pattern id == entry index): whether its first/last character is a Latin
    /// letter or digit and so needs a word boundary on that side.
    boundaries: Vec<(bool, bool)>,
    automaton: AhoCorasick,
}

impl Engine {
    /// Builds the engine over the built-in lexicon.
    pub fn builtin() -> Result<Engine, EngineError> {
        Engine::new(Lexicon::builtin()?)
    }

    /// Builds the engine. Words are normalized as texts are; when two words normalize to the same
    /// pattern the more severe entry (then the higher prob) wins.
    pub fn new(lexicon: Lexicon) -> Result<Engine, EngineError> {
        let mut by_pattern: std::collections::HashMap<String, LexiconEntry> =
            std::collections::HashMap::with_capacity(lexicon.entries.len());
        for entry in lexicon.entries {
            let pattern = normalize::normalize(&entry.word).text;
            if pattern.is_empty() {
                return Err(EngineError::EmptyWord(entry.word));
            }
            match by_pattern.get(&pattern) {
                Some(old) if (old.suggest, old.prob) >= (entry.suggest, entry.prob) => {}
                _ => {
                    by_pattern.insert(pattern, entry);
                }
            }
        }
        // Sorted for a deterministic pattern order (ids are stable across builds).
        let mut pairs: Vec<(String, LexiconEntry)> = by_pattern.into_iter().collect();
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        let boundaries = pairs
            .iter()
            .map(|(p, _)| {
                let first = p.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
                let last = p.chars().last().is_some_and(|c| c.is_ascii_alphanumeric());
                (first, last)
            })
            .collect();
        let automaton = AhoCorasick::builder()
            .match_kind(MatchKind::Standard)
            .kind(Some(AhoCorasickKind::DFA))
            .build(pairs.iter().map(|(p, _)| p.as_bytes()))?;
        Ok(Engine {
            inner: Arc::new(Inner {
                entries: pairs.into_iter().map(|(_, e)| e).collect(),
                boundaries,
                automaton,
            }),
        })
    }

    /// Number of distinct patterns.
    pub fn len(&self) -> usize {
        self.inner.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.inner.entries.is_empty()
    }

    /// The entry behind a hit.
    pub fn entry(&self, hit: &Hit) -> &LexiconEntry {
        &self.inner.entries[hit.entry as usize]
    }

    /// All hits in an already normalized text, overlapping ones included, in order of their end.
    pub fn scan_normalized(&self, norm: &str, hits: &mut Vec<Hit>) {
        let bytes = norm.as_bytes();
        for m in self.inner.automaton.find_overlapping_iter(norm) {
            let (left, right) = self.inner.boundaries[m.pattern().as_usize()];
            if left && m.start() > 0 && bytes[m.start() - 1].is_ascii_alphanumeric() {
                continue;
            }
            if right && bytes.get(m.end()).is_some_and(u8::is_ascii_alphanumeric) {
                continue;
            }
            hits.push(Hit {
                entry: m.pattern().as_u32(),
                start: m.start() as u32,
                end: m.end() as u32,
            });
        }
    }

    /// Normalizes and scans one text.
    pub fn scan(&self, text: &str) -> Vec<Hit> {
        let norm = normalize::normalize(text);
        let mut hits = Vec::new();
        self.scan_normalized(&norm.text, &mut hits);
        hits
    }

    /// The verdict over several fields of one request (content, title, nickname, …).
    pub fn check(&self, fields: &[&str]) -> Verdict {
        let mut best: Option<&LexiconEntry> = None;
        let mut hits = Vec::new();
        for field in fields {
            if field.is_empty() {
                continue;
            }
            hits.clear();
            let norm = normalize::normalize(field);
            self.scan_normalized(&norm.text, &mut hits);
            for hit in &hits {
                let entry = self.entry(hit);
                if best.is_none_or(|b| (entry.suggest, entry.prob) > (b.suggest, b.prob)) {
                    best = Some(entry);
                }
            }
        }
        verdict::compose(ContentModel::from_best(best), &[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine(lines: &str) -> Engine {
        let mut lex = Lexicon::default();
        lex.add_source("t", lines).unwrap();
        Engine::new(lex).unwrap()
    }

    fn words(e: &Engine, text: &str) -> Vec<String> {
        e.scan(text)
            .iter()
            .map(|h| e.entry(h).word.clone())
            .collect()
    }

    #[test]
    fn overlapping_hits_are_all_reported() {
        let e = engine(
            "中华人民共和国, 21000, review, 50\n人民, 21000, review, 50\nshe, 21000, review, 50\nhe, 21000, review, 50\n",
        );
        assert_eq!(words(&e, "中华人民银行"), ["人民"]);
        assert_eq!(words(&e, "中华人民共和国"), ["人民", "中华人民共和国"]);
        // `he` inside `she` is not on a word boundary; `she` alone is.
        assert_eq!(words(&e, "she said"), ["she"]);
    }

    #[test]
    fn latin_words_need_boundaries_cjk_do_not() {
        let e = engine("ass, 20003, risky, 90\nav, 20002, risky, 90\n赌博, 20006, risky, 90\n");
        assert!(words(&e, "grass").is_empty());
        assert!(words(&e, "I have it").is_empty());
        assert_eq!(words(&e, "you ass!"), ["ass"]);
        assert_eq!(words(&e, "我爱赌博游戏"), ["赌博"]);
    }

    #[test]
    fn duplicate_words_keep_the_most_severe() {
        let e = engine("赌博, 20006, review, 50\n赌 博, 20006, risky, 80\n");
        assert_eq!(e.len(), 1);
        let hits = e.scan("赌博");
        assert_eq!(e.entry(&hits[0]).suggest, Suggest::Risky);
    }

    #[test]
    fn empty_normalized_words_are_refused() {
        let mut lex = Lexicon::default();
        lex.add_source("t", "!!!, 20006, risky, 80\n").unwrap();
        assert!(matches!(Engine::new(lex), Err(EngineError::EmptyWord(_))));
    }

    /// Texts that once went wrong, or that pin a decision. Each row: text, suggest, label.
    const REGRESSION: &[(&str, Suggest, u32)] = &[
        (
            "特3456书yuuo莞6543李zxcz蒜7782法fgnv级",
            Suggest::Risky,
            21000,
        ),
        (
            "完2347全dfji试3726测asad感3847知qwez到",
            Suggest::Risky,
            21000,
        ),
        ("今天天气真好", Suggest::Pass, 100),
        ("我们去赌.博吧", Suggest::Risky, 20006),
        ("ＦＵＣＫ you", Suggest::Risky, 20003),
        ("the grass is green", Suggest::Pass, 100),
        ("scunthorpe shitake", Suggest::Pass, 100),
        ("她是个脑残", Suggest::Review, 20003),
    ];

    #[test]
    fn regression_table() {
        let e = Engine::builtin().unwrap();
        for &(text, suggest, label) in REGRESSION {
            let v = e.check(&[text]);
            assert_eq!(
                (v.result.suggest, v.result.label.code()),
                (suggest, label),
                "{text}"
            );
        }
    }
}
