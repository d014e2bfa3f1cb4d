//! The model strategies of an image's analysis (SPEC §14): the classifier (`nsfw_model`: its
//! score against the operator's thresholds, label 20002) and text recognition (`ocr`: the lines
//! read, through the text engine with the app's table, as QR text is). Each runs against its
//! own deadline; one that fails or times out is recorded as failed (errcode -1 in its detail
//! item, the reason in the strategy's note) and the analysis goes on without it.

use std::time::{Duration, Instant};

use image::DynamicImage;

use super::text::{TextCheck, judge_text};
use super::verdict::{DetailItem, StrategyRun};
use crate::engine::Suggest;
use crate::vision::{Models, nsfw, ocr};

/// How the model strategies run and what their scores mean (`[media]`).
#[derive(Debug, Clone)]
pub struct ModelSettings {
    pub nsfw_review: f32,
    pub nsfw_risky: f32,
    pub ocr: bool,
    pub timeout: Duration,
    /// Why there are no models when none are given (for the skipped strategies' note).
    pub without: String,
}

impl Default for ModelSettings {
    fn default() -> Self {
        ModelSettings {
            nsfw_review: 0.5,
            nsfw_risky: 0.8,
            ocr: true,
            timeout: Duration::from_secs(20),
            without: "media models are not loaded".into(),
        }
    }
}

/// What the models found in one image.
#[derive(Debug, Default)]
pub struct Found {
    pub items: Vec<DetailItem>,
    pub runs: Vec<StrategyRun>,
    pub nsfw_score: Option<f32>,
    pub text: Vec<String>,
}

pub const NSFW: &str = "nsfw_model";
pub const OCR: &str = "ocr";

/// The classifier's verdict for a score: `risky` from `nsfw_risky`, `review` from
/// `nsfw_review`; always label 20002, with the score as `prob`.
pub fn nsfw_item(score: f32, s: &ModelSettings) -> DetailItem {
    let suggest = if score >= s.nsfw_risky {
        Suggest::Risky
    } else if score >= s.nsfw_review {
        Suggest::Review
    } else {
        Suggest::Pass
    };
    DetailItem {
        strategy: NSFW.into(),
        errcode: 0,
        suggest,
        label: 20002,
        prob: (score * 100.0).round() as u32,
    }
}

fn failed_item(strategy: &str) -> DetailItem {
    DetailItem {
        strategy: strategy.into(),
        errcode: -1,
        suggest: Suggest::Pass,
        label: 100,
        prob: 0,
    }
}

fn run_record(
    strategy: &str,
    started: Instant,
    outcome: &str,
    note: Option<String>,
) -> StrategyRun {
    StrategyRun {
        strategy: strategy.into(),
        outcome: outcome.into(),
        ms: started.elapsed().as_secs_f64() * 1000.0,
        note,
    }
}

/// Runs the classifier and (with a text check, when switched on) OCR over `image`.
pub fn run(
    image: &DynamicImage,
    models: Option<&mut Models>,
    s: &ModelSettings,
    text: Option<&TextCheck<'_>>,
) -> Found {
    let mut found = Found::default();
    let Some(models) = models else {
        for strategy in [NSFW, OCR] {
            found.runs.push(StrategyRun {
                strategy: strategy.into(),
                outcome: "skipped".into(),
                ms: 0.0,
                note: Some(s.without.clone()),
            });
        }
        return found;
    };
    let started = Instant::now();
    let rgb = image.to_rgb8();
    match nsfw::score(&mut models.nsfw, &rgb, started + s.timeout) {
        Ok(score) => {
            found.nsfw_score = Some(score);
            found.items.push(nsfw_item(score, s));
            found.runs.push(run_record(NSFW, started, "ok", None));
        }
        Err(e) => {
            tracing::warn!(error = %e, "the image classifier failed");
            found.items.push(failed_item(NSFW));
            found
                .runs
                .push(run_record(NSFW, started, "failed", Some(e.to_string())));
        }
    }
    drop(rgb);
    let Some(t) = text.filter(|_| s.ocr) else {
        found.runs.push(run_record(
            OCR,
            Instant::now(),
            "skipped",
            Some("text recognition is switched off".into()),
        ));
        return found;
    };
    let started = Instant::now();
    let rgb = ocr::rgb_for_ocr(image);
    match models.ocr.read(&rgb, started + s.timeout) {
        Ok(lines) => {
            let item = if lines.is_empty() {
                None
            } else {
                judge_text(OCR, &as_text(&lines), t, false)
            };
            found.text = lines.into_iter().map(|l| l.text).collect();
            found.items.push(item.unwrap_or(DetailItem {
                strategy: OCR.into(),
                errcode: 0,
                suggest: Suggest::Pass,
                label: 100,
                prob: u32::from(crate::engine::verdict::PASS_PROB),
            }));
            let note = Some(format!("{} lines", found.text.len()));
            found.runs.push(run_record(OCR, started, "ok", note));
        }
        Err(e) => {
            tracing::warn!(error = %e, "text recognition failed");
            found.items.push(failed_item(OCR));
            found
                .runs
                .push(run_record(OCR, started, "failed", Some(e.to_string())));
        }
    }
    found
}

