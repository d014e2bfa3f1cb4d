//! The engine against the raw automaton in alternating rounds: each round runs every variant
//! once over the whole corpus, in an order that rotates from round to round, so drift in the
//! machine's speed (it is shared) falls on all of them alike. The ratios are medians of the
//! per-round ratios to raw daachorse of the same round (the baseline). Two more rows are there
//! to compare with: the engine's own double array scanning raw text, and daachorse's stepper
//! walked inside normalization as the engine walked it before `darray.rs`.
//!
//! Run: `loadtest/fetch-corpus.sh && cargo bench --bench engine_rounds [-- ROUNDS]` (31 rounds
//! unless told).

use std::hint::black_box;
use std::time::{Duration, Instant};

use daachorse::CharwiseDoubleArrayAhoCorasick;
use daachorse::charwise::iter::FindOverlappingStepper;
use modgate::engine::darray::DoubleArray;
use modgate::engine::normalize::EachChar;
use modgate::engine::{Engine, Matcher, Normalized, normalize};

mod corpus;
use corpus::{load, rules, usable};

type Variant<'a> = (&'static str, Box<dyn FnMut() -> usize + 'a>);

/// daachorse's stepper walked as normalization writes the stream, inlined there as the engine's
/// own walk is.
struct DaachorseWalk<'a> {
    stepper: FindOverlappingStepper<'a, u32>,
    out: &'a mut Vec<(u32, usize, usize)>,
}

impl EachChar for DaachorseWalk<'_> {
    #[inline(always)]
    fn each(&mut self, c: char) {
        self.stepper.consume(c);
        for m in self.stepper.matches() {
            self.out.push((m.value(), m.start(), m.end()));
        }
    }
}

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
    let started = Instant::now();
    let own = DoubleArray::new(usable.iter().zip(0u32..)).expect("double array");
    let own_built = started.elapsed();
    let started = Instant::now();
    let theirs = CharwiseDoubleArrayAhoCorasick::<u32>::new(&usable).expect("daachorse");
    let theirs_built = started.elapsed();
    println!(
        "built: own double array {:.1} ms, {} KiB ({} units); daachorse {:.1} ms, {} KiB",
        own_built.as_secs_f64() * 1e3,
        own.heap_bytes() / 1024,
        own.len(),
        theirs_built.as_secs_f64() * 1e3,
        theirs.heap_bytes() / 1024,
    );
    drop(theirs);
    let builtin = Engine::builtin().expect("builtin");
    // The patterns as the engine holds them (normalized, one per distinct text), for the
    // stepper variant to find what the engine finds.
    let normalized: std::collections::BTreeSet<String> =
        usable.iter().map(|w| normalize(w).text).collect();
    let raw_normalized =
        CharwiseDoubleArrayAhoCorasick::<u32>::new(&normalized).expect("daachorse");
    let reviews = &data.reviews;

    let (mut norm, mut hits) = (Normalized::default(), Vec::new());
    let (mut norm2, mut hits2) = (Normalized::default(), Vec::new());
    let mut norm3 = Normalized::default();
    let (mut norm4, mut hits3) = (Normalized::default(), Vec::new());
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
            "raw own double array (darray.rs), overlapping",
            Box::new(|| {
                let mut n = 0;
                for r in reviews {
                    own.for_each_overlapping(r, |_, _, _| n += 1);
                }
                n
            }),
        ),
        (
            "normalize + daachorse's stepper, one pass (the engine before darray.rs)",
            Box::new(|| {
                let mut n = 0;
                for r in reviews {
                    hits3.clear();
                    let walk = DaachorseWalk {
                        stepper: raw_normalized.find_overlapping_stepper(),
                        out: &mut hits3,
                    };
                    norm4.fill_with(r, walk);
                    n += hits3.len();
                }
                n
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
    for (name, run) in &mut variants {
        println!("{name}: {} matches", black_box(run()));
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
