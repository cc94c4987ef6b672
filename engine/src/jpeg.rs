//! JPEG: a marker scan of our own for dimensions and metadata (bounded, no allocation beyond
//! the ICC profile), then libjpeg-turbo for pixels, with DCT-domain downscaling and, for
//! YCbCr sources, straight to planar YCbCr so no colour conversion or chroma resampling runs.

use turbojpeg::{Colorspace, Decompressor, PixelFormat, ScalingFactor, Subsamp, YuvImage};

use crate::EngineError;
use crate::exif::orientation_from_tiff;
use crate::icc;
use crate::planes::{Pixels, Plane};

/// Most progressive scans we decode: a crafted progressive JPEG with thousands of tiny scans
/// costs minutes of CPU for a few kilobytes (a known libjpeg denial of service).
const SCAN_LIMIT: u32 = 500;

/// What the header tells before any pixel is decoded.
#[derive(Debug, Clone, Default)]
pub struct JpegInfo {
    pub width: u32,
    pub height: u32,
    pub components: u8,
    pub orientation: u8,
    pub icc: Option<Vec<u8>>,
    /// An Adobe APP14 segment: CMYK samples are stored inverted.
    pub adobe: bool,
}

fn corrupt(what: &str) -> EngineError {
    EngineError::CorruptImage(what.to_string())
}

/// Walks the markers up to the first scan. Reads the frame size, EXIF orientation, ICC chunks
/// and the Adobe marker.
pub fn scan(data: &[u8]) -> Result<JpegInfo, EngineError> {
    let mut info = JpegInfo {
        orientation: 1,
        ..JpegInfo::default()
    };
    let mut icc_chunks: Vec<(u8, u8, &[u8])> = Vec::new();
    let mut frame = false;
    let mut pos = 2; // after SOI
    loop {
        // Markers may be preceded by any number of 0xFF fill bytes.
        if data.get(pos) != Some(&0xFF) {
            return Err(corrupt("expected a JPEG marker"));
        }
        while data.get(pos) == Some(&0xFF) {
            pos += 1;
        }
        let marker = *data
            .get(pos)
            .ok_or_else(|| corrupt("truncated before the first scan"))?;
        pos += 1;
        match marker {
            0xD0..=0xD7 | 0x01 => continue,
            0xD9 => return Err(corrupt("no image data")),
            _ => {}
        }
        let len_bytes = data
            .get(pos..pos + 2)
            .ok_or_else(|| corrupt("truncated marker segment"))?;
        let len = usize::from(u16::from_be_bytes([len_bytes[0], len_bytes[1]]));
        if len < 2 {
            return Err(corrupt("bad marker segment length"));
        }
        let seg = data
            .get(pos + 2..pos + len)
            .ok_or_else(|| corrupt("truncated marker segment"))?;
        pos += len;
        match marker {
            0xDA => break,
            0xC0..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC) => {
                if seg.len() < 6 {
                    return Err(corrupt("short frame header"));
                }
                info.height = u32::from(u16::from_be_bytes([seg[1], seg[2]]));
                info.width = u32::from(u16::from_be_bytes([seg[3], seg[4]]));
                info.components = seg[5];
                frame = true;
            }
            0xE1 if seg.starts_with(b"Exif\0\0") => {
                if let Some(o) = orientation_from_tiff(&seg[6..]) {
                    info.orientation = o;
                }
            }
            0xE2 if seg.starts_with(b"ICC_PROFILE\0") && seg.len() >= 14 => {
                icc_chunks.push((seg[12], seg[13], &seg[14..]));
            }
            0xEE if seg.starts_with(b"Adobe") => info.adobe = true,
            _ => {}
        }
    }
    if !frame {
        return Err(corrupt("no frame header before the first scan"));
    }
    if info.width == 0 || info.height == 0 {
        return Err(corrupt("zero width or height"));
    }
    info.icc = assemble_icc(icc_chunks);
    Ok(info)
}

/// Concatenates ICC chunks by sequence number; an incomplete set is ignored rather than
/// failing the photo (browsers do the same).
fn assemble_icc(mut chunks: Vec<(u8, u8, &[u8])>) -> Option<Vec<u8>> {
    let total = chunks.first()?.1;
    chunks.sort_by_key(|c| c.0);
    let complete = chunks.len() == usize::from(total)
        && chunks
            .iter()
            .enumerate()
            .all(|(i, c)| usize::from(c.0) == i + 1 && c.1 == total);
    complete.then(|| chunks.iter().flat_map(|c| c.2.iter().copied()).collect())
}

