//! Tirage's resize engine: one photo's bytes and options in, one encoded rendition per size
//! out. This is the whole public API the workers and the CLI use.
//!
//! Pipeline: sniff the format from the bytes; read the dimensions from the header and check
//! them against [`Limits`] before any pixel is decoded; decode (JPEG through libjpeg-turbo at
//! the smallest DCT scale that leaves the resize at least twice the largest rendition, as
//! YCbCr planes when the output is JPEG); resize the largest size first and cascade each
//! smaller one from the previous result; apply the EXIF orientation to the small results;
//! encode. Nothing of the source's metadata (EXIF, ICC, XMP, comments) is copied into the
//! renditions, except, when the batch asks for it (`MetadataChoice::Copyright`), its EXIF
//! Artist and Copyright, with an sRGB profile (see `embed`).
//!
//! Inputs: JPEG (libjpeg-turbo; its warnings — junk between segments, broken ICC chunks, a
//! truncated scan — are not failures, see `jpeg_markers` and `jpeg::tolerate`), PNG, WebP and
//! GIF (the `image` crate), HEIC/HEIF and AVIF (libheif, see `heif`). Only a decode that
//! cannot produce an image is `corrupt_image`.
//!
//! Outputs: JPEG (libjpeg-turbo), WebP (libwebp), PNG (the `image` crate), AVIF (libheif with
//! libaom, see `avif`).

mod avif;
mod embed;
mod encode;
mod exif;
mod heif;
mod icc;
mod isobmff;
mod jpeg;
mod jpeg_markers;
mod memory;
mod other;
mod planes;
mod sniff;
mod transpose;

pub use memory::keep_working_memory;
pub use planes::target_size;
pub use sniff::{SourceFormat, sniff};

use planes::Pixels;
use tirage_core::codes::{FailureCode, PhotoWarning};
use tirage_core::{BatchOptions, OutputFormat};

/// Limits checked before any pixel is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most pixels (width × height, from the header) a source may have.
    pub max_pixels: u64,
    /// Most bytes a source may have.
    pub max_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_pixels: 100_000_000,
            max_bytes: 50 * 1024 * 1024,
        }
    }
}

/// One encoded rendition.
#[derive(Debug, Clone)]
pub struct Rendition {
    /// The requested size (short side).
    pub size: u32,
    pub width: u32,
    pub height: u32,
    pub format: OutputFormat,
    pub data: Vec<u8>,
}

/// Everything produced from one source.
#[derive(Debug, Clone)]
pub struct Resized {
    /// The source's dimensions after EXIF orientation.
    pub width: u32,
    pub height: u32,
    /// One per requested size, in the requested order.
    pub renditions: Vec<Rendition>,
    /// What the photo's owner should know although it rendered (a truncated original).
    pub warnings: Vec<PhotoWarning>,
}

/// Why a photo could not be resized. Every variant is permanent: the same bytes fail the
/// same way, so callers never retry them.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("not a supported image format (JPEG, PNG, WebP, GIF, HEIC or AVIF)")]
    UnsupportedFormat,
    #[error("the image is corrupt: {0}")]
    CorruptImage(String),
    #[error("{width}x{height} is more than the limit of {limit} pixels")]
    TooManyPixels { width: u32, height: u32, limit: u64 },
    #[error("{size} bytes is more than the limit of {limit} bytes")]
    TooLarge { size: u64, limit: u64 },
    #[error("invalid options: {0}")]
    InvalidOptions(String),
}

impl EngineError {
    /// The code shown to users and stored with the failed photo.
    pub fn code(&self) -> FailureCode {
        match self {
            EngineError::UnsupportedFormat => FailureCode::UnsupportedFormat,
            EngineError::CorruptImage(_) => FailureCode::CorruptImage,
            EngineError::TooManyPixels { .. } => FailureCode::TooManyPixels,
            EngineError::TooLarge { .. } => FailureCode::TooLarge,
            EngineError::InvalidOptions(_) => FailureCode::InvalidOptions,
        }
    }
}

