//! `tirage resize` end to end: the built binary on a temp dir.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

use std::path::Path;
use std::process::Command;

use image::{ImageEncoder, RgbImage};

fn write_jpeg(path: &Path, w: u32, h: u32) {
    let img = RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 90])
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
        .write_image(&img, w, h, image::ExtendedColorType::Rgb8)
        .unwrap();
    std::fs::write(path, out).unwrap();
}

fn tirage(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tirage"))
        .args(args)
        .output()
        .unwrap()
}

/// `tirage resize <photo> --out <out> --sizes 32 <extra>...`, which must succeed.
fn resize_to_32(photo: &Path, out: &Path, extra: &[&str]) {
    let mut args = vec![
        "resize",
        photo.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--sizes",
        "32",
    ];
    args.extend_from_slice(extra);
    let o = tirage(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn resizes_a_directory_reports_the_bad_file_and_exits_non_zero() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    std::fs::create_dir_all(input.join("nested")).unwrap();
    write_jpeg(&input.join("wide.jpg"), 400, 200);
    write_jpeg(&input.join("nested/tall.jpeg"), 150, 300);
    std::fs::write(
        input.join("notes.txt"),
        "not an image: skipped inside a directory",
    )
    .unwrap();
    let bad = tmp.path().join("broken.jpg");
    std::fs::write(&bad, b"\xFF\xD8\xFF\xE0 this is not really a jpeg").unwrap();
    let out = tmp.path().join("out");

    let o = tirage(&[
        "resize",
        input.to_str().unwrap(),
        bad.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--sizes",
        "100,50",
        "--threads",
        "2",
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(1),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    assert!(
        stderr.contains("broken.jpg") && stderr.contains("corrupt_image"),
        "{stderr}"
    );
    assert!(
        stdout.contains("2 photos, 4 renditions, 1 failed"),
        "{stdout}"
    );

    let mut files: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(
        files,
        ["tall_100.jpg", "tall_50.jpg", "wide_100.jpg", "wide_50.jpg"]
    );
    let wide = image::open(out.join("wide_100.jpg")).unwrap();
    assert_eq!((wide.width(), wide.height()), (200, 100));
    let tall = image::open(out.join("tall_50.jpg")).unwrap();
    assert_eq!((tall.width(), tall.height()), (50, 100));
}

#[test]
fn all_good_exits_zero_with_other_formats() {
    let tmp = tempfile::tempdir().unwrap();
    let photo = tmp.path().join("p.jpg");
    write_jpeg(&photo, 64, 48);
    let out = tmp.path().join("o");
    for (format, ext) in [
        ("webp", "webp"),
        ("png", "png"),
        ("jpeg", "jpg"),
        ("avif", "avif"),
    ] {
        resize_to_32(&photo, &out, &["--format", format]);
        let file = out.join(format!("p_32.{ext}"));
        let size = if ext == "avif" {
            // The `image` crate reads no AVIF: the engine's header reader (libheif) does.
            let probe =
                tirage_engine::probe(&std::fs::read(file).unwrap(), &Default::default()).unwrap();
            assert_eq!(probe.format, tirage_engine::SourceFormat::Avif);
            (probe.width, probe.height)
        } else {
            let img = image::open(file).unwrap();
            (img.width(), img.height())
        };
        assert_eq!(size, (43, 32));
    }
}

#[test]
fn metadata_copyright_keeps_the_artist_and_the_default_strips_it() {
    let tmp = tempfile::tempdir().unwrap();
    let photo = tmp.path().join("p.jpg");
    write_jpeg(&photo, 64, 48);
    // An APP1 EXIF segment right after SOI: IFD0 with Artist "Ann" (ASCII, inline) and a GPS
    // IFD pointer (to an empty IFD).
    let mut app1 = b"\xFF\xE1\x00\x34Exif\0\0II*\0\x08\0\0\0\x02\0".to_vec();
    app1.extend_from_slice(b"\x3B\x01\x02\0\x04\0\0\0Ann\0");
    app1.extend_from_slice(b"\x25\x88\x04\0\x01\0\0\0\x26\0\0\0");
    app1.extend_from_slice(&[0; 4 + 6]); // no IFD1; the GPS IFD: no entry, no next
    assert_eq!(app1.len(), 4 + 0x34 - 2);
    let jpeg = std::fs::read(&photo).unwrap();
    std::fs::write(&photo, [&jpeg[..2], &app1, &jpeg[2..]].concat()).unwrap();
    for (choice, kept) in [("copyright", true), ("strip", false)] {
        let out = tmp.path().join(choice);
        resize_to_32(&photo, &out, &["--metadata", choice]);
        let bytes = std::fs::read(out.join("p_32.jpg")).unwrap();
        let find = |needle: &[u8]| bytes.windows(needle.len()).position(|w| w == needle);
        assert_eq!(find(b"ICC_PROFILE\0").is_some(), kept, "{choice}");
        let exif = find(b"Exif\0\0II*\0");
        assert_eq!(exif.is_some(), kept, "{choice}");
        if let Some(at) = exif {
            // IFD0 holds one entry, Artist "Ann": the GPS pointer is not copied.
            let ifd0 = &bytes[at + 6 + 8..];
            assert_eq!(&ifd0[..2], b"\x01\0");
            assert_eq!(&ifd0[2..14], b"\x3B\x01\x02\0\x04\0\0\0Ann\0");
        }
    }
    let o = tirage(&["resize", "x.jpg", "--out", "o", "--metadata", "gps"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn bad_options_are_a_usage_error() {
    let tmp = tempfile::tempdir().unwrap();
    let o = tirage(&[
        "resize",
        "x.jpg",
        "--out",
        tmp.path().to_str().unwrap(),
        "--sizes",
        "0",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("invalid_options"));
    let o = tirage(&["resize", "x.jpg", "--out", "o", "--format", "bmp"]);
    assert_eq!(o.status.code(), Some(2));
}
