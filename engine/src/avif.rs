//! AVIF output through libheif, whose AV1 encoder is libaom on Debian (libheif 1.15 links
//! libaom 3). The rendition is sRGB already (decoders convert), so it is handed over as 8-bit
//! RGB(A) and libheif converts it to full-range BT.601 YCbCr 4:2:0, the colour JPEG renditions
//! have too, described by the nclx `colr` box (see `encode`).

use libheif_rs::{
    Channel, ColorPrimaries, ColorProfileNCLX, ColorSpace, CompressionFormat,
    EncoderParameterValue, EncoderQuality, HeifContext, HeifError, Image, RgbChroma,
};

use crate::EngineError;
use crate::embed::Embed;
use crate::heif::LIBHEIF;
use crate::planes::{Pixels, Plane};

/// libaom's speed (its `cpu-used`, 0 slowest .. 9 fastest in libheif). Measured on the 12
/// photos of bench/corpus at q85, 1080/720/360 (docs/BENCHMARKS.md, "AVIF output"): speed 6
/// costs 877 ms per photo, 7 581 ms, 8 356 ms, 9 115 ms (JPEG: 25 ms); bytes against JPEG
/// 0.64-0.72 at 6, 0.74-0.83 at 8, 0.66-0.84 at 9; SSIM at 9 within 0.0002 of 8's on every
/// channel and size, and within 0.003 of 6's. 9 is the cheapest by far for the same quality.
pub const SPEED: i32 = 9;

fn enc(e: impl std::fmt::Display) -> EngineError {
    // As in `encode`: our own well-formed buffers only fail on an internal fault.
    EngineError::CorruptImage(format!("AVIF encode: {e}"))
}

fn heif(e: HeifError) -> EngineError {
    enc(format!("{:?}: {}", e.code, e.message))
}

/// Encodes one rendition. `quality` is the batch's 1..=100, given to libheif as is: its
/// scale is libavif's (`cq-level = (100 - quality) × 63 / 100`), the one AVIF tools share.
/// With `embed`, the credits go into an `Exif` item and the sRGB profile into a `colr` box of
/// type `prof`, added after libheif wrote the file (`isobmff::with_icc`): libheif-rs 0.20
/// hands libheif the profile type without its terminating NUL, which libheif refuses
/// ("Invalid color_profile_type"). The nclx `colr` box every rendition has stays (below).
pub fn encode(pixels: &Pixels, quality: u8, embed: Option<&Embed>) -> Result<Vec<u8>, EngineError> {
    let mut image = match pixels {
        Pixels::Rgb(p) => image(p, RgbChroma::Rgb)?,
        Pixels::Rgba(p) => image(p, RgbChroma::Rgba)?,
        Pixels::Gray(p) => {
            let rgb = p.data.iter().flat_map(|&g| [g, g, g]).collect();
            image(&Plane::new(p.width, p.height, 3, rgb), RgbChroma::Rgb)?
        }
        Pixels::Yuv { .. } => return Err(enc("planar YCbCr is only encoded as JPEG")),
    };
    // The nclx box: BT.709 (sRGB's) primaries, which libheif 1.15 would leave "unspecified";
    // BT.601 matrix and full range, its defaults. The transfer stays "unspecified" (libheif-rs
    // 0.20 has no setter for it), which readers take as sRGB's.
    let mut nclx = ColorProfileNCLX::new().ok_or_else(|| enc("no nclx profile"))?;
    nclx.set_color_primaries(ColorPrimaries::ITU_R_BT_709_5);
    image.set_color_profile_nclx(&nclx).map_err(heif)?;
    let mut encoder = LIBHEIF
        .encoder_for_format(CompressionFormat::Av1)
        .map_err(heif)?;
    encoder
        .set_quality(EncoderQuality::Lossy(quality.min(100)))
        .map_err(heif)?;
    let set = |name: &str, value: EncoderParameterValue| {
        encoder.set_parameter_value(name, value).map_err(heif)
    };
    set("speed", EncoderParameterValue::Int(SPEED))?;
    set("chroma", EncoderParameterValue::String("420".into()))?;
    // One thread, like every codec here: callers run one photo per core.
    set("threads", EncoderParameterValue::Int(1))?;
    let mut context = HeifContext::new().map_err(heif)?;
    // libheif's default encoding options (alpha kept). Never `Some(EncodingOptions)`:
    // libheif-rs 0.20 frees them before libheif reads them, as it does decoding options.
    let handle = context
        .encode_image(&image, &mut encoder, None)
        .map_err(heif)?;
    if let Some(tiff) = embed.and_then(|e| e.exif.as_deref()) {
        // libheif finds the TIFF header itself and writes the item's offset prefix.
        context.add_exif_metadata(&handle, tiff).map_err(heif)?;
    }
    let avif = context.write_to_bytes().map_err(heif)?;
    match embed {
        Some(e) => crate::isobmff::with_icc(&avif, e.icc),
        None => Ok(avif),
    }
}

/// A libheif image holding `p` (packed RGB or RGBA, 8 bits).
fn image(p: &Plane, chroma: RgbChroma) -> Result<Image, EngineError> {
    let mut image = Image::new(p.width, p.height, ColorSpace::Rgb(chroma)).map_err(heif)?;
    image
        .create_plane(Channel::Interleaved, p.width, p.height, 8)
        .map_err(heif)?;
    let row = p.width as usize * usize::from(p.bpp);
    let planes = image.planes_mut();
    let plane = planes
        .interleaved
        .ok_or_else(|| enc("libheif made no interleaved plane"))?;
    for (y, src) in p.data.chunks_exact(row).enumerate() {
        let at = y * plane.stride;
        plane
            .data
            .get_mut(at..at + row)
            .ok_or_else(|| enc("libheif's plane is smaller than the image"))?
            .copy_from_slice(src);
    }
    Ok(image)
}
