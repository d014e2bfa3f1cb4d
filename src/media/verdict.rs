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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaVerdict {
    pub errcode: i32,
    pub errmsg: String,
    pub detail: Vec<DetailItem>,
    pub result: ResultItem,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media: Option<MediaInfo>,
}

/// The file as analysed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
}
