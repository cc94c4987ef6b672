//! What a rendition carries when its batch keeps credits (`MetadataChoice::Copyright`): an
//! EXIF structure with only the source's Artist and Copyright (see `exif::Credits`; never a
//! GPS or any other tag) and an sRGB ICC profile, which the renditions are in already. Each
//! format gets them where its readers look: JPEG APP1 "Exif" and APP2 "ICC_PROFILE" segments
//! (here), WebP `EXIF` and `ICCP` chunks in an extended (`VP8X`) file (here), PNG `eXIf` and
//! `iCCP` (the `image` crate's encoder), AVIF an `Exif` item (libheif) and a `colr` box of type
//! `prof` beside its nclx one (`isobmff`).

use std::sync::LazyLock;

use tirage_core::MetadataChoice;

use crate::EngineError;
use crate::exif::Credits;

/// What every rendition of one photo carries.
#[derive(Debug, Clone)]
pub struct Embed {
    /// A TIFF structure (no "Exif\0\0" header); `None` when the source names no one.
    pub exif: Option<Vec<u8>>,
    pub icc: &'static [u8],
}

/// Little CMS's sRGB (the one the decoders convert to), serialised once.
static SRGB: LazyLock<Option<Vec<u8>>> = LazyLock::new(|| {
    lcms2::Profile::new_srgb()
        .icc()
        .ok()
        .filter(|p| !p.is_empty())
});

/// What the renditions of a photo with these credits carry under `choice`.
pub fn for_choice(choice: MetadataChoice, credits: &Credits) -> Result<Option<Embed>, EngineError> {
    match choice {
        MetadataChoice::Strip => Ok(None),
        MetadataChoice::Copyright => {
            let icc = SRGB
                .as_deref()
                .ok_or_else(|| EngineError::CorruptImage("cannot serialise sRGB".into()))?;
            Ok(Some(Embed {
                exif: credits.to_tiff(),
                icc,
            }))
        }
    }
}

/// Most payload bytes of one JPEG marker segment (its length field counts itself).
const SEGMENT_MAX: usize = 65_535 - 2;
const ICC_HEADER: &[u8] = b"ICC_PROFILE\0";

/// `jpeg` (as libjpeg-turbo wrote it: SOI, then JFIF APP0) with the APP1 and APP2 segments
/// inserted after the JFIF segment, where EXIF readers look. A `grey` image gets no profile:
/// an RGB profile on a one-component image is invalid (readers warn or refuse it), and grey
/// is the same in every RGB space.
pub fn into_jpeg(jpeg: Vec<u8>, embed: &Embed, grey: bool) -> Result<Vec<u8>, EngineError> {
    let mut segments = Vec::new();
    if let Some(tiff) = &embed.exif {
        segment(&mut segments, 0xE1, &[b"Exif\0\0", &tiff[..]])?;
    }
    // The profile in numbered chunks, as the ICC specification splits it (one, for sRGB).
    let chunk = SEGMENT_MAX - ICC_HEADER.len() - 2;
    let icc = if grey { &[][..] } else { embed.icc };
    let chunks: Vec<&[u8]> = icc.chunks(chunk).collect();
    let count = u8::try_from(chunks.len()).map_err(|_| bad("ICC profile too large"))?;
    for (i, c) in chunks.iter().enumerate() {
        let seq = u8::try_from(i + 1).map_err(|_| bad("ICC profile too large"))?;
        segment(&mut segments, 0xE2, &[ICC_HEADER, &[seq, count], c])?;
    }
    if !jpeg.starts_with(&[0xFF, 0xD8]) {
        return Err(bad("the encoder wrote no SOI"));
    }
    let mut at = 2;
    if jpeg.get(2..4) == Some(&[0xFF, 0xE0]) {
        let len = jpeg
            .get(4..6)
            .map(|l| usize::from(u16::from_be_bytes([l[0], l[1]])))
            .ok_or_else(|| bad("short JFIF segment"))?;
        at = 4 + len;
    }
    if at > jpeg.len() {
        return Err(bad("short JFIF segment"));
    }
    let mut out = Vec::with_capacity(jpeg.len() + segments.len());
    out.extend_from_slice(&jpeg[..at]);
    out.extend_from_slice(&segments);
    out.extend_from_slice(&jpeg[at..]);
    Ok(out)
}

