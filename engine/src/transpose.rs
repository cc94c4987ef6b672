//! Transposes of single-byte planes. Every plane is resized by two vertical passes with a
//! transpose after each (see `planes::Plane::resized_by_columns`), so transposing is one of
//! the engine's largest costs after decoding: it is done in 16×16 blocks in SSE2 registers
//! on x86-64 (SSE2 is part of that target's baseline: no run-time detection), in 8×8 blocks
//! of u64 rows elsewhere and on the edges.

use std::ops::Range;

/// The transpose of a `width`×`height` single-byte plane (tightly packed): `height`×`width`.
/// `src` must hold at least `width * height` bytes.
pub fn transpose(src: &[u8], width: usize, height: usize) -> Vec<u8> {
    let mut dst = vec![0u8; width * height];
    transpose_into(src, width, height, &mut dst);
    dst
}

/// [`transpose`] into `dst`, which must hold at least `width * height` bytes.
pub fn transpose_into(src: &[u8], width: usize, height: usize, dst: &mut [u8]) {
    let plane = Shape { width, height };
    let (w16, h16) = (width - width % 16, height - height % 16);
    for by in (0..h16).step_by(16) {
        for bx in (0..w16).step_by(16) {
            block16(src, dst, plane, bx, by);
        }
    }
    edges(src, dst, plane, w16..width, 0..height);
    edges(src, dst, plane, 0..w16, h16..height);
}

/// Width and height of the source plane (the destination is `height` wide).
#[derive(Clone, Copy)]
struct Shape {
    width: usize,
    height: usize,
}

/// Transposes the rectangle `xs`×`ys` of the source: 8×8 blocks, then pixel by pixel.
fn edges(src: &[u8], dst: &mut [u8], plane: Shape, xs: Range<usize>, ys: Range<usize>) {
    let x8 = xs.start + xs.len() / 8 * 8;
    let y8 = ys.start + ys.len() / 8 * 8;
    for by in (ys.start..y8).step_by(8) {
        for bx in (xs.start..x8).step_by(8) {
            block8(src, dst, plane, bx, by);
        }
    }
    let (w, h) = (plane.width, plane.height);
    for y in ys.clone() {
        for x in x8..xs.end {
            dst[x * h + y] = src[y * w + x];
        }
    }
    for y in y8..ys.end {
        for x in xs.start..x8 {
            dst[x * h + y] = src[y * w + x];
        }
    }
}

/// Transposes the 16×16 block at (`bx`, `by`): sixteen rows in SSE2 registers, four rounds of
/// byte interleaves. Register j, lane k holds source pixel (k, j) after the rounds: each
/// round rotates the 8-bit (register, lane) index right by one bit, four rounds swap its
/// halves.
#[cfg(target_arch = "x86_64")]
fn block16(src: &[u8], dst: &mut [u8], plane: Shape, bx: usize, by: usize) {
    use safe_arch::{
        load_unaligned_m128i, m128i, store_unaligned_m128i, unpack_high_i8_m128i,
        unpack_low_i8_m128i,
    };
    let (w, h) = (plane.width, plane.height);
    let mut r = [m128i::default(); 16];
    for (i, row) in r.iter_mut().enumerate() {
        if let Some(bytes) = src[(by + i) * w + bx..].first_chunk::<16>() {
            *row = load_unaligned_m128i(bytes);
        }
    }
    for _ in 0..4 {
        let mut t = [m128i::default(); 16];
        for i in 0..8 {
            t[2 * i] = unpack_low_i8_m128i(r[i], r[i + 8]);
            t[2 * i + 1] = unpack_high_i8_m128i(r[i], r[i + 8]);
        }
        r = t;
    }
    for (i, row) in r.iter().enumerate() {
        if let Some(out) = dst[(bx + i) * h + by..].first_chunk_mut::<16>() {
            store_unaligned_m128i(out, *row);
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn block16(src: &[u8], dst: &mut [u8], plane: Shape, bx: usize, by: usize) {
    for (dx, dy) in [(0, 0), (8, 0), (0, 8), (8, 8)] {
        block8(src, dst, plane, bx + dx, by + dy);
    }
}

/// Transposes the 8×8 block at (`bx`, `by`) in registers, as eight u64 rows and three rounds
/// of block swaps.
fn block8(src: &[u8], dst: &mut [u8], plane: Shape, bx: usize, by: usize) {
    const MASKS: [(u32, u64); 3] = [
        (32, 0x0000_0000_FFFF_FFFF),
        (16, 0x0000_FFFF_0000_FFFF),
        (8, 0x00FF_00FF_00FF_00FF),
    ];
    let (w, h) = (plane.width, plane.height);
    let mut r = [0u64; 8];
    for (i, row) in r.iter_mut().enumerate() {
        if let Some(bytes) = src[(by + i) * w + bx..].first_chunk::<8>() {
            *row = u64::from_le_bytes(*bytes);
        }
    }
    // Byte c of row i is pixel (bx + c, by + i). Each round swaps, between rows i and i + s,
    // the upper s columns of each 2s-column group of row i with the lower s columns of row
    // i + s: 4x4 blocks, then 2x2, then single bytes.
    for (shift, mask) in MASKS {
        let s = (shift / 8) as usize;
        for i in 0..8 {
            if i & s == 0 {
                let t = ((r[i] >> shift) ^ r[i + s]) & mask;
                r[i + s] ^= t;
                r[i] ^= t << shift;
            }
        }
    }
    for (i, row) in r.iter().enumerate() {
        dst[(bx + i) * h + by..][..8].copy_from_slice(&row.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transpose_matches_the_definition() {
        let shapes = [
            (1, 1),
            (8, 8),
            (16, 9),
            (13, 21),
            (3, 40),
            (16, 16),
            (33, 50),
            (47, 17),
        ];
        for (w, h) in shapes {
            let src: Vec<u8> = (0..w * h).map(|i| (i * 7 % 251) as u8).collect();
            let t = transpose(&src, w, h);
            for y in 0..h {
                for x in 0..w {
                    assert_eq!(t[x * h + y], src[y * w + x], "{w}x{h} at ({x}, {y})");
                }
            }
        }
    }

    #[test]
    fn the_8x8_and_16x16_blocks_agree() {
        let (w, h) = (16, 16);
        let plane = Shape {
            width: w,
            height: h,
        };
        let src: Vec<u8> = (0..w * h).map(|i| (i * 13 % 253) as u8).collect();
        let (mut by16, mut by8) = (vec![0u8; w * h], vec![0u8; w * h]);
        block16(&src, &mut by16, plane, 0, 0);
        for (bx, by) in [(0, 0), (8, 0), (0, 8), (8, 8)] {
            block8(&src, &mut by8, plane, bx, by);
        }
        assert_eq!(by16, by8);
    }
}
