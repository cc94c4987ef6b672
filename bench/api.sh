#!/usr/bin/env bash
# API benchmark (docs/BENCHMARKS.md, "## API"): the release `tirage-api` behind nginx (the
# shared deploy/nginx template), on the real Redis, RabbitMQ and Garage.
#   1. GET /v1/batches/{id} through nginx with wrk: req/s and p99 (goal ≥ 10,000 req/s, p99 ≤ 10 ms);
#   2. multipart upload throughput through nginx + API into S3, in MB/s, against a direct S3
#      PUT of the same files (curl --aws-sigv4), both sequential, same files, same run.
#
#   bench/api.sh            writes bench/out/api/{wrk-get-batch.txt,upload.txt,summary.txt}
#
# Environment (optional): BENCH_PORT=18080 (nginx; replicas on the next ports),
# BENCH_API_REPLICAS=1 (its two actix workers already use both cores), BENCH_LOG_LEVEL=info, BENCH_DURATION=20s, BENCH_CONNECTIONS=64, BENCH_THREADS=2,
# BENCH_FILES=16, BENCH_FILE_MB=4, BENCH_SKIP_BUILD=1 (use the built binary), and the TIRAGE_TEST_* service variables (Garage's come
# from `scripts/garage.sh env` when unset). Stops exactly what it started.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PORT="${BENCH_PORT:-18080}"
REPLICAS="${BENCH_API_REPLICAS:-1}"
DURATION="${BENCH_DURATION:-20s}"
CONNECTIONS="${BENCH_CONNECTIONS:-64}"
THREADS="${BENCH_THREADS:-2}"
FILES="${BENCH_FILES:-16}"
FILE_MB="${BENCH_FILE_MB:-4}"
OUT="$REPO/bench/out/api"
RUN="$OUT/run"
BIN="${CARGO_TARGET_DIR:-$REPO/target}/release/tirage-api"

die() { echo "bench/api: $*" >&2; exit 1; }
for tool in wrk curl nginx jq; do
  command -v "$tool" >/dev/null || die "$tool is not installed (scripts/install-deps.sh)"
done

if [[ -z "${TIRAGE_TEST_S3_ENDPOINT:-}" ]]; then
  eval "$("$REPO/scripts/garage.sh" env)" || die "Garage is not configured: run scripts/garage.sh up"
fi
: "${TIRAGE_TEST_S3_ENDPOINT:?}" "${TIRAGE_TEST_S3_ACCESS_KEY:?}" "${TIRAGE_TEST_S3_SECRET_KEY:?}" "${TIRAGE_TEST_S3_BUCKET:?}"
S3_REGION="${TIRAGE_TEST_S3_REGION:-garage}"

[[ "${BENCH_SKIP_BUILD:-0}" == 1 ]] || (cd "$REPO" && cargo build --release --bin tirage-api)

rm -rf "$RUN" && mkdir -p "$RUN/logs" "$RUN/nginx-tmp" "$RUN/files"
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

# The services, as the API's own settings; a unique queue keeps the bench's jobs apart.
export TIRAGE__REDIS__URL="${TIRAGE_TEST_REDIS_URL:-redis://127.0.0.1:6379}"
export TIRAGE__AMQP__URL="${TIRAGE_TEST_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"
export TIRAGE__S3__ENDPOINT="$TIRAGE_TEST_S3_ENDPOINT" TIRAGE__S3__ACCESS_KEY="$TIRAGE_TEST_S3_ACCESS_KEY"
export TIRAGE__S3__SECRET_KEY="$TIRAGE_TEST_S3_SECRET_KEY" TIRAGE__S3__BUCKET="$TIRAGE_TEST_S3_BUCKET"
export TIRAGE__S3__REGION="$S3_REGION"
# The API as deployed: the per-session limiter counts every request (its limit is only raised
# so that one wrk session is never refused) and every request is logged (to a file).
export TIRAGE__RATE_LIMIT__ENABLED=true TIRAGE__RATE_LIMIT__REQUESTS=1000000000
export TIRAGE__LOG__LEVEL="${BENCH_LOG_LEVEL:-info}"

servers=""
for ((i = 1; i <= REPLICAS; i++)); do
  p=$((PORT + i))
  TIRAGE__API__HOST=127.0.0.1 TIRAGE__API__PORT="$p" "$BIN" >"$RUN/logs/api-$i.log" 2>&1 &
  PIDS+=("$!")
  servers+="server 127.0.0.1:$p max_fails=3 fail_timeout=5s; "
done
user_line=""
if ((EUID == 0)); then user_line="user nobody nogroup;"; chown -R nobody:nogroup "$RUN/nginx-tmp"; fi
"$REPO/deploy/nginx/render.sh" "$REPO/deploy/nginx/tirage.conf.template" \
  "TIRAGE_API_SERVERS=$servers" "TIRAGE_NGINX_LISTEN=127.0.0.1:$PORT" >"$RUN/tirage.conf"
"$REPO/deploy/nginx/render.sh" "$REPO/deploy/local/nginx-main.conf.template" \
  "TIRAGE_RUN_DIR=$RUN" "TIRAGE_NGINX_USER_LINE=$user_line" >"$RUN/nginx.conf"
