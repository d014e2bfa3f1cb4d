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
//! patterns' first three characters turns away positions no pattern starts with before any
//! search.
//! For a table of at most 1,000 words of at most 50 characters that bound is small, and texts
//! are normalized (runs collapsed) before they get here.
//!
//! Semantics match Aho-Corasick's standard overlapping mode: every occurrence of every pattern,
//! overlapping ones included (reported by start position rather than end).

const NONE: u32 = u32::MAX;
/// Bits per pattern in the start filter: ~3% of text positions pass it at random.
const FILTER_BITS_PER_PATTERN: usize = 32;

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
    /// The start filter: a bitmap over a hash of each pattern's first three characters (padded
    /// with `'\0'` for shorter patterns). A text position whose next three characters' bit is
    /// clear (and, when the table has shorter patterns, whose next one or two characters' bits
    /// are) starts no pattern, so most positions are turned away by a bit test in a bitmap of
    /// ~4 KiB instead of a walk: with thousands of apps the table a request uses is rarely in
    /// cache, each step of a walk is a dependent load from memory, and the bitmap is the only
    /// part of the table that every position touches (its loads do not depend on each other).
    filter: Box<[u64]>,
    /// Some pattern has one character / two characters.
    has_one: bool,
    has_two: bool,
    /// The root's children by first character: an open-addressing table (linear probing, at most
    /// half full) of `(character's low 16 bits) << 16 | child index`, `EMPTY` where free. One
    /// probe usually decides, where a binary search over a thousand children takes ten dependent
    /// loads from a table that is likely not in cache. Empty when the root has too many children
    /// for 16-bit indexes (never for a table of at most 1,000 entries): then `child` searches.
    root: Box<[u32]>,
}

const EMPTY: u32 = u32::MAX;

/// Slot of `c` in a root table of `len` (a power of two) slots.
fn root_slot(c: char, len: usize) -> usize {
    ((c as u32).wrapping_mul(0x9E37_79B1) as usize >> 8) & (len - 1)
}

