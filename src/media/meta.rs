//! Text embedded in image files: PNG text chunks (`tEXt`, `zTXt`, `iTXt`), JPEG comments and
//! EXIF descriptions (ImageDescription, UserComment, XPTitle/XPComment/XPSubject), XMP packets
//! (their text content, tags stripped), GIF comment extensions, and WebP's EXIF and XMP chunks.
//!
//! The walks are bounds-checked container parsers over the raw bytes (a malformed file yields
//! what could be read, never a panic), and what they collect is bounded: at most [`MAX_TEXTS`]
//! texts, [`MAX_TOTAL_BYTES`] in all, and compressed PNG text inflated to at most that much.

use super::sniff::Format;

/// Texts collected from one file at most.
pub const MAX_TEXTS: usize = 32;
/// Bytes of text collected from one file at most (compressed text included, once inflated).
pub const MAX_TOTAL_BYTES: usize = 64 * 1024;

/// The embedded texts of an image, in file order (empty ones left out).
pub fn embedded_text(bytes: &[u8], format: Format) -> Vec<String> {
    let mut out = Texts::default();
    match format {
        Format::Png => png(bytes, &mut out),
        Format::Jpeg => jpeg(bytes, &mut out),
        Format::Gif => gif(bytes, &mut out),
        Format::Webp => webp(bytes, &mut out),
        _ => {}
    }
    out.texts
}

#[derive(Default)]
struct Texts {
    texts: Vec<String>,
    bytes: usize,
}

impl Texts {
    fn full(&self) -> bool {
        self.texts.len() >= MAX_TEXTS || self.bytes >= MAX_TOTAL_BYTES
    }

    fn push(&mut self, text: String) {
        let text = text.trim_matches(|c: char| c.is_whitespace() || c == '\0');
        if text.is_empty() || self.full() {
            return;
        }
        let room = MAX_TOTAL_BYTES - self.bytes;
        let mut end = text.len().min(room);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        self.bytes += end;
        self.texts.push(text[..end].to_owned());
    }
}

fn be32(b: &[u8], at: usize) -> Option<usize> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?) as usize)
}

fn latin1(b: &[u8]) -> String {
    b.iter().map(|&c| char::from(c)).collect()
}

fn inflate(b: &[u8], limit: usize) -> Option<Vec<u8>> {
    miniz_oxide::inflate::decompress_to_vec_zlib_with_limit(b, limit).ok()
}

fn png(b: &[u8], out: &mut Texts) {
    let mut at = 8;
    while let (Some(len), Some(kind)) = (be32(b, at), b.get(at + 4..at + 8)) {
        let Some(data) = b.get(at + 8..(at + 8).saturating_add(len)) else {
            return;
        };
        let split = |d: &[u8]| -> Option<(usize, usize)> {
            let nul = d.iter().position(|&c| c == 0)?;
            Some((nul, nul + 1))
        };
        match kind {
            b"tEXt" => {
                if let Some((nul, rest)) = split(data)
                    && !provenance(&data[..nul])
                {
                    out.push(latin1(&data[rest..]));
                }
            }
            b"zTXt" => {
                if let Some((nul, rest)) = split(data)
                    && !provenance(&data[..nul])
                    && data.get(rest) == Some(&0)
                    && let Some(text) = inflate(&data[rest + 1..], MAX_TOTAL_BYTES - out.bytes)
                {
                    out.push(latin1(&text));
                }
            }
            b"iTXt" => itxt(data, out),
            b"IEND" => return,
            _ => {}
        }
        if out.full() {
            return;
        }
        at += 12 + len;
    }
}

/// PNG text keywords (PNG §11.3.4.2) that record how the file was made and under what terms,
/// not what it shows: the tool that wrote it, when, and its licence. Their links are not
/// advertising ("Software: www.inkscape.org", "Copyright: CC BY-SA http://creativecommons.org/…"
/// made most of GNOME's icons `review` before these were left out).
fn provenance(keyword: &[u8]) -> bool {
    matches!(keyword, b"Software" | b"Creation Time" | b"Copyright")
}

