//! A compiled rule set: a charwise double-array Aho-Corasick automaton (`darray.rs`) over the
//! normalized patterns, plus the checks a raw automaton match must pass to count as a hit.
//!
//! Why a charwise double array: on this project's benchmark (the 14k-word lexicon over 35,000
//! Chinese reviews, `cargo bench --bench engine`) daachorse's charwise automaton scanned CJK
//! text about twice as fast in overlapping mode as aho-corasick's DFA; the engine's own
//! (`darray.rs`) keeps daachorse's layout with a step that does not branch on the child check,
//! which is what makes stepping it inside normalization cheap. BENCHMARKS.md has the figures.
//! Per-app tables, which are many and small, use the compact radix trie of `compact.rs`
//! ([`Matcher::new_compact`]) because memory matters more there than speed.
//!
//! Match semantics (see DESIGN.md):
//! - every occurrence is reported, overlapping ones included;
//! - repeated characters: the text's run at each pattern position must be at least the
//!   pattern's own (`ass` needs `ss`; `fuuuck` satisfies `fuck`);
//! - a pattern that starts (ends) with a Latin letter or digit needs a word boundary there: the
//!   neighbouring stream character is not a Latin letter or digit, or something was dropped in
//!   between (`grass` has no `ass`; `my ass` and `my.ass` do);
//! - no match spans Chinese sentence punctuation between Chinese characters (，。、！…: a word
//!   ends there; normalization writes a mark no pattern holds);
//! - inside a Latin word, whitespace separates no letters, or separators of some kind separate
//!   all of them (`f u c k` and `f u.c-k` are the word, `pen is` is two words and not `penis`).

use super::compact::CompactTrie;
use super::darray::{Cursor, DoubleArray};
use super::normalize::{EachChar, Gap, Normalized, normalize};
use super::{Label, Suggest};

/// One entry of a rule set as written: a lexicon word or a custom keyword.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// As written by its author (shown in keyword detail items and when revealing).
    pub word: String,
    pub label: Label,
    pub suggest: Suggest,
    /// prob (lexicon) or level (custom keyword), 0–100.
    pub score: u8,
}

impl Rule {
    fn rank(&self) -> (Suggest, u8) {
        (self.suggest, self.score)
    }
}

/// A rule as a compiled matcher holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleRef<'a> {
    pub word: &'a str,
    pub label: Label,
    pub suggest: Suggest,
    pub score: u8,
}

/// A rule that failed to compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MatcherError {
    #[error("{0:?} has no letters or digits to match")]
    EmptyWord(String),
    #[error("automaton: {0}")]
    Automaton(String),
    #[error("a rule set holds at most {} rules", u32::MAX)]
    TooMany,
}

/// A distinct normalized pattern: the rule it reports and the checks a raw match must pass.
#[derive(Debug)]
struct Pattern {
    rule: u32,
    /// `extras[extra..extra + runs]` is the required run length per pattern character (none
    /// stored when every run is 1); the next `pairs` values are the positions `j` (1-based within
    /// the pattern) where characters `j-1` and `j` are both Latin letters or digits, where
    /// whitespace must be all-or-nothing.
    extra: u32,
    runs: u16,
    pairs: u16,
    left_boundary: bool,
    right_boundary: bool,
    /// The word is written with punctuation before (after) it (`《苹果》`, `社会：`): the text
    /// must have punctuation there too, or an everyday word would match as the listed title.
    left_edge: bool,
    right_edge: bool,
}

impl Pattern {
    fn needs_checks(&self) -> bool {
        self.runs != 0
            || self.left_boundary
            || self.right_boundary
            || self.pairs > 1
            || self.left_edge
            || self.right_edge
    }
}

