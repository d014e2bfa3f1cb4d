//! The platform's identifiers and their syntax: appids and openids.

/// The longest openid accepted.
pub const MAX_OPENID_BYTES: usize = 128;

/// Why a string is not an openid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OpenidError {
    #[error("field `openid` is longer than 128 bytes")]
    TooLong,
    #[error("field `openid` may hold only letters, digits, `_` and `-`")]
    Character,
}

impl OpenidError {
    /// The message, as the errmsg of an answer.
    pub fn as_str(self) -> &'static str {
        match self {
            OpenidError::TooLong => "field `openid` is longer than 128 bytes",
            OpenidError::Character => "field `openid` may hold only letters, digits, `_` and `-`",
        }
    }
}

/// An openid: up to 128 bytes of `[A-Za-z0-9_-]` (whether an empty one is allowed is the
/// caller's to say).
pub fn check_openid(openid: &str) -> Result<(), OpenidError> {
    if openid.len() > MAX_OPENID_BYTES {
        return Err(OpenidError::TooLong);
    }
    if !openid
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(OpenidError::Character);
    }
    Ok(())
}

/// An appid: `wx` followed by 16 hex digits.
pub fn is_valid_appid(s: &str) -> bool {
    s.len() == 18 && s.starts_with("wx") && s.as_bytes()[2..].iter().all(u8::is_ascii_hexdigit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openids_and_appids() {
        assert_eq!(check_openid("oAbc_-09"), Ok(()));
        assert_eq!(check_openid(&"a".repeat(128)), Ok(()));
        assert_eq!(check_openid(&"a".repeat(129)), Err(OpenidError::TooLong));
        assert_eq!(check_openid("a b"), Err(OpenidError::Character));
        for e in [OpenidError::TooLong, OpenidError::Character] {
            assert_eq!(e.to_string(), e.as_str());
        }
        assert!(is_valid_appid("wx0123456789abcdef"));
        assert!(!is_valid_appid("wx0123456789abcdeg"));
        assert!(!is_valid_appid("wy0123456789abcdef"));
        assert!(!is_valid_appid("wx0123456789abcde"));
    }
}
