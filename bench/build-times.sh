#!/usr/bin/env bash
# Build times of two commits (docs/BENCHMARKS.md, "Crate split: build times"): for each, a
# clean debug build of the workspace in its own clone and target directory, then the same
# build after appending a comment to one engine, one API and one worker file (restored after).
# Run it alone on an idle machine: every figure is wall time.
#
#   bench/build-times.sh BEFORE [AFTER]     (AFTER defaults to HEAD; prints one line per figure)
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BEFORE="${1:?usage: bench/build-times.sh BEFORE [AFTER]}"
AFTER="${2:-HEAD}"
FILES=(engine/src/lib.rs api/src/startup.rs worker/src/job.rs)
seconds() { local t0; t0=$(date +%s.%N); "$@" >/dev/null 2>&1; echo "$(date +%s.%N) - $t0" | bc; }
for which in before after; do
  rev=$([[ $which == before ]] && echo "$BEFORE" || echo "$AFTER")
  rev=$(git -C "$REPO" rev-parse --short "$rev")
  dir="$(mktemp -d -t tirage-build-times-$which.XXXXXX)"
  git clone -q "$REPO" "$dir" && git -C "$dir" checkout -q "$rev"
  cd "$dir"
  export CARGO_TARGET_DIR="$dir/target" CARGO_INCREMENTAL=1
  cargo fetch -q
  echo "$which $rev clean_build_s $(seconds cargo build --workspace --all-features)"
  for f in "${FILES[@]}"; do
    echo "// touched" >>"$f"
    echo "$which $rev touch_${f}_s $(seconds cargo build --workspace --all-features)"
    git checkout -q -- "$f"
    cargo build -q --workspace --all-features
  done
  cd "$REPO" && rm -rf "$dir"
done
