"""The engine benchmark of docs/BENCHMARKS.md (called by bench/engine.sh, which prepares
everything): every photo of each half of bench/photos (tune/, held/) -> 1080/720/360 JPEG q85 on
one thread, through the Tirage engine and libvips, in the same run.

Speed: BENCH_ROUNDS rounds per half, each running both tools over the whole half BENCH_PASSES
times, the order of the two alternating from round to round; a round's ratio is the engine's
photos per CPU-second over libvips'. CPU-seconds are each tool's own for its resize loop
(user + system; interpreter start-up and imports excluded for pyvips). The median ratio and
the range are reported with the load average, since the machine may be shared.

Quality (bench/quality.py): mean SSIM per size and per channel (Y, Cb, Cr, R, G, B) of the
last round's renditions against a float Lanczos3 resize of the full decode; output bytes.

Quality is also reported by class of source (issue #26): source-to-target ratio (< 1.5,
1.5-2.5, 2.5-4, >= 4) and the source's chroma subsampling, tirage against libvips.

Environment: BENCH_CORPUS (photos: bench/photos/<half>; classes: bench/photos/classes/<half>,
built by `bench/corpus.sh classes`), BENCH_CHANNELS (Y,Cb,Cr,R,G,B), BENCH_SHORT ("MIN-MAX":
only the sources whose short side is within, to time one class of ratio), BENCH_JOBS
(processes scoring quality, untimed; all cores), BENCH_HALVES (tune,held), BENCH_TOOLS
(engine,vips: scores of a tool not run are read back from its last run's JSON), BENCH_ROUNDS
(3; 0 = one untimed pass for quality only), BENCH_PASSES (2), BENCH_BIN (the bench driver),
BENCH_PEERS=1 adds one timed round of ImageMagick,
Pillow and the naive `image` crate path (and their SSIM) to each half."""
import glob
import json
import multiprocessing
import os
import shlex
import statistics
import subprocess
import sys

from peers import SIZES
from quality import (CHANNELS, RATIO_CLASSES, SOURCE_KINDS, ratio_class, references,
                     rendition_size, scores, source_class)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUT = os.path.join(HERE, "out", "engine")
ONE_THREAD = {
    "VIPS_CONCURRENCY": "1",
    "OMP_NUM_THREADS": "1",
    "MAGICK_THREAD_LIMIT": "1",
    "RAYON_NUM_THREADS": "1",
}
env = os.environ.get
HALVES = env("BENCH_HALVES", "tune,held").split(",")
TOOLS = env("BENCH_TOOLS", "engine,vips").split(",")
ROUNDS = int(env("BENCH_ROUNDS", "3"))
PASSES = int(env("BENCH_PASSES", "2"))
CORPUS = env("BENCH_CORPUS", "photos")
PHOTOS = os.path.join(HERE, "photos", *(["classes"] if CORPUS == "classes" else []))
OUT = os.path.join(OUT, *(["classes"] if CORPUS == "classes" else []))
JOBS = int(env("BENCH_JOBS", str(os.cpu_count() or 1)))
BENCH = env("BENCH_BIN", os.path.join(ROOT, "target", "release", "examples", "bench"))
LABEL = {"engine": "tirage", "vips": "libvips", "magick": "ImageMagick", "pillow": "Pillow",
         "naive": "naive image"}


def run(cmd):
    """Runs one tool under /usr/bin/time (its peak RSS is the tool's alone); returns the loop's
    CPU seconds (as the tool reports them, else the process') and the peak RSS in MB."""
    stats = os.path.join(OUT, "time.txt")
    out = subprocess.run(
        ["/usr/bin/time", "-f", "%U %S %M", "-o", stats] + cmd,
        stdout=subprocess.PIPE, env=dict(os.environ, **ONE_THREAD), check=True,
    ).stdout.decode()
    user, system, rss_kb = open(stats).read().split()[-3:]
    loop_cpu = float(user) + float(system)
    for line in out.splitlines():
        if line.startswith("cpu_seconds"):
            loop_cpu = float(line.split()[1])
    return loop_cpu, int(rss_kb) / 1024.0


def magick_cmd(files, out, passes):
    # One process per photo, as apps shell out to it; cascade 1080 -> 720 -> 360 in it.
    lines = []
    for _ in range(passes):
        for f in files:
            stem = os.path.splitext(os.path.basename(f))[0]
            args = ["/usr/bin/convert-im6.q16", f, "-strip", "-quality", "85"]
            for i, n in enumerate(SIZES):
                args += ["-resize", f"{n}x{n}^>"]
                dest = os.path.join(out, f"{stem}_{n}.jpg")
                args += [dest] if i == len(SIZES) - 1 else ["-write", dest]
            lines.append(" ".join(shlex.quote(a) for a in args))
    return ["bash", "-c", " && ".join(lines)]


