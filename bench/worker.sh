#!/usr/bin/env bash
# Worker benchmark (docs/BENCHMARKS.md, "## Worker"): photos/s through one `tirage-worker`
# (RabbitMQ → Garage → engine → Garage → Redis) against the engine alone, on the reference
# corpus, same machine, same run. The gap is the per-photo cost of S3, AMQP and Redis.
#
#   bench/worker.sh [rounds]      (default 5; median of alternating rounds)
#
# Needs Redis, RabbitMQ and Garage (scripts/services.sh / scripts/garage.sh up) and the
# corpus in bench/corpus (built by bench/build-corpus.sh when missing). Writes
# bench/out/worker/summary.txt.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROUNDS="${1:-5}"
CORPUS="${BENCH_CORPUS:-$REPO/bench/corpus}"
OUT="$REPO/bench/out/worker"

die() { echo "bench/worker: $*" >&2; exit 1; }

if [[ -z "${BENCH_CORPUS:-}" ]] && ! compgen -G "$CORPUS/*.jpg" >/dev/null; then
  "$REPO/bench/build-corpus.sh"
fi
compgen -G "$CORPUS/*" >/dev/null || die "no corpus in $CORPUS (bench/build-corpus.sh builds it)"

if [[ -z "${TIRAGE_TEST_S3_ENDPOINT:-}" ]]; then
  eval "$("$REPO/scripts/garage.sh" env)" || die "Garage is not configured: run scripts/garage.sh up"
fi
export TIRAGE_TEST_REDIS_URL="${TIRAGE_TEST_REDIS_URL:-redis://127.0.0.1:6379}"
export TIRAGE_TEST_AMQP_URL="${TIRAGE_TEST_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"
export RUST_LOG="${RUST_LOG:-warn}"

mkdir -p "$OUT"
cd "$REPO"
cargo build --release -p tirage-worker --example bench_worker
{
  echo "# $(date -u +%FT%TZ) $(uname -srm), $(nproc) cores"
  echo "# cargo run --release -p tirage-worker --example bench_worker -- $CORPUS $ROUNDS"
  "${CARGO_TARGET_DIR:-$REPO/target}/release/examples/bench_worker" "$CORPUS" "$ROUNDS"
} | tee "$OUT/summary.txt"
