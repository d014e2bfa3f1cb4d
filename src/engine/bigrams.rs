//! A prefilter for small lexicons: the two characters a pattern starts with.
//!
//! Stepping the double-array automaton costs one or two dependent loads and a branch per
//! character. On a lexicon as small as the built-in one (about a thousand distinct characters,
//! half of them starting a word) those branches go either way at random over Chinese text, and
//! the mispredictions made the built-in automaton slower than one over nine times as many words
//! (BENCHMARKS.md, "The text engine on real text"). Normalization instead asks of each pair of
//! neighbouring stream characters whether some pattern starts with it: one hash and one bit of a
//! table that fits in the first-level cache, and a branch that is almost never taken. About one
//! position in thirty passes on real text; each is checked against the patterns with that start,
//! by comparing bytes. The automaton's answer is kept exactly: every occurrence starts at a
//! position whose pair passes, and matches are reported in the automaton's order (by end, the
//! longest first).
//!
//! A lexicon whose pairs would fill much of the table (the many-thousand-word lists) gains
//! nothing from it and is stepped through the automaton as before; so is one with more than a
//! few one-character patterns, which the pair test cannot see (the few there are found with a
//! substring search of the finished stream).

use foldhash::HashMap;

/// Table size: `1 << BITS` bits, 8 KiB.
const BITS: u32 = 16;

/// Most distinct starting pairs a lexicon may have for the filter to be built: beyond it more
/// than about one position in sixteen of random text passes, and the automaton does better.
const MOST_PAIRS: usize = 1 << (BITS - 4);

/// Most one-character patterns (each costs a substring search of every text).
const MOST_SINGLES: usize = 4;

/// The two-character-start filter of one pattern set, and what checking a candidate needs.
#[derive(Debug)]
pub struct Bigrams {
    /// Bit `hash(a, b)` is set when some pattern starts with `a` `b`.
    table: Box<[u64]>,
    /// Pattern ids by starting pair, as ranges into `ids`.
    by_pair: HashMap<(char, char), (u32, u32)>,
    ids: Box<[u32]>,
    /// Every pattern's text, as the automaton holds it (`text[end[i - 1]..end[i]]`).
    text: Box<str>,
    end: Box<[u32]>,
    /// The one-character patterns.
    singles: Box<[(char, u32)]>,
}

#[inline(always)]
fn hash(a: char, b: char) -> usize {
    let h = (a as u32).wrapping_mul(0x9E37_79B1) ^ b as u32;
    (h.wrapping_mul(0x85EB_CA6B) >> (32 - BITS)) as usize
}

impl Bigrams {
    /// The filter over `patterns` (normalized texts, each with its id), or `None` when the
    /// automaton alone would do better.
    pub fn new(patterns: &[(String, u32)]) -> Option<Bigrams> {
        let mut pairs: Vec<((char, char), u32)> = Vec::new();
        let mut singles = Vec::new();
        let (mut text, mut end) = (String::new(), Vec::with_capacity(patterns.len()));
        for (i, (p, id)) in patterns.iter().enumerate() {
            debug_assert_eq!(i, *id as usize, "ids are the patterns' indices");
            text.push_str(p);
            end.push(u32::try_from(text.len()).ok()?);
            let mut chars = p.chars();
            match (chars.next(), chars.next()) {
                (Some(a), Some(b)) => pairs.push(((a, b), *id)),
                (Some(a), None) => singles.push((a, *id)),
                _ => return None,
            }
        }
        pairs.sort_unstable();
        let mut by_pair = HashMap::default();
        let mut table = vec![0u64; 1 << (BITS - 6)].into_boxed_slice();
        let mut from = 0;
        while from < pairs.len() {
            let pair = pairs[from].0;
            let to = from + pairs[from..].iter().take_while(|p| p.0 == pair).count();
            by_pair.insert(pair, (from as u32, to as u32));
            let bit = hash(pair.0, pair.1);
            table[bit >> 6] |= 1 << (bit & 63);
            from = to;
        }
        if by_pair.len() > MOST_PAIRS || singles.len() > MOST_SINGLES {
            return None;
        }
        Some(Bigrams {
            table,
            by_pair,
            ids: pairs.into_iter().map(|(_, id)| id).collect(),
            text: text.into(),
            end: end.into(),
            singles: singles.into(),
        })
    }

    /// Whether some pattern may start with `a` `b`.
    #[inline(always)]
    pub fn may_start(&self, a: char, b: char) -> bool {
        let bit = hash(a, b);
        (self.table[bit >> 6] >> (bit & 63)) & 1 != 0
    }

    fn pattern(&self, id: u32) -> &str {
        let i = id as usize;
        let start = if i == 0 { 0 } else { self.end[i - 1] as usize };
        &self.text[start..self.end[i] as usize]
    }

    /// Calls `found(id, len)` for every pattern that `rest` (the stream from a position that
    /// passed [`Bigrams::may_start`]) starts with, `len` its length in bytes.
    pub fn each_starting(&self, rest: &str, mut found: impl FnMut(u32, usize)) {
        let mut chars = rest.chars();
        let (Some(a), Some(b)) = (chars.next(), chars.next()) else {
            return;
        };
        let Some(&(lo, hi)) = self.by_pair.get(&(a, b)) else {
            return;
        };
        for &id in &self.ids[lo as usize..hi as usize] {
            let p = self.pattern(id);
            if rest.starts_with(p) {
                found(id, p.len());
            }
        }
    }

    /// Calls `found(id, start, end)` for every occurrence in `stream` of a one-character
    /// pattern, which the pairs do not see.
    pub fn each_single(&self, stream: &str, mut found: impl FnMut(u32, usize, usize)) {
        for &(c, id) in &self.singles {
            for (at, s) in stream.match_indices(c) {
                found(id, at, at + s.len());
            }
        }
    }

    pub fn heap_bytes(&self) -> usize {
        self.table.len() * 8
            + self.by_pair.capacity() * (std::mem::size_of::<((char, char), (u32, u32))>() + 1)
            + self.ids.len() * 4
            + self.text.len()
            + self.end.len() * 4
            + self.singles.len() * 8
    }
}
