//! JPEG marker walk of our own: dimensions and metadata before any pixel is decoded (bounded,
//! no allocation beyond the ICC profile), and a clean copy of the header for libjpeg-turbo.
//!
//! Tolerance: libjpeg treats bytes between segments, a malformed JFIF or Adobe segment and a
//! broken ICC chunk set as *warnings*, and libvips, Pillow and browsers show such files. The
//! `turbojpeg` crate fails on any warning raised while reading the header, so [`scan`] also
//! builds the header of [`JpegInfo::clean_stream`]: the same JPEG with the junk bytes dropped, only the segments
//! the decoder needs (JFIF and Adobe normalised, every other APPn and COM left out: we read
//! EXIF and ICC ourselves), and the scans copied verbatim. Warnings in the scan data itself are
//! handled where the pixels are decoded (see `jpeg::tolerate`).

use crate::EngineError;
use crate::exif::{Credits, orientation_from_tiff};

/// What the header tells before any pixel is decoded.
#[derive(Debug, Clone, Default)]
pub struct JpegInfo {
    pub width: u32,
    pub height: u32,
    pub components: u8,
    pub orientation: u8,
    pub icc: Option<Vec<u8>>,
    /// EXIF Artist and Copyright (the first EXIF segment that has any).
    pub credits: Credits,
    /// An Adobe APP14 segment: CMYK samples are stored inverted.
    pub adobe: bool,
    /// The header as handed to libjpeg-turbo (see the module's comment), up to and with the
    /// first SOS segment.
    pub header: Vec<u8>,
    /// Where the first scan's entropy-coded data starts in the source.
    pub scan_start: usize,
}

impl JpegInfo {
    /// The JPEG as handed to libjpeg-turbo: the cleaned header, then the source's scans.
    pub fn clean_stream(&self, source: &[u8]) -> Vec<u8> {
        let scans = source.get(self.scan_start..).unwrap_or_default();
        let mut stream = Vec::with_capacity(self.header.len() + scans.len());
        stream.extend_from_slice(&self.header);
        stream.extend_from_slice(scans);
        stream
    }
}

fn corrupt(what: &str) -> EngineError {
    EngineError::CorruptImage(what.to_string())
}

/// The position of the next marker's code byte at or after `pos`, as libjpeg's `next_marker`
/// finds it: anything up to an 0xFF is skipped (extraneous bytes), fill 0xFFs are skipped,
/// and 0xFF 0x00 (a stuffed zero) is not a marker.
fn next_marker(data: &[u8], mut pos: usize) -> Option<usize> {
    loop {
        pos += data.get(pos..)?.iter().position(|&b| b == 0xFF)?;
        while data.get(pos) == Some(&0xFF) {
            pos += 1;
        }
        match data.get(pos)? {
            0x00 => pos += 1,
            _ => return Some(pos),
        }
    }
}

/// A canonical JFIF 1.01 APP0 segment: libjpeg only uses its presence (the samples are YCbCr).
const JFIF_APP0: &[u8] = b"\xFF\xE0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00";

