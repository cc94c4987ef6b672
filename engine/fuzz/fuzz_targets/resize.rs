//! Any bytes in: a typed result out, never a panic or an abort, within the memory limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tirage_engine::{Limits, probe, resize};
use tirage_core::{BatchOptions, OutputFormat};

fuzz_target!(|data: &[u8]| {
    // A small pixel limit keeps each run fast and memory-bounded, as in production.
    let limits = Limits {
        max_pixels: 4_000_000,
        max_bytes: 8 << 20,
    };
    let _ = probe(data, &limits);
    // The last byte picks the output format, so every encoder is reached too.
    let format = match data.last().map(|b| b % 3) {
        Some(1) => OutputFormat::Webp,
        Some(2) => OutputFormat::Png,
        _ => OutputFormat::Jpeg,
    };
    let options = BatchOptions {
        sizes: vec![64, 32],
        format,
        quality: 80,
        ..BatchOptions::default()
    };
    if let Ok(r) = resize(data, &options, &limits) {
        for rend in &r.renditions {
            assert!(rend.width > 0 && rend.height > 0 && !rend.data.is_empty());
        }
    }
});