# The access log would cost as much as the request itself; the bench measures the API.
sed -i 's|access_log /dev/stdout tirage_json;|access_log off;|' "$RUN/tirage.conf"
nginx -p "$RUN" -e "$RUN/logs/nginx.error.log" -c "$RUN/nginx.conf" >/dev/null 2>&1 &
PIDS+=("$!")

BASE="http://127.0.0.1:$PORT"
# Ready: each replica's own /readyz (nginx never proxies the probes), then a public route that
# needs no dependency through nginx.
ready_urls=()
for ((i = 1; i <= REPLICAS; i++)); do ready_urls+=("http://127.0.0.1:$((PORT + i))/readyz"); done
ready_urls+=("$BASE/openapi.json")
for url in "${ready_urls[@]}"; do
  for _ in $(seq 1 100); do
    [[ "$(curl -s -o /dev/null -w '%{http_code}' "$url")" == 200 ]] && break
    sleep 0.3
  done
  [[ "$(curl -s -o /dev/null -w '%{http_code}' "$url")" == 200 ]] ||
    die "$url is not 200: $(curl -s "$url"); logs in $RUN/logs"
done

token="$(curl -sf -X POST "$BASE/v1/sessions" | jq -r .token)"
auth=(-H "Authorization: Bearer $token")
batch="$(curl -sf -X POST "${auth[@]}" "$BASE/v1/batches" | jq -r .id)"

# 1. GET /v1/batches/{id} through nginx.
wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "${auth[@]}" "$BASE/v1/batches/$batch" \
  | tee "$OUT/wrk-get-batch.txt"
rps="$(awk '/^Requests\/sec/ {print $2}' "$OUT/wrk-get-batch.txt")"
p99="$(awk '$1 == "99%" {print $2}' "$OUT/wrk-get-batch.txt")"
non2xx="$(awk '/Non-2xx/ {print $NF}' "$OUT/wrk-get-batch.txt")"

# 2. Upload throughput: the same files through the API and straight to S3.
for ((i = 1; i <= FILES; i++)); do
  head -c "$((FILE_MB * 1024 * 1024))" /dev/urandom >"$RUN/files/f$i.jpg"
done
total_mb=$((FILES * FILE_MB))
now() { date +%s.%N; }

upload_batch="$(curl -sf -X POST "${auth[@]}" "$BASE/v1/batches" | jq -r .id)"
start="$(now)"
for ((i = 1; i <= FILES; i++)); do
  code="$(curl -s -o "$RUN/upload-$i.json" -w '%{http_code}' "${auth[@]}" \
    -F "file=@$RUN/files/f$i.jpg;type=image/jpeg" "$BASE/v1/batches/$upload_batch/photos")"
  [[ "$code" == 202 ]] || die "upload $i answered $code: $(cat "$RUN/upload-$i.json")"
done
api_secs="$(awk -v a="$(now)" -v b="$start" 'BEGIN { print a - b }')"

prefix="bench-$(date +%s)-$$"
start="$(now)"
for ((i = 1; i <= FILES; i++)); do
  code="$(curl -s -o /dev/null -w '%{http_code}' --aws-sigv4 "aws:amz:$S3_REGION:s3" \
    --user "$TIRAGE_TEST_S3_ACCESS_KEY:$TIRAGE_TEST_S3_SECRET_KEY" -H 'Content-Type: image/jpeg' \
    -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' \
    -T "$RUN/files/f$i.jpg" "$TIRAGE_TEST_S3_ENDPOINT/$TIRAGE_TEST_S3_BUCKET/$prefix/f$i.jpg")"
  [[ "$code" == 200 ]] || die "direct S3 PUT $i answered $code"
done
s3_secs="$(awk -v a="$(now)" -v b="$start" 'BEGIN { print a - b }')"
for ((i = 1; i <= FILES; i++)); do
  curl -s -o /dev/null -X DELETE --aws-sigv4 "aws:amz:$S3_REGION:s3" \
    --user "$TIRAGE_TEST_S3_ACCESS_KEY:$TIRAGE_TEST_S3_SECRET_KEY" -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' \
    "$TIRAGE_TEST_S3_ENDPOINT/$TIRAGE_TEST_S3_BUCKET/$prefix/f$i.jpg" || true
done
# The API's copies go with their batch.
curl -s -o /dev/null -X DELETE "${auth[@]}" "$BASE/v1/batches/$upload_batch"
curl -s -o /dev/null -X DELETE "${auth[@]}" "$BASE/v1/batches/$batch"

api_mbs="$(awk -v a="$total_mb" -v b="$api_secs" 'BEGIN { print a / b }')"
s3_mbs="$(awk -v a="$total_mb" -v b="$s3_secs" 'BEGIN { print a / b }')"
{
  echo "machine: $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ), api replicas: $REPLICAS"
  echo "GET /v1/batches/{id} via nginx: ${rps} req/s, p99 ${p99} (wrk -t$THREADS -c$CONNECTIONS -d$DURATION), non-2xx: ${non2xx:-0}"
  printf 'upload %d x %d MB, sequential: API multipart %.1f MB/s (%.2f s), direct S3 PUT %.1f MB/s (%.2f s), ratio %.2f\n' \
    "$FILES" "$FILE_MB" "$api_mbs" "$api_secs" "$s3_mbs" "$s3_secs" "$(awk -v a="$api_mbs" -v b="$s3_mbs" 'BEGIN { print a / b }')"
} | tee "$OUT/summary.txt"
