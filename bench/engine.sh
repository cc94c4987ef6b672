#!/usr/bin/env bash
# The engine benchmark of docs/BENCHMARKS.md, end to end: builds the corpus of real photos
# (bench/corpus.sh: bench/photos/tune and bench/photos/held) if missing, a Python venv with
# pyvips (on Debian's libvips: scripts/install-deps.sh --bench), Pillow, scikit-image and numpy,
# the release bench driver, then prints, per half, the speed of the engine against libvips
# (interleaved rounds, one thread) and the SSIM per size and per channel of both.
#   bench/engine.sh                        (BENCH_ROUNDS=3, BENCH_PASSES=2; see bench/engine.py)
#   CARGO_TARGET_DIR=/elsewhere bench/engine.sh
#   BENCH_CORPUS=classes BENCH_ROUNDS=0 bench/engine.sh   quality by ratio and subsampling class
set -euo pipefail
cd "$(dirname "$0")/.."
corpus=bench/photos
[[ "${BENCH_CORPUS:-photos}" == classes ]] && corpus=bench/photos/classes
for half in tune held; do
  [[ -n "$(ls $corpus/$half/*.jpg 2>/dev/null)" ]] || bench/corpus.sh "${BENCH_CORPUS:-photos}"
done
if [[ ! -x bench/.venv/bin/python ]]; then
  python3 -m venv bench/.venv
  bench/.venv/bin/pip install -q pyvips Pillow scikit-image numpy
fi
cargo build -q --release -p tirage-engine --example bench
export BENCH_BIN="${CARGO_TARGET_DIR:-target}/release/examples/bench"
exec bench/.venv/bin/python bench/engine.py