/// What the header says, read without decoding any pixel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    pub format: SourceFormat,
    /// Dimensions after EXIF orientation.
    pub width: u32,
    pub height: u32,
    /// EXIF orientation, 1 (upright) to 8.
    pub orientation: u8,
}

/// Reads format, dimensions and orientation from the header and checks them against `limits`.
pub fn probe(input: &[u8], limits: &Limits) -> Result<Probe, EngineError> {
    check_bytes(input, limits)?;
    let format = sniff(input).ok_or(EngineError::UnsupportedFormat)?;
    let (w, h, orientation) = match format {
        SourceFormat::Jpeg => {
            let info = jpeg::scan(input)?;
            (info.width, info.height, info.orientation)
        }
        SourceFormat::Heic | SourceFormat::Avif => heif::probe(input, limits)?,
        other_format => other::probe(input, other_format, limits)?,
    };
    check_pixels(w, h, limits)?;
    let (width, height) = if orientation >= 5 { (h, w) } else { (w, h) };
    Ok(Probe {
        format,
        width,
        height,
        orientation,
    })
}

fn check_bytes(input: &[u8], limits: &Limits) -> Result<(), EngineError> {
    if input.len() as u64 > limits.max_bytes {
        return Err(EngineError::TooLarge {
            size: input.len() as u64,
            limit: limits.max_bytes,
        });
    }
    Ok(())
}

pub(crate) fn check_pixels(width: u32, height: u32, limits: &Limits) -> Result<(), EngineError> {
    if u64::from(width) * u64::from(height) > limits.max_pixels {
        return Err(EngineError::TooManyPixels {
            width,
            height,
            limit: limits.max_pixels,
        });
    }
    if width == 0 || height == 0 {
        return Err(EngineError::CorruptImage("zero width or height".into()));
    }
    Ok(())
}

/// Resizes one photo to every size in `options`. CPU-bound: call it from a blocking pool.
pub fn resize(
    input: &[u8],
    options: &BatchOptions,
    limits: &Limits,
) -> Result<Resized, EngineError> {
    check_bytes(input, limits)?;
    options
        .validate()
        .map_err(|e| EngineError::InvalidOptions(e.to_string()))?;
    let format = sniff(input).ok_or(EngineError::UnsupportedFormat)?;
    let largest = options.sizes.iter().copied().max().unwrap_or(0);
    let keep_alpha = options.format != OutputFormat::Jpeg;
    let mut warnings = Vec::new();
    let (pixels, (w, h), orientation, credits) = match format {
        SourceFormat::Jpeg => {
            let info = jpeg::scan(input)?;
            check_pixels(info.width, info.height, limits)?;
            let (tw, th) = target_size(info.width, info.height, largest);
            let planar = options.format == OutputFormat::Jpeg;
            let pixels = jpeg::decode(input, &info, tw, th, planar, &mut warnings)?;
            let size = (info.width, info.height);
            (pixels, size, info.orientation, info.credits)
        }
        SourceFormat::Heic | SourceFormat::Avif => {
            let (pixels, credits) = heif::decode(input, limits, keep_alpha)?;
            let size = pixels.size();
            (pixels, size, 1, credits)
        }
        other_format => {
            let (pixels, orientation, credits) =
                other::decode(input, other_format, limits, keep_alpha)?;
            let size = pixels.size();
            (pixels, size, orientation, credits)
        }
    };
    let embed = embed::for_choice(options.metadata, &credits)?;
    let renditions = render(&pixels, (w, h), orientation, options, embed.as_ref())?;
    let (width, height) = if orientation >= 5 { (h, w) } else { (w, h) };
    Ok(Resized {
        width,
        height,
        renditions,
        warnings,
    })
}