/// Whether `word` is written with punctuation before its first kept character, and after its
/// last.
fn edges(word: &str) -> (bool, bool) {
    use super::fold::{Fold, fold};
    let kept = |c: &char| matches!(fold(*c), Fold::One(_) | Fold::Many(_));
    let punct = |c: char| matches!(fold(c), Fold::Noise | Fold::Stop);
    let left = word.chars().take_while(|c| !kept(c)).any(punct);
    let right = word.chars().rev().take_while(|c| !kept(c)).any(punct);
    (left, right)
}

/// A hit: which rule, and where in the normalized text (byte offsets `start..end`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    pub rule: u32,
    pub start: u32,
    pub end: u32,
}

/// The automaton behind a matcher: the double array for the large lexicons (fastest per
/// character), the compact trie for per-app tables (smallest; see `compact.rs`).
enum Automaton {
    Empty,
    DoubleArray(DoubleArray),
    Compact(CompactTrie),
}

/// A compiled, immutable rule set.
///
/// Every rule is kept, in the order given (a rule's id is its index), so the rule set can be
/// listed back exactly as written; the words share one string. When several rules normalize to
/// the same pattern, hits on it report the most severe (then highest-scoring, then first) of
/// them.
pub struct Matcher {
    automaton: Automaton,
    patterns: Box<[Pattern]>,
    extras: Box<[u16]>,
    words: Box<str>,
    /// Rule `i`'s word is `words[word_end[i - 1]..word_end[i]]` (from 0 for the first).
    word_end: Box<[u32]>,
    meta: Box<[(Label, Suggest, u8)]>,
    /// The longest pattern, in stream characters.
    longest: u32,
    /// For each ASCII digit and letter (the characters the second stream merges; see
    /// [`Reach::slot`]), how far a pattern holding it reaches before and after it.
    reach: [Reach; 36],
}

/// How far around one character a pattern holding it can reach, in stream characters: at most
/// `before` characters precede it in a pattern, and at most `after` make up the pattern from it
/// to its end (itself included). Zero `after`: no pattern holds the character.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Reach {
    before: u32,
    after: u32,
}

impl Reach {
    /// The slot of an ASCII digit or lowercase letter (the stream holds no uppercase).
    fn slot(c: char) -> Option<usize> {
        match c {
            '0'..='9' => Some(c as usize - '0' as usize),
            'a'..='z' => Some(10 + c as usize - 'a' as usize),
            _ => None,
        }
    }
}

impl std::fmt::Debug for Matcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Matcher")
            .field("rules", &self.meta.len())
            .field("patterns", &self.patterns.len())
            .finish_non_exhaustive()
    }
}

/// A rule beside its word, normalized.
fn normalized(rule: Rule) -> (Rule, Normalized) {
    let norm = normalize(&rule.word);
    (rule, norm)
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric()
}

impl Matcher {
    /// Compiles `rules`. Words are normalized as texts are.
    pub fn new(rules: impl IntoIterator<Item = Rule>) -> Result<Matcher, MatcherError> {
        Self::build(rules.into_iter().map(normalized), false)
    }

    /// As [`Matcher::new`], with the compact trie: for the many small per-app tables.
    pub fn new_compact(rules: impl IntoIterator<Item = Rule>) -> Result<Matcher, MatcherError> {
        Self::build(rules.into_iter().map(normalized), true)
    }

    /// As [`Matcher::new_compact`], from rules whose words the caller has normalized already
    /// (validation does, to refuse a word with nothing to match): `(rule, normalize(&rule.word))`.
    pub fn new_compact_normalized(
        rules: impl IntoIterator<Item = (Rule, Normalized)>,
    ) -> Result<Matcher, MatcherError> {
        Self::build(rules, true)
    }

