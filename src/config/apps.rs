//! `[[apps]]`: the registered apps (also the admin API's app body, and what the catalog keeps).

use std::collections::HashSet;
use std::num::NonZeroU32;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use url::Url;

use super::check::Errors;
use super::limits::VisitCheck;
use super::{ConfigErrors, Secret};
use crate::ids::is_valid_appid;

/// One `[[apps]]` entry (also the admin API's app body, and what the embedded store keeps).
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawApp {
    pub appid: Option<String>,
    pub secret: Option<Secret>,
    pub original_id: Option<String>,
    pub push_url: Option<String>,
    pub push_token: Option<Secret>,
    pub push_format: Option<String>,
    pub push_mode: Option<String>,
    pub encoding_aes_key: Option<Secret>,
    pub text_per_minute: Option<i64>,
    pub text_per_day: Option<i64>,
    pub media_per_minute: Option<i64>,
    pub media_per_day: Option<i64>,
    pub image_per_minute: Option<i64>,
    pub image_per_day: Option<i64>,
    pub visit_check: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PushFormat {
    #[default]
    Json,
    Xml,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PushMode {
    #[default]
    Plain,
    /// Safe mode: the body holds only `ToUserName` and `Encrypt`.
    Aes,
    /// The platform's compatible mode: the plain fields and `Encrypt` in one body.
    Compat,
}

impl PushMode {
    /// Whether pushes carry `Encrypt` (and so need `encoding_aes_key`).
    pub fn encrypts(self) -> bool {
        matches!(self, PushMode::Aes | PushMode::Compat)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PushMode::Plain => "plain",
            PushMode::Aes => "aes",
            PushMode::Compat => "compat",
        }
    }
}

/// A registered app.
#[derive(Debug, Clone)]
pub struct AppConfig {
    pub appid: String,
    pub secret: Secret,
    pub original_id: Option<String>,
    pub push_url: Option<Url>,
    pub push_token: Option<Secret>,
    pub push_format: PushFormat,
    pub push_mode: PushMode,
    /// The decoded 32-byte AES key, present when `encoding_aes_key` is set.
    pub aes_key: Option<[u8; 32]>,
    pub text_per_minute: Option<NonZeroU32>,
    pub text_per_day: Option<NonZeroU32>,
    pub media_per_minute: Option<NonZeroU32>,
    pub media_per_day: Option<NonZeroU32>,
    pub image_per_minute: Option<NonZeroU32>,
    pub image_per_day: Option<NonZeroU32>,
    /// The app's visit rule; `None`: `limits.visit_check`.
    pub visit_check: Option<VisitCheck>,
}

impl RawApp {
    /// Validates one app on its own (the admin API), reporting every problem.
    pub fn validate(self) -> Result<AppConfig, ConfigErrors> {
        let mut errs = Errors::default();
        match self.validate_into("app", &mut errs) {
            Some(app) if errs.0.is_empty() => Ok(app),
            _ => Err(ConfigErrors(errs.0)),
        }
    }

    /// Validates one app, as the config file and the admin API both need. Problems are added to
    /// `errs` under `prefix`; returns the app when it is usable.
    pub(super) fn validate_into(self, prefix: &str, errs: &mut Errors) -> Option<AppConfig> {
        let before = errs.0.len();
        let appid = match self.appid {
            Some(a) if is_valid_appid(&a) => a,
            Some(_) => {
                errs.push(
                    format!("{prefix}.appid"),
                    "must be \"wx\" followed by 16 hex digits",
                );
                String::new()
            }
            None => {
                errs.push(format!("{prefix}.appid"), "is required");
                String::new()
            }
        };
        let secret = match self.secret {
            Some(s)
                if s.expose().len() == 32
                    && s.expose().bytes().all(|b| b.is_ascii_alphanumeric()) =>
            {
                s
            }
            Some(_) => {
                errs.push(
                    format!("{prefix}.secret"),
                    "must be 32 ASCII letters or digits",
                );
                Secret::new("")
            }
            None => {
                errs.push(format!("{prefix}.secret"), "is required");
                Secret::new("")
            }
        };
        let original_id = self.original_id.filter(|s| !s.is_empty());
        if let Some(id) = &original_id
            && (id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        {
            errs.push(
                format!("{prefix}.original_id"),
                "must be up to 64 letters, digits or _",
            );
        }
        let push_url = match self.push_url.filter(|s| !s.is_empty()) {
            None => None,
            Some(text) => match Url::parse(&text) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Some(u),
                _ => {
                    errs.push(
                        format!("{prefix}.push_url"),
                        "must be an http:// or https:// URL",
                    );
                    None
                }
            },
        };
        let push_token = self.push_token.filter(|t| !t.expose().is_empty());
        if push_url.is_some() && push_token.is_none() {
            // Pushes are signed with the token: without one, anyone could forge a verdict.
            errs.push(
                format!("{prefix}.push_token"),
                "is required with push_url (pushes are signed with it)",
            );
        }
        if let Some(t) = &push_token
            && (t.expose().len() < 3
                || t.expose().len() > 32
                || !t.expose().bytes().all(|b| b.is_ascii_alphanumeric()))
        {
            errs.push(
                format!("{prefix}.push_token"),
                "must be 3 to 32 letters or digits",
            );
        }
        let push_format = match self.push_format.as_deref().unwrap_or("json") {
            "json" | "" => PushFormat::Json,
            "xml" => PushFormat::Xml,
            _ => {
                errs.push(
                    format!("{prefix}.push_format"),
                    "must be \"json\" or \"xml\"",
                );
                PushFormat::Json
            }
        };
        let push_mode = match self.push_mode.as_deref().unwrap_or("plain") {
            "plain" | "" => PushMode::Plain,
            "aes" => PushMode::Aes,
            "compat" => PushMode::Compat,
            _ => {
                errs.push(
                    format!("{prefix}.push_mode"),
                    "must be \"plain\", \"aes\" or \"compat\"",
                );
                PushMode::Plain
            }
        };
        let aes_key = match self.encoding_aes_key.filter(|k| !k.expose().is_empty()) {
            None => None,
            Some(k) => match decode_aes_key(k.expose()) {
                Some(key) => Some(key),
                None => {
                    errs.push(
                        format!("{prefix}.encoding_aes_key"),
                        "must be 43 base64 characters (a 32-byte key)",
                    );
                    None
                }
            },
        };
        if push_mode.encrypts() && aes_key.is_none() && errs.0.len() == before {
            errs.push(
                format!("{prefix}.encoding_aes_key"),
                format!("is required when push_mode = \"{}\"", push_mode.as_str()),
            );
        }
        let text_per_minute =
            errs.opt_positive_u32(&format!("{prefix}.text_per_minute"), self.text_per_minute);
        let text_per_day =
            errs.opt_positive_u32(&format!("{prefix}.text_per_day"), self.text_per_day);
        let media_per_minute =
            errs.opt_positive_u32(&format!("{prefix}.media_per_minute"), self.media_per_minute);
        let media_per_day =
            errs.opt_positive_u32(&format!("{prefix}.media_per_day"), self.media_per_day);
        let image_per_minute =
            errs.opt_positive_u32(&format!("{prefix}.image_per_minute"), self.image_per_minute);
        let image_per_day =
            errs.opt_positive_u32(&format!("{prefix}.image_per_day"), self.image_per_day);
        let visit_check = match self.visit_check.as_deref() {
            None | Some("") => None,
            Some(v) => VisitCheck::parse(errs, &format!("{prefix}.visit_check"), v),
        };

        (errs.0.len() == before).then_some(AppConfig {
            appid,
            secret,
            original_id,
            push_url,
            push_token,
            push_format,
            push_mode,
            aes_key,
            text_per_minute,
            text_per_day,
            media_per_minute,
            media_per_day,
            image_per_minute,
            image_per_day,
            visit_check,
        })
    }
}

impl AppConfig {
    /// The app as written in config or the admin API (secrets included: only the authenticated
    /// admin API shows it).
    pub fn to_raw(&self) -> RawApp {
        let n = |v: Option<NonZeroU32>| v.map(|v| i64::from(v.get()));
        RawApp {
            appid: Some(self.appid.clone()),
            secret: Some(self.secret.clone()),
            original_id: self.original_id.clone(),
            push_url: self.push_url.as_ref().map(|u| u.to_string()),
            push_token: self.push_token.clone(),
            push_format: Some(match self.push_format {
                PushFormat::Json => "json".into(),
                PushFormat::Xml => "xml".into(),
            }),
            push_mode: Some(self.push_mode.as_str().into()),
            encoding_aes_key: self.aes_key.map(|k| {
                let mut text = base64::engine::general_purpose::STANDARD.encode(k);
                text.pop(); // the trailing "=" is implied
                Secret::new(text)
            }),
            text_per_minute: n(self.text_per_minute),
            text_per_day: n(self.text_per_day),
            media_per_minute: n(self.media_per_minute),
            media_per_day: n(self.media_per_day),
            image_per_minute: n(self.image_per_minute),
            image_per_day: n(self.image_per_day),
            visit_check: self.visit_check.map(|v| v.as_str().to_owned()),
        }
    }
}

/// WeChat's EncodingAESKey: 43 base64 characters; the key is `base64(key + "=")`.
///
/// Decoded leniently about the last character's unused low bits, as the platform's own SDKs do:
/// a randomly generated key is rarely canonical base64.
pub fn decode_aes_key(text: &str) -> Option<[u8; 32]> {
    use base64::engine::{GeneralPurpose, GeneralPurposeConfig};
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
    );
    if text.len() != 43 {
        return None;
    }
    let bytes = LENIENT.decode(format!("{text}=")).ok()?;
    bytes.try_into().ok()
}

/// Validates every `[[apps]]` entry, adding every problem to `errs`; an appid may appear once.
pub(super) fn validate(raw: Vec<RawApp>, errs: &mut Errors) -> Vec<AppConfig> {
    let mut apps = Vec::with_capacity(raw.len());
    let mut seen = HashSet::new();
    for (i, raw) in raw.into_iter().enumerate() {
        let prefix = format!("apps[{i}]");
        let mut app_errs = Errors::default();
        if let Some(app) = raw.validate_into(&prefix, &mut app_errs) {
            if !seen.insert(app.appid.clone()) {
                app_errs.push(format!("{prefix}.appid"), "duplicate appid");
            } else if app_errs.0.is_empty() {
                apps.push(app);
            }
        }
        errs.0.extend(app_errs.0);
    }
    apps
}
