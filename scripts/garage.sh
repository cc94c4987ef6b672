#!/usr/bin/env bash
# A single-node Garage (S3) for development and tests. Every subcommand is idempotent.
#   scripts/garage.sh install   cargo install garage, only when it is not installed
#   scripts/garage.sh up        install if needed, configure, start, create layout/key/bucket
#   scripts/garage.sh env       print the exports tests and the apps need:
#                                 eval "$(scripts/garage.sh env)"
#   scripts/garage.sh down      stop the server this script started
#   scripts/garage.sh status    is it running and answering?
# Settings (environment):
#   TIRAGE_GARAGE_DIR   state directory (config, data, key, pid, log)
#                       default ${HOME}/.local/share/tirage/garage
#   TIRAGE_GARAGE_S3_PORT (3900), TIRAGE_GARAGE_RPC_PORT (3901), TIRAGE_GARAGE_ADMIN_PORT (3903)
#   TIRAGE_GARAGE_BUCKET (tirage), TIRAGE_GARAGE_KEY_NAME (tirage-dev)
#   TIRAGE_GARAGE_CORS_ORIGINS  origins whose pages may PUT/GET through presigned URLs
#                       (the web page uploads straight to the bucket), comma-separated;
#                       default * (a presigned URL is itself the credential)
set -euo pipefail

DIR="${TIRAGE_GARAGE_DIR:-$HOME/.local/share/tirage/garage}"
S3_PORT="${TIRAGE_GARAGE_S3_PORT:-3900}"
RPC_PORT="${TIRAGE_GARAGE_RPC_PORT:-3901}"
ADMIN_PORT="${TIRAGE_GARAGE_ADMIN_PORT:-3903}"
BUCKET="${TIRAGE_GARAGE_BUCKET:-tirage}"
KEY_NAME="${TIRAGE_GARAGE_KEY_NAME:-tirage-dev}"
REGION="garage"
CONF="$DIR/garage.toml"
PID_FILE="$DIR/garage.pid"
LOG="$DIR/garage.log"
KEY_FILE="$DIR/key.env"

log() { echo "garage.sh: $*" >&2; }
die() { log "$*"; exit 1; }

find_garage() {
  if command -v garage >/dev/null 2>&1; then command -v garage
  elif [[ -x "$HOME/.cargo/bin/garage" ]]; then echo "$HOME/.cargo/bin/garage"
  else return 1; fi
}

cmd_install() {
  if bin="$(find_garage)"; then
    log "already installed: $bin ($("$bin" --version 2>/dev/null | head -1))"
    return 0
  fi
  if pgrep -f "cargo install garage" >/dev/null 2>&1; then
    die "a 'cargo install garage' is already running; wait for it to finish, then retry"
  fi
  log "installing garage ${TIRAGE_GARAGE_VERSION:-2.5.0} with cargo (takes ~15 minutes on 2 cores)"
  # Pinned: the configuration written below and deploy/'s images are for this version.
  # Only the LMDB metadata engine (what write_config selects): leaving out SQLite, K2V and
  # Garage's own metrics shortens the build on a fresh machine.
  cargo install garage --locked --version "${TIRAGE_GARAGE_VERSION:-2.5.0}" \
    --no-default-features --features bundled-libs,lmdb
}

g() { "$GARAGE" -c "$CONF" "$@"; }

write_config() {
  mkdir -p "$DIR/meta" "$DIR/data"
  chmod 700 "$DIR"
  if [[ ! -f "$DIR/rpc_secret" ]]; then
    (umask 077; openssl rand -hex 32 > "$DIR/rpc_secret")
  fi
  if [[ ! -f "$DIR/admin_token" ]]; then
    (umask 077; openssl rand -base64 32 > "$DIR/admin_token")
  fi
  # Written every time so port overrides take effect; secrets persist across runs.
  (umask 077; cat > "$CONF" <<CONF
# Written by scripts/garage.sh: single-node development Garage (${GARAGE_VERSION}).
metadata_dir = "$DIR/meta"
data_dir = "$DIR/data"
db_engine = "lmdb"
replication_factor = 1
# Photos are compressed already: zstd on their blocks would spend CPU for no saving.
compression_level = "none"
rpc_bind_addr = "127.0.0.1:$RPC_PORT"
rpc_public_addr = "127.0.0.1:$RPC_PORT"
rpc_secret = "$(cat "$DIR/rpc_secret")"

[s3_api]
s3_region = "$REGION"
api_bind_addr = "127.0.0.1:$S3_PORT"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:$ADMIN_PORT"
admin_token = "$(cat "$DIR/admin_token")"
CONF
  )
}

