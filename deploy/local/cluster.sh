#!/usr/bin/env bash
# The Tirage cluster on one machine, without Docker: nginx in front of several stateless
# `tirage-api` replicas, several `tirage-worker` processes, and Redis, RabbitMQ and Garage (S3).
#
#   deploy/local/cluster.sh up      start what is missing, build, start the cluster; returns
#                                   once every replica's and worker's /readyz answers 200 and
#                                   nginx proxies a public route (it never proxies the probes)
#   deploy/local/cluster.sh down    stop exactly what `up` started (by pid), nothing else
#   deploy/local/cluster.sh status  say what runs (exit 1 when no cluster process runs)
#   deploy/local/cluster.sh admin …  `tirage-worker admin …` against the cluster's services:
#                                   batch ID | dead-letters [--batch ID] [--limit N]
#                                   [--replay] | reconcile | drain PID (docs/DEPLOY.md)
#
# Environment (all optional):
#   TIRAGE_PORT=8080            nginx's port; the API replicas and workers use ports after it
#   TIRAGE_API_REPLICAS=2       API processes (ports TIRAGE_API_BASE_PORT, +1, ...)
#   TIRAGE_WORKERS=2            worker processes (HTTP ports TIRAGE_WORKER_BASE_PORT, +1, ...)
#   TIRAGE_API_BASE_PORT        default TIRAGE_PORT+1
#   TIRAGE_WORKER_BASE_PORT     default TIRAGE_PORT+101
#   TIRAGE_RUN_DIR              run folder (pid files, rendered nginx config, logs/);
#                               default ${TMPDIR:-/tmp}/tirage-cluster-$TIRAGE_PORT
#   TIRAGE_SKIP_BUILD=1         use the binaries already built
#   TIRAGE_WORKER_BIN           the worker binary to run, default $BIN/tirage-worker (the
#                               profile's); it is never built here. The end-to-end tests name
#                               their test binary tirage-worker-slowed (tests/src/bin/; every
#                               resize first sleeps TIRAGE_TEST_JOB_DELAY_MS, which they pass)
#   TIRAGE_BUILD_PROFILE=release  or debug: which cargo profile to build and run
#   TIRAGE_UP_TIMEOUT=90        seconds `up` waits for the replicas, workers and nginx
#   TIRAGE__SECTION__KEY        any application setting; passed through to every process
#   TIRAGE_SUPERVISE=1          restart every API replica and worker that exits, as Kubernetes
#                               restarts a container: each runs under a small supervisor
#                               (pid file supervise-NAME.pid) that starts it again
#                               TIRAGE_RESTART_DELAY seconds (default 1; Kubernetes backs off
#                               from 10 s) after it exits, however it exits, until `down`.
#                               NAME.pid always names the current process, so `kill -9` of it
#                               is a crash the cluster recovers from.
#   TIRAGE_WORKER_DATA_LIMIT_MB  run each worker under this RLIMIT_DATA (heap and private
#                               anonymous mappings, in MiB; prlimit): a worker that needs more
#                               dies, as one over its memory limit would in Kubernetes.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PORT="${TIRAGE_PORT:-8080}"
API_REPLICAS="${TIRAGE_API_REPLICAS:-2}"
WORKERS="${TIRAGE_WORKERS:-2}"
API_BASE_PORT="${TIRAGE_API_BASE_PORT:-$((PORT + 1))}"
WORKER_BASE_PORT="${TIRAGE_WORKER_BASE_PORT:-$((PORT + 101))}"
RUN="${TIRAGE_RUN_DIR:-${TMPDIR:-/tmp}/tirage-cluster-$PORT}"
LOGS="$RUN/logs"
PROFILE="${TIRAGE_BUILD_PROFILE:-release}"
[[ "$PROFILE" == release || "$PROFILE" == debug ]] || { echo "cluster: TIRAGE_BUILD_PROFILE is release or debug" >&2; exit 2; }
BIN="${CARGO_TARGET_DIR:-$REPO/target}/$PROFILE"
WORKER_BIN="${TIRAGE_WORKER_BIN:-$BIN/tirage-worker}"
UP_TIMEOUT="${TIRAGE_UP_TIMEOUT:-90}"
# How long `down` lets a process drain after SIGTERM before SIGKILL. The worker finishes its
# in-flight jobs within [worker] shutdown_grace_ms (30 s by default), so it gets more.
API_STOP_GRACE="${TIRAGE_API_STOP_GRACE:-30}"
WORKER_STOP_GRACE="${TIRAGE_WORKER_STOP_GRACE:-40}"

