//! Fixtures made in the tests themselves: small images in every input form.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::Cursor;

use image::{ImageEncoder, RgbImage, Rgba, RgbaImage};
use tirage_core::{BatchOptions, OutputFormat};
use tirage_engine::{EngineError, Limits, Resized};

/// A photo-like gradient so encoders have something to do.
pub fn gradient(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x * 255 / w.max(1)) as u8, (y * 255 / h.max(1)) as u8, 128])
    })
}

pub fn jpeg_of(img: &RgbImage, quality: u8) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
        .write_image(
            img,
            img.width(),
            img.height(),
            image::ExtendedColorType::Rgb8,
        )
        .unwrap();
    out
}

pub fn png_of(img: &image::DynamicImage) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

pub fn rgba_png(w: u32, h: u32, f: impl Fn(u32, u32) -> Rgba<u8>) -> Vec<u8> {
    png_of(&image::DynamicImage::ImageRgba8(RgbaImage::from_fn(
        w, h, f,
    )))
}

/// Inserts an APP1 "Exif" segment carrying `orientation` right after SOI.
pub fn with_exif_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    let mut tiff = b"MM\x00\x2a\x00\x00\x00\x08".to_vec();
    tiff.extend_from_slice(&1u16.to_be_bytes()); // one entry
    tiff.extend_from_slice(&0x0112u16.to_be_bytes());
    tiff.extend_from_slice(&3u16.to_be_bytes()); // SHORT
    tiff.extend_from_slice(&1u32.to_be_bytes());
    tiff.extend_from_slice(&orientation.to_be_bytes());
    tiff.extend_from_slice(&[0, 0]);
    tiff.extend_from_slice(&0u32.to_be_bytes()); // no next IFD
    let mut seg = b"Exif\0\0".to_vec();
    seg.extend_from_slice(&tiff);
    insert_segment(jpeg, 0xE1, &seg)
}

/// Inserts one APPn segment right after SOI.
pub fn insert_segment(jpeg: &[u8], marker: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, marker]);
    out.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(payload);
    out.extend_from_slice(&jpeg[2..]);
    out
}

pub fn options(sizes: &[u32], format: OutputFormat) -> BatchOptions {
    BatchOptions {
        sizes: sizes.to_vec(),
        format,
        quality: 90,
        ..BatchOptions::default()
    }
}

pub fn resize(input: &[u8], sizes: &[u32]) -> Result<Resized, EngineError> {
    tirage_engine::resize(
        input,
        &options(sizes, OutputFormat::Jpeg),
        &Limits::default(),
    )
}

/// Decodes a rendition (any format) back to RGB to look at it.
pub fn decode(data: &[u8]) -> image::RgbImage {
    image::load_from_memory(data).unwrap().into_rgb8()
}

/// A PNG whose IHDR says `w`×`h` (8-bit grey), with a small IDAT: the header check must refuse
/// it before the decoder ever wants the rest.
pub fn png_claiming(w: u32, h: u32) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    // zlib stream of zeros (a few rows' worth; the decoder must not get that far).
    chunk(
        &mut out,
        b"IDAT",
        &[0x78, 0x9c, 0x63, 0x60, 0x18, 0x05, 0x00, 0x00, 0x00, 0x00],
    );
    chunk(&mut out, b"IEND", &[]);
    out
}

pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

pub fn chunk(out: &mut Vec<u8>, kind: &[u8], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// An 8-bit palette PNG written by hand (no encoder we have writes palettes), zlib "stored".
pub fn palette_png(w: u32, h: u32, palette: &[u8], index: impl Fn(u32, u32) -> u8) -> Vec<u8> {
    let mut raw = Vec::new();
    for y in 0..h {
        raw.push(0); // filter: none
        raw.extend((0..w).map(|x| index(x, y)));
    }
    assert!(raw.len() < 65535);
    let mut z = vec![0x78, 0x01, 0x01];
    z.extend_from_slice(&(raw.len() as u16).to_le_bytes());
    z.extend_from_slice(&(!(raw.len() as u16)).to_le_bytes());
    z.extend_from_slice(&raw);
    let (mut a, mut b) = (1u32, 0u32);
    for &v in &raw {
        a = (a + u32::from(v)) % 65521;
        b = (b + a) % 65521;
    }
    z.extend_from_slice(&((b << 16) | a).to_be_bytes());
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 3, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"PLTE", palette);
    chunk(&mut out, b"IDAT", &z);
    chunk(&mut out, b"IEND", &[]);
    out
}