/// The recognised lines as one text for the engine: pieces whose heights overlap by at least
/// half the shorter one are one line, left to right, joined by a space; lines top to bottom,
/// joined by a newline. (The recognizer's own order starts a new line wherever a region's top
/// is 10 px lower, which reads a short word apart from the rest of its line when their regions
/// differ in height: "QQ" after "7479619442 加我领福利", the contact lost.)
pub fn as_text(lines: &[ocr::Line]) -> String {
    let span = |l: &ocr::Line| {
        let ys = l.corners.iter().map(|c| c[1]);
        let xs = l.corners.iter().map(|c| c[0]);
        (
            ys.clone().min().unwrap_or(0),
            ys.max().unwrap_or(0),
            xs.min().unwrap_or(0),
        )
    };
    let mut pieces: Vec<(i64, i64, i64, &str)> = lines
        .iter()
        .map(|l| {
            let (top, bottom, left) = span(l);
            (top, bottom, left, l.text.as_str())
        })
        .collect();
    pieces.sort_by_key(|p| p.0 + p.1);
    /// A line being gathered: its top, its bottom, and its pieces by left edge.
    type Row<'a> = (i64, i64, Vec<(i64, &'a str)>);
    let mut rows: Vec<Row<'_>> = Vec::new();
    for (top, bottom, left, text) in pieces {
        let joined = rows.last_mut().filter(|(rt, rb, _)| {
            let overlap = bottom.min(*rb) - top.max(*rt);
            overlap * 2 >= (bottom - top).min(rb - rt)
        });
        match joined {
            Some(row) => {
                row.0 = row.0.min(top);
                row.1 = row.1.max(bottom);
                row.2.push((left, text));
            }
            None => rows.push((top, bottom, vec![(left, text)])),
        }
    }
    rows.into_iter()
        .map(|(_, _, mut row)| {
            row.sort_by_key(|p| p.0);
            row.iter().map(|p| p.1).collect::<Vec<_>>().join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str, x0: i64, y0: i64, x1: i64, y1: i64) -> ocr::Line {
        ocr::Line {
            text: text.into(),
            score: 0.9,
            corners: [[x0, y0], [x1, y0], [x1, y1], [x0, y1]],
        }
    }

    /// A short word on the same line as the rest is read before it, however the regions' tops
    /// differ; lines below stay below.
    #[test]
    fn pieces_of_one_line_are_read_together() {
        let lines = [
            line("7479619442加我领福利", 120, 100, 600, 150),
            line("QQ", 20, 112, 90, 148),
            line("第二行", 20, 200, 200, 240),
        ];
        assert_eq!(as_text(&lines), "QQ 7479619442加我领福利\n第二行");
        assert_eq!(as_text(&[]), "");
    }

    #[test]
    fn scores_map_to_suggestions_by_the_thresholds() {
        let s = ModelSettings::default();
        let at = |score: f32| {
            let i = nsfw_item(score, &s);
            (i.suggest, i.label, i.prob)
        };
        assert_eq!(at(0.03), (Suggest::Pass, 20002, 3));
        assert_eq!(at(0.5), (Suggest::Review, 20002, 50));
        assert_eq!(at(0.79), (Suggest::Review, 20002, 79));
        assert_eq!(at(0.8), (Suggest::Risky, 20002, 80));
        let strict = ModelSettings {
            nsfw_review: 0.2,
            nsfw_risky: 0.4,
            ..ModelSettings::default()
        };
        assert_eq!(nsfw_item(0.45, &strict).suggest, Suggest::Risky);
    }
}
