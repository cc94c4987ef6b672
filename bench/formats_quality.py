"""Mean SSIM per size of each format's renditions (bench/formats.sh with BENCH_OUT), against
the Lanczos3 float reference of bench/quality.py (Y and R, G, B channels): the quality each
format gives for its bytes. Pillow decodes every rendition (AVIF through its libavif plugin).

    python bench/formats_quality.py <out-dir> <format>... -- <sources>..."""
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from quality import references, rendition_size, scores  # noqa: E402

SIZES = (1080, 720, 360)
EXT = {"jpeg": "jpg"}


def main():
    sep = sys.argv.index("--")
    out, formats, sources = sys.argv[1], sys.argv[2:sep], sys.argv[sep + 1:]
    cache = os.path.join(out, "references")
    print("| format | size | Y | R | G | B |")
    print("|---|---|---:|---:|---:|---:|")
    for fmt in formats:
        for size in SIZES:
            totals, n = {}, 0
            for src in sources:
                stem = os.path.splitext(os.path.basename(src))[0]
                path = os.path.join(out, fmt, f"{stem}_{size}.{EXT.get(fmt, fmt)}")
                dims = rendition_size(path)
                ref = references(src, [dims], cache)[dims]
                for c, v in scores(ref, path).items():
                    totals[c] = totals.get(c, 0.0) + v
                n += 1
            row = " | ".join(f"{totals[c] / n:.4f}" for c in ("Y", "R", "G", "B"))
            print(f"| {fmt} | {size} | {row} |")


main()
