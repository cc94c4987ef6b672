//! Just enough TIFF/EXIF: the orientation tag (0x0112) and the credit tags, Artist (0x013B)
//! and Copyright (0x8298), read from IFD0; and a TIFF structure holding only the credits,
//! written for renditions that keep them. Every read is bounds-checked: the bytes come from
//! users.

const ORIENTATION: u16 = 0x0112;
const ARTIST: u16 = 0x013B;
const COPYRIGHT: u16 = 0x8298;
/// TIFF field types.
const ASCII: u16 = 2;
const SHORT: u16 = 3;
/// Longest credit tag copied, in bytes. A JPEG APP1 segment holds at most 65,533 bytes and
/// both tags must fit in one, with the headers; a longer tag is no credit line anyway.
const MAX_CREDIT: usize = 32 * 1024 - 64;

/// A TIFF structure (the payload of a JPEG APP1 "Exif" segment after its 6-byte header, a
/// PNG eXIf chunk, a WebP EXIF chunk).
struct Tiff<'a> {
    bytes: &'a [u8],
    big_endian: bool,
}

/// One IFD0 entry: its type, count and where its value starts.
struct Entry {
    kind: u16,
    count: u32,
    value_at: usize,
}

impl<'a> Tiff<'a> {
    fn new(bytes: &'a [u8]) -> Option<Tiff<'a>> {
        let big_endian = match bytes.get(0..2)? {
            b"II" => false,
            b"MM" => true,
            _ => return None,
        };
        let tiff = Tiff { bytes, big_endian };
        (tiff.u16_at(2)? == 42).then_some(tiff)
    }

    fn u16_at(&self, at: usize) -> Option<u16> {
        let b: [u8; 2] = self.bytes.get(at..at.checked_add(2)?)?.try_into().ok()?;
        Some(if self.big_endian {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        })
    }

    fn u32_at(&self, at: usize) -> Option<u32> {
        let b: [u8; 4] = self.bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(if self.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }

    /// The IFD0 entry of `tag`, if any.
    fn entry(&self, tag: u16) -> Option<Entry> {
        let ifd0 = usize::try_from(self.u32_at(4)?).ok()?;
        let count = usize::from(self.u16_at(ifd0)?);
        for i in 0..count {
            let at = ifd0.checked_add(2)?.checked_add(i.checked_mul(12)?)?;
            if self.u16_at(at)? != tag {
                continue;
            }
            return Some(Entry {
                kind: self.u16_at(at + 2)?,
                count: self.u32_at(at + 4)?,
                value_at: at + 8,
            });
        }
        None
    }

    /// An ASCII tag's value without its trailing NULs and spaces. Inner NULs are kept:
    /// Copyright may hold two strings, the photographer's and the editor's.
    fn ascii(&self, tag: u16) -> Option<Vec<u8>> {
        let e = self.entry(tag).filter(|e| e.kind == ASCII)?;
        let len = usize::try_from(e.count).ok().filter(|&n| n <= MAX_CREDIT)?;
        let at = if len <= 4 {
            e.value_at
        } else {
            usize::try_from(self.u32_at(e.value_at)?).ok()?
        };
        let value = self.bytes.get(at..at.checked_add(len)?)?;
        let end = value
            .iter()
            .rposition(|&b| b != 0 && b != b' ')
            .map_or(0, |i| i + 1);
        (end > 0).then(|| value[..end].to_vec())
    }
}

/// The EXIF orientation (1..=8) found in a TIFF structure, or `None` when absent or malformed.
pub fn orientation_from_tiff(tiff: &[u8]) -> Option<u8> {
    let tiff = Tiff::new(tiff)?;
    let e = tiff.entry(ORIENTATION)?;
    // SHORT, one value, stored left-justified in the 4-byte value field.
    if e.kind != SHORT {
        return None;
    }
    let value = tiff.u16_at(e.value_at)?;
    u8::try_from(value).ok().filter(|v| (1..=8).contains(v))
}

/// Who made the photo and who holds its rights, as the source's EXIF says (IFD0's Artist and
/// Copyright, ASCII). Nothing else of the source's EXIF is ever copied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credits {
    pub artist: Option<Vec<u8>>,
    pub copyright: Option<Vec<u8>>,
}

impl Credits {
    /// The credits of a TIFF structure; none when it is malformed.
    pub fn from_tiff(tiff: &[u8]) -> Credits {
        let Some(tiff) = Tiff::new(tiff) else {
            return Credits::default();
        };
        Credits {
            artist: tiff.ascii(ARTIST),
            copyright: tiff.ascii(COPYRIGHT),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.artist.is_none() && self.copyright.is_none()
    }

    /// A little-endian TIFF structure with IFD0 holding only these tags (in tag order, as
    /// TIFF wants), each NUL-terminated; `None` when there is none.
    pub fn to_tiff(&self) -> Option<Vec<u8>> {
        let tags: Vec<(u16, &[u8])> = [(ARTIST, &self.artist), (COPYRIGHT, &self.copyright)]
            .into_iter()
            .filter_map(|(tag, v)| Some((tag, v.as_deref()?)))
            .collect();
        if tags.is_empty() {
            return None;
        }
        let ifd_len = 2 + 12 * tags.len() + 4;
        let mut values_at = 8 + ifd_len;
        let mut out = b"II*\0\x08\0\0\0".to_vec();
        out.extend_from_slice(&(tags.len() as u16).to_le_bytes());
        let mut values = Vec::new();
        for (tag, text) in &tags {
            let count = text.len() + 1; // the NUL
            out.extend_from_slice(&tag.to_le_bytes());
            out.extend_from_slice(&ASCII.to_le_bytes());
            out.extend_from_slice(&(count as u32).to_le_bytes());
            if count <= 4 {
                let mut inline = [0u8; 4];
                inline[..text.len()].copy_from_slice(text);
                out.extend_from_slice(&inline);
            } else {
                out.extend_from_slice(&(values_at as u32).to_le_bytes());
                values.extend_from_slice(text);
                values.push(0);
                // Values start on word boundaries.
                if count % 2 == 1 {
                    values.push(0);
                }
                values_at = 8 + ifd_len + values.len();
            }
        }
        out.extend_from_slice(&0u32.to_le_bytes()); // no IFD1
        out.extend_from_slice(&values);
        Some(out)
    }
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
        let credits = Credits {
            artist: Some(b"Ann".to_vec()),
            copyright: Some(b"(c) 2026 Ann Smith".to_vec()),
        }
        .to_tiff()
        .unwrap();
        for cut in 0..credits.len() {
            let _ = Credits::from_tiff(&credits[..cut]);
        }
    }

