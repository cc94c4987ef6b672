//! The poison photo: a real PNG, small on disk (a smooth gradient compresses to about a
//! megabyte) but 16,000 × 16,000 pixels, so decoding it takes 768 MB — over the memory limit
//! the suite's workers run under (cluster.sh TIRAGE_WORKER_DATA_LIMIT_MB), while the
//! ordinary photos need a few tens of MB. Nothing in the product knows about it: the worker
//! dies because the allocator cannot get the memory, as one over its container's limit would.

use std::io::Write;
use std::path::Path;

pub const SIDE: u32 = 16_000;
/// Its pixels (256 M): the workers' pixel limit must let it through to the decoder.
pub const PIXELS: u64 = SIDE as u64 * SIDE as u64;

/// The PNG's bytes, written once into `cache`.
pub fn poison_png(cache: &Path) -> Vec<u8> {
    let path = cache.join(format!("poison-{SIDE}.png"));
    if let Ok(bytes) = std::fs::read(&path) {
        return bytes;
    }
    std::fs::create_dir_all(cache).unwrap();
    let tmp = path.with_extension("tmp");
    let file = std::io::BufWriter::new(std::fs::File::create(&tmp).unwrap());
    let mut encoder = png::Encoder::new(file, SIDE, SIDE);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Balanced);
    let mut stream = encoder
        .write_header()
        .unwrap()
        .into_stream_writer_with_size(1 << 20)
        .unwrap();
    let mut row = vec![0u8; SIDE as usize * 3];
    for y in 0..SIDE {
        for (x, px) in row.chunks_exact_mut(3).enumerate() {
            px[0] = (x as u32 * 255 / SIDE) as u8;
            px[1] = (y * 255 / SIDE) as u8;
            px[2] = 128;
        }
        stream.write_all(&row).unwrap();
    }
    stream.finish().unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    std::fs::read(&path).unwrap()
}
