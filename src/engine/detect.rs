//! Advertising and contact-diversion detectors (label 10001), run inside `content_model`.
//!
//! They read the normalized stream, so they see through the same evasions as the lexicon
//! (full-width digits, Chinese numerals, circled digits, noise between digits), and consult the
//! original text only to tell which separator stood between two words (a `.` in a domain).
//!
//! | detector | finds | suggest |
//! | --- | --- | --- |
//! | phone | mainland mobile numbers: 11 digits `1[3-9]…`, optionally after `86` | review; risky when written evasively or after a contact word |
//! | qq | 5–11 digits after `qq`, 扣扣, 企鹅, koukou … | risky |
//! | wechat | an id (a letter, then 5–19 letters, digits, `_`, `-`; after a strong cue also spelt out one character at a time) after 微信, 威信, 薇信, 溦信, v信, vx, wx, wei xin …; `wxid_…` anywhere | risky; review after the weak cues 微, 薇, v, 加 (the id must then mix letters and digits) |
//! | url | `http(s)://`, `www.`, and bare domains `label.tld` for a fixed list of TLDs, with the dot written `.`, `。`, `．`, 点 or `dot` | review; risky when the dot is disguised |
//!
//! Evidence decides the tier: a plainly written phone number in a comment may be innocent (review);
//! one spelt 一三八 or 1 3 8-1·2·3·4 is written to get past a filter (risky).

use std::sync::OnceLock;

use super::matcher::{Hit, Matcher, Rule};
use super::normalize::{Gap, Normalized};
use super::{Label, Suggest};

/// What a detector found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Phone,
    Qq,
    Wechat,
    Url,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Phone => "phone number",
            Kind::Qq => "QQ number",
            Kind::Wechat => "WeChat id",
            Kind::Url => "URL",
        }
    }
}

/// One detection over stream characters `first..end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Detection {
    pub kind: Kind,
    pub suggest: Suggest,
    pub prob: u8,
    pub first: u32,
    pub end: u32,
}

const REVIEW_PROB: u8 = 70;
const RISKY_PROB: u8 = 90;

/// What a cue word announces (a word may announce several things: `qq` is a contact cue and a
/// QQ cue).
const CONTACT: u8 = 1;
const QQ: u8 = 2;
const WECHAT_STRONG: u8 = 4;
const WECHAT_WEAK: u8 = 8;
const WXID: u8 = 16;

const CUES: &[(&str, u8)] = &[
    ("电话", CONTACT),
    ("手机", CONTACT),
    ("联系", CONTACT),
    ("致电", CONTACT),
    ("热线", CONTACT),
    ("号码", CONTACT),
    ("私聊", CONTACT),
    ("加我", CONTACT),
    ("tel", CONTACT),
    ("call", CONTACT),
    ("phone", CONTACT),
    ("whatsapp", CONTACT),
    ("qq", CONTACT | QQ),
    ("扣扣", QQ),
    ("抠抠", QQ),
    ("蔻蔻", QQ),
    ("扣扣号", QQ),
    ("kou kou", CONTACT | QQ),
    ("企鹅号", QQ),
    ("企鹅", QQ),
    ("q号", QQ),
    ("q群", QQ),
    ("群号", QQ),
    ("微信号", CONTACT | WECHAT_STRONG),
    ("微信", CONTACT | WECHAT_STRONG),
    ("威信", CONTACT | WECHAT_STRONG),
    ("薇信", CONTACT | WECHAT_STRONG),
    ("徽信", CONTACT | WECHAT_STRONG),
    ("维信", CONTACT | WECHAT_STRONG),
    ("溦信", CONTACT | WECHAT_STRONG),
    ("嶶信", CONTACT | WECHAT_STRONG),
    ("威芯", CONTACT | WECHAT_STRONG),
    ("薇芯", CONTACT | WECHAT_STRONG),
    ("v芯", CONTACT | WECHAT_STRONG),
    ("vxin", CONTACT | WECHAT_STRONG),
    ("v信", CONTACT | WECHAT_STRONG),
    ("vx", CONTACT | WECHAT_STRONG),
    ("wx", CONTACT | WECHAT_STRONG),
    ("wechat", CONTACT | WECHAT_STRONG),
    // Written with the space so both `weixin` and `wei xin` match (a pattern's own space is
    // optional in the text; spaces the pattern lacks must separate all letters or none).
    ("wei xin", CONTACT | WECHAT_STRONG),
    ("加v", CONTACT | WECHAT_STRONG),
    ("加微", CONTACT | WECHAT_STRONG),
    ("微", WECHAT_WEAK),
    ("薇", WECHAT_WEAK),
    ("v", WECHAT_WEAK),
    ("加", CONTACT | WECHAT_WEAK),
    ("wxid", WXID),
];

