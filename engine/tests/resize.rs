//! The engine's contract: sizes, orientation, formats, errors.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

mod common;

use common::*;
use image::{DynamicImage, Rgb, Rgba};
use tirage_core::OutputFormat;
use tirage_engine::{Limits, SourceFormat, probe};

fn dims(r: &tirage_engine::Resized) -> Vec<(u32, u32)> {
    r.renditions.iter().map(|r| (r.width, r.height)).collect()
}

/// Every rendition decodes to the size it claims.
fn assert_honest(r: &tirage_engine::Resized) {
    for rend in &r.renditions {
        let img = image::load_from_memory(&rend.data).unwrap();
        assert_eq!((img.width(), img.height()), (rend.width, rend.height));
    }
}

#[test]
fn landscape_portrait_square_and_tiny_keep_aspect_and_never_upscale() {
    let cases = [
        ((3000, 2000), vec![(1620, 1080), (1080, 720), (540, 360)]),
        ((2000, 3000), vec![(1080, 1620), (720, 1080), (360, 540)]),
        ((1500, 1500), vec![(1080, 1080), (720, 720), (360, 360)]),
        ((1001, 667), vec![(1001, 667), (1001, 667), (540, 360)]),
        ((200, 100), vec![(200, 100), (200, 100), (200, 100)]),
    ];
    for ((w, h), want) in cases {
        let r = resize(&jpeg_of(&gradient(w, h), 90), &[1080, 720, 360]).unwrap();
        assert_eq!((r.width, r.height), (w, h));
        assert_eq!(dims(&r), want, "{w}x{h}");
        assert_eq!(
            r.renditions.iter().map(|r| r.size).collect::<Vec<_>>(),
            vec![1080, 720, 360]
        );
        assert_honest(&r);
    }
}

#[test]
fn renditions_come_back_in_the_requested_order() {
    let r = resize(&jpeg_of(&gradient(800, 600), 90), &[100, 500, 300]).unwrap();
    assert_eq!(dims(&r), vec![(133, 100), (667, 500), (400, 300)]);
}

#[test]
fn odd_sizes_survive_the_planar_path() {
    // Odd widths and heights exercise the MCU padding of every plane.
    for (w, h) in [(333, 217), (217, 333), (1, 1), (17, 3), (999, 37)] {
        let r = resize(&jpeg_of(&gradient(w, h), 90), &[50, 16]).unwrap();
        assert_honest(&r);
    }
}

const RED: [u8; 3] = [255, 0, 0];
const GREEN: [u8; 3] = [0, 255, 0];
const BLUE: [u8; 3] = [0, 0, 255];
const WHITE: [u8; 3] = [255, 255, 255];

/// The upright picture: 96x64, a colour per quadrant.
fn upright(x: u32, y: u32) -> [u8; 3] {
    match (x < 48, y < 32) {
        (true, true) => RED,
        (false, true) => GREEN,
        (true, false) => BLUE,
        (false, false) => WHITE,
    }
}

/// Where the stored pixel (x, y) of a `w`×`h` stored image shows up once the EXIF
/// orientation is applied (the TIFF 6.0 table, written from the source side).
fn displayed_at(o: u16, x: u32, y: u32, w: u32, h: u32) -> (u32, u32) {
    match o {
        1 => (x, y),
        2 => (w - 1 - x, y),
        3 => (w - 1 - x, h - 1 - y),
        4 => (x, h - 1 - y),
        5 => (y, x),
        6 => (h - 1 - y, x),
        7 => (h - 1 - y, w - 1 - x),
        8 => (y, w - 1 - x),
        _ => unreachable!(),
    }
}

fn close(got: &Rgb<u8>, want: [u8; 3]) -> bool {
    got.0.iter().zip(want).all(|(&g, w)| g.abs_diff(w) < 60)
}

#[test]
fn all_eight_exif_orientations_display_upright() {
    for o in 1..=8u16 {
        let (w, h) = if o >= 5 { (64, 96) } else { (96, 64) };
        let stored = image::RgbImage::from_fn(w, h, |x, y| {
            let (dx, dy) = displayed_at(o, x, y, w, h);
            Rgb(upright(dx, dy))
        });
        let input = with_exif_orientation(&jpeg_of(&stored, 95), o);
        let p = probe(&input, &Limits::default()).unwrap();
        assert_eq!((p.width, p.height, p.orientation), (96, 64, o as u8));
        let r = resize(&input, &[32]).unwrap();
        assert_eq!((r.width, r.height), (96, 64), "orientation {o}");
        let out = decode(&r.renditions[0].data);
        assert_eq!(out.dimensions(), (48, 32), "orientation {o}");
        for (x, y, want) in [(6, 6, RED), (41, 6, GREEN), (6, 25, BLUE), (41, 25, WHITE)] {
            assert!(
                close(out.get_pixel(x, y), want),
                "orientation {o}: ({x},{y}) is {:?}, want {want:?}",
                out.get_pixel(x, y)
            );
        }
    }
}

