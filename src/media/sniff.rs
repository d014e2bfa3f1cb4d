//! What a fetched file is, from its bytes alone (never the URL or the Content-Type).

/// The formats SPEC §4 names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Jpeg,
    Png,
    Bmp,
    Gif,
    Webp,
    Mp3,
    Aac,
    Ac3,
    Wma,
    Flac,
    Ogg,
    Wav,
}

/// `media_type` of the request: 1 audio, 2 image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaKind {
    Audio,
    Image,
}

impl MediaKind {
    /// From the wire's `media_type`.
    pub fn from_wire(n: i64) -> Option<MediaKind> {
        match n {
            1 => Some(MediaKind::Audio),
            2 => Some(MediaKind::Image),
            _ => None,
        }
    }

    pub fn wire(self) -> u8 {
        match self {
            MediaKind::Audio => 1,
            MediaKind::Image => 2,
        }
    }
}

impl Format {
    pub fn kind(self) -> MediaKind {
        match self {
            Format::Jpeg | Format::Png | Format::Bmp | Format::Gif | Format::Webp => {
                MediaKind::Image
            }
            _ => MediaKind::Audio,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::Jpeg => "jpeg",
            Format::Png => "png",
            Format::Bmp => "bmp",
            Format::Gif => "gif",
            Format::Webp => "webp",
            Format::Mp3 => "mp3",
            Format::Aac => "aac",
            Format::Ac3 => "ac3",
            Format::Wma => "wma",
            Format::Flac => "flac",
            Format::Ogg => "ogg",
            Format::Wav => "wav",
        }
    }
}

/// The ASF header object GUID that opens every WMA file.
const ASF_GUID: [u8; 16] = [
    0x30, 0x26, 0xB2, 0x75, 0x8E, 0x66, 0xCF, 0x11, 0xA6, 0xD9, 0x00, 0xAA, 0x00, 0x62, 0xCE, 0x6C,
];

/// Identifies the format from the first bytes of a file.
pub fn identify(b: &[u8]) -> Option<Format> {
    let at = |offset: usize, magic: &[u8]| b.get(offset..offset + magic.len()) == Some(magic);
    if at(0, &[0xFF, 0xD8, 0xFF]) {
        Some(Format::Jpeg)
    } else if at(0, b"\x89PNG\r\n\x1a\n") {
        Some(Format::Png)
    } else if at(0, b"GIF87a") || at(0, b"GIF89a") {
        Some(Format::Gif)
    } else if at(0, b"RIFF") && at(8, b"WEBP") {
        Some(Format::Webp)
    } else if at(0, b"RIFF") && at(8, b"WAVE") {
        Some(Format::Wav)
    } else if at(0, b"BM") && b.len() >= 26 && bmp_header_plausible(b) {
        Some(Format::Bmp)
    } else if at(0, b"fLaC") {
        Some(Format::Flac)
    } else if at(0, b"OggS") {
        Some(Format::Ogg)
    } else if at(0, &ASF_GUID) {
        Some(Format::Wma)
    } else if at(0, &[0x0B, 0x77]) {
        Some(Format::Ac3)
    } else if at(0, b"ID3") {
        // An ID3v2 tag opens mp3 files (and, rarely, ADTS AAC): look at the first frame after it.
        let size = id3_size(b)?;
        match identify_frame(b.get(10 + size..)?) {
            Some(f) => Some(f),
            // A tag followed by something unrecognised: still an MP3 container by convention.
            None => Some(Format::Mp3),
        }
    } else {
        identify_frame(b)
    }
}

