//! JPEG: a marker scan of our own for dimensions and metadata (bounded, no allocation beyond
//! the ICC profile), then libjpeg-turbo for pixels, with DCT-domain downscaling and, for
//! YCbCr sources, straight to planar YCbCr so no colour conversion or chroma resampling runs.

use turbojpeg::{Colorspace, Decompressor, PixelFormat, ScalingFactor, Subsamp, YuvImage};

use crate::EngineError;
use crate::icc;
pub use crate::jpeg_markers::{JpegInfo, scan};
use crate::planes::{Pixels, Plane};
use tirage_core::codes::PhotoWarning;

/// Most progressive scans we decode: a crafted progressive JPEG with thousands of tiny scans
/// costs minutes of CPU for a few kilobytes (a known libjpeg denial of service).
const SCAN_LIMIT: u32 = 500;

fn corrupt(what: &str) -> EngineError {
    EngineError::CorruptImage(what.to_string())
}

/// How much of the shrink the DCT scale leaves to the Lanczos3 resize, at least. Decoded
/// straight at the target's size, a DCT-scaled frame keeps visibly less fine luma detail than
/// a Lanczos3 shrink of a larger frame: measured by class of source-to-target ratio (issue
/// #26, docs/BENCHMARKS.md), leaving 1× cost up to 0.010 of Y SSIM against libvips on a
/// fine-textured 4K photo at 1080, leaving 2× nothing in any class. libvips leaves 2× too.
pub const RESAMPLE_SHARE: u32 = 2;

/// The smallest n/8 (n = 1..=8) at which a `width`×`height` frame still covers
/// [`RESAMPLE_SHARE`] × `target_w`×`target_h`, as libjpeg rounds scaled sizes (up); 5/8..7/8
/// become 8/8.
pub fn pick_scale(width: u32, height: u32, target_w: u32, target_h: u32) -> ScalingFactor {
    let scaled = |d: u32, n: u32| (u64::from(d) * u64::from(n)).div_ceil(8);
    let (min_w, min_h) = (
        u64::from(target_w) * u64::from(RESAMPLE_SHARE),
        u64::from(target_h) * u64::from(RESAMPLE_SHARE),
    );
    let n = (1..=8u32)
        .find(|&n| scaled(width, n) >= min_w && scaled(height, n) >= min_h)
        .unwrap_or(8);
    // libjpeg-turbo's 5/8..7/8 IDCTs have no SIMD version: measured on the benchmark corpus, a
    // full SIMD decode plus the longer resize is ~2 % less CPU overall than a 6/8 decode (and
    // +0.0002 of mean SSIM), for ~8 MB more peak memory on a 1600p photo.
    let n = if (5..=7).contains(&n) { 8 } else { n };
    // libjpeg-turbo lists its factors in lowest terms (1/2, not 4/8) and matches exactly.
    let g = gcd(n, 8);
    ScalingFactor::new((n / g) as usize, (8 / g) as usize)
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a } else { gcd(b, a % b) }
}

fn tj(e: turbojpeg::Error) -> EngineError {
    EngineError::CorruptImage(e.to_string())
}

/// libjpeg's warnings (jerror.h's `JWRN_*` messages): the decode ran to its end and the
/// buffer holds the image, with whatever could not be decoded left mid-grey. The `turbojpeg`
/// crate reports them as errors, without TurboJPEG's error code, so they are told apart by
/// message. A truncated scan is one of them ("Premature end of JPEG file"): like libvips
/// (`fail_on` none, its default) and browsers, the photo is shown with its missing part grey
/// rather than refused.
const WARNINGS: &[&str] = &[
    "Corrupt JPEG data",
    "Premature end of JPEG file",
    "Warning: unknown JFIF revision number",
    "Unknown Adobe color transform code",
    "Inconsistent progression sequence",
    "Invalid SOS parameters for sequential JPEG",
    "Application transferred too many scanlines",
];

/// What libjpeg says when the data ends before the image does.
const TRUNCATED: &str = "Premature end of JPEG file";

