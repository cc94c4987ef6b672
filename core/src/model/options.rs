//! A batch's resize options: the sizes, format, quality and metadata every photo of the
//! batch is turned into, their bounds, and the per-field refusal when a request asks for
//! something else.

use serde::{Deserialize, Serialize};

/// Smallest and largest rendition size (short side, pixels) a batch may ask for.
pub const MIN_SIZE: u32 = 16;
pub const MAX_SIZE: u32 = 8192;
/// Most renditions one photo may produce.
pub const MAX_SIZES: usize = 8;
pub const DEFAULT_SIZES: [u32; 3] = [1080, 720, 360];
pub const DEFAULT_QUALITY: u8 = 85;
/// Encoder quality bounds.
pub const MIN_QUALITY: u8 = 1;
pub const MAX_QUALITY: u8 = 100;

/// The encoding of a batch's renditions. Its JSON name ([`OutputFormat::name`]) is what the
/// API, the CLI and the page accept; [`OutputFormat::ALL`] is the one list of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    #[default]
    Jpeg,
    Webp,
    Png,
    /// AV1 in HEIF (libheif with libaom), 4:2:0.
    Avif,
}

impl OutputFormat {
    /// Every format, in the order documents list them.
    pub const ALL: [OutputFormat; 4] = [
        OutputFormat::Jpeg,
        OutputFormat::Webp,
        OutputFormat::Png,
        OutputFormat::Avif,
    ];

    /// The name the API and the CLI read and write (the serde name).
    pub fn name(self) -> &'static str {
        match self {
            OutputFormat::Jpeg => "jpeg",
            OutputFormat::Webp => "webp",
            OutputFormat::Png => "png",
            OutputFormat::Avif => "avif",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            OutputFormat::Jpeg => "jpg",
            OutputFormat::Webp => "webp",
            OutputFormat::Png => "png",
            OutputFormat::Avif => "avif",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            OutputFormat::Jpeg => "image/jpeg",
            OutputFormat::Webp => "image/webp",
            OutputFormat::Png => "image/png",
            OutputFormat::Avif => "image/avif",
        }
    }
}

impl std::str::FromStr for OutputFormat {
    type Err = InvalidOptions;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("jpg") {
            return Ok(OutputFormat::Jpeg);
        }
        by_name(s, &OutputFormat::ALL, |f| f.name(), "format").map_err(InvalidOptions::Format)
    }
}

/// The one of `all` named `s` (any case), or a message listing every name.
fn by_name<T: Copy>(
    s: &str,
    all: &[T],
    name: fn(T) -> &'static str,
    what: &str,
) -> Result<T, String> {
    let s = s.to_ascii_lowercase();
    all.iter().copied().find(|v| name(*v) == s).ok_or_else(|| {
        let names: Vec<&str> = all.iter().map(|v| name(*v)).collect();
        format!("unknown {what} {s:?}: expected one of {}", names.join(", "))
    })
}

/// What of the original's metadata each rendition keeps. Its JSON name
/// ([`MetadataChoice::name`]) is what the API, the CLI and the page accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetadataChoice {
    /// Nothing: no EXIF, no ICC profile, no comment.
    #[default]
    Strip,
    /// The original's EXIF Artist and Copyright (nothing else: never GPS) and an sRGB ICC
    /// profile.
    Copyright,
}

impl MetadataChoice {
    /// Every choice, in the order documents list them.
    pub const ALL: [MetadataChoice; 2] = [MetadataChoice::Strip, MetadataChoice::Copyright];

    /// The name the API and the CLI read and write (the serde name).
    pub fn name(self) -> &'static str {
        match self {
            MetadataChoice::Strip => "strip",
            MetadataChoice::Copyright => "copyright",
        }
    }
}

impl std::str::FromStr for MetadataChoice {
    type Err = InvalidOptions;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        by_name(s, &MetadataChoice::ALL, |m| m.name(), "metadata choice")
            .map_err(InvalidOptions::Metadata)
    }
}

/// Why a set of resize options was refused: the field at fault, with a message meant for
/// the user. Each entry point answers it its own way (the API with one code per field).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidOptions {
    #[error("{0}")]
    Sizes(String),
    #[error("{0}")]
    Quality(String),
    #[error("{0}")]
    Format(String),
    #[error("{0}")]
    Metadata(String),
}

/// What every photo of a batch is turned into.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchOptions {
    /// Short side of each rendition in pixels; never upscaled.
    pub sizes: Vec<u32>,
    pub format: OutputFormat,
    /// Encoder quality, 1..=100 (ignored for PNG).
    pub quality: u8,
    /// Absent in jobs and batches stored before the choice existed: they strip.
    #[serde(default)]
    pub metadata: MetadataChoice,
}

impl Default for BatchOptions {
    fn default() -> Self {
        BatchOptions {
            sizes: DEFAULT_SIZES.to_vec(),
            format: OutputFormat::Jpeg,
            quality: DEFAULT_QUALITY,
            metadata: MetadataChoice::Strip,
        }
    }
}

