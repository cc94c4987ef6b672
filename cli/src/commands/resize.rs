//! `tirage resize <INPUT>... --out <DIR>`: every photo to every size, on a pool of threads.

use std::collections::HashSet;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Instant;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use tirage_core::{BatchOptions, MetadataChoice, OutputFormat};
use tirage_engine::Limits;

use crate::codes::LocalCode;
use crate::inputs::{Failure, discover, stem_of};

#[derive(Debug, Args)]
pub struct ResizeArgs {
    /// Image files, or directories whose images (recursively) are all resized.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Directory the renditions are written to (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// Short side of each rendition, in pixels.
    #[arg(long, value_delimiter = ',', default_value = "1080,720,360")]
    pub sizes: Vec<u32>,
    /// Encoder quality, 1..=100 (ignored for PNG).
    #[arg(long, default_value_t = 85)]
    pub quality: u8,
    /// Output format: jpeg, webp, png or avif.
    #[arg(long, default_value = "jpeg")]
    pub format: OutputFormat,
    /// What of each original's metadata the renditions keep: strip (nothing) or copyright
    /// (EXIF Artist and Copyright, never GPS, and an sRGB ICC profile).
    #[arg(long, default_value = "strip")]
    pub metadata: MetadataChoice,
    /// Worker threads; defaults to the number of cores.
    #[arg(long)]
    pub threads: Option<usize>,
}

pub fn run(args: ResizeArgs) -> ExitCode {
    let options = BatchOptions {
        sizes: args.sizes.clone(),
        format: args.format,
        quality: args.quality,
        metadata: args.metadata,
    };
    if let Err(e) = options.validate() {
        eprintln!("error: invalid_options: {e}");
        return ExitCode::from(2);
    }
    if let Err(e) = std::fs::create_dir_all(&args.out) {
        eprintln!("error: {}: io_error: {e}", args.out.display());
        return ExitCode::from(2);
    }
    let mut failures = Vec::new();
    let inputs = discover(&args.inputs, &mut failures);
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let pool = match rayon::ThreadPoolBuilder::new().num_threads(threads).build() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: cannot start {threads} threads: {e}");
            return ExitCode::from(2);
        }
    };

    let bar = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(inputs.len() as u64);
        if let Ok(style) =
            ProgressStyle::with_template("{bar:40} {pos}/{len} photos {per_sec} eta {eta}")
        {
            bar.set_style(style);
        }
        bar
    } else {
        ProgressBar::hidden()
    };

    let limits = Limits::default();
    let started = Instant::now();
    let taken = Mutex::new(HashSet::new());
    let results: Vec<Result<usize, Failure>> = pool.install(|| {
        inputs
            .par_iter()
            .map(|path| {
                let r = process(path, &args.out, &options, &limits, &taken);
                if let Err(f) = &r {
                    bar.suspend(|| f.report());
                }
                bar.inc(1);
                r
            })
            .collect()
    });
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();

    for f in &failures {
        f.report();
    }
    let photos = results.iter().filter(|r| r.is_ok()).count();
    let renditions: usize = results.iter().filter_map(|r| r.as_ref().ok()).sum();
    let failed = failures.len() + results.iter().filter(|r| r.is_err()).count();
    println!(
        "{photos} photos, {renditions} renditions, {failed} failed, {seconds:.2} s, {:.1} photos/s",
        photos as f64 / seconds.max(1e-9)
    );
    if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// Resizes one input and writes its renditions; returns how many were written.
fn process(
    path: &Path,
    out: &Path,
    options: &BatchOptions,
    limits: &Limits,
    taken: &Mutex<HashSet<String>>,
) -> Result<usize, Failure> {
    let stem = stem_of(path);
    // Two inputs with one stem would overwrite each other's renditions.
    let fresh = taken
        .lock()
        .map(|mut t| t.insert(stem.clone()))
        .unwrap_or(false);
    if !fresh {
        return Err(Failure::new(
            path,
            LocalCode::DuplicateName,
            format!("another input already writes {stem}_<size> files"),
        ));
    }
    // Refuse oversized files before reading them into memory.
    let len = std::fs::metadata(path)
        .map_err(|e| Failure::io(path, &e))?
        .len();
    if len > limits.max_bytes {
        let e = tirage_engine::EngineError::TooLarge {
            size: len,
            limit: limits.max_bytes,
        };
        return Err(Failure::new(path, e.code(), e.to_string()));
    }
    let bytes = std::fs::read(path).map_err(|e| Failure::io(path, &e))?;
    let resized = tirage_engine::resize(&bytes, options, limits)
        .map_err(|e| Failure::new(path, e.code(), e.to_string()))?;
    for r in &resized.renditions {
        let file = out.join(format!("{stem}_{}.{}", r.size, r.format.extension()));
        std::fs::write(&file, &r.data).map_err(|e| Failure::io(&file, &e))?;
    }
    Ok(resized.renditions.len())
}
