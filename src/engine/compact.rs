//! A compact matcher for small rule sets (per-app keyword tables): a character-level radix trie,
//! walked from every position of the text.
//!
//! Why hand-written, and why not Aho-Corasick here: with one table per app and 10,000 apps,
//! memory per table decides whether the gateway fits in a machine. daachorse's charwise automaton
//! keeps a character-code map dense up to the highest code point among its patterns (~290 KiB for
//! a 1,000-word CJK table however few characters it uses), aho-corasick's NFAs are larger still,
//! and even a sparse Aho-Corasick needs a state, a fail link and an edge per pattern character
//! (~24 bytes each, ~120 KiB for 1,000 five-character words). A radix trie needs no fail links and
//! stores single-child chains as one label, so 1,000 words of operator vocabulary take one node
//! per word plus the branch points, ~16 bytes each, and their characters once as UTF-8.
//!
//! The price is walking the trie afresh from each text position instead of once over the text:
//! at most one step per pattern character, and for most positions none, because a bitmap of the
//! patterns' first characters turns away positions no pattern starts with before any search.
//! For a table of at most 1,000 words of at most 50 characters that bound is small, and texts
//! are normalized (runs collapsed) before they get here.
//!
//! Semantics match Aho-Corasick's standard overlapping mode: every occurrence of every pattern,
//! overlapping ones included (reported by start position rather than end).

const NONE: u32 = u32::MAX;
/// Bits in the first-character filter (a power of two).
const FILTER_BITS: usize = 4096;

/// The trie. Immutable once built.
///
/// Nodes are laid out breadth first, so the children of node `i` are the contiguous block
/// `child_start[i]..child_start[i + 1]`, sorted by first character; node `i`'s label is the
/// first character `first[i]` followed by `labels[label_start[i]..label_start[i + 1]]`. A
/// sentinel entry at the end closes both ranges.
#[derive(Debug, Clone)]
pub struct CompactTrie {
    first: Box<[char]>,
    label_start: Box<[u32]>,
    child_start: Box<[u32]>,
    /// The pattern ending at this node, or `NONE`.
    value: Box<[u32]>,
    labels: Box<str>,
    /// Bit `c % FILTER_BITS` is set when some pattern starts with a character `c`.
    filter: Box<[u64]>,
}

