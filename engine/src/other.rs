//! PNG, WebP and GIF (first frame) through the `image` crate's pure-Rust decoders.

use std::borrow::Cow;
use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader};

use crate::exif::{Credits, orientation_from_tiff};
use crate::icc;
use crate::planes::{Pixels, Plane};
use crate::sniff::SourceFormat;
use crate::{EngineError, Limits};

fn image_format(f: SourceFormat) -> Result<ImageFormat, EngineError> {
    match f {
        SourceFormat::Png => Ok(ImageFormat::Png),
        SourceFormat::Webp => Ok(ImageFormat::WebP),
        SourceFormat::Gif => Ok(ImageFormat::Gif),
        // Decoded elsewhere (libjpeg-turbo, libheif); never routed here.
        SourceFormat::Jpeg | SourceFormat::Heic | SourceFormat::Avif => {
            Err(EngineError::UnsupportedFormat)
        }
    }
}

fn map_err(e: ImageError) -> EngineError {
    match e {
        ImageError::Unsupported(_) => EngineError::UnsupportedFormat,
        other => EngineError::CorruptImage(other.to_string()),
    }
}

/// A GIF without a global colour table gets a grey ramp as one, so that a frame without a
/// local table decodes its indices as grey levels, as Pillow does (the `gif` crate refuses
/// such a frame); frames with their own table are unaffected.
fn gif_with_global_palette(data: &[u8]) -> Cow<'_, [u8]> {
    match data.get(10) {
        Some(&flags) if flags & 0x80 == 0 && data.len() >= 13 => {
            let mut out = Vec::with_capacity(data.len() + 768);
            out.extend_from_slice(&data[..10]);
            out.push(flags | 0x80 | 0x07); // a table of 2^(7+1) entries
            out.extend_from_slice(&data[11..13]);
            out.extend((0..=255u8).flat_map(|v| [v, v, v]));
            out.extend_from_slice(&data[13..]);
            Cow::Owned(out)
        }
        _ => Cow::Borrowed(data),
    }
}

/// The bytes as the `image` crate's decoder for `format` should see them.
fn prepared(data: &[u8], format: SourceFormat) -> Cow<'_, [u8]> {
    match format {
        SourceFormat::Gif => gif_with_global_palette(data),
        _ => Cow::Borrowed(data),
    }
}

fn reader<'a>(
    data: &'a [u8],
    format: SourceFormat,
    limits: &Limits,
) -> Result<ImageReader<Cursor<&'a [u8]>>, EngineError> {
    let mut r = ImageReader::with_format(Cursor::new(data), image_format(format)?);
    // The decoders' own allocation cap: the pixel limit at 16-bit RGBA, the widest form
    // they produce, so a header check we missed still cannot exhaust memory.
    let mut l = image::Limits::default();
    l.max_alloc = Some(limits.max_pixels.saturating_mul(8).saturating_add(1 << 20));
    r.limits(l);
    Ok(r)
}

/// The EXIF orientation (1 when absent or unreadable) and credits of a PNG (`eXIf` before the
/// image data) or WebP (`EXIF` chunk). Our own parser rather than the `image` crate's: writers
/// disagree on whether the chunk starts with JPEG's "Exif\0\0" header (Pillow and exiftool
/// write it into WebP), and the crate only reads a bare TIFF structure.
fn exif(decoder: &mut impl ImageDecoder) -> (u8, Credits) {
    let Some(exif) = decoder.exif_metadata().ok().flatten() else {
        return (1, Credits::default());
    };
    let tiff = exif.strip_prefix(b"Exif\0\0").unwrap_or(&exif);
    (
        orientation_from_tiff(tiff).unwrap_or(1),
        Credits::from_tiff(tiff),
    )
}

/// Header-only dimensions (stored orientation) and EXIF orientation.
pub fn probe(
    data: &[u8],
    format: SourceFormat,
    limits: &Limits,
) -> Result<(u32, u32, u8), EngineError> {
    let data = prepared(data, format);
    let mut decoder = reader(&data, format, limits)?
        .into_decoder()
        .map_err(map_err)?;
    let (w, h) = decoder.dimensions();
    let (orientation, _) = exif(&mut decoder);
    Ok((w, h, orientation))
}

/// Decoded source, its EXIF orientation and credits.
pub fn decode(
    data: &[u8],
    format: SourceFormat,
    limits: &Limits,
    keep_alpha: bool,
) -> Result<(Pixels, u8, Credits), EngineError> {
    let data = prepared(data, format);
    let mut decoder = reader(&data, format, limits)?
        .into_decoder()
        .map_err(map_err)?;
    let (w, h) = decoder.dimensions();
    crate::check_pixels(w, h, limits)?;
    // Metadata problems never cost the photo: fall back to upright and untagged.
    let (orientation, credits) = exif(&mut decoder);
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
    Ok((pixels, orientation, credits))
}