/// A decode's result with libjpeg's warnings made what they are: not failures. A truncated
/// scan is told to the photo's owner ([`PhotoWarning::Truncated`], added to `warnings`).
fn tolerate(
    result: turbojpeg::Result<()>,
    warnings: &mut Vec<PhotoWarning>,
) -> Result<(), EngineError> {
    match result {
        Err(turbojpeg::Error::TurboJpegError(msg))
            if WARNINGS.iter().any(|w| msg.starts_with(w)) =>
        {
            if msg.starts_with(TRUNCATED) {
                warnings.push(PhotoWarning::Truncated);
            }
            Ok(())
        }
        other => other.map_err(tj),
    }
}

/// Decodes at the smallest DCT scale that still leaves [`RESAMPLE_SHARE`] of the shrink to
/// `target_w`×`target_h` (stored orientation) to the resize.
/// With `planar` and a YCbCr or grayscale source whose profile (if any) is sRGB, returns the
/// planes as stored; otherwise RGB, converted to sRGB when it carries another profile.
pub fn decode(
    data: &[u8],
    info: &JpegInfo,
    target_w: u32,
    target_h: u32,
    planar: bool,
    warnings: &mut Vec<PhotoWarning>,
) -> Result<Pixels, EngineError> {
    let cleaned = info.clean_stream(data);
    let data = &cleaned[..];
    let mut d = Decompressor::new().map_err(tj)?;
    d.set_scan_limit(SCAN_LIMIT).map_err(tj)?;
    let header = d.read_header(data).map_err(tj)?;
    if header.width as u64 != u64::from(info.width)
        || header.height as u64 != u64::from(info.height)
    {
        return Err(corrupt("frame size disagrees with the decoder"));
    }
    if header.is_lossless {
        return Err(EngineError::UnsupportedFormat);
    }
    let factor = pick_scale(info.width, info.height, target_w, target_h);
    d.set_scaling_factor(factor).map_err(tj)?;
    let (w, h) = (factor.scale(header.width), factor.scale(header.height));

    let profile = info.icc.as_deref().and_then(icc::Profile::parse);
    match header.colorspace {
        Colorspace::CMYK | Colorspace::YCCK => {
            let mut px = vec![0u8; w * h * 4];
            let img = turbojpeg::Image {
                pixels: &mut px[..],
                width: w,
                pitch: w * 4,
                height: h,
                format: PixelFormat::CMYK,
            };
            tolerate(d.decompress(data, img), warnings)?;
            let rgb = icc::cmyk_to_srgb(&px, profile.as_ref(), info.adobe)?;
            Ok(Pixels::Rgb(Plane::new(w as u32, h as u32, 3, rgb)))
        }
        Colorspace::Gray => {
            // Gray profiles are close enough to sRGB's tone curve; converting would cost an
            // expansion to RGB for no visible change.
            let mut px = vec![0u8; w * h];
            let img = turbojpeg::Image {
                pixels: &mut px[..],
                width: w,
                pitch: w,
                height: h,
                format: PixelFormat::GRAY,
            };
            tolerate(d.decompress(data, img), warnings)?;
            Ok(Pixels::Gray(Plane::new(w as u32, h as u32, 1, px)))
        }
        cs => {
            let needs_icc = profile.as_ref().is_some_and(|p| !p.is_srgb());
            let yuv_ok = matches!(
                header.subsamp,
                Subsamp::None | Subsamp::Sub2x1 | Subsamp::Sub2x2 | Subsamp::Sub1x2
            );
            if planar && cs == Colorspace::YCbCr && yuv_ok && !needs_icc {
                return decode_planar(&mut d, data, w, h, header.subsamp, warnings);
            }
            let mut px = vec![0u8; w * h * 3];
            let img = turbojpeg::Image {
                pixels: &mut px[..],
                width: w,
                pitch: w * 3,
                height: h,
                format: PixelFormat::RGB,
            };
            tolerate(d.decompress(data, img), warnings)?;
            if let Some(p) = profile.as_ref().filter(|p| !p.is_srgb()) {
                p.rgb_to_srgb(&mut px)?;
            }
            Ok(Pixels::Rgb(Plane::new(w as u32, h as u32, 3, px)))
        }
    }
}

