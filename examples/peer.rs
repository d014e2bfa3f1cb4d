//! modgate's side of the peer benchmark (`loadtest/peer.sh`): writes the evaded corpus both
//! engines read, and measures modgate's engine on it.
//!
//! ```text
//! peer words OUT                         the built-in lexicon's deny words (OUT) and allow words (OUT.allow)
//! peer corpus WORDS REVIEWS_DIR OUT_DIR  OUT_DIR/clean.txt (one review per line) and
//!                                        OUT_DIR/evaded.tsv (kind, word, start, end, text; offsets in
//!                                        UTF-16 code units, as Java counts them)
//! peer measure WORDS CORPUS_DIR          recall per kind, false positives, characters per second
//!                                        on one thread; one JSON object on stdout, and the line
//!                                        numbers of the flagged reviews in CORPUS_DIR/modgate.flagged
//! ```
//!
//! The corpus: up to 2,000 words of the list (every word when it is shorter, else an even spread),
//! each evaded by every kind that applies (`tests/evasion/generator.rs`, seed 1) and put into a
//! review.
#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)]

#[path = "../tests/evasion/generator.rs"]
mod generator;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

use generator::{Generator, Kind};
use modgate::engine::{Engine, Label, Lexicon, Rule, Source, Suggest};

/// The allocator the gateway runs with (`src/main.rs`), so the engine is measured as shipped.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const MAX_WORDS: usize = 2_000;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["words", out] => words(Path::new(out)),
        ["corpus", words, reviews, out] => {
            corpus(Path::new(words), Path::new(reviews), Path::new(out))
        }
        ["measure", words, corpus] => measure(Path::new(words), Path::new(corpus)),
        _ => {
            eprintln!(
                "usage: peer words OUT | corpus WORDS REVIEWS_DIR OUT_DIR | measure WORDS CORPUS_DIR"
            );
            std::process::exit(2);
        }
    }
}

fn words(out: &Path) {
    let lexicon = Lexicon::builtin().unwrap();
    let (allow, deny): (Vec<Rule>, Vec<Rule>) = lexicon
        .rules
        .into_iter()
        .partition(|r| r.suggest == Suggest::Pass);
    let write = |path: &Path, rules: &[Rule]| {
        let text: String = rules.iter().map(|r| format!("{}\n", r.word)).collect();
        std::fs::write(path, text).unwrap();
    };
    write(out, &deny);
    write(&out.with_extension("allow"), &allow);
}

/// The list's words that either engine can hold (a word with no letter or digit is none).
fn read_words(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::trim)
        .filter(|w| !w.is_empty() && !modgate::engine::normalize(w).text.is_empty())
        .map(str::to_owned)
        .collect()
}

fn utf16(s: &str) -> usize {
    s.encode_utf16().count()
}

fn corpus(words: &Path, reviews: &Path, out: &Path) {
    let words = read_words(words);
    let reviews = generator::reviews(reviews);
    std::fs::create_dir_all(out).unwrap();
    std::fs::write(out.join("clean.txt"), reviews.join("\n") + "\n").unwrap();
    let step = words.len().div_ceil(MAX_WORDS).max(1);
    let mut g = Generator::new(1);
    let mut tsv = std::io::BufWriter::new(std::fs::File::create(out.join("evaded.tsv")).unwrap());
    let mut cases = 0;
    for (n, word) in words.iter().step_by(step).enumerate() {
        for kind in Kind::ALL {
            let host = &reviews[(n * 7 + kind as usize * 13) % reviews.len()];
            let Some(case) = g.case(word, kind, host) else {
                continue;
            };
            let text = case.text.replace(['\t', '\n'], " ");
            let (start, end) = (utf16(&text[..case.start]), utf16(&text[..case.end]));
            writeln!(tsv, "{}\t{}\t{start}\t{end}\t{text}", kind.as_str(), word).unwrap();
            cases += 1;
        }
    }
    tsv.flush().unwrap();
    eprintln!(
        "{cases} evaded cases from {} words, {} reviews",
        words.len().div_ceil(step),
        reviews.len()
    );
}

