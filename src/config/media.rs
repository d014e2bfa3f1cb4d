//! `[media]`: media jobs, the fetcher and pushes.

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;

use super::check::{Errors, seconds};
use crate::engine::Suggest;

pub const DEFAULT_WORKERS: u64 = 64;
pub const DEFAULT_PER_APP: u64 = 16;
pub const DEFAULT_PER_HOST: u64 = 8;
pub const DEFAULT_MAX_QUEUED: u64 = 100_000;
/// The media size cap (SPEC: 10 MB).
pub const DEFAULT_MAX_BYTES: u64 = 10 << 20;
/// `/wxa/img_sec_check`'s file size cap: the platform documents 1 MB.
pub const DEFAULT_IMAGE_CHECK_MAX_BYTES: u64 = 1 << 20;
pub const DEFAULT_CONNECT_TIMEOUT_SECS: f64 = 5.0;
pub const DEFAULT_FETCH_TIMEOUT_SECS: f64 = 30.0;
pub const DEFAULT_PUSH_TIMEOUT_SECS: f64 = 10.0;
/// The default push retry schedule: roughly doubling waits, about 24 hours in all.
pub const DEFAULT_PUSH_RETRY_SECS: [u64; 11] = [
    10, 30, 60, 300, 900, 1800, 3600, 7200, 14_400, 28_800, 28_800,
];
pub const DEFAULT_RETENTION_HOURS: u64 = 168;
pub const DEFAULT_LEASE_SECS: f64 = 60.0;
pub const DEFAULT_PDQ_DISTANCE: u64 = 31;
pub const DEFAULT_MAX_PIXELS: u64 = 40_000_000;
/// Where `scripts/fetch-models` puts the models (relative to the working directory).
pub const DEFAULT_MODELS_DIR: &str = "models";
/// The classifier's score from which an image is `review`, and from which it is `risky`.
pub const DEFAULT_NSFW_REVIEW: f64 = 0.5;
pub const DEFAULT_NSFW_RISKY: f64 = 0.8;
/// How long one model strategy (the classifier, or the whole of OCR) may take on one image.
pub const DEFAULT_MODEL_TIMEOUT_SECS: f64 = 20.0;

/// `[media]`: media jobs, the fetcher and pushes.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawMedia {
    pub allow_networks: Vec<String>,
    pub workers: Option<i64>,
    pub per_app: Option<i64>,
    pub per_host: Option<i64>,
    pub max_queued: Option<i64>,
    pub max_queued_per_app: Option<i64>,
    pub max_bytes: Option<i64>,
    pub image_check_max_bytes: Option<i64>,
    pub connect_timeout_secs: Option<f64>,
    pub fetch_timeout_secs: Option<f64>,
    pub push_timeout_secs: Option<f64>,
    pub push_retry_secs: Option<Vec<f64>>,
    pub retention_hours: Option<i64>,
    pub lease_secs: Option<f64>,
    pub pdq_distance: Option<i64>,
    pub max_pixels: Option<i64>,
    pub qr_scan: Option<bool>,
    pub qr_links: Option<String>,
    pub models: Option<bool>,
    pub models_dir: Option<String>,
    pub analysis_workers: Option<i64>,
    pub nsfw_review: Option<f64>,
    pub nsfw_risky: Option<f64>,
    pub ocr: Option<bool>,
    pub model_timeout_secs: Option<f64>,
}