#[test]
fn metadata_is_stripped() {
    let input = with_exif_orientation(&jpeg_of(&gradient(300, 200), 90), 1);
    let input = insert_segment(&input, 0xFE, b"a comment that must not survive");
    for rend in resize(&input, &[100, 50]).unwrap().renditions {
        let d = &rend.data;
        assert!(!d.windows(4).any(|w| w == b"Exif"));
        assert!(!d.windows(7).any(|w| w == b"comment"));
    }
}

fn mean(img: &image::RgbImage) -> [f64; 3] {
    let mut s = [0f64; 3];
    for p in img.pixels() {
        for (acc, v) in s.iter_mut().zip(p.0) {
            *acc += f64::from(v);
        }
    }
    let n = f64::from(img.width() * img.height());
    s.map(|v| v / n)
}

#[test]
fn every_input_format_is_read() {
    let rgb = gradient(400, 300);
    let dyn_rgb = DynamicImage::ImageRgb8(rgb.clone());
    let mut tj = turbojpeg::Compressor::new().unwrap();
    let tj_image = turbojpeg::Image {
        pixels: &rgb.as_raw()[..],
        width: 400,
        pitch: 1200,
        height: 300,
        format: turbojpeg::PixelFormat::RGB,
    };
    tj.set_progressive(true).unwrap();
    let progressive = tj.compress_to_vec(tj_image).unwrap();
    tj.set_progressive(false).unwrap();
    tj.set_subsamp(turbojpeg::Subsamp::Gray).unwrap();
    let gray_jpeg = tj.compress_to_vec(tj_image).unwrap();

    let mut gif = Vec::new();
    {
        let mut enc = image::codecs::gif::GifEncoder::new(&mut gif);
        let frame = image::Frame::new(DynamicImage::ImageRgb8(rgb.clone()).into_rgba8());
        enc.encode_frame(frame).unwrap();
    }
    let mut webp = std::io::Cursor::new(Vec::new());
    dyn_rgb
        .write_to(&mut webp, image::ImageFormat::WebP)
        .unwrap();
    let png16 = png_of(&DynamicImage::ImageRgb16(dyn_rgb.to_rgb16()));
    let palette = palette_png(120, 90, &[255, 0, 0, 0, 0, 255], |x, _| (x >= 60) as u8);
    let cases: Vec<(&str, Vec<u8>, SourceFormat)> = vec![
        ("baseline jpeg", jpeg_of(&rgb, 90), SourceFormat::Jpeg),
        ("progressive jpeg", progressive, SourceFormat::Jpeg),
        ("grayscale jpeg", gray_jpeg, SourceFormat::Jpeg),
        ("png 8-bit", png_of(&dyn_rgb), SourceFormat::Png),
        ("png 16-bit", png16, SourceFormat::Png),
        ("png palette", palette, SourceFormat::Png),
        ("webp", webp.into_inner(), SourceFormat::Webp),
        ("gif", gif, SourceFormat::Gif),
    ];
    for (name, input, format) in cases {
        let p = probe(&input, &Limits::default()).unwrap();
        assert_eq!(p.format, format, "{name}");
        for out in [OutputFormat::Jpeg, OutputFormat::Webp, OutputFormat::Png] {
            let r = tirage_engine::resize(&input, &options(&[100], out), &Limits::default())
                .unwrap_or_else(|e| panic!("{name} -> {out:?}: {e}"));
            assert_eq!(r.renditions[0].format, out);
            let img = decode(&r.renditions[0].data);
            assert_eq!(
                (img.width(), img.height()),
                (r.renditions[0].width, r.renditions[0].height)
            );
            assert_eq!(
                img.width().min(img.height()),
                100.min(p.width.min(p.height)),
                "{name}"
            );
        }
    }
}

#[test]
fn cmyk_jpeg_is_converted_to_rgb() {
    // Pure cyan ink only: C=255 (libjpeg-turbo writes Adobe-inverted CMYK with an APP14).
    let cmyk: Vec<u8> = (0..64 * 48).flat_map(|_| [0u8, 255, 255, 255]).collect();
    let mut tj = turbojpeg::Compressor::new().unwrap();
    tj.set_quality(95).unwrap();
    let input = tj
        .compress_to_vec(turbojpeg::Image {
            pixels: &cmyk[..],
            width: 64,
            pitch: 256,
            height: 48,
            format: turbojpeg::PixelFormat::CMYK,
        })
        .unwrap();
    let r = resize(&input, &[24]).unwrap();
    let m = mean(&decode(&r.renditions[0].data));
    // Cyan: no red, full green and blue.
    assert!(m[0] < 40.0 && m[1] > 215.0 && m[2] > 215.0, "{m:?}");
}