say() { echo "cluster: $*"; }
die() { echo "cluster: $*" >&2; exit 1; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# pid of the process listening on a TCP port, if any (one line; empty when none).
pid_on_port() {
  ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n1 | cut -d= -f2 || true
}

# A zombie (exited, not yet reaped by whoever adopted it) counts as dead.
alive() {
  [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null || return 1
  local state
  state="$(sed -E 's/^.*\) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)"
  [[ -n "$state" && "$state" != Z ]]
}

# A pid file holds "PID NAME"; the process counts as ours only while its command name still
# starts with NAME, so a recycled pid is never signalled.
ours() { # ours <pidfile> -> prints pid when it is alive and ours
  local pid name comm
  [[ -f "$1" ]] || return 1
  read -r pid name <"$1" || return 1
  alive "$pid" || return 1
  comm="$(cat "/proc/$pid/comm" 2>/dev/null || true)"
  [[ "$comm" == "${name:0:15}"* ]] || return 1
  echo "$pid"
}

record() { # record <pidfile> <pid> <name>
  echo "$2 $3" >"$1"
}

http_code() { curl -s -o /dev/null -m 3 -w '%{http_code}' "$1" 2>/dev/null || true; }

# What each probe answers: the replicas' and workers' own /readyz, nginx's own health and a
# public route through it.
probes() {
  local i p
  for ((i = 0; i < API_REPLICAS; i++)); do
    p=$((API_BASE_PORT + i))
    [[ -e "$RUN/api-$((i + 1)).pid" ]] && echo "api-$((i + 1)) :$p /readyz: $(http_code "http://127.0.0.1:$p/readyz")"
  done
  for ((i = 0; i < WORKERS; i++)); do
    p=$((WORKER_BASE_PORT + i))
    [[ -e "$RUN/worker-$((i + 1)).pid" ]] && echo "worker-$((i + 1)) :$p /readyz: $(http_code "http://127.0.0.1:$p/readyz")"
  done
  echo "nginx :$PORT /nginx-health: $(http_code "http://127.0.0.1:$PORT/nginx-health")"
  echo "nginx :$PORT /openapi.json: $(http_code "http://127.0.0.1:$PORT/openapi.json")"
}

# Ready: every probe above answers 200. nginx never proxies the replicas' probes: the public
# /openapi.json, which needs no dependency, shows it reaches a replica.
ready() {
  local out
  out="$(probes)"
  [[ -n "$out" ]] && ! grep -qv ': 200$' <<<"$out"
}

# ---------------------------------------------------------------------------------------------
# up

start_services() {
  # Note which services answer before, so that `down` stops only what this run started.
  local redis_before rabbit_before garage_before
  redis_before="$(pid_on_port 6379)"
  rabbit_before="$(pid_on_port 5672)"
  garage_before="$(pgrep -x garage || true)"
  port_open 6379 && redis_before="${redis_before:-running}"
  port_open 5672 && rabbit_before="${rabbit_before:-running}"

  "$REPO/scripts/services.sh" up

  local pid
  if [[ -z "$redis_before" ]] && pid="$(pid_on_port 6379)" && [[ -n "$pid" ]]; then
    record "$RUN/service-redis.pid" "$pid" "$(cat "/proc/$pid/comm")"
    say "started Redis (pid $pid)"
  fi
  if [[ -z "$rabbit_before" ]] && pid="$(pid_on_port 5672)" && [[ -n "$pid" ]]; then
    record "$RUN/service-rabbitmq.pid" "$pid" "$(cat "/proc/$pid/comm")"
    say "started RabbitMQ (pid $pid)"
  fi
  for pid in $(pgrep -x garage || true); do
    if ! grep -qx "$pid" <<<"$garage_before"; then
      record "$RUN/service-garage.pid" "$pid" garage
      say "started Garage (pid $pid)"
    fi
  done
  # scripts/services.sh starts Redis bounded (maxmemory, noeviction); one that ran before may
  # not be: say so rather than change a service this run did not start.
  local maxmemory policy
  if command -v redis-cli >/dev/null; then
    maxmemory="$(redis-cli -p 6379 config get maxmemory 2>/dev/null | sed -n 2p || true)"
    policy="$(redis-cli -p 6379 config get maxmemory-policy 2>/dev/null | sed -n 2p || true)"
    if [[ "$maxmemory" == 0 || ( -n "$policy" && "$policy" != noeviction ) ]]; then
      say "warning: Redis on 127.0.0.1:6379 has maxmemory ${maxmemory:-?}, policy ${policy:-?};" \
        "every deploy bounds it with noeviction (docs/DEPLOY.md, \"Redis memory\"):" \
        "redis-cli config set maxmemory 1gb; redis-cli config set maxmemory-policy noeviction"
    fi
  fi
}

# Connection settings of the services, as the applications' TIRAGE__SECTION__KEY variables.
# Values the caller already exported win.
service_env() {
  local garage_env
  garage_env="$("$REPO/scripts/garage.sh" env)" || die "scripts/garage.sh env failed"
  # garage.sh exports TIRAGE__S3__* too; S3 settings the caller exported win over them.
  local callers
  callers="$(export -p | grep -E '^declare -x TIRAGE__S3__' | sed 's/^declare -x /export /' || true)"
  eval "$garage_env"
  eval "$callers"
  : "${TIRAGE_TEST_S3_ENDPOINT:?scripts/garage.sh env did not set TIRAGE_TEST_S3_ENDPOINT}"
  export TIRAGE__REDIS__URL="${TIRAGE__REDIS__URL:-${TIRAGE_TEST_REDIS_URL:-redis://127.0.0.1:6379}}"
  export TIRAGE__AMQP__URL="${TIRAGE__AMQP__URL:-${TIRAGE_TEST_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}}"
  export TIRAGE__S3__ENDPOINT="${TIRAGE__S3__ENDPOINT:-$TIRAGE_TEST_S3_ENDPOINT}"
  export TIRAGE__S3__ACCESS_KEY_ID="${TIRAGE__S3__ACCESS_KEY_ID:-$TIRAGE_TEST_S3_ACCESS_KEY}"
  export TIRAGE__S3__SECRET_ACCESS_KEY="${TIRAGE__S3__SECRET_ACCESS_KEY:-$TIRAGE_TEST_S3_SECRET_KEY}"
  export TIRAGE__S3__BUCKET="${TIRAGE__S3__BUCKET:-$TIRAGE_TEST_S3_BUCKET}"
  export TIRAGE__S3__REGION="${TIRAGE__S3__REGION:-${TIRAGE_TEST_S3_REGION:-garage}}"
  # The callback signing key: the caller's, or one made for this run and kept in the run
  # folder (mode 600) so that a restarted worker signs with the same key.
  if [[ -z "${TIRAGE__WORKER__CALLBACK_SECRET:-}" ]]; then
    if [[ ! -s "$RUN/callback_secret" ]]; then
      (umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$RUN/callback_secret")
    fi
    TIRAGE__WORKER__CALLBACK_SECRET="$(cat "$RUN/callback_secret")"
    export TIRAGE__WORKER__CALLBACK_SECRET
  fi
}

start_process() { # start_process <name> <binary> <logfile> [VAR=value...]
  local name="$1" bin="$2" log="$3"
  shift 3
  local -a run=("$bin")
  if [[ "$name" == worker-* && -n "${TIRAGE_WORKER_DATA_LIMIT_MB:-}" ]]; then
    # prlimit sets the limit and execs the worker: the pid and its name stay the worker's.
    run=(prlimit "--data=$((TIRAGE_WORKER_DATA_LIMIT_MB * 1024 * 1024))" "$bin")
  fi
  if [[ "${TIRAGE_SUPERVISE:-0}" == 1 ]]; then
    rm -f "$RUN/$name.pid"
    # The supervisor only appends to the log it is given (its child's output), never reads it.
    # shellcheck disable=SC2094
    env "$@" setsid "$REPO/deploy/local/cluster.sh" supervise-run "$name" "$(basename "$bin")" \
      "$log" "${run[@]}" </dev/null >>"$log" 2>&1 &
    record "$RUN/supervise-$name.pid" "$!" "$(supervisor_comm "$name")"
    # The supervisor writes NAME.pid once it has started the process.
    local deadline=$((SECONDS + 10))
    until [[ -s "$RUN/$name.pid" ]]; do
      ((SECONDS < deadline)) || die "the supervisor of $name did not start it"
      sleep 0.05
    done
    return 0
  fi
  # setsid: the process outlives this script and ignores signals sent to the caller's group.
  env "$@" setsid "${run[@]}" >>"$log" 2>&1 </dev/null &
  record "$RUN/$name.pid" "$!" "$(basename "$bin")"
}

# The supervisor of TIRAGE_SUPERVISE=1 (runs as `cluster.sh supervise-run`, started by
# start_process): runs the command, and again whenever it exits, until SIGTERM, which it
# passes on to the process before it waits for it and exits.
supervisor_comm() { printf 'sv-%.12s' "$1"; }

supervise_run() { # supervise_run <name> <process name> <logfile> <command...>
  local name="$1" comm="$2" log="$3" child="" stopping=0 rc restarts=0
  shift 3
  # A name of its own (the kernel's 15-character comm), so that `ours` knows it from any
  # other bash: the pid file names it.
  supervisor_comm "$name" >"/proc/$$/comm"
  trap 'stopping=1; [[ -n "$child" ]] && kill -TERM "$child" 2>/dev/null' TERM INT
  while ((!stopping)); do
    "$@" >>"$log" 2>&1 </dev/null &
    child=$!
    record "$RUN/$name.pid" "$child" "$comm"
    rc=0
    wait "$child" || rc=$?
    # `wait` returns early when a signal runs the trap: wait for the process itself.
    while alive "$child"; do wait "$child" || rc=$?; done
    ((stopping)) && break
    restarts=$((restarts + 1))
    echo "cluster: $name exited (status $rc); restart $restarts in ${TIRAGE_RESTART_DELAY:-1} s" >>"$log"
    sleep "${TIRAGE_RESTART_DELAY:-1}" &
    wait $! || true
  done
  rm -f "$RUN/$name.pid"
}

wait_port() { # wait_port <port> <pidfile> <what> <seconds>
  local deadline=$((SECONDS + $4)) log
  log="$LOGS/$(basename "$2" .pid).log"
  while ((SECONDS < deadline)); do
    port_open "$1" && return 0
    if ! ours "$2" >/dev/null; then
      tail -n 20 "$log" >&2 || true
      die "$3 exited during start-up; see $log"
    fi
    sleep 0.1
  done
  tail -n 20 "$log" >&2 || true
  die "$3 does not listen on 127.0.0.1:$1 after $4 s; see $log"
}

up_failed() {
  (($1)) || return 0
  echo "cluster: up failed; stopping what it started (logs stay in $LOGS)" >&2
  down >&2 || true
}

up() {
  mkdir -p "$RUN" "$LOGS" "$RUN/nginx-tmp"
  local f running=0
  for f in "$RUN"/api-*.pid "$RUN"/worker-*.pid "$RUN"/supervise-*.pid "$RUN"/nginx.pid.run; do
    [[ -e "$f" ]] && ours "$f" >/dev/null && running=1
  done
  if ((running)); then
    if ready; then
      say "already up from $RUN"
      status
      return 0
    fi
    die "a partial cluster runs from $RUN; run '$0 down' first"
  fi
  command -v nginx >/dev/null || die "nginx is not installed (scripts/install-deps.sh installs it)"
  command -v curl >/dev/null || die "curl is not installed"

  local i p
  for ((i = 0; i < API_REPLICAS; i++)); do
    p=$((API_BASE_PORT + i)); port_open "$p" && die "port $p (API replica $((i + 1))) is taken"
  done
  for ((i = 0; i < WORKERS; i++)); do
    p=$((WORKER_BASE_PORT + i)); port_open "$p" && die "port $p (worker $((i + 1))) is taken"
  done
  port_open "$PORT" && die "port $PORT (nginx) is taken"

  # From here on a failure stops what was started, so that a failed `up` leaves nothing behind.
  trap 'up_failed $?' EXIT

  start_services

  if [[ "${TIRAGE_SKIP_BUILD:-0}" != 1 ]]; then
    local release=(--release)
    [[ "$PROFILE" == release ]] || release=()
    say "building the $PROFILE binaries"
    # The worker binary needs its `services` feature (the production adapters).
    (cd "$REPO" && cargo build "${release[@]}" --bin tirage-api --bin tirage-worker \
      --features tirage-worker/services)
  fi
  [[ -x "$BIN/tirage-api" && -x "$WORKER_BIN" ]] ||
    die "missing $BIN/tirage-api or $WORKER_BIN"

  service_env
  cd "$REPO" # the applications read config/default.toml relative to the working directory

  for ((i = 1; i <= API_REPLICAS; i++)); do
    p=$((API_BASE_PORT + i - 1))
    # nginx runs on this host: its X-Real-IP names the client, as the default
    # rate_limit.trusted_proxies (loopback) trusts it to.
    start_process "api-$i" "$BIN/tirage-api" "$LOGS/api-$i.log" \
      TIRAGE__API__HOST=127.0.0.1 TIRAGE__API__PORT="$p"
  done
  for ((i = 1; i <= WORKERS; i++)); do
    p=$((WORKER_BASE_PORT + i - 1))
    start_process "worker-$i" "$WORKER_BIN" "$LOGS/worker-$i.log" \
      TIRAGE__WORKER__HOST=127.0.0.1 TIRAGE__WORKER__PORT="$p"
  done
  for ((i = 1; i <= API_REPLICAS; i++)); do
    wait_port $((API_BASE_PORT + i - 1)) "$RUN/api-$i.pid" "API replica $i" 30
  done
  for ((i = 1; i <= WORKERS; i++)); do
    wait_port $((WORKER_BASE_PORT + i - 1)) "$RUN/worker-$i.pid" "worker $i" 30
  done

  # nginx, from the shared template: the only local part is the list of replicas.
  local servers=""
  for ((i = 0; i < API_REPLICAS; i++)); do
    servers+="server 127.0.0.1:$((API_BASE_PORT + i)) max_fails=3 fail_timeout=5s; "
  done
  local user_line=""
  if ((EUID == 0)); then
    # nginx's workers drop to nobody: they must be able to write their temporary files.
    user_line="user nobody nogroup;"
    chown -R nobody:nogroup "$RUN/nginx-tmp"
  fi
  "$REPO/deploy/nginx/render.sh" "$REPO/deploy/nginx/tirage.conf.template" \
    "TIRAGE_API_SERVERS=$servers" "TIRAGE_NGINX_LISTEN=127.0.0.1:$PORT" >"$RUN/tirage.conf"
  "$REPO/deploy/nginx/render.sh" "$REPO/deploy/local/nginx-main.conf.template" \
    "TIRAGE_RUN_DIR=$RUN" "TIRAGE_NGINX_USER_LINE=$user_line" >"$RUN/nginx.conf"
  nginx -q -t -p "$RUN" -e "$LOGS/nginx.error.log" -c "$RUN/nginx.conf" ||
    die "nginx refuses $RUN/nginx.conf"
  # `daemon off` in nginx.conf: $! is the master, and the access log (stdout) goes to a file.
  # (-e is where nginx writes; stderr only catches what it prints before reading it.)
  # shellcheck disable=SC2094
  setsid nginx -p "$RUN" -e "$LOGS/nginx.error.log" -c "$RUN/nginx.conf" \
    >>"$LOGS/nginx.access.log" 2>>"$LOGS/nginx.error.log" </dev/null &
  record "$RUN/nginx.pid.run" "$!" nginx

  say "waiting for every replica's and worker's /readyz, and for nginx to proxy"
  local deadline=$((SECONDS + UP_TIMEOUT)) f
  until ready; do
    ((SECONDS < deadline)) || die "not ready after $UP_TIMEOUT s ($(probes | paste -sd ',' -)); see $LOGS"
    for f in "$RUN"/worker-*.pid; do
      ours "$f" >/dev/null || die "$(basename "$f" .pid) exited; see $LOGS/$(basename "$f" .pid).log"
    done
    ours "$RUN/nginx.pid.run" >/dev/null || die "nginx exited; see $LOGS/nginx.error.log"
    sleep 0.2
  done
  trap - EXIT

  say "up: http://127.0.0.1:$PORT ($API_REPLICAS API replicas from port $API_BASE_PORT," \
    "$WORKERS workers with HTTP ports from $WORKER_BASE_PORT)"
  say "run folder: $RUN"
  say "logs: $LOGS"
}

# ---------------------------------------------------------------------------------------------
# down

stop_pidfiles() { # stop_pidfiles <grace seconds> <pidfile>...: SIGTERM all, wait, SIGKILL
  local grace="$1" f pid
  shift
  local -a pids=()
  for f in "$@"; do
    [[ -e "$f" ]] || continue
    if pid="$(ours "$f")"; then
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid")
      say "stopping $(basename "${f%.run}" .pid) (pid $pid)"
    fi
  done
  local deadline=$((SECONDS + grace)) left
  while :; do
    left=0
    for pid in "${pids[@]}"; do alive "$pid" && left=1; done
    ((left)) || break
    if ((SECONDS >= deadline)); then
      for pid in "${pids[@]}"; do
        alive "$pid" && { say "pid $pid still runs after $grace s: SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; }
      done
      break
    fi
    sleep 0.2
  done
  for f in "$@"; do [[ -e "$f" ]] && rm -f "$f"; done
  return 0
}

down() {
  [[ -d "$RUN" ]] || { say "nothing runs from $RUN"; return 0; }
  shopt -s nullglob
  # Front to back: stop taking requests, let the replicas finish theirs, let the workers finish
  # their jobs (they need the services), then the services this cluster started, if any.
  stop_pidfiles 10 "$RUN/nginx.pid.run"
  # A supervisor passes SIGTERM on to its process and exits once the process has; the
  # process's own pid file then catches one whose supervisor is gone.
  stop_pidfiles "$API_STOP_GRACE" "$RUN"/supervise-api-*.pid
  stop_pidfiles "$API_STOP_GRACE" "$RUN"/api-*.pid
  stop_pidfiles "$WORKER_STOP_GRACE" "$RUN"/supervise-worker-*.pid
  stop_pidfiles "$WORKER_STOP_GRACE" "$RUN"/worker-*.pid
  stop_pidfiles 60 "$RUN"/service-*.pid
  shopt -u nullglob
  say "down (logs kept in $LOGS)"
}

# ---------------------------------------------------------------------------------------------
# status

status() {
  shopt -s nullglob
  local f pid name n=0
  for f in "$RUN"/nginx.pid.run "$RUN"/api-*.pid "$RUN"/worker-*.pid "$RUN"/supervise-*.pid \
    "$RUN"/service-*.pid; do
    [[ -e "$f" ]] || continue
    name="$(basename "$f")"; name="${name%.pid.run}"; name="${name%.pid}"
    if pid="$(ours "$f")"; then
      echo "$name: running (pid $pid)"; n=$((n + 1))
    else
      echo "$name: NOT running (pid file $f)"
    fi
  done
  shopt -u nullglob
  ((n)) || echo "no cluster process runs from $RUN"
  probes
  "$REPO/scripts/services.sh" status || true
  echo "run folder: $RUN"
  ((n))
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  admin)
    shift
    [[ -d "$RUN" ]] || die "no cluster runs from $RUN"
    service_env
    exec "$WORKER_BIN" admin "$@" ;;
  supervise-run) shift; supervise_run "$@" ;;
  *) echo "usage: $0 up|down|status|admin …" >&2; exit 2 ;;
esac