def command(tool, files, out, passes):
    peers = [sys.executable, os.path.join(HERE, "peers.py")]
    return {
        "engine": lambda: [BENCH, "engine", out, str(passes)] + files,
        "naive": lambda: [BENCH, "naive", out, str(passes)] + files,
        "vips": lambda: peers + ["vips", out, str(passes)] + files,
        "pillow": lambda: peers + ["pillow", out, str(passes)] + files,
        "magick": lambda: magick_cmd(files, out, passes),
    }[tool]()


def loadavg():
    return open("/proc/loadavg").read().split()[0]


def speed(half, files, tools):
    """{tool: [(cpu, photos, rss)]} over the rounds, order alternating; loads seen."""
    runs, loads = {t: [] for t in tools}, [loadavg()]
    rounds = max(ROUNDS, 1)
    for r in range(rounds):
        for tool in tools if r % 2 == 0 else list(reversed(tools)):
            out = os.path.join(OUT, half, tool)
            os.makedirs(out, exist_ok=True)
            passes = PASSES if ROUNDS else 1
            cpu, rss = run(command(tool, files, out, passes))
            runs[tool].append((cpu, len(files) * passes, rss))
            print(f"  {half} round {r + 1} {tool}: {cpu:.2f} CPU-s, {len(files) * passes} photos",
                  file=sys.stderr)
        loads.append(loadavg())
    return runs, loads


def score_source(job):
    """[(size, ratio class, subsampling, bytes, {channel: SSIM}, name)] of one source's
    renditions."""
    f, out, ref_dir = job
    stem = os.path.splitext(os.path.basename(f))[0]
    short, sub = source_class(f)
    paths = {n: os.path.join(out, f"{stem}_{n}.jpg") for n in SIZES}
    sizes = {n: rendition_size(p) for n, p in paths.items()}
    refs = references(f, list(sizes.values()), ref_dir)
    return [(n, ratio_class(short, sizes[n]), sub, os.path.getsize(p),
             scores(refs[sizes[n]], p), f"{stem}@{n}") for n, p in paths.items()]


def mean_scores(rows):
    return {c: sum(r[4][c] for r in rows) / len(rows) for c in CHANNELS}


def quality(half, files, tool):
    """{size: {channel: mean SSIM, "bytes": total}, "classes": {"ratio|subsampling": {channel:
    mean SSIM, "count": renditions}}, "renditions": {"photo@size": {"class": "ratio|subsampling",
    channel: SSIM}}} of a tool's last outputs."""
    out = os.path.join(OUT, half, tool)
    jobs = [(f, out, os.path.join(OUT, "ref", half)) for f in files]
    with multiprocessing.Pool(JOBS) as pool:
        rows = [r for per_source in pool.map(score_source, jobs) for r in per_source]
    result = {}
    for n in SIZES:
        of_size = [r for r in rows if r[0] == n]
        result[str(n)] = dict(mean_scores(of_size), bytes=sum(r[3] for r in of_size))
    groups = {}
    for r in rows:
        groups.setdefault(f"{r[1]}|{r[2]}", []).append(r)
    result["classes"] = {k: dict(mean_scores(v), count=len(v)) for k, v in groups.items()}
    result["renditions"] = {r[5]: dict(r[4], **{"class": f"{r[1]}|{r[2]}"}) for r in rows}
    return result


def report(half, nfiles, runs, loads, q):
    print(f"\n### {half} half: {nfiles} photos; load average {' -> '.join(loads)}\n")
    timed = [t for t in runs if runs[t]]
    if ROUNDS and "engine" in timed and "vips" in timed:
        ratios = [(e[1] / e[0]) / (v[1] / v[0]) for e, v in zip(runs["engine"], runs["vips"])]
        print("| tool | photos/CPU-s per round | peak RSS MB |\n|---|---|---:|")
        for t in timed:
            rates = ", ".join(f"{p / c:.2f}" for c, p, _ in runs[t])
            print(f"| {LABEL[t]} | {rates} | {max(r for _, _, r in runs[t]):.0f} |")
        print(f"\n**speed: tirage / libvips = {statistics.median(ratios):.2f}x median** "
              f"(rounds: {', '.join(f'{r:.2f}' for r in ratios)})\n")
    base = q.get("vips")
    head = " | ".join(CHANNELS)
    print(f"| size | tool | {head} | bytes | bytes vs libvips |")
    print("|---|---|" + "---:|" * (len(CHANNELS) + 2))
    for n in map(str, SIZES):
        for t, s in q.items():
            cells = []
            for c in CHANNELS:
                d = "" if base is None or t == "vips" else f" ({s[n][c] - base[n][c]:+.4f})"
                cells.append(f"{s[n][c]:.4f}{d}")
            rel = "" if base is None else f"{100.0 * (s[n]['bytes'] / base[n]['bytes'] - 1):+.1f} %"
            print(f"| {n} | {LABEL[t]} | {' | '.join(cells)} | {s[n]['bytes']} | {rel} |")
    if base is not None and "engine" in q:
        e = q["engine"]
        worst = min((e[n][c] - base[n][c], n, c) for n in map(str, SIZES) for c in CHANNELS)
        eb, vb = (sum(x[n]["bytes"] for n in map(str, SIZES)) for x in (e, base))
        print(f"\nworst SSIM tirage - libvips: {worst[0]:+.4f} ({worst[1]} {worst[2]}); "
              f"bytes {100.0 * (eb / vb - 1):+.1f} %")
        report_classes(e, base)