/// The smallest n/8 (n = 1..=8) at which a `width`×`height` frame still covers `min_w`×`min_h`,
/// as libjpeg rounds scaled sizes (up); 5/8..7/8 become 8/8.
pub fn pick_scale(width: u32, height: u32, min_w: u32, min_h: u32) -> ScalingFactor {
    let scaled = |d: u32, n: u32| (u64::from(d) * u64::from(n)).div_ceil(8);
    let n = (1..=8u32)
        .find(|&n| scaled(width, n) >= u64::from(min_w) && scaled(height, n) >= u64::from(min_h))
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

/// Decodes at the smallest DCT scale that still covers `min_w`×`min_h` (stored orientation).
/// With `planar` and a YCbCr or grayscale source whose profile (if any) is sRGB, returns the
/// planes as stored; otherwise RGB, converted to sRGB when it carries another profile.
pub fn decode(
    data: &[u8],
    info: &JpegInfo,
    min_w: u32,
    min_h: u32,
    planar: bool,
) -> Result<Pixels, EngineError> {
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
    let factor = pick_scale(info.width, info.height, min_w, min_h);
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
            d.decompress(data, img).map_err(tj)?;
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
            d.decompress(data, img).map_err(tj)?;
            Ok(Pixels::Gray(Plane::new(w as u32, h as u32, 1, px)))
        }
        cs => {
            let needs_icc = profile.as_ref().is_some_and(|p| !p.is_srgb());
            let yuv_ok = matches!(
                header.subsamp,
                Subsamp::None | Subsamp::Sub2x1 | Subsamp::Sub2x2 | Subsamp::Sub1x2
            );
            if planar && cs == Colorspace::YCbCr && yuv_ok && !needs_icc {
                return decode_planar(&mut d, data, w, h, header.subsamp);
            }
            let mut px = vec![0u8; w * h * 3];
            let img = turbojpeg::Image {
                pixels: &mut px[..],
                width: w,
                pitch: w * 3,
                height: h,
                format: PixelFormat::RGB,
            };
            d.decompress(data, img).map_err(tj)?;
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
) -> Result<Pixels, EngineError> {
    let len = turbojpeg::yuv_pixels_len(w, 1, h, subsamp).map_err(tj)?;
    let mut yuv = YuvImage {
        pixels: vec![0u8; len],
        width: w,
        align: 1,
        height: h,
        subsamp,
    };
    d.decompress_to_yuv(data, yuv.as_deref_mut()).map_err(tj)?;
    // libjpeg-turbo pads every plane to whole MCUs: luma to a multiple of the chroma block.
    let (bw, bh) = (subsamp.width(), subsamp.height());
    let (yw, yh) = (w.next_multiple_of(bw), h.next_multiple_of(bh));
    let (cw, ch) = (yw / bw, yh / bh);
    if yw * yh + 2 * cw * ch > yuv.pixels.len() {
        return Err(corrupt("unexpected planar layout"));
    }
    let mut y = yuv.pixels;
    let mut u = y.split_off(yw * yh);
    let mut v = u.split_off(cw * ch);
    v.truncate(cw * ch);
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
    fn scale_is_the_smallest_that_covers() {
        let f = pick_scale(3840, 2160, 1920, 1080);
        assert_eq!((f.num(), f.denom()), (1, 2));
        let f = pick_scale(2400, 1600, 1620, 1080);
        assert_eq!((f.num(), f.denom()), (1, 1));
        let f = pick_scale(4000, 3000, 1440, 1080);
        assert_eq!((f.num(), f.denom()), (3, 8));
        let f = pick_scale(100, 100, 200, 200);
        assert_eq!((f.num(), f.denom()), (1, 1));
        let f = pick_scale(4000, 3000, 480, 360);
        assert_eq!((f.num(), f.denom()), (1, 8));
    }

    #[test]
    fn scan_never_panics_on_truncation() {
        let data = b"\xFF\xD8\xFF\xE1\x00\x10Exif\0\0II*\0\x08\0\0\0\xFF\xC0\x00\x11\x08\x00\x10\x00\x20\x03";
        for cut in 0..data.len() {
            assert!(scan(&data[..cut]).is_err());
        }
    }
}
