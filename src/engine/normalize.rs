//! Normalization: the canonical character stream the automaton runs over, with a map back to the
//! original text.
//!
//! Rules, applied per character (first version; each rule states what it deliberately leaves out):
//! 1. Full-width ASCII forms (U+FF01–FF5E) fold to ASCII and the ideographic space to a space.
//!    Other compatibility forms (circled digits, math letters) are not folded yet.
//! 2. Letters are lower-cased with Unicode's default lower-case mapping.
//! 3. Invisible characters are dropped: zero-width space/joiners, bidi controls, word joiner,
//!    BOM, soft hyphen, variation selectors.
//! 4. Noise is dropped: ASCII and CJK punctuation, general punctuation, arrows, math and technical
//!    symbols, box drawing, shapes, dingbats, currency signs, emoji. So `赌.博` and `f*u*c*k` read
//!    as words. Digits and letters are never noise.
//! 5. Whitespace is dropped between two CJK characters (`赌 博`) and kept as one space otherwise,
//!    so Latin words keep their boundaries (`gr ass` is not `grass`, `a ss` is not `ass`).
//!    Not done yet: traditional→simplified, look-alike digits, repeated-character collapse.
//!
//! The output is UTF-8; `spans` records, for every output character, the byte range of the input
//! character it came from, so a match can be reported in the caller's own text.

/// One output character's origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// Byte offset of the character in the normalized text.
    pub norm: u32,
    /// Byte range of the source character in the input.
    pub orig_start: u32,
    pub orig_end: u32,
}

/// A normalized text and its offset map.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Normalized {
    pub text: String,
    pub spans: Vec<Span>,
}

impl Normalized {
    /// The input byte range covered by the normalized byte range `start..end`.
    pub fn original_range(&self, start: usize, end: usize) -> (usize, usize) {
        let first = self.spans.partition_point(|s| (s.norm as usize) < start);
        let last = self.spans.partition_point(|s| (s.norm as usize) < end);
        match (
            self.spans.get(first),
            last.checked_sub(1).and_then(|i| self.spans.get(i)),
        ) {
            (Some(a), Some(b)) => (a.orig_start as usize, b.orig_end as usize),
            _ => (0, 0),
        }
    }
}

enum Class {
    Keep(char),
    Space,
    Drop,
}

/// Normalizes `input` (see the module docs for the rules).
pub fn normalize(input: &str) -> Normalized {
    let mut out = Normalized {
        text: String::with_capacity(input.len()),
        spans: Vec::with_capacity(input.len()),
    };
    let mut prev_cjk: Option<bool> = None; // None before the first kept character
    let mut pending_space: Option<(usize, usize)> = None;
    for (at, c) in input.char_indices() {
        let end = at + c.len_utf8();
        match classify(c) {
            Class::Drop => {}
            Class::Space => {
                if prev_cjk.is_some() && pending_space.is_none() {
                    pending_space = Some((at, end));
                }
            }
            Class::Keep(k) => {
                let cjk = is_cjk(k);
                if let Some((s, e)) = pending_space.take()
                    && !(cjk && prev_cjk == Some(true))
                {
                    push(&mut out, ' ', s, e);
                }
                if !k.is_ascii_lowercase() && !cjk && k.is_uppercase() {
                    for l in k.to_lowercase() {
                        push(&mut out, l, at, end);
                    }
                } else {
                    push(&mut out, k, at, end);
                }
                prev_cjk = Some(cjk);
            }
        }
    }
    out
}

fn push(out: &mut Normalized, c: char, orig_start: usize, orig_end: usize) {
    // Inputs are bounded by the request body limit (far below 4 GiB), so offsets fit in u32.
    out.spans.push(Span {
        norm: out.text.len() as u32,
        orig_start: orig_start as u32,
        orig_end: orig_end as u32,
    });
    out.text.push(c);
}

fn classify(c: char) -> Class {
    let c = match c {
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        '\u{3000}' => return Class::Space,
        _ => c,
    };
    // Fast paths for the common cases: ASCII letters and digits, and CJK ideographs (which are
    // neither upper-case nor noise), before the Unicode table look-ups below.
    if c.is_ascii_alphanumeric() || ('\u{4E00}'..='\u{9FFF}').contains(&c) {
        return Class::Keep(c);
    }
    if c.is_whitespace() {
        return Class::Space;
    }
    if c.is_alphanumeric() {
        // Letters and digits of every script (including ² and µ in the Latin-1 block below).
        return Class::Keep(c);
    }
    let cp = c as u32;
    let dropped = c.is_ascii_punctuation()
        || c.is_control()
        || matches!(cp,
            0x00A1..=0x00BF          // Latin-1 punctuation, signs, soft hyphen (¡ ¢ £ ¥ § « » ¿)
            | 0x00D7 | 0x00F7        // × ÷
            | 0x02B0..=0x036F        // modifier letters, combining marks
            | 0x2000..=0x206F        // general punctuation, zero-width, bidi controls
            | 0x20A0..=0x20CF        // currency signs
            | 0x2100..=0x214F        // letterlike symbols
            | 0x2190..=0x23FF        // arrows, math operators, technical
            | 0x2500..=0x27BF        // box drawing, blocks, shapes, misc symbols, dingbats
            | 0x27C0..=0x2BFF        // more math and arrows
            | 0x3001..=0x3006 | 0x3008..=0x303F // CJK punctuation (not 〇 U+3007)
            | 0x30FB                 // katakana middle dot
            | 0xFE00..=0xFE0F        // variation selectors
            | 0xFE10..=0xFE6F        // vertical and small forms
            | 0xFEFF                 // BOM / zero-width no-break space
            | 0xFF5F..=0xFF65        // half-width CJK punctuation
            | 0xFFE0..=0xFFEE        // full-width currency (￥) and symbols
            | 0x1F000..=0x1FAFF      // emoji, pictographs, playing cards, mahjong
            | 0xE0000..=0xE007F      // tag characters
        );
    if dropped { Class::Drop } else { Class::Keep(c) }
}

/// CJK ideographs (the characters that need no word boundaries).
pub fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3007 | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x3134F)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> String {
        normalize(s).text
    }

    #[test]
    fn rules_table() {
        let table = [
            ("ｆｕｃｋ", "fuck"),
            ("FuCk", "fuck"),
            ("f.u*c-k", "fuck"),
            ("赌 博", "赌博"),
            ("赌\u{200B}博", "赌博"),
            ("赌😀博！", "赌博"),
            ("赌　博", "赌博"),
            ("gr ass", "gr ass"),
            ("  hello   world  ", "hello world"),
            ("买 a 枪", "买 a 枪"),
            ("￥100元", "100元"),
            ("〇", "〇"),
            ("", ""),
        ];
        for (input, want) in table {
            assert_eq!(n(input), want, "input {input:?}");
        }
    }

    #[test]
    fn offsets_map_back_to_the_input() {
        let input = "我要 赌.博了";
        let norm = normalize(input);
        assert_eq!(norm.text, "我要赌博了");
        let start = norm.text.find("赌博").unwrap();
        let (s, e) = norm.original_range(start, start + "赌博".len());
        assert_eq!(&input[s..e], "赌.博");
    }
}
