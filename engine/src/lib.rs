//! Tirage's resize engine: one photo's bytes and options in, one encoded rendition per size
//! out. This is the whole public API the workers and the CLI use.
//!
//! (Interface fixed first so the worker can be built against it; the implementation is the
//! subject of the engine issue.)

use tirage_shared::{BatchOptions, OutputFormat};

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
}

/// Why a photo could not be resized. Every variant is permanent: the same bytes fail the
/// same way, so callers never retry them.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("not a supported image format (JPEG, PNG, WebP or GIF)")]
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
    /// Stable, snake_case error code shown to users and stored with failed photos.
    pub fn code(&self) -> &'static str {
        match self {
            EngineError::UnsupportedFormat => "unsupported_format",
            EngineError::CorruptImage(_) => "corrupt_image",
            EngineError::TooManyPixels { .. } => "too_many_pixels",
            EngineError::TooLarge { .. } => "too_large",
            EngineError::InvalidOptions(_) => "invalid_options",
        }
    }
}

/// Resizes one photo to every size in `options`. CPU-bound: call it from a blocking pool.
pub fn resize(
    input: &[u8],
    options: &BatchOptions,
    limits: &Limits,
) -> Result<Resized, EngineError> {
    if input.len() as u64 > limits.max_bytes {
        return Err(EngineError::TooLarge {
            size: input.len() as u64,
            limit: limits.max_bytes,
        });
    }
    options
        .validate()
        .map_err(|e| EngineError::InvalidOptions(e.0))?;
    Err(EngineError::UnsupportedFormat)
}
