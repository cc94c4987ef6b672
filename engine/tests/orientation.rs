//! EXIF orientation in JPEG (APP1), WebP (EXIF chunk) and PNG (eXIf chunk), all eight values,
//! held against Pillow's `ImageOps.exif_transpose`: same displayed size, same pixels.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

mod common;
mod independent;

use common::*;
use image::RgbImage;
use independent::{Rgb, pillow, pillow_oriented, rendition};
use tirage_core::OutputFormat;
use tirage_engine::{Limits, probe};

const W: u32 = 48;
const H: u32 = 32;

/// Every one of the eight transforms of this image differs from the others.
fn asymmetric() -> RgbImage {
    RgbImage::from_fn(W, H, |x, y| {
        let corner = if x < 8 && y < 8 { 255 } else { 0 };
        image::Rgb([(x * 255 / W) as u8, (y * 255 / H) as u8, corner])
    })
}

/// A TIFF structure (big-endian) whose IFD0 holds only the orientation tag.
fn tiff(orientation: u16) -> Vec<u8> {
    let mut t = b"MM\x00\x2a\x00\x00\x00\x08\x00\x01\x01\x12\x00\x03\x00\x00\x00\x01".to_vec();
    t.extend_from_slice(&orientation.to_be_bytes());
    t.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    t
}

fn riff_chunk(out: &mut Vec<u8>, kind: &[u8], data: &[u8]) {
    out.extend_from_slice(kind);
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(data);
    if data.len() % 2 == 1 {
        out.push(0);
    }
}

/// A lossless WebP in the extended format with an EXIF chunk. Pillow and exiftool write the
/// chunk with JPEG's "Exif\0\0" header, the specification without: both are tried.
fn webp_with_exif(img: &RgbImage, exif: &[u8]) -> Vec<u8> {
    let mut simple = Vec::new();
    image::codecs::webp::WebPEncoder::new_lossless(&mut simple)
        .encode(
            img,
            img.width(),
            img.height(),
            image::ExtendedColorType::Rgb8,
        )
        .unwrap();
    let vp8l = &simple[12..]; // the one chunk after "RIFF size WEBP"
    assert_eq!(&vp8l[..4], b"VP8L");
    let mut vp8x = vec![0x08, 0, 0, 0]; // flags: EXIF
    vp8x.extend_from_slice(&(img.width() - 1).to_le_bytes()[..3]);
    vp8x.extend_from_slice(&(img.height() - 1).to_le_bytes()[..3]);
    let mut body = b"WEBP".to_vec();
    riff_chunk(&mut body, b"VP8X", &vp8x);
    body.extend_from_slice(vp8l);
    riff_chunk(&mut body, b"EXIF", exif);
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

/// A PNG with an eXIf chunk right after IHDR.
fn png_with_exif(img: &RgbImage, exif: &[u8]) -> Vec<u8> {
    let png = png_of(&image::DynamicImage::ImageRgb8(img.clone()));
    let after_ihdr = 8 + 8 + 13 + 4;
    let mut out = png[..after_ihdr].to_vec();
    chunk(&mut out, b"eXIf", exif);
    out.extend_from_slice(&png[after_ihdr..]);
    out
}

/// The engine's rendition at the source's own size, as PNG.
fn engine(input: &[u8]) -> Rgb {
    let out = tirage_engine::resize(
        input,
        &options(&[W.min(H)], OutputFormat::Png),
        &Limits::default(),
    )
    .unwrap();
    rendition(&out.renditions[0].data)
}

fn assert_matches_pillow(input: &[u8], orientation: u16, tolerance: f64, what: &str) {
    assert_matches(
        pillow_oriented(input).unwrap(),
        input,
        orientation,
        tolerance,
        what,
    );
}

fn assert_matches(theirs: Rgb, input: &[u8], orientation: u16, tolerance: f64, what: &str) {
    let ours = engine(input);
    let upright = if orientation >= 5 { (H, W) } else { (W, H) };
    assert_eq!(
        (theirs.width, theirs.height),
        upright,
        "{what} {orientation}"
    );
    assert_eq!((ours.width, ours.height), upright, "{what} {orientation}");
    let diff = ours.mean_abs_diff(&theirs);
    assert!(diff <= tolerance, "{what} {orientation}: mean diff {diff}");
    let p = probe(input, &Limits::default()).unwrap();
    assert_eq!(
        (p.width, p.height, p.orientation),
        (upright.0, upright.1, orientation as u8)
    );
}

#[test]
fn jpeg_all_eight_orientations_match_pillow() {
    let jpeg = jpeg_of(&asymmetric(), 95);
    for o in 1..=8 {
        // Pillow and libjpeg-turbo upsample chroma alike; a level or two of difference.
        assert_matches_pillow(&with_exif_orientation(&jpeg, o), o, 2.0, "JPEG");
    }
}

#[test]
fn webp_all_eight_orientations_match_pillow() {
    for o in 1..=8 {
        let bare = webp_with_exif(&asymmetric(), &tiff(o));
        assert_matches_pillow(&bare, o, 0.0, "WebP (bare TIFF)");
        let mut prefixed = b"Exif\0\0".to_vec();
        prefixed.extend_from_slice(&tiff(o));
        let prefixed = webp_with_exif(&asymmetric(), &prefixed);
        assert_matches_pillow(&prefixed, o, 0.0, "WebP (Exif header)");
    }
}

#[test]
fn png_all_eight_orientations_match_pillow() {
    for o in 1..=8 {
        let png = png_with_exif(&asymmetric(), &tiff(o));
        assert_matches_pillow(&png, o, 0.0, "PNG");
    }
}

#[test]
fn an_unreadable_exif_chunk_leaves_the_image_upright() {
    // Pillow's exif_transpose raises on these; its plain decode is the upright image.
    let webp = webp_with_exif(&asymmetric(), b"Exif\0\0not a tiff structure");
    assert_matches(pillow(&webp).unwrap(), &webp, 1, 0.0, "WebP (junk EXIF)");
    let png = png_with_exif(&asymmetric(), b"MM\x00\x2a\xff\xff\xff\xff");
    assert_matches(pillow(&png).unwrap(), &png, 1, 0.0, "PNG (junk EXIF)");
}
