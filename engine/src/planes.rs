//! Pixel buffers, resizing (fast_image_resize, SIMD) and EXIF orientation.

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{Filter, FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};

use crate::EngineError;
use crate::transpose::{transpose, transpose_into};

/// One tightly packed 8-bit plane or interleaved image.
#[derive(Debug, Clone)]
pub struct Plane {
    pub width: u32,
    pub height: u32,
    /// Bytes per pixel: 1 (a Y, U, V or gray plane), 3 (RGB) or 4 (RGBA).
    pub bpp: u8,
    pub data: Vec<u8>,
    /// The part of the buffer that is image, from the top-left corner, when the decoder padded
    /// the plane to whole MCUs (fractional for subsampled chroma of an odd-sized image).
    pub valid: Option<(f64, f64)>,
}

impl Plane {
    pub fn new(width: u32, height: u32, bpp: u8, data: Vec<u8>) -> Plane {
        Plane {
            width,
            height,
            bpp,
            data,
            valid: None,
        }
    }

    /// The same plane, marked as holding only `width`×`height` of image.
    pub fn with_valid(mut self, width: f64, height: f64) -> Plane {
        if (width, height) != (f64::from(self.width), f64::from(self.height)) {
            self.valid = Some((width, height));
        }
        self
    }

    /// Image size of the plane in whole pixels.
    pub fn image_size(&self) -> (u32, u32) {
        match self.valid {
            Some((w, h)) => (w.ceil() as u32, h.ceil() as u32),
            None => (self.width, self.height),
        }
    }

    /// A copy padded by edge replication to `width`×`height` (≥ the current size), as
    /// libjpeg-turbo wants planes of whole chroma blocks.
    pub fn padded(&self, width: u32, height: u32) -> Plane {
        if (width, height) == (self.width, self.height) || self.width == 0 || self.height == 0 {
            return self.clone();
        }
        let bpp = self.bpp as usize;
        let (sw, sh) = (self.width as usize, self.height as usize);
        let (dw, dh) = (width as usize, height as usize);
        let mut out = Vec::with_capacity(dw * dh * bpp);
        for y in 0..dh {
            let row = &self.data[y.min(sh - 1) * sw * bpp..][..sw * bpp];
            out.extend_from_slice(row);
            let last = &row[(sw - 1) * bpp..];
            for _ in sw..dw {
                out.extend_from_slice(last);
            }
        }
        Plane::new(width, height, self.bpp, out)
    }

    fn pixel_type(&self) -> PixelType {
        match self.bpp {
            1 => PixelType::U8,
            3 => PixelType::U8x3,
            _ => PixelType::U8x4,
        }
    }

