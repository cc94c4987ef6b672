#!/usr/bin/env bash
# The engine benchmark of docs/BENCHMARKS.md, end to end: builds the corpus of real photos if
# missing, a Python venv with pyvips (on Debian's libvips: scripts/install-deps.sh --bench),
# Pillow and scikit-image, the release bench driver, then prints the table.
#   bench/engine.sh            (BENCH_PASSES=3 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -n "$(ls bench/corpus/*.jpg 2>/dev/null)" ]] || bench/build-corpus.sh
if [[ ! -x bench/.venv/bin/python ]]; then
  python3 -m venv bench/.venv
  bench/.venv/bin/pip install -q pyvips Pillow scikit-image numpy
fi
cargo build -q --release -p tirage-engine --example bench
exec bench/.venv/bin/python bench/engine.py
