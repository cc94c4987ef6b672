//! Encoders: libjpeg-turbo (from YCbCr planes when we have them), libwebp, PNG, and AVIF
//! (libheif, in `avif`).

use image::ImageEncoder;
use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use tirage_core::OutputFormat;
use turbojpeg::{Compressor, PixelFormat, Subsamp, YuvPlanesImage};

use crate::EngineError;
use crate::embed::{self, Embed};
use crate::planes::{Pixels, Plane};

fn enc(e: impl std::fmt::Display) -> EngineError {
    // Encoding our own well-formed buffers only fails on an internal fault; the enum keeps
    // every failure permanent and typed, so it is reported as the image's.
    EngineError::CorruptImage(format!("encode: {e}"))
}

/// How a JPEG rendition's Huffman tables are chosen (lossless either way: the pixels are
/// the same, only the entropy coding differs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Huffman {
    /// The standard tables of the JPEG specification (Annex K), as libvips writes by default.
    Standard,
    /// Tables fitted to the rendition: ~2.5 % fewer bytes, for libjpeg-turbo's extra pass
    /// gathering statistics over every block. Measured on the tuning half (bench/engine-ab.sh,
    /// CPU-s for 42 photos): 1.29 with standard tables, 1.25 fitted at 360 (noise), 1.39 at
    /// 720 and 360, 1.86 at every size, for −2.4 %, −2.2 % and −2.6 % of the bytes at 360,
    /// 720 and 1080 (docs/BENCHMARKS.md).
    Fitted,
}

/// Encodes one rendition, with the metadata of `embed` when the batch keeps it.
pub fn encode(
    pixels: &Pixels,
    format: OutputFormat,
    quality: u8,
    huffman: Huffman,
    embed: Option<&Embed>,
) -> Result<Vec<u8>, EngineError> {
    match (format, embed) {
        (OutputFormat::Jpeg, None) => jpeg(pixels, quality, huffman),
        (OutputFormat::Jpeg, Some(e)) => {
            let grey = matches!(pixels, Pixels::Gray(_));
            embed::into_jpeg(jpeg(pixels, quality, huffman)?, e, grey)
        }
        (OutputFormat::Webp, None) => webp(pixels, quality),
        (OutputFormat::Webp, Some(e)) => {
            let (w, h) = pixels.size();
            embed::into_webp(&webp(pixels, quality)?, w, h, e)
        }
        (OutputFormat::Png, _) => png(pixels, embed),
        (OutputFormat::Avif, _) => crate::avif::encode(pixels, quality, embed),
    }
}

fn jpeg(pixels: &Pixels, quality: u8, huffman: Huffman) -> Result<Vec<u8>, EngineError> {
    let mut c = Compressor::new().map_err(enc)?;
    c.set_quality(i32::from(quality)).map_err(enc)?;
    c.set_optimize(huffman == Huffman::Fitted).map_err(enc)?;
    match pixels {
        Pixels::Yuv { y, u, v } => {
            // 4:2:0 wants luma in whole 2×2 blocks and chroma at ceil(w/2)×ceil(h/2).
            let (w, h) = (y.width, y.height);
            // Padding copies the whole plane: only for odd sizes.
            let padded;
            let y = if w % 2 == 0 && h % 2 == 0 {
                y
            } else {
                padded = y.padded(w.next_multiple_of(2), h.next_multiple_of(2));
                &padded
            };
            if (u.width, u.height) != (w.div_ceil(2), h.div_ceil(2)) || u.data.len() != v.data.len()
            {
                return Err(enc("chroma planes are not 4:2:0"));
            }
            let image = YuvPlanesImage {
                y_plane: &y.data[..],
                u_plane: &u.data[..],
                v_plane: &v.data[..],
                width: w as usize,
                height: h as usize,
                y_stride: y.width as usize,
                u_stride: u.width as usize,
                v_stride: v.width as usize,
                subsamp: Subsamp::Sub2x2,
            };
            c.compress_yuv_planes_to_vec(&image).map_err(enc)
        }
        Pixels::Gray(p) => {
            c.set_subsamp(Subsamp::Gray).map_err(enc)?;
            c.compress_to_vec(packed(p, PixelFormat::GRAY)).map_err(enc)
        }
        Pixels::Rgb(p) => {
            c.set_subsamp(Subsamp::Sub2x2).map_err(enc)?;
            c.compress_to_vec(packed(p, PixelFormat::RGB)).map_err(enc)
        }
        Pixels::Rgba(p) => {
            // Callers flatten before JPEG; composite here too rather than drop alpha.
            jpeg(&Pixels::Rgba(p.clone()).flattened(), quality, huffman)
        }
    }
}

fn packed(p: &Plane, format: PixelFormat) -> turbojpeg::Image<&[u8]> {
    turbojpeg::Image {
        pixels: &p.data[..],
        width: p.width as usize,
        pitch: p.width as usize * p.bpp as usize,
        height: p.height as usize,
        format,
    }
}

fn gray_to_rgb(p: &Plane) -> Vec<u8> {
    p.data.iter().flat_map(|&g| [g, g, g]).collect()
}

fn webp(pixels: &Pixels, quality: u8) -> Result<Vec<u8>, EngineError> {
    let mut config = webp::WebPConfig::new().map_err(|()| enc("libwebp config"))?;
    config.quality = f32::from(quality);
    let encode = |e: webp::Encoder| -> Result<Vec<u8>, EngineError> {
        e.encode_advanced(&config)
            .map(|m| m.to_vec())
            .map_err(|e| enc(format!("{e:?}")))
    };
    match pixels {
        Pixels::Rgb(p) => encode(webp::Encoder::from_rgb(&p.data, p.width, p.height)),
        Pixels::Rgba(p) => encode(webp::Encoder::from_rgba(&p.data, p.width, p.height)),
        Pixels::Gray(p) => {
            let rgb = gray_to_rgb(p);
            encode(webp::Encoder::from_rgb(&rgb, p.width, p.height))
        }
        Pixels::Yuv { .. } => Err(enc("planar YCbCr is only encoded as JPEG")),
    }
}

fn png(pixels: &Pixels, embed: Option<&Embed>) -> Result<Vec<u8>, EngineError> {
    let mut out = Vec::new();
    let mut e = PngEncoder::new_with_quality(&mut out, CompressionType::Fast, FilterType::Adaptive);
    if let Some(embed) = embed {
        // eXIf holds the bare TIFF structure; iCCP the profile (the crate compresses it),
        // never on a grey image (see `embed::into_jpeg`).
        if !matches!(pixels, Pixels::Gray(_)) {
            e.set_icc_profile(embed.icc.to_vec()).map_err(enc)?;
        }
        if let Some(tiff) = &embed.exif {
            e.set_exif_metadata(tiff.clone()).map_err(enc)?;
        }
    }
    let (p, color) = match pixels {
        Pixels::Rgb(p) => (p, image::ExtendedColorType::Rgb8),
        Pixels::Rgba(p) => (p, image::ExtendedColorType::Rgba8),
        Pixels::Gray(p) => (p, image::ExtendedColorType::L8),
        Pixels::Yuv { .. } => return Err(enc("planar YCbCr is only encoded as JPEG")),
    };
    e.write_image(&p.data, p.width, p.height, color)
        .map_err(enc)?;
    Ok(out)
}
