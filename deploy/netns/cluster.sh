#!/usr/bin/env bash
# The Tirage cluster on separate hosts: the topology of deploy/local/cluster.sh, but each
# process on a host of its own (a network namespace, deploy/netns/hosts.sh) with its own
# address on a private bridge, so that nothing can reach another process through 127.0.0.1.
#
#   deploy/netns/cluster.sh up      hosts, services, two API replicas, two workers, nginx;
#                                   returns once every replica's and worker's /readyz and a
#                                   public route through nginx answer 200 (nginx never
#                                   proxies the probes) and `check` passes
#   deploy/netns/cluster.sh down    stop everything (front to back), remove the hosts
#   deploy/netns/cluster.sh check   prove no process relies on 127.0.0.1 (exit 1 if one may)
#   deploy/netns/cluster.sh status
#
#   host      address        runs                                   ports
#   (root)    10.77.0.1      the client (bridge tirage-br0)
#   proxy     10.77.0.10     nginx (deploy/nginx/tirage.conf.template) 8080
#   api1/2    10.77.0.21/22  tirage-api                             8080
#   worker1/2 10.77.0.31/32  tirage-worker                          9100 (/readyz, /metrics)
#   services  10.77.0.40     Redis, RabbitMQ, Garage (services.sh)  6379, 5672, 3900
#
# Environment (all optional):
#   TIRAGE_NETNS_RUN_DIR        run folder: rendered nginx config, logs/, services' data;
#                               default /tmp/tirage-netns
#   TIRAGE_SKIP_BUILD=1         use the binaries already built
#   TIRAGE_BUILD_PROFILE=release  or debug
#   TIRAGE_UP_TIMEOUT=90        seconds `up` waits for nginx to proxy /openapi.json
#   TIRAGE__SECTION__KEY        any application setting, passed to every process; the
#                               connection settings are the services host's and win
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HOSTS="$REPO/deploy/netns/hosts.sh"
SERVICES="$REPO/deploy/netns/services.sh"
RUN="${TIRAGE_NETNS_RUN_DIR:-/tmp/tirage-netns}"
export TIRAGE_NETNS_RUN_DIR="$RUN"
LOGS="$RUN/logs"
PROFILE="${TIRAGE_BUILD_PROFILE:-release}"
[[ "$PROFILE" == release || "$PROFILE" == debug ]] || { echo "cluster: TIRAGE_BUILD_PROFILE is release or debug" >&2; exit 2; }
BIN="${CARGO_TARGET_DIR:-$REPO/target}/$PROFILE"
UP_TIMEOUT="${TIRAGE_UP_TIMEOUT:-90}"
# Every host has its own ports, so each replica and each worker takes the standard one.
PORT=8080
WORKER_PORT=9100
APIS=(api1 api2)
WORKERS=(worker1 worker2)

say() { echo "cluster: $*"; }
die() { echo "cluster: $*" >&2; exit 1; }
addr() { "$HOSTS" addr "$1"; }
# Only while the bridge exists: without it, 10.77.0.x would go out by the default route.
http_code() {
  ip link show tirage-br0 >/dev/null 2>&1 || return 0
  curl -s -o /dev/null -m 3 -w '%{http_code}' "$1" 2>/dev/null || true
}

# The pid each host's process was started with. setsid, hosts.sh, `ip netns exec` and env
# each exec the next, so it stays the process's pid; it only enters the host's namespace a
# moment after it is started, so the namespace cannot tell yet whether it runs.
declare -A STARTED=()

start_on() { # start_on <host> <binary> [VAR=value...]: detached, output to logs/<host>.log
  local host="$1" bin="$2"
  shift 2
  setsid "$HOSTS" exec "$host" env "$@" "$bin" >>"$LOGS/$host.log" 2>&1 </dev/null &
  STARTED[$host]=$!
}

# Whether a process runs: an exited child stays a zombie until reaped, and kill -0 finds it.
running() {
  local state
  state="$(sed -E 's/^.*\) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)"
  [[ -n "$state" && "$state" != Z && "$state" != X ]]
}

wait_ready() { # wait_ready <host> <url> <seconds>
  local deadline=$((SECONDS + $3))
  until [[ "$(http_code "$2")" == 200 ]]; do
    if ! running "${STARTED[$1]}"; then
      tail -n 20 "$LOGS/$1.log" >&2 || true
      die "$1 exited during start-up; see $LOGS/$1.log"
    fi
    ((SECONDS < deadline)) || die "$2 is not 200 after $3 s; see $LOGS/$1.log"
    sleep 0.2
  done
}

