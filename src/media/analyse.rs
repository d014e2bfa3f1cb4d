//! The analysis of one file: what it is, whether a bank knows it, and what any text it carries
//! (metadata, QR codes) says; composed into the verdict a push carries.

use std::time::Instant;

use super::bank::{Bank, BankMatch};
use super::models::{self, ModelSettings};
use super::sniff::MediaKind;
pub use super::text::TextCheck;
use super::text::judge_text;
use super::verdict::{DetailItem, MediaInfo, MediaVerdict, ResultItem, StrategyRun};
use super::{audio, bank, images, meta, pdq, qr, sniff};
use crate::engine::Suggest;
use crate::vision::Models;

/// The errcode a push carries when the media could not be downloaded (SPEC §4).
pub const DOWNLOAD_FAILED: i32 = -1008;
/// The errcode a push carries when the file is not what `media_type` said.
pub const WRONG_TYPE: i32 = 40004;

/// What an analysis consults besides the bytes.
pub struct Analysis<'a> {
    pub global: &'a Bank,
    pub app: Option<&'a Bank>,
    /// PDQ bits an image may differ from a bank entry.
    pub pdq_distance: u32,
    pub limits: images::ImageLimits,
    /// The text engine for text found in images (QR codes, embedded text); `None` skips both.
    pub text: Option<TextCheck<'a>>,
    /// Whether images are scanned for QR codes (`media.qr_scan`).
    pub qr_scan: bool,
    /// How the model strategies run and what their scores mean.
    pub models: ModelSettings,
}

impl<'a> Analysis<'a> {
    /// The analysis with the gateway's defaults and no app: `bank` as the only bank, `engine`
    /// without a custom table, QR codes scanned and links risky, the default model thresholds
    /// (offline checks and benchmarks).
    pub fn standalone(bank: &'a Bank, engine: &'a crate::engine::Engine) -> Analysis<'a> {
        Analysis {
            global: bank,
            app: None,
            pdq_distance: 31, // media.pdq_distance's default
            limits: images::ImageLimits::default(),
            text: Some(TextCheck {
                engine,
                table: None,
                qr_links: Suggest::Risky,
            }),
            qr_scan: true,
            models: ModelSettings::default(),
        }
    }
}

