#!/usr/bin/env bash
# What each output format costs per photo against JPEG (docs/BENCHMARKS.md, "AVIF output"):
# every photo of each set to 1080/720/360 at one quality, on one thread, each format in turn
# over the whole set, BENCH_ROUNDS times, the order alternating (engine/examples/formats.rs),
# then the mean SSIM of each format's renditions per size (bench/formats_quality.py).
# Sets: bench/corpus and, when built (bench/corpus.sh), bench/photos/tune and held.
#   bench/formats.sh     (BENCH_FORMATS=jpeg,webp,avif BENCH_QUALITY=85 BENCH_ROUNDS=3;
#                         BENCH_PYTHON: a Python with Pillow, scikit-image and numpy)
set -euo pipefail
cd "$(dirname "$0")/.."
formats="${BENCH_FORMATS:-jpeg,webp,avif}"
quality="${BENCH_QUALITY:-85}"
rounds="${BENCH_ROUNDS:-3}"
py="${BENCH_PYTHON:-bench/.venv/bin/python}"
if [[ ! -x "$py" ]]; then
  python3 -m venv bench/.venv
  bench/.venv/bin/pip install -q Pillow scikit-image numpy
  py=bench/.venv/bin/python
fi
cargo build -q --release -p tirage-engine --example formats
bin="${CARGO_TARGET_DIR:-target}/release/examples/formats"
sets=(bench/corpus)
for half in tune held; do
  [[ -n "$(ls bench/photos/$half/*.jpg 2>/dev/null)" ]] && sets+=("bench/photos/$half")
done
for set in "${sets[@]}"; do
  files=("$set"/*.jpg)
  out="bench/out/formats/$(basename "$set")"
  echo "## $set (${#files[@]} photos), $(date -u +%F), load average $(cut -d' ' -f1-3 /proc/loadavg)"
  BENCH_OUT="$out" "$bin" "$formats" "$quality" "$rounds" "${files[@]}"
  echo
  "$py" bench/formats_quality.py "$out" ${formats//,/ } -- "${files[@]}"
  echo
done