fn segment(out: &mut Vec<u8>, marker: u8, parts: &[&[u8]]) -> Result<(), EngineError> {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    if len > SEGMENT_MAX {
        return Err(bad("metadata segment too large"));
    }
    out.extend_from_slice(&[0xFF, marker]);
    out.extend_from_slice(&((len + 2) as u16).to_be_bytes());
    for p in parts {
        out.extend_from_slice(p);
    }
    Ok(())
}

/// VP8X flags.
const VP8X_ICC: u8 = 0x20;
const VP8X_ALPHA: u8 = 0x10;
const VP8X_EXIF: u8 = 0x08;

/// `webp` (as libwebp wrote it) as an extended file: `VP8X` (made when the encoder wrote a
/// simple file), `ICCP` right after it, the image chunks, `EXIF` last — the order the WebP
/// container specification requires.
pub fn into_webp(
    webp: &[u8],
    width: u32,
    height: u32,
    embed: &Embed,
) -> Result<Vec<u8>, EngineError> {
    if webp.get(0..4) != Some(b"RIFF") || webp.get(8..12) != Some(b"WEBP") {
        return Err(bad("the encoder wrote no WebP"));
    }
    let mut chunks = Vec::new();
    let mut at = 12;
    while at < webp.len() {
        let head = webp
            .get(at..at + 8)
            .ok_or_else(|| bad("short WebP chunk"))?;
        let size = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as usize;
        let end = at + 8 + size + size % 2;
        let whole = webp
            .get(at..end.min(webp.len()))
            .ok_or_else(|| bad("short WebP chunk"))?;
        chunks.push((&head[..4], whole));
        at = end;
    }
    let mut flags = VP8X_ICC;
    if embed.exif.is_some() {
        flags |= VP8X_EXIF;
    }
    let mut out = b"RIFF\0\0\0\0WEBP".to_vec();
    let mut image = Vec::new();
    for (kind, whole) in &chunks {
        match *kind {
            b"VP8X" => flags |= whole.get(8).copied().unwrap_or(0),
            b"ALPH" => {
                flags |= VP8X_ALPHA;
                image.extend_from_slice(whole);
            }
            // VP8L: the alpha_is_used bit follows the 14-bit width and height.
            b"VP8L" => {
                if whole.get(12).is_some_and(|b| b & 0x10 != 0) {
                    flags |= VP8X_ALPHA;
                }
                image.extend_from_slice(whole);
            }
            _ => image.extend_from_slice(whole),
        }
    }
    let (w, h) = (width.saturating_sub(1), height.saturating_sub(1));
    let mut vp8x = vec![flags, 0, 0, 0];
    vp8x.extend_from_slice(&w.to_le_bytes()[..3]);
    vp8x.extend_from_slice(&h.to_le_bytes()[..3]);
    chunk(&mut out, b"VP8X", &vp8x);
    chunk(&mut out, b"ICCP", embed.icc);
    out.extend_from_slice(&image);
    if let Some(tiff) = &embed.exif {
        chunk(&mut out, b"EXIF", tiff);
    }
    let riff = u32::try_from(out.len() - 8).map_err(|_| bad("WebP too large"))?;
    out[4..8].copy_from_slice(&riff.to_le_bytes());
    Ok(out)
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], payload: &[u8]) {
    out.extend_from_slice(kind);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(payload);
    if payload.len() % 2 == 1 {
        out.push(0);
    }
}

fn bad(what: &str) -> EngineError {
    // Our own encoders' output: a failure here is an internal fault, reported as encoding ones are.
    EngineError::CorruptImage(format!("metadata: {what}"))
}
