//! Normalization: the canonical character stream the automaton runs over, with a map back to the
//! original text.
//!
//! Each input character is folded ([`fold`](super::fold)) and then:
//! - invisible characters vanish without trace;
//! - whitespace and noise vanish too, but the next kept character remembers the [`Gap`] before
//!   it, so Latin word boundaries survive (`gr ass` is two words, `grass` one) while the
//!   characters of a word may be spread out (`赌 博`, `赌.博`, `f.u.c.k`, `f u c k`);
//! - a run of the same character collapses into one stream character that records the run
//!   length (`赌赌赌博` → `赌博` with 赌 ×3, `fuuuck` → `fuck` with u ×3). Patterns are collapsed
//!   the same way and a match requires the text's runs to be at least the pattern's, so
//!   `asss` matches `ass` and `as` does not. Digits never collapse (`13888888888` must stay a
//!   phone number), and Latin letters collapse only when nothing was dropped between them
//!   (`abc.cn` keeps both `c`s; `f-u-u-u-c-k` is therefore not `fuck`, a documented limit).
//!   CJK characters collapse across anything dropped (`赌.赌.博`).
//!
//! The output is UTF-8; `spans` has one entry per stream character with the byte range of the
//! input it came from (a whole run for a collapsed character).

pub use super::fold::is_cjk;
use super::fold::{Fold, Folder};

/// What was dropped just before a stream character.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Gap {
    #[default]
    None,
    /// Punctuation, symbols or emoji, but no whitespace.
    Noise,
    /// At least one whitespace character.
    Space,
}

/// One stream character's origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// Byte offset of the character in the normalized text.
    pub norm: u32,
    /// Byte range of the source character(s) in the input.
    pub orig_start: u32,
    pub orig_end: u32,
    /// How many times the character repeated in the input (1 if it did not).
    pub run: u16,
    /// What was dropped before it.
    pub gap: Gap,
}

/// A normalized text and its offset map.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Normalized {
    pub text: String,
    pub spans: Vec<Span>,
    /// Whether `text` holds an ASCII letter or digit (every detector needs one).
    pub alnum: bool,
}

impl Normalized {
    /// Normalizes `input` into this value, reusing its buffers.
    pub fn fill(&mut self, input: &str) {
        self.text.clear();
        self.spans.clear();
        self.alnum = false;
        self.text.reserve(input.len());
        self.spans.reserve(input.len() / 2);
        let mut gap = Gap::None;
        let mut last: Option<char> = None;
        let folder = Folder::get();
        for (at, c) in input.char_indices() {
            let end = at + c.len_utf8();
            match folder.fold(c) {
                Fold::Drop => {}
                Fold::Space => gap = Gap::Space,
                Fold::Noise => gap = gap.max(Gap::Noise),
                Fold::One(k) => {
                    self.emit(k, at, end, gap, &mut last);
                    gap = Gap::None;
                }
                Fold::Many(s) => {
                    for k in s.chars() {
                        self.emit(k, at, end, gap, &mut last);
                        gap = Gap::None;
                    }
                }
            }
        }
    }

    #[inline]
    fn emit(&mut self, k: char, at: usize, end: usize, gap: Gap, last: &mut Option<char>) {
        if *last == Some(k)
            && !k.is_ascii_digit()
            && !(gap != Gap::None && k.is_ascii_alphanumeric())
            && let Some(prev) = self.spans.last_mut()
        {
            prev.orig_end = end as u32;
            prev.run = prev.run.saturating_add(1);
            return;
        }
        // Inputs are bounded by the request body limit (far below 4 GiB), so offsets fit in u32.
        self.spans.push(Span {
            norm: self.text.len() as u32,
            orig_start: at as u32,
            orig_end: end as u32,
            run: 1,
            gap,
        });
        self.text.push(k);
        self.alnum |= k.is_ascii_alphanumeric();
        *last = Some(k);
    }

    /// The index of the span starting at normalized byte offset `norm`.
    pub fn span_at(&self, norm: usize) -> usize {
        self.spans.partition_point(|s| (s.norm as usize) < norm)
    }

    /// The input byte range covered by spans `first..last` (exclusive).
    pub fn original_range(&self, first: usize, last: usize) -> (usize, usize) {
        match (
            self.spans.get(first),
            last.checked_sub(1).and_then(|i| self.spans.get(i)),
        ) {
            (Some(a), Some(b)) => (a.orig_start as usize, b.orig_end as usize),
            _ => (0, 0),
        }
    }

    /// The stream character of span `i`.
    pub fn char_at(&self, i: usize) -> Option<char> {
        let start = self.spans.get(i)?.norm as usize;
        self.text.get(start..)?.chars().next()
    }
}

/// Normalizes `input` (see the module docs for the rules).
pub fn normalize(input: &str) -> Normalized {
    let mut n = Normalized::default();
    n.fill(input);
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> String {
        normalize(s).text
    }

    #[test]
    fn alnum_says_whether_the_stream_holds_a_latin_letter_or_digit() {
        let mut reused = Normalized::default();
        for input in [
            "赌博",
            "ｆｕｃｋ",
            "加我微信",
            "一三八",
            "😀 !",
            "",
            "abc",
            "价格 9 元",
            "赌博",
        ] {
            let fresh = normalize(input);
            let want = fresh.text.bytes().any(|b| b.is_ascii_alphanumeric());
            assert_eq!(fresh.alnum, want, "input {input:?}");
            // Refilling a used value gives the same result as a fresh one.
            reused.fill(input);
            assert_eq!(reused, fresh, "input {input:?}");
        }
    }

    #[test]
    fn rules_table() {
        let table = [
            ("ｆｕｃｋ", "fuck"),
            ("FuCk", "fuck"),
            ("f.u*c-k", "fuck"),
            ("f u c k", "fuck"),
            ("赌 博", "赌博"),
            ("赌\u{200B}博", "赌博"),
            ("赌😀博！", "赌博"),
            ("賭　博", "赌博"),
            ("赌赌赌博", "赌博"),
            ("fuuuuck", "fuck"),
            ("13888888888", "13888888888"),
            ("see eels", "seels"),
            ("￥100元", "100元"),
            ("", ""),
        ];
        for (input, want) in table {
            assert_eq!(n(input), want, "input {input:?}");
        }
    }

    #[test]
    fn gaps_and_runs_are_recorded() {
        let norm = normalize("a b.c赌赌博");
        let gaps: Vec<Gap> = norm.spans.iter().map(|s| s.gap).collect();
        assert_eq!(
            gaps,
            [Gap::None, Gap::Space, Gap::Noise, Gap::None, Gap::None]
        );
        let runs: Vec<u16> = norm.spans.iter().map(|s| s.run).collect();
        assert_eq!(runs, [1, 1, 1, 2, 1]);
    }

    #[test]
    fn offsets_map_back_to_the_input() {
        let input = "我要 賭.賭博了";
        let norm = normalize(input);
        assert_eq!(norm.text, "我要赌博了");
        let first = norm.span_at(norm.text.find("赌博").unwrap());
        let (s, e) = norm.original_range(first, first + 2);
        assert_eq!(&input[s..e], "賭.賭博");
    }
}
