#!/usr/bin/env bash
# Separate hosts on one machine: one network namespace per host of the Tirage topology, each
# with its own address on a private bridge, so that no process can reach another through
# 127.0.0.1. Each namespace has its own loopback, its own ports and nothing else; traffic
# between hosts crosses the bridge. The namespaces have no default route and the bridge is
# not forwarded anywhere: nothing leaves the machine.
#
#   deploy/netns/hosts.sh up                  bridge and namespaces (idempotent)
#   deploy/netns/hosts.sh down                every process inside the namespaces stopped
#                                             (SIGTERM, SIGKILL after 10 s), then namespaces,
#                                             veths and bridge removed
#   deploy/netns/hosts.sh exec HOST CMD...    run CMD on HOST (its namespace, this machine's
#                                             file system and environment)
#   deploy/netns/hosts.sh addr HOST           HOST's address
#   deploy/netns/hosts.sh pids HOST           the processes running on HOST
#   deploy/netns/hosts.sh stop [-g S] HOST... SIGTERM every process on these hosts, SIGKILL
#                                             what still runs after S seconds (10)
#   deploy/netns/hosts.sh list                "HOST ADDRESS NAMESPACE", one host a line
#   deploy/netns/hosts.sh status              what exists, what listens on each host
#
# The hosts (namespace tirage-HOST, interface eth0 inside, tv-HOST on the bridge):
#   bridge    tirage-br0  10.77.0.1/24   the root namespace: the client's side
#   proxy                 10.77.0.10     nginx
#   api1, api2            10.77.0.21/22  tirage-api
#   worker1, worker2      10.77.0.31/32  tirage-worker
#   services              10.77.0.40     Redis, RabbitMQ, Garage (deploy/netns/services.sh)
# TIRAGE_NETNS_NET (10.77.0) changes the first three octets. Needs root and iproute2.
set -euo pipefail

NET="${TIRAGE_NETNS_NET:-10.77.0}"
BRIDGE=tirage-br0
HOSTS=(proxy api1 api2 worker1 worker2 services)

say() { echo "hosts: $*"; }
die() { echo "hosts: $*" >&2; exit 1; }

host_octet() {
  case "$1" in
    proxy) echo 10 ;;
    api1) echo 21 ;;
    api2) echo 22 ;;
    worker1) echo 31 ;;
    worker2) echo 32 ;;
    services) echo 40 ;;
    *) die "unknown host '$1' (hosts: ${HOSTS[*]})" ;;
  esac
}

addr() { echo "$NET.$(host_octet "$1")"; }
ns() { host_octet "$1" >/dev/null && echo "tirage-$1"; }
ns_exists() { [[ -e "/var/run/netns/$1" ]]; }
link_exists() { ip link show "$1" >/dev/null 2>&1; }

up() {
  ((EUID == 0)) || die "creating namespaces needs root"
  command -v ip >/dev/null || die "ip (iproute2) is not installed"
  # The network must be ours alone: a route to it through another device would split it.
  local other
  other="$(ip -4 route show "$NET.0/24" | grep -v "dev $BRIDGE " || true)"
  [[ -z "$other" ]] || die "$NET.0/24 is already routed elsewhere ($other); set TIRAGE_NETNS_NET"
  if ! link_exists "$BRIDGE"; then
    ip link add "$BRIDGE" type bridge || die "cannot create bridge $BRIDGE"
  fi
  # Outputs are captured before matching: `grep -q` closing a pipe early would fail it.
  [[ "$(ip -4 addr show dev "$BRIDGE")" == *"inet $NET.1/24"* ]] ||
    ip addr add "$NET.1/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  local h n veth
  for h in "${HOSTS[@]}"; do
    n="$(ns "$h")"
    veth="tv-$h"
    ns_exists "$n" || ip netns add "$n" || die "cannot create network namespace $n"
    if ! ip netns exec "$n" ip link show eth0 >/dev/null 2>&1; then
      # A host-side end left over from a namespace removed by hand has lost its peer.
      if link_exists "$veth"; then ip link del "$veth"; fi
      ip link add "$veth" type veth peer name eth0 netns "$n" ||
        die "cannot create the veth pair of $h"
    fi
    ip link set "$veth" master "$BRIDGE"
    ip link set "$veth" up
    ip netns exec "$n" ip link set lo up
    [[ "$(ip netns exec "$n" ip -4 addr show dev eth0)" == *"inet $(addr "$h")/24"* ]] ||
      ip netns exec "$n" ip addr add "$(addr "$h")/24" dev eth0
    ip netns exec "$n" ip link set eth0 up
  done
  # Every host must reach the bridge's address: a TCP connection to a closed port there is
  # refused at once when the path works, and only times out when it does not (no ping here).
  for h in "${HOSTS[@]}"; do
    local rc=0
    ip netns exec "$(ns "$h")" timeout 3 bash -c "exec 3<>/dev/tcp/$NET.1/9" 2>/dev/null || rc=$?
    ((rc != 124)) || die "host $h does not reach $NET.1 over $BRIDGE"
  done
  say "up: bridge $BRIDGE $NET.1/24; $(for h in "${HOSTS[@]}"; do printf '%s=%s ' "$h" "$(addr "$h")"; done)"
}