    fn build(
        rules: impl IntoIterator<Item = (Rule, Normalized)>,
        compact: bool,
    ) -> Result<Matcher, MatcherError> {
        /// A pattern while building: the winning rule, its runs and gaps.
        struct Candidate {
            rule: u32,
            rank: (Suggest, u8),
            runs: Vec<u16>,
            gaps: Vec<Gap>,
            /// Punctuation required before and after: only when every rule of the pattern's
            /// text is written with it.
            edges: (bool, bool),
        }
        let mut by_pattern: foldhash::HashMap<String, Candidate> = Default::default();
        let mut words = String::new();
        let mut word_end = Vec::new();
        let mut meta = Vec::new();
        for (rule, norm) in rules {
            let id = u32::try_from(meta.len()).map_err(|_| MatcherError::TooMany)?;
            if norm.text.is_empty() {
                return Err(MatcherError::EmptyWord(rule.word));
            }
            words.push_str(&rule.word);
            word_end.push(u32::try_from(words.len()).map_err(|_| MatcherError::TooMany)?);
            meta.push((rule.label, rule.suggest, rule.score));
            let (left, right) = edges(&rule.word);
            let edges = by_pattern
                .get(&norm.text)
                .map_or((left, right), |o| (o.edges.0 && left, o.edges.1 && right));
            match by_pattern.get_mut(&norm.text) {
                Some(old) if old.rank >= rule.rank() => old.edges = edges,
                _ => {
                    let candidate = Candidate {
                        rule: id,
                        rank: rule.rank(),
                        runs: norm.spans.iter().map(|s| s.run).collect(),
                        gaps: norm.spans.iter().map(|s| s.gap).collect(),
                        edges,
                    };
                    by_pattern.insert(norm.text, candidate);
                }
            }
        }
        // Sorted so pattern ids are stable for a given rule set.
        let mut entries: Vec<(String, Candidate)> = by_pattern.into_iter().collect();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let mut patterns = Vec::with_capacity(entries.len());
        let mut extras: Vec<u16> = Vec::new();
        let mut texts = Vec::with_capacity(entries.len());
        let mut longest = 0;
        let mut reach = [Reach::default(); 36];
        for (i, (text, c)) in entries.into_iter().enumerate() {
            let chars: Vec<char> = text.chars().collect();
            longest = longest.max(chars.len() as u32);
            for (p, ch) in chars.iter().enumerate() {
                if let Some(slot) = Reach::slot(*ch) {
                    let r = &mut reach[slot];
                    r.before = r.before.max(p as u32);
                    r.after = r.after.max((chars.len() - p) as u32);
                }
            }
            let extra = u32::try_from(extras.len()).map_err(|_| MatcherError::TooMany)?;
            let runs = if c.runs.iter().all(|r| *r == 1) {
                0
            } else {
                extras.extend_from_slice(&c.runs);
                c.runs.len()
            };
            // Where the word itself has a separator ("fuck you", "risk-free") the text may or
            // may not have one; only the other Latin pairs take part in the all-or-nothing rule.
            let before = extras.len();
            extras.extend(
                (1..chars.len())
                    .filter(|&j| is_word_char(chars[j - 1]) && is_word_char(chars[j]))
                    .filter(|&j| c.gaps[j] == Gap::None)
                    .map(|j| j as u16),
            );
            patterns.push(Pattern {
                rule: c.rule,
                extra,
                runs: u16::try_from(runs).map_err(|_| MatcherError::TooMany)?,
                pairs: u16::try_from(extras.len() - before).map_err(|_| MatcherError::TooMany)?,
                left_boundary: chars.first().is_some_and(|c| is_word_char(*c)),
                right_boundary: chars.last().is_some_and(|c| is_word_char(*c)),
                left_edge: c.edges.0,
                right_edge: c.edges.1,
            });
            texts.push((text, i as u32));
        }
        let automaton = if texts.is_empty() {
            Automaton::Empty
        } else if compact {
            let words: Vec<&str> = texts.iter().map(|(t, _)| t.as_str()).collect();
            Automaton::Compact(CompactTrie::new(&words))
        } else {
            Automaton::DoubleArray(
                DoubleArray::new(texts.iter().map(|(t, id)| (t.as_str(), *id)))
                    .map_err(|e| MatcherError::Automaton(e.to_string()))?,
            )
        };
        Ok(Matcher {
            automaton,
            patterns: patterns.into(),
            extras: extras.into(),
            words: words.into(),
            word_end: word_end.into(),
            meta: meta.into(),
            longest,
            reach,
        })
    }