    #[test]
    fn credits_written_are_read_back() {
        for credits in [
            Credits {
                artist: Some(b"Ann".to_vec()),
                copyright: Some(b"(c) 2026 Ann Smith\0Ed Editor".to_vec()),
            },
            Credits {
                artist: Some("Zoë Kraus, photographer".as_bytes().to_vec()),
                copyright: None,
            },
            Credits {
                artist: None,
                copyright: Some(b"CC".to_vec()),
            },
        ] {
            let tiff = credits.to_tiff().unwrap();
            assert_eq!(Credits::from_tiff(&tiff), credits);
            // Only the credit tags: no orientation, nothing else.
            assert_eq!(orientation_from_tiff(&tiff), None);
            let entries = u16::from_le_bytes([tiff[8], tiff[9]]);
            let present =
                usize::from(credits.artist.is_some()) + usize::from(credits.copyright.is_some());
            assert_eq!(usize::from(entries), present);
        }
        assert_eq!(Credits::default().to_tiff(), None);
    }

    #[test]
    fn big_endian_credits_are_read() {
        // IFD0: Artist "Bo" inline, Copyright "(c) Bo" at offset 38.
        let mut t = b"MM\0*\0\0\0\x08\0\x02".to_vec();
        t.extend_from_slice(b"\x01\x3B\0\x02\0\0\0\x03Bo\0\0");
        t.extend_from_slice(b"\x82\x98\0\x02\0\0\0\x07\0\0\0\x26");
        t.extend_from_slice(&[0, 0, 0, 0]);
        t.extend_from_slice(b"(c) Bo\0");
        let c = Credits::from_tiff(&t);
        assert_eq!(c.artist.as_deref(), Some(&b"Bo"[..]));
        assert_eq!(c.copyright.as_deref(), Some(&b"(c) Bo"[..]));
    }
}
