//! The batch's metadata choice, read back by readers independent of the engine: kamadak-exif
//! for EXIF (JPEG, PNG, WebP and AVIF containers alike), the `image` crate's decoders for the
//! ICC profile, libheif for AVIF's colour boxes and Pillow (pillow-heif) for its pixels.
//! `copyright` keeps the source's Artist and Copyright and adds an sRGB profile (AVIF: an ICC
//! `colr` box beside the nclx one that says sRGB); GPS and every other tag never reach a
//! rendition; `strip` keeps nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

mod common;
mod independent;

use std::io::Cursor;

use common::{gradient, insert_segment, jpeg_of, png_of, rgba_png};
use exif::{In, Tag, Value};
use image::ImageDecoder;
use tirage_core::{BatchOptions, MetadataChoice, OutputFormat};
use tirage_engine::{Limits, resize};

const ARTIST: &str = "Ann Smith";
const COPYRIGHT: &str = "(c) 2026 Ann Smith, all rights reserved";

/// A big-endian TIFF structure as cameras write it: Make, Artist, Copyright and a GPS IFD
/// (latitude reference and latitude).
fn camera_exif() -> Vec<u8> {
    let mut ifd0 = Vec::new();
    let mut data = Vec::new();
    // IFD0 at 8: 5 entries (2 + 5×12 + 4 = 66 bytes), values from 74; GPS IFD after them.
    let values_at = 8 + 66;
    let ascii = |s: &str, data: &mut Vec<u8>| -> (u32, u32) {
        let at = values_at + data.len();
        data.extend_from_slice(s.as_bytes());
        data.push(0);
        if data.len() % 2 == 1 {
            data.push(0);
        }
        (s.len() as u32 + 1, at as u32)
    };
    let mut entry = |tag: u16, kind: u16, count: u32, value: u32| {
        ifd0.extend_from_slice(&tag.to_be_bytes());
        ifd0.extend_from_slice(&kind.to_be_bytes());
        ifd0.extend_from_slice(&count.to_be_bytes());
        ifd0.extend_from_slice(&value.to_be_bytes());
    };
    let (n, at) = ascii("Camera Maker", &mut data);
    entry(0x010F, 2, n, at);
    // Orientation 1, SHORT, left-justified.
    entry(0x0112, 3, 1, 1 << 16);
    let (n, at) = ascii(ARTIST, &mut data);
    entry(0x013B, 2, n, at);
    let (n, at) = ascii(COPYRIGHT, &mut data);
    entry(0x8298, 2, n, at);
    let gps_at = (values_at + data.len()) as u32;
    entry(0x8825, 4, 1, gps_at); // GPS IFD pointer, LONG
    // GPS IFD: GPSLatitudeRef "N" inline, GPSLatitude 3 RATIONALs after the IFD.
    let lat_at = gps_at + 2 + 2 * 12 + 4;
    let mut gps = Vec::new();
    gps.extend_from_slice(&2u16.to_be_bytes());
    gps.extend_from_slice(&[0, 1, 0, 2, 0, 0, 0, 2, b'N', 0, 0, 0]);
    gps.extend_from_slice(&[0, 2, 0, 5, 0, 0, 0, 3]);
    gps.extend_from_slice(&lat_at.to_be_bytes());
    gps.extend_from_slice(&0u32.to_be_bytes());
    for (num, den) in [(48u32, 1u32), (51, 1), (2400, 100)] {
        gps.extend_from_slice(&num.to_be_bytes());
        gps.extend_from_slice(&den.to_be_bytes());
    }
    let mut tiff = b"MM\0*\0\0\0\x08".to_vec();
    tiff.extend_from_slice(&5u16.to_be_bytes());
    tiff.extend_from_slice(&ifd0);
    tiff.extend_from_slice(&0u32.to_be_bytes());
    tiff.extend_from_slice(&data);
    tiff.extend_from_slice(&gps);
    tiff
}

fn jpeg_with_camera_exif() -> Vec<u8> {
    let mut seg = b"Exif\0\0".to_vec();
    seg.extend_from_slice(&camera_exif());
    insert_segment(&jpeg_of(&gradient(160, 120), 92), 0xE1, &seg)
}

fn run(input: &[u8], format: OutputFormat, metadata: MetadataChoice) -> Vec<u8> {
    let options = BatchOptions {
        sizes: vec![60],
        format,
        quality: 80,
        metadata,
    };
    let out = resize(input, &options, &Limits::default()).unwrap();
    out.renditions.into_iter().next().unwrap().data
}