/// The verdict on fetched bytes, deterministic for the same bytes and banks:
///
/// 1. the format, from the bytes: not the kind `media_type` said → errcode 40004 with the reason;
/// 2. images are decoded within limits (undecodable or oversized → 40004) and PDQ-hashed; a hash of
///    enough quality is matched against the global bank and the app's within `pdq_distance`;
///    audio must read as its container (else 40004 with the reason), its duration is read, and
///    it is matched by its SHA-256;
/// 3. images are scanned for QR codes: each code's text goes through the text engine (and the
///    app's keyword table), and a code that leads elsewhere is `media.qr_links` advertising;
///    text embedded in the file (PNG text chunks, JPEG comments, EXIF, XMP, GIF comments) goes
///    through the text engine too;
/// 4. images go through the models ([`models::run`], with `models`; without them those
///    strategies are recorded as skipped): the classifier's `nsfw_model` item, and the text
///    recognised in the image through the text engine as an `ocr` item;
/// 5. detail: a `format` item, one `hash_bank` item per matching entry (`prob` is the share of
///    equal bits, 100 for an exact match), one `qr_code` or `image_text` item per code or text
///    judged not to pass, and the model items;
/// 6. result: among bank matches the closest decides (a tie goes to the more severe); when that
///    is a `pass` entry the image is known-good and passes whatever else it holds; otherwise the
///    most severe of that, the QR and text items and the model items decides; nothing found →
///    pass.
///
/// Each strategy's outcome and time go into the verdict's `strategies`.
pub fn analyse(
    bytes: &[u8],
    expected: MediaKind,
    a: &Analysis<'_>,
    models: Option<&mut Models>,
) -> MediaVerdict {
    let mut runs: Vec<StrategyRun> = Vec::new();
    let mut clock = Instant::now();
    let mut lap = |runs: &mut Vec<StrategyRun>, strategy: &str| {
        let now = Instant::now();
        runs.push(StrategyRun {
            strategy: strategy.into(),
            outcome: "ok".into(),
            ms: now.duration_since(clock).as_secs_f64() * 1000.0,
            note: None,
        });
        clock = now;
    };
    let expected_name = match expected {
        MediaKind::Image => "an image",
        MediaKind::Audio => "audio",
    };
    let format = match sniff::identify(bytes) {
        Some(format) if format.kind() == expected => format,
        Some(format) => {
            return failed(
                WRONG_TYPE,
                format!("media is {}, not {expected_name}", format.name()),
            );
        }
        None => {
            return failed(
                WRONG_TYPE,
                format!(
                    "media is not a supported image or audio format (expected {expected_name})"
                ),
            );
        }
    };
    let mut info = MediaInfo {
        format: format.name().into(),
        width: None,
        height: None,
        duration_ms: None,
        hash: None,
        nsfw_score: None,
        text: Vec::new(),
    };
    let banks = std::iter::once(a.global).chain(a.app);
    let mut matches: Vec<BankMatch<'_>> = Vec::new();
    let mut found_text: Vec<DetailItem> = Vec::new();
    let mut model_items: Vec<DetailItem> = Vec::new();
    match expected {
        MediaKind::Image => {
            let image = match images::decode(bytes, &a.limits) {
                Ok(image) => image,
                Err(e) => return failed(WRONG_TYPE, e.to_string()),
            };
            lap(&mut runs, "decode");
            info.width = Some(image.width());
            info.height = Some(image.height());
            // Rotated and mirrored copies match too: the image's eight dihedral hashes.
            if let Some((hashes, quality)) = pdq::hash_image_dihedral(&image)
                && quality >= pdq::MIN_QUALITY
            {
                info.hash = Some(hashes[0].to_hex());
                for bank in banks {
                    matches.extend(bank.match_image_any(&hashes, a.pdq_distance));
                }
            }
            lap(&mut runs, "hash_bank");
            if let Some(t) = &a.text {
                if a.qr_scan {
                    for code in qr::scan(&image) {
                        found_text.extend(judge_text(
                            "qr_code",
                            &code,
                            t,
                            qr::points_elsewhere(&code),
                        ));
                    }
                    lap(&mut runs, "qr_code");
                }
                for text in meta::embedded_text(bytes, format) {
                    found_text.extend(judge_text("image_text", &text, t, false));
                }
                lap(&mut runs, "image_text");
            }
            let found = models::run(&image, models, &a.models, a.text.as_ref());
            model_items = found.items;
            runs.extend(found.runs);
            info.nsfw_score = found.nsfw_score;
            info.text = found.text;
        }
        MediaKind::Audio => {
            match audio::probe(bytes, format) {
                Ok(audio) => {
                    info.duration_ms = Some((audio.duration_secs * 1000.0).round() as u64);
                    info.hash = Some(bank::content_hash(bytes));
                }
                Err(e) => return failed(WRONG_TYPE, e),
            }
            lap(&mut runs, "decode");
            matches.extend(banks.filter_map(|b| b.match_audio(bytes)));
            lap(&mut runs, "hash_bank");
        }
    }
    let rank = |m: &BankMatch<'_>| m.entry.suggested();
    matches.sort_by(|x, y| {
        x.distance
            .cmp(&y.distance)
            .then_with(|| rank(y).cmp(&rank(x)))
            .then_with(|| x.entry.hash.cmp(&y.entry.hash))
    });
    let mut detail = vec![DetailItem {
        strategy: "format".into(),
        errcode: 0,
        suggest: Suggest::Pass,
        label: 100,
        prob: 100,
    }];
    detail.extend(matches.iter().map(|m| DetailItem {
        strategy: "hash_bank".into(),
        errcode: 0,
        suggest: m.entry.suggested(),
        label: m.entry.label,
        prob: (256 - m.distance.min(256)) * 100 / 256,
    }));
    let known_good = matches
        .first()
        .is_some_and(|m| m.entry.suggested() == Suggest::Pass);
    let mut result = ResultItem {
        suggest: Suggest::Pass,
        label: 100,
    };
    if !known_good {
        let bank_decision = matches
            .first()
            .map(|m| (m.entry.suggested(), m.entry.label));
        let text_decisions = found_text
            .iter()
            .chain(&model_items)
            .filter(|d| d.errcode == 0)
            .map(|d| (d.suggest, d.label));
        for (suggest, label) in bank_decision.into_iter().chain(text_decisions) {
            if suggest > result.suggest {
                result = ResultItem { suggest, label };
            }
        }
    }
    detail.extend(found_text);
    detail.extend(model_items);
    MediaVerdict {
        errcode: 0,
        errmsg: "ok".into(),
        detail,
        result,
        media: Some(info),
        strategies: runs,
    }
}

