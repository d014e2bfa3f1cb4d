//! What a media analysis concludes, in the shape a push carries it (`errcode`, `errmsg`,
//! `detail`, `result`), with what the file is kept beside it.

use serde::{Deserialize, Serialize};

use crate::engine::Suggest;

/// One `detail` item of a media verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DetailItem {
    pub strategy: String,
    pub errcode: i32,
    pub suggest: Suggest,
    pub label: u32,
    pub prob: u32,
}

/// The overall `result`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultItem {
    pub suggest: Suggest,
    pub label: u32,
}

/// What a finished analysis says: the push's `errcode`, `errmsg`, `detail` and `result`, and
/// what the file is (kept with the job and read back, not pushed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MediaVerdict {
    pub errcode: i32,
    pub errmsg: String,
    pub detail: Vec<DetailItem>,
    pub result: ResultItem,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media: Option<MediaInfo>,
    /// Each strategy tried, in order, with its outcome and time (kept with the job and shown in
    /// the job view and the review queue; not pushed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub strategies: Vec<StrategyRun>,
}

/// One strategy's run over a file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StrategyRun {
    pub strategy: String,
    /// `ok`, `failed` (with the reason in `note`), or `skipped` (why in `note`).
    pub outcome: String,
    /// Wall time, in milliseconds.
    pub ms: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl MediaVerdict {
    /// The `content_model` item that leads a push's `detail` (SPEC §12): the combined verdict
    /// of every analysis, with the `prob` of the strategy that decided it (the engine's pass
    /// probability when nothing did; 0 when the file could not be analysed).
    pub fn content_model(&self) -> DetailItem {
        let decided = self
            .detail
            .iter()
            .filter(|d| {
                d.suggest != Suggest::Pass
                    && d.suggest == self.result.suggest
                    && d.label == self.result.label
            })
            .map(|d| d.prob)
            .max();
        let otherwise = if self.errcode == 0 {
            u32::from(crate::engine::verdict::PASS_PROB)
        } else {
            0
        };
        DetailItem {
            strategy: "content_model".into(),
            errcode: self.errcode,
            suggest: self.result.suggest,
            label: self.result.label,
            prob: decided.unwrap_or(otherwise),
        }
    }
}

/// The file as analysed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MediaInfo {
    pub format: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// What a bank entry for this file would hold: the PDQ hash of an image (when its quality
    /// allows matching), the SHA-256 of audio. Shown to reviewers; not pushed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    /// The classifier's score (0 to 1) that the image is pornographic, when it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nsfw_score: Option<f32>,
    /// The lines of text recognised in the image, in reading order, when OCR ran: what a
    /// reviewer reads to see why an image was flagged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub text: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(strategy: &str, suggest: Suggest, label: u32, prob: u32) -> DetailItem {
        DetailItem {
            strategy: strategy.into(),
            errcode: 0,
            suggest,
            label,
            prob,
        }
    }

    fn verdict(
        errcode: i32,
        detail: Vec<DetailItem>,
        suggest: Suggest,
        label: u32,
    ) -> MediaVerdict {
        MediaVerdict {
            errcode,
            errmsg: String::new(),
            detail,
            result: ResultItem { suggest, label },
            media: None,
            strategies: Vec::new(),
        }
    }

    /// The leading item carries the result, with the prob of the strategy that decided it.
    #[test]
    fn content_model_carries_the_combined_verdict() {
        let format = item("format", Suggest::Pass, 100, 100);
        let passed = verdict(0, vec![format.clone()], Suggest::Pass, 100);
        assert_eq!(
            passed.content_model(),
            item("content_model", Suggest::Pass, 100, 90)
        );
        let risky = verdict(
            0,
            vec![
                format,
                item("qr_code", Suggest::Review, 10001, 90),
                item("hash_bank", Suggest::Risky, 20002, 94),
                item("hash_bank", Suggest::Risky, 20002, 97),
            ],
            Suggest::Risky,
            20002,
        );
        assert_eq!(
            risky.content_model(),
            item("content_model", Suggest::Risky, 20002, 97)
        );
        let failed = verdict(-1008, Vec::new(), Suggest::Review, 100);
        let lead = failed.content_model();
        assert_eq!(
            (lead.errcode, lead.suggest, lead.prob),
            (-1008, Suggest::Review, 0)
        );
    }
}