/// The cue words as one automaton (normalized and matched like lexicon words), built once.
struct Cues {
    matcher: Matcher,
    /// Flags per matcher rule id.
    flags: Vec<u8>,
}

fn cues() -> &'static Cues {
    static CUE_SET: OnceLock<Cues> = OnceLock::new();
    CUE_SET.get_or_init(|| {
        let rules = CUES.iter().map(|(w, _)| Rule {
            word: (*w).to_owned(),
            label: Label::Advertising,
            suggest: Suggest::Review,
            score: 0,
        });
        // The cue words are constants that all contain letters; a failure is a bug caught by
        // every detector test.
        let matcher = Matcher::new(rules).unwrap_or_else(|e| panic!("detector cues: {e}"));
        let flags = matcher
            .rules()
            .map(|r| {
                CUES.iter()
                    .filter(|(w, _)| *w == r.word)
                    .fold(0, |acc, (_, f)| acc | f)
            })
            .collect();
        Cues { matcher, flags }
    })
}

/// A cue found in the stream.
#[derive(Debug, Clone, Copy)]
struct CueHit {
    first: usize,
    end: usize,
    flags: u8,
}

/// Stream characters allowed between a cue and the id (号, 是 …: "微信号是abc123").
const FILLER: &[char] = &['号', '是', '为', '我', '的', '搜', '加'];
const TLDS: &[&str] = &[
    "com", "net", "org", "cn", "top", "xyz", "vip", "cc", "info", "me", "io", "co", "tv", "club",
    "shop", "site", "online", "app", "link", "live", "fun", "ltd", "wang", "pro", "biz", "asia",
    "tk", "ml", "ru", "win", "bid", "work", "red", "kim", "mobi", "name", "store", "tech", "space",
    "website", "ink", "hk", "tw", "us", "uk",
];

/// Buffers the detectors reuse from one text to the next (the engine keeps one per thread).
#[derive(Debug, Default)]
pub struct Buffers {
    chars: Vec<char>,
    cues: Vec<CueHit>,
    hits: Vec<Hit>,
    words: Vec<(usize, usize)>,
}

/// Runs every detector over one normalized field.
pub fn detect(input: &str, norm: &Normalized, out: &mut Vec<Detection>) {
    detect_with(input, norm, &mut Buffers::default(), out);
}

/// [`detect`] with buffers kept between calls.
pub fn detect_with(input: &str, norm: &Normalized, buf: &mut Buffers, out: &mut Vec<Detection>) {
    // What the normalizer counted turns most texts away before the cue scan and the character
    // copy. Phone and QQ numbers are runs of five digits or more (Chinese numerals are digits
    // by now, so a count of digits would let most texts through); a WeChat id is a run of six
    // letters and digits or more (an id spelt out with separators reads as one run in the
    // stream); a web address has a last label (or `www`, `http`) of two letters at least, and
    // words with a dot, `://`, `点` or `dot` between them.
    let contacts = norm.digit_run >= 5 || (norm.letters && norm.word_run >= 6);
    let addresses =
        norm.letters && norm.word_run >= 2 && (norm.words_apart || norm.text.contains('点'));
    let cues = if contacts {
        CueScan::NearRuns
    } else {
        CueScan::Skip
    };
    if contacts || addresses {
        detect_kinds(input, norm, buf, cues, addresses, out);
    }
}

