#!/usr/bin/env bash
# A worker's cold start (docs/BENCHMARKS.md, "## Worker cold start"): what a queue-driven
# autoscaler waiting at zero workers adds before the first photo is done. With a job already
# waiting in the queue, a fresh `tirage-worker` process (release) is started and timed:
#   process start -> consuming   (settings, Redis/S3 clients, broker connection, consumer);
#   process start -> first job settled (its original read, resized, three renditions stored,
#                                       outcome recorded, delivery acked).
# The worker's environment is the one deploy/local/cluster.sh gives its own worker (read from
# /proc before that worker is stopped), so nothing differs but the start. Rounds alternate
# photo sizes over bench/corpus.
#
#   bench/cold-start.sh [rounds]      (default 5)
#
# Needs what cluster.sh needs; TIRAGE_SKIP_BUILD=1 uses the release binaries already built.
# Writes bench/out/cold-start/summary.txt. A pod adds its image pull and container start on
# top (seconds, cached image), which this machine cannot measure.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROUNDS="${1:-5}"
OUT="$REPO/bench/out/cold-start"
TARGET="${CARGO_TARGET_DIR:-$REPO/target}/release"
PORT="${TIRAGE_BENCH_PORT:-18790}"

die() { echo "bench/cold-start: $*" >&2; exit 1; }

cd "$REPO"
compgen -G "bench/corpus/*.jpg" >/dev/null || bench/build-corpus.sh
if [[ "${TIRAGE_SKIP_BUILD:-0}" != 1 ]]; then
  cargo build --release -p tirage-api --bin tirage-api -p tirage-worker --bin tirage-worker
fi

work="$(mktemp -d -t tirage-bench-cold.XXXXXX)"
run_dir="$work/cluster"
cluster() {
  TIRAGE_PORT="$PORT" TIRAGE_RUN_DIR="$run_dir" TIRAGE_BUILD_PROFILE=release TIRAGE_SKIP_BUILD=1 \
    TIRAGE_API_REPLICAS=1 TIRAGE_WORKERS=1 deploy/local/cluster.sh "$1" >>"$work/cluster.log" 2>&1
}
worker=""
cleanup() {
  [[ -n "$worker" ]] && kill "$worker" 2>/dev/null && wait "$worker" 2>/dev/null
  cluster down || true
  rm -rf "$work"
}
trap cleanup EXIT

cluster up || die "cluster.sh up failed; see $work/cluster.log"
read -r pid _ <"$run_dir/worker-1.pid"
tr '\0' '\n' <"/proc/$pid/environ" | grep -E '^(TIRAGE|RUST|PATH|HOME)' >"$work/worker.env"
kill -TERM "$pid"
while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done

json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
base="http://127.0.0.1:$PORT"
token="$(curl -sf -X POST "$base/v1/sessions" | json "['token']")"
mapfile -t photos < <(ls bench/corpus/*.jpg)
ms() { python3 -c "import sys,datetime; print(datetime.datetime.fromisoformat(sys.argv[1].replace('Z','+00:00')).timestamp())" "$1"; }

mkdir -p "$OUT"
{
  echo "# $(date -u +%FT%TZ) $(uname -srm), $(nproc) cores, commit $(git rev-parse --short HEAD)"
  echo "# bench/cold-start.sh $ROUNDS (release tirage-worker, one job waiting in the queue)"
  consume=() first=()
  for ((r = 0; r < ROUNDS; r++)); do
    photo="${photos[r % ${#photos[@]}]}"
    batch="$(curl -sf -X POST -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
      -d '{}' "$base/v1/batches" | json "['id']")"
    curl -sf -o /dev/null -H "Authorization: Bearer $token" -F "file=@$photo;type=image/jpeg" \
      "$base/v1/batches/$batch/photos"
    curl -sf -o /dev/null -X POST -H "Authorization: Bearer $token" "$base/v1/batches/$batch/close"
    log="$work/worker-$r.log"
    : >"$log"
    t0="$(date +%s.%N)"
    env -i $(cat "$work/worker.env") TIRAGE__LOG__LEVEL=info TIRAGE__LOG__FORMAT=json \
      "$TARGET/tirage-worker" >"$log" 2>&1 &
    worker=$!
    until grep -q '"job settled"' "$log"; do
      kill -0 "$worker" 2>/dev/null || die "the worker exited; see $log"
      sleep 0.01
    done
    t_consume="$(ms "$(grep -m1 '"consuming"' "$log" | json "['timestamp']")")"
    t_first="$(ms "$(grep -m1 '"job settled"' "$log" | json "['timestamp']")")"
    kill -TERM "$worker"; wait "$worker" 2>/dev/null || true; worker=""
    c="$(echo "($t_consume - $t0) * 1000" | bc -l)" f="$(echo "($t_first - $t0) * 1000" | bc -l)"
    consume+=("$c") first+=("$f")
    printf 'round %s (%s): start -> consuming %.0f ms, start -> first job settled %.0f ms\n' \
      "$((r + 1))" "$(basename "$photo")" "$c" "$f"
  done
  median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
  printf 'median: start -> consuming %.0f ms, start -> first job settled %.0f ms\n' \
    "$(median "${consume[@]}")" "$(median "${first[@]}")"
} | tee "$OUT/summary.txt"