    /// Number of distinct patterns (rules that normalize alike count once).
    pub fn len(&self) -> usize {
        self.patterns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Number of rules, as given.
    pub fn rule_count(&self) -> usize {
        self.meta.len()
    }

    /// Rule `id` (a hit's `rule`, or an index below [`Matcher::rule_count`]).
    pub fn rule(&self, id: u32) -> RuleRef<'_> {
        let i = id as usize;
        let start = if i == 0 { 0 } else { self.word_end[i - 1] };
        let (label, suggest, score) = self.meta[i];
        RuleRef {
            word: &self.words[start as usize..self.word_end[i] as usize],
            label,
            suggest,
            score,
        }
    }

    /// All rules, in the order given.
    pub fn rules(&self) -> impl ExactSizeIterator<Item = RuleRef<'_>> {
        (0..self.meta.len() as u32).map(|id| self.rule(id))
    }

    /// Heap bytes held by the compiled form (for capacity planning and the scale benchmark).
    pub fn heap_bytes(&self) -> usize {
        let automaton = match &self.automaton {
            Automaton::Empty => 0,
            Automaton::DoubleArray(a) => a.heap_bytes(),
            Automaton::Compact(t) => t.heap_bytes(),
        };
        automaton
            + self.patterns.len() * std::mem::size_of::<Pattern>()
            + self.extras.len() * 2
            + self.words.len()
            + self.word_end.len() * 4
            + self.meta.len() * std::mem::size_of::<(Label, Suggest, u8)>()
    }

    /// Appends every valid hit in `norm` to `out`.
    pub fn scan(&self, norm: &Normalized, out: &mut Vec<Hit>) {
        self.scan_range(norm, 0, norm.text.len(), out);
    }

    /// Appends to `out` every valid hit in `norm` that covers one of the spans `at` (span
    /// indices, ascending), and possibly hits near them that cover none: the automaton reads
    /// only the stretches of the stream that a pattern holding the span's character could
    /// cover (for an ASCII digit or letter, what the patterns holding it reach around it, and
    /// nothing when none holds it; for any other character, the longest pattern's length on
    /// either side). For a stream that differs from an already scanned one only at `at`.
    pub fn scan_near(&self, norm: &Normalized, at: &[u32], out: &mut Vec<Hit>) {
        let n = norm.spans.len();
        let mut window: Option<(usize, usize)> = None;
        for &i in at {
            let i = i as usize;
            let reach = match norm.char_at(i).and_then(Reach::slot) {
                Some(slot) => self.reach[slot],
                None => Reach {
                    before: self.longest.saturating_sub(1),
                    after: self.longest,
                },
            };
            if reach.after == 0 {
                continue;
            }
            let (from, to) = (
                i.saturating_sub(reach.before as usize),
                (i + reach.after as usize).min(n),
            );
            window = match window {
                Some((a, b)) if from <= b => Some((a.min(from), b.max(to))),
                Some((a, b)) => {
                    self.scan_spans(norm, a..b, out);
                    Some((from, to))
                }
                None => Some((from, to)),
            };
        }
        if let Some((a, b)) = window {
            self.scan_spans(norm, a..b, out);
        }
    }

    /// Appends the valid hits that lie within stream characters `spans` (span indices), judged
    /// in the whole stream.
    pub fn scan_spans(&self, norm: &Normalized, spans: std::ops::Range<usize>, out: &mut Vec<Hit>) {
        let byte = |i: usize| {
            norm.spans
                .get(i)
                .map_or(norm.text.len(), |s| s.norm as usize)
        };
        self.scan_range(norm, byte(spans.start), byte(spans.end), out);
    }

    /// The longest pattern, in stream characters.
    pub fn longest(&self) -> usize {
        self.longest as usize
    }

    /// Appends the valid hits in `norm.text[from..to]` (byte offsets on character boundaries),
    /// judged in the whole stream.
    fn scan_range(&self, norm: &Normalized, from: usize, to: usize, out: &mut Vec<Hit>) {
        let text = &norm.text[from..to];
        let found = |start: usize, end: usize, value: u32| {
            let (start, end) = (from + start, from + end);
            let p = &self.patterns[value as usize];
            if p.needs_checks() && !self.accepts(p, norm, start, end) {
                return;
            }
            out.push(Hit {
                rule: p.rule,
                start: start as u32,
                end: end as u32,
            });
        };
        match &self.automaton {
            Automaton::Empty => {}
            Automaton::DoubleArray(a) => a.for_each_overlapping(text, found),
            Automaton::Compact(t) => t.for_each_overlapping(text, found),
        }
    }

    /// Normalizes `input` into `norm` and appends every valid hit in it to `out`, as
    /// [`Normalized::fill`] then [`Matcher::scan`] would, in one pass over the input: the
    /// double-array automaton steps on each stream character as normalization writes it. The
    /// raw matches wait in `out` until the stream is complete (a word boundary's check reads the
    /// character after the match), then go through the same checks as [`Matcher::scan`]'s.
    pub fn fill_and_scan(&self, input: &str, norm: &mut Normalized, out: &mut Vec<Hit>) {
        let Automaton::DoubleArray(a) = &self.automaton else {
            norm.fill(input);
            self.scan(norm, out);
            return;
        };
        let from = out.len();
        fill_and_step(a, input, norm, out);
        let mut kept = from;
        for i in from..out.len() {
            let raw = out[i];
            let p = &self.patterns[raw.rule as usize];
            if p.needs_checks() && !self.accepts(p, norm, raw.start as usize, raw.end as usize) {
                continue;
            }
            out[kept] = Hit {
                rule: p.rule,
                ..raw
            };
            kept += 1;
        }
        out.truncate(kept);
    }

    /// The boundary, run and spacing checks, for patterns that need any (most CJK words need
    /// none, and skip the span look-ups).
    fn accepts(&self, p: &Pattern, norm: &Normalized, start: usize, end: usize) -> bool {
        let (first, end) = (norm.span_at(start), norm.span_at(end));
        let spans = &norm.spans[first..end];
        let extra = p.extra as usize;
        let runs = &self.extras[extra..extra + p.runs as usize];
        if spans.iter().zip(runs).any(|(s, need)| s.run < *need) {
            return false;
        }
        if p.left_boundary
            && spans[0].gap == Gap::None
            && first > 0
            && norm.char_at(first - 1).is_some_and(is_word_char)
        {
            return false;
        }
        if p.right_boundary
            && end < norm.spans.len()
            && norm.spans[end].gap == Gap::None
            && norm.char_at(end).is_some_and(is_word_char)
        {
            return false;
        }
        let punctuation = |gap: Gap| matches!(gap, Gap::Noise | Gap::Stop);
        if p.left_edge && !punctuation(spans[0].gap) {
            return false;
        }
        if p.right_edge && !punctuation(norm.spans.get(end).map_or(norm.tail, |s| s.gap)) {
            return false;
        }
        if p.pairs > 1 {
            let from = extra + p.runs as usize;
            let pairs = &self.extras[from..from + p.pairs as usize];
            let gap = |j: &&u16| spans[**j as usize].gap;
            let spaced = pairs.iter().filter(|j| gap(j) == Gap::Space).count();
            let apart = pairs.iter().filter(|j| gap(j) != Gap::None).count();
            if spaced != 0 && apart != pairs.len() {
                return false;
            }
        }
        true
    }
}