/// Every EXIF field kamadak-exif finds, or none when the file has no EXIF.
fn exif_fields(data: &[u8]) -> Option<exif::Exif> {
    exif::Reader::new()
        .read_from_container(&mut Cursor::new(data))
        .ok()
}

fn ascii(exif: &exif::Exif, tag: Tag) -> Option<String> {
    match &exif.get_field(tag, In::PRIMARY)?.value {
        Value::Ascii(parts) => Some(
            parts
                .iter()
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .collect::<Vec<_>>()
                .join("\n"),
        ),
        other => panic!("{tag} is {other:?}"),
    }
}

/// The embedded ICC profile, read by the format's own decoder.
fn icc(data: &[u8], format: OutputFormat) -> Option<Vec<u8>> {
    let cursor = Cursor::new(data);
    match format {
        OutputFormat::Jpeg => image::codecs::jpeg::JpegDecoder::new(cursor)
            .unwrap()
            .icc_profile()
            .unwrap(),
        OutputFormat::Png => image::codecs::png::PngDecoder::new(cursor)
            .unwrap()
            .icc_profile()
            .unwrap(),
        OutputFormat::Webp => image::codecs::webp::WebPDecoder::new(cursor)
            .unwrap()
            .icc_profile()
            .unwrap(),
        OutputFormat::Avif => {
            let context = libheif_rs::HeifContext::read_from_bytes(data).unwrap();
            let handle = context.primary_image_handle().unwrap();
            handle.color_profile_raw().map(|p| p.data)
        }
    }
}

/// An AVIF's nclx colour box says sRGB as far as libheif-rs lets the engine say it: BT.709
/// primaries, BT.601 full-range matrix, the transfer sRGB's or unspecified (read as sRGB's).
fn avif_says_srgb(data: &[u8]) -> bool {
    use libheif_rs::{ColorPrimaries, MatrixCoefficients, TransferCharacteristics};
    let context = libheif_rs::HeifContext::read_from_bytes(data).unwrap();
    let handle = context.primary_image_handle().unwrap();
    handle.color_profile_nclx().is_some_and(|n| {
        n.color_primaries() == ColorPrimaries::ITU_R_BT_709_5
            && matches!(
                n.transfer_characteristics(),
                TransferCharacteristics::IEC_61966_2_1 | TransferCharacteristics::Unspecified
            )
            && n.matrix_coefficients() == MatrixCoefficients::ITU_R_BT_601_6
            && n.full_range_flag() == 1
    })
}

/// The profile is added to the file libheif wrote (boxes grown, item offsets moved): Pillow
/// decodes the same pixels as from the stripped rendition of the same source.
fn assert_avif_pixels_untouched(with_profile: &[u8], source: &[u8]) {
    let stripped = run(source, OutputFormat::Avif, MetadataChoice::Strip);
    let (ours, plain) = (
        independent::pillow(with_profile).unwrap(),
        independent::pillow(&stripped).unwrap(),
    );
    assert_eq!((ours.width, ours.height), (plain.width, plain.height));
    assert!(
        ours.data == plain.data,
        "the profile changed the AVIF's pixels"
    );
}

fn is_srgb(profile: &[u8]) -> bool {
    let p = lcms2::Profile::new_icc(profile).unwrap();
    p.info(lcms2::InfoType::Description, lcms2::Locale::none())
        .unwrap_or_default()
        .to_ascii_lowercase()
        .contains("srgb")
}

#[test]
fn copyright_keeps_artist_copyright_and_srgb_and_never_gps() {
    let input = jpeg_with_camera_exif();
    // The source has them all, as the reader sees it.
    let source = exif_fields(&input).unwrap();
    assert!(source.get_field(Tag::GPSLatitude, In::PRIMARY).is_some());
    assert!(source.get_field(Tag::Make, In::PRIMARY).is_some());
    for format in OutputFormat::ALL {
        let out = run(&input, format, MetadataChoice::Copyright);
        let exif = exif_fields(&out).unwrap_or_else(|| panic!("{format:?}: no EXIF"));
        assert_eq!(
            ascii(&exif, Tag::Artist).as_deref(),
            Some(ARTIST),
            "{format:?}"
        );
        assert_eq!(
            ascii(&exif, Tag::Copyright).as_deref(),
            Some(COPYRIGHT),
            "{format:?}"
        );
        // Nothing else: no GPS, no Make, no orientation (the pixels are upright).
        let tags: Vec<Tag> = exif.fields().map(|f| f.tag).collect();
        assert_eq!(tags, vec![Tag::Artist, Tag::Copyright], "{format:?}");
        if format == OutputFormat::Avif {
            assert!(avif_says_srgb(&out), "AVIF: no sRGB nclx box");
        }
        let profile = icc(&out, format).unwrap_or_else(|| panic!("{format:?}: no ICC"));
        assert!(is_srgb(&profile), "{format:?}: the profile is not sRGB");
        // Still an image its readers decode.
        if format == OutputFormat::Avif {
            assert_avif_pixels_untouched(&out, &input);
        } else {
            let img = image::load_from_memory(&out).unwrap();
            assert_eq!((img.width(), img.height()), (80, 60), "{format:?}");
        }
    }
}

