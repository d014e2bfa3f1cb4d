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
//!   CJK characters collapse across anything dropped (`赌.赌.博`); no word spans Chinese sentence
//!   punctuation between Chinese characters (`套，现在` holds no `套现`: [`STOP_MARK`]). A second stream
//!   ([`Normalized::collapse`]) merges the runs the first keeps apart, for the matchers only.
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
    /// At least one whitespace character (and no sentence punctuation).
    Space,
    /// Chinese sentence punctuation: no match spans it.
    Stop,
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
    /// Whether `text` holds an ASCII letter (counted while filling: the detectors' prefilter).
    pub letters: bool,
    /// The longest run of ASCII digits in `text` (a phone or QQ number needs five or more).
    pub digit_run: u32,
    /// The run of digits ending at the last stream character while filling (stale when that
    /// character is not a digit).
    digits_now: u32,
    /// The longest run of ASCII letters and digits in `text` (a WeChat id needs six, a domain
    /// name's last label two).
    pub word_run: u32,
    /// The run of ASCII letters and digits ending at the last stream character while filling
    /// (stale when that character is neither).
    word_now: u32,
    /// What was dropped after the last stream character (the matchers' edge checks).
    pub tail: Gap,
    /// Whether two neighbouring stream characters are equal: a run the stream keeps apart
    /// (digits, or Latin letters with something dropped between), which [`Normalized::collapse`]
    /// may merge.
    pub repeats: bool,
    /// Whether two neighbouring ASCII letters or digits have something dropped between them
    /// (`baidu.com`, `http://`, `a b`): what the labels of a web address written with a dot
    /// character show (the address detector's prefilter, with `点` between words).
    pub words_apart: bool,
}

/// What [`Normalized::fill_with`] hands each stream character to as it is written: any
/// `FnMut(char)`, or a type whose `#[inline(always)]` method is to be inlined at each place a
/// character is written (a closure's body is the compiler's to inline or not, and a matcher's
/// step kept out of line costs a call per character).
pub trait EachChar {
    fn each(&mut self, c: char);
}

impl<F: FnMut(char)> EachChar for F {
    #[inline(always)]
    fn each(&mut self, c: char) {
        self(c)
    }
}

/// The stream character written where Chinese sentence punctuation stands between two
/// characters that are not Latin letters or digits: no pattern holds it (folding drops `|`), so
/// the automaton cannot match across it and pays nothing for the rule.
pub const STOP_MARK: char = '|';

impl Normalized {
    /// Normalizes `input` into this value, reusing its buffers.
    pub fn fill(&mut self, input: &str) {
        self.fill_with(input, |_| {});
    }

    /// As [`Normalized::fill`], calling `each` with every stream character as it is written:
    /// a matcher steps its automaton there instead of reading the text again afterwards
    /// ([`Matcher::fill_and_scan`](super::Matcher::fill_and_scan)), and its loads overlap the
    /// folding of the characters after it.
    #[inline(always)]
    pub fn fill_with(&mut self, input: &str, mut each: impl EachChar) {
        self.text.clear();
        self.spans.clear();
        self.letters = false;
        self.digit_run = 0;
        self.digits_now = 0;
        self.word_run = 0;
        self.word_now = 0;
        self.repeats = false;
        self.words_apart = false;
        self.text.reserve(input.len());
        self.spans.reserve(input.len() / 2);
        let mut gap = Gap::None;
        let mut last: Option<char> = None;
        let mut stop = (0u32, 0u32);
        let folder = Folder::get();
        for (at, c) in input.char_indices() {
            let end = at + c.len_utf8();
            if gap == Gap::None && last != Some(c) && folder.keeps_ideograph(c) {
                // Most characters of Chinese text: an ideograph standing as written, with
                // nothing dropped before it and no run to extend. `emit` would do just this;
                // the write is spelt out here rather than shared through a helper, which
                // measured 2-3 points slower against the raw automaton (`engine_rounds`).
                self.spans.push(Span {
                    norm: self.text.len() as u32,
                    orig_start: at as u32,
                    orig_end: end as u32,
                    run: 1,
                    gap,
                });
                self.text.push(c);
                each.each(c);
                last = Some(c);
                continue;
            }
            match folder.fold(c) {
                Fold::Drop => {}
                Fold::Space => gap = gap.max(Gap::Space),
                Fold::Noise => gap = gap.max(Gap::Noise),
                Fold::Stop => {
                    gap = Gap::Stop;
                    stop = (at as u32, end as u32);
                }
                Fold::One(k) => {
                    self.stop_between(k, gap, stop, &mut last, &mut each);
                    self.emit(k, at, end, gap, &mut last, &mut each);
                    gap = Gap::None;
                }
                Fold::Many(s) => {
                    for k in s.chars() {
                        self.stop_between(k, gap, stop, &mut last, &mut each);
                        self.emit(k, at, end, gap, &mut last, &mut each);
                        gap = Gap::None;
                    }
                }
            }
        }
        self.tail = gap;
    }