    /// Resized to exactly `width`×`height` (a copy when the size already matches).
    pub fn resized(
        &self,
        resampler: &mut Resampler,
        width: u32,
        height: u32,
        filter: FilterType,
    ) -> Result<Plane, EngineError> {
        if (width, height) == (self.width, self.height) && self.valid.is_none() {
            return Ok(self.clone());
        }
        if let Some((vw, vh)) = self.valid
            && (f64::from(width), f64::from(height)) == (vw, vh)
        {
            // Same size, only padding to drop.
            let bpp = self.bpp as usize;
            let (w, stride) = (width as usize * bpp, self.width as usize * bpp);
            let data = self
                .data
                .chunks(stride)
                .take(height as usize)
                .flat_map(|row| row[..w].iter().copied())
                .collect();
            return Ok(Plane::new(width, height, self.bpp, data));
        }
        if self.bpp == 1 {
            return self.resized_by_columns(resampler, width, height, filter);
        }
        let src = ImageRef::new(self.width, self.height, &self.data, self.pixel_type())
            .map_err(internal)?;
        let mut dst = Image::new(width, height, self.pixel_type());
        // The caller picks the kernel (see `filters` in lib.rs). With alpha,
        // fast_image_resize premultiplies so transparent colours do not bleed.
        let mut options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(filter));
        if let Some((vw, vh)) = self.valid {
            options = options.crop(0.0, 0.0, vw, vh);
        }
        resampler
            .resizer
            .resize(&src, &mut dst, &options)
            .map_err(internal)?;
        Ok(Plane::new(width, height, self.bpp, dst.into_vec()))
    }

    /// A single-channel plane resized with two vertical passes: rows first, then, on the
    /// transposed result, columns, and transposed back. fast_image_resize's vertical u8 kernel
    /// works on 32 pixels per instruction, while its horizontal one on a one-byte-per-pixel plane
    /// sums each output pixel's taps across a SIMD register and reduces it (a horizontal add
    /// per pixel and scalar leftover taps): the horizontal pass was a quarter of the engine's
    /// CPU. Same coefficients, same order of passes, same rounding: the output is identical.
    fn resized_by_columns(
        &self,
        resampler: &mut Resampler,
        width: u32,
        height: u32,
        filter: FilterType,
    ) -> Result<Plane, EngineError> {
        let Resampler {
            resizer,
            rows,
            turned,
            columns,
        } = resampler;
        let (vw, vh) = self
            .valid
            .unwrap_or((f64::from(self.width), f64::from(self.height)));
        let alg = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(filter));
        let (stride, tall) = (self.width as usize, height as usize);
        // Rows: full buffer width (padding columns are dropped by the second pass' crop).
        let rows: &[u8] = if f64::from(height) == vh {
            &self.data[..stride * tall]
        } else {
            let src = ImageRef::new(self.width, self.height, &self.data, PixelType::U8)
                .map_err(internal)?;
            let buffer = scratch(rows, stride * tall);
            let mut dst = Image::from_slice_u8(self.width, height, buffer, PixelType::U8)
                .map_err(internal)?;
            let options = alg.crop(0.0, 0.0, f64::from(self.width), vh);
            resizer.resize(&src, &mut dst, &options).map_err(internal)?;
            &rows[..stride * tall]
        };
        let turned = scratch(turned, stride * tall);
        transpose_into(rows, stride, tall, turned);
        // Columns, as rows of the transposed plane (height x self.width).
        let resized: &[u8] = if f64::from(width) == vw && width == self.width {
            turned
        } else {
            let src = ImageRef::new(height, self.width, turned, PixelType::U8).map_err(internal)?;
            let len = tall * width as usize;
            let buffer = scratch(columns, len);
            let mut dst =
                Image::from_slice_u8(height, width, buffer, PixelType::U8).map_err(internal)?;
            let options = alg.crop(0.0, 0.0, f64::from(height), vw);
            resizer.resize(&src, &mut dst, &options).map_err(internal)?;
            &columns[..len]
        };
        let data = transpose(resized, tall, width as usize);
        Ok(Plane::new(width, height, 1, data))
    }

    /// Applies an EXIF orientation (1..=8), so the result displays upright.
    pub fn oriented(self, orientation: u8) -> Plane {
        if !(2..=8).contains(&orientation) {
            return self;
        }
        let (w, h, bpp) = (self.width as usize, self.height as usize, self.bpp as usize);
        let transposed = orientation >= 5;
        let (ow, oh) = if transposed { (h, w) } else { (w, h) };
        let mut out = vec![0u8; self.data.len()];
        for oy in 0..oh {
            let row = &mut out[oy * ow * bpp..(oy + 1) * ow * bpp];
            for ox in 0..ow {
                // Source pixel shown at (ox, oy).
                let (sx, sy) = match orientation {
                    2 => (w - 1 - ox, oy),
                    3 => (w - 1 - ox, h - 1 - oy),
                    4 => (ox, h - 1 - oy),
                    5 => (oy, ox),
                    6 => (oy, h - 1 - ox),
                    7 => (w - 1 - oy, h - 1 - ox),
                    _ => (w - 1 - oy, ox),
                };
                let s = (sy * w + sx) * bpp;
                row[ox * bpp..(ox + 1) * bpp].copy_from_slice(&self.data[s..s + bpp]);
            }
        }
        Plane::new(ow as u32, oh as u32, self.bpp, out)
    }
}

fn internal(e: impl std::fmt::Display) -> EngineError {
    EngineError::CorruptImage(format!("resize: {e}"))
}

