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

Environment: BENCH_HALVES (tune,held), BENCH_TOOLS (engine,vips: scores of a tool not run are
read back from its last run's JSON), BENCH_ROUNDS (3; 0 = one untimed pass for quality only),
BENCH_PASSES (2), BENCH_BIN (the bench driver), BENCH_PEERS=1 adds one timed round of ImageMagick,
Pillow and the naive `image` crate path (and their SSIM) to each half."""
import glob
import json
import os
import shlex
import statistics
import subprocess
import sys

from peers import SIZES
from quality import CHANNELS, references, rendition_size, scores

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


def quality(half, files, tool):
    """{size: {channel: mean SSIM, "bytes": total}} of a tool's last outputs."""
    per = {n: {c: [] for c in CHANNELS} for n in SIZES}
    total = {n: 0 for n in SIZES}
    out = os.path.join(OUT, half, tool)
    for f in files:
        stem = os.path.splitext(os.path.basename(f))[0]
        paths = {n: os.path.join(out, f"{stem}_{n}.jpg") for n in SIZES}
        refs = references(f, [rendition_size(p) for p in paths.values()],
                          os.path.join(OUT, "ref", half))
        for n, p in paths.items():
            total[n] += os.path.getsize(p)
            for c, s in scores(refs[rendition_size(p)], p).items():
                per[n][c].append(s)
    result = {n: {c: sum(v) / len(v) for c, v in per[n].items()} for n in SIZES}
    for n in SIZES:
        result[n]["bytes"] = total[n]
    return {str(n): v for n, v in result.items()}


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


def main():
    if not os.path.exists(BENCH):
        sys.exit(f"no bench driver at {BENCH}")
    peers = ["magick", "pillow", "naive"] if env("BENCH_PEERS") == "1" else []
    for half in HALVES:
        files = sorted(glob.glob(os.path.join(HERE, "photos", half, "*.jpg")))
        if not files:
            sys.exit(f"bench/photos/{half} is empty: run bench/corpus.sh")
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
