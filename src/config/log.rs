//! `[log]`: how the process writes its log (the level is `RUST_LOG`'s, `info` by default).

use serde::Deserialize;

use super::check::Errors;

/// `[log]` as written.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawLog {
    pub format: Option<String>,
}

/// How log events are written to standard error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target`, the event's fields (`message`
    /// among them) and the fields of the spans it happened in (`rid` for a request).
    Json,
}

impl LogFormat {
    /// Parses `text` or `json`.
    pub fn parse(s: &str) -> Option<LogFormat> {
        match s {
            "text" => Some(LogFormat::Text),
            "json" => Some(LogFormat::Json),
            _ => None,
        }
    }
}

/// `[log]`, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogConfig {
    pub format: LogFormat,
}

pub(super) fn validate(raw: RawLog, errs: &mut Errors) -> LogConfig {
    let format = match raw.format.as_deref() {
        None => LogFormat::Text,
        Some(s) => LogFormat::parse(s).unwrap_or_else(|| {
            errs.push(
                "log.format",
                format!("{s:?} is not a log format (expected \"text\" or \"json\")"),
            );
            LogFormat::Text
        }),
    };
    LogConfig { format }
}
