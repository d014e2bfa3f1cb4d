//! Media analysis (SPEC §4): what a file is (sniffed from its bytes, never its URL), whether a
//! hash bank knows it, and what text it carries (metadata, QR codes), composed into the verdict a
//! push carries. Pure and synchronous, like the text engine: the jobs that fetch files and push
//! verdicts are [`crate::jobs`].

pub mod analyse;
pub mod audio;
pub mod bank;
pub mod images;
pub mod meta;
pub mod models;
pub mod pdq;
pub mod qr;
pub mod sniff;
pub mod text;
pub mod verdict;

pub use analyse::{Analysis, DOWNLOAD_FAILED, TextCheck, WRONG_TYPE, analyse, failed};