def worst_renditions(engine, vips):
    """{class: (tirage - libvips, photo@size, channel)}: each class's worst single rendition."""
    worst = {}
    for name, e in engine.get("renditions", {}).items():
        v = vips.get("renditions", {}).get(name)
        if v is None:
            continue
        gap = min((e[c] - v[c], name, c) for c in CHANNELS)
        worst[e["class"]] = min(worst.get(e["class"], gap), gap)
    return worst


def report_classes(engine_q, vips_q):
    """Tirage's mean SSIM (and tirage - libvips) by ratio class and source subsampling, with
    each class's worst channel of the means and its worst single rendition."""
    engine, vips = engine_q.get("classes", {}), vips_q.get("classes", {})
    singles = worst_renditions(engine_q, vips_q)
    print(f"\nby class of source (ratio | subsampling), tirage (tirage - libvips):\n")
    print(f"| ratio | subsampling | renditions | {' | '.join(CHANNELS)} | worst mean | "
          "worst rendition |")
    print("|---|---|---:|" + "---:|" * (len(CHANNELS) + 1) + "---|")
    order = [name for _, name in RATIO_CLASSES]
    keys = sorted((k for k in engine if k in vips),
                  key=lambda k: (order.index(k.split("|")[0]),
                                 SOURCE_KINDS.index(k.split("|")[1])))
    worst_all = None
    for k in keys:
        e, v = engine[k], vips[k]
        diffs = {c: e[c] - v[c] for c in CHANNELS}
        worst = min((d, c) for c, d in diffs.items())
        worst_all = min(worst_all or (worst[0], k, worst[1]), (worst[0], k, worst[1]))
        cells = " | ".join(f"{e[c]:.4f} ({diffs[c]:+.4f})" for c in CHANNELS)
        ratio, sub = k.split("|")
        single = singles.get(k)
        single = f"{single[0]:+.4f} {single[1]} {single[2]}" if single else ""
        print(f"| {ratio} | {sub} | {e['count']} | {cells} | {worst[0]:+.4f} {worst[1]} | "
              f"{single} |")
    if worst_all:
        print(f"\nworst class: {worst_all[0]:+.4f} ({worst_all[1]} {worst_all[2]})")


def main():
    if not os.path.exists(BENCH):
        sys.exit(f"no bench driver at {BENCH}")
    peers = ["magick", "pillow", "naive"] if env("BENCH_PEERS") == "1" else []
    for half in HALVES:
        files = sorted(glob.glob(os.path.join(PHOTOS, half, "*.jpg")))
        if env("BENCH_SHORT"):
            low, high = map(int, env("BENCH_SHORT").split("-"))
            files = [f for f in files if low <= source_class(f)[0] <= high]
        if not files:
            sys.exit(f"{PHOTOS}/{half} has no photo to run: run bench/corpus.sh {CORPUS}")
        runs, loads = speed(half, files, TOOLS)
        if peers:
            saved = globals()["ROUNDS"]
            globals()["ROUNDS"] = 1
            more, _ = speed(half, files, peers)
            globals()["ROUNDS"] = saved
            runs.update(more)
        q = {}
        for tool in ["engine", "vips"] + peers:
            cache = os.path.join(OUT, half, f"{tool}.json")
            if tool in TOOLS or tool in peers:
                q[tool] = quality(half, files, tool)
                json.dump(q[tool], open(cache, "w"))
            elif os.path.exists(cache):
                q[tool] = json.load(open(cache))
        report(half, len(files), runs, loads, q)


if __name__ == "__main__":
    main()