impl BatchOptions {
    /// Checks the limits every entry point (HTTP, CLI, worker) enforces before any work starts.
    pub fn validate(&self) -> Result<(), InvalidOptions> {
        BatchOptions::check_sizes(&self.sizes)?;
        BatchOptions::check_quality(self.quality)
    }

    /// Sizes as a client sent them (any integers): 1 to [`MAX_SIZES`] distinct values in
    /// [`MIN_SIZE`]`..=`[`MAX_SIZE`].
    pub fn parse_sizes(sizes: &[i64]) -> Result<Vec<u32>, InvalidOptions> {
        let sizes = sizes
            .iter()
            .map(|&s| u32::try_from(s).map_err(|_| out_of_sizes(s)))
            .collect::<Result<Vec<u32>, _>>()?;
        BatchOptions::check_sizes(&sizes)?;
        Ok(sizes)
    }

    /// A quality as a client sent it: [`MIN_QUALITY`]`..=`[`MAX_QUALITY`].
    pub fn parse_quality(quality: i64) -> Result<u8, InvalidOptions> {
        let q = u8::try_from(quality).map_err(|_| out_of_quality(quality))?;
        BatchOptions::check_quality(q)?;
        Ok(q)
    }

    fn check_sizes(sizes: &[u32]) -> Result<(), InvalidOptions> {
        if sizes.is_empty() || sizes.len() > MAX_SIZES {
            return Err(InvalidOptions::Sizes(format!(
                "sizes must list 1 to {MAX_SIZES} sizes, got {}",
                sizes.len()
            )));
        }
        if let Some(bad) = sizes.iter().find(|s| !(MIN_SIZE..=MAX_SIZE).contains(*s)) {
            return Err(out_of_sizes(i64::from(*bad)));
        }
        let mut seen = sizes.to_vec();
        seen.sort_unstable();
        seen.dedup();
        if seen.len() != sizes.len() {
            return Err(InvalidOptions::Sizes("sizes must not repeat".into()));
        }
        Ok(())
    }

    fn check_quality(quality: u8) -> Result<(), InvalidOptions> {
        if (MIN_QUALITY..=MAX_QUALITY).contains(&quality) {
            Ok(())
        } else {
            Err(out_of_quality(i64::from(quality)))
        }
    }
}

fn out_of_sizes(size: i64) -> InvalidOptions {
    InvalidOptions::Sizes(format!("size {size} is outside {MIN_SIZE}..={MAX_SIZE}"))
}

fn out_of_quality(quality: i64) -> InvalidOptions {
    InvalidOptions::Quality(format!(
        "quality {quality} is outside {MIN_QUALITY}..={MAX_QUALITY}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn defaults_are_valid_and_limits_are_enforced() {
        assert!(BatchOptions::default().validate().is_ok());
        let with = |sizes: Vec<u32>, quality| BatchOptions {
            sizes,
            quality,
            ..BatchOptions::default()
        };
        assert!(with(vec![], 85).validate().is_err());
        assert!(with(vec![16; 1], 85).validate().is_ok());
        assert!(with(vec![15], 85).validate().is_err());
        assert!(with(vec![8193], 85).validate().is_err());
        assert!(
            with((1..=9).map(|i| i * 100).collect(), 85)
                .validate()
                .is_err()
        );
        assert!(with(vec![720, 720], 85).validate().is_err());
        assert!(with(vec![720], 0).validate().is_err());
        assert!(with(vec![720], 101).validate().is_err());
    }
    #[test]
    fn formats_round_trip_as_lowercase_json() {
        for format in OutputFormat::ALL {
            let json = serde_json::to_string(&format).unwrap();
            assert_eq!(json, format!("\"{}\"", format.name()));
            assert_eq!(format.name().parse::<OutputFormat>(), Ok(format));
        }
        assert_eq!("AVIF".parse::<OutputFormat>(), Ok(OutputFormat::Avif));
        assert_eq!(OutputFormat::Avif.content_type(), "image/avif");
        assert_eq!("JPG".parse::<OutputFormat>(), Ok(OutputFormat::Jpeg));
        assert!("gif".parse::<OutputFormat>().is_err());
    }
    #[test]
    fn metadata_choices_round_trip_and_older_options_strip() {
        for m in MetadataChoice::ALL {
            assert_eq!(serde_json::to_value(m).unwrap(), m.name());
            assert_eq!(m.name().parse::<MetadataChoice>(), Ok(m));
        }
        assert!("gps".parse::<MetadataChoice>().is_err());
        let older = serde_json::json!({"sizes": [720], "format": "jpeg", "quality": 85});
        let options: BatchOptions = serde_json::from_value(older).unwrap();
        assert_eq!(options.metadata, MetadataChoice::Strip);
    }
}