/// [`Normalized::fill`], stepping `automaton` on each stream character; its raw matches are
/// appended to `out` (`rule` holding the pattern). Kept out of line, so that the loop with the
/// step inlined is laid out on its own.
#[inline(never)]
fn fill_and_step(automaton: &DoubleArray, input: &str, norm: &mut Normalized, out: &mut Vec<Hit>) {
    /// The walk between characters: its step is inlined where normalization writes each one
    /// (see [`EachChar`]).
    struct Walk<'a> {
        automaton: &'a DoubleArray,
        cur: Cursor,
        at: u32,
        out: &'a mut Vec<Hit>,
    }
    impl EachChar for Walk<'_> {
        #[inline(always)]
        fn each(&mut self, c: char) {
            self.at += c.len_utf8() as u32;
            if self.automaton.step(&mut self.cur, c) {
                let (at, out) = (self.at, &mut *self.out);
                self.automaton.each_output(self.cur, |rule, len| {
                    out.push(Hit {
                        rule,
                        start: at - len,
                        end: at,
                    })
                });
            }
        }
    }
    let walk = Walk {
        automaton,
        cur: automaton.start(),
        at: 0,
        out,
    };
    norm.fill_with(input, walk);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(words: &[&str]) -> Vec<Rule> {
        words
            .iter()
            .map(|w| Rule {
                word: (*w).to_owned(),
                label: Label::Other,
                suggest: Suggest::Risky,
                score: 90,
            })
            .collect()
    }

    /// The compact matcher, after checking that both automata give the same hits.
    fn matcher(words: &[&str]) -> Matcher {
        let compact = Matcher::new_compact(rules(words)).unwrap();
        let double = Matcher::new(rules(words)).unwrap();
        for text in [
            "as asss fuuuuck 赌赌赌博博",
            "the pen is p e n i s f.u.c.k y.o.u fuckyou grass",
        ] {
            assert_eq!(found(&compact, text), found(&double, text), "{text}");
        }
        compact
    }

    fn found(m: &Matcher, text: &str) -> Vec<String> {
        let norm = normalize(text);
        let mut hits = Vec::new();
        m.scan(&norm, &mut hits);
        hits.iter()
            .map(|h| m.rule(h.rule).word.to_owned())
            .collect()
    }

    proptest::proptest! {
        /// Stepping the automaton while normalizing finds exactly what scanning the finished
        /// stream finds, in the same order, whatever the runs, gaps, stops and boundaries.
        #[test]
        fn one_pass_finds_what_two_passes_find(text in "[asfuckpenis赌博社会一1：，。 .*\u{200B}ＡＳ]{0,40}") {
            let words = [
                "ass", "fuck", "fuck you", "penis", "赌博", "社会：", "《苹果》", "一夜", "11",
                "sa", "a", "s", "赌", "会赌博", "博社会",
            ];
            let more: Vec<&str> = words.iter().copied().chain(["c", "k", "p", "e", "n"]).collect();
            for words in [&words[..], &more[..]] {
                let m = Matcher::new(rules(words)).unwrap();
                let mut two = Vec::new();
                let norm = normalize(&text);
                m.scan(&norm, &mut two);
                let (mut filled, mut one) = (normalize("stale text ass"), vec![Hit { rule: 7, start: 0, end: 1 }]);
                m.fill_and_scan(&text, &mut filled, &mut one);
                proptest::prop_assert_eq!(&filled, &norm);
                proptest::prop_assert_eq!(one[0], Hit { rule: 7, start: 0, end: 1 }, "hits already in the buffer stay");
                proptest::prop_assert_eq!(&one[1..], &two[..]);
            }
        }
    }

    proptest::proptest! {
        /// Reading only around some spans finds every hit of a full scan that covers one of
        /// them, and nothing a full scan does not find.
        #[test]
        fn scanning_near_spans_finds_the_hits_over_them(
            pieces in proptest::collection::vec(
                proptest::prop_oneof!["penis", "会赌博", "ass", "社会：", "[as赌博一1：，。 .]"],
                0..10,
            ),
            picks in proptest::collection::btree_set(0u32..40, 0..4),
        ) {
            let text = pieces.concat();
            for compact in [false, true] {
                let words = rules(&["ass", "penis", "赌博", "社会：", "一夜", "11", "a", "会赌博"]);
                let m = if compact { Matcher::new_compact(words) } else { Matcher::new(words) }.unwrap();
                let norm = normalize(&text);
                let at: Vec<u32> = picks.iter().copied().filter(|&i| (i as usize) < norm.spans.len()).collect();
                let (mut all, mut near) = (Vec::new(), Vec::new());
                m.scan(&norm, &mut all);
                m.scan_near(&norm, &at, &mut near);
                let covers = |h: &Hit| {
                    let (a, b) = (norm.span_at(h.start as usize), norm.span_at(h.end as usize));
                    at.iter().any(|&i| (a..b).contains(&(i as usize)))
                };
                for h in &near {
                    proptest::prop_assert!(all.contains(h), "{h:?} is not a hit");
                }
                for h in all.iter().filter(|h| covers(h)) {
                    proptest::prop_assert!(near.contains(h), "{h:?} over {at:?} missed");
                }
            }
        }
    }

    #[test]
    fn runs_must_cover_the_pattern() {
        let m = matcher(&["ass", "fuck", "赌博"]);
        assert_eq!(found(&m, "as"), Vec::<String>::new());
        assert_eq!(found(&m, "asss"), ["ass"]);
        assert_eq!(found(&m, "fuuuuck"), ["fuck"]);
        assert_eq!(found(&m, "赌赌赌博博"), ["赌博"]);
    }

    #[test]
    fn punctuation_written_around_a_word_is_required_around_it() {
        let none = Vec::<String>::new();
        let m = matcher(&["社会：", "《苹果》"]);
        assert_eq!(found(&m, "社会：新人"), ["社会："]);
        assert_eq!(
            found(&m, "社会!"),
            ["社会："],
            "any punctuation, at the text's end too"
        );
        assert_eq!(found(&m, "社会新人"), none);
        assert_eq!(found(&m, "初入社会"), none, "nothing after it at the end");
        assert_eq!(found(&m, "社会 新人"), none, "a space is not punctuation");
        assert_eq!(found(&m, "读《苹果》"), ["《苹果》"]);
        assert_eq!(found(&m, "“苹果”"), ["《苹果》"]);
        assert_eq!(found(&m, "两只苹果"), none);
        assert_eq!(found(&m, "苹果》"), none, "both sides");
        // The same word listed bare too: the bare entry needs no punctuation.
        let m = matcher(&["《苹果》", "苹果"]);
        assert_eq!(found(&m, "两只苹果").len(), 1);
    }

    #[test]
    fn latin_spacing_is_all_or_nothing() {
        let m = matcher(&["penis", "fuck", "fuck you"]);
        assert_eq!(found(&m, "f.u.c.k y.o.u"), ["fuck", "fuck you"]);
        assert_eq!(found(&m, "fuckyou"), ["fuck you"]);
        assert_eq!(found(&m, "the pen is mightier"), Vec::<String>::new());
        assert_eq!(found(&m, "p e n i s"), ["penis"]);
        assert_eq!(found(&m, "f.u.c.k"), ["fuck"]);
        assert_eq!(found(&m, "f u c k you"), ["fuck"]);
        assert_eq!(found(&m, "f u.c-k"), ["fuck"]);
        assert_eq!(found(&m, "fu c.k"), Vec::<String>::new());
    }

    #[test]
    fn empty_rule_sets_and_words() {
        let m = Matcher::new(Vec::new()).unwrap();
        assert!(m.is_empty());
        assert!(found(&m, "anything").is_empty());
        assert!(matches!(
            Matcher::new([Rule {
                word: "!!".into(),
                label: Label::Other,
                suggest: Suggest::Risky,
                score: 1
            }]),
            Err(MatcherError::EmptyWord(_))
        ));
    }
}