pids() { # pids <host>: one pid a line (none when the namespace does not exist)
  local n
  n="$(ns "$1")"
  ns_exists "$n" || return 0
  ip netns pids "$n" 2>/dev/null || true
}

# A namespace is a host: everything inside it belongs to the topology, so stopping a host is
# signalling whatever runs inside it. Pids are read from the namespace at the moment they are
# signalled, never from a file, so a recycled pid is never hit.
stop() { # stop [-g seconds] <host>...
  local grace=10
  if [[ "${1:-}" == -g ]]; then grace="$2"; shift 2; fi
  local h pid left deadline
  for h in "$@"; do
    for pid in $(pids "$h"); do
      # A child that exited with its parent (nginx's workers) is not worth a line.
      if kill -TERM "$pid" 2>/dev/null; then
        say "stopping $h: $(cat "/proc/$pid/comm" 2>/dev/null) (pid $pid)"
      fi
    done
  done
  deadline=$((SECONDS + grace))
  while :; do
    left=""
    for h in "$@"; do left+="$(pids "$h")"; done
    [[ -z "$left" ]] && return 0
    ((SECONDS < deadline)) || break
    sleep 0.2
  done
  for h in "$@"; do
    for pid in $(pids "$h"); do
      say "$h: pid $pid still runs after $grace s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    done
  done
  sleep 0.2
}

down() {
  local h n
  stop "${HOSTS[@]}"
  for h in "${HOSTS[@]}"; do
    n="$(ns "$h")"
    if ns_exists "$n"; then ip netns del "$n"; fi
  done
  # Deleting a namespace deletes its end of each veth pair, and so the pair, but only once
  # the kernel has released the namespace, a moment later: wait for the host-side ends, then
  # remove the ones left over from a namespace deleted by hand (tolerating the same race).
  local deadline=$((SECONDS + 5)) left
  while :; do
    left=""
    for h in "${HOSTS[@]}"; do
      if link_exists "tv-$h"; then left+=" tv-$h"; fi
    done
    if [[ -z "$left" ]] || ((SECONDS >= deadline)); then break; fi
    sleep 0.1
  done
  for h in $left; do ip link del "$h" 2>/dev/null || true; done
  if link_exists "$BRIDGE"; then ip link del "$BRIDGE"; fi
  for h in "${HOSTS[@]}"; do
    if ns_exists "$(ns "$h")" || link_exists "tv-$h"; then die "host $h is still there after down"; fi
  done
  if link_exists "$BRIDGE"; then die "bridge $BRIDGE is still there after down"; fi
  say "down"
}

status() {
  local h n
  if link_exists "$BRIDGE"; then
    say "bridge $BRIDGE: $(ip -4 -o addr show dev "$BRIDGE" | awk '{print $4}')"
  else
    say "no bridge $BRIDGE"
  fi
  for h in "${HOSTS[@]}"; do
    n="$(ns "$h")"
    if ! ns_exists "$n"; then echo "$h: no namespace $n"; continue; fi
    echo "$h ($n, $(addr "$h")): $(pids "$h" | wc -l) processes; listening:"
    ip netns exec "$n" ss -Hltnp | awk '{print "  " $4 " " $6}'
  done
  link_exists "$BRIDGE"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  exec)
    [[ $# -ge 3 ]] || die "usage: $0 exec HOST CMD..."
    n="$(ns "$2")"
    ns_exists "$n" || die "no namespace $n: run '$0 up' first"
    shift 2
    exec ip netns exec "$n" "$@"
    ;;
  addr) addr "${2:?usage: $0 addr HOST}" ;;
  pids) pids "${2:?usage: $0 pids HOST}" ;;
  stop) shift; stop "$@" ;;
  list) for h in "${HOSTS[@]}"; do echo "$h $(addr "$h") $(ns "$h")"; done ;;
  status) status ;;
  *) echo "usage: $0 up|down|exec HOST CMD...|addr HOST|pids HOST|stop [-g S] HOST...|list|status" >&2; exit 2 ;;
esac
