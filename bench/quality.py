"""Quality measures of bench/engine.py: mean SSIM per colour channel (R, G, B and JPEG's Y, Cb,
Cr) of a rendition against a Lanczos3 resize of the full-resolution decode.

Reference: Pillow decodes the source in full (libjpeg-turbo, fancy chroma upsampling), each RGB
channel is resized as a 32-bit float image ("F" mode) with LANCZOS (support 3) to the
rendition's own size, so no 8-bit rounding happens before the comparison. Y, Cb and Cr are
computed from RGB with the JFIF matrix (full range), on the reference and on the rendition
alike; the rendition is decoded by the same Pillow, so both tools' files are read the same way.
SSIM is scikit-image's (7x7 window, data range 255) on float64. References are cached as .npy
next to the outputs (they depend only on the source)."""
import os

import numpy as np
from PIL import Image, JpegImagePlugin
from skimage.metrics import structural_similarity

Image.MAX_IMAGE_PIXELS = None
CHANNELS = tuple(os.environ.get("BENCH_CHANNELS", "Y,Cb,Cr,R,G,B").split(","))
# Classes of source-to-target ratio (source short side over the rendition's), issue #26.
RATIO_CLASSES = ((1.5, "<1.5"), (2.5, "1.5-2.5"), (4.0, "2.5-4"), (float("inf"), ">=4"))
SUBSAMPLING = {0: "4:4:4", 1: "4:2:2", 2: "4:2:0"}
# Every kind of source `source_class` names, in the order reports list them.
SOURCE_KINDS = (*SUBSAMPLING.values(), "gray", "other")


def with_ycbcr(rgb):
    """HxWx3 float RGB -> dict of the six float channels."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    return {
        "R": r,
        "G": g,
        "B": b,
        "Y": 0.299 * r + 0.587 * g + 0.114 * b,
        "Cb": 128.0 - 0.168736 * r - 0.331264 * g + 0.5 * b,
        "Cr": 128.0 + 0.5 * r - 0.418688 * g - 0.081312 * b,
    }


def references(source, sizes, cache_dir):
    """{(w, h): HxWx3 float32} Lanczos3 resizes of the full decode, one per requested size."""
    os.makedirs(cache_dir, exist_ok=True)
    stem = os.path.splitext(os.path.basename(source))[0]
    out, full = {}, None
    for w, h in sizes:
        path = os.path.join(cache_dir, f"{stem}_{w}x{h}.npy")
        if os.path.exists(path) and os.path.getmtime(path) >= os.path.getmtime(source):
            out[(w, h)] = np.load(path)
            continue
        if full is None:
            img = Image.open(source).convert("RGB")
            full = [Image.fromarray(np.asarray(c, dtype=np.float32), "F") for c in img.split()]
        if (w, h) == full[0].size:
            ref = np.stack([np.asarray(c, dtype=np.float32) for c in full], axis=-1)
        else:
            ref = np.stack(
                [np.asarray(c.resize((w, h), Image.LANCZOS), dtype=np.float32) for c in full],
                axis=-1,
            )
        np.save(path, ref)
        out[(w, h)] = ref
    return out


def rendition_size(path):
    with Image.open(path) as img:
        return img.size


def source_class(source):
    """(short side, chroma subsampling name) of a source JPEG."""
    with Image.open(source) as img:
        sub = JpegImagePlugin.get_sampling(img) if img.format == "JPEG" else -1
        if img.mode == "L":
            return min(img.size), "gray"
        return min(img.size), SUBSAMPLING.get(sub, "other")


def ratio_class(source_short, rendition_size):
    ratio = source_short / min(rendition_size)
    return next(name for bound, name in RATIO_CLASSES if ratio < bound)


def scores(reference, rendition):
    """{channel: SSIM} of one rendition file against its float reference."""
    got = np.asarray(Image.open(rendition).convert("RGB"), dtype=np.float64)
    ref = with_ycbcr(reference.astype(np.float64))
    got = with_ycbcr(got)
    return {
        c: float(structural_similarity(ref[c], got[c], data_range=255.0)) for c in CHANNELS
    }