#[test]
fn alpha_is_flattened_on_white_for_jpeg_and_kept_for_png() {
    // Left half transparent black, right half opaque blue.
    let input = rgba_png(200, 100, |x, _| {
        if x < 100 {
            Rgba([0, 0, 0, 0])
        } else {
            Rgba([0, 0, 255, 255])
        }
    });
    let r = resize(&input, &[50]).unwrap();
    let out = decode(&r.renditions[0].data);
    assert!(
        close(out.get_pixel(10, 25), WHITE),
        "{:?}",
        out.get_pixel(10, 25)
    );
    assert!(close(out.get_pixel(90, 25), BLUE));
    let png = tirage_engine::resize(
        &input,
        &options(&[50], OutputFormat::Png),
        &Limits::default(),
    )
    .unwrap();
    let out = image::load_from_memory(&png.renditions[0].data)
        .unwrap()
        .into_rgba8();
    assert_eq!(out.get_pixel(10, 25).0[3], 0);
}

#[test]
fn an_icc_profile_is_converted_to_srgb() {
    // A linear-light profile with sRGB's primaries: linear 0.5 grey is sRGB ~188.
    let white = lcms2::CIExyY {
        x: 0.3127,
        y: 0.3290,
        Y: 1.0,
    };
    let primaries = lcms2::CIExyYTRIPLE {
        Red: lcms2::CIExyY {
            x: 0.64,
            y: 0.33,
            Y: 1.0,
        },
        Green: lcms2::CIExyY {
            x: 0.30,
            y: 0.60,
            Y: 1.0,
        },
        Blue: lcms2::CIExyY {
            x: 0.15,
            y: 0.06,
            Y: 1.0,
        },
    };
    let linear = lcms2::ToneCurve::new(1.0);
    let profile =
        lcms2::Profile::new_rgb(&white, &primaries, &[&linear, &linear, &linear]).unwrap();
    let icc = profile.icc().unwrap();
    let grey = image::RgbImage::from_pixel(64, 64, Rgb([128, 128, 128]));
    let mut payload = b"ICC_PROFILE\0\x01\x01".to_vec();
    payload.extend_from_slice(&icc);
    let input = insert_segment(&jpeg_of(&grey, 95), 0xE2, &payload);
    let m = mean(&decode(&resize(&input, &[32]).unwrap().renditions[0].data));
    assert!(m.iter().all(|&v| (180.0..196.0).contains(&v)), "{m:?}");
    let plain = mean(&decode(
        &resize(&jpeg_of(&grey, 95), &[32]).unwrap().renditions[0].data,
    ));
    assert!(
        plain.iter().all(|&v| (120.0..136.0).contains(&v)),
        "{plain:?}"
    );
}

/// The code-length counts of a JPEG's luma DC Huffman table (class 0, id 0), from its DHT.
fn luma_dc_counts(jpeg: &[u8]) -> Option<[u8; 16]> {
    let mut at = 2;
    while at + 4 <= jpeg.len() && jpeg[at] == 0xFF {
        let (marker, len) = (
            jpeg[at + 1],
            usize::from(u16::from_be_bytes([jpeg[at + 2], jpeg[at + 3]])),
        );
        if marker == 0xC4 {
            let mut t = at + 4;
            while t < at + 2 + len {
                let counts: [u8; 16] = jpeg[t + 1..t + 17].try_into().ok()?;
                if jpeg[t] == 0x00 {
                    return Some(counts);
                }
                t += 17 + counts.iter().map(|&c| usize::from(c)).sum::<usize>();
            }
        }
        at += 2 + len;
    }
    None
}

#[test]
fn fitted_huffman_tables_where_they_are_cheap_standard_ones_elsewhere() {
    // JPEG's Annex K luma DC table, which libjpeg writes unless asked to fit tables.
    const STANDARD: [u8; 16] = [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0];
    let r = resize(&jpeg_of(&gradient(3000, 2000), 90), &[1080, 360]).unwrap();
    let tables: Vec<_> = r
        .renditions
        .iter()
        .map(|r| luma_dc_counts(&r.data))
        .collect();
    assert_eq!(
        tables[0],
        Some(STANDARD),
        "1620x1080 is resized: standard tables"
    );
    assert!(
        tables[1].is_some_and(|t| t != STANDARD),
        "540x360 is small: fitted tables"
    );
    // A source under the largest size is re-encoded at its own size: no resize was paid for.
    let r = resize(&jpeg_of(&gradient(1001, 667), 90), &[1080]).unwrap();
    assert!(luma_dc_counts(&r.renditions[0].data).is_some_and(|t| t != STANDARD));
}