impl CompactTrie {
    /// Builds the trie; pattern `i` reports value `i`. Empty patterns are ignored; of duplicates
    /// the last one reports.
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> CompactTrie {
        // 1. A plain character trie with per-node child lists.
        let mut children: Vec<Vec<(char, u32)>> = vec![Vec::new()];
        let mut terminal: Vec<u32> = vec![NONE];
        for (id, p) in patterns.iter().enumerate() {
            let p = p.as_ref();
            let mut s = 0usize;
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
        // 2. Breadth-first layout, folding every chain of single-child, non-terminal nodes into
        //    the label of the node that starts it. `ends[i]` is the plain-trie node where
        //    compressed node `i`'s label ends: its children and value are that node's.
        let mut first = vec!['\0'];
        let mut label_end = vec![0u32];
        let mut child_start = Vec::new();
        let mut value = vec![NONE];
        let mut ends = vec![0usize];
        let mut labels = String::new();
        let mut filter = vec![0u64; FILTER_BITS / 64];
        let mut i = 0;
        while i < ends.len() {
            child_start.push(first.len() as u32);
            let mut kids = std::mem::take(&mut children[ends[i]]);
            kids.sort_unstable_by_key(|(c, _)| *c);
            for &(c, t) in &kids {
                if i == 0 {
                    let bit = c as usize % FILTER_BITS;
                    filter[bit / 64] |= 1 << (bit % 64);
                }
                let mut end = t as usize;
                while terminal[end] == NONE && children[end].len() == 1 {
                    let (next_c, next) = children[end][0];
                    labels.push(next_c);
                    end = next as usize;
                }
                first.push(c);
                value.push(terminal[end]);
                ends.push(end);
                label_end.push(labels.len() as u32);
            }
            i += 1;
        }
        // Labels were written in node order, so node k's starts where node k-1's ends.
        let mut label_start = Vec::with_capacity(label_end.len() + 1);
        label_start.push(0);
        label_start.extend(label_end);
        child_start.push(first.len() as u32);
        CompactTrie {
            first: first.into(),
            label_start: label_start.into(),
            child_start: child_start.into(),
            value: value.into(),
            labels: labels.into(),
            filter: filter.into(),
        }
    }

    fn may_start(&self, c: char) -> bool {
        let bit = c as usize % FILTER_BITS;
        self.filter[bit / 64] & (1 << (bit % 64)) != 0
    }

    /// The child of `node` whose label starts with `c`.
    fn child(&self, node: usize, c: char) -> Option<usize> {
        let (from, to) = (
            self.child_start[node] as usize,
            self.child_start[node + 1] as usize,
        );
        self.first[from..to]
            .binary_search(&c)
            .ok()
            .map(|k| from + k)
    }

    fn label(&self, node: usize) -> &str {
        &self.labels[self.label_start[node] as usize..self.label_start[node + 1] as usize]
    }

    /// Calls `found(start, end, pattern)` for every occurrence in `text` (byte offsets).
    pub fn for_each_overlapping(&self, text: &str, mut found: impl FnMut(usize, usize, u32)) {
        for (start, c) in text.char_indices() {
            if !self.may_start(c) {
                continue;
            }
            let (mut node, mut c, mut at) = (0usize, c, start);
            while let Some(child) = self.child(node, c) {
                let rest = self.label(child);
                at += c.len_utf8();
                if !text[at..].starts_with(rest) {
                    break;
                }
                at += rest.len();
                if self.value[child] != NONE {
                    found(start, at, self.value[child]);
                }
                match text[at..].chars().next() {
                    Some(next) => (node, c) = (child, next),
                    None => break,
                }
            }
        }
    }

    /// Heap bytes held (for capacity planning and the scale benchmark).
    pub fn heap_bytes(&self) -> usize {
        self.first.len() * 4
            + self.label_start.len() * 4
            + self.child_start.len() * 4
            + self.value.len() * 4
            + self.labels.len()
            + self.filter.len() * 8
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn all(t: &CompactTrie, text: &str) -> Vec<(usize, usize, u32)> {
        let mut out = Vec::new();
        t.for_each_overlapping(text, |s, e, p| out.push((s, e, p)));
        out.sort_unstable();
        out
    }

    #[test]
    fn overlapping_matches() {
        let t = CompactTrie::new(&["中华人民共和国", "人民", "she", "he", "hers"]);
        assert_eq!(all(&t, "中华人民银行"), [(6, 12, 1)]);
        assert_eq!(all(&t, "中华人民共和国"), [(0, 21, 0), (6, 12, 1)]);
        assert_eq!(all(&t, "ushers"), [(1, 4, 2), (2, 4, 3), (2, 6, 4)]);
        assert!(all(&CompactTrie::new::<&str>(&[]), "anything").is_empty());
        // Patterns that are prefixes of each other, and a text ending mid-label.
        let t = CompactTrie::new(&["a", "abc", "abcdef"]);
        assert_eq!(all(&t, "abcde"), [(0, 1, 0), (0, 3, 1)]);
    }

    #[test]
    fn chains_are_folded_into_labels() {
        let words = ["赌博网站", "赌球", "六合彩开奖"];
        let t = CompactTrie::new(&words);
        // root, 赌 (branch), 博网站, 球, 六合彩开奖: five nodes and a sentinel.
        assert_eq!(t.first.len(), 5);
        assert_eq!(t.label_start.len(), 6);
        assert_eq!(all(&t, "看六合彩开奖和赌球"), [(3, 18, 2), (21, 27, 1)]);
    }

    proptest! {
        /// The same occurrences as daachorse, on small alphabets where overlaps are frequent.
        #[test]
        fn agrees_with_daachorse(
            words in proptest::collection::btree_set("[ab赌博]{1,6}", 1..30),
            text in "[ab赌博x]{0,60}",
        ) {
            let words: Vec<String> = words.into_iter().collect();
            let t = CompactTrie::new(&words);
            let da = daachorse::CharwiseDoubleArrayAhoCorasick::<u32>::new(&words).unwrap();
            let mut want: Vec<(usize, usize, u32)> =
                da.find_overlapping_iter(&text).map(|m| (m.start(), m.end(), m.value())).collect();
            want.sort_unstable();
            prop_assert_eq!(all(&t, &text), want);
        }
    }
}
