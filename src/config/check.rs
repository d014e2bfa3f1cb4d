//! The collector that validation adds problems to, and the checks every section shares.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use super::ConfigError;

/// Collects errors while validating.
#[derive(Default)]
pub(super) struct Errors(pub(super) Vec<ConfigError>);

impl Errors {
    pub(super) fn push(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.0.push(ConfigError {
            key: key.into(),
            message: message.into(),
        });
    }

    pub(super) fn addr(&mut self, key: &str, value: Option<&str>, default: &str) -> SocketAddr {
        let text = value.unwrap_or(default);
        match text.parse() {
            Ok(a) => a,
            Err(_) => {
                self.push(key, format!("{text:?} is not an IP:port address"));
                // Any placeholder will do: an error was recorded, so this Config is never built.
                SocketAddr::from(([0, 0, 0, 0], 0))
            }
        }
    }

    pub(super) fn positive(
        &mut self,
        key: &str,
        value: Option<i64>,
        default: u64,
        max: u64,
    ) -> u64 {
        match value {
            None => default,
            Some(v) if v >= 1 && (v as u64) <= max => v as u64,
            Some(v) => {
                self.push(key, format!("{v} is out of range (1..={max})"));
                default
            }
        }
    }

    pub(super) fn opt_positive_u32(&mut self, key: &str, value: Option<i64>) -> Option<NonZeroU32> {
        let v = value?;
        match u32::try_from(v).ok().and_then(NonZeroU32::new) {
            Some(n) => Some(n),
            None => {
                self.push(key, format!("{v} is out of range (1..={})", u32::MAX));
                None
            }
        }
    }
}

/// Seconds as a fraction, `0 < secs <= 86400`, under `key`.
pub(super) fn seconds(errs: &mut Errors, key: &str, v: Option<f64>, default: f64) -> Duration {
    let v = v.unwrap_or(default);
    if v.is_finite() && v > 0.0 && v <= 86_400.0 {
        Duration::from_secs_f64(v)
    } else {
        errs.push(key, format!("{v} is out of range (0 < secs <= 86400)"));
        Duration::from_secs_f64(default)
    }
}
