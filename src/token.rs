//! Access tokens: self-contained, MAC'd credentials.
//!
//! A token is `base64url(version ‖ issued_ms ‖ ttl_secs ‖ len ‖ appid ‖ tag)` where
//! `tag = HMAC-SHA256(app_key, everything before it)` and
//! `app_key = HMAC-SHA256(tokens.key, "modgate access token v1" ‖ 0 ‖ appid ‖ 0 ‖ secret)`.
//!
//! Why this shape:
//! - *No per-token memory.* Any gateway instance that shares the configuration can verify a token
//!   from its bytes alone; the only state is per app: which issue time is current and which one it
//!   superseded ([`Epochs`]), kept behind the `TokenStore` trait.
//! - *Unguessable.* Forging a token needs the app key (the app secret, plus `tokens.key` when set).
//! - *Deterministic.* The token for an epoch can be re-derived, so `stable_token` returns the same
//!   current token without storing it.
//! - *Rotating the app secret* invalidates every token of that app.
//!
//! - *Two lineages.* `/cgi-bin/token` and `/cgi-bin/stable_token` issue tokens of separate
//!   [`Lineage`]s (told apart by the version byte, which the tag covers), each with its own
//!   epochs, so taking a token of one kind never retires a token of the other (SPEC §12).
//!
//! The tag is checked with a constant-time comparison. Tokens never appear in logs.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The version byte of a `/cgi-bin/token` token (the only kind before stable tokens had their
/// own lineage, so tokens issued then keep working).
const VERSION_TOKEN: u8 = 1;
/// The version byte of a `/cgi-bin/stable_token` token.
const VERSION_STABLE: u8 = 2;
const TAG_LEN: usize = 32;
/// version(1) + issued_ms(8) + ttl_secs(4) + appid length(1)
const HEADER_LEN: usize = 14;
/// Longest token we bother decoding: the header, a 255-byte appid and the tag, in base64.
const MAX_TOKEN_CHARS: usize = (HEADER_LEN + 255 + TAG_LEN).div_ceil(3) * 4;

/// The per-app signing key, kept as a keyed HMAC state so each use skips the key schedule.
#[derive(Clone)]
pub struct AppKey(HmacSha256);

impl std::fmt::Debug for AppKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AppKey(***)")
    }
}

impl AppKey {
    /// Derives the key for one app.
    pub fn derive(server_key: Option<&str>, appid: &str, secret: &str) -> Self {
        let mut mac = HmacSha256::new_from_slice(server_key.unwrap_or("").as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
        mac.update(b"modgate access token v1\0");
        mac.update(appid.as_bytes());
        mac.update(b"\0");
        mac.update(secret.as_bytes());
        let key = mac.finalize().into_bytes();
        Self(HmacSha256::new_from_slice(&key).unwrap_or_else(|_| unreachable!("32-byte key")))
    }

    fn mac(&self) -> HmacSha256 {
        self.0.clone()
    }
}

/// Which endpoint issued a token. Each lineage rotates on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lineage {
    /// `GET /cgi-bin/token`: every call issues a new token.
    Token,
    /// `POST /cgi-bin/stable_token`: the current token while it has time left.
    Stable,
}

impl Lineage {
    pub fn index(self) -> usize {
        self as usize
    }

    fn version(self) -> u8 {
        match self {
            Lineage::Token => VERSION_TOKEN,
            Lineage::Stable => VERSION_STABLE,
        }
    }

    fn from_version(version: u8) -> Option<Lineage> {
        match version {
            VERSION_TOKEN => Some(Lineage::Token),
            VERSION_STABLE => Some(Lineage::Stable),
            _ => None,
        }
    }
}

/// What a token says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    pub appid: String,
    pub lineage: Lineage,
    pub issued_ms: u64,
    pub ttl_secs: u32,
}

impl Claims {
    /// The instant the token stops working.
    pub fn expires_ms(&self) -> u64 {
        self.times().expires_ms()
    }

    /// What [`judge`] weighs.
    pub fn times(&self) -> Times {
        Times {
            lineage: self.lineage,
            issued_ms: self.issued_ms,
            ttl_secs: self.ttl_secs,
        }
    }
}

/// Which lineage issued a token, when, and how long it lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Times {
    pub lineage: Lineage,
    pub issued_ms: u64,
    pub ttl_secs: u32,
}

impl Times {
    /// The instant the token stops working.
    pub fn expires_ms(&self) -> u64 {
        self.issued_ms
            .saturating_add(u64::from(self.ttl_secs) * 1000)
    }
}