answering() { g status >/dev/null 2>&1; }

s3_answering() { curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$S3_PORT/" ; }

start_server() {
  if answering; then
    log "server already answering"
    return 0
  fi
  log "starting server (log: $LOG)"
  nohup "$GARAGE" -c "$CONF" server >>"$LOG" 2>&1 &
  echo $! > "$PID_FILE"
  for _ in $(seq 1 100); do
    if answering && s3_answering; then return 0; fi
    if ! kill -0 "$(cat "$PID_FILE")" 2>/dev/null; then
      tail -20 "$LOG" >&2
      die "server exited during startup"
    fi
    sleep 0.2
  done
  tail -20 "$LOG" >&2
  die "server did not answer within 20 s"
}

ensure_layout() {
  local node_id version current
  node_id="$(g node id -q 2>/dev/null | cut -d@ -f1)"
  [[ -n "$node_id" ]] || die "cannot read the node id"
  # Captured first: `grep -q` would close the pipe early and, under pipefail, fail the test.
  current="$(g layout show 2>/dev/null || true)"
  if grep -q "${node_id:0:16}.*dc1" <<<"$current"; then
    return 0
  fi
  log "assigning the single-node layout"
  g layout assign -z dc1 -c 1G "$node_id" >/dev/null
  version="$(g layout show | sed -n 's/.*Current cluster layout version: *\([0-9]*\).*/\1/p' | head -1)"
  g layout apply --version "$(( ${version:-0} + 1 ))" >/dev/null
}

ensure_key() {
  if [[ ! -f "$KEY_FILE" ]]; then
    # A key of our own making, imported, so its secret is known without parsing CLI output.
    (umask 077; printf 'KEY_ID=GK%s\nSECRET=%s\n' "$(openssl rand -hex 12)" "$(openssl rand -hex 32)" > "$KEY_FILE")
  fi
  # shellcheck disable=SC1090
  source "$KEY_FILE"
  if ! g key info "$KEY_ID" >/dev/null 2>&1; then
    log "importing key $KEY_NAME"
    g key import --yes -n "$KEY_NAME" "$KEY_ID" "$SECRET" >/dev/null
  fi
}

ensure_bucket() {
  if ! g bucket info "$BUCKET" >/dev/null 2>&1; then
    log "creating bucket $BUCKET"
    g bucket create "$BUCKET" >/dev/null
  fi
  g bucket allow --read --write --owner "$BUCKET" --key "$KEY_ID" >/dev/null
}

# The bucket's CORS rule (S3 PutBucketCors, signed by curl --aws-sigv4): browsers may PUT
# originals and GET renditions through presigned URLs from the page's origin. Set every time,
# so a changed TIRAGE_GARAGE_CORS_ORIGINS takes effect.
ensure_cors() {
  local origins rules="" origin body md5 sha
  IFS=, read -ra origins <<<"${TIRAGE_GARAGE_CORS_ORIGINS:-*}"
  for origin in "${origins[@]}"; do rules+="<AllowedOrigin>${origin// /}</AllowedOrigin>"; done
  body="<CORSConfiguration><CORSRule>$rules<AllowedMethod>PUT</AllowedMethod>"
  body+="<AllowedMethod>GET</AllowedMethod><AllowedMethod>HEAD</AllowedMethod>"
  body+="<AllowedHeader>*</AllowedHeader><ExposeHeader>ETag</ExposeHeader>"
  body+="<MaxAgeSeconds>3600</MaxAgeSeconds></CORSRule></CORSConfiguration>"
  md5="$(printf '%s' "$body" | openssl dgst -md5 -binary | openssl base64)"
  # curl signs the headers it is given but adds no payload hash, which Garage requires.
  sha="$(printf '%s' "$body" | sha256sum | cut -d' ' -f1)"
  # A key just allowed on a bucket may take a moment to be honoured: a few attempts.
  local attempt
  for attempt in 1 2 3 4 5 6 7 8 9 10; do
    # `?cors=`, not `?cors`: curl signs the query as written, S3 canonicalises it with `=`.
    curl -sS -f -o /dev/null -X PUT "http://127.0.0.1:$S3_PORT/$BUCKET?cors=" \
      --aws-sigv4 "aws:amz:$REGION:s3" --user "$KEY_ID:$SECRET" \
      -H "x-amz-content-sha256: $sha" -H "Content-MD5: $md5" \
      -H "Content-Type: application/xml" --data-binary "$body" \
      2>/dev/null && return 0
    sleep "0.$attempt"
  done
  die "cannot set the CORS rule of bucket $BUCKET (S3 PutBucketCors through curl failed)"
}

cmd_up() {
  cmd_install
  GARAGE="$(find_garage)" || die "garage is not installed"
  GARAGE_VERSION="$("$GARAGE" --version 2>/dev/null | head -1)"
  write_config
  start_server
  ensure_layout
  ensure_key
  ensure_bucket
  # The layout may take a moment to be usable after being applied.
  for _ in $(seq 1 50); do
    if s3_answering; then break; fi
    sleep 0.2
  done
  ensure_cors
  log "ready: S3 at http://127.0.0.1:$S3_PORT, bucket $BUCKET, key $KEY_NAME"
}

cmd_env() {
  [[ -f "$KEY_FILE" ]] || die "no key yet: run scripts/garage.sh up first"
  # shellcheck disable=SC1090
  source "$KEY_FILE"
  local endpoint="http://127.0.0.1:$S3_PORT"
  cat <<ENV
export TIRAGE_TEST_S3_ENDPOINT=$endpoint
export TIRAGE_TEST_S3_ACCESS_KEY=$KEY_ID
export TIRAGE_TEST_S3_SECRET_KEY=$SECRET
export TIRAGE_TEST_S3_BUCKET=$BUCKET
export TIRAGE_TEST_S3_REGION=$REGION
export TIRAGE__S3__ENDPOINT=$endpoint
export TIRAGE__S3__ACCESS_KEY_ID=$KEY_ID
export TIRAGE__S3__SECRET_ACCESS_KEY=$SECRET
export TIRAGE__S3__BUCKET=$BUCKET
export TIRAGE__S3__REGION=$REGION
ENV
}

cmd_down() {
  if [[ ! -f "$PID_FILE" ]]; then
    log "not started by this script (no $PID_FILE)"
    return 0
  fi
  local pid
  pid="$(cat "$PID_FILE")"
  if kill -0 "$pid" 2>/dev/null && grep -q garage "/proc/$pid/cmdline" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    log "stopped (pid $pid)"
  else
    log "pid $pid is not running"
  fi
  rm -f "$PID_FILE"
}

cmd_status() {
  GARAGE="$(find_garage)" || { echo "garage: not installed"; return 1; }
  local pid="-"
  [[ -f "$PID_FILE" ]] && pid="$(cat "$PID_FILE")"
  if [[ -f "$CONF" ]] && answering && s3_answering; then
    echo "garage: running (pid $pid), S3 at http://127.0.0.1:$S3_PORT, state in $DIR"
  else
    echo "garage: not running (state in $DIR)"
    return 1
  fi
}

case "${1:-}" in
  install) cmd_install ;;
  up) cmd_up ;;
  env) cmd_env ;;
  down) cmd_down ;;
  status) cmd_status ;;
  *) echo "usage: $0 install|up|env|down|status" >&2; exit 2 ;;
esac
