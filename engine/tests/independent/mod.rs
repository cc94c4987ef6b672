//! An independent decoder to hold the engine against: Pillow (with pillow-heif for HEIC),
//! installed into the project's `.venv-tools/` by `scripts/install-deps.sh`. A test that needs
//! it fails loudly when it is missing.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// Reads an image from stdin, optionally applies its EXIF orientation and converts it from its
/// ICC profile to sRGB, writes "width height\n" and the RGB bytes to stdout.
const SCRIPT: &str = r#"
import io, sys
from PIL import Image, ImageCms, ImageFile, ImageOps
import pillow_heif
pillow_heif.register_heif_opener()
ImageFile.LOAD_TRUNCATED_IMAGES = sys.argv[1] == "truncated"
im = Image.open(io.BytesIO(sys.stdin.buffer.read()))
if sys.argv[2] == "oriented":
    im = ImageOps.exif_transpose(im)
if sys.argv[3] == "srgb" and im.info.get("icc_profile"):
    source = ImageCms.ImageCmsProfile(io.BytesIO(im.info["icc_profile"]))
    im = ImageCms.profileToProfile(im.convert("RGB"), source, ImageCms.createProfile("sRGB"))
im = im.convert("RGB")
sys.stdout.buffer.write(b"%d %d\n" % im.size + im.tobytes())
"#;

fn python() -> PathBuf {
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv-tools/bin/python");
    assert!(
        venv.exists(),
        "{} is missing: run scripts/install-deps.sh (Pillow is the independent decoder)",
        venv.display()
    );
    venv
}

/// A decoded image: width, height and packed RGB.
#[derive(Debug, Clone)]
pub struct Rgb {
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

impl Rgb {
    pub fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        let i = (y as usize * self.width as usize + x as usize) * 3;
        [self.data[i], self.data[i + 1], self.data[i + 2]]
    }

    /// Mean absolute difference per sample; panics when the sizes differ.
    pub fn mean_abs_diff(&self, other: &Rgb) -> f64 {
        assert_eq!((self.width, self.height), (other.width, other.height));
        let sum: u64 = self
            .data
            .iter()
            .zip(&other.data)
            .map(|(&a, &b)| u64::from(a.abs_diff(b)))
            .sum();
        sum as f64 / self.data.len() as f64
    }
}

fn run(bytes: &[u8], truncated: bool, oriented: bool, srgb: bool) -> Result<Rgb, String> {
    let mut child = Command::new(python())
        .args(["-c", SCRIPT])
        .arg(if truncated { "truncated" } else { "strict" })
        .arg(if oriented { "oriented" } else { "stored" })
        .arg(if srgb { "srgb" } else { "as-is" })
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start Pillow");
    // Pillow may refuse before reading everything: a broken pipe is its answer, not ours.
    let _ = child.stdin.take().unwrap().write_all(bytes);
    let out = child.wait_with_output().unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let nl = out.stdout.iter().position(|&b| b == b'\n').unwrap();
    let head = std::str::from_utf8(&out.stdout[..nl]).unwrap();
    let (w, h) = head.split_once(' ').unwrap();
    Ok(Rgb {
        width: w.parse().unwrap(),
        height: h.parse().unwrap(),
        data: out.stdout[nl + 1..].to_vec(),
    })
}

/// Pillow's decode with its defaults (EXIF orientation not applied), or its refusal.
pub fn pillow(bytes: &[u8]) -> Result<Rgb, String> {
    run(bytes, false, false, false)
}

/// Pillow's decode of a possibly truncated file (`LOAD_TRUNCATED_IMAGES`, what libvips does
/// by default).
pub fn pillow_truncated(bytes: &[u8]) -> Result<Rgb, String> {
    run(bytes, true, false, false)
}

/// Pillow's decode with the EXIF orientation applied (`ImageOps.exif_transpose`).
pub fn pillow_oriented(bytes: &[u8]) -> Result<Rgb, String> {
    run(bytes, false, true, false)
}

/// Pillow's decode converted from its embedded ICC profile to sRGB (Little CMS, through
/// `ImageCms`).
pub fn pillow_srgb(bytes: &[u8]) -> Result<Rgb, String> {
    run(bytes, false, false, true)
}

/// Decodes any rendition the engine wrote (PNG in these tests) with the `image` crate.
pub fn rendition(bytes: &[u8]) -> Rgb {
    let img = image::load_from_memory(bytes).unwrap().into_rgb8();
    Rgb {
        width: img.width(),
        height: img.height(),
        data: img.into_raw(),
    }
}
