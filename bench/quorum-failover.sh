#!/usr/bin/env bash
# A RabbitMQ node dies mid-batch, with quorum queues (issue #15; docs/RELIABILITY.md, "A
# RabbitMQ node dies (quorum queues)"). A bench, not a CI test: starting and clustering three
# RabbitMQ nodes takes ~25 s and the whole run ~3.5 minutes on 2 cores, more than the suite
# gives one case.
#
#   bench/quorum-failover.sh [photos]          (default 240; at least 200)
#
# 1. starts a three-node RabbitMQ cluster (bench/rabbitmq-cluster.sh up: tirage-q1..q3,
#    AMQP ports 25681-25683);
# 2. starts the local Tirage cluster (deploy/local/cluster.sh: nginx, two API replicas, two
#    workers) on it with [amqp] queue_type = "quorum" and urls = the three nodes, on queues,
#    Redis keys and S3 objects of this run's own (its prefixes carry the run's time);
# 3. uploads the photos (the bench corpus, over and over) to one batch through nginx with
#    curl, four at a time, and closes the batch;
# 4. once STOP_AT % of the photos are done, stops the node leading the work queue (which is
#    also the node every process is connected to: they try the URLs in order);
# 5. waits for `completed` and checks total = done = photos, failed = 0, and that every
#    photo's renditions download; then starts the node again and checks it rejoins.
#
# Prints and writes to bench/out/quorum-failover/summary.md:
#   - close → completed, and when the node stopped;
#   - progress stalled: from the stop order until `done` grew again (the stop itself
#     included; the outcome of a job already running counts as progress);
#   - workers consuming again: from the stop order until the last worker logged "consuming";
#   - /readyz not 200: for how long the workers' or the API replicas' readiness was
#     seen failing, polled every ~0.3 s;
#   - which processes logged moving to another node, how many deliveries were in flight when
#     their connection died (their ack failed; the broker delivered them again), and where
#     the connections ended up.
#
# Environment:
#   TIRAGE_PORT (18680)                nginx; API replicas and workers use the ports after it
#   TIRAGE_RUN_DIR                     default /tmp/tirage-quorum-failover
#   TIRAGE_BUILD_PROFILE (debug), TIRAGE_SKIP_BUILD (1): the binaries deploy/local/cluster.sh
#                                      runs; they must know [amqp] urls and queue_type (the
#                                      run checks that the queues came out quorum). The
#                                      workers are the test binary tirage-worker-slowed
#                                      (tests/src/bin/), which this script builds itself
#                                      (`cargo build -p tirage-e2e --bin tirage-worker-slowed`)
#                                      unless TIRAGE_SKIP_BUILD=1
#   TIRAGE_QF_STOP_AT (30)             percentage of photos done when the node stops
#   TIRAGE_QF_NODE (leader)            which node stops: leader, or 1, 2, 3; none for the
#                                      same batch with no fault (the baseline)
#   TIRAGE_QF_HOW (stop)               stop (rabbitmqctl stop, a clean shutdown) or kill (SIGKILL)
#   TIRAGE_QF_JOB_DELAY_MS (200)       every resize of tirage-worker-slowed sleeps this long
#                                      first (its TIRAGE_TEST_JOB_DELAY_MS), so the batch lasts
#                                      past the stop
#   TIRAGE_QF_KEEP=1                   leave both clusters running at the end
# Needs: rabbitmq-server (Debian's), nginx, curl, jq, the machine's Redis and Garage
# (scripts/services.sh up), and the binaries in target/$TIRAGE_BUILD_PROFILE
# (tirage-api, tirage-worker, tirage-worker-slowed).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PHOTOS="${1:-240}"
((PHOTOS >= 200)) || { echo "quorum-failover: at least 200 photos" >&2; exit 2; }
export TIRAGE_PORT="${TIRAGE_PORT:-18680}"
export TIRAGE_RUN_DIR="${TIRAGE_RUN_DIR:-/tmp/tirage-quorum-failover}"
export TIRAGE_BUILD_PROFILE="${TIRAGE_BUILD_PROFILE:-debug}"
export TIRAGE_SKIP_BUILD="${TIRAGE_SKIP_BUILD:-1}"
BIN="${CARGO_TARGET_DIR:-$REPO/target}/$TIRAGE_BUILD_PROFILE"
STOP_AT="${TIRAGE_QF_STOP_AT:-30}"
WHICH="${TIRAGE_QF_NODE:-leader}"
case "${TIRAGE_QF_HOW:-stop}" in
  stop) HOW=stop VERB=stopping ;;
  kill) HOW=kill VERB=killing ;;
  *) echo "quorum-failover: TIRAGE_QF_HOW is stop or kill" >&2; exit 2 ;;
