//! An ICC profile added to an AVIF that libheif wrote: a `colr` box of type `prof` appended to
//! the item properties (`ipco`) and associated (`ipma`) with the primary item, beside the
//! nclx `colr` box libheif wrote. libheif-rs 0.20 cannot hand libheif a profile (see
//! `avif::encode`), so the boxes are edited here: every enclosing box grows by what is
//! inserted into it, and every file offset the item locations (`iloc`) hold past the
//! insertion moves with the bytes.

use crate::EngineError;

fn bad(what: &str) -> EngineError {
    EngineError::CorruptImage(format!("AVIF profile: {what}"))
}

/// One box: where its header ends and where it ends (file offsets), and
/// where its size field is and how wide (4 bytes, or 8 for a `largesize`).
#[derive(Debug, Clone, Copy)]
struct Box {
    kind: [u8; 4],
    body: usize,
    end: usize,
    size_at: usize,
    size_width: usize,
}

fn read_u(data: &[u8], at: usize, width: usize) -> Result<u64, EngineError> {
    let bytes = data.get(at..at + width).ok_or_else(|| bad("truncated"))?;
    Ok(bytes.iter().fold(0u64, |v, &b| (v << 8) | u64::from(b)))
}

fn write_u(data: &mut [u8], at: usize, width: usize, value: u64) -> Result<(), EngineError> {
    if width < 8 && value >> (8 * width) != 0 {
        return Err(bad("a value outgrew its field"));
    }
    let bytes = data
        .get_mut(at..at + width)
        .ok_or_else(|| bad("truncated"))?;
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = (value >> (8 * (width - 1 - i))) as u8;
    }
    Ok(())
}

/// The boxes between `from` and `to`.
fn boxes(data: &[u8], from: usize, to: usize) -> Result<Vec<Box>, EngineError> {
    let mut out = Vec::new();
    let mut at = from;
    while at + 8 <= to {
        let size = read_u(data, at, 4)?;
        let kind: [u8; 4] = data[at + 4..at + 8].try_into().map_err(|_| bad("type"))?;
        let (size, body, size_at, size_width) = match size {
            0 => ((to - at) as u64, at + 8, at, 4),
            1 => (read_u(data, at + 8, 8)?, at + 16, at + 8, 8),
            n => (n, at + 8, at, 4),
        };
        let end = usize::try_from(size)
            .ok()
            .and_then(|s| at.checked_add(s))
            .filter(|&e| e <= to && e >= body)
            .ok_or_else(|| bad("a box overruns its parent"))?;
        out.push(Box {
            kind,
            body,
            end,
            size_at,
            size_width,
        });
        at = end;
    }
    Ok(out)
}

fn find(list: &[Box], kind: &[u8; 4]) -> Result<Box, EngineError> {
    list.iter()
        .copied()
        .find(|b| &b.kind == kind)
        .ok_or_else(|| bad(&format!("no {} box", String::from_utf8_lossy(kind))))
}

/// `avif` with `icc` as its primary image's ICC profile.
pub fn with_icc(avif: &[u8], icc: &[u8]) -> Result<Vec<u8>, EngineError> {
    let top = boxes(avif, 0, avif.len())?;
    let meta = find(&top, b"meta")?;
    // `meta` is a full box: version and flags before its children.
    let children = boxes(avif, meta.body + 4, meta.end)?;
    let (pitm, iloc, iprp) = (
        find(&children, b"pitm")?,
        find(&children, b"iloc")?,
        find(&children, b"iprp")?,
    );
    let properties = boxes(avif, iprp.body, iprp.end)?;
    let (ipco, ipma) = (find(&properties, b"ipco")?, find(&properties, b"ipma")?);
    let primary = read_u(
        avif,
        pitm.body + 4,
        if read_u(avif, pitm.body, 1)? == 0 {
            2
        } else {
            4
        },
    )?;
    let index = boxes(avif, ipco.body, ipco.end)?.len() + 1;

    let mut colr = Vec::with_capacity(12 + icc.len());
    colr.extend_from_slice(
        &u32::try_from(12 + icc.len())
            .map_err(|_| bad("size"))?
            .to_be_bytes(),
    );
    colr.extend_from_slice(b"colrprof");
    colr.extend_from_slice(icc);

    let mut out = avif.to_vec();
    let (association_count_at, association_end, association) =
        primary_association(avif, ipma, primary, index)?;
    let count = read_u(avif, association_count_at, 1)?;
    write_u(&mut out, association_count_at, 1, count + 1)?;
    let mut inserts = vec![(ipco.end, colr), (association_end, association)];
    inserts.sort_by_key(|(at, _)| *at);
    let grown = |b: &Box| -> u64 {
        inserts
            .iter()
            .filter(|(at, _)| (b.body..=b.end).contains(at))
            .map(|(_, bytes)| bytes.len() as u64)
            .sum()
    };
    for b in [meta, iprp, ipco, ipma] {
        let size = read_u(avif, b.size_at, b.size_width)?;
        write_u(&mut out, b.size_at, b.size_width, size + grown(&b))?;
    }
    let shift = |offset: u64| -> u64 {
        let moved: usize = inserts
            .iter()
            .filter(|(at, _)| (*at as u64) <= offset)
            .map(|(_, bytes)| bytes.len())
            .sum();
        offset + moved as u64
    };
    shift_locations(avif, &mut out, iloc, shift)?;

    let mut spliced =
        Vec::with_capacity(out.len() + inserts.iter().map(|i| i.1.len()).sum::<usize>());
    let mut from = 0;
    for (at, bytes) in &inserts {
        spliced.extend_from_slice(&out[from..*at]);
        spliced.extend_from_slice(bytes);
        from = *at;
    }
    spliced.extend_from_slice(&out[from..]);
    Ok(spliced)
}

