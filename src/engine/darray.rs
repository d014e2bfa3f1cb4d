//! A character-wise double-array Aho-Corasick automaton whose step has no data-dependent branch
//! in the common case, for the large lexicons stepped as normalization writes the stream.
//!
//! Why not daachorse's automaton here: its transition is a loop that tests the child slot's
//! `check` and branches, and over real text that branch goes either way at random (a tenth of
//! the positions of Chinese reviews start a pair of the 14k list, and most of those pairs end
//! there). Each misprediction discards the normalization work the processor fetched past it,
//! so the fused loop paid for normalization and the automaton one after the other. Here a step
//! computes both of its likely successors (the current state's child, and the root's child for
//! the same character: the fail link of a state at depth one is the root) and picks one with a
//! conditional move; only a state whose fail link is not the root, and which has no child for
//! the character, takes a branch to walk its fail links, and such states are rare on any text.
//! The state's transition then waits only on its loads, and normalization overlaps it.
//!
//! Layout: one array of `(base, check)` units, eight bytes each, so a successful transition's
//! slot also holds the base of the next step. A state is the index of its unit; its children
//! sit at `base + code` for the codes of their characters (1 and up, most frequent first, 0 for
//! characters no pattern holds), each with `check` equal to its parent. Two flags ride in the
//! base's top bits: the state ends some pattern (directly or through its fail links), and its
//! fail link is not the root. The array is long enough for any base plus any code, so a step
//! reads no unit out of range for a valid state.
//!
//! Semantics are Aho-Corasick's standard overlapping mode, as daachorse's
//! `find_overlapping_iter`: every occurrence of every pattern, reported by end, and at one end
//! the longest first.

use std::hint::select_unpredictable;

/// The base bits of a unit; the rest are flags.
const BASE: u32 = (1 << 30) - 1;
/// Set on a state that ends at least one pattern.
const OUTPUT: u32 = 1 << 31;
/// Set on a state whose fail link is not the root.
const DEEP: u32 = 1 << 30;
/// `check` of a free slot and of the root: equal to no state.
const FREE: u32 = u32::MAX;
/// End of an output chain.
const NO_OUTPUT: u32 = u32::MAX;

#[derive(Debug, Clone, Copy)]
struct Unit {
    base: u32,
    check: u32,
}

/// One pattern a state reports, and the next in its chain (the patterns of its fail links).
#[derive(Debug, Clone, Copy)]
struct Output {
    value: u32,
    /// The pattern's length in bytes.
    len: u32,
    next: u32,
}

/// Where a walk stands: the state, and its unit's base with the flags.
#[derive(Debug, Clone, Copy)]
pub struct Cursor {
    state: u32,
    base: u32,
}

/// Errors building the automaton.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DoubleArrayError {
    #[error("an empty pattern")]
    EmptyPattern,
    #[error("too many states for a double array")]
    TooLarge,
}

/// The automaton. Immutable once built.
#[derive(Debug, Clone)]
pub struct DoubleArray {
    units: Box<[Unit]>,
    /// Each state's fail link (only read for states flagged `DEEP`).
    fail: Box<[u32]>,
    /// Each state's first output, or `NO_OUTPUT`.
    first_output: Box<[u32]>,
    outputs: Box<[Output]>,
    /// Character code by code point, up to the highest code point of the patterns.
    codes: Box<[u32]>,
}

/// The trie while building.
struct Node {
    /// `(code, node)`, sorted by code once all patterns are in.
    children: Vec<(u32, u32)>,
    /// Values of the patterns ending here.
    values: Vec<u32>,
    /// Depth in bytes.
    len: u32,
}