    /// Writes [`STOP_MARK`] for sentence punctuation between two characters that are not Latin
    /// letters or digits (between those it is a separator like any symbol: `x．com`, `f，u，c，k`).
    #[inline(always)]
    fn stop_between(
        &mut self,
        k: char,
        gap: Gap,
        (from, to): (u32, u32),
        last: &mut Option<char>,
        each: &mut impl EachChar,
    ) {
        if gap == Gap::Stop
            && !k.is_ascii_alphanumeric()
            && last.is_some_and(|l| !l.is_ascii_alphanumeric())
        {
            self.spans.push(Span {
                norm: self.text.len() as u32,
                orig_start: from,
                orig_end: to,
                run: 1,
                gap,
            });
            self.text.push(STOP_MARK);
            each.each(STOP_MARK);
            *last = Some(STOP_MARK);
        }
    }

    #[inline(always)]
    fn emit(
        &mut self,
        k: char,
        at: usize,
        end: usize,
        gap: Gap,
        last: &mut Option<char>,
        each: &mut impl EachChar,
    ) {
        if *last == Some(k)
            && !k.is_ascii_digit()
            && !(gap != Gap::None && k.is_ascii_alphanumeric())
            && let Some(prev) = self.spans.last_mut()
        {
            prev.orig_end = end as u32;
            prev.run = prev.run.saturating_add(1);
            return;
        }
        self.repeats |= *last == Some(k);
        self.words_apart |= gap != Gap::None
            && k.is_ascii_alphanumeric()
            && last.is_some_and(|l| l.is_ascii_alphanumeric());
        // Inputs are bounded by the request body limit (far below 4 GiB), so offsets fit in u32.
        self.spans.push(Span {
            norm: self.text.len() as u32,
            orig_start: at as u32,
            orig_end: end as u32,
            run: 1,
            gap,
        });
        self.text.push(k);
        each.each(k);
        // The runs restart after any other stream character (`last`), so the ideographs'
        // short path leaves the counters alone.
        if k.is_ascii_digit() {
            self.digits_now = match last {
                Some(l) if l.is_ascii_digit() => self.digits_now + 1,
                _ => 1,
            };
            self.digit_run = self.digit_run.max(self.digits_now);
        } else {
            self.letters |= k.is_ascii_alphabetic();
        }
        if k.is_ascii_alphanumeric() {
            self.word_now = match last {
                Some(l) if l.is_ascii_alphanumeric() => self.word_now + 1,
                _ => 1,
            };
            self.word_run = self.word_run.max(self.word_now);
        }
        *last = Some(k);
    }

