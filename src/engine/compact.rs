//! A compact character-level Aho-Corasick automaton for small rule sets (per-app keyword tables).
//!
//! Why hand-written: daachorse's charwise automaton keeps a character-code map that is dense up to
//! the highest code point among the patterns, so a 1,000-word CJK table costs ~290 KiB however few
//! characters it uses, and aho-corasick's NFAs are larger still (DESIGN.md has the figures). With
//! one table per app and 10,000 apps that decides whether the gateway fits in memory. Here every
//! state stores only its own outgoing edges, sorted by character, in one shared array: about
//! 28 bytes per trie node. Look-ups binary-search a state's edges, which is slower per character
//! than a double array but irrelevant for a few-thousand-character text against a small table.
//!
//! Semantics match daachorse's standard mode: every occurrence of every pattern, overlapping ones
//! included, reported at the position where it ends.

const ROOT: u32 = 0;
const NONE: u32 = u32::MAX;

#[derive(Debug, Clone, Copy)]
struct State {
    /// This state's edges are `edges[first_edge..first_edge + edge_count]`, sorted by char.
    first_edge: u32,
    edge_count: u32,
    fail: u32,
    /// The nearest state on the fail chain (excluding this one) that ends a pattern.
    dict: u32,
    /// The pattern ending exactly here, or `NONE`.
    pattern: u32,
}

/// The automaton. Immutable once built.
#[derive(Debug, Clone)]
pub struct CompactAc {
    states: Vec<State>,
    edges: Vec<(char, u32)>,
    /// Pattern lengths in bytes (a match's start is its end minus this).
    lens: Vec<u32>,
}

impl CompactAc {
    /// Builds the automaton; pattern `i` reports value `i`. Duplicates report the last index.
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> CompactAc {
        // 1. A trie with per-node child lists.
        let mut children: Vec<Vec<(char, u32)>> = vec![Vec::new()];
        let mut terminal: Vec<u32> = vec![NONE];
        let mut lens = Vec::with_capacity(patterns.len());
        for (id, p) in patterns.iter().enumerate() {
            let p = p.as_ref();
            lens.push(p.len() as u32);
            let mut s = ROOT as usize;
            for c in p.chars() {
                s = match children[s].iter().find(|(ch, _)| *ch == c) {
                    Some(&(_, t)) => t as usize,
                    None => {
                        let t = children.len();
                        children.push(Vec::new());
                        terminal.push(NONE);
                        children[s].push((c, t as u32));
                        t
                    }
                };
            }
            if !p.is_empty() {
                terminal[s] = id as u32;
            }
        }
        // 2. Flatten the edges, sorted per state.
        let mut states = Vec::with_capacity(children.len());
        let mut edges = Vec::with_capacity(children.len().saturating_sub(1));
        for (s, kids) in children.iter_mut().enumerate() {
            kids.sort_unstable_by_key(|(c, _)| *c);
            states.push(State {
                first_edge: edges.len() as u32,
                edge_count: kids.len() as u32,
                fail: ROOT,
                dict: NONE,
                pattern: terminal[s],
            });
            edges.extend_from_slice(kids);
        }
        let mut ac = CompactAc {
            states,
            edges,
            lens,
        };
        // 3. Fail and dictionary links, breadth first.
        let mut queue = std::collections::VecDeque::new();
        for i in ac.edge_range(ROOT) {
            queue.push_back(ac.edges[i].1);
        }
        while let Some(s) = queue.pop_front() {
            for i in ac.edge_range(s) {
                let (c, t) = ac.edges[i];
                let mut f = ac.states[s as usize].fail;
                let fail = loop {
                    if let Some(next) = ac.goto(f, c) {
                        break next;
                    }
                    if f == ROOT {
                        break ROOT;
                    }
                    f = ac.states[f as usize].fail;
                };
                let fail = if fail == t { ROOT } else { fail };
                let dict = if ac.states[fail as usize].pattern != NONE {
                    fail
                } else {
                    ac.states[fail as usize].dict
                };
                ac.states[t as usize].fail = fail;
                ac.states[t as usize].dict = dict;
                queue.push_back(t);
            }
        }
        ac
    }

    fn edge_range(&self, s: u32) -> std::ops::Range<usize> {
        let st = &self.states[s as usize];
        st.first_edge as usize..(st.first_edge + st.edge_count) as usize
    }

    fn goto(&self, s: u32, c: char) -> Option<u32> {
        let range = self.edge_range(s);
        let edges = &self.edges[range];
        edges
            .binary_search_by_key(&c, |(ch, _)| *ch)
            .ok()
            .map(|i| edges[i].1)
    }

    /// Calls `found(start, end, pattern)` for every occurrence in `text` (byte offsets).
    pub fn for_each_overlapping(&self, text: &str, mut found: impl FnMut(usize, usize, u32)) {
        let mut s = ROOT;
        for (at, c) in text.char_indices() {
            loop {
                if let Some(next) = self.goto(s, c) {
                    s = next;
                    break;
                }
                if s == ROOT {
                    break;
                }
                s = self.states[s as usize].fail;
            }
            let end = at + c.len_utf8();
            let mut o = if self.states[s as usize].pattern != NONE {
                s
            } else {
                self.states[s as usize].dict
            };
            while o != NONE {
                let p = self.states[o as usize].pattern;
                found(end - self.lens[p as usize] as usize, end, p);
                o = self.states[o as usize].dict;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn all(ac: &CompactAc, text: &str) -> Vec<(usize, usize, u32)> {
        let mut out = Vec::new();
        ac.for_each_overlapping(text, |s, e, p| out.push((s, e, p)));
        out.sort_unstable();
        out
    }

    #[test]
    fn overlapping_matches() {
        let ac = CompactAc::new(&["中华人民共和国", "人民", "she", "he", "hers"]);
        assert_eq!(all(&ac, "中华人民银行"), [(6, 12, 1)]);
        assert_eq!(all(&ac, "中华人民共和国"), [(0, 21, 0), (6, 12, 1)]);
        assert_eq!(all(&ac, "ushers"), [(1, 4, 2), (2, 4, 3), (2, 6, 4)]);
        assert!(all(&CompactAc::new::<&str>(&[]), "anything").is_empty());
    }

    proptest! {
        /// The same occurrences as daachorse, on small alphabets where overlaps are frequent.
        #[test]
        fn agrees_with_daachorse(
            words in proptest::collection::btree_set("[ab赌博]{1,4}", 1..20),
            text in "[ab赌博x]{0,60}",
        ) {
            let words: Vec<String> = words.into_iter().collect();
            let ac = CompactAc::new(&words);
            let da = daachorse::CharwiseDoubleArrayAhoCorasick::<u32>::new(&words).unwrap();
            let mut want: Vec<(usize, usize, u32)> =
                da.find_overlapping_iter(&text).map(|m| (m.start(), m.end(), m.value())).collect();
            want.sort_unstable();
            prop_assert_eq!(all(&ac, &text), want);
        }
    }
}
