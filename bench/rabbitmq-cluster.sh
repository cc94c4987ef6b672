#!/usr/bin/env bash
# Three RabbitMQ nodes clustered on this machine, from Debian's rabbitmq-server, for the quorum
# queue failover run (bench/quorum-failover.sh). Each node has its own name
# (tirage-q1@localhost .. tirage-q3@localhost), its own AMQP port (BASE, BASE+1, BASE+2 on
# 127.0.0.1), its own Erlang distribution port (DIST_BASE ..), and its own data and logs under
# DIR/qN; they share one Erlang cookie (DIR/home/.erlang.cookie, HOME of every node and of
# the CLI calls made here). No plugin runs (no management UI). The machine's own RabbitMQ
# (rabbit@localhost, port 5672, /etc/rabbitmq) is neither read nor touched.
#
#   bench/rabbitmq-cluster.sh up            start the nodes that do not run, join them into
#                                           one cluster, return once cluster_status shows
#                                           three running nodes (idempotent)
#   bench/rabbitmq-cluster.sh down          stop the three nodes, remove DIR
#   bench/rabbitmq-cluster.sh stop-node N   stop node N (rabbitmqctl stop: a clean shutdown)
#   bench/rabbitmq-cluster.sh kill-node N   SIGKILL node N's Erlang VM (a crash)
#   bench/rabbitmq-cluster.sh start-node N  start node N again; it rejoins from its data
#   bench/rabbitmq-cluster.sh urls          the three AMQP URLs, comma-separated (guest/guest)
#   bench/rabbitmq-cluster.sh status        cluster_status, as node 1 (or the first that runs) sees it
#   bench/rabbitmq-cluster.sh ctl N ARGS    rabbitmqctl ARGS against node N
#   bench/rabbitmq-cluster.sh queues N ARGS rabbitmq-queues ARGS against node N
#
# Environment: TIRAGE_RABBIT_CLUSTER_DIR (default ${TMPDIR:-/tmp}/tirage-rabbitmq-cluster),
# TIRAGE_RABBIT_CLUSTER_BASE (AMQP ports, default 25681), TIRAGE_RABBIT_CLUSTER_DIST_BASE
# (distribution ports, default 25691; the CLI uses 35691-35720), TIRAGE_RABBIT_CLUSTER_TIMEOUT
# (seconds `up` and `start-node` wait, default 180).
set -euo pipefail

DIR="${TIRAGE_RABBIT_CLUSTER_DIR:-${TMPDIR:-/tmp}/tirage-rabbitmq-cluster}"
BASE="${TIRAGE_RABBIT_CLUSTER_BASE:-25681}"
DIST_BASE="${TIRAGE_RABBIT_CLUSTER_DIST_BASE:-25691}"
TIMEOUT="${TIRAGE_RABBIT_CLUSTER_TIMEOUT:-180}"
NODES=(1 2 3)
# Debian's wrappers in /usr/sbin switch to the rabbitmq user and its /var/lib/rabbitmq; the
# scripts behind them run as whoever calls them, with the environment given here.
RMQ_BIN=/usr/lib/rabbitmq/bin

say() { echo "rabbitmq-cluster: $*"; }
die() { echo "rabbitmq-cluster: $*" >&2; exit 1; }

node_name() { echo "tirage-q$1@localhost"; }
amqp_port() { echo $((BASE + $1 - 1)); }
check_node() { [[ "${1:-}" =~ ^[123]$ ]] || die "node is 1, 2 or 3 (got '${1:-}')"; }

# What every server and CLI call shares: the cookie's HOME, an env file of our own (not
# /etc/rabbitmq/rabbitmq-env.conf, which names the machine's node), epmd on loopback.
common_env() {
  echo "HOME=$DIR/home"
  echo "RABBITMQ_CONF_ENV_FILE=$DIR/rabbitmq-env.conf"
  echo "ERL_EPMD_ADDRESS=127.0.0.1"
  echo "RABBITMQ_CTL_DIST_PORT_MIN=$((DIST_BASE + 10000))"
  echo "RABBITMQ_CTL_DIST_PORT_MAX=$((DIST_BASE + 10029))"
}