/// A decoded but not yet verified token.
#[derive(Debug)]
pub struct Unverified {
    pub claims: Claims,
    signed: Vec<u8>,
}

/// Why a token was refused. Each maps to one WeChat errcode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// 41001: no `access_token` parameter.
    #[error("access_token missing")]
    Missing,
    /// 40014: not a token this gateway could have issued.
    #[error("invalid access_token")]
    Malformed,
    /// 40001: wrong signature, unknown app, or superseded past its grace period.
    #[error("invalid credential, access_token is invalid or not latest")]
    Invalid,
    /// 42001: past its lifetime.
    #[error("access_token expired")]
    Expired,
}

/// Mints the token for `claims`.
pub fn encode(key: &AppKey, claims: &Claims) -> String {
    let appid = claims.appid.as_bytes();
    let appid_len = u8::try_from(appid.len()).unwrap_or(u8::MAX);
    let mut buf = Vec::with_capacity(HEADER_LEN + appid.len() + TAG_LEN);
    buf.push(claims.lineage.version());
    buf.extend_from_slice(&claims.issued_ms.to_be_bytes());
    buf.extend_from_slice(&claims.ttl_secs.to_be_bytes());
    buf.push(appid_len);
    buf.extend_from_slice(&appid[..usize::from(appid_len)]);
    let mut mac = key.mac();
    mac.update(&buf);
    buf.extend_from_slice(&mac.finalize().into_bytes());
    URL_SAFE_NO_PAD.encode(buf)
}

/// Decodes a token's structure. Anything that is not shaped like one of ours is `Malformed`.
pub fn decode(token: &str) -> Result<Unverified, TokenError> {
    if token.is_empty() {
        return Err(TokenError::Missing);
    }
    if token.len() > MAX_TOKEN_CHARS {
        return Err(TokenError::Malformed);
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| TokenError::Malformed)?;
    if bytes.len() < HEADER_LEN + TAG_LEN {
        return Err(TokenError::Malformed);
    }
    let lineage = Lineage::from_version(bytes[0]).ok_or(TokenError::Malformed)?;
    let appid_len = usize::from(bytes[13]);
    if bytes.len() != HEADER_LEN + appid_len + TAG_LEN {
        return Err(TokenError::Malformed);
    }
    let issued_ms = u64::from_be_bytes(bytes[1..9].try_into().map_err(|_| TokenError::Malformed)?);
    let ttl_secs = u32::from_be_bytes(bytes[9..13].try_into().map_err(|_| TokenError::Malformed)?);
    let appid = std::str::from_utf8(&bytes[HEADER_LEN..HEADER_LEN + appid_len])
        .map_err(|_| TokenError::Malformed)?
        .to_owned();
    Ok(Unverified {
        claims: Claims {
            appid,
            lineage,
            issued_ms,
            ttl_secs,
        },
        signed: bytes,
    })
}

impl Unverified {
    /// Checks the tag in constant time.
    pub fn verify(self, key: &AppKey) -> Result<Claims, TokenError> {
        let (body, tag) = self.signed.split_at(self.signed.len() - TAG_LEN);
        let mut mac = key.mac();
        mac.update(body);
        mac.verify_slice(tag).map_err(|_| TokenError::Invalid)?;
        Ok(self.claims)
    }
}

/// Per-app rotation state: the issue time (ms) of the current token and of the one it replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Epochs {
    pub current: u64,
    pub previous: Option<u64>,
}

impl Epochs {
    /// The rotation that happens at `now_ms`. Issue times strictly increase, so two rotations in
    /// the same millisecond still produce distinct tokens.
    pub fn rotated(current: Option<Epochs>, now_ms: u64) -> Epochs {
        match current {
            None => Epochs {
                current: now_ms,
                previous: None,
            },
            Some(e) => Epochs {
                current: now_ms.max(e.current + 1),
                previous: Some(e.current),
            },
        }
    }

    /// A rotation at `now_ms` that retires the current token at once: no grace for it.
    pub fn forced(current: Option<Epochs>, now_ms: u64) -> Epochs {
        Epochs {
            previous: None,
            ..Epochs::rotated(current, now_ms)
        }
    }
}

/// The platform's rules for `stable_token` with `force_refresh: true` (SPEC §12).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForceRules {
    /// The day number (in the platform's calendar) of the call.
    pub day: u32,
    /// Forced refreshes allowed per app and day.
    pub per_day: u32,
    /// The least time between two forced refreshes.
    pub min_gap_ms: u64,
}

/// The platform's defaults: 20 a day, 30 s apart.
impl ForceRules {
    pub const PER_DAY: u32 = 20;
    pub const MIN_GAP_MS: u64 = 30_000;
}