/// Validated `[media]`.
#[derive(Debug, Clone)]
pub struct MediaConfig {
    /// Ranges exempt from the fetch and push deny list.
    pub allow_networks: Vec<IpNet>,
    /// Jobs worked on at once (fetching, analysing or pushing), in all.
    pub workers: NonZeroUsize,
    /// ... and per app, so one busy app cannot take every worker.
    pub per_app: NonZeroUsize,
    /// ... and per destination host, so one slow host cannot either.
    pub per_host: NonZeroUsize,
    /// Unfinished jobs held at most; past it submissions answer -1 (system busy).
    pub max_queued: NonZeroUsize,
    /// ... of one app (by default a tenth of `max_queued`), so one app whose jobs do not
    /// finish (a push URL that keeps failing) cannot fill the queue for the others.
    pub max_queued_per_app: NonZeroUsize,
    /// The media size cap (SPEC: 10 MB).
    pub max_bytes: u64,
    /// The largest file `/wxa/img_sec_check` takes (its `media` part).
    pub image_check_max_bytes: u64,
    pub connect_timeout: Duration,
    pub fetch_timeout: Duration,
    pub push_timeout: Duration,
    /// Wait before each retry of a failed push (before jitter); its length is the number of
    /// retries, after which the job is dead-lettered.
    pub push_retry: Vec<Duration>,
    /// How long finished jobs stay readable.
    pub retention: Duration,
    /// With shared state: how long an instance may hold a job without renewing its lease
    /// before another instance takes it over ([`crate::jobs::shared`]).
    pub lease: Duration,
    /// An image matches a bank entry within this many differing PDQ bits.
    pub pdq_distance: u32,
    /// Images with more pixels than this are refused before decoding.
    pub max_pixels: u64,
    /// Whether images are scanned for QR codes.
    pub qr_scan: bool,
    /// What a QR code that leads somewhere (link, contact, account) is: `risky`, `review`, or
    /// `pass` (links ignored; the code's text is still checked).
    pub qr_links: Suggest,
    /// The media models' folder (SPEC §14); `None` when the models are switched off.
    pub models_dir: Option<PathBuf>,
    /// Threads that decode and analyse images and run the models (each holds its own model
    /// sessions); by default one per core.
    pub analysis_workers: NonZeroUsize,
    /// The classifier's score from which an image is `review` (label 20002) ...
    pub nsfw_review: f32,
    /// ... and from which it is `risky`.
    pub nsfw_risky: f32,
    /// Whether text in images is recognised and checked.
    pub ocr: bool,
    /// How long one model strategy may take on one image before it is recorded as failed.
    pub model_timeout: Duration,
}

