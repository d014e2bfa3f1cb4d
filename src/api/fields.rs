//! Fields several APIs take, checked alike: `scene` and `openid`.

use super::ApiError;
use super::wire::{Int, Str};

/// The v2 `scene` (40129: 1 to 4) and `openid` (40003), checked in that order.
pub(super) fn scene_and_openid<'a>(
    scene: Int,
    openid: &'a Str<'_>,
) -> Result<(u8, &'a str), ApiError> {
    let scene = match scene {
        Int::Value(s @ 1..=4) => s as u8,
        Int::Absent => {
            return Err(ApiError::InvalidScene(
                "field `scene` is required (1, 2, 3 or 4)",
            ));
        }
        _ => return Err(ApiError::InvalidScene("field `scene` must be 1, 2, 3 or 4")),
    };
    let openid = openid
        .value()
        .ok_or(ApiError::InvalidOpenid("field `openid` is required"))?;
    validate_openid(openid)?;
    Ok((scene, openid))
}

/// An openid as the APIs take it (40003 otherwise).
pub fn validate_openid(openid: &str) -> Result<(), ApiError> {
    crate::ids::check_openid(openid).map_err(|e| ApiError::InvalidOpenid(e.as_str()))
}
