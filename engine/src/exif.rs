//! Just enough TIFF/EXIF parsing to read the orientation tag (0x0112) from IFD0. Every read is
//! bounds-checked: the bytes come from users.

/// The EXIF orientation (1..=8) found in a TIFF structure (the payload of a JPEG APP1 "Exif"
/// segment after its 6-byte header), or `None` when absent or malformed.
pub fn orientation_from_tiff(tiff: &[u8]) -> Option<u8> {
    let big_endian = match tiff.get(0..2)? {
        b"II" => false,
        b"MM" => true,
        _ => return None,
    };
    let u16_at = |at: usize| -> Option<u16> {
        let b: [u8; 2] = tiff.get(at..at.checked_add(2)?)?.try_into().ok()?;
        Some(if big_endian {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        })
    };
    let u32_at = |at: usize| -> Option<u32> {
        let b: [u8; 4] = tiff.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(if big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    };
    if u16_at(2)? != 42 {
        return None;
    }
    let ifd0 = usize::try_from(u32_at(4)?).ok()?;
    let count = usize::from(u16_at(ifd0)?);
    for i in 0..count {
        let entry = ifd0.checked_add(2)?.checked_add(i.checked_mul(12)?)?;
        if u16_at(entry)? != 0x0112 {
            continue;
        }
        // SHORT, one value, stored left-justified in the 4-byte value field.
        if u16_at(entry + 2)? != 3 {
            return None;
        }
        let value = u16_at(entry + 8)?;
        return u8::try_from(value).ok().filter(|v| (1..=8).contains(v));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiff_le(orientation: u16) -> Vec<u8> {
        let mut t = b"II\x2a\x00\x08\x00\x00\x00".to_vec();
        t.extend_from_slice(&1u16.to_le_bytes());
        t.extend_from_slice(&0x0112u16.to_le_bytes());
        t.extend_from_slice(&3u16.to_le_bytes());
        t.extend_from_slice(&1u32.to_le_bytes());
        t.extend_from_slice(&orientation.to_le_bytes());
        t.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        t
    }

    #[test]
    fn reads_little_endian_orientation() {
        for o in 1..=8 {
            assert_eq!(orientation_from_tiff(&tiff_le(o)), Some(o as u8));
        }
        assert_eq!(orientation_from_tiff(&tiff_le(9)), None);
    }

    #[test]
    fn reads_big_endian_orientation() {
        let t =
            b"MM\x00\x2a\x00\x00\x00\x08\x00\x01\x01\x12\x00\x03\x00\x00\x00\x01\x00\x06\x00\x00";
        assert_eq!(orientation_from_tiff(t), Some(6));
    }

    #[test]
    fn malformed_is_none_not_panic() {
        let full = tiff_le(6);
        for cut in 0..full.len() {
            let _ = orientation_from_tiff(&full[..cut]);
        }
        assert_eq!(orientation_from_tiff(b"II\x2a\x00\xff\xff\xff\xff"), None);
    }
}