/// In `ipma`, the primary item's entry: where its association count is, where its
/// associations end, and the bytes of one more (not essential) association with `index`.
fn primary_association(
    data: &[u8],
    ipma: Box,
    primary: u64,
    index: usize,
) -> Result<(usize, usize, Vec<u8>), EngineError> {
    let version = read_u(data, ipma.body, 1)?;
    let wide_index = read_u(data, ipma.body + 1, 3)? & 1 == 1;
    let id_width = if version < 1 { 2 } else { 4 };
    let entries = read_u(data, ipma.body + 4, 4)?;
    let mut at = ipma.body + 8;
    for _ in 0..entries {
        let item = read_u(data, at, id_width)?;
        let count_at = at + id_width;
        let count = read_u(data, count_at, 1)? as usize;
        let end = count_at + 1 + count * if wide_index { 2 } else { 1 };
        if end > ipma.end {
            return Err(bad("ipma overruns its box"));
        }
        if item == primary {
            if count == 255 {
                return Err(bad("no room for another property"));
            }
            let association = if wide_index {
                u16::try_from(index)
                    .ok()
                    .filter(|i| *i < 0x8000)
                    .map(|i| i.to_be_bytes().to_vec())
            } else {
                u8::try_from(index)
                    .ok()
                    .filter(|i| *i < 0x80)
                    .map(|i| vec![i])
            };
            let association = association.ok_or_else(|| bad("property index too large"))?;
            return Ok((count_at, end, association));
        }
        at = end;
    }
    Err(bad("the primary item has no properties"))
}

/// Rewrites in `out` every file offset (construction method 0) of `iloc` through `shift`.
fn shift_locations(
    data: &[u8],
    out: &mut [u8],
    iloc: Box,
    shift: impl Fn(u64) -> u64,
) -> Result<(), EngineError> {
    let version = read_u(data, iloc.body, 1)?;
    let mut at = iloc.body + 4;
    let sizes = read_u(data, at, 2)?;
    let (offset_size, length_size) = ((sizes >> 12) as usize, (sizes >> 8 & 15) as usize);
    let base_size = (sizes >> 4 & 15) as usize;
    let index_size = if version >= 1 {
        (sizes & 15) as usize
    } else {
        0
    };
    at += 2;
    let count_width = if version < 2 { 2 } else { 4 };
    let items = read_u(data, at, count_width)?;
    at += count_width;
    for _ in 0..items {
        at += count_width; // item ID
        let method = if version >= 1 {
            let m = read_u(data, at, 2)? & 15;
            at += 2;
            m
        } else {
            0
        };
        at += 2; // data reference index
        let base_at = at;
        let base = read_u(data, at, base_size)?;
        at += base_size;
        let extents = read_u(data, at, 2)?;
        at += 2;
        let moves = method == 0;
        if moves && base_size > 0 && base > 0 {
            write_u(out, base_at, base_size, shift(base))?;
        }
        for _ in 0..extents {
            at += index_size;
            let offset = read_u(data, at, offset_size)?;
            if moves && (base_size == 0 || base == 0) && offset_size > 0 {
                write_u(out, at, offset_size, shift(offset))?;
            }
            at += offset_size + length_size;
        }
        if at > iloc.end {
            return Err(bad("iloc overruns its box"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A box of `kind` around `body`.
    fn bx(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut out = ((8 + body.len()) as u32).to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn what_is_not_a_well_formed_heif_is_an_error_not_a_panic() {
        let meta = bx(b"meta", &[0, 0, 0, 0]);
        for data in [
            &b""[..],
            b"garbage!",
            &bx(b"ftyp", b"avif"),
            &meta,
            &meta[..10],
        ] {
            assert!(with_icc(data, b"icc").is_err());
        }
        // Every prefix of a file whose boxes claim more than they hold.
        let mut data = bx(b"ftyp", b"avif");
        data.extend(bx(
            b"meta",
            &[0, 0, 0, 0, 0, 0, 0, 99, b'p', b'i', b't', b'm'],
        ));
        for end in 0..data.len() {
            assert!(with_icc(&data[..end], b"icc").is_err());
        }
    }
}
