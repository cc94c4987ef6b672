//! AVIF output (libheif with libaom): the renditions are AVIF that an independent decoder
//! (Pillow) reads at the right size, with the colours of the JPEG rendition of the same photo;
//! alpha and grey sources encode too, and the engine reads its own AVIF back.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

mod common;
mod independent;

use common::{gradient, jpeg_of, options, rgba_png};
use image::{Rgb, RgbImage, Rgba};
use independent::{Rgb as Decoded, pillow, rendition};
use tirage_core::OutputFormat;
use tirage_engine::{Limits, Resized, SourceFormat, resize, sniff};

/// A photo-like source: a gradient with a coloured disc and fine stripes, so that chroma,
/// edges and flat areas all show.
fn photo(w: u32, h: u32) -> RgbImage {
    let base = gradient(w, h);
    RgbImage::from_fn(w, h, |x, y| {
        let (dx, dy) = (x as i64 - w as i64 / 2, y as i64 - h as i64 / 2);
        if dx * dx + dy * dy < (h as i64 / 4).pow(2) {
            Rgb([200, 40, 60])
        } else if (x / 3) % 2 == 0 && y < h / 5 {
            Rgb([20, 90, 200])
        } else {
            *base.get_pixel(x, y)
        }
    })
}

/// The engine's renditions of `input` in `format`.
fn run(input: &[u8], sizes: &[u32], format: OutputFormat) -> Resized {
    resize(input, &options(sizes, format), &Limits::default()).unwrap()
}

/// Mean of each channel.
fn means(img: &Decoded) -> [f64; 3] {
    let mut sum = [0u64; 3];
    for px in img.data.chunks_exact(3) {
        for c in 0..3 {
            sum[c] += u64::from(px[c]);
        }
    }
    let n = (img.data.len() / 3) as f64;
    sum.map(|s| s as f64 / n)
}

#[test]
fn avif_renditions_decode_at_their_size_with_the_jpeg_renditions_colours() {
    let input = jpeg_of(&photo(640, 480), 95);
    let sizes = [360, 120];
    let avif = run(&input, &sizes, OutputFormat::Avif);
    let jpeg = run(&input, &sizes, OutputFormat::Jpeg);
    for (a, j) in avif.renditions.iter().zip(&jpeg.renditions) {
        assert_eq!(a.format, OutputFormat::Avif);
        assert_eq!(sniff(&a.data), Some(SourceFormat::Avif));
        assert_eq!((a.width, a.height), (j.width, j.height));
        let theirs = pillow(&a.data).unwrap();
        assert_eq!((theirs.width, theirs.height), (a.width, a.height));
        let reference = pillow(&j.data).unwrap();
        for (c, (ours, want)) in means(&theirs).iter().zip(means(&reference)).enumerate() {
            assert!(
                (ours - want).abs() < 2.0,
                "size {}, channel {c}: mean {ours:.1}, JPEG's {want:.1}",
                a.size
            );
        }
        // Close pixel by pixel too: no channel swap, no range or matrix mistake.
        let diff = theirs.mean_abs_diff(&reference);
        assert!(diff < 4.0, "size {}: mean difference {diff}", a.size);
    }
}

#[test]
fn the_engine_reads_its_own_avif_back() {
    let input = jpeg_of(&photo(300, 200), 95);
    let out = run(&input, &[100], OutputFormat::Avif);
    let back = run(&out.renditions[0].data, &[100], OutputFormat::Png);
    assert_eq!((back.width, back.height), (150, 100));
    let ours = rendition(&back.renditions[0].data);
    let theirs = pillow(&out.renditions[0].data).unwrap();
    for (a, b) in means(&ours).iter().zip(means(&theirs)) {
        assert!((a - b).abs() < 0.5, "channel means {a:.2} and {b:.2}");
    }
    // The two decoders upsample 4:2:0 chroma differently, which shows at the disc's and the
    // stripes' sharp edges only (measured: 2.2 here, channel means within 0.1).
    let diff = ours.mean_abs_diff(&theirs);
    assert!(diff < 3.0, "mean difference {diff}");
}

#[test]
fn alpha_is_kept_and_grey_encodes() {
    let png = rgba_png(64, 48, |x, _| Rgba([0, 128, 255, (x * 4) as u8]));
    let out = run(&png, &[48], OutputFormat::Avif);
    let back = run(&out.renditions[0].data, &[48], OutputFormat::Png);
    let img = image::load_from_memory(&back.renditions[0].data)
        .unwrap()
        .into_rgba8();
    let (left, right) = (img.get_pixel(2, 24)[3], img.get_pixel(61, 24)[3]);
    assert!(left < 30 && right > 220, "alpha {left} .. {right}");

    let grey = image::GrayImage::from_fn(80, 60, |x, y| image::Luma([((x + y) * 2) as u8]));
    let png = common::png_of(&image::DynamicImage::ImageLuma8(grey));
    let out = run(&png, &[30], OutputFormat::Avif);
    let decoded = pillow(&out.renditions[0].data).unwrap();
    assert_eq!((decoded.width, decoded.height), (40, 30));
    let [r, g, b] = means(&decoded);
    assert!((r - g).abs() < 1.0 && (g - b).abs() < 1.0, "{r} {g} {b}");
}

#[test]
fn odd_sizes_encode() {
    let input = jpeg_of(&photo(101, 67), 95);
    let out = run(&input, &[33], OutputFormat::Avif);
    let r = &out.renditions[0];
    let decoded = pillow(&r.data).unwrap();
    assert_eq!((decoded.width, decoded.height), (r.width, r.height));
    assert_eq!((r.width, r.height), (50, 33));
}