node_env() { # node_env N: the server's environment
  local d="$DIR/q$1"
  common_env
  echo "RABBITMQ_NODENAME=$(node_name "$1")"
  echo "RABBITMQ_DIST_PORT=$((DIST_BASE + $1 - 1))"
  echo "RABBITMQ_CONFIG_FILE=$d/rabbitmq.conf"
  echo "RABBITMQ_ADVANCED_CONFIG_FILE=$d/advanced.config"
  echo "RABBITMQ_ENABLED_PLUGINS_FILE=$d/enabled_plugins"
  echo "RABBITMQ_MNESIA_BASE=$d/mnesia"
  echo "RABBITMQ_LOG_BASE=$d/log"
  echo "RABBITMQ_PID_FILE=$d/beam.pid"
  echo "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1}"
}

with_env() { # with_env ENV-FUNCTION [ARG] -- COMMAND...: COMMAND in that environment
  local fn="$1" arg="${2:-}"
  shift 3
  (
    while IFS= read -r kv; do export "${kv?}"; done < <("$fn" "$arg")
    exec "$@"
  )
}

ctl() { # ctl N ARGS...: rabbitmqctl against node N
  local n="$1"
  shift
  with_env common_env "" -- "$RMQ_BIN/rabbitmqctl" -q -n "$(node_name "$n")" "$@"
}

queues() { # queues N ARGS...: rabbitmq-queues against node N
  local n="$1"
  shift
  with_env common_env "" -- "$RMQ_BIN/rabbitmq-queues" -q -n "$(node_name "$n")" "$@"
}

answers() { ctl "$1" ping >/dev/null 2>&1; }

# The beam's pid while it runs (from its pid file, checked against /proc).
beam_pid() {
  local pid
  pid="$(cat "$DIR/q$1/beam.pid" 2>/dev/null || true)"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == beam* ]] &&
    echo "$pid"
}

