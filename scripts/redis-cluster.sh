#!/usr/bin/env bash
# A local Redis Cluster from Debian's redis-server: three masters and three replicas on six
# ports of 127.0.0.1 (BASE .. BASE+5), each with its own directory, AOF on as every deploy.
# The test suite runs the StateStore contract and the API suite on it (BASE 17001, the
# default), and the failover test starts one of its own on another BASE.
#   scripts/redis-cluster.sh up [BASE] [DIR]    start (or find running) and wait until the
#                                               cluster is ok
#   scripts/redis-cluster.sh down [BASE] [DIR]  stop the six servers, remove DIR
#   scripts/redis-cluster.sh urls [BASE]        the comma-separated seed URLs
#   scripts/redis-cluster.sh status [BASE]      `cluster info` of the first node
set -euo pipefail

BASE="${2:-${TIRAGE_REDIS_CLUSTER_BASE:-17001}}"
DIR="${3:-${TMPDIR:-/tmp}/tirage-redis-cluster-$BASE}"
# A master that stops answering for this long is replaced by its replica.
NODE_TIMEOUT_MS="${TIRAGE_REDIS_CLUSTER_NODE_TIMEOUT_MS:-2000}"

ports() { seq "$BASE" $((BASE + 5)); }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
cli() { redis-cli -h 127.0.0.1 -p "$1" "${@:2}"; }

urls() {
  local out=() p
  for p in $(ports); do out+=("redis://127.0.0.1:$p"); done
  (IFS=,; echo "${out[*]}")
}

replicas_in_sync() {
  local p n=0
  for p in $(ports); do
    cli "$p" info replication 2>/dev/null | grep -q '^master_link_status:up' && n=$((n + 1))
  done
  echo "$n"
}

cluster_ok() { cli "$BASE" cluster info 2>/dev/null | grep -q '^cluster_state:ok'; }

up() {
  command -v redis-server >/dev/null || { echo "redis-cluster: redis-server is not installed" >&2; exit 1; }
  local p
  # Only nodes not answering are started: a node that was stopped restarts from its
  # nodes.conf and rejoins (as a replica, when its replica took over meanwhile).
  for p in $(ports); do
    port_open "$p" && continue
    mkdir -p "$DIR/$p"
    redis-server --daemonize yes --bind 127.0.0.1 --port "$p" --dir "$DIR/$p" \
      --cluster-enabled yes --cluster-config-file nodes.conf \
      --cluster-node-timeout "$NODE_TIMEOUT_MS" \
      --save "" --appendonly yes --appendfsync everysec --repl-diskless-sync-delay 0 \
      --maxmemory "${TIRAGE_REDIS_MAXMEMORY:-1gb}" --maxmemory-policy noeviction \
      --pidfile "$DIR/$p/redis.pid" --logfile "$DIR/$p/redis.log"
  done
  for p in $(ports); do
    for _ in $(seq 1 50); do port_open "$p" && break; sleep 0.1; done
    port_open "$p" || { echo "redis-cluster: node $p did not start (see $DIR/$p/redis.log)" >&2; exit 1; }
  done
  # Nodes that know no other node yet: make the cluster (once; a restart finds nodes.conf).
  if [[ "$(cli "$BASE" cluster info | grep -c '^cluster_known_nodes:1')" == 1 ]]; then
    local addrs=()
    for p in $(ports); do addrs+=("127.0.0.1:$p"); done
    redis-cli --cluster create "${addrs[@]}" --cluster-replicas 1 --cluster-yes >"$DIR/create.log"
  fi
  # Ok only once every replica holds its master's data: a replica that never synced may
  # not take over, so a failover right after `up` would leave its slots down.
  for _ in $(seq 1 150); do
    if cluster_ok && [[ "$(cli "$BASE" cluster info | sed -n 's/^cluster_known_nodes:\([0-9]*\).*/\1/p')" == 6 ]] \
      && [[ "$(replicas_in_sync)" == 3 ]]; then
      return 0
    fi
    sleep 0.2
  done
  echo "redis-cluster: the cluster on $BASE.. did not become ok" >&2
  cli "$BASE" cluster info >&2 || true
  exit 1
}

down() {
  local p
  for p in $(ports); do
    if [[ -f "$DIR/$p/redis.pid" ]]; then
      kill "$(cat "$DIR/$p/redis.pid")" 2>/dev/null || true
    fi
  done
  for p in $(ports); do
    for _ in $(seq 1 50); do port_open "$p" || break; sleep 0.1; done
  done
  rm -rf "$DIR"
}

case "${1:-}" in
  up) up; urls ;;
  down) down ;;
  urls) urls ;;
  status) cli "$BASE" cluster info ;;
  *) echo "usage: $0 up|down|urls|status [BASE] [DIR]" >&2; exit 2 ;;
esac