/// Validates `[media]`, adding every problem to `errs`.
pub(super) fn validate(m: RawMedia, errs: &mut Errors) -> MediaConfig {
    let mut allow_networks = Vec::with_capacity(m.allow_networks.len());
    for (i, text) in m.allow_networks.iter().enumerate() {
        match text.parse::<IpNet>() {
            Ok(n) => allow_networks.push(n.trunc()),
            Err(_) => errs.push(
                format!("media.allow_networks[{i}]"),
                format!("{text:?} is not a CIDR network (like \"127.0.0.0/8\")"),
            ),
        }
    }
    let mut push_retry = Vec::new();
    match &m.push_retry_secs {
        None => push_retry.extend(
            DEFAULT_PUSH_RETRY_SECS
                .iter()
                .map(|s| Duration::from_secs(*s)),
        ),
        Some(list) if list.len() > 100 => {
            errs.push("media.push_retry_secs", "at most 100 retries");
        }
        Some(list) => {
            for (i, v) in list.iter().enumerate() {
                push_retry.push(seconds(
                    errs,
                    &format!("media.push_retry_secs[{i}]"),
                    Some(*v),
                    1.0,
                ));
            }
        }
    }
    let count = |errs: &mut Errors, key: &str, v: Option<i64>, default: u64, max: u64| {
        NonZeroUsize::new(errs.positive(key, v, default, max) as usize).unwrap_or(NonZeroUsize::MIN)
    };
    let max_queued = count(
        errs,
        "media.max_queued",
        m.max_queued,
        DEFAULT_MAX_QUEUED,
        100_000_000,
    );
    let score = |errs: &mut Errors, key: &str, v: Option<f64>, default: f64| match v {
        None => default as f32,
        Some(v) if (0.0..=1.0).contains(&v) => v as f32,
        Some(v) => {
            errs.push(key, format!("{v} is not a score from 0 to 1"));
            default as f32
        }
    };
    let nsfw_review = score(
        errs,
        "media.nsfw_review",
        m.nsfw_review,
        DEFAULT_NSFW_REVIEW,
    );
    let nsfw_risky = score(errs, "media.nsfw_risky", m.nsfw_risky, DEFAULT_NSFW_RISKY);
    if nsfw_review > nsfw_risky {
        errs.push(
            "media.nsfw_review",
            format!("{nsfw_review} is above media.nsfw_risky ({nsfw_risky})"),
        );
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let models_dir = match (m.models.unwrap_or(true), m.models_dir.as_deref()) {
        (false, _) => None,
        (true, Some("")) => {
            errs.push(
                "media.models_dir",
                "is empty (set media.models = false to run without models)",
            );
            None
        }
        (true, dir) => Some(PathBuf::from(dir.unwrap_or(DEFAULT_MODELS_DIR))),
    };
    MediaConfig {
        models_dir,
        analysis_workers: count(
            errs,
            "media.analysis_workers",
            m.analysis_workers,
            cores,
            1024,
        ),
        nsfw_review,
        nsfw_risky,
        ocr: m.ocr.unwrap_or(true),
        model_timeout: seconds(
            errs,
            "media.model_timeout_secs",
            m.model_timeout_secs,
            DEFAULT_MODEL_TIMEOUT_SECS,
        ),
        allow_networks,
        workers: count(errs, "media.workers", m.workers, DEFAULT_WORKERS, 10_000),
        per_app: count(errs, "media.per_app", m.per_app, DEFAULT_PER_APP, 10_000),
        per_host: count(errs, "media.per_host", m.per_host, DEFAULT_PER_HOST, 10_000),
        max_queued,
        max_queued_per_app: count(
            errs,
            "media.max_queued_per_app",
            m.max_queued_per_app,
            (max_queued.get() as u64 / 10).max(1),
            100_000_000,
        ),
        max_bytes: errs.positive("media.max_bytes", m.max_bytes, DEFAULT_MAX_BYTES, 1 << 30),
        image_check_max_bytes: errs.positive(
            "media.image_check_max_bytes",
            m.image_check_max_bytes,
            DEFAULT_IMAGE_CHECK_MAX_BYTES,
            16 << 20,
        ),
        connect_timeout: seconds(
            errs,
            "media.connect_timeout_secs",
            m.connect_timeout_secs,
            DEFAULT_CONNECT_TIMEOUT_SECS,
        ),
        fetch_timeout: seconds(
            errs,
            "media.fetch_timeout_secs",
            m.fetch_timeout_secs,
            DEFAULT_FETCH_TIMEOUT_SECS,
        ),
        push_timeout: seconds(
            errs,
            "media.push_timeout_secs",
            m.push_timeout_secs,
            DEFAULT_PUSH_TIMEOUT_SECS,
        ),
        push_retry,
        retention: Duration::from_secs(
            3600 * errs.positive(
                "media.retention_hours",
                m.retention_hours,
                DEFAULT_RETENTION_HOURS,
                24 * 365,
            ),
        ),
        lease: match seconds(errs, "media.lease_secs", m.lease_secs, DEFAULT_LEASE_SECS) {
            lease if lease < Duration::from_secs(1) => {
                errs.push("media.lease_secs", "must be at least 1 second");
                Duration::from_secs_f64(DEFAULT_LEASE_SECS)
            }
            lease => lease,
        },
        pdq_distance: errs.positive(
            "media.pdq_distance",
            m.pdq_distance,
            DEFAULT_PDQ_DISTANCE,
            128,
        ) as u32,
        max_pixels: errs.positive(
            "media.max_pixels",
            m.max_pixels,
            DEFAULT_MAX_PIXELS,
            1_000_000_000,
        ),
        qr_scan: m.qr_scan.unwrap_or(true),
        qr_links: match m.qr_links.as_deref() {
            None | Some("risky") => Suggest::Risky,
            Some("review") => Suggest::Review,
            Some("pass") => Suggest::Pass,
            Some(other) => {
                errs.push(
                    "media.qr_links",
                    format!("{other:?} must be \"risky\", \"review\" or \"pass\""),
                );
                Suggest::Risky
            }
        },
    }
}
