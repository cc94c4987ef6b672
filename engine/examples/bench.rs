//! Benchmark driver for bench/engine.sh (not a test): resizes every file given to every size,
//! `passes` times, on this one thread, and prints the CPU seconds spent in the loop.
//!
//!   cargo run --release -p tirage-engine --example bench -- <engine|naive> <out-dir> <passes> <files>...
//!
//! `engine` is tirage_engine::resize; `naive` is the plain `image` crate path: full decode,
//! `resize` (Lanczos3) per size from the full image, `image`'s JPEG encoder at the same quality.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use image::ImageEncoder;
use image::codecs::jpeg::JpegEncoder;
use image::imageops::FilterType;
use tirage_core::BatchOptions;
use tirage_engine::{Limits, target_size};

/// CPU time of this process so far, from the scheduler (nanoseconds, all threads).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn naive(bytes: &[u8], options: &BatchOptions) -> Result<Vec<(u32, Vec<u8>)>, String> {
    let img = image::ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| e.to_string())?
        .decode()
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for &size in &options.sizes {
        let (w, h) = target_size(img.width(), img.height(), size);
        let small = img.resize_exact(w, h, FilterType::Lanczos3).into_rgb8();
        let mut data = Vec::new();
        JpegEncoder::new_with_quality(&mut data, options.quality)
            .write_image(&small, w, h, image::ExtendedColorType::Rgb8)
            .map_err(|e| e.to_string())?;
        out.push((size, data));
    }
    Ok(out)
}

fn main() -> ExitCode {
    // As the worker and the CLI do, so the loop measures the engine as it ships.
    tirage_engine::keep_working_memory();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 4 {
        eprintln!("usage: bench <engine|naive> <out-dir> <passes> <files>...");
        return ExitCode::from(2);
    }
    let (mode, out, passes) = (&args[0], PathBuf::from(&args[1]), &args[2]);
    let passes: usize = passes.parse().unwrap_or(1);
    let files: Vec<(PathBuf, Vec<u8>)> = args[3..]
        .iter()
        .filter_map(|f| Some((PathBuf::from(f), std::fs::read(f).ok()?)))
        .collect();
    let options = BatchOptions::default();
    let limits = Limits::default();
    let start = cpu_seconds();
    let mut written = Vec::new();
    for pass in 0..passes {
        for (path, bytes) in &files {
            let result = match mode.as_str() {
                "engine" => tirage_engine::resize(bytes, &options, &limits)
                    .map(|r| r.renditions.into_iter().map(|r| (r.size, r.data)).collect())
                    .map_err(|e| e.to_string()),
                _ => naive(bytes, &options),
            };
            match result {
                Ok(r) if pass + 1 == passes => written.push((path.clone(), r)),
                Ok(_) => {}
                Err(e) => {
                    eprintln!("{}: {e}", path.display());
                    return ExitCode::FAILURE;
                }
            }
        }
    }
    let cpu = cpu_seconds() - start;
    for (path, renditions) in written {
        let stem = Path::new(&path)
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy();
        for (size, data) in renditions {
            if let Err(e) = std::fs::write(out.join(format!("{stem}_{size}.jpg")), data) {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        }
    }
    println!("cpu_seconds {cpu:.3} photos {}", files.len() * passes);
    ExitCode::SUCCESS
}