impl DoubleArray {
    /// Builds the automaton over `patterns`, each with the value its matches report.
    pub fn new<P: AsRef<str>>(
        patterns: impl IntoIterator<Item = (P, u32)>,
    ) -> Result<DoubleArray, DoubleArrayError> {
        let patterns: Vec<(P, u32)> = patterns.into_iter().collect();
        // Codes by frequency, so the children most looked for sit closest to their base.
        let mut freq: foldhash::HashMap<char, u32> = Default::default();
        for (p, _) in &patterns {
            if p.as_ref().is_empty() {
                return Err(DoubleArrayError::EmptyPattern);
            }
            for c in p.as_ref().chars() {
                *freq.entry(c).or_default() += 1;
            }
        }
        let mut by_freq: Vec<(char, u32)> = freq.into_iter().collect();
        by_freq.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let top = by_freq.iter().map(|(c, _)| *c as usize).max().unwrap_or(0);
        let mut codes = vec![0u32; if by_freq.is_empty() { 0 } else { top + 1 }];
        for (i, (c, _)) in by_freq.iter().enumerate() {
            codes[*c as usize] = i as u32 + 1;
        }
        let alphabet = by_freq.len() as u32;

        let mut nodes = vec![Node {
            children: Vec::new(),
            values: Vec::new(),
            len: 0,
        }];
        for (p, value) in &patterns {
            let mut n = 0usize;
            for c in p.as_ref().chars() {
                let code = codes[c as usize];
                n = match nodes[n].children.iter().find(|(k, _)| *k == code) {
                    Some(&(_, child)) => child as usize,
                    None => {
                        let child = nodes.len();
                        let len = nodes[n].len + c.len_utf8() as u32;
                        nodes[n].children.push((code, child as u32));
                        nodes.push(Node {
                            children: Vec::new(),
                            values: Vec::new(),
                            len,
                        });
                        child
                    }
                };
            }
            nodes[n].values.push(*value);
        }
        if nodes.len() >= BASE as usize / 2 {
            return Err(DoubleArrayError::TooLarge);
        }
        for n in &mut nodes {
            n.children.sort_unstable();
        }

        // Place the nodes breadth first: a node's slot is known before its children are placed.
        let mut slot = vec![0u32; nodes.len()];
        let mut base = vec![0u32; nodes.len()];
        let mut check: Vec<u32> = vec![FREE; alphabet as usize + 1];
        let mut free = Free::default();
        free.grow(check.len());
        free.take(0);
        let mut order = Vec::with_capacity(nodes.len());
        order.push(0usize);
        let mut i = 0;
        while i < order.len() {
            let n = order[i];
            i += 1;
            let children = &nodes[n].children;
            if children.is_empty() {
                continue;
            }
            let b = if n == 0 { 0 } else { free.fit(children) };
            if b as usize + alphabet as usize + 1 > BASE as usize {
                return Err(DoubleArrayError::TooLarge);
            }
            base[n] = b;
            let need = b as usize + alphabet as usize + 1;
            if check.len() < need {
                check.resize(need, FREE);
                free.grow(need);
            }
            for &(code, child) in children {
                let s = b + code;
                free.take(s as usize);
                check[s as usize] = slot[n];
                slot[child as usize] = s;
                order.push(child as usize);
            }
        }

        // Fail links and output chains, breadth first (a fail link is shallower than its node).
        let len = check.len();
        let mut units: Vec<Unit> = check.iter().map(|&check| Unit { base: 0, check }).collect();
        units[0].check = FREE;
        for (n, &s) in slot.iter().enumerate() {
            units[s as usize].base = base[n];
        }
        let child = |units: &[Unit], state: u32, code: u32| -> Option<u32> {
            let at = (units[state as usize].base & BASE) + code;
            (units[at as usize].check == state).then_some(at)
        };
        let mut fail = vec![0u32; len];
        let mut first_output = vec![NO_OUTPUT; len];
        let mut outputs: Vec<Output> = Vec::new();
        for &n in &order {
            let s = slot[n];
            for &(code, c) in &nodes[n].children {
                let t = slot[c as usize];
                let mut f = if n == 0 { None } else { Some(fail[s as usize]) };
                let link = loop {
                    match f {
                        None => break 0,
                        Some(f0) => {
                            if let Some(to) = child(&units, f0, code) {
                                break to;
                            }
                            f = (f0 != 0).then(|| fail[f0 as usize]);
                        }
                    }
                };
                fail[t as usize] = link;
                let mut head = first_output[link as usize];
                let node = &nodes[c as usize];
                for &value in node.values.iter().rev() {
                    outputs.push(Output {
                        value,
                        len: node.len,
                        next: head,
                    });
                    head = outputs.len() as u32 - 1;
                }
                first_output[t as usize] = head;
            }
        }
        for (s, unit) in units.iter_mut().enumerate() {
            if first_output[s] != NO_OUTPUT {
                unit.base |= OUTPUT;
            }
            if fail[s] != 0 {
                unit.base |= DEEP;
            }
        }
        Ok(DoubleArray {
            units: units.into(),
            fail: fail.into(),
            first_output: first_output.into(),
            outputs: outputs.into(),
            codes: codes.into(),
        })
    }

    /// A walk at the root.
    pub fn start(&self) -> Cursor {
        Cursor {
            state: 0,
            base: self.units[0].base,
        }
    }

    #[inline(always)]
    fn code(&self, c: char) -> u32 {
        self.codes.get(c as usize).copied().unwrap_or(0)
    }

