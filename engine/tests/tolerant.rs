//! Files that libvips and Pillow open, Tirage opens: JPEGs with libjpeg *warnings* (junk bytes
//! between segments, broken ICC chunks, junk or cut APP segments, a truncated scan) and a GIF
//! without any colour table. Each fixture is a sound file mutated here; each is checked against
//! Pillow, which must open it too and see the same pixels.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

mod common;
mod independent;

use common::*;
use image::RgbImage;
use independent::{Rgb, pillow, pillow_truncated, rendition};
use tirage_core::OutputFormat;
use tirage_core::codes::PhotoWarning;
use tirage_engine::Limits;

const W: u32 = 160;
const H: u32 = 120;

/// A gradient with texture, so a decoding error shows.
fn textured() -> RgbImage {
    RgbImage::from_fn(W, H, |x, y| {
        let n = ((x * 7919 + y * 104_729) % 61) as u8;
        image::Rgb([
            (x * 255 / W) as u8 / 2 + n,
            (y * 255 / H) as u8 / 2 + n,
            128 + n / 2,
        ])
    })
}

fn sound_jpeg() -> Vec<u8> {
    jpeg_of(&textured(), 92)
}

/// The engine's decode at full size, as lossless PNG.
fn engine(input: &[u8]) -> Rgb {
    let short = W.min(H);
    let out = tirage_engine::resize(
        input,
        &options(&[short], OutputFormat::Png),
        &Limits::default(),
    )
    .unwrap_or_else(|e| panic!("the engine refused a file Pillow opens: {e}"));
    rendition(&out.renditions[0].data)
}

/// Opens with both decoders and compares. Different IDCTs differ by a level or so.
fn assert_both_open(input: &[u8]) {
    // The planar YCbCr path (JPEG output) tolerates the same warnings; none of them is one
    // to tell the photo's owner about.
    let out = resize(input, &[60]).expect("the engine opens it for JPEG output");
    assert!(out.warnings.is_empty(), "{:?}", out.warnings);
    let theirs = pillow(input).expect("Pillow opens the fixture");
    let ours = engine(input);
    let diff = ours.mean_abs_diff(&theirs);
    assert!(diff < 1.5, "mean difference {diff} from Pillow's decode");
}

/// Where the first marker `code` starts.
fn marker_at(jpeg: &[u8], code: u8) -> usize {
    jpeg.windows(2).position(|w| w == [0xFF, code]).unwrap()
}

fn insert_at(data: &[u8], at: usize, bytes: &[u8]) -> Vec<u8> {
    let mut out = data[..at].to_vec();
    out.extend_from_slice(bytes);
    out.extend_from_slice(&data[at..]);
    out
}

#[test]
fn extraneous_bytes_before_a_header_marker() {
    let jpeg = sound_jpeg();
    let at = marker_at(&jpeg, 0xDB);
    assert_both_open(&insert_at(&jpeg, at, b"\x00\x00junk\xFF\x00"));
}

#[test]
fn extraneous_bytes_before_the_end_marker() {
    let jpeg = sound_jpeg();
    let eoi = jpeg.len() - 2;
    assert_both_open(&insert_at(&jpeg, eoi, b"\x00\x13\x37 trailing junk"));
}

#[test]
fn bad_icc_markers() {
    let jpeg = sound_jpeg();
    // Sequence number and count 0: libjpeg's "bad ICC marker".
    let zero = insert_segment(&jpeg, 0xE2, b"ICC_PROFILE\0\x00\x00not a profile");
    assert_both_open(&zero);
    // Chunk 2 of 3 only; and a chunk too short to hold its own header.
    let partial = insert_segment(&jpeg, 0xE2, b"ICC_PROFILE\0\x02\x03half");
    assert_both_open(&insert_segment(&partial, 0xE2, b"ICC_PROF"));
    // A complete set whose bytes are no profile.
    assert_both_open(&insert_segment(
        &jpeg,
        0xE2,
        b"ICC_PROFILE\0\x01\x01garbage garbage",
    ));
}

#[test]
fn junk_app_segments() {
    let jpeg = sound_jpeg();
    let exif = insert_segment(&jpeg, 0xE1, b"Exif\0\0MM\x00\x2a\xff\xff\xff\xff junk");
    let photoshop = insert_segment(&exif, 0xED, &[0xA5; 300]);
    // JFIF 3.7 (libjpeg: "unknown JFIF revision"), Adobe with an unknown transform code.
    let jfif = insert_segment(
        &photoshop,
        0xE0,
        b"JFIF\0\x03\x07\x00\x00\x01\x00\x01\x00\x00",
    );
    assert_both_open(&insert_segment(
        &jfif,
        0xEE,
        b"Adobe\x00\x64\x00\x00\x00\x00\x09",
    ));
}

