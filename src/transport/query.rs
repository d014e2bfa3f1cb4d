//! Query strings: one parameter's value, decoded as `application/x-www-form-urlencoded`.

use http::Request;

/// The value of one query parameter, percent-decoded.
pub fn query_param<'a, B>(req: &'a Request<B>, name: &str) -> Option<std::borrow::Cow<'a, str>> {
    find_param(req.uri().query()?, name)
}

/// The first value of `name` in a query string, decoded as `application/x-www-form-urlencoded`.
/// Every request carries its token here, so pairs that need no decoding (the usual case) are
/// compared and returned as they stand; only a key or value holding `%` or `+` is decoded.
pub fn find_param<'a>(query: &'a str, name: &str) -> Option<std::borrow::Cow<'a, str>> {
    fn decode(raw: &str) -> std::borrow::Cow<'_, str> {
        if memchr::memchr2(b'%', b'+', raw.as_bytes()).is_some() {
            let spaced = raw.replace('+', " ");
            let decoded = percent_encoding::percent_decode_str(&spaced).decode_utf8_lossy();
            std::borrow::Cow::Owned(decoded.into_owned())
        } else {
            std::borrow::Cow::Borrowed(raw)
        }
    }
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .find_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(key) == name).then(|| decode(value))
        })
}

#[cfg(test)]
mod tests {
    use super::find_param;

    #[test]
    fn query_params_decode_like_form_urlencoded() {
        let queries = [
            "access_token=abc&x=1",
            "x=1&access_token=a%2Bb+c&access_token=second",
            "acc%65ss_token=v",
            "access+token=no&access_token",
            "&&access_token=%E4%BD%A0%ZZ&",
            "access_token==x=",
            "",
            "other=1",
        ];
        for q in queries {
            for name in ["access_token", "x", "access token", "other"] {
                let want = url::form_urlencoded::parse(q.as_bytes())
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v);
                assert_eq!(find_param(q, name), want, "query {q:?}, name {name:?}");
            }
        }
    }
}