/// An MPEG audio or ADTS frame header.
fn identify_frame(b: &[u8]) -> Option<Format> {
    let (&b0, &b1) = (b.first()?, b.get(1)?);
    if b0 != 0xFF || b1 & 0xE0 != 0xE0 {
        return None;
    }
    let layer = (b1 >> 1) & 0b11;
    if b1 & 0xF6 == 0xF0 {
        // Sync 0xFFF, layer 00: ADTS (AAC).
        Some(Format::Aac)
    } else if layer != 0 && (b1 >> 3) & 0b11 != 0b01 {
        // MPEG version not "reserved", layer I–III.
        let bitrate = b.get(2).map(|x| x >> 4)?;
        (bitrate != 0xF).then_some(Format::Mp3)
    } else {
        None
    }
}

/// The size of an ID3v2 tag body (syncsafe integer), plus its footer when present.
fn id3_size(b: &[u8]) -> Option<usize> {
    let h = b.get(..10)?;
    if h[6..10].iter().any(|x| x & 0x80 != 0) {
        return None;
    }
    let size = h[6..10]
        .iter()
        .fold(0usize, |acc, x| (acc << 7) | usize::from(*x));
    let footer = if h[5] & 0x10 != 0 { 10 } else { 0 };
    Some(size + footer)
}

/// "BM" alone is too weak: check the DIB header size is one of the known ones.
fn bmp_header_plausible(b: &[u8]) -> bool {
    let dib = u32::from_le_bytes([b[14], b[15], b[16], b[17]]);
    matches!(dib, 12 | 40 | 52 | 56 | 64 | 108 | 124)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn padded(head: &[u8]) -> Vec<u8> {
        let mut v = head.to_vec();
        v.resize(64, 0);
        v
    }

    #[test]
    fn every_named_format_is_recognised_by_its_bytes() {
        let mut bmp = padded(b"BM");
        bmp[14] = 40;
        let mut id3 = padded(b"ID3\x04\x00\x00\x00\x00\x00\x02");
        id3[12] = 0xFF;
        id3[13] = 0xFB;
        id3[14] = 0x90;
        let cases: Vec<(Vec<u8>, Format)> = vec![
            (padded(&[0xFF, 0xD8, 0xFF, 0xE0]), Format::Jpeg),
            (padded(b"\x89PNG\r\n\x1a\n"), Format::Png),
            (padded(b"GIF89a"), Format::Gif),
            (padded(b"GIF87a"), Format::Gif),
            (padded(b"RIFF\x10\0\0\0WEBPVP8 "), Format::Webp),
            (bmp, Format::Bmp),
            (padded(b"RIFF\x10\0\0\0WAVEfmt "), Format::Wav),
            (padded(b"fLaC"), Format::Flac),
            (padded(b"OggS\0\x02"), Format::Ogg),
            (padded(&ASF_GUID), Format::Wma),
            (padded(&[0x0B, 0x77, 0x12, 0x34]), Format::Ac3),
            (padded(&[0xFF, 0xF1, 0x50, 0x80]), Format::Aac),
            (padded(&[0xFF, 0xFB, 0x90, 0x64]), Format::Mp3),
            (id3, Format::Mp3),
        ];
        for (bytes, want) in cases {
            assert_eq!(identify(&bytes), Some(want), "{want:?}");
        }
    }

    #[test]
    fn other_bytes_are_not_media() {
        for bytes in [
            &b""[..],
            b"<html><body>not an image</body></html>",
            b"%PDF-1.7",
            b"PK\x03\x04",
            b"BM not really",
            &[0xFF, 0xFF, 0xFF, 0xFF],
            b"RIFF\x10\0\0\0AVI ",
        ] {
            assert_eq!(identify(bytes), None, "{bytes:?}");
        }
    }

    #[test]
    fn kinds_follow_the_wire_codes() {
        assert_eq!(MediaKind::from_wire(1), Some(MediaKind::Audio));
        assert_eq!(MediaKind::from_wire(2), Some(MediaKind::Image));
        assert_eq!(MediaKind::from_wire(3), None);
        assert_eq!(Format::Webp.kind(), MediaKind::Image);
        assert_eq!(Format::Flac.kind(), MediaKind::Audio);
    }
}