    /// Steps `cur` on `c`; true when the state reached ends some pattern (then
    /// [`DoubleArray::each_output`] lists them).
    #[inline(always)]
    pub fn step(&self, cur: &mut Cursor, c: char) -> bool {
        let code = self.code(c);
        let at = (cur.base & BASE) + code;
        let child = self.units[at as usize];
        let hit = child.check == cur.state;
        if !hit && cur.base & DEEP != 0 {
            *cur = self.fall(cur.state, code);
        } else {
            let root = self.units[code as usize];
            let from_root = select_unpredictable(
                root.check == 0,
                Cursor {
                    state: code,
                    base: root.base,
                },
                Cursor {
                    state: 0,
                    base: self.units[0].base,
                },
            );
            *cur = select_unpredictable(
                hit,
                Cursor {
                    state: at,
                    base: child.base,
                },
                from_root,
            );
        }
        cur.base & OUTPUT != 0
    }

    /// The transition of a state with no child for `code` whose fail link is not the root.
    #[inline(never)]
    fn fall(&self, state: u32, code: u32) -> Cursor {
        let mut s = self.fail[state as usize];
        loop {
            let at = (self.units[s as usize].base & BASE) + code;
            let unit = self.units[at as usize];
            if unit.check == s {
                return Cursor {
                    state: at,
                    base: unit.base,
                };
            }
            if s == 0 {
                return self.start();
            }
            s = self.fail[s as usize];
        }
    }

    /// Calls `f(value, len)` for each pattern ending at `cur`, longest first (`len` in bytes).
    #[inline]
    pub fn each_output(&self, cur: Cursor, mut f: impl FnMut(u32, u32)) {
        let mut o = self.first_output[cur.state as usize];
        while let Some(out) = self.outputs.get(o as usize) {
            f(out.value, out.len);
            o = out.next;
        }
    }

    /// Calls `f(start, end, value)` for every occurrence of every pattern in `text` (byte
    /// offsets), by end and at one end the longest first.
    pub fn for_each_overlapping(&self, text: &str, mut f: impl FnMut(usize, usize, u32)) {
        let mut cur = self.start();
        for (at, c) in text.char_indices() {
            if self.step(&mut cur, c) {
                let end = at + c.len_utf8();
                self.each_output(cur, |value, len| f(end - len as usize, end, value));
            }
        }
    }

    /// Bytes held on the heap.
    pub fn heap_bytes(&self) -> usize {
        use std::mem::size_of_val;
        size_of_val(&*self.units)
            + size_of_val(&*self.fail)
            + size_of_val(&*self.first_output)
            + size_of_val(&*self.outputs)
            + size_of_val(&*self.codes)
    }

    /// Number of units (states and free slots).
    pub fn len(&self) -> usize {
        self.units.len()
    }

    pub fn is_empty(&self) -> bool {
        self.outputs.is_empty()
    }
}

/// The free slots while placing, as a bitmap (a set bit is a taken slot).
#[derive(Default)]
struct Free {
    taken: Vec<u64>,
    /// No slot below this one is free.
    first: usize,
}

impl Free {
    fn grow(&mut self, slots: usize) {
        let words = slots.div_ceil(64) + 1;
        if self.taken.len() < words {
            self.taken.resize(words, 0);
        }
    }

    fn is_free(&self, s: usize) -> bool {
        self.taken
            .get(s / 64)
            .is_none_or(|w| w & (1 << (s % 64)) == 0)
    }

    fn take(&mut self, s: usize) {
        self.grow(s + 1);
        self.taken[s / 64] |= 1 << (s % 64);
        while !self.is_free(self.first) {
            self.first += 1;
        }
    }

    /// The next free slot at or after `s`.
    fn next_free(&self, s: usize) -> usize {
        let mut w = s / 64;
        let mut bits = self.taken.get(w).map_or(0, |x| *x) | ((1u64 << (s % 64)) - 1);
        loop {
            if bits != u64::MAX {
                return w * 64 + bits.trailing_ones() as usize;
            }
            w += 1;
            bits = self.taken.get(w).map_or(0, |x| *x);
        }
    }

