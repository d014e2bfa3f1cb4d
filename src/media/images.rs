//! Decoding images safely: jpeg, png, bmp, gif (first frame) and webp, with the dimensions and
//! the pixel count checked from the header before any pixel buffer is allocated, and the
//! decoders' own allocations capped.

use std::io::Cursor;

use image::{DynamicImage, ImageFormat, ImageReader, Limits};

/// What an image may be.
#[derive(Debug, Clone, Copy)]
pub struct ImageLimits {
    /// Either side, in pixels.
    pub max_side: u32,
    /// Width × height.
    pub max_pixels: u64,
    /// Bytes any decoder may allocate.
    pub max_alloc: u64,
}

impl Default for ImageLimits {
    fn default() -> Self {
        ImageLimits {
            max_side: 16_384,
            max_pixels: 40_000_000,
            max_alloc: 256 << 20,
        }
    }
}

/// Why an image could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("image of {0}×{1} pixels is over the limit")]
    TooLarge(u32, u32),
    #[error("image cannot be decoded: {0}")]
    Invalid(String),
}

fn reader<'a>(
    bytes: &'a [u8],
    limits: &ImageLimits,
) -> Result<ImageReader<Cursor<&'a [u8]>>, DecodeError> {
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| DecodeError::Invalid(e.to_string()))?;
    if !matches!(
        reader.format(),
        Some(
            ImageFormat::Jpeg
                | ImageFormat::Png
                | ImageFormat::Gif
                | ImageFormat::WebP
                | ImageFormat::Bmp
        )
    ) {
        return Err(DecodeError::Invalid(
            "not a jpeg, png, gif, webp or bmp image".into(),
        ));
    }
    let mut l = Limits::default();
    l.max_image_width = Some(limits.max_side);
    l.max_image_height = Some(limits.max_side);
    l.max_alloc = Some(limits.max_alloc);
    reader.limits(l);
    Ok(reader)
}

/// The image's dimensions, from its header alone.
pub fn dimensions(bytes: &[u8], limits: &ImageLimits) -> Result<(u32, u32), DecodeError> {
    reader(bytes, limits)?
        .into_dimensions()
        .map_err(|e| match e {
            image::ImageError::Limits(_) => DecodeError::TooLarge(0, 0),
            other => DecodeError::Invalid(other.to_string()),
        })
}

/// Decodes the image (a GIF's first frame) after checking its header against `limits`.
pub fn decode(bytes: &[u8], limits: &ImageLimits) -> Result<DynamicImage, DecodeError> {
    let (w, h) = dimensions(bytes, limits)?;
    if w > limits.max_side || h > limits.max_side || u64::from(w) * u64::from(h) > limits.max_pixels
    {
        return Err(DecodeError::TooLarge(w, h));
    }
    reader(bytes, limits)?.decode().map_err(|e| match e {
        image::ImageError::Limits(_) => DecodeError::TooLarge(w, h),
        other => DecodeError::Invalid(other.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageBuffer, Rgb};

    fn encoded(format: ImageFormat, w: u32, h: u32) -> Vec<u8> {
        let img = DynamicImage::ImageRgb8(ImageBuffer::from_fn(w, h, |x, y| {
            Rgb([(x % 256) as u8, (y % 256) as u8, 128])
        }));
        let img = if format == ImageFormat::Gif {
            DynamicImage::ImageRgba8(img.to_rgba8())
        } else {
            img
        };
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    #[test]
    fn every_supported_format_decodes() {
        for format in [
            ImageFormat::Png,
            ImageFormat::Jpeg,
            ImageFormat::Gif,
            ImageFormat::Bmp,
            ImageFormat::WebP,
        ] {
            let bytes = encoded(format, 40, 30);
            let img = decode(&bytes, &ImageLimits::default())
                .unwrap_or_else(|e| panic!("{format:?}: {e}"));
            assert_eq!((img.width(), img.height()), (40, 30), "{format:?}");
        }
    }

    /// A 60,000 × 60,000 PNG header over a few bytes is refused from the header, before any
    /// pixel buffer exists.
    #[test]
    fn a_huge_claimed_size_is_refused_cheaply() {
        let mut png = encoded(ImageFormat::Png, 8, 8);
        // IHDR: width and height at bytes 16..24; fix the chunk CRC so the header is valid.
        png[16..20].copy_from_slice(&60_000u32.to_be_bytes());
        png[20..24].copy_from_slice(&60_000u32.to_be_bytes());
        let crc = crc32(&png[12..29]);
        png[29..33].copy_from_slice(&crc.to_be_bytes());
        let started = std::time::Instant::now();
        let e = decode(&png, &ImageLimits::default()).unwrap_err();
        assert!(matches!(e, DecodeError::TooLarge(..)), "{e}");
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        // Within the side limit but over the pixel count.
        let limits = ImageLimits {
            max_pixels: 1000,
            ..ImageLimits::default()
        };
        assert_eq!(
            decode(&encoded(ImageFormat::Png, 40, 30), &limits),
            Err(DecodeError::TooLarge(40, 30))
        );
    }

    #[test]
    fn other_bytes_are_refused() {
        assert!(matches!(
            decode(b"<html></html>", &ImageLimits::default()),
            Err(DecodeError::Invalid(_))
        ));
        let mut truncated = encoded(ImageFormat::Png, 40, 30);
        truncated.truncate(60);
        assert!(matches!(
            decode(&truncated, &ImageLimits::default()),
            Err(DecodeError::Invalid(_))
        ));
    }

    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
}
