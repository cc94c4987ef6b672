//! Cost of each output format per photo (bench/formats.sh, docs/BENCHMARKS.md "AVIF output"):
//! every file to 1080/720/360 at one quality, on this one thread, each format in turn over
//! the whole set, `rounds` times (the order alternating from round to round). Prints, per
//! format, the median over rounds of the CPU milliseconds per photo (this thread's run time,
//! from the scheduler, the whole resize: decode, resize, encode) and the bytes per size, then
//! each against the first format. With `BENCH_OUT` set, the last round's renditions are
//! written there as `<format>/<stem>_<size>.<ext>` (for bench/formats_quality.py).
//!
//!   cargo run --release -p tirage-engine --example formats -- <jpeg,avif,...> <quality> <rounds> <files>...

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use tirage_core::{BatchOptions, OutputFormat};
use tirage_engine::Limits;

const SIZES: [u32; 3] = [1080, 720, 360];

/// This thread's time on a CPU so far, in nanoseconds (`/proc/thread-self/schedstat`'s first
/// field): per-photo resolution, unlike the 10 ms ticks of `/proc/self/stat`.
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// One pass of one format over every file: CPU ms per photo, bytes per size; the renditions
/// are written to `out` when given (after the timing).
fn pass(
    files: &[(String, Vec<u8>)],
    options: &BatchOptions,
    out: Option<&Path>,
) -> Result<(f64, [u64; SIZES.len()]), String> {
    let limits = Limits::default();
    let mut bytes = [0u64; SIZES.len()];
    let mut kept = Vec::new();
    let start = thread_cpu_ns();
    for (name, data) in files {
        let resized =
            tirage_engine::resize(data, options, &limits).map_err(|e| format!("{name}: {e}"))?;
        for (total, r) in bytes.iter_mut().zip(&resized.renditions) {
            *total += r.data.len() as u64;
        }
        if out.is_some() {
            kept.push((name, resized.renditions));
        }
    }
    let ms = (thread_cpu_ns() - start) as f64 / 1e6 / files.len().max(1) as f64;
    if let Some(dir) = out {
        let dir = dir.join(options.format.name());
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for (name, renditions) in kept {
            let stem = Path::new(name)
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy();
            for r in renditions {
                let path = dir.join(format!("{stem}_{}.{}", r.size, r.format.extension()));
                std::fs::write(&path, &r.data).map_err(|e| format!("{}: {e}", path.display()))?;
            }
        }
    }
    Ok((ms, bytes))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(formats), Some(quality), Some(rounds)) = (args.first(), args.get(1), args.get(2))
    else {
        eprintln!("usage: formats <jpeg,avif,...> <quality> <rounds> <files>...");
        return ExitCode::from(2);
    };
    let formats: Result<Vec<OutputFormat>, _> = formats.split(',').map(str::parse).collect();
    let (Ok(formats), Ok(quality), Ok(rounds)) =
        (formats, quality.parse::<u8>(), rounds.parse::<usize>())
    else {
        eprintln!("bad formats, quality or rounds");
        return ExitCode::from(2);
    };
    let files: Vec<(String, Vec<u8>)> = args[3..]
        .iter()
        .filter_map(|f| Some((f.clone(), std::fs::read(f).ok()?)))
        .collect();
    let mut times = vec![Vec::new(); formats.len()];
    let mut sizes = vec![[0u64; SIZES.len()]; formats.len()];
    let out_dir = std::env::var_os("BENCH_OUT").map(PathBuf::from);
    let rounds = rounds.max(1);
    for round in 0..rounds {
        let mut order: Vec<usize> = (0..formats.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for i in order {
            let options = BatchOptions {
                sizes: SIZES.to_vec(),
                format: formats[i],
                quality,
                ..BatchOptions::default()
            };
            let out = out_dir.as_deref().filter(|_| round + 1 == rounds);
            match pass(&files, &options, out) {
                Ok((ms, bytes)) => {
                    eprintln!("round {round} {}: {ms:.1} ms/photo", formats[i].name());
                    times[i].push(ms);
                    sizes[i] = bytes;
                }
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::FAILURE;
                }
            }
        }
    }
    let photos = files.len() as f64;
    let base_ms = median(times[0].clone());
    let base_bytes = sizes[0];
    println!(
        "| format | ms/photo (rounds) | × {} | bytes/photo 1080 / 720 / 360 | × {} (1080 / 720 / 360) |",
        formats[0].name(),
        formats[0].name()
    );
    println!("|---|---|---|---|---|");
    for (i, format) in formats.iter().enumerate() {
        let ms = median(times[i].clone());
        let rounds: Vec<String> = times[i].iter().map(|t| format!("{t:.1}")).collect();
        let per_photo: Vec<String> = sizes[i]
            .iter()
            .map(|&b| format!("{:.0}", b as f64 / photos))
            .collect();
        let ratios: Vec<String> = sizes[i]
            .iter()
            .zip(base_bytes)
            .map(|(&b, base)| format!("{:.2}", b as f64 / base.max(1) as f64))
            .collect();
        println!(
            "| {} q{quality} | {ms:.1} ({}) | {:.2} | {} | {} |",
            format.name(),
            rounds.join(", "),
            ms / base_ms.max(1e-9),
            per_photo.join(" / "),
            ratios.join(" / "),
        );
    }
    ExitCode::SUCCESS
}