/// `keyword \0 compressed method language \0 translated-keyword \0 text`.
fn itxt(data: &[u8], out: &mut Texts) {
    let mut parts = data.splitn(2, |&c| c == 0);
    let (Some(keyword), Some(rest)) = (parts.next(), parts.next()) else {
        return;
    };
    if provenance(keyword) {
        return;
    }
    let (Some(&compressed), Some(_method)) = (rest.first(), rest.get(1)) else {
        return;
    };
    let mut fields = rest[2..].splitn(3, |&c| c == 0);
    let (Some(_lang), Some(translated), Some(text)) = (fields.next(), fields.next(), fields.next())
    else {
        return;
    };
    out.push(String::from_utf8_lossy(translated).into_owned());
    let text = if compressed == 1 {
        match inflate(text, MAX_TOTAL_BYTES - out.bytes) {
            Some(t) => t,
            None => return,
        }
    } else {
        text.to_vec()
    };
    if keyword == b"XML:com.adobe.xmp" {
        // An XMP packet, as in JPEG and WebP: its text content, not its markup (whose
        // namespace URLs would read as links).
        xmp(&text, out);
    } else {
        out.push(String::from_utf8_lossy(&text).into_owned());
    }
}

fn jpeg(b: &[u8], out: &mut Texts) {
    let mut at = 2;
    while at + 4 <= b.len() && b[at] == 0xFF && !out.full() {
        let marker = b[at + 1];
        // Start of scan: entropy-coded data follows, no more metadata segments of interest.
        if marker == 0xDA || marker == 0xD9 {
            return;
        }
        let len = usize::from(u16::from_be_bytes([b[at + 2], b[at + 3]]));
        let Some(segment) = b.get(at + 4..(at + 2).saturating_add(len)) else {
            return;
        };
        match marker {
            0xFE => out.push(String::from_utf8_lossy(segment).into_owned()),
            0xE1 => app1(segment, out),
            _ => {}
        }
        at += 2 + len;
    }
}

const XMP_HEADER: &[u8] = b"http://ns.adobe.com/xap/1.0/\0";

fn app1(segment: &[u8], out: &mut Texts) {
    if let Some(tiff) = segment.strip_prefix(b"Exif\0\0") {
        exif(tiff, out);
    } else if let Some(xml) = segment.strip_prefix(XMP_HEADER) {
        xmp(xml, out);
    }
}