fn decode_planar(
    d: &mut Decompressor,
    data: &[u8],
    w: usize,
    h: usize,
    subsamp: Subsamp,
    warnings: &mut Vec<PhotoWarning>,
) -> Result<Pixels, EngineError> {
    let len = turbojpeg::yuv_pixels_len(w, 1, h, subsamp).map_err(tj)?;
    let mut yuv = YuvImage {
        pixels: vec![0u8; len],
        width: w,
        align: 1,
        height: h,
        subsamp,
    };
    tolerate(d.decompress_to_yuv(data, yuv.as_deref_mut()), warnings)?;
    // libjpeg-turbo pads every plane to whole MCUs: luma to a multiple of the chroma block.
    let (bw, bh) = (subsamp.width(), subsamp.height());
    let (yw, yh) = (w.next_multiple_of(bw), h.next_multiple_of(bh));
    let (cw, ch) = (yw / bw, yh / bh);
    if yw * yh + 2 * cw * ch > yuv.pixels.len() {
        return Err(corrupt("unexpected planar layout"));
    }
    // Chroma copied out (half of luma's bytes at 4:2:0), luma kept in place.
    let mut y = yuv.pixels;
    let u = y[yw * yh..][..cw * ch].to_vec();
    let v = y[yw * yh + cw * ch..][..cw * ch].to_vec();
    y.truncate(yw * yh);
    let (fw, fh) = (w as f64, h as f64);
    Ok(Pixels::Yuv {
        y: Plane::new(yw as u32, yh as u32, 1, y).with_valid(fw, fh),
        u: Plane::new(cw as u32, ch as u32, 1, u).with_valid(fw / bw as f64, fh / bh as f64),
        v: Plane::new(cw as u32, ch as u32, 1, v).with_valid(fw / bw as f64, fh / bh as f64),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_leaves_twice_the_target_to_the_resize() {
        let scale = |w, h, tw, th| {
            let f = pick_scale(w, h, tw, th);
            (f.num(), f.denom())
        };
        // 4K to 1080: a ratio of 2 leaves nothing to shrink in the DCT.
        assert_eq!(scale(3840, 2160, 1920, 1080), (1, 1));
        // 12 MP to 1080 would need 6/8, which has no SIMD IDCT: decoded in full.
        assert_eq!(scale(4000, 3000, 1440, 1080), (1, 1));
        // To 360 only: 4K at 3/8 (1440×810), 12 MP at a quarter (1000×750).
        assert_eq!(scale(3840, 2160, 640, 360), (3, 8));
        assert_eq!(scale(4000, 3000, 480, 360), (1, 4));
        // 48 MP to 1080: 3/8 decodes 3000×2250, 2.08× the target.
        assert_eq!(scale(8000, 6000, 1440, 1080), (3, 8));
        // 16× and more: an eighth.
        assert_eq!(scale(8000, 6000, 480, 360), (1, 8));
        // Never beyond the source.
        assert_eq!(scale(100, 100, 200, 200), (1, 1));
        // Every pick leaves the resize at least twice the target, or decodes in full.
        for (w, h) in [
            (3840, 2160),
            (4032, 3024),
            (6000, 4000),
            (8192, 4608),
            (2560, 1600),
        ] {
            for short in [1080, 720, 360] {
                let (tw, th) = if w >= h {
                    (w * short / h, short)
                } else {
                    (short, h * short / w)
                };
                let f = pick_scale(w, h, tw, th);
                let full = f.num() == f.denom();
                assert!(
                    full || (f.scale(h as usize) as u32) >= 2 * th,
                    "{w}x{h} to {short}"
                );
            }
        }
    }
}
