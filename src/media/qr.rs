//! QR codes in images: found and decoded (rqrr, a port of quirc), their text judged.
//!
//! A QR code's text goes through the text engine like any user text. Besides, a code that
//! points somewhere (a URL or any `scheme:` link, `www.`, a contact card, a phone, mail or
//! Wi-Fi payload) is advertising (10001) by default: `[media] qr_links` sets the suggest
//! (`risky`, `review`, or `pass` to ignore links).

use image::DynamicImage;

/// Codes decoded from one image at most.
pub const MAX_CODES: usize = 8;
/// Images are scanned at most this large on a side (reduced first), which bounds the cost.
pub const SCAN_MAX_SIDE: u32 = 1600;

/// The texts of the QR codes found in the image, in the order found.
pub fn scan(image: &DynamicImage) -> Vec<String> {
    let (w, h) = (image.width(), image.height());
    let reduced;
    let image = if w > SCAN_MAX_SIDE || h > SCAN_MAX_SIDE {
        reduced = image.thumbnail(SCAN_MAX_SIDE, SCAN_MAX_SIDE);
        &reduced
    } else {
        image
    };
    let gray = image.to_luma8();
    let (w, h) = (gray.width() as usize, gray.height() as usize);
    let mut prepared =
        rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| gray.as_raw()[y * w + x]);
    prepared
        .detect_grids()
        .into_iter()
        .filter_map(|grid| grid.decode().ok().map(|(_, text)| text))
        .take(MAX_CODES)
        .collect()
}

/// Payload prefixes that lead somewhere without `//`.
const LINK_PREFIXES: [&str; 12] = [
    "tel:",
    "sms:",
    "smsto:",
    "mailto:",
    "geo:",
    "wifi:",
    "mecard:",
    "begin:vcard",
    "market:",
    "bitcoin:",
    "www.",
    "matmsg:",
];

/// Whether a QR code's text leads somewhere: a link (`scheme://…`, `www.…`), a contact card, a
/// phone, mail, SMS or Wi-Fi payload, or a WeChat account link.
pub fn points_elsewhere(text: &str) -> bool {
    let lower = text.trim().to_ascii_lowercase();
    let url = lower.split_once("://").is_some_and(|(scheme, rest)| {
        !rest.is_empty()
            && scheme
                .as_bytes()
                .first()
                .is_some_and(u8::is_ascii_alphabetic)
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+.-".contains(&b))
    });
    url || LINK_PREFIXES.iter().any(|p| lower.starts_with(p))
        || lower.contains("weixin.qq.com")
        || lower.contains("u.wechat.com")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_contacts_and_accounts_point_elsewhere() {
        for t in [
            "https://example.com/join",
            "HTTP://EXAMPLE.COM",
            "weixin://dl/chat?abc",
            "alipays://platformapi/startapp",
            "tel:13800138000",
            "mailto:a@b.c",
            "WIFI:S:net;T:WPA;P:pw;;",
            "MECARD:N:Li;TEL:123;;",
            "BEGIN:VCARD\nFN:Li\nEND:VCARD",
            "www.example.com",
            "  u.wechat.com/abc",
        ] {
            assert!(points_elsewhere(t), "{t}");
        }
        for t in [
            "hello",
            "你好，世界",
            "12:30 meeting",
            "",
            "a: b",
            "note:hello",
            "://x",
        ] {
            assert!(!points_elsewhere(t), "{t}");
        }
    }
}