/// Where the contact detectors' cue words are looked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CueScan {
    /// Nowhere: the contact detectors do not run.
    Skip,
    /// Before and in runs of letters and digits long enough to be a number or id.
    NearRuns,
    /// In the whole text: what `NearRuns` must agree with.
    #[cfg(test)]
    Everywhere,
}

/// The farthest a cue may end before the number or id it announces, in stream characters
/// (a phone number's contact word; QQ's and WeChat's cues stand closer).
const CUE_REACH: usize = 8;

/// The detectors `detect_with` let through.
fn detect_kinds(
    input: &str,
    norm: &Normalized,
    buf: &mut Buffers,
    cue_scan: CueScan,
    addresses: bool,
    out: &mut Vec<Detection>,
) {
    buf.chars.clear();
    buf.chars.extend(norm.text.chars());
    buf.hits.clear();
    buf.cues.clear();
    let cue_set = cues();
    #[cfg(test)]
    if cue_scan == CueScan::Everywhere {
        cue_set.matcher.scan(norm, &mut buf.hits);
    }
    if cue_scan == CueScan::NearRuns {
        // Every cue a detector consults ends at most CUE_REACH characters before a run of five
        // letters or digits or more (the number or id), or inside it (`wxid`): the automaton
        // reads only those stretches.
        let reach = CUE_REACH + cue_set.matcher.longest();
        let mut window: Option<(usize, usize)> = None;
        let mut i = 0;
        while i < buf.chars.len() {
            if !buf.chars[i].is_ascii_alphanumeric() {
                i += 1;
                continue;
            }
            let start = i;
            while i < buf.chars.len() && buf.chars[i].is_ascii_alphanumeric() {
                i += 1;
            }
            if i - start < 5 {
                continue;
            }
            let from = start.saturating_sub(reach);
            window = match window {
                Some((a, b)) if from <= b => Some((a, i)),
                Some((a, b)) => {
                    cue_set.matcher.scan_spans(norm, a..b, &mut buf.hits);
                    Some((from, i))
                }
                None => Some((from, i)),
            };
        }
        if let Some((a, b)) = window {
            cue_set.matcher.scan_spans(norm, a..b, &mut buf.hits);
        }
    }
    buf.cues.extend(buf.hits.iter().map(|h| CueHit {
        first: norm.span_at(h.start as usize),
        end: norm.span_at(h.end as usize),
        flags: cue_set.flags[h.rule as usize],
    }));
    let contacts = cue_scan != CueScan::Skip;
    let s = Stream {
        input,
        norm,
        chars: &buf.chars,
        cues: &buf.cues,
    };
    let from = out.len();
    if contacts {
        phones(&s, out);
        qq(&s, out);
        wechat(&s, out);
    }
    if addresses {
        words(&s, &mut buf.words);
        urls(&s, &buf.words, out);
    }
    keep_strongest(out, from);
}

/// Among overlapping detections of the same kind, keeps only the strongest (several cues can
/// point at one id: 微信 and 微 before the same name).
fn keep_strongest(out: &mut Vec<Detection>, from: usize) {
    let mut i = from;
    while i < out.len() {
        let d = out[i];
        let beaten = out[from..].iter().enumerate().any(|(j, o)| {
            from + j != i
                && o.kind == d.kind
                && o.first < d.end
                && d.first < o.end
                && ((o.suggest, o.prob) > (d.suggest, d.prob)
                    || ((o.suggest, o.prob) == (d.suggest, d.prob) && from + j < i))
        });
        if beaten {
            out.remove(i);
        } else {
            i += 1;
        }
    }
}

