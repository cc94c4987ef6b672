//! Format detection from the first bytes only: file names and MIME headers lie.

/// A source format the engine decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceFormat {
    Jpeg,
    Png,
    Webp,
    Gif,
    /// HEIC, or HEIF with another codec libheif decodes.
    Heic,
    /// AVIF (AV1 in HEIF), also decoded by libheif.
    Avif,
}

/// The brands of an ISO BMFF `ftyp` box at the start of `data`: major, then compatible ones.
fn ftyp_brands(data: &[u8]) -> Option<impl Iterator<Item = &[u8]>> {
    if data.get(4..8)? != b"ftyp" {
        return None;
    }
    let size = usize::try_from(u32::from_be_bytes(data.get(0..4)?.try_into().ok()?)).ok()?;
    let body = data.get(8..size.min(data.len()))?;
    let major = body.get(0..4)?;
    let compatible = body.get(8..).unwrap_or_default().chunks_exact(4);
    Some(std::iter::once(major).chain(compatible))
}

fn heif_kind(data: &[u8]) -> Option<SourceFormat> {
    let brands: Vec<&[u8]> = ftyp_brands(data)?.collect();
    let any = |names: &[&[u8]]| brands.iter().any(|b| names.contains(b));
    if any(&[b"avif", b"avis"]) {
        Some(SourceFormat::Avif)
    } else if any(&[
        b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1",
    ]) {
        Some(SourceFormat::Heic)
    } else {
        None
    }
}

/// The format whose signature `data` starts with, if any.
pub fn sniff(data: &[u8]) -> Option<SourceFormat> {
    if data.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(SourceFormat::Jpeg)
    } else if data.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(SourceFormat::Png)
    } else if data.len() >= 12 && &data[0..4] == b"RIFF" && &data[8..12] == b"WEBP" {
        Some(SourceFormat::Webp)
    } else if data.starts_with(b"GIF87a") || data.starts_with(b"GIF89a") {
        Some(SourceFormat::Gif)
    } else {
        heif_kind(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures() {
        assert_eq!(sniff(b"\xFF\xD8\xFF\xE0rest"), Some(SourceFormat::Jpeg));
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n...."), Some(SourceFormat::Png));
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some(SourceFormat::Webp));
        assert_eq!(sniff(b"GIF89a...."), Some(SourceFormat::Gif));
        assert_eq!(sniff(b"RIFF\0\0\0\0WAVE"), None);
        assert_eq!(sniff(b""), None);
        assert_eq!(sniff(b"\xFF\xD8"), None);
        let heic = b"\0\0\0\x18ftypheic\0\0\0\0mif1heic";
        assert_eq!(sniff(heic), Some(SourceFormat::Heic));
        let avif = b"\0\0\0\x1cftypavif\0\0\0\0avifmif1miaf";
        assert_eq!(sniff(avif), Some(SourceFormat::Avif));
        // A brand past the box's own size does not count; an MP4 is no image.
        assert_eq!(sniff(b"\0\0\0\x10ftypisom\0\0\0\0heic"), None);
        assert_eq!(sniff(b"\0\0\0\x18ftypisom\0\0\0\0isomiso2"), None);
        assert_eq!(sniff(b"\0\0\0\x08ftyp"), None);
    }
}