up_failed() {
  (($1)) || return 0
  echo "cluster: up failed; stopping what it started (logs stay in $LOGS)" >&2
  down >&2 || true
}

up() {
  local h
  if [[ "$(http_code "http://$(addr proxy):$PORT/openapi.json")" == 200 ]]; then
    say "already up: http://$(addr proxy):$PORT"
    return 0
  fi
  for h in proxy "${APIS[@]}" "${WORKERS[@]}"; do
    [[ -z "$("$HOSTS" pids "$h" 2>/dev/null)" ]] || die "a partial cluster runs ($h); run '$0 down' first"
  done
  command -v nginx >/dev/null || die "nginx is not installed (scripts/install-deps.sh installs it)"
  command -v curl >/dev/null || die "curl is not installed"
  mkdir -p "$RUN" "$LOGS" "$RUN/nginx-tmp"
  trap 'up_failed $?' EXIT

  "$HOSTS" up
  "$SERVICES" up
  if [[ "${TIRAGE_SKIP_BUILD:-0}" != 1 ]]; then
    say "building the $PROFILE binaries"
    # Cargo's profile `dev` is what builds into target/debug. The worker binary needs its
    # `services` feature (the production adapters).
    (cd "$REPO" && cargo build --profile "${PROFILE/debug/dev}" --bin tirage-api \
      --bin tirage-worker --features tirage-worker/services)
  fi
  [[ -x "$BIN/tirage-api" && -x "$BIN/tirage-worker" ]] || die "missing $BIN/tirage-api or $BIN/tirage-worker"

  # The services host's connection settings replace any the caller exported (they would
  # name the machine's own services on 127.0.0.1, which these hosts cannot reach).
  eval "$("$SERVICES" env)"
  # The test suites' own service settings (TIRAGE_TEST_*) name the machine's services; no
  # application reads them, and no process here should carry them.
  unset "${!TIRAGE_TEST_@}"
  if [[ -z "${TIRAGE__WORKER__CALLBACK_SECRET:-}" ]]; then
    [[ -s "$RUN/callback_secret" ]] || (umask 077; openssl rand -hex 32 >"$RUN/callback_secret")
    TIRAGE__WORKER__CALLBACK_SECRET="$(cat "$RUN/callback_secret")"
    export TIRAGE__WORKER__CALLBACK_SECRET
  fi
  cd "$REPO" # the applications read config/default.toml relative to the working directory

  # Only nginx's address may name the client in X-Real-IP; anyone else is the client.
  for h in "${APIS[@]}"; do
    start_on "$h" "$BIN/tirage-api" TIRAGE__API__HOST="$(addr "$h")" TIRAGE__API__PORT="$PORT" \
      TIRAGE__RATE_LIMIT__TRUSTED_PROXIES="$(addr proxy)/32"
  done
  for h in "${WORKERS[@]}"; do
    start_on "$h" "$BIN/tirage-worker" TIRAGE__WORKER__HOST="$(addr "$h")" \
      TIRAGE__WORKER__PORT="$WORKER_PORT"
  done
  for h in "${APIS[@]}"; do wait_ready "$h" "http://$(addr "$h"):$PORT/readyz" 60; done
  for h in "${WORKERS[@]}"; do wait_ready "$h" "http://$(addr "$h"):$WORKER_PORT/readyz" 60; done

  # nginx, from the shared template and the local cluster's main configuration: only the
  # replicas' and its own addresses differ.
  local servers=""
  for h in "${APIS[@]}"; do servers+="server $(addr "$h"):$PORT max_fails=3 fail_timeout=5s; "; done
  chown -R nobody:nogroup "$RUN/nginx-tmp" # nginx's workers run as nobody
  "$REPO/deploy/nginx/render.sh" "$REPO/deploy/nginx/tirage.conf.template" \
    "TIRAGE_API_SERVERS=$servers" "TIRAGE_NGINX_LISTEN=$(addr proxy):$PORT" >"$RUN/tirage.conf"
  "$REPO/deploy/nginx/render.sh" "$REPO/deploy/local/nginx-main.conf.template" \
    "TIRAGE_RUN_DIR=$RUN" "TIRAGE_NGINX_USER_LINE=user nobody nogroup;" >"$RUN/nginx.conf"
  "$HOSTS" exec proxy nginx -q -t -p "$RUN" -e "$LOGS/nginx.error.log" -c "$RUN/nginx.conf" ||
    die "nginx refuses $RUN/nginx.conf"
  # `daemon off`: the access log (stdout) goes to a file. (-e is where nginx writes; stderr
  # only catches what it prints before reading it.)
  # shellcheck disable=SC2094
  setsid "$HOSTS" exec proxy nginx -p "$RUN" -e "$LOGS/nginx.error.log" -c "$RUN/nginx.conf" \
    >>"$LOGS/nginx.access.log" 2>>"$LOGS/nginx.error.log" </dev/null &
  STARTED[proxy]=$!
  # The replicas' probes are never proxied: a public route that needs no dependency shows
  # that nginx reaches a replica.
  wait_ready proxy "http://$(addr proxy):$PORT/openapi.json" "$UP_TIMEOUT"
  check
  trap - EXIT
  say "up: http://$(addr proxy):$PORT (nginx on proxy; replicas on ${APIS[*]}; workers on ${WORKERS[*]})"
  say "run folder: $RUN"
}

down() {
  # Front to back: stop taking requests, let the replicas finish theirs, let the workers
  # finish their jobs (they need the services), then the services, then the hosts.
  "$HOSTS" stop -g 10 proxy
  "$HOSTS" stop -g 30 "${APIS[@]}"
  "$HOSTS" stop -g 40 "${WORKERS[@]}"
  "$SERVICES" down
  "$HOSTS" down
  say "down (logs kept in $LOGS)"
}

# The proof that no process relies on 127.0.0.1, host by host:
#  1. nothing listens on a loopback or wildcard address, except Erlang's port mapper on the
#     services host (it always adds loopback; only that host's own RabbitMQ node uses it);
#  2. from every other host, 127.0.0.1 refuses the services' and the applications' ports;
#  3. no process's TIRAGE_ settings name 127.0.0.1, localhost or ::1;
#  4. every TCP connection of the applications and nginx is to a host of the bridge.
check() {
  local h n bad=0 line local_addr proc pid port
  local net="${TIRAGE_NETNS_NET:-10.77.0}"
  for h in proxy "${APIS[@]}" "${WORKERS[@]}" services; do
    n="$("$HOSTS" pids "$h" | wc -l)"
    ((n)) || { echo "check: $h runs nothing" >&2; bad=1; }
    while read -r line; do
      local_addr="$(awk '{print $4}' <<<"$line")"
      proc="$(grep -o '(("[^"]*"' <<<"$line" | tr -d '(")' || true)"
      case "$local_addr" in
        "$net".*) ;;
        127.*:4369 | \[::1\]:4369) [[ "$h" == services && "$proc" == epmd ]] || { echo "check: $h: $proc listens on $local_addr" >&2; bad=1; } ;;
        *) echo "check: $h: $proc listens on $local_addr" >&2; bad=1 ;;
      esac
    done < <("$HOSTS" exec "$h" ss -Hltnp)
    [[ "$h" == services ]] && continue
    for port in 6379 5672 3900 3901 "$PORT" "$WORKER_PORT"; do
      if "$HOSTS" exec "$h" timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" 2>/dev/null; then
        echo "check: $h: 127.0.0.1:$port accepts a connection" >&2; bad=1
      fi
    done
    for pid in $("$HOSTS" pids "$h"); do
      if tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -E '^TIRAGE' |
        grep -Eiq '127\.0\.0\.1|localhost|\[?::1\]?'; then
        echo "check: $h: pid $pid ($(cat "/proc/$pid/comm")) has a TIRAGE_ setting on loopback" >&2
        bad=1
      fi
    done
    while read -r line; do
      echo "check: $h: a connection off the bridge: $line" >&2; bad=1
    done < <("$HOSTS" exec "$h" ss -Htn state established | awk -v net="$net." \
      'index($3, net) != 1 || index($4, net) != 1')
  done
  ((bad == 0)) || die "check failed: a process may rely on 127.0.0.1 (see above)"
  say "check: every host listens on its own address only; 127.0.0.1 on the other hosts" \
    "refuses the services' ports; no TIRAGE_ setting names loopback; every connection stays" \
    "on $net.0/24"
}

status() {
  "$HOSTS" status || true
  "$SERVICES" status || true
  local h
  for h in "${APIS[@]}"; do echo "$h /readyz: $(http_code "http://$(addr "$h"):$PORT/readyz")"; done
  for h in "${WORKERS[@]}"; do echo "$h /readyz: $(http_code "http://$(addr "$h"):$WORKER_PORT/readyz")"; done
  echo "nginx /nginx-health: $(http_code "http://$(addr proxy):$PORT/nginx-health")"
  echo "nginx /openapi.json: $(http_code "http://$(addr proxy):$PORT/openapi.json")"
  [[ "$(http_code "http://$(addr proxy):$PORT/openapi.json")" == 200 ]]
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  check) check ;;
  status) status ;;
  *) echo "usage: $0 up|down|check|status" >&2; exit 2 ;;
esac
