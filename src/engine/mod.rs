//! The text engine: pure and synchronous (no tokio, no I/O).
//!
//! An [`Engine`] is built once from a [`Lexicon`] into an immutable value behind an `Arc`, so it
//! is cheap to clone and share across request tasks; reloading means building a new one and
//! swapping it in. Checking a text is: [`normalize`](normalize::normalize) it once, run the
//! built-in [`Matcher`] (and an app's custom one) and the advertising [`detect`]ors over the
//! stream, let allow entries suppress the deny hits they overlap, then
//! [`compose`](verdict::compose) the verdict. DESIGN.md explains each step.

pub mod compact;
pub mod darray;
pub mod detect;
pub mod fold;
pub mod lexicon;
pub mod matcher;
pub mod normalize;
pub mod table;
pub mod verdict;

use std::sync::Arc;

pub use lexicon::{Lexicon, LexiconError};
pub use matcher::{Hit, Matcher, MatcherError, Rule, RuleRef};
pub use normalize::{Normalized, normalize};
pub use verdict::{ContentModel, DetailItem, KeywordHit, Outcome, Verdict};

/// Per-thread buffers for checking one text, kept between checks so the hot path allocates
/// nothing for them. They grow to the largest text a thread has checked, which the request body
/// limit bounds.
#[derive(Default)]
struct Scratch {
    norm: Normalized,
    /// The second stream (runs the first keeps apart merged) and where its spans start in the
    /// first.
    collapsed: Normalized,
    first: Vec<u32>,
    /// The second stream's spans that merged several of the first's.
    merged: Vec<u32>,
    hits: Vec<Hit>,
    detections: Vec<detect::Detection>,
    detect: detect::Buffers,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::default();
}

/// How severe a verdict is. Ordered: `Pass < Review < Risky`. Written as `pass`, `review`,
/// `risky`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Suggest {
    Pass,
    Review,
    Risky,
}

/// A suggest compares equal to the word it is written as.
impl PartialEq<&str> for Suggest {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Suggest {
    pub fn as_str(self) -> &'static str {
        match self {
            Suggest::Pass => "pass",
            Suggest::Review => "review",
            Suggest::Risky => "risky",
        }
    }

    pub fn parse(s: &str) -> Option<Suggest> {
        match s {
            "pass" => Some(Suggest::Pass),
            "review" => Some(Suggest::Review),
            "risky" => Some(Suggest::Risky),
            _ => None,
        }
    }
}

/// The SPEC's label set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Label {
    Normal,
    Advertising,
    Politics,
    Pornography,
    Abuse,
    Illegal,
    Fraud,
    Vulgar,
    Copyright,
    Other,
}

impl Label {
    pub const ALL: [Label; 10] = [
        Label::Normal,
        Label::Advertising,
        Label::Politics,
        Label::Pornography,
        Label::Abuse,
        Label::Illegal,
        Label::Fraud,
        Label::Vulgar,
        Label::Copyright,
        Label::Other,
    ];

    pub fn code(self) -> u32 {
        match self {
            Label::Normal => 100,
            Label::Advertising => 10001,
            Label::Politics => 20001,
            Label::Pornography => 20002,
            Label::Abuse => 20003,
            Label::Illegal => 20006,
            Label::Fraud => 20008,
            Label::Vulgar => 20012,
            Label::Copyright => 20013,
            Label::Other => 21000,
        }
    }

    pub fn from_code(code: u32) -> Option<Label> {
        Label::ALL.into_iter().find(|l| l.code() == code)
    }
}

/// Building an engine failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("lexicon: {0}")]
    Lexicon(#[from] LexiconError),
    #[error("lexicon: {0}")]
    Matcher(#[from] MatcherError),
}

/// Where a finding came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A built-in lexicon rule (index into [`Engine::matcher`]'s rules).
    Builtin(u32),
    /// A rule of the custom table passed to the check.
    Custom(u32),
    /// An advertising detector.
    Detector(detect::Kind),
}

/// One finding in one field, after allow entries have had their say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finding {
    pub source: Source,
    pub label: Label,
    pub suggest: Suggest,
    /// prob or level
    pub score: u8,
    /// Byte range `start..end` in the field's normalized text.
    pub start: u32,
    pub end: u32,
}

/// The built text engine. Cloning shares it.
#[derive(Clone, Debug)]
pub struct Engine {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    builtin: Matcher,
}

impl Engine {
    /// Builds the engine over the built-in lexicon.
    pub fn builtin() -> Result<Engine, EngineError> {
        Engine::new(Lexicon::builtin()?)
    }

    /// Builds the engine over a lexicon.
    pub fn new(lexicon: Lexicon) -> Result<Engine, EngineError> {
        fold::warm_up();
        Ok(Engine {
            inner: Arc::new(Inner {
                builtin: Matcher::new(lexicon.rules)?,
            }),
        })
    }