fn measure(words: &Path, corpus: &Path) {
    let allow_path = words.with_extension("allow");
    let mut rules: Vec<Rule> = read_words(words)
        .into_iter()
        .map(|word| Rule {
            word,
            label: Label::Other,
            suggest: Suggest::Risky,
            score: 90,
        })
        .collect();
    if allow_path.exists() {
        rules.extend(read_words(&allow_path).into_iter().map(|word| Rule {
            word,
            label: Label::Normal,
            suggest: Suggest::Pass,
            score: 0,
        }));
    }
    let engine = Engine::new(Lexicon { rules }).unwrap();
    let clean: Vec<String> = std::fs::read_to_string(corpus.join("clean.txt"))
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();

    // Which reviews a word of the list flags, by line number (compared with houbb's by the
    // script); the detectors' findings (phone numbers, QQ numbers, URLs: what houbb is not
    // asked to find here) are counted apart.
    let word_hit = |text: &str| {
        let mut found = Vec::new();
        engine.findings(text, None, &mut found);
        let words = found
            .iter()
            .any(|f| matches!(f.source, Source::Builtin(_)) && f.suggest != Suggest::Pass);
        let detectors = found
            .iter()
            .any(|f| matches!(f.source, Source::Detector(_)));
        (words, detectors)
    };
    let (mut flagged_lines, mut detected) = (Vec::new(), 0usize);
    for (i, review) in clean.iter().enumerate() {
        let (words, detectors) = word_hit(review);
        if words {
            flagged_lines.push(i);
        } else if detectors {
            detected += 1;
        }
    }
    let flagged = flagged_lines.len();
    // Each flagged review's line, then each listed word found with the input it was found in,
    // for reading the differences between the engines.
    let listing: String = flagged_lines
        .iter()
        .map(|&i| {
            let text = &clean[i];
            let hits: Vec<String> = engine
                .explain(text, None)
                .hits
                .iter()
                .filter(|h| {
                    matches!(h.finding.source, Source::Builtin(_))
                        && h.finding.suggest != Suggest::Pass
                })
                .map(|h| format!("{}={}", h.word, &text[h.input_start..h.input_end]))
                .collect();
            format!("{i}\t{}\n", hits.join("\t"))
        })
        .collect();
    std::fs::write(corpus.join("modgate.flagged"), listing).unwrap();

    let mut per_kind: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for line in std::fs::read_to_string(corpus.join("evaded.tsv"))
        .unwrap()
        .lines()
    {
        let cols: Vec<&str> = line.splitn(5, '\t').collect();
        let [kind, _word, start, end, text] = cols[..] else {
            continue;
        };
        let (start, end) = (
            byte_at(text, start.parse().unwrap()),
            byte_at(text, end.parse().unwrap()),
        );
        let hit = engine.explain(text, None).hits.iter().any(|h| {
            matches!(h.finding.source, Source::Builtin(_))
                && h.finding.suggest != Suggest::Pass
                && h.input_start < end
                && start < h.input_end
        });
        let e = per_kind.entry(kind.to_owned()).or_default();
        e.0 += 1;
        e.1 += usize::from(hit);
    }

    // Throughput: checks of every clean review, on this thread; the best of five passes after
    // one to warm up.
    let chars: usize = clean.iter().map(|r| utf16(r)).sum();
    let mut best = f64::MAX;
    for pass in 0..6 {
        let t = Instant::now();
        let mut risky = 0usize;
        for r in &clean {
            risky += usize::from(engine.check(&[r.as_str()]).result.suggest != Suggest::Pass);
        }
        std::hint::black_box(risky);
        if pass > 0 {
            best = best.min(t.elapsed().as_secs_f64());
        }
    }
    let kinds: serde_json::Map<String, serde_json::Value> = per_kind
        .iter()
        .map(|(k, (cases, found))| {
            (
                k.clone(),
                serde_json::json!({ "cases": cases, "found": found }),
            )
        })
        .collect();
    let out = serde_json::json!({
        "engine": "modgate",
        "kinds": kinds,
        "clean": clean.len(),
        "flagged": flagged,
        "detected_only": detected,
        "chars": chars,
        "seconds": best,
        "chars_per_second": chars as f64 / best,
    });
    println!("{out}");
}

/// The byte offset of UTF-16 offset `at` in `text`.
fn byte_at(text: &str, at: usize) -> usize {
    let mut units = 0;
    for (i, c) in text.char_indices() {
        if units >= at {
            return i;
        }
        units += c.len_utf16();
    }
    text.len()
}