/// fast_image_resize's resizer and the scratch buffers of the two-pass resize
/// (`Plane::resized_by_columns`), reused from plane to plane and size to size within one
/// photo: only each pass' final plane is a fresh allocation.
#[derive(Default)]
pub struct Resampler {
    resizer: Resizer,
    rows: Vec<u8>,
    turned: Vec<u8>,
    columns: Vec<u8>,
}

/// The first `len` bytes of `buffer`, grown (never shrunk or cleared) to hold them: every
/// byte is overwritten by the pass that takes it.
fn scratch(buffer: &mut Vec<u8>, len: usize) -> &mut [u8] {
    if buffer.len() < len {
        buffer.resize(len, 0);
    }
    &mut buffer[..len]
}

/// Resampling kernels of one resize step: luma (and gray/RGB) and YCbCr chroma.
#[derive(Debug, Clone, Copy)]
pub struct Filters {
    pub luma: FilterType,
    pub chroma: FilterType,
}

/// Lanczos3 — sinc(x)·sinc(x/3) on [-3, 3] — as fast_image_resize's `Lanczos3`, with one
/// `sin` per tap instead of two: sin(πx) = s·(3 − 4s²) for s = sin(πx/3) (the triple-angle
/// identity). The library computes every pass' coefficients afresh and they were ~4 % of the
/// engine's CPU, half of it in `sin`.
pub fn lanczos3() -> FilterType {
    fn kernel(x: f64) -> f64 {
        if x == 0.0 {
            return 1.0;
        }
        if !(-3.0..3.0).contains(&x) {
            return 0.0;
        }
        let s = (x * std::f64::consts::FRAC_PI_3).sin();
        let px = x * std::f64::consts::PI;
        3.0 * s * s * (3.0 - 4.0 * s * s) / (px * px)
    }
    // `new` only refuses a support that is not positive.
    Filter::new("Lanczos3", kernel, 3.0).map_or(FilterType::Lanczos3, FilterType::Custom)
}

/// Decoded pixels in the cheapest form the chosen output accepts.
#[derive(Debug, Clone)]
pub enum Pixels {
    /// JPEG's YCbCr planes; chroma at any subsampling on input, 4:2:0 once resized.
    Yuv {
        y: Plane,
        u: Plane,
        v: Plane,
    },
    Gray(Plane),
    Rgb(Plane),
    Rgba(Plane),
}

impl Pixels {
    /// Dimensions of the (luma) image.
    pub fn size(&self) -> (u32, u32) {
        match self {
            Pixels::Yuv { y: p, .. } | Pixels::Gray(p) | Pixels::Rgb(p) | Pixels::Rgba(p) => {
                p.image_size()
            }
        }
    }

    /// Resized to `width`×`height`; YCbCr chroma goes to 4:2:0 at the same time.
    pub fn resized(
        &self,
        resampler: &mut Resampler,
        width: u32,
        height: u32,
        filters: Filters,
    ) -> Result<Pixels, EngineError> {
        let f = filters.luma;
        Ok(match self {
            Pixels::Yuv { y, u, v } => {
                let (cw, ch) = (width.div_ceil(2), height.div_ceil(2));
                Pixels::Yuv {
                    y: y.resized(resampler, width, height, f)?,
                    u: u.resized(resampler, cw, ch, filters.chroma)?,
                    v: v.resized(resampler, cw, ch, filters.chroma)?,
                }
            }
            Pixels::Gray(p) => Pixels::Gray(p.resized(resampler, width, height, f)?),
            Pixels::Rgb(p) => Pixels::Rgb(p.resized(resampler, width, height, f)?),
            Pixels::Rgba(p) => Pixels::Rgba(p.resized(resampler, width, height, f)?),
        })
    }

    pub fn oriented(self, orientation: u8) -> Pixels {
        match self {
            Pixels::Yuv { y, u, v } => Pixels::Yuv {
                y: y.oriented(orientation),
                u: u.oriented(orientation),
                v: v.oriented(orientation),
            },
            Pixels::Gray(p) => Pixels::Gray(p.oriented(orientation)),
            Pixels::Rgb(p) => Pixels::Rgb(p.oriented(orientation)),
            Pixels::Rgba(p) => Pixels::Rgba(p.oriented(orientation)),
        }
    }