    /// The built-in rule set.
    pub fn matcher(&self) -> &Matcher {
        &self.inner.builtin
    }

    /// Every finding in one text: built-in hits, custom hits and detections, with deny findings
    /// that overlap an allow entry (built-in or custom) removed.
    pub fn findings(&self, text: &str, custom: Option<&Matcher>, out: &mut Vec<Finding>) {
        SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
            Ok(mut scratch) => self.findings_in(text, custom, out, &mut scratch),
            // Only reachable if a finding's own work re-entered the engine; stay correct.
            Err(_) => self.findings_in(text, custom, out, &mut Scratch::default()),
        });
    }

    fn findings_in(
        &self,
        text: &str,
        custom: Option<&Matcher>,
        out: &mut Vec<Finding>,
        scratch: &mut Scratch,
    ) {
        let Scratch {
            norm,
            collapsed,
            first,
            merged,
            hits,
            detections,
            detect,
        } = scratch;
        hits.clear();
        detections.clear();
        let from = out.len();
        self.inner.builtin.fill_and_scan(text, norm, hits);
        for h in hits.iter() {
            let r = self.inner.builtin.rule(h.rule);
            out.push(finding(Source::Builtin(h.rule), r, h));
        }
        if let Some(custom) = custom {
            hits.clear();
            custom.scan(norm, hits);
            for h in hits.iter() {
                out.push(finding(Source::Custom(h.rule), custom.rule(h.rule), h));
            }
        }
        // The second stream, only where the first kept equal neighbours apart; its hits are
        // reported in the first stream's bytes, once. Elsewhere it reads as the first stream
        // does, so the matchers read it only around the spans that merged.
        norm.collapse(collapsed, first);
        if !collapsed.text.is_empty() {
            merged.clear();
            let ends = first
                .iter()
                .skip(1)
                .copied()
                .chain([norm.spans.len() as u32]);
            merged.extend(
                first
                    .iter()
                    .zip(ends)
                    .enumerate()
                    .filter(|(_, (a, b))| b - *a > 1)
                    .map(|(j, _)| j as u32),
            );
            let matchers =
                std::iter::once((&self.inner.builtin, false)).chain(custom.map(|c| (c, true)));
            for (matcher, is_custom) in matchers {
                hits.clear();
                matcher.scan_near(collapsed, merged, hits);
                for h in hits.iter() {
                    let (a, b) = (
                        collapsed.span_at(h.start as usize),
                        collapsed.span_at(h.end as usize),
                    );
                    let byte = |i: Option<&u32>| {
                        i.and_then(|&i| norm.spans.get(i as usize))
                            .map_or(norm.text.len() as u32, |s| s.norm)
                    };
                    let at = Hit {
                        rule: h.rule,
                        start: byte(first.get(a)),
                        end: byte(first.get(b)),
                    };
                    let source = if is_custom {
                        Source::Custom(h.rule)
                    } else {
                        Source::Builtin(h.rule)
                    };
                    let f = finding(source, matcher.rule(h.rule), &at);
                    if !out[from..].contains(&f) {
                        out.push(f);
                    }
                }
            }
        }
        detect::detect_with(text, norm, detect, detections);
        // Detections are in stream characters; findings are in normalized bytes.
        let byte = |i: u32| {
            norm.spans
                .get(i as usize)
                .map_or(norm.text.len() as u32, |s| s.norm)
        };
        out.extend(detections.iter().map(|d| Finding {
            source: Source::Detector(d.kind),
            label: Label::Advertising,
            suggest: d.suggest,
            score: d.prob,
            start: byte(d.first),
            end: byte(d.end),
        }));
        suppress_allowed(out, from);
    }

    /// The verdict over several fields of one request (content, title, nickname, …).
    pub fn check(&self, fields: &[&str]) -> Verdict {
        self.check_with(fields, None)
    }

    /// The verdict with an app's custom keyword table.
    pub fn check_with(&self, fields: &[&str], custom: Option<&Matcher>) -> Verdict {
        let mut found = Vec::new();
        for field in fields.iter().filter(|f| !f.is_empty()) {
            self.findings(field, custom, &mut found);
        }
        let mut best: Option<&Finding> = None;
        let mut keywords: Vec<KeywordHit> = Vec::new();
        for f in &found {
            match f.source {
                Source::Builtin(_) | Source::Detector(_) => {
                    if best.is_none_or(|b| (f.suggest, f.score) > (b.suggest, b.score)) {
                        best = Some(f);
                    }
                }
                Source::Custom(id) => {
                    let Some(custom) = custom else { continue };
                    let rule = custom.rule(id);
                    if !keywords.iter().any(|k| k.keyword == rule.word) {
                        keywords.push(KeywordHit {
                            keyword: rule.word.to_owned(),
                            label: rule.label,
                            level: rule.score,
                            suggest: rule.suggest,
                        });
                    }
                }
            }
        }
        let content_model = match best {
            Some(f) if f.suggest != Suggest::Pass => ContentModel {
                suggest: f.suggest,
                label: f.label,
                prob: f.score,
                word: Some(match f.source {
                    Source::Builtin(id) => self.inner.builtin.rule(id).word.to_owned(),
                    Source::Detector(kind) => kind.as_str().to_owned(),
                    Source::Custom(_) => String::new(),
                }),
            },
            _ => ContentModel::pass(),
        };
        verdict::compose(content_model, &keywords)
    }
}