    /// The lowest base at which every child's slot (`base + code`) is free; base 0 is the
    /// root's.
    fn fit(&self, children: &[(u32, u32)]) -> u32 {
        let low = children[0].0 as usize;
        let mut f = self.next_free(self.first.max(low + 1));
        loop {
            let b = f - low;
            if children[1..]
                .iter()
                .all(|&(code, _)| self.is_free(b + code as usize))
            {
                return b as u32;
            }
            f = self.next_free(f + 1);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use daachorse::CharwiseDoubleArrayAhoCorasick;
    use proptest::prelude::*;

    fn ours(words: &[&str], text: &str) -> Vec<(usize, usize, u32)> {
        let a = DoubleArray::new(words.iter().zip(0u32..).map(|(w, i)| (*w, i))).unwrap();
        let mut found = Vec::new();
        a.for_each_overlapping(text, |s, e, v| found.push((s, e, v)));
        found
    }

    fn theirs(words: &[&str], text: &str) -> Vec<(usize, usize, u32)> {
        let a = CharwiseDoubleArrayAhoCorasick::<u32>::new(words).unwrap();
        a.find_overlapping_iter(text)
            .map(|m| (m.start(), m.end(), m.value()))
            .collect()
    }

    #[test]
    fn finds_overlapping_matches_longest_first() {
        let words = ["he", "she", "his", "hers", "赌博", "博彩", "赌"];
        let text = "ushers 赌博彩 his";
        assert_eq!(ours(&words, text), theirs(&words, text));
        assert_eq!(
            ours(&words, "she"),
            vec![(0, 3, 1), (1, 3, 0)],
            "at one end the longest first"
        );
    }

    #[test]
    fn fail_links_deeper_than_the_root_are_followed() {
        // After "abcd" fails on "e", the walk must fall to "bcd"'s state, then to "cd", and
        // take "cde" there.
        let words = ["abcdx", "bcdy", "cde"];
        assert_eq!(ours(&words, "abcde"), vec![(2, 5, 2)]);
        assert_eq!(ours(&words, "abcde"), theirs(&words, "abcde"));
    }

    #[test]
    fn characters_outside_the_patterns_reset_the_walk() {
        let words = ["ab", "b"];
        assert_eq!(ours(&words, "a\u{10FFFF}b"), vec![(5, 6, 1)]);
        assert_eq!(ours(&words, "aZb"), theirs(&words, "aZb"));
    }

    #[test]
    fn empty_patterns_are_refused() {
        assert_eq!(
            DoubleArray::new([("", 0)]).unwrap_err(),
            DoubleArrayError::EmptyPattern
        );
        let none: [(&str, u32); 0] = [];
        let a = DoubleArray::new(none).unwrap();
        let mut n = 0;
        a.for_each_overlapping("anything", |_, _, _| n += 1);
        assert_eq!(n, 0);
        assert!(a.is_empty());
    }

    /// The built-in lexicon's words over its own files' text: every word occurs, most inside
    /// others' neighbourhoods, and the fail links run deep.
    #[test]
    fn agrees_with_daachorse_on_the_built_in_lexicon() {
        let files = [
            include_str!("../../keywords/abuse.txt"),
            include_str!("../../keywords/advertising.txt"),
            include_str!("../../keywords/copyright.txt"),
            include_str!("../../keywords/fraud.txt"),
            include_str!("../../keywords/illegal.txt"),
            include_str!("../../keywords/other.txt"),
            include_str!("../../keywords/politics.txt"),
            include_str!("../../keywords/porn.txt"),
            include_str!("../../keywords/vulgar.txt"),
        ];
        let mut words: Vec<&str> = files
            .iter()
            .flat_map(|f| f.lines())
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split('\t').next())
            .filter(|w| !w.is_empty())
            .collect();
        words.sort_unstable();
        words.dedup();
        assert!(words.len() > 1000, "{} words", words.len());
        let text = files.concat();
        let found = ours(&words, &text);
        assert!(found.len() > words.len(), "{} matches", found.len());
        assert_eq!(found, theirs(&words, &text));
    }

    proptest! {
        #[test]
        fn agrees_with_daachorse(
            words in prop::collection::hash_set("[abc赌博彩一]{1,5}", 1..24),
            text in "[abcd赌博彩一二 ]{0,60}",
        ) {
            let words: Vec<&str> = words.iter().map(String::as_str).collect();
            prop_assert_eq!(ours(&words, &text), theirs(&words, &text));
        }

        /// Long words over a few characters: fail links many levels deep, taken in chains.
        #[test]
        fn agrees_with_daachorse_on_deep_fail_chains(
            words in prop::collection::hash_set("[ab赌]{1,12}", 1..40),
            text in "[ab赌c]{0,200}",
        ) {
            let words: Vec<&str> = words.iter().map(String::as_str).collect();
            prop_assert_eq!(ours(&words, &text), theirs(&words, &text));
        }
    }
}
