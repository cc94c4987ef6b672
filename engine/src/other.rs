//! PNG, WebP and GIF (first frame) through the `image` crate's pure-Rust decoders.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader};

use crate::icc;
use crate::planes::{Pixels, Plane};
use crate::sniff::SourceFormat;
use crate::{EngineError, Limits};

fn image_format(f: SourceFormat) -> ImageFormat {
    match f {
        SourceFormat::Jpeg => ImageFormat::Jpeg,
        SourceFormat::Png => ImageFormat::Png,
        SourceFormat::Webp => ImageFormat::WebP,
        SourceFormat::Gif => ImageFormat::Gif,
    }
}

fn map_err(e: ImageError) -> EngineError {
    match e {
        ImageError::Unsupported(_) => EngineError::UnsupportedFormat,
        other => EngineError::CorruptImage(other.to_string()),
    }
}

fn reader<'a>(
    data: &'a [u8],
    format: SourceFormat,
    limits: &Limits,
) -> ImageReader<Cursor<&'a [u8]>> {
    let mut r = ImageReader::with_format(Cursor::new(data), image_format(format));
    // The decoders' own allocation cap: the pixel limit at 16-bit RGBA, the widest form
    // they produce, so a header check we missed still cannot exhaust memory.
    let mut l = image::Limits::default();
    l.max_alloc = Some(limits.max_pixels.saturating_mul(8).saturating_add(1 << 20));
    r.limits(l);
    r
}

/// Header-only dimensions (stored orientation) and EXIF orientation.
pub fn probe(
    data: &[u8],
    format: SourceFormat,
    limits: &Limits,
) -> Result<(u32, u32, u8), EngineError> {
    let mut decoder = reader(data, format, limits)
        .into_decoder()
        .map_err(map_err)?;
    let (w, h) = decoder.dimensions();
    let orientation = decoder.orientation().map(|o| o.to_exif()).unwrap_or(1);
    Ok((w, h, orientation))
}

/// Decoded source, its EXIF orientation.
pub fn decode(
    data: &[u8],
    format: SourceFormat,
    limits: &Limits,
    keep_alpha: bool,
) -> Result<(Pixels, u8), EngineError> {
    let mut decoder = reader(data, format, limits)
        .into_decoder()
        .map_err(map_err)?;
    let (w, h) = decoder.dimensions();
    crate::check_pixels(w, h, limits)?;
    // Metadata problems never cost the photo: fall back to upright and untagged.
    let orientation = decoder.orientation().map(|o| o.to_exif()).unwrap_or(1);
    let profile = decoder
        .icc_profile()
        .ok()
        .flatten()
        .and_then(|b: Vec<u8>| icc::Profile::parse(&b))
        .filter(|p| !p.is_srgb());
    let img = DynamicImage::from_decoder(decoder).map_err(map_err)?;
    let has_alpha = img.color().has_alpha();
    let pixels = if has_alpha && keep_alpha {
        let mut data = img.into_rgba8().into_raw();
        if let Some(p) = &profile {
            p.rgba_to_srgb(&mut data)?;
        }
        Pixels::Rgba(Plane::new(w, h, 4, data))
    } else if has_alpha {
        let rgba = img.into_rgba8().into_raw();
        let mut flat = Pixels::Rgba(Plane::new(w, h, 4, rgba)).flattened();
        if let (Some(p), Pixels::Rgb(plane)) = (&profile, &mut flat) {
            p.rgb_to_srgb(&mut plane.data)?;
        }
        flat
    } else if !img.color().has_color() && profile.is_none() {
        Pixels::Gray(Plane::new(w, h, 1, img.into_luma8().into_raw()))
    } else {
        let mut data = img.into_rgb8().into_raw();
        if let Some(p) = &profile {
            p.rgb_to_srgb(&mut data)?;
        }
        Pixels::Rgb(Plane::new(w, h, 3, data))
    };
    Ok((pixels, orientation))
}
