#!/usr/bin/env bash
# A/B of engine builds, for variants whose output bytes matter less than their CPU: runs each
# given bench driver (engine/examples/bench.rs, built from the variant and copied aside) over a
# half of the corpus, rounds alternating, and prints every round's CPU seconds and the mean.
# Compare the renditions it leaves in bench/out/ab/<driver name>/ with `cmp` to check that a
# speed-only change is byte-identical.
#   bench/engine-ab.sh ROUNDS DRIVER...        (BENCH_HALF=tune, BENCH_PASSES=2)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=$1
shift
half=${BENCH_HALF:-tune}
passes=${BENCH_PASSES:-2}
files=(bench/photos/"$half"/*.jpg)
for _ in $(seq "$rounds"); do
  for driver in "$@"; do
    out="bench/out/ab/$(basename "$driver")"
    mkdir -p "$out"
    echo "$(basename "$driver") $("$driver" engine "$out" "$passes" "${files[@]}" | awk '{print $2}')"
  done
done | awk '{ runs[$1] = runs[$1] " " $2; sum[$1] += $2; n[$1]++ }
  END { for (d in runs) printf "%-20s mean %.3f CPU-s:%s\n", d, sum[d] / n[d], runs[d] }'