struct Stream<'a> {
    input: &'a str,
    norm: &'a Normalized,
    chars: &'a [char],
    cues: &'a [CueHit],
}

impl<'a> Stream<'a> {
    fn len(&self) -> usize {
        self.chars.len()
    }

    fn gap(&self, i: usize) -> Gap {
        self.norm.spans[i].gap
    }

    /// The original text dropped between stream characters `i - 1` and `i`.
    fn between(&self, i: usize) -> &str {
        let spans = &self.norm.spans;
        if i == 0 || i >= spans.len() {
            return "";
        }
        let (a, b) = (spans[i - 1].orig_end as usize, spans[i].orig_start as usize);
        self.input.get(a..b).unwrap_or("")
    }

    /// Whether the character at `i` came from a plain ASCII character.
    fn ascii_source(&self, i: usize) -> bool {
        let s = &self.norm.spans[i];
        s.orig_end - s.orig_start == s.run as u32
    }

    fn word(&self, i: usize) -> bool {
        self.chars.get(i).is_some_and(char::is_ascii_alphanumeric)
    }

    /// Cues with any of `flags`.
    fn cues(&self, flags: u8) -> impl Iterator<Item = CueHit> + '_ {
        self.cues
            .iter()
            .copied()
            .filter(move |c| c.flags & flags != 0)
    }

    /// Whether a cue with `flags` ends within `window` characters before `at`.
    fn cue_before(&self, at: usize, window: usize, flags: u8) -> bool {
        self.cues(flags)
            .any(|c| c.end <= at && c.end + window >= at)
    }

    /// The maximal digit group starting at `i`: digits with any gaps between them, up to the
    /// first non-digit stream character. Returns its end.
    fn digit_group(&self, i: usize) -> usize {
        let mut j = i;
        while j < self.len() && self.chars[j].is_ascii_digit() {
            j += 1;
        }
        j
    }
}

