#!/usr/bin/env bash
# The backlog measurement of docs/RELIABILITY.md ("A batch that waits"): one worker, the
# reconciler's stall threshold scaled down (8 s; 10 min in production) against a backlog two
# to three times longer, as 10 minutes against half an hour. Three batches (48, 12 and 12
# photos) are uploaded at once with `tirage upload`; the two small ones wait behind the big
# one. Prints the photos failed and the resize deliveries the worker handled per photo (each
# delivery is one "job settled" line of kind resize in its log): 1.00 when nothing was
# republished for waiting.
#
#   bench/backlog.sh
#
# Environment: TIRAGE_BACKLOG_DELAY_MS (400: every resize of the test worker,
# tirage-worker-slowed, sleeps this long first, which sets the backlog's length),
# TIRAGE_BACKLOG_PORT (18680), TIRAGE_BUILD_PROFILE (release unless debug). Needs what
# deploy/local/cluster.sh needs, and the binaries built in that profile (cargo build
# --workspace --all-features --bins).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
PROFILE="${TIRAGE_BUILD_PROFILE:-release}"
WORK="$(mktemp -d -t tirage-backlog.XXXXXX)"
export TIRAGE_PORT="${TIRAGE_BACKLOG_PORT:-18680}" TIRAGE_RUN_DIR="$WORK/cluster"
export TIRAGE_WORKERS=1 TIRAGE_API_REPLICAS=1 TIRAGE_SKIP_BUILD=1 TIRAGE_BUILD_PROFILE="$PROFILE"
export TIRAGE_WORKER_BIN="$REPO/target/$PROFILE/tirage-worker-slowed"
export TIRAGE_TEST_JOB_DELAY_MS="${TIRAGE_BACKLOG_DELAY_MS:-400}"
export TIRAGE__WORKER__CONCURRENCY=2 TIRAGE__WORKER__STALL_AFTER_MS=8000
export TIRAGE__WORKER__RECONCILE_EVERY_MS=2000

deploy/local/cluster.sh up
trap 'deploy/local/cluster.sh down >/dev/null' EXIT

# Batches of copies of the reference corpus, each file its own photo.
mapfile -t corpus < <(ls bench/corpus/*.jpg)
for spec in big:48 small1:12 small2:12; do
  name="${spec%%:*}" count="${spec##*:}"
  mkdir -p "$WORK/in/$name"
  for ((i = 0; i < count; i++)); do
    cp "${corpus[i % ${#corpus[@]}]}" "$WORK/in/$name/$(printf '%03d' "$i").jpg"
  done
done

started=$(date +%s.%N)
pids=()
for name in big small1 small2; do
  "target/$PROFILE/tirage" upload "$WORK/in/$name" --server "http://127.0.0.1:$TIRAGE_PORT" \
    --out "$WORK/out/$name" >"$WORK/$name.log" 2>&1 &
  pids+=($!)
  # The big batch first, so that the small ones queue behind it.
  [[ "$name" == big ]] && sleep 2
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
elapsed=$(echo "$(date +%s.%N) - $started" | bc)

photos=72
failed=$(cat "$WORK"/*.log | grep -c '^error: ' || true)
deliveries=$(grep 'job settled' "$TIRAGE_RUN_DIR/logs/worker-1.log" | grep -c '"kind":"resize"' || true)
republished=$(grep -c 'queued jobs published again' "$TIRAGE_RUN_DIR/logs/worker-1.log" || true)
waiting=$(grep -c 'waits behind a backlog' "$TIRAGE_RUN_DIR/logs/worker-1.log" || true)
echo "backlog: $photos photos in ${elapsed%.*} s (stall threshold 8 s), tirage upload status $status"
echo "backlog: photos failed $failed; resize deliveries $deliveries ($(echo "scale=2; $deliveries / $photos" | bc) per photo)"
echo "backlog: reconciler passes that left a batch waiting: $waiting; batches republished: $republished"
