//! Driver for bench/robustness.sh (not a test): resizes one file as a worker would (default
//! limits, 1080/720/360, JPEG) and says what happened on stdout, one line:
//! `ok <width>x<height>` (exit 0) or `refused <failure code>` (exit 3). A crash or a hang is
//! the script's to see (signal, timeout); a panic exits 101.
//!
//!   cargo run -p tirage-engine --example robust -- <file>

use std::process::ExitCode;

use tirage_core::{BatchOptions, OutputFormat};
use tirage_engine::Limits;

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: robust <file>");
        return ExitCode::from(2);
    };
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{path}: {e}");
            return ExitCode::from(2);
        }
    };
    let format: OutputFormat = std::env::var("ROBUST_FORMAT")
        .ok()
        .and_then(|f| f.parse().ok())
        .unwrap_or_default();
    let options = BatchOptions {
        sizes: vec![1080, 720, 360],
        format,
        quality: 85,
        ..BatchOptions::default()
    };
    let _ = tirage_engine::probe(&bytes, &Limits::default());
    match tirage_engine::resize(&bytes, &options, &Limits::default()) {
        Ok(r) => {
            println!("ok {}x{}", r.width, r.height);
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("refused {}", e.code().as_str());
            ExitCode::from(3)
        }
    }
}
