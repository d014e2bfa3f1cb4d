//! Verdict composition (SPEC §3).
//!
//! `detail` holds exactly one `content_model` item (the built-in lexicon and detectors), then one
//! `keyword` item per custom keyword hit, or one bare keyword item when there is none. `result`
//! is the most severe item (risky > review > pass), among equals the one with the higher score
//! (prob or level); the first such item wins ties, so the order is deterministic. A pass result
//! always carries label 100.

use super::{Label, Suggest};

/// The confidence reported for a text that nothing matched.
pub const PASS_PROB: u8 = 90;

/// The `content_model` strategy's finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentModel {
    pub suggest: Suggest,
    pub label: Label,
    pub prob: u8,
    /// The built-in word that decided it. Not revealed to callers unless the operator says so.
    pub word: Option<String>,
}

impl ContentModel {
    /// The finding when nothing built in matched.
    pub fn pass() -> Self {
        ContentModel {
            suggest: Suggest::Pass,
            label: Label::Normal,
            prob: PASS_PROB,
            word: None,
        }
    }
}

/// A custom keyword hit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeywordHit {
    pub keyword: String,
    pub label: Label,
    pub level: u8,
    pub suggest: Suggest,
}

/// One `detail` item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DetailItem {
    ContentModel(ContentModel),
    Keyword(KeywordHit),
    /// The bare `{"strategy":"keyword","errcode":0}` when no custom keyword hit.
    NoKeyword,
}

impl DetailItem {
    fn rank(&self) -> Option<(Suggest, u8, Label)> {
        match self {
            DetailItem::ContentModel(c) => Some((c.suggest, c.prob, c.label)),
            DetailItem::Keyword(k) => Some((k.suggest, k.level, k.label)),
            DetailItem::NoKeyword => None,
        }
    }
}

/// The overall answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub suggest: Suggest,
    pub label: Label,
}

/// A complete verdict: `result` plus `detail`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub result: Outcome,
    pub detail: Vec<DetailItem>,
}

/// Builds the verdict from the content model's finding and the custom keyword hits.
pub fn compose(content_model: ContentModel, keyword_hits: &[KeywordHit]) -> Verdict {
    let mut detail = Vec::with_capacity(1 + keyword_hits.len().max(1));
    detail.push(DetailItem::ContentModel(content_model));
    if keyword_hits.is_empty() {
        detail.push(DetailItem::NoKeyword);
    } else {
        detail.extend(keyword_hits.iter().cloned().map(DetailItem::Keyword));
    }
    let mut best: Option<(Suggest, u8, Label)> = None;
    for (suggest, score, label) in detail.iter().filter_map(DetailItem::rank) {
        if best.is_none_or(|(s, p, _)| (suggest, score) > (s, p)) {
            best = Some((suggest, score, label));
        }
    }
    let result = match best {
        Some((suggest, _, label)) if suggest != Suggest::Pass => Outcome { suggest, label },
        _ => Outcome {
            suggest: Suggest::Pass,
            label: Label::Normal,
        },
    };
    Verdict { result, detail }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cm(suggest: Suggest, label: Label, prob: u8) -> ContentModel {
        ContentModel {
            suggest,
            label,
            prob,
            word: None,
        }
    }

    fn kw(suggest: Suggest, label: Label, level: u8) -> KeywordHit {
        KeywordHit {
            keyword: "k".into(),
            label,
            level,
            suggest,
        }
    }

    #[test]
    fn no_hits_is_a_pass_with_label_100_and_a_bare_keyword_item() {
        let v = compose(ContentModel::pass(), &[]);
        assert_eq!(
            v.result,
            Outcome {
                suggest: Suggest::Pass,
                label: Label::Normal
            }
        );
        assert_eq!(v.detail.len(), 2);
        assert_eq!(v.detail[1], DetailItem::NoKeyword);
    }

    #[test]
    fn most_severe_item_wins_then_higher_score() {
        let v = compose(
            cm(Suggest::Review, Label::Abuse, 95),
            &[
                kw(Suggest::Risky, Label::Fraud, 10),
                kw(Suggest::Risky, Label::Illegal, 60),
            ],
        );
        assert_eq!(
            v.result,
            Outcome {
                suggest: Suggest::Risky,
                label: Label::Illegal
            }
        );
        assert_eq!(v.detail.len(), 3);

        let v = compose(
            cm(Suggest::Risky, Label::Abuse, 95),
            &[kw(Suggest::Risky, Label::Fraud, 95)],
        );
        // Equal severity and score: the first item (content_model) stands.
        assert_eq!(v.result.label, Label::Abuse);
    }

    #[test]
    fn a_pass_result_always_has_label_100() {
        let v = compose(
            cm(Suggest::Pass, Label::Normal, 90),
            &[kw(Suggest::Pass, Label::Advertising, 99)],
        );
        assert_eq!(
            v.result,
            Outcome {
                suggest: Suggest::Pass,
                label: Label::Normal
            }
        );
    }
}
