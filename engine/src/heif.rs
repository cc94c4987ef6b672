//! HEIC/HEIF and AVIF through libheif (Debian's libheif with libde265 for HEVC and dav1d/aom
//! for AV1), bound by the `libheif-rs` crate.
//!
//! Orientation: libheif applies the container's rotation and mirror boxes (`irot`, `imir`)
//! while decoding, and the HEIF specification makes them the authority: an EXIF orientation
//! tag in a HEIF only repeats them (iPhones write both). So the engine never applies EXIF
//! orientation to a HEIF (orientation 1), as libvips and pillow-heif do; applying it too
//! would rotate twice.

use std::sync::LazyLock;

use libheif_rs::{
    ColorProfile, ColorSpace, HeifContext, HeifError, HeifErrorCode, ImageHandle, LibHeif,
    RgbChroma, color_profile_types,
};

use crate::exif::Credits;
use crate::icc;
use crate::planes::{Pixels, Plane};
use crate::{EngineError, Limits};

/// libheif's global state, initialised once (its `heif_init` and `heif_deinit`).
pub(crate) static LIBHEIF: LazyLock<LibHeif> = LazyLock::new(LibHeif::new);

fn map_err(e: HeifError) -> EngineError {
    match e.code {
        // No decoder for the codec inside (e.g. a HEIF holding JPEG 2000), or not a HEIF.
        HeifErrorCode::UnsupportedFileType | HeifErrorCode::UnsupportedFeature => {
            EngineError::UnsupportedFormat
        }
        _ => EngineError::CorruptImage(format!("HEIF: {}", e.message)),
    }
}

fn primary(context: &HeifContext<'_>) -> Result<ImageHandle, EngineError> {
    context.primary_image_handle().map_err(map_err)
}

/// Checks the sizes the boxes give before libheif decodes a pixel: the coded size (`ispe`,
/// what the decoder allocates) and the displayed one (after `clap` and `irot`), which a crafted
/// crop box can make far smaller than the coded one.
fn check_size(handle: &ImageHandle, limits: &Limits) -> Result<(), EngineError> {
    let coded = (handle.ispe_width(), handle.ispe_height());
    if let (Ok(w), Ok(h)) = (u32::try_from(coded.0), u32::try_from(coded.1))
        && w > 0
        && h > 0
    {
        crate::check_pixels(w, h, limits)?;
    }
    crate::check_pixels(handle.width(), handle.height(), limits)
}

/// Dimensions as displayed (after `irot`), read from the boxes only; orientation is always 1.
pub fn probe(data: &[u8], limits: &Limits) -> Result<(u32, u32, u8), EngineError> {
    let context = HeifContext::read_from_bytes(data).map_err(map_err)?;
    let handle = primary(&context)?;
    check_size(&handle, limits)?;
    Ok((handle.width(), handle.height(), 1))
}

/// The credits in the primary image's first `Exif` item: libheif gives the item as stored, a
/// 4-byte big-endian offset to the TIFF header, then the EXIF block.
fn credits(handle: &ImageHandle) -> Credits {
    let mut ids = [0; 1];
    if handle.metadata_block_ids(&mut ids, b"Exif") == 0 {
        return Credits::default();
    }
    let Ok(item) = handle.metadata(ids[0]) else {
        return Credits::default();
    };
    let tiff = item
        .get(..4)
        .and_then(|o| usize::try_from(u32::from_be_bytes([o[0], o[1], o[2], o[3]])).ok())
        .and_then(|offset| item.get(offset.checked_add(4)?..));
    tiff.map(Credits::from_tiff).unwrap_or_default()
}

/// The primary image, upright, converted to sRGB when it carries another ICC profile, and its
/// EXIF credits.
pub fn decode(
    data: &[u8],
    limits: &Limits,
    keep_alpha: bool,
) -> Result<(Pixels, Credits), EngineError> {
    let mut context = HeifContext::read_from_bytes(data).map_err(map_err)?;
    // One thread, like every other decoder here: callers run one photo per core, and libheif's
    // own tile threads would oversubscribe them.
    context.set_max_decoding_threads(1);
    let handle = primary(&context)?;
    check_size(&handle, limits)?;
    let (width, height) = (handle.width(), handle.height());
    let alpha = handle.has_alpha_channel();
    let chroma = if alpha {
        RgbChroma::Rgba
    } else {
        RgbChroma::Rgb
    };
    // libheif's default options (transformations applied). Never `Some(DecodingOptions)`:
    // libheif-rs 0.20 frees the options before libheif reads them (a use after free that
    // showed as transformations randomly skipped).
    let image = LIBHEIF
        .decode(&handle, ColorSpace::Rgb(chroma), None)
        .map_err(map_err)?;
    let plane = image
        .planes()
        .interleaved
        .ok_or_else(|| EngineError::CorruptImage("HEIF: no interleaved plane".into()))?;
    let bpp: u8 = if alpha { 4 } else { 3 };
    if (plane.width, plane.height) != (width, height) {
        return Err(EngineError::CorruptImage(format!(
            "HEIF: decoded {}x{}, the header says {width}x{height}",
            plane.width, plane.height
        )));
    }
    let (w, h) = (width, height);
    let row = w as usize * usize::from(bpp);
    let mut packed = Vec::with_capacity(row * h as usize);
    for y in 0..h as usize {
        let line = plane
            .data
            .get(y * plane.stride..y * plane.stride + row)
            .ok_or_else(|| EngineError::CorruptImage("HEIF: short plane".into()))?;
        packed.extend_from_slice(line);
    }
    // An embedded ICC profile (Display P3 on iPhones) → sRGB. An nclx box alone (colour
    // primaries as code points) is read as sRGB, as browsers without colour management do.
    let profile = handle
        .color_profile_raw()
        .filter(|p| {
            p.profile_type() == color_profile_types::PROF
                || p.profile_type() == color_profile_types::R_ICC
        })
        .and_then(|p| icc::Profile::parse(&p.data))
        .filter(|p| !p.is_srgb());
    if let Some(p) = &profile {
        if alpha {
            p.rgba_to_srgb(&mut packed)?;
        } else {
            p.rgb_to_srgb(&mut packed)?;
        }
    }
    let pixels = if alpha {
        let rgba = Pixels::Rgba(Plane::new(w, h, 4, packed));
        if keep_alpha { rgba } else { rgba.flattened() }
    } else {
        Pixels::Rgb(Plane::new(w, h, 3, packed))
    };
    Ok((pixels, credits(&handle)))
}