prepare() { # the files every node reads, written once
  mkdir -p "$DIR/home"
  if [[ ! -s "$DIR/home/.erlang.cookie" ]]; then
    (umask 077; head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' | tr a-f A-F >"$DIR/home/.erlang.cookie")
    chmod 400 "$DIR/home/.erlang.cookie"
  fi
  : >"$DIR/rabbitmq-env.conf"
  local n d
  for n in "${NODES[@]}"; do
    d="$DIR/q$n"
    mkdir -p "$d/mnesia" "$d/log"
    # guest may log in over loopback only, which is where the nodes listen.
    printf 'listeners.tcp.local = 127.0.0.1:%s\n' "$(amqp_port "$n")" >"$d/rabbitmq.conf"
    echo '[].' >"$d/advanced.config"
    echo '[].' >"$d/enabled_plugins"
  done
}

start_node() { # start_node N: start it unless it answers already (does not wait)
  local n="$1"
  if answers "$n"; then
    return 0
  fi
  if (exec 3<>"/dev/tcp/127.0.0.1/$(amqp_port "$n")") 2>/dev/null; then
    die "port $(amqp_port "$n") is taken by something that is not node $n"
  fi
  say "starting $(node_name "$n") (AMQP 127.0.0.1:$(amqp_port "$n"), dist $((DIST_BASE + n - 1)))"
  # setsid: the node outlives this script and the caller's signals.
  with_env node_env "$n" -- setsid "$RMQ_BIN/rabbitmq-server" \
    >>"$DIR/q$n/log/stdout.log" 2>&1 </dev/null &
}

await_node() { # await_node N: until the node runs its app (or TIMEOUT)
  # await_startup gives up at once while the Erlang node is not registered yet: ask again.
  local deadline=$((SECONDS + TIMEOUT))
  until ctl "$1" await_startup --timeout 10 >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      tail -n 30 "$DIR/q$1/log/stdout.log" >&2 || true
      die "$(node_name "$1") did not start in $TIMEOUT s; logs in $DIR/q$1/log"
    fi
    sleep 0.5
  done
}

cluster_json() { # cluster_status of the first node that answers
  local n
  for n in "${NODES[@]}"; do
    answers "$n" && ctl "$n" cluster_status --formatter json 2>/dev/null && return 0
  done
  return 1
}

running_count() { cluster_json | jq '.running_nodes | length' 2>/dev/null || echo 0; }

up() {
  command -v jq >/dev/null || die "jq is not installed"
  [[ -x "$RMQ_BIN/rabbitmq-server" ]] || die "rabbitmq-server is not installed ($RMQ_BIN)"
  prepare
  local n
  for n in "${NODES[@]}"; do start_node "$n"; done
  for n in "${NODES[@]}"; do await_node "$n"; done
  # Nodes 2 and 3 join node 1 once; a node that left by stopping rejoins from its own data.
  local members
  members="$(ctl 1 cluster_status --formatter json | jq -r '.disk_nodes[]')"
  for n in 2 3; do
    grep -qx "$(node_name "$n")" <<<"$members" && continue
    say "joining $(node_name "$n") to $(node_name 1)"
    # The CLI logs the join's transient errors (tables of a node that is not running yet):
    # kept in join.log, not shown.
    {
      ctl "$n" stop_app && ctl "$n" reset && ctl "$n" join_cluster "$(node_name 1)" &&
        ctl "$n" start_app
    } >>"$DIR/join.log" 2>&1 || { tail -n 20 "$DIR/join.log" >&2; die "$(node_name "$n") did not join"; }
  done
  local deadline=$((SECONDS + TIMEOUT))
  until [[ "$(running_count)" == 3 ]]; do
    ((SECONDS < deadline)) || { cluster_json >&2 || true; die "the cluster does not show three running nodes"; }
    sleep 1
  done
  say "up: three running nodes; $(urls)"
}

stop_node() {
  check_node "$1"
  local pid
  pid="$(beam_pid "$1" || true)"
  ctl "$1" stop >/dev/null 2>&1 || true
  # `stop` returns once the node has shut down; make sure of it by its pid.
  local deadline=$((SECONDS + 60))
  while [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; do
    ((SECONDS < deadline)) || { kill -KILL "$pid" 2>/dev/null || true; break; }
    sleep 0.2
  done
  say "stopped $(node_name "$1")"
}

kill_node() {
  check_node "$1"
  local pid
  pid="$(beam_pid "$1")" || die "$(node_name "$1") does not run"
  kill -KILL "$pid"
  say "killed $(node_name "$1") (pid $pid)"
}

start_node_again() {
  check_node "$1"
  prepare
  start_node "$1"
  await_node "$1"
  say "started $(node_name "$1")"
}

down() {
  local n pid
  for n in "${NODES[@]}"; do
    pid="$(beam_pid "$n" || true)"
    [[ -n "$pid" ]] || continue
    stop_node "$n"
  done
  # epmd (shared with the machine's RabbitMQ) forgets a node by itself when it stops.
  rm -rf "$DIR"
  say "down"
}

urls() {
  local n out=()
  for n in "${NODES[@]}"; do out+=("amqp://guest:guest@127.0.0.1:$(amqp_port "$n")/%2f"); done
  (IFS=,; echo "${out[*]}")
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  stop-node) stop_node "${2:-}" ;;
  kill-node) kill_node "${2:-}" ;;
  start-node) start_node_again "${2:-}" ;;
  urls) urls ;;
  status) cluster_json | jq . ;;
  ctl) check_node "${2:-}"; n="$2"; shift 2; ctl "$n" "$@" ;;
  queues) check_node "${2:-}"; n="$2"; shift 2; queues "$n" "$@" ;;
  *) echo "usage: $0 up|down|stop-node N|kill-node N|start-node N|urls|status|ctl N ARGS|queues N ARGS" >&2; exit 2 ;;
esac
