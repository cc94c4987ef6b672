//! HEIC and AVIF input through libheif, held against Pillow (pillow-heif for HEIC, Pillow's
//! own AVIF plugin): same size, same pixels within codec rounding, rotation applied once,
//! Display P3 converted to sRGB, pixel limit checked before decoding. The fixtures are made by
//! `fixtures/heif/make.py`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

mod common;
mod independent;

use common::options;
use independent::{pillow, pillow_oriented, pillow_srgb, rendition};
use tirage_core::OutputFormat;
use tirage_engine::{Limits, SourceFormat, probe, resize, sniff};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/heif/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The engine's PNG rendition at the source's own size.
fn engine(input: &[u8], short_side: u32) -> independent::Rgb {
    let out = resize(
        input,
        &options(&[short_side], OutputFormat::Png),
        &Limits::default(),
    )
    .unwrap();
    rendition(&out.renditions[0].data)
}

#[test]
fn heic_and_avif_are_sniffed_from_their_brands() {
    assert_eq!(sniff(&fixture("plain.heic")), Some(SourceFormat::Heic));
    assert_eq!(sniff(&fixture("plain.avif")), Some(SourceFormat::Avif));
}

#[test]
fn heic_decodes_like_pillow_heif() {
    let input = fixture("plain.heic");
    let p = probe(&input, &Limits::default()).unwrap();
    assert_eq!(
        (p.format, p.width, p.height, p.orientation),
        (SourceFormat::Heic, 64, 48, 1)
    );
    let theirs = pillow(&input).unwrap();
    let ours = engine(&input, 48);
    // Both are libheif (1.15 here, pillow-heif's own 1.20): chroma upsampling may differ.
    let diff = ours.mean_abs_diff(&theirs);
    assert!(diff < 2.0, "mean difference {diff}");
}

#[test]
fn avif_decodes_like_pillow() {
    let input = fixture("plain.avif");
    let theirs = pillow(&input).unwrap();
    let ours = engine(&input, 48);
    let diff = ours.mean_abs_diff(&theirs);
    assert!(diff < 2.0, "mean difference {diff}");
}

/// The fixture carries the rotation twice, as iPhones write it: an `irot` box and EXIF
/// orientation 6. Rotated once, it is 48×64.
#[test]
fn rotation_is_applied_once() {
    let input = fixture("rotated.heic");
    let p = probe(&input, &Limits::default()).unwrap();
    assert_eq!((p.width, p.height, p.orientation), (48, 64, 1));
    let theirs = pillow_oriented(&input).unwrap();
    assert_eq!((theirs.width, theirs.height), (48, 64));
    let ours = engine(&input, 48);
    assert_eq!((ours.width, ours.height), (48, 64));
    let diff = ours.mean_abs_diff(&theirs);
    assert!(diff < 2.0, "mean difference {diff}");
}

#[test]
fn display_p3_is_converted_to_srgb() {
    let input = fixture("display-p3.heic");
    let converted = pillow_srgb(&input).unwrap();
    let unconverted = pillow(&input).unwrap();
    let ours = engine(&input, 48);
    let diff = ours.mean_abs_diff(&converted);
    assert!(
        diff < 2.0,
        "mean difference {diff} from Pillow's conversion"
    );
    assert!(
        ours.mean_abs_diff(&unconverted) > 5.0,
        "the profile was not applied"
    );
}

#[test]
fn alpha_is_kept_for_png_and_flattened_for_jpeg() {
    let input = fixture("alpha.heic");
    let out = resize(
        &input,
        &options(&[48], OutputFormat::Png),
        &Limits::default(),
    )
    .unwrap();
    let png = image::load_from_memory(&out.renditions[0].data).unwrap();
    assert!(png.color().has_alpha());
    let alpha: Vec<u8> = png.to_rgba8().pixels().map(|p| p.0[3]).collect();
    assert!(alpha.iter().any(|&a| a < 64) && alpha.iter().any(|&a| a > 192));
    let out = resize(
        &input,
        &options(&[48], OutputFormat::Jpeg),
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(
        image::guess_format(&out.renditions[0].data).unwrap(),
        image::ImageFormat::Jpeg
    );
}

#[test]
fn the_pixel_limit_is_checked_from_the_boxes() {
    let input = fixture("plain.heic");
    let limits = Limits {
        max_pixels: 64 * 48 - 1,
        ..Limits::default()
    };
    let e = resize(&input, &options(&[48], OutputFormat::Jpeg), &limits).unwrap_err();
    assert_eq!(e.code().as_str(), "too_many_pixels");
    // A HEIC whose `ispe` claims 30000×30000 is refused without decoding.
    let mut huge = input.clone();
    let ispe = huge.windows(4).position(|w| w == b"ispe").unwrap();
    huge[ispe + 8..ispe + 12].copy_from_slice(&30_000u32.to_be_bytes());
    huge[ispe + 12..ispe + 16].copy_from_slice(&30_000u32.to_be_bytes());
    let e = probe(&huge, &Limits::default()).unwrap_err();
    assert_eq!(e.code().as_str(), "too_many_pixels");
    let e = resize(
        &huge,
        &options(&[48], OutputFormat::Jpeg),
        &Limits::default(),
    )
    .unwrap_err();
    assert_eq!(e.code().as_str(), "too_many_pixels");
}

#[test]
fn broken_heic_is_corrupt_never_a_panic() {
    let input = fixture("plain.heic");
    for cut in (12..input.len()).step_by(17) {
        if let Err(e) = resize(
            &input[..cut],
            &options(&[24], OutputFormat::Jpeg),
            &Limits::default(),
        ) {
            let code = e.code().as_str();
            assert!(
                code == "corrupt_image" || code == "unsupported_format",
                "cut at {cut}: {code}"
            );
        }
    }
    for i in (0..input.len()).step_by(11) {
        let mut flipped = input.clone();
        flipped[i] ^= 0x5A;
        let _ = resize(
            &flipped,
            &options(&[24], OutputFormat::Jpeg),
            &Limits::default(),
        );
    }
}
