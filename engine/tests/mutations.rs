//! Every decoder fed deterministic mutations of valid images, in the test suite on stable
//! Rust (the cargo-fuzz targets in `engine/fuzz/` need a nightly toolchain, which CI does
//! not have): bytes flipped, runs zeroed or set to 0xFF, junk inserted, slices repeated,
//! the file cut short, for JPEG, progressive JPEG with EXIF, PNG (RGBA and palette), WebP,
//! GIF, HEIC and AVIF. Whatever comes in, the engine answers with renditions or a refusal
//! whose code users are told (`unsupported_format`, `corrupt_image`, `too_many_pixels`,
//! `too_large`): never a panic (a crash in a C decoder ends this process, which fails the
//! test just as loudly). `TIRAGE_MUTATIONS` sets the mutations per seed (default 1000).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use common::{gradient, jpeg_of, palette_png, png_of, rgba_png, with_exif_orientation};
use image::Rgba;
use tirage_core::OutputFormat;
use tirage_core::codes::FailureCode;
use tirage_engine::{Limits, probe, resize};

/// A small xorshift: the same mutations on every run, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One mutation of `seed`.
fn mutate(seed: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut data = seed.to_vec();
    for _ in 0..1 + rng.below(3) {
        let len = data.len();
        let at = rng.below(len);
        match rng.below(6) {
            0 => {
                for _ in 0..1 + rng.below(8) {
                    let i = rng.below(len);
                    data[i] ^= 1 << rng.below(8);
                }
            }
            1 => {
                let end = (at + 1 + rng.below(64)).min(len);
                data[at..end].fill(0);
            }
            2 => {
                let end = (at + 1 + rng.below(16)).min(len);
                data[at..end].fill(0xFF);
            }
            3 => {
                let junk: Vec<u8> = (0..1 + rng.below(32)).map(|_| rng.next() as u8).collect();
                data.splice(at..at, junk);
            }
            4 => {
                let end = (at + 1 + rng.below(256)).min(len);
                let copy = data[at..end].to_vec();
                let to = rng.below(len);
                data.splice(to..to, copy);
            }
            _ => data.truncate(at.max(1)),
        }
    }
    data
}

fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let img = gradient(48, 32);
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/heif");
    let fixture = |name: &str| std::fs::read(fixtures.join(name)).unwrap();
    let mut webp = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img.clone())
        .write_to(&mut webp, image::ImageFormat::WebP)
        .unwrap();
    let mut gif = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img.clone())
        .write_to(&mut gif, image::ImageFormat::Gif)
        .unwrap();
    vec![
        ("jpeg", jpeg_of(&img, 85)),
        ("jpeg+exif", with_exif_orientation(&jpeg_of(&img, 70), 6)),
        ("png", png_of(&image::DynamicImage::ImageRgb8(img.clone()))),
        (
            "png rgba",
            rgba_png(40, 24, |x, y| {
                Rgba([x as u8 * 6, y as u8 * 10, 90, (x * y) as u8])
            }),
        ),
        (
            "png palette",
            palette_png(
                32,
                20,
                &[0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255],
                |x, y| ((x + y) % 4) as u8,
            ),
        ),
        ("webp", webp.into_inner()),
        ("gif", gif.into_inner()),
        ("heic", fixture("plain.heic")),
        ("avif", fixture("plain.avif")),
    ]
}

#[test]
fn mutated_images_get_renditions_or_a_stable_refusal_never_a_panic() {
    let per_seed: usize = std::env::var("TIRAGE_MUTATIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1000);
    // Headers of mutated files may claim anything: keep allocations small.
    let limits = Limits {
        max_pixels: 4_000_000,
        max_bytes: 8 << 20,
    };
    let told = [
        FailureCode::UnsupportedFormat,
        FailureCode::CorruptImage,
        FailureCode::TooManyPixels,
        FailureCode::TooLarge,
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut outcomes: BTreeMap<(&str, String), usize> = BTreeMap::new();
    for (name, seed) in seeds() {
        // The seed itself is valid: the mutations start from a file the engine opens.
        let plain = resize(&seed, &common::options(&[16], OutputFormat::Jpeg), &limits);
        assert!(plain.is_ok(), "{name}: the seed itself fails: {plain:?}");
        for i in 0..per_seed {
            let input = mutate(&seed, &mut rng);
            let format = [OutputFormat::Jpeg, OutputFormat::Png, OutputFormat::Webp][i % 3];
            let run = catch_unwind(AssertUnwindSafe(|| {
                let _ = probe(&input, &limits);
                resize(&input, &common::options(&[24, 16], format), &limits)
            }));
            let outcome = match run {
                Err(_) => panic!(
                    "{name}, mutation {i}: the engine panicked on these {} bytes: {:02x?}",
                    input.len(),
                    &input[..input.len().min(64)]
                ),
                Ok(Ok(resized)) => {
                    for r in &resized.renditions {
                        assert!(
                            r.width.min(r.height) <= r.size && !r.data.is_empty(),
                            "{name}"
                        );
                    }
                    "renditions".to_owned()
                }
                Ok(Err(e)) => {
                    assert!(told.contains(&e.code()), "{name}, mutation {i}: {e}");
                    e.code().as_str().to_owned()
                }
            };
            *outcomes.entry((name, outcome)).or_default() += 1;
        }
    }
    eprintln!("{per_seed} mutations per seed: {outcomes:?}");
    // The run exercised decoding, not only the sniffer: many mutants still open, and many
    // reach a decoder and are refused there.
    let count = |what: &str| -> usize {
        outcomes
            .iter()
            .filter(|((_, o), _)| o == what)
            .map(|(_, n)| n)
            .sum()
    };
    assert!(count("renditions") > per_seed, "{outcomes:?}");
    assert!(count("corrupt_image") > per_seed, "{outcomes:?}");
}