esac
BASE="http://127.0.0.1:$TIRAGE_PORT"
OUT="$REPO/bench/out/quorum-failover"
WORK="$TIRAGE_RUN_DIR/work"
RMQ="$REPO/bench/rabbitmq-cluster.sh"
CLUSTER="$REPO/deploy/local/cluster.sh"
COMPLETE_TIMEOUT=900

say() { echo "quorum-failover: $*"; }
die() { echo "quorum-failover: FAILED: $*" >&2; exit 1; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", a - b }'; }
code_of() { curl -s -o /dev/null -m 3 -w '%{http_code}' "$1" 2>/dev/null || true; }

for tool in curl jq nginx; do command -v "$tool" >/dev/null || die "$tool is not installed"; done
# The workers: the test binary whose every resize sleeps first (deploy/local/cluster.sh runs
# TIRAGE_WORKER_BIN in place of tirage-worker); the release worker has no delay to set.
export TIRAGE_WORKER_BIN="$BIN/tirage-worker-slowed"
export TIRAGE_TEST_JOB_DELAY_MS="${TIRAGE_QF_JOB_DELAY_MS:-200}"
if [[ "$TIRAGE_SKIP_BUILD" != 1 ]]; then
  release=(--release)
  [[ "$TIRAGE_BUILD_PROFILE" == release ]] || release=()
  say "building tirage-worker-slowed ($TIRAGE_BUILD_PROFILE)"
  (cd "$REPO" && cargo build "${release[@]}" -p tirage-e2e --bin tirage-worker-slowed)
fi
[[ -x "$TIRAGE_WORKER_BIN" ]] ||
  die "no $TIRAGE_WORKER_BIN: cargo build -p tirage-e2e --bin tirage-worker-slowed (or TIRAGE_SKIP_BUILD=0)"
mkdir -p "$OUT" "$WORK"
rm -f "$WORK"/upload-*.json
mapfile -t CORPUS < <(find "$REPO/bench/corpus" -maxdepth 1 -name '*.jpg' | sort)
((${#CORPUS[@]})) || die "bench/corpus is empty: run bench/build-corpus.sh"

cleanup() {
  local status=$?
  if [[ "${TIRAGE_QF_KEEP:-0}" == 1 ]]; then
    say "left running (TIRAGE_QF_KEEP=1): $CLUSTER down; $RMQ down"
  else
    "$CLUSTER" down >/dev/null 2>&1 || true
    "$RMQ" down >/dev/null 2>&1 || true
  fi
  exit "$status"
}
trap cleanup EXIT

# 1. The broker cluster.
started=$SECONDS
"$RMQ" up
urls="$("$RMQ" urls)"
stamp="qf$(date +%s)"

# 2. Tirage on it. The run's own prefixes keep its queues, keys and objects apart from
# anything else on the machine's Redis and Garage; expire_after_days = 0 leaves the shared
# bucket's lifecycle alone.
export TIRAGE__AMQP__URL="${urls%%,*}"
export TIRAGE__AMQP__URLS="$urls"
export TIRAGE__AMQP__QUEUE_TYPE=quorum
export TIRAGE__AMQP__QUEUE_PREFIX="tirage-$stamp"
export TIRAGE__REDIS__KEY_PREFIX="tirage-$stamp:"
export TIRAGE__S3__KEY_PREFIX="$stamp/"
export TIRAGE__S3__EXPIRE_AFTER_DAYS=0
"$CLUSTER" down >/dev/null 2>&1 || true
# cluster.sh appends to its logs: start them empty, the figures below are read from them.
rm -rf "$TIRAGE_RUN_DIR/logs"
"$CLUSTER" up
work_queue="$TIRAGE__AMQP__QUEUE_PREFIX.resize"
# Binaries older than [amqp] queue_type ignore it and declare classic queues.
queue_type="$("$RMQ" ctl 1 list_queues name type | awk -v q="$work_queue" '$1 == q { print $2 }')"
[[ "$queue_type" == quorum ]] ||
  die "$work_queue is '${queue_type:-missing}', not quorum: rebuild the binaries (TIRAGE_SKIP_BUILD=0)"
say "services up in $((SECONDS - started)) s; queues $TIRAGE__AMQP__QUEUE_PREFIX.* ($TIRAGE__AMQP__QUEUE_TYPE)"

# 3. One batch of PHOTOS photos.
token="$(curl -sf -X POST "$BASE/v1/sessions" | jq -r .token)"
[[ -n "$token" && "$token" != null ]] || die "no session"
auth=(-H "Authorization: Bearer $token")
batch="$(curl -sf -X POST "${auth[@]}" "$BASE/v1/batches" | jq -r .id)"
[[ -n "$batch" && "$batch" != null ]] || die "no batch"

upload() { # upload <i>: one photo, retried (same Idempotency-Key) on 429, 5xx or no answer
  local i="$1" file code attempt
  file="${CORPUS[$((i % ${#CORPUS[@]}))]}"
  for attempt in 1 2 3 4 5 6; do
    code="$(curl -s -o "$WORK/upload-$i.json" -w '%{http_code}' -m 60 "${auth[@]}" \
      -H "Idempotency-Key: $stamp-$i" -F "file=@$file;type=image/jpeg" \
      "$BASE/v1/batches/$batch/photos" || true)"
    [[ "$code" == 202 ]] && return 0
    sleep "$attempt"
  done
  echo "upload $i answered $code: $(cat "$WORK/upload-$i.json" 2>/dev/null)" >&2
  return 1
}
export -f upload
export CORPUS_LIST="${CORPUS[*]}" WORK BASE batch stamp token
upload_started="$(now)"
# xargs runs each upload in a fresh bash: it rebuilds what `upload` needs from the exports.
seq 0 $((PHOTOS - 1)) | xargs -P 4 -I{} bash -c '
  read -r -a CORPUS <<<"$CORPUS_LIST"; auth=(-H "Authorization: Bearer $token"); upload {}' ||
  die "uploads failed"
say "uploaded $PHOTOS photos in $(secs "$(now)" "$upload_started") s"
closed="$(curl -sf -X POST "${auth[@]}" "$BASE/v1/batches/$batch/close")" || die "close failed"
t_close="$(now)"
total="$(jq -r .total <<<"$closed")"
[[ "$total" == "$PHOTOS" ]] || die "the batch counts $total photos, $PHOTOS were accepted"

batch_json() { curl -s -m 5 "${auth[@]}" "$BASE/v1/batches/$batch"; }

# The node to stop: the work queue's leader, as the cluster reports it.
leader_of() {
  local n
  for n in 1 2 3; do
    "$RMQ" ctl "$n" list_queues name leader 2>/dev/null | awk -v q="$1" '$1 == q { print $2 }' && return 0
  done
}
leader_before="$(leader_of "$work_queue")"
if [[ "$WHICH" == leader ]]; then
  node="${leader_before#tirage-q}"; node="${node%%@*}"
else
  node="$WHICH"
fi
[[ "$node" =~ ^[123]$ || "$node" == none ]] ||
  die "cannot tell which node to stop (leader '$leader_before')"

# 4 and 5. Poll; stop the node at STOP_AT %; watch progress and the workers' readiness.
# Readiness as the workers and the API replicas report it (each its own port: nginx never
# proxies the probes; the local cluster's replicas are on the ports after nginx's).
probes=()
for ((i = 0; i < ${TIRAGE_API_REPLICAS:-2}; i++)); do probes+=("http://127.0.0.1:$((TIRAGE_PORT + 1 + i))/readyz"); done
for ((i = 0; i < ${TIRAGE_WORKERS:-2}; i++)); do probes+=("http://127.0.0.1:$((TIRAGE_PORT + 101 + i))/readyz"); done
stop_threshold=$(((PHOTOS * STOP_AT + 99) / 100))
t_stop="" done_at_stop="" t_moved="" unready_first="" unready_last="" state="" done=0 failed=0
unready_polls=0
while :; do
  json="$(batch_json)"
  state="$(jq -r .state <<<"$json" 2>/dev/null || echo "?")"
  done_now="$(jq -r .done <<<"$json" 2>/dev/null || echo "$done")"
  [[ "$done_now" =~ ^[0-9]+$ ]] && done="$done_now"
  failed="$(jq -r .failed <<<"$json" 2>/dev/null || echo "?")"
  t="$(now)"
  if [[ -z "$t_stop" && "$done" -ge "$stop_threshold" && "$node" == none ]]; then
    done_at_stop="$done"; t_stop="$(now)"; t_moved="$t_stop"
    say "$done/$PHOTOS done: no fault (baseline)"
  elif [[ -z "$t_stop" && "$done" -ge "$stop_threshold" ]]; then
    say "$done/$PHOTOS done: $VERB node $node ($leader_before leads $work_queue)"
    done_at_stop="$done"
    t_stop="$(now)"
    if [[ "$HOW" == kill ]]; then "$RMQ" kill-node "$node"; else "$RMQ" stop-node "$node"; fi
    say "node $node down $(secs "$(now)" "$t_stop") s after the order"
  elif [[ -n "$t_stop" && -z "$t_moved" && "$done" -gt "$done_at_stop" ]]; then
    t_moved="$t"
    say "progress again $(secs "$t_moved" "$t_stop") s after the stop ($done done)"
  fi
  if [[ -n "$t_stop" ]]; then
    for probe in "${probes[@]}"; do
      if [[ "$(code_of "$probe")" != 200 ]]; then
        unready_first="${unready_first:-$t}"; unready_last="$t"; unready_polls=$((unready_polls + 1))
      fi
    done
  fi
  [[ "$state" == completed ]] && break
  (($(secs "$t" "$t_close" | cut -d. -f1) < COMPLETE_TIMEOUT)) ||
    die "not completed $COMPLETE_TIMEOUT s after close: $json"
  sleep 0.2
done
t_done="$(now)"
say "completed $(secs "$t_done" "$t_close") s after close: $(jq -c '{state,total,done,failed}' <<<"$json")"
[[ -n "$t_stop" ]] || die "the batch completed before $STOP_AT % could be reached with the node up"
done_final="$(jq -r .done <<<"$json")"
failed_final="$(jq -r .failed <<<"$json")"
[[ "$(jq -r .total <<<"$json")" == "$PHOTOS" && "$done_final" == "$PHOTOS" && "$failed_final" == 0 ]] ||
  die "expected total = done = $PHOTOS and failed = 0: $json"

# Every photo's renditions download (each rendition URL, following the API's redirect).
renditions=0
sizes="$(jq -r '.sizes | join(" ")' <<<"$json")"
for f in "$WORK"/upload-*.json; do
  photo="$(jq -r '.photos[0].id' "$f")"
  for size in $sizes; do
    code="$(curl -s -L -o /dev/null -m 30 -w '%{http_code}' "${auth[@]}" \
      "$BASE/v1/batches/$batch/photos/$photo/$size")"
    [[ "$code" == 200 ]] || die "rendition $size of photo $photo answered $code"
    renditions=$((renditions + 1))
  done
done
say "$renditions renditions downloaded"
# The run's objects go with its batch (the shared bucket keeps nothing of it).
code="$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "${auth[@]}" "$BASE/v1/batches/$batch")"
[[ "$code" == 204 ]] || say "deleting the batch answered $code; its objects stay under $stamp/"

# Where the processes are connected now (list_connections is cluster-wide), the processes
# that logged moving to another node, and the deliveries in flight at the stop (their ack
# failed with the connection; the broker delivered them again).
leader_after="$(leader_of "$work_queue")"
for n in 1 2 3; do
  [[ "$n" == "$node" ]] && continue
  # The port a connection came in on names its node (25681 is tirage-q1, ...).
  connections="$("$RMQ" ctl "$n" list_connections --no-table-headers port 2>/dev/null | sort | uniq -c |
    awk '{ printf "%s on port %s; ", $1, $2 }')" && break
done
moved="$(grep -l 'AMQP connected to another node' "$TIRAGE_RUN_DIR"/logs/api-*.log \
  "$TIRAGE_RUN_DIR"/logs/worker-*.log 2>/dev/null | xargs -r -n1 basename | sed 's/\.log$//' |
  paste -sd, - || true)"
unsettled="$(cat "$TIRAGE_RUN_DIR"/logs/worker-*.log | grep -c 'could not settle the delivery' || true)"
# From the stop order until the last worker consumed again (its first "consuming" after it).
consuming_again=0
if [[ "$node" != none ]]; then
  for f in "$TIRAGE_RUN_DIR"/logs/worker-*.log; do
    back=""
    while read -r ts; do
      at="$(date -d "$ts" +%s.%N)"
      if awk -v a="$at" -v b="$t_stop" 'BEGIN { exit !(a > b) }'; then back="$at"; break; fi
    done < <(jq -r 'select(.fields.message? == "consuming") | .timestamp' "$f" 2>/dev/null)
    [[ -n "$back" ]] || die "$(basename "$f" .log) never consumed again after the stop"
    consuming_again="$(awk -v a="$(secs "$back" "$t_stop")" -v b="$consuming_again" 'BEGIN { print (a > b) ? a : b }')"
  done
fi

[[ "$node" == none ]] || "$RMQ" start-node "$node"
members="$("$RMQ" ctl 1 list_queues name members 2>/dev/null | awk -v q="$work_queue" '$1 == q' | cut -f2)"
running="$("$RMQ" status | jq -c '.running_nodes | length')"
[[ "$running" == 3 ]] || die "node $node did not rejoin: $running running nodes"

stall="$([[ -n "$t_moved" ]] && secs "$t_moved" "$t_stop" || echo "n/a")"
unready="$([[ -n "$unready_first" ]] && secs "$unready_last" "$unready_first" || echo 0) s ($unready_polls answers)"
{
  echo "# $(date -u +%FT%TZ) $(uname -srm), $(nproc) cores; commit $(git -C "$REPO" rev-parse --short HEAD)"
  echo "# TIRAGE_QF_HOW=$HOW TIRAGE_QF_NODE=$WHICH TIRAGE_QF_STOP_AT=$STOP_AT bench/quorum-failover.sh $PHOTOS" \
    "($TIRAGE_BUILD_PROFILE binaries; tirage-worker-slowed, job delay $TIRAGE_TEST_JOB_DELAY_MS ms)"
  echo
  echo "| photos | node stopped | at | done | failed | close → completed | progress stalled | workers consuming again | /readyz not 200 | moved to another node | acks lost, redelivered | renditions checked |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
  echo "| $PHOTOS | $([[ "$node" == none ]] && echo "none (baseline)" || echo "tirage-q$node ($HOW); the work queue's leader was $leader_before") |" \
    "$done_at_stop done, $(secs "$t_stop" "$t_close") s after close | $done_final | $failed_final |" \
    "$(secs "$t_done" "$t_close") s | $stall s | $consuming_again s | $unready | ${moved:-none} | $unsettled | $renditions |"
  echo
  echo "- work queue leader after the stop: $leader_after; members after the restart: $members"
  echo "- connections after the batch: $connections"
  echo "- uploads took $(secs "$t_close" "$upload_started") s (close included); whole run $((SECONDS - started)) s"
} | tee "$OUT/summary.md"
