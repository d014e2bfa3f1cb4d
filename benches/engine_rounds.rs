//! The engine against the raw automaton in alternating rounds: each round runs every variant
//! once over the whole corpus, in an order that rotates from round to round, so drift in the
//! machine's speed (it is shared) falls on all of them alike. The ratios are medians of the
//! per-round ratios to the raw automaton of the same round.
//!
//! Run: `loadtest/fetch-corpus.sh && cargo bench --bench engine_rounds [-- ROUNDS]` (31 rounds
//! unless told).

use std::hint::black_box;
use std::time::{Duration, Instant};

use daachorse::CharwiseDoubleArrayAhoCorasick;
use modgate::engine::{Engine, Matcher, Normalized};

mod corpus;
use corpus::{load, rules, usable};

type Variant<'a> = (&'static str, Box<dyn FnMut() -> usize + 'a>);

fn main() {
    let rounds: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(31);
    let data = load();
    let bytes: usize = data.reviews.iter().map(String::len).sum();
    let usable = usable(&data.words);
    let matcher = Matcher::new(rules(&usable)).expect("lexicon compiles");
    let raw = CharwiseDoubleArrayAhoCorasick::<u32>::new(&usable).expect("daachorse");
    let builtin = Engine::builtin().expect("builtin");
    let reviews = &data.reviews;

    let (mut norm, mut hits) = (Normalized::default(), Vec::new());
    let (mut norm2, mut hits2) = (Normalized::default(), Vec::new());
    let mut norm3 = Normalized::default();
    let mut variants: Vec<Variant<'_>> = vec![
        (
            "raw daachorse automaton, overlapping (the baseline)",
            Box::new(|| {
                reviews
                    .iter()
                    .map(|r| raw.find_overlapping_iter(r).count())
                    .sum()
            }),
        ),
        (
            "normalize + match, one pass (Matcher::fill_and_scan)",
            Box::new(|| {
                let mut n = 0;
                for r in reviews {
                    hits.clear();
                    matcher.fill_and_scan(r, &mut norm, &mut hits);
                    n += hits.len();
                }
                n
            }),
        ),
        (
            "normalize, then match the stream (two passes)",
            Box::new(|| {
                let mut n = 0;
                for r in reviews {
                    norm2.fill(r);
                    hits2.clear();
                    matcher.scan(&norm2, &mut hits2);
                    n += hits2.len();
                }
                n
            }),
        ),
        (
            "normalize only",
            Box::new(|| {
                let mut n = 0;
                for r in reviews {
                    norm3.fill(r);
                    n += norm3.spans.len();
                }
                n
            }),
        ),
        (
            "full check: Engine::check (built-in lexicon, detectors, verdict)",
            Box::new(|| {
                reviews
                    .iter()
                    .map(|r| builtin.check(&[r]).detail.len())
                    .sum()
            }),
        ),
    ];
    // One warm-up pass each: the folding table, the buffers, the caches.
    for (_, run) in &mut variants {
        black_box(run());
    }
    let mut times = vec![Vec::with_capacity(rounds); variants.len()];
    for round in 0..rounds {
        for k in 0..variants.len() {
            let i = (round + k) % variants.len();
            let started = Instant::now();
            black_box((variants[i].1)());
            times[i].push(started.elapsed());
        }
    }
    let mib = bytes as f64 / (1 << 20) as f64;
    println!(
        "{} texts, {mib:.1} MiB, {} words; {rounds} alternating rounds",
        reviews.len(),
        usable.len()
    );
    println!("| variant | median MiB/s | p10 | p90 | median ratio to the raw automaton |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    for (i, (name, _)) in variants.iter().enumerate() {
        let mut speeds: Vec<f64> = times[i].iter().map(|t| mib / t.as_secs_f64()).collect();
        speeds.sort_by(f64::total_cmp);
        let mut ratios: Vec<f64> = times[0]
            .iter()
            .zip(&times[i])
            .map(|(raw, t)| raw.as_secs_f64() / t.as_secs_f64())
            .collect();
        ratios.sort_by(f64::total_cmp);
        let at = |v: &[f64], q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
        println!(
            "| {name} | {:.1} | {:.1} | {:.1} | {:.1}% |",
            at(&speeds, 0.5),
            at(&speeds, 0.1),
            at(&speeds, 0.9),
            100.0 * at(&ratios, 0.5)
        );
    }
    let total: Duration = times.iter().flatten().sum();
    println!("({:.1} s measured)", total.as_secs_f64());
}
