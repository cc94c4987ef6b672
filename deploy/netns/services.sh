#!/usr/bin/env bash
# The services host of the namespace topology (deploy/netns/hosts.sh): Redis, RabbitMQ and
# Garage (S3) of its own, inside namespace tirage-services, on their standard ports of the
# host's address only (10.77.0.40: 6379, 5672, 3900). They are separate instances from the
# machine's development services on 127.0.0.1, which stay untouched: same binaries, their
# own configuration, data and logs.
#
#   deploy/netns/services.sh up       start what does not answer (the hosts must be up);
#                                     Garage gets its layout, key and bucket (idempotent)
#   deploy/netns/services.sh env      the TIRAGE__ connection settings for the applications
#   deploy/netns/services.sh down     stop everything on the services host (SIGTERM; RabbitMQ
#                                     and Redis flush and exit; SIGKILL after 60 s)
#   deploy/netns/services.sh status
#
# State and logs: $TIRAGE_NETNS_RUN_DIR/services/{redis,rabbitmq,garage} and .../logs
# (default /tmp/tirage-netns). The data outlives `down`, so the next `up` starts warm;
# delete the folder for a fresh start.
set -euo pipefail

HOSTS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/hosts.sh"
RUN="${TIRAGE_NETNS_RUN_DIR:-/tmp/tirage-netns}"
STATE="$RUN/services"
LOGS="$RUN/logs"
ADDR="$("$HOSTS" addr services)"
BUCKET=tirage
REGION=garage

say() { echo "services: $*"; }
die() { echo "services: $*" >&2; exit 1; }

# From the root namespace, over the bridge: the same path the other hosts take.
answers() { (exec 3<>"/dev/tcp/$ADDR/$1") 2>/dev/null; }

on_host() { "$HOSTS" exec services "$@"; }

# Started in the background on the services host, detached from the caller's session; its
# output goes to its log. Its pid (SPAWNED) only serves start-up: the host is the unit
# `down` stops.
spawn() { # spawn <log name> <command...>
  local log="$LOGS/$1.log"
  shift
  setsid "$HOSTS" exec services "$@" >>"$log" 2>&1 </dev/null &
  SPAWNED=$!
}

# An exited child stays a zombie until reaped, and kill -0 still finds it.
spawned_runs() {
  local state
  state="$(sed -E 's/^.*\) //' "/proc/$SPAWNED/stat" 2>/dev/null | cut -d' ' -f1)"
  [[ -n "$state" && "$state" != Z && "$state" != X ]]
}

wait_answer() { # wait_answer <port> <what> <seconds>
  local deadline=$((SECONDS + $3))
  until answers "$1"; do
    if ((SECONDS >= deadline)) || ! spawned_runs; then
      tail -n 20 "$LOGS/$2.log" >&2 || true
      die "$2 does not answer on $ADDR:$1 (exited, or not within $3 s); see $LOGS/$2.log"
    fi
    sleep 0.2
  done
}

secret() { # secret <file> <openssl rand args...>: made once, kept with the data it protects
  [[ -s "$1" ]] || (umask 077; openssl rand "${@:2}" >"$1")
  cat "$1"
}

up_redis() {
  answers 6379 && return 0
  command -v redis-server >/dev/null || die "redis-server is not installed"
  mkdir -p "$STATE/redis"
  # Persistent as every deploy is (AOF, fsync every second). Protected mode refuses clients
  # from other addresses without a password; this host serves only the bridge's private
  # network, which has no route off the machine.
  # Bounded, refusing writes past the bound rather than evicting (docs/DEPLOY.md, "Redis
  # memory"): TIRAGE_REDIS_MAXMEMORY, 1gb by default.
  spawn redis redis-server --bind "$ADDR" --port 6379 --protected-mode no --save "" \
    --appendonly yes --appendfsync everysec --dir "$STATE/redis" --logfile "" --daemonize no \
    --maxmemory "${TIRAGE_REDIS_MAXMEMORY:-1gb}" --maxmemory-policy noeviction
  wait_answer 6379 redis 30
  say "Redis on $ADDR:6379"
}

