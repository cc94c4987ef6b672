#!/usr/bin/env bash
# Gives the Garage node of docker-compose.yml its layout, imports the application's key and
# creates its bucket. Idempotent: every step checks first, so `docker compose up` may run it
# on every start. It shares the node's metadata volume (read-only) and configuration, which
# is how the garage CLI finds the node's id and RPC address.
#   env: TIRAGE_S3_ACCESS_KEY (a Garage key id: GK and 24 hex digits), TIRAGE_S3_SECRET_KEY
#        (64 hex digits), TIRAGE_S3_BUCKET, GARAGE_RPC_SECRET (the node's, read by the garage
#        CLI; or rpc_secret in the configuration), GARAGE_CAPACITY (1G),
#        GARAGE_INIT_STAY=1: once done, touch /tmp/garage-init.done and stay up (k8s dev
#        overlay, where this runs as a container of the Garage pod)
set -euo pipefail
: "${TIRAGE_S3_ACCESS_KEY:?}" "${TIRAGE_S3_SECRET_KEY:?}" "${TIRAGE_S3_BUCKET:?}"
capacity="${GARAGE_CAPACITY:-1G}"

for _ in $(seq 1 60); do garage status >/dev/null 2>&1 && break; sleep 1; done
garage status >/dev/null

node="$(garage node id -q)"
node="${node%%@*}"
if garage layout show 2>/dev/null | grep -q "Current cluster layout version: 0"; then
  garage layout assign -z dc1 -c "$capacity" "$node"
  garage layout apply --version 1
  echo "garage-init: layout applied (node ${node:0:16}, $capacity)"
fi

if ! garage key info "$TIRAGE_S3_ACCESS_KEY" >/dev/null 2>&1; then
  garage key import --yes -n tirage "$TIRAGE_S3_ACCESS_KEY" "$TIRAGE_S3_SECRET_KEY"
  echo "garage-init: key $TIRAGE_S3_ACCESS_KEY imported"
fi

if ! garage bucket info "$TIRAGE_S3_BUCKET" >/dev/null 2>&1; then
  garage bucket create "$TIRAGE_S3_BUCKET"
  echo "garage-init: bucket $TIRAGE_S3_BUCKET created"
fi
garage bucket allow --read --write --owner "$TIRAGE_S3_BUCKET" --key "$TIRAGE_S3_ACCESS_KEY"
echo "garage-init: ready"
if [[ "${GARAGE_INIT_STAY:-0}" == 1 ]]; then
  touch /tmp/garage-init.done
  trap 'exit 0' TERM INT
  while :; do sleep 3600 & wait $!; done
fi
