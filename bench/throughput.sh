#!/usr/bin/env bash
# The whole local cluster against the engine alone (docs/BENCHMARKS.md, "## Whole cluster"):
# the same real photos, the same cores, the same run. Alternating rounds:
#   engine   `tirage resize --threads <cores>` on the photos (release), wall time;
#   cluster  `deploy/local/cluster.sh` (nginx, 2 API replicas, W workers, Redis, RabbitMQ and
#            Garage, all on this machine's cores), a fresh session and batch per round, every
#            photo POSTed through nginx (4 at a time, multipart, as `curl` sends it), closed,
#            timed from the first upload until GET shows the batch `completed` (polled every
#            50 ms). Every photo must be `done`.
# Ratio = engine seconds / cluster seconds (= cluster photos/s over engine photos/s).
#
#   bench/throughput.sh [photos] [rounds] [workers...]   (defaults 208, 3, "1 2")
#
# Photos: the real photographs of bench/photos/{tune,held} (bench/corpus.sh) and bench/corpus
# (bench/build-corpus.sh), repeated under distinct names up to [photos]. Needs what
# cluster.sh needs; TIRAGE_SKIP_BUILD=1 uses the release binaries already built. Writes
# bench/out/throughput/summary.txt.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
COUNT="${1:-208}"
ROUNDS="${2:-3}"
shift $(($# >= 2 ? 2 : $#))
WORKERS=("$@")
[[ ${#WORKERS[@]} -eq 0 ]] && WORKERS=(1 2)
OUT="$REPO/bench/out/throughput"
TARGET="${CARGO_TARGET_DIR:-$REPO/target}/release"
PORT="${TIRAGE_BENCH_PORT:-18780}"
CORES="$(nproc)"

die() { echo "bench/throughput: $*" >&2; exit 1; }

cd "$REPO"
compgen -G "bench/corpus/*.jpg" >/dev/null || bench/build-corpus.sh
compgen -G "bench/photos/held/*.jpg" >/dev/null || bench/corpus.sh
if [[ "${TIRAGE_SKIP_BUILD:-0}" != 1 ]]; then
  cargo build --release -p tirage-cli --bin tirage -p tirage-api --bin tirage-api \
    -p tirage-worker --bin tirage-worker
fi
for bin in tirage tirage-api tirage-worker; do [[ -x "$TARGET/$bin" ]] || die "missing $TARGET/$bin"; done

work="$(mktemp -d -t tirage-bench-throughput.XXXXXX)"
run_dir="$work/cluster"
cluster_up=0
cluster() { # cluster up|down [workers]
  TIRAGE_PORT="$PORT" TIRAGE_RUN_DIR="$run_dir" TIRAGE_BUILD_PROFILE=release TIRAGE_SKIP_BUILD=1 \
    TIRAGE_API_REPLICAS=2 TIRAGE_WORKERS="${2:-1}" TIRAGE__LOG__LEVEL=warn \
    deploy/local/cluster.sh "$1" >>"$work/cluster.log" 2>&1
}
cleanup() {
  [[ $cluster_up == 1 ]] && cluster down || true
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/photos" "$OUT"
mapfile -t sources < <(ls bench/photos/tune/*.jpg bench/photos/held/*.jpg bench/corpus/*.jpg)
for ((i = 0; i < COUNT; i++)); do
  src="${sources[i % ${#sources[@]}]}"
  ln -s "$REPO/$src" "$work/photos/$(printf 'p%04d' "$i")-$(basename "$src")"
done
bytes="$(du -L -cb "$work/photos"/* | tail -1 | cut -f1)"

# "wall-seconds cpu-seconds" of `tirage resize` on the photos (its CPU from rusage).
engine_round() {
  rm -rf "$work/engine-out"
  python3 - "$TARGET/tirage" resize --threads "$CORES" --out "$work/engine-out" "$work/photos" <<'PY'
import resource, subprocess, sys, time
t0 = time.monotonic()
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)
wall = time.monotonic() - t0
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print(f"{wall:.3f} {r.ru_utime + r.ru_stime:.3f}")
PY
}

json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

cluster_round() {
  local base="http://127.0.0.1:$PORT" token batch t0 t1 state
  token="$(curl -sf -X POST "$base/v1/sessions" | json "['token']")"
  batch="$(curl -sf -X POST -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    -d '{}' "$base/v1/batches" | json "['id']")"
  t0="$(date +%s.%N)"
  ls "$work/photos" | xargs -P 4 -I{} curl -s -o /dev/null -w '%{http_code}\n' \
    --retry 5 --retry-all-errors -H "Authorization: Bearer $token" \
    -F "file=@$work/photos/{};type=image/jpeg" "$base/v1/batches/$batch/photos" \
    >"$work/codes.txt"
  curl -sf -X POST -H "Authorization: Bearer $token" "$base/v1/batches/$batch/close" >/dev/null
  while :; do
    state="$(curl -sf -H "Authorization: Bearer $token" "$base/v1/batches/$batch")"
    [[ "$(json "['state']" <<<"$state")" == completed ]] && break
    sleep 0.05
  done
  t1="$(date +%s.%N)"
  [[ "$(json "['done']" <<<"$state")" == "$COUNT" ]] || die "batch $batch: $state"
  echo "$t1 - $t0" | bc -l
}

# CPU seconds used so far by each kind of process (utime + stime of every live process whose
# command name starts with the kind), "kind=seconds ..." on one line.
cpu_by_kind() {
  python3 - <<'PY'
import os
kinds = ["tirage-worker", "tirage-api", "nginx", "garage", "redis-server", "beam.smp"]
used = dict.fromkeys(kinds, 0.0)
tick = os.sysconf("SC_CLK_TCK")
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        continue
    comm = stat[stat.index("(") + 1 : stat.rindex(")")]
    fields = stat[stat.rindex(")") + 2 :].split()
    for kind in kinds:
        if comm.startswith(kind[:15]):
            used[kind] += (int(fields[11]) + int(fields[12])) / tick
print(" ".join(f"{k}={v:.2f}" for k, v in used.items()))
PY
}

# "kind=a ..." before and after -> "kind=(after-before)s ... total=Ts"
cpu_diff() {
  python3 -c '
import sys
a = dict(kv.split("=") for kv in sys.argv[1].split())
b = dict(kv.split("=") for kv in sys.argv[2].split())
d = {k: float(b[k]) - float(a[k]) for k in a}
print(" ".join(f"{k}={v:.1f}s" for k, v in d.items()), f"total={sum(d.values()):.1f}s")' "$1" "$2"
}

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

{
  echo "# $(date -u +%FT%TZ) $(uname -srm), $CORES cores, commit $(git rev-parse --short HEAD)"
  echo "# bench/throughput.sh $COUNT $ROUNDS ${WORKERS[*]}: $COUNT photos (${#sources[@]} distinct real photographs, $((bytes / 1000000)) MB)"
  for w in "${WORKERS[@]}"; do
    cluster up "$w" || die "cluster.sh up failed; see $work/cluster.log"
    cluster_up=1
    engine=() whole=() engine_cpu=() whole_cpu=()
    for ((r = 1; r <= ROUNDS; r++)); do
      read -r e ecpu < <(engine_round); engine+=("$e") engine_cpu+=("$ecpu")
      before="$(cpu_by_kind)"
      c="$(cluster_round)"; whole+=("$c")
      used="$(cpu_diff "$before" "$(cpu_by_kind)")"
      whole_cpu+=("$(sed -n 's/.*total=\([0-9.]*\)s.*/\1/p' <<<"$used")")
      printf 'workers=%s round %s: engine %.2f s (CPU %.1f s), cluster %.2f s; cluster CPU: %s\n' \
        "$w" "$r" "$e" "$ecpu" "$c" "$used"
    done
    me="$(median "${engine[@]}")" mc="$(median "${whole[@]}")"
    mec="$(median "${engine_cpu[@]}")" mcc="$(median "${whole_cpu[@]}")"
    printf 'workers=%s median: engine %.2f s (%.1f photos/s), cluster %.2f s (%.1f photos/s), wall ratio %.2f\n' \
      "$w" "$me" "$(echo "$COUNT / $me" | bc -l)" "$mc" "$(echo "$COUNT / $mc" | bc -l)" \
      "$(echo "$me / $mc" | bc -l)"
    printf 'workers=%s median CPU: engine %.1f s (%.1f ms/photo), whole cluster %.1f s (%.1f ms/photo), CPU ratio %.2f\n' \
      "$w" "$mec" "$(echo "$mec * 1000 / $COUNT" | bc -l)" "$mcc" "$(echo "$mcc * 1000 / $COUNT" | bc -l)" \
      "$(echo "$mec / $mcc" | bc -l)"
    cluster down; cluster_up=0
  done
} | tee "$OUT/summary.txt"
