//! ICC profiles → sRGB with Little CMS 2. A profile that does not parse is ignored, as browsers
//! do: a broken tag is no reason to lose the photo.

use lcms2::{ColorSpaceSignature, InfoType, Intent, Locale, PixelFormat, Transform};

use crate::EngineError;

pub struct Profile(lcms2::Profile);

impl Profile {
    pub fn parse(bytes: &[u8]) -> Option<Profile> {
        lcms2::Profile::new_icc(bytes).ok().map(Profile)
    }

    /// sRGB under any of its usual names (and profiles that do not describe an RGB space, so
    /// nothing converts them wrongly). Converting sRGB to itself would only cost time.
    pub fn is_srgb(&self) -> bool {
        if self.0.color_space() != ColorSpaceSignature::RgbData {
            return true;
        }
        let desc = self
            .0
            .info(InfoType::Description, Locale::none())
            .unwrap_or_default()
            .to_ascii_lowercase();
        desc.contains("srgb") || desc.contains("iec 61966-2")
    }

    /// Converts packed 8-bit RGB in place.
    pub fn rgb_to_srgb(&self, rgb: &mut [u8]) -> Result<(), EngineError> {
        self.to_srgb_in_place(rgb, PixelFormat::RGB_8, 3)
    }

    /// Converts packed 8-bit RGBA in place (alpha untouched).
    pub fn rgba_to_srgb(&self, rgba: &mut [u8]) -> Result<(), EngineError> {
        self.to_srgb_in_place(rgba, PixelFormat::RGBA_8, 4)
    }

    fn to_srgb_in_place(
        &self,
        px: &mut [u8],
        format: PixelFormat,
        bpp: usize,
    ) -> Result<(), EngineError> {
        if self.0.color_space() != ColorSpaceSignature::RgbData || !px.len().is_multiple_of(bpp) {
            return Ok(());
        }
        let t: Transform<u8, u8> = Transform::new(
            &self.0,
            format,
            &lcms2::Profile::new_srgb(),
            format,
            Intent::Perceptual,
        )
        .map_err(|e| EngineError::CorruptImage(format!("ICC profile: {e}")))?;
        t.transform_in_place(px);
        Ok(())
    }
}

/// CMYK (as libjpeg returns it) to sRGB RGB. With a CMYK profile, Little CMS does it; without
/// one, the naive formula every viewer uses. Adobe's writers store the samples inverted.
pub fn cmyk_to_srgb(
    cmyk: &[u8],
    profile: Option<&Profile>,
    adobe: bool,
) -> Result<Vec<u8>, EngineError> {
    let pixels = cmyk.len() / 4;
    let mut rgb = vec![0u8; pixels * 3];
    if let Some(p) = profile.filter(|p| p.0.color_space() == ColorSpaceSignature::CmykData) {
        let format = if adobe {
            PixelFormat::CMYK_8_REV
        } else {
            PixelFormat::CMYK_8
        };
        let t: Transform<u8, u8> = Transform::new(
            &p.0,
            format,
            &lcms2::Profile::new_srgb(),
            PixelFormat::RGB_8,
            Intent::Perceptual,
        )
        .map_err(|e| EngineError::CorruptImage(format!("ICC profile: {e}")))?;
        t.transform_pixels(&cmyk[..pixels * 4], &mut rgb);
        return Ok(rgb);
    }
    for (src, dst) in cmyk.chunks_exact(4).zip(rgb.chunks_exact_mut(3)) {
        let (c, m, y, k) = if adobe {
            (src[0], src[1], src[2], src[3])
        } else {
            (255 - src[0], 255 - src[1], 255 - src[2], 255 - src[3])
        };
        // With inverted samples, 255 means no ink: each channel is (1 - C)(1 - K).
        let mul = |a: u8, b: u8| ((u16::from(a) * u16::from(b) + 127) / 255) as u8;
        dst[0] = mul(c, k);
        dst[1] = mul(m, k);
        dst[2] = mul(y, k);
    }
    Ok(rgb)
}
