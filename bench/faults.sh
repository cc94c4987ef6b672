#!/usr/bin/env bash
# The long fault run (docs/RELIABILITY.md, "Figures"): the CI fault suite
# (tests/tests/faults.rs) on 1,000-photo batches, plus a 10-minute S3 outage (Garage killed:
# connections refused, then started again). Each fault must end as in CI: `completed`, the
# exact done/failed split, every rendition downloadable, nothing left once deleted.
#
#   bench/faults.sh [photos]     (default 1000)
#
# Environment: TIRAGE_FAULTS (default: all seven CI faults then s3_down),
# TIRAGE_FAULTS_S3_DOWN_SECS (600), TIRAGE_FAULTS_FREEZE_SECS (120),
# TIRAGE_FAULTS_JOB_DELAY_MS (100 here: a 1,000-photo batch lasts long enough at that; every
# resize of the suite's test worker, tirage-worker-slowed, sleeps this long first). The suite
# is built in the profile deploy/local/cluster.sh runs (TIRAGE_BUILD_PROFILE, release unless
# debug), so that its workers are of the same build as the API.
# Needs what the suite needs (nginx, redis-server, rabbitmq-server, Garage, cargo) and the
# machine's shared Redis, RabbitMQ and Garage up (scripts/services.sh up), whose settings
# cluster.sh reads before the suite points it at its own. Takes about an hour on 2 cores.
# Writes bench/out/faults/summary.md (the table) and bench/out/faults/test.log.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PHOTOS="${1:-1000}"
OUT="$REPO/bench/out/faults"
mkdir -p "$OUT"
SUMMARY="$OUT/summary.md"

export TIRAGE_FAULTS="${TIRAGE_FAULTS:-kill_worker,poison_photo,rabbitmq_restart,redis_restart,s3_frozen,api_replica_killed,registration_lost,s3_down}"
export TIRAGE_FAULTS_PHOTOS="$PHOTOS"
export TIRAGE_FAULTS_S3_DOWN_SECS="${TIRAGE_FAULTS_S3_DOWN_SECS:-600}"
export TIRAGE_FAULTS_FREEZE_SECS="${TIRAGE_FAULTS_FREEZE_SECS:-120}"
export TIRAGE_FAULTS_JOB_DELAY_MS="${TIRAGE_FAULTS_JOB_DELAY_MS:-100}"
export TIRAGE_FAULTS_REPORT="$OUT/rows.md"
rm -f "$TIRAGE_FAULTS_REPORT"

"$REPO/scripts/services.sh" up >/dev/null

cd "$REPO"
started=$SECONDS
status=0
release=(--release)
[[ "${TIRAGE_BUILD_PROFILE:-release}" == release ]] || release=()
cargo test "${release[@]}" -p tirage-e2e --all-features --test faults -- --nocapture 2>&1 |
  tee "$OUT/test.log" || status=$?
{
  echo "# $(date -u +%FT%TZ) $(uname -srm), $(nproc) cores; ${PHOTOS} photos per batch"
  echo "# TIRAGE_FAULTS=$TIRAGE_FAULTS TIRAGE_FAULTS_PHOTOS=$PHOTOS bench/faults.sh"
  echo "# job delay ${TIRAGE_FAULTS_JOB_DELAY_MS} ms; total $((SECONDS - started)) s; exit status $status"
  echo
  echo "| fault | photos | injected at | done | failed | close → completed | renditions checked | note |"
  echo "|---|---|---|---|---|---|---|---|"
  cat "$TIRAGE_FAULTS_REPORT" 2>/dev/null || true
  grep -E '^=== fault .*: FAILED' "$OUT/test.log" | sed 's/^=== /FAILED: /' || true
} | tee "$SUMMARY"
exit "$status"