    /// Alpha composited over white (JPEG has no alpha).
    pub fn flattened(self) -> Pixels {
        match self {
            Pixels::Rgba(p) => {
                let mut rgb = Vec::with_capacity(p.data.len() / 4 * 3);
                for px in p.data.chunks_exact(4) {
                    let a = u32::from(px[3]);
                    for &c in &px[..3] {
                        rgb.push(((u32::from(c) * a + 255 * (255 - a) + 127) / 255) as u8);
                    }
                }
                Pixels::Rgb(Plane::new(p.width, p.height, 3, rgb))
            }
            other => other,
        }
    }
}

/// Size of the rendition whose short side is `size`, aspect kept, never upscaled.
pub fn target_size(width: u32, height: u32, size: u32) -> (u32, u32) {
    let short = width.min(height);
    if short <= size {
        return (width, height);
    }
    let scale = |long: u32| -> u32 {
        let v = (u64::from(long) * u64::from(size) + u64::from(short) / 2) / u64::from(short);
        u32::try_from(v).unwrap_or(u32::MAX).max(1)
    };
    if width <= height {
        (size, scale(height))
    } else {
        (scale(width), size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_sizes() {
        assert_eq!(target_size(3840, 2160, 1080), (1920, 1080));
        assert_eq!(target_size(2160, 3840, 720), (720, 1280));
        assert_eq!(target_size(2000, 2000, 360), (360, 360));
        assert_eq!(target_size(300, 200, 360), (300, 200));
        assert_eq!(target_size(1001, 333, 100), (301, 100));
    }

    #[test]
    fn plane_resize_by_columns_equals_the_direct_resize() {
        let (w, h) = (97u32, 61u32);
        let data: Vec<u8> = (0..w * h).map(|i| ((i * 37 + i / 7) % 256) as u8).collect();
        let plane = Plane::new(w, h, 1, data.clone()).with_valid(90.0, 57.5);
        let (mut resampler, mut resizer) = (Resampler::default(), Resizer::new());
        for (tw, th) in [(45, 29), (90, 20), (30, 57), (90, 57)] {
            let ours = plane
                .resized(&mut resampler, tw, th, FilterType::Lanczos3)
                .map(|p| p.data);
            let mut dst = Image::new(tw, th, PixelType::U8);
            let direct = ImageRef::new(w, h, &data, PixelType::U8).map(|src| {
                let options = ResizeOptions::new()
                    .resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3))
                    .crop(0.0, 0.0, 90.0, 57.5);
                resizer
                    .resize(&src, &mut dst, &options)
                    .map(|()| dst.into_vec())
            });
            assert_eq!(ours.ok(), direct.ok().and_then(Result::ok), "{tw}x{th}");
        }
    }

    #[test]
    fn one_sin_lanczos3_resizes_as_the_library_lanczos3() {
        // Fine detail and hard edges, down by ratios from 1.1 to 7: every pixel equal.
        let (w, h) = (211u32, 173u32);
        let data: Vec<u8> = (0..w * h)
            .map(|i| {
                if (i % w / 3 + i / w / 5) % 2 == 0 {
                    (i * 31 % 256) as u8
                } else {
                    255
                }
            })
            .collect();
        let plane = Plane::new(w, h, 1, data);
        let mut resampler = Resampler::default();
        for (tw, th) in [(190, 157), (105, 86), (64, 41), (30, 25)] {
            let ours = plane
                .resized(&mut resampler, tw, th, lanczos3())
                .map(|p| p.data);
            let library = plane
                .resized(&mut resampler, tw, th, FilterType::Lanczos3)
                .map(|p| p.data);
            assert_eq!(ours.ok(), library.ok(), "{tw}x{th}");
        }
    }

    #[test]
    fn orientation_6_rotates_clockwise() {
        // 2x1: [a b] rotated 90° clockwise is a 1x2 column [a; b].
        let p = Plane::new(2, 1, 1, vec![1, 2]).oriented(6);
        assert_eq!((p.width, p.height, p.data), (1, 2, vec![1, 2]));
        let p = Plane::new(2, 1, 1, vec![1, 2]).oriented(8);
        assert_eq!((p.width, p.height, p.data), (1, 2, vec![2, 1]));
    }
}
