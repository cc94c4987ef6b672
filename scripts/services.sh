#!/usr/bin/env bash
# Starts the services Tirage's tests and local cluster need, when they are not answering:
# Redis (127.0.0.1:6379), a Redis Cluster of six nodes (127.0.0.1:17001-17006, via
# scripts/redis-cluster.sh), RabbitMQ (127.0.0.1:5672) and Garage (S3, via scripts/garage.sh).
# Services that already run are left alone.
#   scripts/services.sh up | status
#   TIRAGE_REDIS_MAXMEMORY=1gb   the Redis it starts refuses writes past this (noeviction)
set -euo pipefail
cd "$(dirname "$0")/.."

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() { # wait_port <port> <name> <seconds>
  for _ in $(seq 1 "$3"); do port_open "$1" && return 0; sleep 1; done
  echo "services: $2 is not answering on 127.0.0.1:$1 after $3 s" >&2; return 1
}

up_redis() {
  port_open 6379 && return 0
  command -v redis-server >/dev/null || { echo "services: redis-server is not installed" >&2; return 1; }
  mkdir -p /var/lib/redis /var/log/redis
  # Persistent as every deploy is: AOF fsynced every second (docs/RELIABILITY.md). Bounded
  # as every deploy is: past TIRAGE_REDIS_MAXMEMORY (1gb) writes are refused, never a key
  # evicted (docs/DEPLOY.md, "Redis memory").
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" \
    --appendonly yes --appendfsync everysec \
    --maxmemory "${TIRAGE_REDIS_MAXMEMORY:-1gb}" --maxmemory-policy noeviction \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_port 6379 Redis 30
}

up_rabbitmq() {
  port_open 5672 && return 0
  command -v rabbitmq-server >/dev/null || { echo "services: rabbitmq-server is not installed" >&2; return 1; }
  rabbitmq-server -detached
  wait_port 5672 RabbitMQ 120
}

case "${1:-up}" in
  up)
    up_redis
    scripts/redis-cluster.sh up >/dev/null
    up_rabbitmq
    scripts/garage.sh up
    ;;
  status)
    for s in "Redis 6379" "RabbitMQ 5672"; do
      set -- $s; if port_open "$2"; then echo "$1: up"; else echo "$1: down"; fi
    done
    if scripts/redis-cluster.sh status 2>/dev/null | grep -q '^cluster_state:ok'; then
      echo "Redis Cluster: up"; else echo "Redis Cluster: down"; fi
    scripts/garage.sh status
    ;;
  *) echo "usage: $0 up|status" >&2; exit 2 ;;
esac