/// A forced refresh the rules refuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForceRefused {
    /// 45009: the day's forced refreshes are spent.
    DailyLimit,
    /// 45011: the last forced refresh was less than the gap ago.
    TooSoon,
}

/// An app's record of forced refreshes: on which day, how many, and when the last one was.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Forced {
    pub day: u32,
    pub count: u32,
    pub last_ms: u64,
}

impl Forced {
    /// Counts a forced refresh at `now_ms`, or says why the rules refuse it.
    pub fn admit(self, rules: ForceRules, now_ms: u64) -> Result<Forced, ForceRefused> {
        let count = if self.day == rules.day { self.count } else { 0 };
        if count >= rules.per_day {
            return Err(ForceRefused::DailyLimit);
        }
        if self.count > 0 && now_ms < self.last_ms.saturating_add(rules.min_gap_ms) {
            return Err(ForceRefused::TooSoon);
        }
        Ok(Forced {
            day: rules.day,
            count: count + 1,
            last_ms: now_ms,
        })
    }
}

/// How far in the future a token's issue time may lie: instances sharing the configuration may
/// disagree about the time by this much. A token issued later than that was minted by a clock
/// far ahead (or with the app's key outside any gateway) and would outlive its lifetime here.
pub const MAX_CLOCK_SKEW_MS: u64 = 60_000;