/// A verdict for a check that could not be made: no detail, and `review`, never `pass`.
pub fn failed(errcode: i32, errmsg: String) -> MediaVerdict {
    MediaVerdict {
        errcode,
        errmsg,
        detail: Vec::new(),
        result: ResultItem {
            suggest: Suggest::Review,
            label: 100,
        },
        media: None,
        strategies: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::bank;

    #[test]
    fn analysis_passes_the_right_kind_and_names_the_wrong_one() {
        let empty = Bank::default();
        let a = analysis(&empty, None);
        let png = encode(&pdq::tests::scene(120, 90, 1), image::ImageFormat::Png);
        let v = analyse(&png, MediaKind::Image, &a, None);
        assert_eq!((v.errcode, v.result.suggest.as_str()), (0, "pass"));
        assert_eq!(v.detail.len(), 1);
        let v = analyse(&png, MediaKind::Audio, &a, None);
        assert_eq!(v.errcode, WRONG_TYPE);
        assert_eq!(v.errmsg, "media is png, not audio");
        assert_eq!(v.result.suggest, "review");
        let v = analyse(b"<html>", MediaKind::Image, &a, None);
        assert!(v.errmsg.contains("not a supported"), "{}", v.errmsg);
        // The right magic, but no image behind it.
        let v = analyse(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", MediaKind::Image, &a, None);
        assert_eq!(v.errcode, WRONG_TYPE);
        assert!(v.errmsg.contains("cannot be decoded"), "{}", v.errmsg);
    }

    fn analysis<'a>(global: &'a Bank, app: Option<&'a Bank>) -> Analysis<'a> {
        Analysis {
            global,
            app,
            pdq_distance: 31,
            limits: images::ImageLimits::default(),
            text: None,
            qr_scan: true,
            models: ModelSettings::default(),
        }
    }

    fn encode(img: &image::RgbImage, format: image::ImageFormat) -> Vec<u8> {
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    fn banked(hash: String, kind: MediaKind, label: u32, suggest: &str) -> bank::BankEntry {
        bank::BankEntry {
            hash,
            kind,
            label,
            suggest: suggest.into(),
            note: None,
        }
    }

    /// A banked image is found in a resized, re-encoded copy; the closest entry decides; the
    /// app's bank and the global bank both count; audio matches by exact content.
    #[test]
    fn bank_matches_compose_into_the_verdict() {
        let original = pdq::tests::scene(640, 480, 21);
        let h = pdq::hash_image(&image::DynamicImage::ImageRgb8(original.clone()))
            .unwrap()
            .0;
        let copy =
            image::imageops::resize(&original, 320, 240, image::imageops::FilterType::Triangle);
        let copy = encode(&copy, image::ImageFormat::Jpeg);
        let global =
            Bank::build(vec![banked(h.to_hex(), MediaKind::Image, 20002, "risky")]).unwrap();
        let v = analyse(&copy, MediaKind::Image, &analysis(&global, None), None);
        assert_eq!(
            (v.result.suggest.as_str(), v.result.label),
            ("risky", 20002)
        );
        assert_eq!(v.detail[1].strategy, "hash_bank");
        assert!(
            v.detail[1].prob >= 88 && v.detail[1].prob <= 100,
            "{:?}",
            v.detail[1]
        );
        // A rotated copy is caught through the dihedral hashes.
        let turned = image::DynamicImage::ImageRgb8(original.clone())
            .rotate90()
            .to_rgb8();
        let turned = encode(&turned, image::ImageFormat::Png);
        let v = analyse(&turned, MediaKind::Image, &analysis(&global, None), None);
        assert_eq!(v.result.suggest, "risky", "{v:?}");
        // The same image known-good in the app's bank, exactly: closer, so it passes.
        let exact = pdq::hash_image(&image::load_from_memory(&copy).unwrap())
            .unwrap()
            .0;
        let app = Bank::build(vec![banked(
            exact.to_hex(),
            MediaKind::Image,
            20002,
            "pass",
        )])
        .unwrap();
        let v = analyse(
            &copy,
            MediaKind::Image,
            &analysis(&global, Some(&app)),
            None,
        );
        assert_eq!(v.result.suggest, "pass");
        assert_eq!(v.detail.len(), 3);
        assert_eq!(v.detail[1].prob, 100);
        // An unrelated image matches nothing.
        let other = encode(&pdq::tests::scene(640, 480, 99), image::ImageFormat::Png);
        let v = analyse(&other, MediaKind::Image, &analysis(&global, None), None);
        assert_eq!((v.result.suggest.as_str(), v.detail.len()), ("pass", 1));
        // Audio: exact content only.
        let wav = audio::tests::wav(0.5);
        let audio_bank = Bank::build(vec![banked(
            bank::content_hash(&wav),
            MediaKind::Audio,
            20001,
            "review",
        )])
        .unwrap();
        let v = analyse(&wav, MediaKind::Audio, &analysis(&audio_bank, None), None);
        assert_eq!(
            (v.result.suggest.as_str(), v.result.label),
            ("review", 20001)
        );
        assert_eq!(v.media.as_ref().unwrap().duration_ms, Some(500));
        let other_wav = audio::tests::wav(0.6);
        let v = analyse(
            &other_wav,
            MediaKind::Audio,
            &analysis(&audio_bank, None),
            None,
        );
        assert_eq!(v.result.suggest, "pass");
        // Audio that does not read as its container fails with the reason.
        let v = analyse(
            &wav[..30],
            MediaKind::Audio,
            &analysis(&audio_bank, None),
            None,
        );
        assert_eq!(v.errcode, WRONG_TYPE);
        assert!(v.errmsg.contains("not a valid wav file"), "{}", v.errmsg);
    }

    /// A QR code drawn into a photo, `scale` pixels per module with a 4-module quiet zone.
    pub(crate) fn with_qr(photo: &image::RgbImage, text: &str, scale: u32) -> image::RgbImage {
        let code = qrcode::QrCode::new(text.as_bytes()).unwrap();
        let modules = code.width() as u32;
        let colors = code.to_colors();
        let mut out = photo.clone();
        let side = (modules + 8) * scale;
        for y in 0..side {
            for x in 0..side {
                let (mx, my) = ((x / scale) as i64 - 4, (y / scale) as i64 - 4);
                let dark = mx >= 0
                    && my >= 0
                    && (mx as u32) < modules
                    && (my as u32) < modules
                    && colors[(my as u32 * modules + mx as u32) as usize] == qrcode::Color::Dark;
                let v = if dark { 0 } else { 255 };
                out.put_pixel(x + 20, y + 20, image::Rgb([v, v, v]));
            }
        }
        out
    }

    /// QR codes are found and judged: a link is advertising (as configured), risky text in a
    /// code is risky, a plain harmless code passes; without a text check there is no scan.
    #[test]
    fn qr_codes_are_read_and_judged() {
        let engine = crate::config::EngineConfig::default().build().unwrap();
        let empty = Bank::default();
        let photo = pdq::tests::scene(640, 480, 5);
        let check = |text: &str, links: &str| {
            let png = encode(&with_qr(&photo, text, 6), image::ImageFormat::Png);
            let mut a = analysis(&empty, None);
            a.text = Some(TextCheck {
                engine: &engine,
                table: None,
                qr_links: Suggest::parse(links).unwrap(),
            });
            analyse(&png, MediaKind::Image, &a, None)
        };
        let v = check("https://example.com/promo", "risky");
        assert_eq!(
            (v.result.suggest.as_str(), v.result.label),
            ("risky", 10001),
            "{v:?}"
        );
        assert_eq!(v.detail.last().unwrap().strategy, "qr_code");
        let v = check("https://example.com/promo", "review");
        assert_eq!(
            (v.result.suggest.as_str(), v.result.label),
            ("review", 10001)
        );
        let v = check("我们去网络赌博吧", "risky");
        assert_eq!(
            (v.result.suggest.as_str(), v.result.label),
            ("risky", 20006),
            "{v:?}"
        );
        // Text embedded in the file is judged too.
        let mut a = analysis(&empty, None);
        a.text = Some(TextCheck {
            engine: &engine,
            table: None,
            qr_links: Suggest::Risky,
        });
        for (file, what) in [
            (meta::tests::png_with_text("网络赌博"), "png"),
            (meta::tests::jpeg_with_text("网络赌博"), "jpeg"),
            (meta::tests::gif_with_comment("网络赌博"), "gif"),
        ] {
            let v = analyse(&file, MediaKind::Image, &a, None);
            assert_eq!(
                (v.result.suggest.as_str(), v.result.label),
                ("risky", 20006),
                "{what}: {v:?}"
            );
            assert_eq!(v.detail.last().unwrap().strategy, "image_text", "{what}");
        }
        let v = check("今天天气很好", "risky");
        assert_eq!(
            (v.result.suggest.as_str(), v.detail.len()),
            ("pass", 1),
            "{v:?}"
        );
        // Without a text check the code is not read.
        let png = encode(
            &with_qr(&photo, "https://example.com", 6),
            image::ImageFormat::Png,
        );
        let v = analyse(&png, MediaKind::Image, &analysis(&empty, None), None);
        assert_eq!(v.result.suggest, "pass");
    }
}
