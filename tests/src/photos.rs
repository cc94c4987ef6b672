//! Real photographs for the end-to-end tests: the benchmarks' reference corpus
//! (bench/corpus, built from Debian wallpaper packages by bench/build-corpus.sh when absent:
//! 1600p to 4K JPEGs, landscape, portrait and square), and any number of distinct, smaller
//! photos cut from it.

use std::path::{Path, PathBuf};
use std::process::Command;

use image::codecs::jpeg::JpegEncoder;

use crate::repo;

/// Up to `n` photos of the corpus, as (file name, bytes), building the corpus when absent.
pub fn corpus(n: usize) -> Vec<(String, Vec<u8>)> {
    corpus_files()
        .into_iter()
        .take(n)
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect()
}

fn corpus_files() -> Vec<PathBuf> {
    let corpus = repo().join("bench/corpus");
    let list = |dir: &Path| -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
            .map(|rd| rd.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        v.retain(|p| p.extension().is_some_and(|x| x == "jpg"));
        v.sort();
        v
    };
    if list(&corpus).len() < 4 {
        let status = Command::new(repo().join("bench/build-corpus.sh"))
            .status()
            .expect("run bench/build-corpus.sh");
        assert!(
            status.success(),
            "bench/build-corpus.sh failed: no photos to send"
        );
    }
    let files = list(&corpus);
    assert!(
        files.len() >= 4,
        "bench/corpus has only {} photos",
        files.len()
    );
    files
}

/// `n` distinct real photos, as (file name, bytes): the i-th is a crop of corpus photo
/// `i % corpus size` (from the whole frame down to 64 % of it, at an offset, every third one
/// cut to portrait), scaled to a long side between 1200 and 1600 px and encoded as JPEG q90,
/// like a phone's downsized upload. Written once into `cache` and read from there after.
pub fn variants(n: usize, cache: &Path) -> Vec<(String, Vec<u8>)> {
    std::fs::create_dir_all(cache).unwrap();
    let sources = corpus_files();
    let mut decoded: Vec<Option<image::DynamicImage>> = vec![None; sources.len()];
    (0..n)
        .map(|i| {
            let src = i % sources.len();
            let stem = sources[src].file_stem().unwrap().to_string_lossy();
            let name = format!("v{i:04}-{stem}.jpg");
            let path = cache.join(&name);
            if let Ok(bytes) = std::fs::read(&path) {
                return (name, bytes);
            }
            let img = decoded[src]
                .get_or_insert_with(|| image::open(&sources[src]).unwrap())
                .clone();
            let bytes = variant(&img, i / sources.len());
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, &bytes).unwrap();
            std::fs::rename(&tmp, &path).unwrap();
            (name, bytes)
        })
        .collect()
}

/// The k-th variant of one photo (see [`variants`]).
fn variant(img: &image::DynamicImage, k: usize) -> Vec<u8> {
    let (w, h) = (img.width(), img.height());
    let keep = 1.0 - 0.04 * (k % 10) as f64;
    let (mut cw, mut ch) = ((f64::from(w) * keep) as u32, (f64::from(h) * keep) as u32);
    if k % 3 == 1 && cw > ch {
        cw = ch * 3 / 4; // portrait
    }
    cw = cw.max(64);
    ch = ch.max(64);
    let shift = ((k * 37) % 100) as f64 / 100.0;
    let x = (f64::from(w - cw) * shift) as u32;
    let y = (f64::from(h - ch) * (1.0 - shift)) as u32;
    let long = (1600 - 100 * (k % 5) as u32).min(cw.max(ch)); // never upscaled
    let scale = f64::from(long) / f64::from(cw.max(ch));
    let (tw, th) = (
        ((f64::from(cw) * scale).round() as u32).max(1),
        ((f64::from(ch) * scale).round() as u32).max(1),
    );
    let small = img.crop_imm(x, y, cw, ch).thumbnail_exact(tw, th).to_rgb8();
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, 90)
        .encode_image(&small)
        .unwrap();
    out
}