#[test]
fn cut_app_segments() {
    let jpeg = sound_jpeg();
    // An APP1 whose length runs 12 bytes past its content, into the comment after it: the
    // decoders skip the declared length, then look for the next marker.
    let mut seg = b"\xFF\xE1\x00\x20Exif\0\0MM".to_vec();
    seg.extend_from_slice(b"\xFF\xFE\x00\x12comment comment");
    assert_both_open(&insert_at(&jpeg, 2, &seg));
    // One whose length stops short of its content: the rest is junk before the next marker.
    let short = b"\xFF\xE1\x00\x08Exif\0\0MM\x00\x2a\x00\x00\x00\x08";
    assert_both_open(&insert_at(&jpeg, 2, short));
}

#[test]
fn truncated_scan_is_decoded_with_the_missing_part_grey() {
    let jpeg = sound_jpeg();
    let cut = &jpeg[..jpeg.len() * 6 / 10];
    assert!(pillow(cut).is_err(), "Pillow refuses it by default");
    let theirs = pillow_truncated(cut).expect("Pillow opens it with LOAD_TRUNCATED_IMAGES");
    let ours = engine(cut);
    assert!(ours.mean_abs_diff(&theirs) < 1.5);
    let rgb = tirage_engine::resize(cut, &options(&[60], OutputFormat::Png), &Limits::default());
    assert_eq!(
        rgb.unwrap().warnings,
        [PhotoWarning::Truncated],
        "the RGB path too"
    );
    let planar = resize(cut, &[60]).expect("the planar path decodes it too");
    assert_eq!(planar.warnings, [PhotoWarning::Truncated], "never silently");
    assert!(resize(&jpeg, &[60]).unwrap().warnings.is_empty());
    // The top is the photo, the bottom rows mid-grey.
    let sound = engine(&jpeg);
    assert_eq!(ours.pixel(5, 2), sound.pixel(5, 2));
    let bottom = ours.pixel(W - 1, H - 1);
    assert!(bottom.iter().all(|&c| c.abs_diff(128) <= 2), "{bottom:?}");
}

#[test]
fn a_file_cut_before_its_first_scan_is_corrupt() {
    let jpeg = sound_jpeg();
    let sos = marker_at(&jpeg, 0xDA);
    let e = resize(&jpeg[..sos], &[60]).unwrap_err();
    assert_eq!(e.code().as_str(), "corrupt_image");
}

#[test]
fn a_jpeg_without_quantisation_tables_is_corrupt() {
    // Unrecoverable for every decoder: the scan cannot be dequantised.
    let jpeg = sound_jpeg();
    let mut out = jpeg[..2].to_vec();
    let mut pos = 2;
    while jpeg[pos + 1] != 0xDA {
        let len = usize::from(u16::from_be_bytes([jpeg[pos + 2], jpeg[pos + 3]]));
        if jpeg[pos + 1] != 0xDB {
            out.extend_from_slice(&jpeg[pos..pos + 2 + len]);
        }
        pos += 2 + len;
    }
    out.extend_from_slice(&jpeg[pos..]);
    assert!(pillow(&out).is_err());
    let e = resize(&out, &[60]).unwrap_err();
    assert_eq!(e.code().as_str(), "corrupt_image");
}

/// A GIF with neither a global nor a local colour table: Pillow reads the indices as grey
/// levels; so does the engine.
#[test]
fn gif_without_any_colour_table() {
    let (w, h) = (32u16, 16u16);
    let indices: Vec<u8> = (0..h)
        .flat_map(|y| (0..w).map(move |x| (x * 8 + y) as u8))
        .collect();
    let gif = gif_without_palette(w, h, &indices);
    let theirs = pillow(&gif).expect("Pillow opens it");
    let out = tirage_engine::resize(&gif, &options(&[16], OutputFormat::Png), &Limits::default())
        .unwrap();
    let ours = rendition(&out.renditions[0].data);
    assert_eq!(ours.data, theirs.data);
}

/// A GIF89a of `indices` with no colour table at all. The LZW stream sends every index as a
/// literal code and a clear code every 250 pixels, so the code width stays 9 bits.
fn gif_without_palette(w: u16, h: u16, indices: &[u8]) -> Vec<u8> {
    let mut out = b"GIF89a".to_vec();
    out.extend_from_slice(&w.to_le_bytes());
    out.extend_from_slice(&h.to_le_bytes());
    out.extend_from_slice(&[0x00, 0, 0]); // no global table
    out.push(0x2C);
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(&w.to_le_bytes());
    out.extend_from_slice(&h.to_le_bytes());
    out.push(0x00); // no local table
    out.push(8); // LZW minimum code size
    let (mut bits, mut nbits, mut lzw) = (0u32, 0u32, Vec::new());
    let mut put = |code: u32, lzw: &mut Vec<u8>| {
        bits |= code << nbits;
        nbits += 9;
        while nbits >= 8 {
            lzw.push(bits as u8);
            bits >>= 8;
            nbits -= 8;
        }
    };
    for chunk in indices.chunks(250) {
        put(256, &mut lzw);
        for &i in chunk {
            put(u32::from(i), &mut lzw);
        }
    }
    put(257, &mut lzw);
    put(0, &mut lzw); // flushes the last bits
    for block in lzw.chunks(255) {
        out.push(block.len() as u8);
        out.extend_from_slice(block);
    }
    out.extend_from_slice(&[0, 0x3B]);
    out
}
