//! How text found in media (QR codes, embedded metadata, text read by OCR) is judged: through
//! the text engine with the app's keyword table, its labels mapped into the media label set.

use super::verdict::DetailItem;
use crate::engine::Suggest;

/// How text found in media is judged.
pub struct TextCheck<'a> {
    pub engine: &'a crate::engine::Engine,
    /// The app's custom keyword table.
    pub table: Option<&'a crate::engine::matcher::Matcher>,
    /// What a QR code leading elsewhere is: `risky`, `review` or `pass`.
    pub qr_links: Suggest,
}

/// The media label set (SPEC §4) for an engine label: labels outside it become 21000, other.
fn media_label(code: u32) -> u32 {
    if [100, 10001, 20001, 20002, 20006, 21000].contains(&code) {
        code
    } else {
        21000
    }
}

/// The detail item for a piece of text found in media: the engine's verdict on it, and for a
/// QR code that leads elsewhere the configured link verdict; the more severe, or none.
pub(super) fn judge_text(
    strategy: &str,
    text: &str,
    t: &TextCheck<'_>,
    link: bool,
) -> Option<DetailItem> {
    let verdict = t.engine.check_with(&[text], t.table);
    let mut best = None;
    if verdict.result.suggest != Suggest::Pass {
        let prob = verdict
            .detail
            .iter()
            .find_map(|d| match d {
                crate::engine::DetailItem::ContentModel(c) => Some(u32::from(c.prob)),
                _ => None,
            })
            .unwrap_or(90);
        best = Some(DetailItem {
            strategy: strategy.into(),
            errcode: 0,
            suggest: verdict.result.suggest,
            label: media_label(verdict.result.label.code()),
            prob,
        });
    }
    if link && t.qr_links != Suggest::Pass {
        let link_item = DetailItem {
            strategy: strategy.into(),
            errcode: 0,
            suggest: t.qr_links,
            label: 10001,
            prob: 90,
        };
        if best.as_ref().is_none_or(|b| link_item.suggest > b.suggest) {
            best = Some(link_item);
        }
    }
    best
}