#[test]
fn strip_keeps_nothing() {
    let input = jpeg_with_camera_exif();
    for format in OutputFormat::ALL {
        let out = run(&input, format, MetadataChoice::Strip);
        assert!(exif_fields(&out).is_none(), "{format:?}: EXIF left");
        assert!(icc(&out, format).is_none(), "{format:?}: ICC left");
    }
}

#[test]
fn credits_come_from_png_webp_and_heif_exif_too_and_a_source_without_gets_the_profile() {
    // A PNG whose eXIf chunk holds the camera's TIFF.
    let mut png = Vec::new();
    let mut encoder = image::codecs::png::PngEncoder::new(&mut png);
    image::ImageEncoder::set_exif_metadata(&mut encoder, camera_exif()).unwrap();
    image::ImageEncoder::write_image(
        encoder,
        gradient(80, 60).as_raw(),
        80,
        60,
        image::ExtendedColorType::Rgb8,
    )
    .unwrap();
    let out = run(&png, OutputFormat::Jpeg, MetadataChoice::Copyright);
    let exif = exif_fields(&out).unwrap();
    assert_eq!(ascii(&exif, Tag::Artist).as_deref(), Some(ARTIST));
    assert!(exif.get_field(Tag::GPSLatitude, In::PRIMARY).is_none());

    // The engine's own WebP (EXIF chunk) read back as a source.
    let webp = run(&png, OutputFormat::Webp, MetadataChoice::Copyright);
    let out = run(&webp, OutputFormat::Png, MetadataChoice::Copyright);
    let exif = exif_fields(&out).unwrap();
    assert_eq!(ascii(&exif, Tag::Copyright).as_deref(), Some(COPYRIGHT));

    // The engine's own AVIF (an `Exif` item) read back as a source, as a HEIC's would be.
    let avif = run(&png, OutputFormat::Avif, MetadataChoice::Copyright);
    let out = run(&avif, OutputFormat::Jpeg, MetadataChoice::Copyright);
    let exif = exif_fields(&out).unwrap();
    assert_eq!(ascii(&exif, Tag::Artist).as_deref(), Some(ARTIST));
    assert_eq!(ascii(&exif, Tag::Copyright).as_deref(), Some(COPYRIGHT));

    // No EXIF at all: the profile only.
    let plain = png_of(&image::DynamicImage::ImageRgb8(gradient(80, 60)));
    let out = run(&plain, OutputFormat::Jpeg, MetadataChoice::Copyright);
    assert!(exif_fields(&out).is_none());
    assert!(icc(&out, OutputFormat::Jpeg).is_some_and(|p| is_srgb(&p)));

    // An AVIF with alpha holds two items (colour and alpha): both still where they were.
    let rgba = rgba_png(80, 60, |x, y| {
        image::Rgba([x as u8 * 3, y as u8 * 4, 90, (x + y) as u8])
    });
    let avif = run(&rgba, OutputFormat::Avif, MetadataChoice::Copyright);
    assert!(icc(&avif, OutputFormat::Avif).is_some_and(|p| is_srgb(&p)));
    assert_avif_pixels_untouched(&avif, &rgba);

    // A grey rendition gets no RGB profile (invalid on a grey JPEG or PNG).
    let grey = image::GrayImage::from_fn(80, 60, |x, _| image::Luma([x as u8 * 3]));
    let grey = png_of(&image::DynamicImage::ImageLuma8(grey));
    for format in [OutputFormat::Jpeg, OutputFormat::Png] {
        let out = run(&grey, format, MetadataChoice::Copyright);
        assert!(icc(&out, format).is_none(), "{format:?}");
    }
}