/// The text content of an XMP packet: everything between tags, entities decoded for the common
/// five.
fn xmp(xml: &[u8], out: &mut Texts) {
    let xml = String::from_utf8_lossy(xml);
    let mut in_tag = false;
    let mut text = String::new();
    for c in xml.chars() {
        match c {
            '<' => {
                in_tag = true;
                if !text.trim().is_empty() {
                    out.push(decode_entities(&text));
                }
                text.clear();
            }
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
}

fn decode_entities(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// EXIF in TIFF layout: IFD0's ImageDescription and XP* tags, the Exif IFD's UserComment.
fn exif(t: &[u8], out: &mut Texts) {
    let little = match t.get(..2) {
        Some(b"II") => true,
        Some(b"MM") => false,
        _ => return,
    };
    let u16_at = |at: usize| -> Option<usize> {
        let b: [u8; 2] = t.get(at..at + 2)?.try_into().ok()?;
        Some(usize::from(if little {
            u16::from_le_bytes(b)
        } else {
            u16::from_be_bytes(b)
        }))
    };
    let u32_at = |at: usize| -> Option<usize> {
        let b: [u8; 4] = t.get(at..at + 4)?.try_into().ok()?;
        Some(
            (if little {
                u32::from_le_bytes(b)
            } else {
                u32::from_be_bytes(b)
            }) as usize,
        )
    };
    let Some(ifd0) = u32_at(4) else { return };
    let mut ifds = vec![ifd0];
    let mut visited = 0;
    while let Some(ifd) = ifds.pop() {
        visited += 1;
        if visited > 4 {
            return;
        }
        let Some(count) = u16_at(ifd) else { continue };
        for i in 0..count.min(512) {
            let entry = ifd + 2 + i * 12;
            let (Some(tag), Some(kind), Some(n)) =
                (u16_at(entry), u16_at(entry + 2), u32_at(entry + 4))
            else {
                break;
            };
            // Values over 4 bytes live at an offset.
            let value = |size: usize| -> Option<&[u8]> {
                let total = size.checked_mul(n)?;
                if total <= 4 {
                    t.get(entry + 8..entry + 8 + total)
                } else {
                    let at = u32_at(entry + 8)?;
                    t.get(at..at.checked_add(total)?)
                }
            };
            match (tag, kind) {
                (0x8769, _) => ifds.extend(u32_at(entry + 8)),
                (0x010E, 2) => {
                    if let Some(v) = value(1) {
                        out.push(String::from_utf8_lossy(v).into_owned());
                    }
                }
                // UserComment: an 8-byte character code, then the text.
                (0x9286, 7) => {
                    if let Some(v) = value(1)
                        && v.len() > 8
                    {
                        let (code, text) = v.split_at(8);
                        out.push(if code.starts_with(b"UNICODE") {
                            utf16(text, little)
                        } else {
                            String::from_utf8_lossy(text).into_owned()
                        });
                    }
                }
                // XPTitle, XPComment, XPKeywords, XPSubject: UTF-16LE in BYTE arrays.
                (0x9C9B..=0x9C9F, 1) => {
                    if let Some(v) = value(1) {
                        out.push(utf16(v, true));
                    }
                }
                _ => {}
            }
        }
    }
}

fn utf16(b: &[u8], little: bool) -> String {
    let units: Vec<u16> = b
        .chunks_exact(2)
        .map(|p| {
            if little {
                u16::from_le_bytes([p[0], p[1]])
            } else {
                u16::from_be_bytes([p[0], p[1]])
            }
        })
        .collect();
    String::from_utf16_lossy(&units)
}

fn gif(b: &[u8], out: &mut Texts) {
    let Some(&flags) = b.get(10) else { return };
    let mut at = 13;
    if flags & 0x80 != 0 {
        at += 3 << ((flags & 0x07) + 1);
    }
    // Sub-blocks: length byte, data, until a zero length; returns their bytes and the next offset.
    let blocks = |mut at: usize| -> Option<(Vec<u8>, usize)> {
        let mut data = Vec::new();
        loop {
            let len = usize::from(*b.get(at)?);
            at += 1;
            if len == 0 {
                return Some((data, at));
            }
            data.extend_from_slice(b.get(at..at + len)?);
            at += len;
        }
    };
    while !out.full() {
        match b.get(at) {
            Some(0x21) => {
                let Some(&label) = b.get(at + 1) else { return };
                let Some((data, next)) = blocks(at + 2) else {
                    return;
                };
                if label == 0xFE {
                    out.push(String::from_utf8_lossy(&data).into_owned());
                }
                at = next;
            }
            Some(0x2C) => {
                let Some(&local) = b.get(at + 9) else { return };
                at += 10;
                if local & 0x80 != 0 {
                    at += 3 << ((local & 0x07) + 1);
                }
                // LZW minimum code size, then the image data sub-blocks.
                let Some((_, next)) = blocks(at + 1) else {
                    return;
                };
                at = next;
            }
            _ => return,
        }
    }
}

fn webp(b: &[u8], out: &mut Texts) {
    let mut at = 12;
    while let (Some(kind), Some(len)) = (b.get(at..at + 4), b.get(at + 4..at + 8)) {
        let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
        let Some(data) = b.get(at + 8..(at + 8).saturating_add(len)) else {
            return;
        };
        match kind {
            b"EXIF" => exif(data.strip_prefix(b"Exif\0\0").unwrap_or(data), out),
            b"XMP " => xmp(data, out),
            _ => {}
        }
        if out.full() {
            return;
        }
        at += 8 + len + (len & 1);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use image::{ImageFormat, RgbImage};

    fn encoded(format: ImageFormat) -> Vec<u8> {
        let img = image::DynamicImage::ImageRgb8(RgbImage::from_fn(32, 24, |x, y| {
            image::Rgb([(x * 8) as u8, (y * 10) as u8, 90])
        }));
        let img = if format == ImageFormat::Gif {
            image::DynamicImage::ImageRgba8(img.to_rgba8())
        } else {
            img
        };
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    fn png_chunk(kind: &[u8], data: &[u8]) -> Vec<u8> {
        let mut c = (data.len() as u32).to_be_bytes().to_vec();
        c.extend_from_slice(kind);
        c.extend_from_slice(data);
        let crc = crc32fast::hash(&c[4..]);
        c.extend_from_slice(&crc.to_be_bytes());
        c
    }

    /// A PNG with text chunks inserted after IHDR.
    pub(crate) fn png_with_text(text: &str) -> Vec<u8> {
        let png = encoded(ImageFormat::Png);
        let mut out = png[..33].to_vec(); // signature + IHDR
        out.extend(png_chunk(b"tEXt", b"Comment\0plain latin text"));
        out.extend(png_chunk(b"tEXt", b"Software\0www.inkscape.org"));
        let mut itxt = b"Description\0\0\0zh\0\xe6\x8f\x8f\xe8\xbf\xb0\0".to_vec();
        itxt.extend_from_slice(text.as_bytes());
        out.extend(png_chunk(b"iTXt", &itxt));
        let mut ztxt = b"Title\0\0".to_vec();
        ztxt.extend(miniz_oxide::deflate::compress_to_vec_zlib(
            b"compressed title",
            6,
        ));
        out.extend(png_chunk(b"zTXt", &ztxt));
        out.extend_from_slice(&png[33..]);
        out
    }

    /// A JPEG with a comment segment, an EXIF segment (ImageDescription, XPComment, and a
    /// UserComment in the Exif IFD) and an XMP packet, inserted after SOI.
    pub(crate) fn jpeg_with_text(text: &str) -> Vec<u8> {
        let jpeg = encoded(ImageFormat::Jpeg);
        let segment = |marker: u8, body: &[u8]| {
            let mut s = vec![0xFF, marker];
            s.extend_from_slice(&((body.len() + 2) as u16).to_be_bytes());
            s.extend_from_slice(body);
            s
        };
        // TIFF, little endian: IFD0 at 8 with 3 entries, Exif IFD after it with 1 entry.
        let description = b"exif description\0";
        let xp: Vec<u8> = "xp 评论"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        let mut user = b"UNICODE\0".to_vec();
        user.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        let ifd0 = 8usize;
        let exif_ifd = ifd0 + 2 + 3 * 12 + 4;
        let data_at = exif_ifd + 2 + 12 + 4;
        let (desc_at, xp_at, user_at) = (
            data_at,
            data_at + description.len(),
            data_at + description.len() + xp.len(),
        );
        let mut t = b"II*\0".to_vec();
        t.extend_from_slice(&(ifd0 as u32).to_le_bytes());
        let entry = |t: &mut Vec<u8>, tag: u16, kind: u16, n: usize, value: usize| {
            t.extend_from_slice(&tag.to_le_bytes());
            t.extend_from_slice(&kind.to_le_bytes());
            t.extend_from_slice(&(n as u32).to_le_bytes());
            t.extend_from_slice(&(value as u32).to_le_bytes());
        };
        t.extend_from_slice(&3u16.to_le_bytes());
        entry(&mut t, 0x010E, 2, description.len(), desc_at);
        entry(&mut t, 0x8769, 4, 1, exif_ifd);
        entry(&mut t, 0x9C9C, 1, xp.len(), xp_at);
        t.extend_from_slice(&0u32.to_le_bytes());
        t.extend_from_slice(&1u16.to_le_bytes());
        entry(&mut t, 0x9286, 7, user.len(), user_at);
        t.extend_from_slice(&0u32.to_le_bytes());
        t.extend_from_slice(description);
        t.extend_from_slice(&xp);
        t.extend_from_slice(&user);
        let mut exif = b"Exif\0\0".to_vec();
        exif.extend(t);
        let mut xmp = XMP_HEADER.to_vec();
        xmp.extend_from_slice(
            b"<x:xmpmeta><rdf:RDF><rdf:Description><dc:title><rdf:Alt><rdf:li xml:lang=\"x-default\">xmp &amp; title</rdf:li></rdf:Alt></dc:title></rdf:Description></rdf:RDF></x:xmpmeta>",
        );
        let mut out = jpeg[..2].to_vec();
        out.extend(segment(0xFE, "jpeg comment".as_bytes()));
        out.extend(segment(0xE1, &exif));
        out.extend(segment(0xE1, &xmp));
        out.extend_from_slice(&jpeg[2..]);
        out
    }

    /// A GIF with a comment extension before its trailer.
    pub(crate) fn gif_with_comment(text: &str) -> Vec<u8> {
        let gif = encoded(ImageFormat::Gif);
        assert_eq!(gif.last(), Some(&0x3B));
        let mut out = gif[..gif.len() - 1].to_vec();
        out.extend_from_slice(&[0x21, 0xFE]);
        for chunk in text.as_bytes().chunks(255) {
            out.push(chunk.len() as u8);
            out.extend_from_slice(chunk);
        }
        out.extend_from_slice(&[0, 0x3B]);
        out
    }

    /// PNG's XMP chunk is read for its text content, like XMP elsewhere.
    #[test]
    fn png_xmp_gives_its_text_not_its_markup() {
        let png = encoded(ImageFormat::Png);
        let mut out = png[..33].to_vec();
        let mut chunk = b"XML:com.adobe.xmp\0\0\0\0\0".to_vec();
        chunk.extend_from_slice(
            b"<x:xmpmeta xmlns:x=\"adobe:ns:meta/\"><rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/\">\
              <xmp:CreatorTool>Pixelmator</xmp:CreatorTool></rdf:RDF></x:xmpmeta>",
        );
        out.extend(png_chunk(b"iTXt", &chunk));
        out.extend_from_slice(&png[33..]);
        assert_eq!(embedded_text(&out, Format::Png), ["Pixelmator"]);
    }

    #[test]
    fn text_is_found_in_every_container() {
        let png = png_with_text("嵌入的文字");
        assert!(image::load_from_memory(&png).is_ok(), "still a valid PNG");
        assert_eq!(
            embedded_text(&png, Format::Png),
            ["plain latin text", "描述", "嵌入的文字", "compressed title"]
        );
        let jpeg = jpeg_with_text("用户评论");
        assert!(image::load_from_memory(&jpeg).is_ok(), "still a valid JPEG");
        assert_eq!(
            embedded_text(&jpeg, Format::Jpeg),
            [
                "jpeg comment",
                "exif description",
                "xp 评论",
                "用户评论",
                "xmp & title"
            ]
        );
        let gif = gif_with_comment("一段注释");
        assert!(image::load_from_memory(&gif).is_ok(), "still a valid GIF");
        assert_eq!(embedded_text(&gif, Format::Gif), ["一段注释"]);
        assert!(embedded_text(&encoded(ImageFormat::Png), Format::Png).is_empty());
    }

    #[test]
    fn truncated_and_hostile_files_yield_what_could_be_read() {
        let png = png_with_text("x");
        for cut in [0, 8, 20, 40, 60, 90, png.len() - 5] {
            let _ = embedded_text(&png[..cut], Format::Png);
        }
        let jpeg = jpeg_with_text("y");
        for cut in [0, 3, 10, 30, 100, jpeg.len() - 3] {
            let _ = embedded_text(&jpeg[..cut], Format::Jpeg);
        }
        // A zTXt bomb inflates to at most the cap.
        let bomb = miniz_oxide::deflate::compress_to_vec_zlib(&vec![b'a'; 10 << 20], 9);
        let mut data = b"Title\0\0".to_vec();
        data.extend(bomb);
        let mut file = encoded(ImageFormat::Png)[..33].to_vec();
        file.extend(png_chunk(b"zTXt", &data));
        let texts = embedded_text(&file, Format::Png);
        assert!(texts.iter().map(String::len).sum::<usize>() <= MAX_TOTAL_BYTES);
        // Many comments: at most MAX_TEXTS kept.
        let mut gif = encoded(ImageFormat::Gif);
        gif.pop();
        for _ in 0..100 {
            gif.extend_from_slice(&[0x21, 0xFE, 1, b'z', 0]);
        }
        gif.push(0x3B);
        assert_eq!(embedded_text(&gif, Format::Gif).len(), MAX_TEXTS);
    }
}