up_rabbitmq() {
  answers 5672 && return 0
  local rabbit=/usr/lib/rabbitmq/bin/rabbitmq-server d="$STATE/rabbitmq"
  [[ -x "$rabbit" ]] || die "rabbitmq-server is not installed ($rabbit)"
  mkdir -p "$d/mnesia" "$d/log"
  # A user of its own: RabbitMQ refuses `guest` from any address but loopback, and the
  # clients are on other hosts. default_user only seeds a fresh database, so the password
  # stays next to the database it was seeded into.
  local pass
  pass="$(secret "$d/password" -hex 24)"
  (umask 077; cat >"$d/rabbitmq.conf" <<CONF
# Written by deploy/netns/services.sh: the services host's broker, on its address only.
listeners.tcp.1 = $ADDR:5672
default_user = tirage
default_pass = $pass
default_vhost = /
default_permissions.configure = .*
default_permissions.read = .*
default_permissions.write = .*
CONF
  )
  # The machine's /etc/rabbitmq/rabbitmq-env.conf pins its own node to 127.0.0.1: this one
  # reads an empty file instead, and everything it needs is set below.
  : >"$d/rabbitmq-env.conf"
  echo '[].' >"$d/enabled_plugins"
  # A node name of its own, with the host's address as its host part, and Erlang's port
  # mapper and distribution port on that address: the CLI tools reach the node over the
  # bridge like any remote node. HOME holds the node's Erlang cookie.
  spawn rabbitmq env HOME="$d" RABBITMQ_CONF_ENV_FILE="$d/rabbitmq-env.conf" \
    RABBITMQ_NODENAME="tirage-netns@$ADDR" RABBITMQ_USE_LONGNAME=true \
    RABBITMQ_CONFIG_FILE="$d/rabbitmq.conf" RABBITMQ_ENABLED_PLUGINS_FILE="$d/enabled_plugins" \
    RABBITMQ_MNESIA_BASE="$d/mnesia" RABBITMQ_LOG_BASE="$d/log" RABBITMQ_LOGS=- \
    ERL_EPMD_ADDRESS="$ADDR" \
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {${ADDR//./,}}" \
    "$rabbit"
  wait_answer 5672 rabbitmq 120
  say "RabbitMQ on $ADDR:5672 (user tirage)"
}

find_garage() {
  if command -v garage >/dev/null 2>&1; then command -v garage
  elif [[ -x "$HOME/.cargo/bin/garage" ]]; then echo "$HOME/.cargo/bin/garage"
  else die "garage is not installed (scripts/garage.sh install installs it)"; fi
}

garage() { on_host "$GARAGE" -c "$STATE/garage/garage.toml" "$@"; }

up_garage() {
  GARAGE="$(find_garage)"
  local d="$STATE/garage"
  mkdir -p "$d/meta" "$d/data"
  chmod 700 "$d"
  # The secrets stay in their own files (mode 600, as Garage demands), out of the config.
  secret "$d/rpc_secret" -hex 32 >/dev/null
  secret "$d/admin_token" -base64 32 >/dev/null
  # Path-style S3 only (the applications' client uses it): no root_domain for virtual hosts.
  cat >"$d/garage.toml" <<CONF
# Written by deploy/netns/services.sh: the services host's single-node Garage, every
# endpoint on the host's address.
metadata_dir = "$d/meta"
data_dir = "$d/data"
db_engine = "lmdb"
replication_factor = 1
rpc_secret_file = "$d/rpc_secret"
rpc_bind_addr = "$ADDR:3901"
rpc_public_addr = "$ADDR:3901"
s3_api.api_bind_addr = "$ADDR:3900"
s3_api.s3_region = "$REGION"
admin.api_bind_addr = "$ADDR:3903"
admin.admin_token_file = "$d/admin_token"
CONF
  if ! answers 3900; then
    spawn garage "$GARAGE" -c "$d/garage.toml" server
    wait_answer 3900 garage 30
  fi
  # A fresh node needs a layout (one node, one zone), then the application's key and bucket.
  local node layout version
  node="$(garage node id -q 2>/dev/null | cut -d@ -f1)"
  [[ -n "$node" ]] || die "cannot read Garage's node id; see $LOGS/garage.log"
  layout="$(garage layout show 2>/dev/null || true)"
  if ! grep -q "${node:0:16}.*dc1" <<<"$layout"; then
    garage layout assign -z dc1 -c 1G "$node" >/dev/null
    version="$(garage layout show | sed -n 's/.*Current cluster layout version: *\([0-9]*\).*/\1/p' | head -n1)"
    garage layout apply --version "$((${version:-0} + 1))" >/dev/null
  fi
  [[ -s "$d/key.env" ]] ||
    (umask 077; printf 'KEY_ID=GK%s\nSECRET=%s\n' "$(openssl rand -hex 12)" "$(openssl rand -hex 32)" >"$d/key.env")
  # shellcheck disable=SC1091
  source "$d/key.env"
  garage key info "$KEY_ID" >/dev/null 2>&1 || garage key import --yes -n tirage "$KEY_ID" "$SECRET" >/dev/null
  garage bucket info "$BUCKET" >/dev/null 2>&1 || garage bucket create "$BUCKET" >/dev/null
  garage bucket allow --read --write --owner "$BUCKET" --key "$KEY_ID" >/dev/null
  say "Garage on $ADDR:3900 (bucket $BUCKET)"
}

up() {
  "$HOSTS" exec services true 2>/dev/null || die "no services host: run deploy/netns/hosts.sh up first"
  mkdir -p "$STATE" "$LOGS"
  up_redis
  up_rabbitmq
  up_garage
}

env_() {
  local d="$STATE"
  [[ -s "$d/garage/key.env" && -s "$d/rabbitmq/password" ]] || die "no services yet: run '$0 up' first"
  # shellcheck disable=SC1091
  source "$d/garage/key.env"
  # %q: the values are evaluated by the caller, secrets included.
  printf 'export %s=%q\n' \
    TIRAGE__REDIS__URL "redis://$ADDR:6379" \
    TIRAGE__AMQP__URL "amqp://tirage:$(cat "$d/rabbitmq/password")@$ADDR:5672/%2f" \
    TIRAGE__S3__ENDPOINT "http://$ADDR:3900" \
    TIRAGE__S3__ACCESS_KEY_ID "$KEY_ID" \
    TIRAGE__S3__SECRET_ACCESS_KEY "$SECRET" \
    TIRAGE__S3__BUCKET "$BUCKET" \
    TIRAGE__S3__REGION "$REGION"
}

status() {
  local ok=0 name port
  on_host true 2>/dev/null || { echo "no services host"; return 1; }
  while read -r name port; do
    if answers "$port"; then echo "$name: up on $ADDR:$port"; else echo "$name: down"; ok=1; fi
  done <<<$'Redis 6379\nRabbitMQ 5672\nGarage 3900'
  return "$ok"
}

case "${1:-}" in
  up) up ;;
  env) env_ ;;
  down) "$HOSTS" stop -g 60 services ;;
  status) status ;;
  *) echo "usage: $0 up|env|down|status" >&2; exit 2 ;;
esac
