//! Every decoder behind its own door: random bytes seldom carry a valid signature, so the
//! `resize` target spends most runs in the sniffer. Here the first byte picks a decoder and
//! the rest follows that format's signature (JPEG, PNG, WebP, GIF, HEIC, AVIF), so each
//! decoder's parser sees the fuzzer's bytes. Any input: a typed result, never a panic or abort.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tirage_engine::{Limits, probe, resize};
use tirage_core::{BatchOptions, OutputFormat};

/// The bytes each decoder wants first; the fuzzer writes everything after them.
const SIGNATURES: &[&[u8]] = &[
    b"\xFF\xD8\xFF",
    b"\x89PNG\r\n\x1a\n",
    b"RIFF\xFF\xFF\xFF\x7FWEBP",
    b"GIF89a",
    b"\0\0\0\x18ftypheic\0\0\0\0mif1heic",
    b"\0\0\0\x1cftypavif\0\0\0\0avifmif1miaf",
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let signature = SIGNATURES[usize::from(pick) % SIGNATURES.len()];
    let mut input = signature.to_vec();
    input.extend_from_slice(body);
    let limits = Limits {
        max_pixels: 4_000_000,
        max_bytes: 8 << 20,
    };
    let _ = probe(&input, &limits);
    let format = match pick / 64 {
        1 => OutputFormat::Webp,
        2 => OutputFormat::Png,
        _ => OutputFormat::Jpeg,
    };
    let options = BatchOptions {
        sizes: vec![64, 32],
        format,
        quality: 80,
        ..BatchOptions::default()
    };
    if let Ok(r) = resize(&input, &options, &limits) {
        for rend in &r.renditions {
            assert!(rend.width > 0 && rend.height > 0 && !rend.data.is_empty());
        }
    }
});