fn phones(s: &Stream<'_>, out: &mut Vec<Detection>) {
    let mut i = 0;
    while i < s.len() {
        if !s.chars[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let end = s.digit_group(i);
        let digits = &s.chars[i..end];
        let body = match digits.len() {
            11 => Some((i, digits)),
            13 if digits[..2] == ['8', '6'] => Some((i + 2, &digits[2..])),
            _ => None,
        };
        if let Some((start, number)) = body
            && number[0] == '1'
            && ('3'..='9').contains(&number[1])
        {
            // Standard writing: plain ASCII digits, grouped by at most two single spaces or
            // hyphens. Anything else was written to get past a filter.
            let gaps: Vec<&str> = (start + 1..end)
                .filter(|&k| s.gap(k) != Gap::None)
                .map(|k| s.between(k))
                .collect();
            let standard = (start..end).all(|k| s.ascii_source(k))
                && gaps.len() <= 2
                && gaps.iter().all(|g| *g == " " || *g == "-");
            let cued = s.cue_before(i, CUE_REACH, CONTACT);
            let risky = !standard || cued;
            out.push(Detection {
                kind: Kind::Phone,
                suggest: if risky {
                    Suggest::Risky
                } else {
                    Suggest::Review
                },
                prob: if risky { RISKY_PROB } else { REVIEW_PROB },
                first: start as u32,
                end: end as u32,
            });
        }
        i = end;
    }
}

/// The first digit group starting within `window` characters after `from`, skipping filler.
fn digits_after(s: &Stream<'_>, from: usize, window: usize) -> Option<(usize, usize)> {
    let mut k = from;
    while k < s.len() && k < from + window {
        if s.chars[k].is_ascii_digit() {
            return Some((k, s.digit_group(k)));
        }
        if s.word(k) {
            return None; // letters first: not a number after the cue
        }
        k += 1;
    }
    None
}

fn qq(s: &Stream<'_>, out: &mut Vec<Detection>) {
    for cue in s.cues(QQ) {
        let (at, after) = (cue.first, cue.end);
        if let Some((first, end)) = digits_after(s, after, 4) {
            let n = end - first;
            if (5..=11).contains(&n) && s.chars[first] != '0' {
                out.push(Detection {
                    kind: Kind::Qq,
                    suggest: Suggest::Risky,
                    prob: RISKY_PROB,
                    first: at as u32,
                    end: end as u32,
                });
            }
        }
    }
    // qq123456789 written as one word (`qq` is one stream character with a run of two).
    for i in 0..s.len().saturating_sub(1) {
        if s.chars[i] == 'q'
            && s.norm.spans[i].run == 2
            && s.chars[i + 1].is_ascii_digit()
            && s.gap(i + 1) == Gap::None
            && (i == 0 || s.gap(i) != Gap::None || !s.word(i - 1))
        {
            let end = s.digit_group(i + 1);
            if (5..=11).contains(&(end - i - 1)) && s.chars[i + 1] != '0' {
                out.push(Detection {
                    kind: Kind::Qq,
                    suggest: Suggest::Risky,
                    prob: RISKY_PROB,
                    first: i as u32,
                    end: end as u32,
                });
            }
        }
    }
}

/// A WeChat id starting at `i`: a letter, then letters, digits, `_` or `-` (the latter two are
/// dropped from the stream, so they show as gaps whose original text is `_` or `-`). With
/// `spread`, also an id written one character at a time with separators between them
/// (`a b c 1 2 3`, `a.b.c.1.2.3`): every character alone, each gap at most three characters.
fn wechat_id(s: &Stream<'_>, i: usize, spread: bool) -> Option<(usize, bool)> {
    if !s.chars.get(i).is_some_and(char::is_ascii_lowercase) {
        return None;
    }
    let id_separator = |j: usize| s.between(j).chars().all(|c| c == '_' || c == '-');
    let alone = |j: usize| j + 1 >= s.len() || !s.word(j + 1) || s.gap(j + 1) != Gap::None;
    let spread = spread
        && alone(i)
        && i + 1 < s.len()
        && s.word(i + 1)
        && s.gap(i + 1) != Gap::None
        && !id_separator(i + 1);
    let mut j = i + 1;
    let mut has_digit = false;
    while j < s.len() && s.word(j) {
        let apart = s.gap(j) != Gap::None;
        let fits = if spread {
            apart && s.between(j).chars().count() <= 3 && alone(j)
        } else {
            !apart || id_separator(j)
        };
        if !fits {
            break;
        }
        has_digit |= s.chars[j].is_ascii_digit();
        j += 1;
    }
    let len = j - i;
    (6..=20).contains(&len).then_some((j, has_digit))
}

fn wechat(s: &Stream<'_>, out: &mut Vec<Detection>) {
    for (flags, strong) in [(WECHAT_STRONG, true), (WECHAT_WEAK, false)] {
        for cue in s.cues(flags) {
            let (at, mut k) = (cue.first, cue.end);
            let limit = k + 3;
            while k < s.len() && k < limit && FILLER.contains(&s.chars[k]) {
                k += 1;
            }
            if let Some((end, has_digit)) = wechat_id(s, k, strong) {
                if !strong && !has_digit {
                    continue;
                }
                out.push(Detection {
                    kind: Kind::Wechat,
                    suggest: if strong {
                        Suggest::Risky
                    } else {
                        Suggest::Review
                    },
                    prob: if strong { 85 } else { REVIEW_PROB },
                    first: at as u32,
                    end: end as u32,
                });
            }
        }
    }
    // wxid_… is a WeChat id whatever precedes it.
    for cue in s.cues(WXID) {
        let at = cue.first;
        if let Some((end, _)) = wechat_id(s, at, false)
            && end - at >= 8
        {
            out.push(Detection {
                kind: Kind::Wechat,
                suggest: Suggest::Risky,
                prob: 85,
                first: at as u32,
                end: end as u32,
            });
        }
    }
}

/// Latin words: maximal runs of letters and digits with nothing dropped inside.
fn words(s: &Stream<'_>, out: &mut Vec<(usize, usize)>) {
    out.clear();
    let mut i = 0;
    while i < s.len() {
        if !s.word(i) {
            i += 1;
            continue;
        }
        let mut j = i + 1;
        while j < s.len() && s.word(j) && s.gap(j) == Gap::None {
            j += 1;
        }
        out.push((i, j));
        i = j;
    }
}

/// Whether stream characters `w` spell `word`.
fn spells(s: &Stream<'_>, w: (usize, usize), word: &str) -> bool {
    s.chars[w.0..w.1].iter().copied().eq(word.chars())
}

fn urls(s: &Stream<'_>, ws: &[(usize, usize)], out: &mut Vec<Detection>) {
    let mut k = 0;
    while k < ws.len() {
        let w = ws[k];
        let next = ws.get(k + 1).copied();
        // http:// and https://
        if (spells(s, w, "http") || spells(s, w, "https"))
            && let Some(n) = next
            && n.0 == w.1
            && s.between(n.0).contains("://")
        {
            out.push(url(w.0, n.1, false));
            k += 2;
            continue;
        }
        // label <dot> tld, or www <dot> anything
        if let Some((j, disguised)) = separator(s, ws, k)
            && (spells(s, w, "www") || TLDS.iter().any(|tld| spells(s, ws[j], tld)))
        {
            out.push(url(w.0, ws[j].1, disguised));
            k = j + 1;
            continue;
        }
        k += 1;
    }
}

/// Whether word `k` is followed by a dot (a dot character, 点, or the word `dot`), and if so
/// the index of the word after it and whether the dot was disguised.
fn separator(s: &Stream<'_>, ws: &[(usize, usize)], k: usize) -> Option<(usize, bool)> {
    let w = ws[k];
    let next = *ws.get(k + 1)?;
    if next.0 == w.1 {
        let between = s.between(next.0);
        if between.contains(['.', '。', '．', '｡']) {
            return Some((k + 1, !between.contains('.')));
        }
    }
    if next.0 == w.1 + 1 && s.chars[w.1] == '点' {
        return Some((k + 1, true));
    }
    let is_dot = spells(s, next, "dot");
    if is_dot && next.0 == w.1 && ws.get(k + 2).is_some_and(|n| n.0 == next.1) {
        return Some((k + 2, true));
    }
    None
}

fn url(first: usize, end: usize, disguised: bool) -> Detection {
    Detection {
        kind: Kind::Url,
        suggest: if disguised {
            Suggest::Risky
        } else {
            Suggest::Review
        },
        prob: if disguised { RISKY_PROB } else { 75 },
        first: first as u32,
        end: end as u32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::normalize::normalize;

    fn run(text: &str) -> Vec<(Kind, Suggest)> {
        let norm = normalize(text);
        let mut out = Vec::new();
        detect(text, &norm, &mut out);
        out.iter().map(|d| (d.kind, d.suggest)).collect()
    }

    /// Each row: text, what must be found (empty: nothing).
    const TABLE: &[(&str, &[(Kind, Suggest)])] = &[
        ("我的号码13812345678", &[(Kind::Phone, Suggest::Risky)]),
        ("13812345678", &[(Kind::Phone, Suggest::Review)]),
        ("138 1234 5678", &[(Kind::Phone, Suggest::Review)]),
        ("138-1234-5678", &[(Kind::Phone, Suggest::Review)]),
        ("+86 138 1234 5678", &[(Kind::Phone, Suggest::Review)]),
        ("１３８１２３４５６７８", &[(Kind::Phone, Suggest::Risky)]),
        ("一三八一二三四五六七八", &[(Kind::Phone, Suggest::Risky)]),
        ("壹叁捌壹贰叁肆伍陆柒捌", &[(Kind::Phone, Suggest::Risky)]),
        ("1 3 8 1 2 3 4 5 6 7 8", &[(Kind::Phone, Suggest::Risky)]),
        ("①③⑧①②③④⑤⑥⑦⑧", &[(Kind::Phone, Suggest::Risky)]),
        ("138一二三4五六7八", &[(Kind::Phone, Suggest::Risky)]),
        ("订单号123456789012", &[]),
        ("12345678901", &[]),
        ("加我qq 12345678", &[(Kind::Qq, Suggest::Risky)]),
        ("扣扣：一二三四五六七", &[(Kind::Qq, Suggest::Risky)]),
        ("qq123456789", &[(Kind::Qq, Suggest::Risky)]),
        ("微信号是 abc_12345", &[(Kind::Wechat, Suggest::Risky)]),
        ("威信：hello_world", &[(Kind::Wechat, Suggest::Risky)]),
        ("加v abc12345", &[(Kind::Wechat, Suggest::Risky)]),
        ("vx: zhang-san88", &[(Kind::Wechat, Suggest::Risky)]),
        ("微 abc12345", &[(Kind::Wechat, Suggest::Review)]),
        ("wxid_abcdefg123", &[(Kind::Wechat, Suggest::Risky)]),
        (
            "加我薇信 a b c 1 2 3 4 5 6 带你",
            &[(Kind::Wechat, Suggest::Risky)],
        ),
        ("wei xin: a.b.c.1.2.3", &[(Kind::Wechat, Suggest::Risky)]),
        ("微信 a bc 12", &[]),
        ("kou kou 12345678", &[(Kind::Qq, Suggest::Risky)]),
        ("koukou 12345678", &[(Kind::Qq, Suggest::Risky)]),
        ("weixin abc_123", &[(Kind::Wechat, Suggest::Risky)]),
        ("我用微信支付了", &[]),
        ("www.example.com", &[(Kind::Url, Suggest::Review)]),
        ("https://example.org/path", &[(Kind::Url, Suggest::Review)]),
        ("上 baidu.com 搜", &[(Kind::Url, Suggest::Review)]),
        ("abc点com", &[(Kind::Url, Suggest::Risky)]),
        ("abc。cn", &[(Kind::Url, Suggest::Risky)]),
        ("abc dot com", &[(Kind::Url, Suggest::Risky)]),
        ("node.js and e.g. this", &[]),
        ("今天天气真好", &[]),
    ];

    proptest::proptest! {
        /// The counts that turn texts away never turn away one a detector would flag, and
        /// looking for cues only near runs of letters and digits finds every cue that counts.
        #[test]
        fn texts_turned_away_hold_nothing_to_detect(
            pieces in proptest::collection::vec(
                proptest::prop_oneof![
                    "微信", "vx", "qq", "加", "wxid_", "点", "www", "http://", ".cn", ".com",
                    "[a-c1-3]{1,7}", "[ _.-]", "[赌博，]", "1[3-9][0-9]{9}",
                    // Just over each count's threshold: a six-character id after a cue
                    // written in Chinese, a two-letter last label after 点.
                    "微信[a-c][a-c1-3]{5}", "[a-c]点cn",
                    // A cue, then a few characters before the number it announces.
                    "(电话|qq|加)[是：的号]{1,6}", "[号是我的]",
                ],
                0..8,
            ),
        ) {
            let text = pieces.concat();
            let norm = normalize(&text);
            let (mut filtered, mut all) = (Vec::new(), Vec::new());
            detect(&text, &norm, &mut filtered);
            detect_kinds(&text, &norm, &mut Buffers::default(), CueScan::Everywhere, true, &mut all);
            proptest::prop_assert_eq!(filtered, all);
        }
    }

    #[test]
    fn detector_table() {
        for (text, want) in TABLE {
            let got = run(text);
            assert_eq!(&got[..], *want, "{text}");
        }
    }
}