/// Why a text was flagged: its normalized stream and each finding traced back to the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    /// The normalized stream the matchers ran over.
    pub normalized: String,
    pub hits: Vec<ExplainedHit>,
}

/// One finding of an [`Explanation`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExplainedHit {
    pub finding: Finding,
    /// The lexicon or custom word, or the detector's name.
    pub word: String,
    /// Byte range in the input.
    pub input_start: usize,
    pub input_end: usize,
    /// The normalization steps taken inside that range, each once, in order.
    pub steps: Vec<fold::Step>,
}

impl Engine {
    /// Every finding of [`Engine::findings`], with the input range it covers and the
    /// normalization steps that led to it: for an operator asking why a text was flagged. Not
    /// for the hot path (it allocates freely).
    pub fn explain(&self, text: &str, custom: Option<&Matcher>) -> Explanation {
        let norm = normalize(text);
        let mut found = Vec::new();
        self.findings(text, custom, &mut found);
        let hits = found
            .into_iter()
            .map(|f| {
                let (first, last) = (norm.span_at(f.start as usize), norm.span_at(f.end as usize));
                let (input_start, input_end) = norm.original_range(first, last);
                let word = match f.source {
                    Source::Builtin(id) => self.inner.builtin.rule(id).word.to_owned(),
                    Source::Custom(id) => {
                        custom.map_or(String::new(), |c| c.rule(id).word.to_owned())
                    }
                    Source::Detector(kind) => kind.as_str().to_owned(),
                };
                ExplainedHit {
                    finding: f,
                    word,
                    input_start,
                    input_end,
                    steps: steps(&text[input_start..input_end]),
                }
            })
            .collect();
        Explanation {
            normalized: norm.text,
            hits,
        }
    }
}

/// The normalization steps inside one stretch of input, each once, in the order met.
fn steps(input: &str) -> Vec<fold::Step> {
    let mut out: Vec<fold::Step> = Vec::new();
    let mut last: Option<String> = None;
    for c in input.chars() {
        let mut add = fold::describe(c);
        let kept = match fold::fold(c) {
            fold::Fold::One(k) => Some(k.to_string()),
            fold::Fold::Many(m) => Some(m.to_owned()),
            _ => None,
        };
        if let Some(k) = kept {
            if last.as_ref() == Some(&k) {
                add.push(fold::Step::Repeat);
            }
            last = Some(k);
        }
        for s in add {
            if !out.contains(&s) {
                out.push(s);
            }
        }
    }
    out
}

fn finding(source: Source, r: RuleRef<'_>, h: &Hit) -> Finding {
    Finding {
        source,
        label: r.label,
        suggest: r.suggest,
        score: r.score,
        start: h.start,
        end: h.end,
    }
}

/// Removes built-in deny findings and detections that overlap an allow entry. Custom deny
/// entries are the operator's own word and are not overridden by built-in allow entries; custom
/// allow entries override everything built in.
fn suppress_allowed(found: &mut Vec<Finding>, from: usize) {
    let allows: Vec<(Source, u32, u32)> = found[from..]
        .iter()
        .filter(|f| f.suggest == Suggest::Pass)
        .map(|f| (f.source, f.start, f.end))
        .collect();
    if allows.is_empty() {
        return;
    }
    let mut i = from;
    while i < found.len() {
        let f = found[i];
        let suppressed = f.suggest != Suggest::Pass
            && allows.iter().any(|&(src, start, end)| {
                let overlaps = start < f.end && f.start < end;
                let may = match (src, f.source) {
                    (Source::Custom(_), _) => true,
                    (_, Source::Custom(_)) => false,
                    _ => true,
                };
                overlaps && may
            });
        // Built-in allow entries are bookkeeping, not findings.
        let drop =
            suppressed || (f.suggest == Suggest::Pass && matches!(f.source, Source::Builtin(_)));
        if drop {
            found.remove(i);
        } else {
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests;