/// Walks the markers up to the first scan. Reads the frame size, EXIF orientation and credits, ICC chunks
/// and the Adobe marker, and builds the cleaned stream.
pub fn scan(data: &[u8]) -> Result<JpegInfo, EngineError> {
    let mut info = JpegInfo {
        orientation: 1,
        ..JpegInfo::default()
    };
    if !data.starts_with(&[0xFF, 0xD8]) {
        return Err(corrupt("not a JPEG"));
    }
    let mut header = vec![0xFF, 0xD8];
    let mut icc_chunks: Vec<(u8, u8, &[u8])> = Vec::new();
    let mut adobe_transform: Option<u8> = None;
    let mut jfif = false;
    let mut frame = false;
    let mut pos = 2; // after SOI
    let scan_start = loop {
        pos = next_marker(data, pos).ok_or_else(|| corrupt("truncated before the first scan"))?;
        let marker = data[pos];
        pos += 1;
        match marker {
            0xD0..=0xD7 | 0x01 => continue,
            0xD8 | 0xD9 => return Err(corrupt("no image data")),
            _ => {}
        }
        let len_bytes = data
            .get(pos..pos + 2)
            .ok_or_else(|| corrupt("truncated marker segment"))?;
        let len = usize::from(u16::from_be_bytes([len_bytes[0], len_bytes[1]]));
        if len < 2 {
            return Err(corrupt("bad marker segment length"));
        }
        let seg = data
            .get(pos + 2..pos + len)
            .ok_or_else(|| corrupt("truncated marker segment"))?;
        let whole = &data[pos - 2..pos + len];
        pos += len;
        match marker {
            0xDA => {
                header.extend_from_slice(whole);
                break pos;
            }
            0xC0..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC) => {
                if seg.len() < 6 {
                    return Err(corrupt("short frame header"));
                }
                info.height = u32::from(u16::from_be_bytes([seg[1], seg[2]]));
                info.width = u32::from(u16::from_be_bytes([seg[3], seg[4]]));
                info.components = seg[5];
                frame = true;
                header.extend_from_slice(whole);
            }
            // Shorter is no JFIF segment to libjpeg either.
            0xE0 if seg.starts_with(b"JFIF\0") && seg.len() >= 14 => jfif = true,
            0xE1 if seg.starts_with(b"Exif\0\0") => {
                if let Some(o) = orientation_from_tiff(&seg[6..]) {
                    info.orientation = o;
                }
                if info.credits.is_empty() {
                    info.credits = Credits::from_tiff(&seg[6..]);
                }
            }
            0xE2 if seg.starts_with(b"ICC_PROFILE\0") && seg.len() >= 14 => {
                icc_chunks.push((seg[12], seg[13], &seg[14..]));
            }
            0xEE if seg.starts_with(b"Adobe") && seg.len() >= 12 => {
                info.adobe = true;
                adobe_transform = Some(seg[11]);
            }
            // Every other APPn and comments: nothing the decoder needs.
            0xE0..=0xEF | 0xFE => {}
            // Tables, restart interval, DNL, arithmetic conditioning: the decoder's business.
            _ => header.extend_from_slice(whole),
        }
    };
    if !frame {
        return Err(corrupt("no frame header before the first scan"));
    }
    if info.width == 0 || info.height == 0 {
        return Err(corrupt("zero width or height"));
    }
    if let Some(transform) = adobe_transform {
        // libjpeg reads an unknown transform code (with a warning) as YCbCr for three
        // components and YCCK for four: say so explicitly.
        let transform = match transform {
            0..=2 => transform,
            _ if info.components == 4 => 2,
            _ => 1,
        };
        let mut app14 = b"\xFF\xEE\x00\x0EAdobe\x00\x64\x00\x00\x00\x00".to_vec();
        app14.push(transform);
        header.splice(2..2, app14);
    }
    if jfif {
        header.splice(2..2, JFIF_APP0.iter().copied());
    }
    info.icc = assemble_icc(icc_chunks);
    info.header = header;
    info.scan_start = scan_start;
    Ok(info)
}

/// Concatenates ICC chunks by sequence number; an incomplete set is ignored rather than
/// failing the photo (browsers do the same).
fn assemble_icc(mut chunks: Vec<(u8, u8, &[u8])>) -> Option<Vec<u8>> {
    let total = chunks.first()?.1;
    chunks.sort_by_key(|c| c.0);
    let complete = chunks.len() == usize::from(total)
        && chunks
            .iter()
            .enumerate()
            .all(|(i, c)| usize::from(c.0) == i + 1 && c.1 == total);
    complete.then(|| chunks.iter().flat_map(|c| c.2.iter().copied()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_never_panics_on_truncation() {
        let data = b"\xFF\xD8\xFF\xE1\x00\x10Exif\0\0II*\0\x08\0\0\0\xFF\xC0\x00\x11\x08\x00\x10\x00\x20\x03";
        for cut in 0..data.len() {
            assert!(scan(&data[..cut]).is_err());
        }
    }

    #[test]
    fn markers_are_found_past_junk_and_stuffed_zeros() {
        let data = b"ab\xFF\x00cd\xFF\xFF\xC4";
        assert_eq!(next_marker(data, 0), Some(8));
        assert_eq!(next_marker(b"\xFF\x00\xFF", 0), None);
    }

    #[test]
    fn the_clean_stream_keeps_tables_and_drops_junk() {
        let sof = b"\xFF\xC0\x00\x0B\x08\x00\x10\x00\x20\x01\x01\x11\x00";
        let mut data = b"\xFF\xD8junk\xFF\xFE\x00\x04hi".to_vec();
        data.extend_from_slice(b"\xFF\xE0\x00\x10JFIF\x00\x02\x07\x00\x00\x01\x00\x01\x00\x00");
        data.extend_from_slice(sof);
        data.extend_from_slice(b"\x00\x00\xFF\xDA\x00\x08\x01\x01\x00\x00\x3F\x00scan");
        let info = scan(&data).unwrap();
        assert_eq!((info.width, info.height, info.components), (32, 16, 1));
        let mut expected = b"\xFF\xD8".to_vec();
        expected.extend_from_slice(JFIF_APP0);
        expected.extend_from_slice(sof);
        expected.extend_from_slice(b"\xFF\xDA\x00\x08\x01\x01\x00\x00\x3F\x00scan");
        assert_eq!(info.clean_stream(&data), expected);
    }
}