/// Decides whether verified `claims` are usable at `now_ms` given the app's rotation state.
///
/// - Issued more than [`MAX_CLOCK_SKEW_MS`] after `now_ms`: `Invalid`.
/// - Past its lifetime: `Expired`.
/// - The current token, or one issued after it: valid. A newer token than this instance knows of
///   was issued by another instance that does not share rotation state with it (the memory
///   backend); it is authentic, so it is honoured.
/// - The token the current one replaced: valid until `grace_ms` after the replacement.
/// - Anything older: `Invalid` ("not latest").
/// - No rotation state at all (issued before a restart of the memory backend, or elsewhere):
///   valid until it expires.
pub fn judge(
    claims: Times,
    epochs: Option<Epochs>,
    now_ms: u64,
    grace_ms: u64,
) -> Result<(), TokenError> {
    if claims.issued_ms > now_ms.saturating_add(MAX_CLOCK_SKEW_MS) {
        return Err(TokenError::Invalid);
    }
    if now_ms >= claims.expires_ms() {
        return Err(TokenError::Expired);
    }
    let Some(e) = epochs else { return Ok(()) };
    if claims.issued_ms >= e.current {
        return Ok(());
    }
    if e.previous == Some(claims.issued_ms) && now_ms < e.current.saturating_add(grace_ms) {
        return Ok(());
    }
    Err(TokenError::Invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> AppKey {
        AppKey::derive(
            None,
            "wx0123456789abcdef",
            "0123456789abcdef0123456789abcdef",
        )
    }

    fn claims(issued_ms: u64) -> Claims {
        Claims {
            appid: "wx0123456789abcdef".into(),
            lineage: Lineage::Token,
            issued_ms,
            ttl_secs: 7200,
        }
    }

    #[test]
    fn round_trip() {
        let c = claims(1_700_000_000_000);
        let t = encode(&key(), &c);
        assert!(
            t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(decode(&t).unwrap().verify(&key()).unwrap(), c);
        // Deterministic: the same epoch gives the same token.
        assert_eq!(t, encode(&key(), &c));
    }

    #[test]
    fn tampering_and_foreign_keys_are_invalid() {
        let t = encode(&key(), &claims(5));
        let other = AppKey::derive(
            Some("pepper-pepper-pepper"),
            "wx0123456789abcdef",
            "0123456789abcdef0123456789abcdef",
        );
        assert_eq!(
            decode(&t).unwrap().verify(&other).unwrap_err(),
            TokenError::Invalid
        );
        // Flip one bit of the issue time.
        let mut raw = URL_SAFE_NO_PAD.decode(&t).unwrap();
        raw[8] ^= 1;
        let forged = URL_SAFE_NO_PAD.encode(raw);
        assert_eq!(
            decode(&forged).unwrap().verify(&key()).unwrap_err(),
            TokenError::Invalid
        );
    }

    #[test]
    fn malformed_tokens() {
        assert_eq!(decode("").unwrap_err(), TokenError::Missing);
        for bad in ["x", "!!!!", "AAAA", &"A".repeat(5000)] {
            assert_eq!(decode(bad).unwrap_err(), TokenError::Malformed, "{bad}");
        }
        // Right alphabet, wrong version byte.
        let mut raw = URL_SAFE_NO_PAD.decode(encode(&key(), &claims(1))).unwrap();
        raw[0] = 9;
        assert_eq!(
            decode(&URL_SAFE_NO_PAD.encode(raw)).unwrap_err(),
            TokenError::Malformed
        );
    }

    #[test]
    fn lifecycle_rules() {
        let grace = 300_000;
        let first = claims(1_000);
        let e1 = Epochs::rotated(None, 1_000);
        assert_eq!(judge(first.times(), Some(e1), 2_000, grace), Ok(()));
        // Superseded at t=10s: still fine inside the grace period, refused at its end.
        let e2 = Epochs::rotated(Some(e1), 10_000);
        assert_eq!(
            judge(first.times(), Some(e2), 10_000 + grace - 1, grace),
            Ok(())
        );
        assert_eq!(
            judge(first.times(), Some(e2), 10_000 + grace, grace),
            Err(TokenError::Invalid)
        );
        // Two rotations: the first token is two generations old and is refused at once.
        let e3 = Epochs::rotated(Some(e2), 11_000);
        assert_eq!(
            judge(first.times(), Some(e3), 11_001, grace),
            Err(TokenError::Invalid)
        );
        assert_eq!(
            judge(claims(e2.current).times(), Some(e3), 11_001, grace),
            Ok(())
        );
        // Expiry beats everything.
        let exp = first.expires_ms();
        assert_eq!(judge(first.times(), Some(e1), exp - 1, grace), Ok(()));
        assert_eq!(
            judge(first.times(), Some(e1), exp, grace),
            Err(TokenError::Expired)
        );
        assert_eq!(
            judge(first.times(), None, exp, grace),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn lineages_are_told_apart_and_covered_by_the_tag() {
        let stable = Claims {
            lineage: Lineage::Stable,
            ..claims(7_000)
        };
        let (a, b) = (encode(&key(), &claims(7_000)), encode(&key(), &stable));
        assert_ne!(a, b);
        assert_eq!(decode(&b).unwrap().verify(&key()).unwrap(), stable);
        // Relabelling a token as the other lineage breaks its tag.
        let mut raw = URL_SAFE_NO_PAD.decode(&a).unwrap();
        raw[0] = VERSION_STABLE;
        assert_eq!(
            decode(&URL_SAFE_NO_PAD.encode(raw))
                .unwrap()
                .verify(&key())
                .unwrap_err(),
            TokenError::Invalid
        );
    }

    #[test]
    fn forced_rotation_retires_the_current_token_at_once() {
        let e1 = Epochs::rotated(None, 1_000);
        let e2 = Epochs::forced(Some(e1), 2_000);
        assert_eq!(e2.previous, None);
        assert_eq!(
            judge(claims(1_000).times(), Some(e2), 2_001, 300_000),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn forced_refreshes_are_limited_per_day_and_spaced() {
        let rules = |day| ForceRules {
            day,
            per_day: 3,
            min_gap_ms: 30_000,
        };
        let mut f = Forced::default();
        let mut t = 1_000_000;
        for n in 1..=3 {
            f = f.admit(rules(10), t).unwrap();
            // Too soon after it; the third spends the day, which is said first.
            let refused = if n < 3 {
                ForceRefused::TooSoon
            } else {
                ForceRefused::DailyLimit
            };
            assert_eq!(f.admit(rules(10), t + 29_999), Err(refused));
            t += 30_000;
        }
        assert_eq!(f.admit(rules(10), t), Err(ForceRefused::DailyLimit));
        // A new day starts from zero; the gap still holds across midnight.
        assert_eq!(
            f.admit(rules(11), t - 30_000 + 1),
            Err(ForceRefused::TooSoon)
        );
        assert_eq!(f.admit(rules(11), t).unwrap().count, 1);
    }

    #[test]
    fn tokens_from_the_future_are_refused_beyond_the_skew() {
        let now = 1_000_000;
        let ahead = |ms| claims(now + ms).times();
        assert_eq!(judge(ahead(MAX_CLOCK_SKEW_MS), None, now, 300_000), Ok(()));
        assert_eq!(
            judge(ahead(MAX_CLOCK_SKEW_MS + 1), None, now, 300_000),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn rotations_in_one_millisecond_stay_distinct() {
        let e1 = Epochs::rotated(None, 50);
        let e2 = Epochs::rotated(Some(e1), 50);
        assert_eq!(e2.current, 51);
        assert_eq!(e2.previous, Some(50));
    }
}