/// Largest size first, each smaller one cascaded from the previous result (a far smaller
/// input than the source, and the same filter quality for a ratio of at most ~3).
fn render(
    source: &Pixels,
    (w, h): (u32, u32),
    orientation: u8,
    options: &BatchOptions,
    embed: Option<&embed::Embed>,
) -> Result<Vec<Rendition>, EngineError> {
    let mut order: Vec<usize> = (0..options.sizes.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(options.sizes[i]));
    let mut resampler = planes::Resampler::default();
    let mut previous: Option<Pixels> = None;
    let mut out: Vec<Option<Rendition>> = vec![None; options.sizes.len()];
    for i in order {
        let size = options.sizes[i];
        let (tw, th) = target_size(w, h, size);
        let from = previous.as_ref().unwrap_or(source);
        let step = if previous.is_none() {
            first_step(from)
        } else {
            cascade()
        };
        let resized = from.resized(&mut resampler, tw, th, step)?;
        let upright = if orientation == 1 {
            None
        } else {
            Some(resized.clone().oriented(orientation))
        };
        let shown = upright.as_ref().unwrap_or(&resized);
        let (rw, rh) = shown.size();
        let huffman =
            if u64::from(tw) * u64::from(th) <= FITTED_HUFFMAN_MAX_PIXELS || (tw, th) == (w, h) {
                encode::Huffman::Fitted
            } else {
                encode::Huffman::Standard
            };
        let data = encode::encode(shown, options.format, options.quality, huffman, embed)?;
        out[i] = Some(Rendition {
            size,
            width: rw,
            height: rh,
            format: options.format,
            data,
        });
        previous = Some(resized);
    }
    Ok(out.into_iter().flatten().collect())
}

/// Kernels of the first step (the decoded source to the largest size): Lanczos3 for luma (and
/// gray/RGB); for chroma, Mitchell when the source's is subsampled, Lanczos3 when it is at full
/// resolution (4:4:4). Measured on the tuning half of bench/photos against libvips
/// (docs/BENCHMARKS.md): Catmull-Rom luma loses 0.0014-0.0023 of SSIM on Y, R, G and B at
/// every size; Box chroma loses 0.0008 on B at 1080. Mitchell, Bilinear, Hamming and
/// Catmull-Rom chroma are within 0.0004 of each other on every channel: Mitchell keeps Cb and
/// Cr at libvips' level with 0.3 % fewer bytes than Catmull-Rom. Full-resolution chroma holds
/// detail as luma does: by class of source (bench/photos/classes), Mitchell left 4:4:4 sources'
/// Cb and Cr 0.0004-0.0008 under libvips' in every ratio class, Lanczos3 within 0.0002 or above
/// (Catmull-Rom within 0.0003), for ~1.5 % more engine CPU on those sources.
fn first_step(source: &Pixels) -> planes::Filters {
    let full_chroma = matches!(source, Pixels::Yuv { y, u, .. }
        if u.width * 2 > y.width && u.height * 2 > y.height);
    planes::Filters {
        luma: planes::lanczos3(),
        chroma: if full_chroma {
            planes::lanczos3()
        } else {
            fast_image_resize::FilterType::Mitchell
        },
    }
}

/// Kernels of the cascaded steps (each smaller size from the previous one): Lanczos3 for luma,
/// Catmull-Rom for chroma. A softer kernel compounds from step to step: Hamming luma loses
/// 0.004-0.005 at 720 and 360, Box chroma 0.0065 on B at 360, Hamming chroma 0.0015 on Cb.
fn cascade() -> planes::Filters {
    planes::Filters {
        luma: planes::lanczos3(),
        chroma: fast_image_resize::FilterType::CatmullRom,
    }
}

/// Renditions of at most this many pixels (360p of any aspect up to ~3:1) get fitted Huffman
/// tables, as do re-encodes at the source's own size (no resize was paid for): ~2.5 % fewer
/// bytes where the extra pass costs least (see `encode::Huffman`).
const FITTED_HUFFMAN_MAX_PIXELS: u64 = 400_000;
