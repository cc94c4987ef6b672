"""Runs the reference job (every corpus photo -> 1080/720/360 JPEG q85, one thread) through
the engine, the naive `image` crate path, libvips, ImageMagick and Pillow, and prints the
markdown table of docs/BENCHMARKS.md. Called by bench/engine.sh, which prepares everything.

Per tool: CPU seconds of the resize loop (reported by the tool's own process; for ImageMagick,
which is a process per photo, the whole loop including start-up), photos per CPU-second, ratio
to libvips, mean SSIM of every rendition against a Lanczos resize of the full-resolution
decode, total output bytes, and the peak RSS of the process (getrusage of the child)."""
import glob
import os
import shlex
import subprocess
import sys

import numpy as np
from PIL import Image
from skimage.metrics import structural_similarity

from peers import SIZES

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PASSES = int(os.environ.get("BENCH_PASSES", "3"))
ONE_THREAD = {
    "VIPS_CONCURRENCY": "1",
    "OMP_NUM_THREADS": "1",
    "MAGICK_THREAD_LIMIT": "1",
    "RAYON_NUM_THREADS": "1",
}


def run(cmd):
    """Runs one tool under /usr/bin/time, whose own child is the tool: its peak RSS is the
    tool's alone (a child forked straight from this Python process would inherit our RSS)."""
    env = dict(os.environ, **ONE_THREAD)
    stats = os.path.join(HERE, "out", "time.txt")
    out = subprocess.run(
        ["/usr/bin/time", "-f", "%U %S %M", "-o", stats] + cmd,
        stdout=subprocess.PIPE, env=env, check=True,
    ).stdout.decode()
    user, system, rss_kb = open(stats).read().split()[-3:]
    loop_cpu = float(user) + float(system)
    for line in out.splitlines():
        if line.startswith("cpu_seconds"):
            loop_cpu = float(line.split()[1])
    return loop_cpu, int(rss_kb) / 1024.0


def magick_cmd(files, out):
    # One process per photo, as apps shell out to it; cascade 1080 -> 720 -> 360 in it.
    # "^>": the short side becomes N, only ever shrinking.
    lines = []
    for _ in range(PASSES):
        for f in files:
            stem = os.path.splitext(os.path.basename(f))[0]
            args = ["/usr/bin/convert-im6.q16", f, "-strip", "-quality", "85"]
            for i, n in enumerate(SIZES):
                args += ["-resize", f"{n}x{n}^>"]
                dest = os.path.join(out, f"{stem}_{n}.jpg")
                args += [dest] if i == len(SIZES) - 1 else ["-write", dest]
            lines.append(" ".join(shlex.quote(a) for a in args))
    return ["bash", "-c", " && ".join(lines)]


def luma(img):
    return np.asarray(img.convert("L"), dtype=np.float64)


def quality(files, out):
    """Mean SSIM (luma) of every rendition against Lanczos from the full decode, total bytes."""
    scores, total = [], 0
    for f in files:
        full = Image.open(f).convert("RGB")
        stem = os.path.splitext(os.path.basename(f))[0]
        for n in SIZES:
            path = os.path.join(out, f"{stem}_{n}.jpg")
            total += os.path.getsize(path)
            got = Image.open(path)
            ref = full.resize(got.size, Image.LANCZOS)
            scores.append(structural_similarity(luma(ref), luma(got), data_range=255))
    return sum(scores) / len(scores), total


def main():
    files = sorted(glob.glob(os.path.join(HERE, "corpus", "*.jpg")))
    if not files:
        sys.exit("empty corpus: run bench/build-corpus.sh")
    bench = os.path.join(ROOT, "target", "release", "examples", "bench")
    py = sys.executable
    peers = os.path.join(HERE, "peers.py")
    tools = [
        ("tirage engine", lambda o: [bench, "engine", o, str(PASSES)] + files),
        ("naive `image` crate", lambda o: [bench, "naive", o, "1"] + files),
        ("libvips (pyvips, shrink-on-load)", lambda o: [py, peers, "vips", o, str(PASSES)] + files),
        ("ImageMagick convert", lambda o: magick_cmd(files, o)),
        ("Pillow thumbnail", lambda o: [py, peers, "pillow", o, str(PASSES)] + files),
    ]
    rows = []
    for name, cmd in tools:
        out = os.path.join(HERE, "out", name.split()[0].strip("`").lower())
        os.makedirs(out, exist_ok=True)
        if os.environ.get("BENCH_TOOLS") and name.split()[0] not in os.environ["BENCH_TOOLS"]:
            continue
        loop_cpu, rss = run(cmd(out))
        photos = len(files) * (1 if "naive" in name else PASSES)
        ssim, size = quality(files, out)
        rows.append((name, loop_cpu, photos, ssim, size, rss))
        print(f"{name}: {loop_cpu:.2f} CPU-s for {photos} photos", file=sys.stderr)
    vips = next((r for r in rows if r[0].startswith("libvips")), None)
    if vips is None:  # a partial run (BENCH_TOOLS): compare with the stored libvips row
        vips = ("libvips", *map(float, os.environ.get("BENCH_VIPS", "1 1 1 1 1").split()))
    vips_rate = vips[2] / vips[1]
    print(f"corpus: {len(files)} photos x {PASSES} passes (naive: 1 pass)\n")
    print("| pipeline | CPU-s | photos | photos/CPU-s | vs libvips | mean SSIM | SSIM - libvips | output bytes | bytes vs libvips | peak RSS MB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, cpu, photos, ssim, size, rss in rows:
        rate = photos / cpu
        print(
            f"| {name} | {cpu:.2f} | {photos} | {rate:.2f} | {rate / vips_rate:.2f}x | {ssim:.4f} "
            f"| {ssim - vips[3]:+.4f} | {size} | {100.0 * (size / vips[4] - 1):+.1f} % | {rss:.0f} |"
        )


if __name__ == "__main__":
    main()