    /// The second stream: this one with the runs it keeps apart merged, where a repeat is an
    /// evasion rather than spelling. Digits merge across anything (`一一一夜情` reads `1夜情` here
    /// while `13888888888` stays whole in the first stream for the phone detector); a Latin letter
    /// merges with an equal one across symbols when each is one letter (`pus*sy`; `XX，XX` stays
    /// two pairs), and across whitespace only when both stand alone (`f u u c k` reads `fuck`;
    /// `book keeper` keeps its words). Nothing merges across sentence punctuation. `first[j]` is the index in this stream of the first
    /// span merged into `into`'s span `j`. Leaves `into` empty when there is nothing to merge.
    pub fn collapse(&self, into: &mut Normalized, first: &mut Vec<u32>) {
        into.text.clear();
        into.spans.clear();
        into.letters = self.letters;
        into.digit_run = self.digit_run;
        into.word_run = self.word_run;
        into.tail = self.tail;
        into.repeats = false;
        into.words_apart = self.words_apart;
        first.clear();
        if !self.repeats {
            return;
        }
        // Only ASCII letters and digits merge, so the loop reads one byte per span and the
        // stretches between merges are copied whole.
        let mut copied = 0;
        for i in 1..self.spans.len() {
            if !self.merges_into_previous(i) {
                continue;
            }
            self.copy_spans(copied..i, into, first);
            copied = i + 1;
            let span = self.spans[i];
            if let Some(prev) = into.spans.last_mut() {
                prev.orig_end = span.orig_end;
                prev.run = prev.run.saturating_add(span.run);
            }
        }
        if copied == 0 {
            return;
        }
        self.copy_spans(copied..self.spans.len(), into, first);
    }

    /// The ASCII letter or digit of span `i`, or 0 (any other character, or no span).
    fn word_byte(&self, i: usize) -> u8 {
        self.spans
            .get(i)
            .map(|s| self.text.as_bytes()[s.norm as usize])
            .filter(u8::is_ascii_alphanumeric)
            .unwrap_or(0)
    }

    /// Whether the second stream merges span `i` into span `i - 1` (see [`Normalized::collapse`]).
    fn merges_into_previous(&self, i: usize) -> bool {
        let c = self.word_byte(i);
        if c == 0 || self.word_byte(i - 1) != c || self.spans[i].gap == Gap::Stop {
            return false;
        }
        if c.is_ascii_digit() {
            return true;
        }
        // A letter spelt out with spaces: whitespace (or no letter) on both sides of it.
        let alone = |k: usize| {
            (self.spans[k].gap == Gap::Space || k == 0 || self.word_byte(k - 1) == 0)
                && (self.word_byte(k + 1) == 0 || self.spans[k + 1].gap == Gap::Space)
        };
        let (span, prev) = (&self.spans[i], &self.spans[i - 1]);
        (span.gap == Gap::Noise && span.run == 1 && prev.run == 1) || (alone(i - 1) && alone(i))
    }

    /// Appends spans `range` of this stream, unmerged, to the second stream `into`.
    fn copy_spans(
        &self,
        range: std::ops::Range<usize>,
        into: &mut Normalized,
        first: &mut Vec<u32>,
    ) {
        let Some(head) = self.spans.get(range.start) else {
            return;
        };
        let (from, to) = (
            head.norm as usize,
            self.spans
                .get(range.end)
                .map_or(self.text.len(), |s| s.norm as usize),
        );
        let at = into.text.len() as u32;
        into.text.push_str(&self.text[from..to]);
        into.spans
            .extend(self.spans[range.clone()].iter().map(|s| Span {
                norm: s.norm - head.norm + at,
                ..*s
            }));
        first.extend(range.start as u32..range.end as u32);
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
    fn letters_and_digits_are_counted_while_filling() {
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
            "电话 138 0013 8000，一二三",
            "一次买了两本，5、6 岁",
            "T恤 ok, vx: a b c 1 2 3 wxid_abc",
            "赌博",
        ] {
            let fresh = normalize(input);
            let letters = fresh.text.bytes().any(|b| b.is_ascii_alphabetic());
            let digit_run = fresh
                .text
                .split(|c: char| !c.is_ascii_digit())
                .map(str::len)
                .max()
                .unwrap_or(0);
            assert_eq!(fresh.letters, letters, "input {input:?}");
            assert_eq!(fresh.digit_run as usize, digit_run, "input {input:?}");
            let word_run = fresh
                .text
                .split(|c: char| !c.is_ascii_alphanumeric())
                .map(str::len)
                .max()
                .unwrap_or(0);
            assert_eq!(fresh.word_run as usize, word_run, "input {input:?}");
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
            ("套，现在", "套|现在"),
            ("赌。、博", "赌|博"),
            ("x．com f，u，c，k", "xcomfuck"),
            ("价格：100元", "价格100元"),
            ("", ""),
        ];
        for (input, want) in table {
            assert_eq!(n(input), want, "input {input:?}");
        }
    }

