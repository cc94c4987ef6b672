//! Bad inputs fail with their stable code, fast, and never panic.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

mod common;

use common::*;
use tirage_core::{BatchOptions, OutputFormat};
use tirage_engine::{Limits, probe};

fn code(input: &[u8]) -> &'static str {
    resize(input, &[1080, 720, 360])
        .unwrap_err()
        .code()
        .as_str()
}

#[test]
fn unsupported_format() {
    assert_eq!(
        code(b"hello, this is not an image at all"),
        "unsupported_format"
    );
    assert_eq!(code(b""), "unsupported_format");
    // A BMP is an image, but not one we take.
    assert_eq!(
        code(b"BM\x36\x00\x00\x00\x00\x00\x00\x00\x36\x00\x00\x00"),
        "unsupported_format"
    );
}

#[test]
fn corrupt_image() {
    let jpeg = jpeg_of(&gradient(300, 200), 90);
    // Cut inside the headers, then garbage after a valid header.
    assert_eq!(code(&jpeg[..40]), "corrupt_image");
    let mut garbage = jpeg[..jpeg.len() / 3].to_vec();
    garbage.extend(std::iter::repeat_n(0xFFu8, 64));
    garbage.extend_from_slice(&[0xFF, 0xC4, 0x00, 0x02]);
    let r = resize(&garbage, &[100]);
    // libjpeg-turbo, like browsers, shows what it could decode of a truncated scan; what
    // matters is a typed result, never a panic.
    if let Err(e) = r {
        assert_eq!(e.code().as_str(), "corrupt_image");
    }
    let png = png_of(&image::DynamicImage::ImageRgb8(gradient(300, 200)));
    assert_eq!(code(&png[..png.len() / 2]), "corrupt_image");
    assert_eq!(code(b"GIF89a\x01"), "corrupt_image");
    assert_eq!(
        code(b"RIFF\x10\x00\x00\x00WEBPVP8 junkjunk"),
        "corrupt_image"
    );
}

#[test]
fn too_many_pixels_png_of_30000_squared_is_refused_from_the_header() {
    let input = png_claiming(30_000, 30_000);
    assert!(input.len() < 1_000_000);
    assert_eq!(code(&input), "too_many_pixels");
    assert_eq!(
        probe(&input, &Limits::default())
            .unwrap_err()
            .code()
            .as_str(),
        "too_many_pixels"
    );
}

#[test]
fn too_many_pixels_jpeg_claiming_65000_squared_is_refused_from_the_header() {
    let mut input = jpeg_of(&gradient(64, 48), 90);
    let sof = input.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    input[sof + 5..sof + 7].copy_from_slice(&65000u16.to_be_bytes());
    input[sof + 7..sof + 9].copy_from_slice(&65000u16.to_be_bytes());
    assert_eq!(code(&input), "too_many_pixels");
}

#[test]
fn pixel_limit_is_configurable() {
    let input = jpeg_of(&gradient(300, 200), 90);
    let limits = Limits {
        max_pixels: 300 * 200 - 1,
        ..Limits::default()
    };
    let options = BatchOptions::default();
    let e = tirage_engine::resize(&input, &options, &limits).unwrap_err();
    assert_eq!(e.code().as_str(), "too_many_pixels");
    let limits = Limits {
        max_pixels: 300 * 200,
        ..Limits::default()
    };
    assert!(tirage_engine::resize(&input, &options, &limits).is_ok());
}

#[test]
fn too_large() {
    let input = jpeg_of(&gradient(300, 200), 90);
    let limits = Limits {
        max_bytes: 100,
        ..Limits::default()
    };
    let e = tirage_engine::resize(&input, &BatchOptions::default(), &limits).unwrap_err();
    assert_eq!(e.code().as_str(), "too_large");
}

#[test]
fn invalid_options() {
    let input = jpeg_of(&gradient(300, 200), 90);
    let bad = BatchOptions {
        sizes: vec![],
        format: OutputFormat::Jpeg,
        quality: 85,
        ..BatchOptions::default()
    };
    let e = tirage_engine::resize(&input, &bad, &Limits::default()).unwrap_err();
    assert_eq!(e.code().as_str(), "invalid_options");
}

#[test]
fn truncations_and_bit_flips_never_panic() {
    let jpeg = with_exif_orientation(&jpeg_of(&gradient(120, 80), 90), 6);
    let png = png_of(&image::DynamicImage::ImageRgb8(gradient(120, 80)));
    for input in [jpeg, png] {
        for cut in (0..input.len()).step_by(7) {
            let _ = resize(&input[..cut], &[40]);
        }
        for i in (0..input.len()).step_by(13) {
            let mut flipped = input.clone();
            flipped[i] ^= 0x5A;
            let _ = resize(&flipped, &[40]);
        }
    }
}