/// The start filter's bit for a pattern starting with `a`, `b`, `c` (`'\0'` past its end).
fn filter_bit(a: char, b: char, c: char, mask: usize) -> usize {
    let h = (a as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (b as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F)
        ^ (c as u64).wrapping_mul(0x1656_67B1_9E37_79F9);
    (h >> 32) as usize & mask
}

impl CompactTrie {
    /// Builds the trie; pattern `i` reports value `i`. Empty patterns are ignored; of duplicates
    /// the last one reports.
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> CompactTrie {
        // 1. A plain character trie, its patterns taken in sorted order (stable, so of
        //    duplicates the last still reports): a pattern then shares its path with the one
        //    before it, so the child it continues with, if there is one, is always the last
        //    child made. Each node keeps its children as a list from the newest, in three flat
        //    arrays: no allocation per node.
        let mut order: Vec<u32> = (0..patterns.len() as u32).collect();
        order.sort_by(|&a, &b| {
            patterns[a as usize]
                .as_ref()
                .cmp(patterns[b as usize].as_ref())
        });
        let mut node_char: Vec<char> = vec!['\0'];
        let mut newest_child: Vec<u32> = vec![NONE];
        let mut older_sibling: Vec<u32> = vec![NONE];
        let mut terminal: Vec<u32> = vec![NONE];
        for id in order {
            let p = patterns[id as usize].as_ref();
            let mut s = 0usize;
            for c in p.chars() {
                let newest = newest_child[s];
                s = if newest != NONE && node_char[newest as usize] == c {
                    newest as usize
                } else {
                    let t = node_char.len();
                    node_char.push(c);
                    newest_child.push(NONE);
                    older_sibling.push(newest);
                    terminal.push(NONE);
                    newest_child[s] = t as u32;
                    t
                };
            }
            if !p.is_empty() {
                terminal[s] = id;
            }
        }
        let only_child = |n: usize| {
            let k = newest_child[n];
            (k != NONE && older_sibling[k as usize] == NONE).then_some(k as usize)
        };
        // 2. Breadth-first layout, folding every chain of single-child, non-terminal nodes into
        //    the label of the node that starts it. `ends[i]` is the plain-trie node where
        //    compressed node `i`'s label ends: its children and value are that node's.
        let mut first = vec!['\0'];
        let mut label_end = vec![0u32];
        let mut child_start = Vec::new();
        let mut value = vec![NONE];
        let mut ends = vec![0usize];
        let mut labels = String::new();
        let bits = (patterns.len() * FILTER_BITS_PER_PATTERN)
            .next_power_of_two()
            .clamp(512, 1 << 20);
        let mut filter = vec![0u64; bits / 64];
        let (mut has_one, mut has_two) = (false, false);
        for p in patterns {
            let mut chars = p.as_ref().chars();
            if let Some(a) = chars.next() {
                let b = chars.next().unwrap_or('\0');
                let c = chars.next().unwrap_or('\0');
                has_one |= b == '\0';
                has_two |= b != '\0' && c == '\0';
                let bit = filter_bit(a, b, c, bits - 1);
                filter[bit / 64] |= 1 << (bit % 64);
            }
        }
        let mut kids: Vec<(char, u32)> = Vec::new();
        let mut i = 0;
        while i < ends.len() {
            child_start.push(first.len() as u32);
            kids.clear();
            let mut k = newest_child[ends[i]];
            while k != NONE {
                kids.push((node_char[k as usize], k));
                k = older_sibling[k as usize];
            }
            kids.sort_unstable_by_key(|(c, _)| *c);
            for &(c, t) in &kids {
                let mut end = t as usize;
                while terminal[end] == NONE
                    && let Some(next) = only_child(end)
                {
                    labels.push(node_char[next]);
                    end = next;
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
        let root_children = child_start[1] as usize - 1;
        let root = if root_children == 0 || root_children >= 0xFFFF {
            Vec::new()
        } else {
            let len = (root_children * 2).next_power_of_two();
            let mut slots = vec![EMPTY; len];
            for (k, &c) in first[1..=root_children].iter().enumerate() {
                let mut at = root_slot(c, len);
                while slots[at] != EMPTY {
                    at = (at + 1) & (len - 1);
                }
                slots[at] = (c as u32) << 16 | (k as u32 + 1);
            }
            slots
        };
        CompactTrie {
            first: first.into(),
            label_start: label_start.into(),
            child_start: child_start.into(),
            value: value.into(),
            labels: labels.into(),
            filter: filter.into(),
            has_one,
            has_two,
            root: root.into(),
        }
    }

    fn filter_has(&self, a: char, b: char, c: char) -> bool {
        let bit = filter_bit(a, b, c, self.filter.len() * 64 - 1);
        self.filter[bit / 64] & (1 << (bit % 64)) != 0
    }

    /// Whether a pattern may start with `a`, `b`, `c` (the text's next three characters).
    fn may_start(&self, a: char, b: char, c: char) -> bool {
        self.filter_has(a, b, c)
            || (self.has_two && self.filter_has(a, b, '\0'))
            || (self.has_one && self.filter_has(a, '\0', '\0'))
    }

    /// The child of `node` whose label starts with `c`.
    fn child(&self, node: usize, c: char) -> Option<usize> {
        if node == 0 && !self.root.is_empty() {
            let len = self.root.len();
            let mut at = root_slot(c, len);
            loop {
                let slot = self.root[at];
                if slot == EMPTY {
                    return None;
                }
                let k = (slot & 0xFFFF) as usize;
                if slot >> 16 == (c as u32) & 0xFFFF && (c as u32 <= 0xFFFF || self.first[k] == c) {
                    return Some(k);
                }
                at = (at + 1) & (len - 1);
            }
        }
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
        let mut chars = text.char_indices();
        let (mut here, mut next) = (chars.next(), chars.next());
        let mut after = chars.next();
        while let Some((start, c)) = here {
            let (b, c2) = (next.map_or('\0', |n| n.1), after.map_or('\0', |n| n.1));
            if self.may_start(c, b, c2) {
                self.walk(text, start, c, &mut found);
            }
            (here, next, after) = (next, after, chars.next());
        }
    }

    /// Reports every pattern that starts at `start` (where the text has `c`).
    fn walk(&self, text: &str, start: usize, c: char, found: &mut impl FnMut(usize, usize, u32)) {
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

    /// Heap bytes held (for capacity planning and the scale benchmark).
    pub fn heap_bytes(&self) -> usize {
        self.first.len() * 4
            + self.label_start.len() * 4
            + self.child_start.len() * 4
            + self.value.len() * 4
            + self.labels.len()
            + self.filter.len() * 8
            + self.root.len() * 4
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
        // Characters beyond the BMP whose low 16 bits equal a BMP character's.
        let t = CompactTrie::new(&["\u{1F600}x", "\u{F600}y"]);
        assert_eq!(all(&t, "\u{F600}x\u{1F600}y"), Vec::new());
        assert_eq!(all(&t, "\u{1F600}x\u{F600}y"), [(0, 5, 0), (5, 9, 1)]);
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

    #[test]
    fn of_duplicates_the_last_reports_in_any_order() {
        let t = CompactTrie::new(&["赌博", "ab", "b", "ab", "a"]);
        assert_eq!(all(&t, "ab"), [(0, 1, 4), (0, 2, 3), (1, 2, 2)]);
        assert_eq!(all(&t, "赌博"), [(0, 6, 0)]);
    }

    proptest! {
        /// The same occurrences as daachorse, on small alphabets where overlaps are frequent.
        #[test]
        fn agrees_with_daachorse(
            words in proptest::collection::btree_set("[ab赌博]{1,6}", 1..30)
                .prop_map(|w| w.into_iter().collect::<Vec<String>>())
                .prop_shuffle(),
            text in "[ab赌博x]{0,60}",
        ) {
            let t = CompactTrie::new(&words);
            let da = daachorse::CharwiseDoubleArrayAhoCorasick::<u32>::new(&words).unwrap();
            let mut want: Vec<(usize, usize, u32)> =
                da.find_overlapping_iter(&text).map(|m| (m.start(), m.end(), m.value())).collect();
            want.sort_unstable();
            prop_assert_eq!(all(&t, &text), want);
        }
    }
}