    #[test]
    fn the_second_stream_merges_the_runs_the_first_keeps_apart() {
        let collapsed = |s: &str| {
            let norm = normalize(s);
            let (mut into, mut first) = (Normalized::default(), Vec::new());
            norm.collapse(&mut into, &mut first);
            assert_eq!(into.spans.len(), first.len());
            into.text
        };
        assert_eq!(collapsed("一一一夜情"), "1夜情");
        assert_eq!(collapsed("f-u-u-c-k"), "fuck");
        assert_eq!(collapsed("f u u c k"), "fuck");
        assert_eq!(collapsed("pus*sy"), "pusy");
        assert_eq!(collapsed("xx*xx 11"), "xx1");
        // Words spelt out with symbols keep the space between them (`verify your`).
        assert_eq!(collapsed("v.e.r.i.f.y y.o.u.r a.c.c"), "verifyyourac");
        assert_eq!(collapsed("13888888888"), "138");
        // Letters inside words stay apart; nothing to merge leaves the stream empty.
        assert_eq!(collapsed("book keeper"), "");
        assert_eq!(collapsed("赌博"), "");
        let norm = normalize("s.s.e.x 一一");
        let (mut into, mut first) = (Normalized::default(), Vec::new());
        norm.collapse(&mut into, &mut first);
        assert_eq!(into.text, "sex1");
        assert_eq!(first, [0, 2, 3, 4]);
        assert_eq!(into.spans[0].run, 2);
        assert_eq!(
            &"s.s.e.x 一一"[into.spans[3].orig_start as usize..into.spans[3].orig_end as usize],
            "一一"
        );
    }

    /// The second stream as first written (all characters collected up front, each
    /// neighbour looked up by index): the reference the streaming version must agree with.
    fn collapse_reference(norm: &Normalized) -> (String, Vec<Span>, Vec<u32>) {
        let (mut text, mut spans, mut first) = (String::new(), Vec::<Span>::new(), Vec::new());
        if !norm.repeats {
            return (text, spans, first);
        }
        let chars: Vec<char> = norm.text.chars().collect();
        let alone = |i: usize| {
            let before =
                i == 0 || norm.spans[i].gap == Gap::Space || !chars[i - 1].is_ascii_alphanumeric();
            let after = i + 1 == chars.len()
                || norm.spans[i + 1].gap == Gap::Space
                || !chars[i + 1].is_ascii_alphanumeric();
            before && after
        };
        let mut merged_any = false;
        for (i, (&c, span)) in chars.iter().zip(&norm.spans).enumerate() {
            let merge = i > 0
                && chars[i - 1] == c
                && span.gap != Gap::Stop
                && (c.is_ascii_digit()
                    || (c.is_ascii_alphabetic()
                        && ((span.gap == Gap::Noise
                            && span.run == 1
                            && norm.spans[i - 1].run == 1)
                            || (alone(i - 1) && alone(i)))));
            if merge && let Some(prev) = spans.last_mut() {
                prev.orig_end = span.orig_end;
                prev.run = prev.run.saturating_add(span.run);
                merged_any = true;
                continue;
            }
            spans.push(Span {
                norm: text.len() as u32,
                ..*span
            });
            text.push(c);
            first.push(i as u32);
        }
        if !merged_any {
            return (String::new(), Vec::new(), Vec::new());
        }
        (text, spans, first)
    }

    proptest::proptest! {
        #[test]
        fn the_second_stream_agrees_with_its_reference(text in "[abs一1 .*，赌]{0,30}") {
            let norm = normalize(&text);
            let (mut into, mut first) = (normalize("stale"), vec![9]);
            norm.collapse(&mut into, &mut first);
            proptest::prop_assert_eq!((into.text, into.spans, first), collapse_reference(&norm));
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
