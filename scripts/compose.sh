#!/usr/bin/env bash
# docker-compose.yml, for real, on a machine with no Docker engine and no image registry:
# podman (Debian's, as root) and podman-compose run the SAME compose file, with an override
# (deploy/podman/compose.local.yml) that only swaps the images for local ones built here.
#
#   scripts/compose.sh secrets  write .env (git-ignored) with a random value for each secret
#                         docker-compose.yml requires, the first time; then only the missing
#                         ones (`up` does it too; `docker compose up` needs it done first)
#   scripts/compose.sh up [--scale SERVICE=N]...
#                         tools + images, then the compose project up; returns once every
#                         service runs and is healthy (nginx on 127.0.0.1:$TIRAGE_PORT, 8080).
#                         Fails first, naming the port and its variable, when a port it must
#                         publish is taken (say 3900 by the test suite's own Garage)
#   scripts/compose.sh down   remove the project's containers, networks and volumes (images stay)
#   scripts/compose.sh test   the end-to-end test (tests/tests/compose.rs): up, photos through
#                         nginx, containers crashed and restarted, --scale worker=3, down
#   scripts/compose.sh tools  install podman, runc, netavark, aardvark-dns, iptables (netavark's
#                         firewall driver; only recommended, so not pulled in), debootstrap,
#                         catatonit (the pause process of `podman kube play`'s pods; apt)
#                         and podman-compose (pinned, in a venv); only what is missing
#   scripts/compose.sh images build the local images: the Debian base once (debootstrap, then
#                         cached), the others with podman's layer cache
#   scripts/compose.sh prepare  tools, the base and the images that need no binary (Redis,
#                         RabbitMQ, nginx, Prometheus): what scripts/test.sh overlaps with its build
#   scripts/compose.sh ps | logs SERVICE | compose ARGS...   look inside; podman-compose as-is
#
# The images (all FROM a Debian bookworm minbase made with debootstrap, since nothing can be
# pulled): Redis, RabbitMQ, nginx and Prometheus from Debian's packages (deploy/podman/*.Containerfile,
# keeping the official images' contracts the compose file relies on); Garage from the binary
# `scripts/garage.sh install` builds; garage-init from deploy/docker/garage-init.Dockerfile as
# it is; tirage-api and tirage-worker from deploy/docker/Dockerfile's runtime stages as they
# are, with the host-built binaries in place of the cargo-chef build stages (no Rust toolchain
# can be fetched into a container here). The base is also tagged debian:bookworm-slim and the
# Garage image dxflrs/garage:<version>, so the production Dockerfiles' FROM lines resolve.
#
# Podman 4.3 without systemd neither runs healthchecks nor (before 4.6) lets podman-compose
# wait for service_healthy: deploy/podman/orchestrate.py starts the services in depends_on
# order with their conditions, and a background loop of it runs the healthchecks.
#
# Environment (all optional):
#   TIRAGE_PORT=8080              nginx's published port (the compose file's own variable)
#   TIRAGE_S3_PORT=3900           Garage's published S3 port (presigned URLs name it)
#   TIRAGE_S3_PUBLIC_ENDPOINT     default http://127.0.0.1:$TIRAGE_S3_PORT
#   TIRAGE_PROMETHEUS_PORT=9090   Prometheus's published port (its UI and API)
#   TIRAGE_BIND_ADDRESS=127.0.0.1 the host address they are published on
#   TIRAGE_REDIS_MAXMEMORY=512mb  Redis's memory bound (it refuses writes past it, never evicts)
#   COMPOSE_PROJECT_NAME=tirage   the project (containers, network and volumes carry it)
#   TIRAGE_BUILD_PROFILE=release  or debug: which binaries go into the images
#   TIRAGE_SKIP_BUILD=1           use the binaries already built instead of `cargo build`
#   TIRAGE_WORKER_BIN             a test's worker binary, put in the local worker image in
#                                 place of tirage-worker (never built here): the end-to-end
#                                 test's tirage-worker-slowed (tests/src/bin/), every resize
#                                 first sleeping TIRAGE_TEST_JOB_DELAY_MS, which the image then
#                                 sets when given
#   TIRAGE_COMPOSE_UP_TIMEOUT=300 seconds `up` waits for every service
#   TIRAGE_CALLBACK_SECRET, TIRAGE_S3_ACCESS_KEY, TIRAGE_S3_SECRET_KEY, TIRAGE_AMQP_PASSWORD,
#   TIRAGE_REDIS_PASSWORD, TIRAGE_GARAGE_RPC_SECRET
#                                 the secrets; the environment's win over .env's (the same
#                                 rule as compose's own), which `secrets` generates
#   TIRAGE_COMPOSE_STATE          folder for build contexts and the health loop's pid and log,
#                                 default ${TMPDIR:-/tmp}/tirage-compose-$COMPOSE_PROJECT_NAME
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$REPO/deploy/podman/containers.conf}"
PROJECT="${COMPOSE_PROJECT_NAME:-tirage}"
STATE="${TIRAGE_COMPOSE_STATE:-${TMPDIR:-/tmp}/tirage-compose-$PROJECT}"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/tirage/compose"
VENV="$CACHE/venv"
PODMAN_COMPOSE_VERSION=1.6.0
PROFILE="${TIRAGE_BUILD_PROFILE:-release}"
BIN="${CARGO_TARGET_DIR:-$REPO/target}/$PROFILE"
UP_TIMEOUT="${TIRAGE_COMPOSE_UP_TIMEOUT:-300}"
BASE=localhost/tirage-base/debian:bookworm-slim
LOCAL=localhost/tirage-local   # the names deploy/podman/compose.local.yml gives the services

say() { echo "compose: $*" >&2; }
# build NAME PODMAN-BUILD-ARGS...: quiet unless it fails (then its log). --pull=never: a FROM
# that is not a local image fails at once instead of trying a registry.
build() {
  local name="$1" log
  shift
  log="$(mktemp -t "tirage-build-$name.XXXXXX")"
  podman build --pull=never --label org.tirage.local=1 "$@" >"$log" 2>&1 ||
    { cat "$log" >&2; rm -f "$log"; die "podman build $name"; }
  rm -f "$log"
}
die() { echo "compose: FAILED: $*" >&2; exit 1; }
elapsed() { echo "$((SECONDS - $1)) s"; }
[[ "$PROFILE" == release || "$PROFILE" == debug ]] || die "TIRAGE_BUILD_PROFILE is release or debug"

compose() {
  "$VENV/bin/podman-compose" --in-pod false -p "$PROJECT" \
    -f docker-compose.yml -f deploy/podman/compose.local.yml "$@"
}

# The compose file holds no credential and refuses to start without them: .env next to it
# (git-ignored, mode 600; docker compose and podman-compose both read it) gets a random value
# for each one it lacks. It is never rewritten: RabbitMQ's user and Garage's key live on in
# the project's volumes, so the same values must come back on the next `up`.
ENV_FILE="$REPO/.env"
rand_hex() { # rand_hex BYTES
  openssl rand -hex "$1" 2>/dev/null || od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'
}
secrets() {
  local name value added=()
  if [[ ! -e "$ENV_FILE" ]]; then
    (umask 077 && echo "# docker-compose.yml's secrets, generated by scripts/compose.sh secrets; never commit." >"$ENV_FILE")
  fi
  for name in TIRAGE_S3_ACCESS_KEY TIRAGE_S3_SECRET_KEY TIRAGE_AMQP_PASSWORD TIRAGE_REDIS_PASSWORD \
    TIRAGE_GARAGE_RPC_SECRET TIRAGE_CALLBACK_SECRET; do
    grep -q "^$name=" "$ENV_FILE" && continue
    case "$name" in
      TIRAGE_S3_ACCESS_KEY) value="GK$(rand_hex 12)" ;; # Garage's key id format
      *) value="$(rand_hex 32)" ;;
    esac
    echo "$name=$value" >>"$ENV_FILE"
    added+=("$name")
  done
  ((${#added[@]} == 0)) || say "generated ${added[*]} into $ENV_FILE (git-ignored; keep it)"
}

# Presigned URLs name Garage's published port.
export TIRAGE_S3_PUBLIC_ENDPOINT="${TIRAGE_S3_PUBLIC_ENDPOINT:-http://127.0.0.1:${TIRAGE_S3_PORT:-3900}}"

# Each port the compose file publishes must be free, unless this project's own container of
# that service holds it (a second `up --scale`). Fails naming the port and its variable.
check_port() { # check_port SERVICE VARIABLE DEFAULT
  local service="$1" var="$2" port="${!2:-$3}" addr="${TIRAGE_BIND_ADDRESS:-127.0.0.1}" taken
  [[ -z "$(podman ps -q --filter "label=io.podman.compose.project=$PROJECT" \
    --filter "label=com.docker.compose.service=$service" --filter status=running 2>/dev/null)" ]] ||
    return 0
  taken="$(ss -Hltnp "sport = :$port" 2>/dev/null | awk -v a="$addr" '
    { host = $4; sub(/:[0-9]+$/, "", host) }
    a == "0.0.0.0" || host == a || host == "0.0.0.0" || host == "*" || host == "[::]" { print $4, $6 }')"
  [[ -z "$taken" ]] ||
    die "port $port on $addr, which $service publishes, is taken ($(head -n1 <<<"$taken")): set $var to a free port"
}

# --- tools -----------------------------------------------------------------------------------
tools() {
  local need=() probe pkg
  while read -r probe pkg; do
    if [[ "$probe" == /* ]]; then [[ -e "$probe" ]] || need+=("$pkg")
    else command -v "$probe" >/dev/null 2>&1 || need+=("$pkg"); fi
  done <<'EOF'
podman podman
runc runc
/usr/lib/podman/netavark netavark
/usr/lib/podman/aardvark-dns aardvark-dns
/usr/sbin/iptables iptables
debootstrap debootstrap
catatonit catatonit
EOF
  if ((${#need[@]})); then
    [[ "$(id -u)" == 0 ]] || die "podman stack missing (${need[*]}) and not root to apt-get it"
    say "apt-get install ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
  command -v podman >/dev/null || die "podman is not installed and could not be installed"
  if [[ "$("$VENV/bin/podman-compose" --version 2>/dev/null | head -1)" != *" $PODMAN_COMPOSE_VERSION" ]]; then
    say "podman-compose $PODMAN_COMPOSE_VERSION into $VENV"
    mkdir -p "$CACHE"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check "podman-compose==$PODMAN_COMPOSE_VERSION"
  fi
}

# --- images ----------------------------------------------------------------------------------
# A Debian bookworm minbase, trimmed and configured like the official slim image; built once.
base_image() {
  if podman image exists "$BASE"; then return; fi
  local t0=$SECONDS root
  say "building the Debian base image with debootstrap (once; ~1-2 minutes)"
  root="$(mktemp -d /var/tmp/tirage-debootstrap.XXXXXX)"
  # shellcheck disable=SC2064  # expand now: the folder of this call
  trap "rm -rf '$root'" RETURN
  debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian >"$root.log" 2>&1 ||
    { cat "$root.log" >&2; die "debootstrap failed"; }
  rm -f "$root.log"
  cat >"$root/etc/apt/sources.list" <<'EOF'
deb http://deb.debian.org/debian bookworm main
deb http://deb.debian.org/debian bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
EOF
  # What debian:bookworm-slim does: no docs, man pages or translations from later installs,
  # no package caches left in layers, no service started by a package's install script.
  cat >"$root/etc/dpkg/dpkg.cfg.d/slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
EOF
  cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
  chmod 0755 "$root/usr/sbin/policy-rc.d"
  rm -rf "$root"/var/cache/apt/* "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* \
    "$root"/usr/share/man/* "$root"/usr/share/locale/*
  tar --numeric-owner -C "$root" -c . |
    podman import -q --change 'CMD ["bash"]' --change 'LABEL org.tirage.local=1' - "$BASE" >/dev/null
  say "base image $BASE built in $(elapsed "$t0")"
}

# The binary `scripts/garage.sh install` builds (the same lookup as scripts/garage.sh).
garage_binary() {
  if command -v garage >/dev/null 2>&1; then command -v garage
  elif [[ -x "$HOME/.cargo/bin/garage" ]]; then echo "$HOME/.cargo/bin/garage"
  else return 1; fi
}

# tirage-api and tirage-worker: deploy/docker/Dockerfile from its runtime stage on, verbatim,
# except that the binaries come from the build context instead of the cargo-chef stages.
app_containerfile() {
  awk '/^FROM /{from=1} !from && /^ARG /{print} / AS runtime$/{p=1} p{print}' deploy/docker/Dockerfile |
    sed 's#^COPY --from=builder /out/#COPY out/#'
}

# What needs neither Garage nor Tirage's binaries: scripts/test.sh runs this while it builds.
prepare() {
  tools
  local t0=$SECONDS s
  base_image
  podman tag "$BASE" docker.io/library/debian:bookworm-slim
  for s in redis rabbitmq nginx prometheus; do
    build "$s" -f "deploy/podman/$s.Containerfile" -t "$LOCAL/$s:dev" deploy/podman
  done
  # The runtime stage the api and worker images share (its layers are their build cache).
  local ctx
  ctx="$(mktemp -d -t tirage-runtime-context.XXXXXX)"
  cp -r config "$ctx/config"
  app_containerfile >"$ctx/Containerfile"
  build runtime --target runtime -f "$ctx/Containerfile" -t "$LOCAL/runtime:dev" "$ctx"
  rm -rf "$ctx"
  say "base and service images ready in $(elapsed "$t0")"
}

images() {
  prepare
  local t0=$SECONDS s garage garage_tag ctx="$STATE/context"
  rm -rf "$ctx"
  mkdir -p "$ctx/garage" "$ctx/app/out"
  garage="$(garage_binary)" || scripts/garage.sh install >&2
  garage="$(garage_binary)" || die "no garage binary (scripts/garage.sh install failed)"
  garage_tag="$(sed -nE 's#^ *image: *dxflrs/garage:(\S+).*#\1#p' docker-compose.yml)"
  [[ -n "$garage_tag" ]] || die "docker-compose.yml names no dxflrs/garage image"
  [[ "$("$garage" --version 2>/dev/null)" == *"${garage_tag#v}"* ]] ||
    die "$garage is $("$garage" --version 2>/dev/null | head -1), docker-compose.yml wants $garage_tag"
  ln -f "$garage" "$ctx/garage/garage" 2>/dev/null || cp "$garage" "$ctx/garage/garage"
  build garage -f deploy/podman/garage.Containerfile -t "$LOCAL/garage:dev" "$ctx/garage"
  podman tag "$LOCAL/garage:dev" "docker.io/dxflrs/garage:$garage_tag"
  build garage-init -f deploy/docker/garage-init.Dockerfile --build-arg "GARAGE_VERSION=$garage_tag" \
    -t "$LOCAL/garage-init:dev" .

  if [[ "${TIRAGE_SKIP_BUILD:-0}" != 1 ]]; then
    local release=(--release)
    [[ "$PROFILE" == release ]] || release=()
    say "building the $PROFILE binaries"
    cargo build "${release[@]}" --bin tirage-api --bin tirage-worker --features tirage-worker/services >&2
  fi
  local b
  for b in tirage-api tirage-worker; do
    [[ -x "$BIN/$b" ]] || die "no $BIN/$b (build it, or unset TIRAGE_SKIP_BUILD)"
    ln -f "$BIN/$b" "$ctx/app/out/$b" 2>/dev/null || cp "$BIN/$b" "$ctx/app/out/$b"
  done
  cp -r config "$ctx/app/config"
  app_containerfile >"$ctx/app/Containerfile"
  ! grep -q -- '--from=' "$ctx/app/Containerfile" || die "deploy/docker/Dockerfile: a runtime stage copies from a build stage other than /out"
  for s in api worker; do
    build "$s" --target "$s" -f "$ctx/app/Containerfile" -t "$LOCAL/$s:dev" "$ctx/app"
  done
  # A test's worker binary over that image: the same image with its binary swapped (and the
  # test's job delay in its environment), under the same name.
  if [[ -n "${TIRAGE_WORKER_BIN:-}" ]]; then
    [[ -x "$TIRAGE_WORKER_BIN" ]] || die "TIRAGE_WORKER_BIN: no executable $TIRAGE_WORKER_BIN"
    mkdir -p "$ctx/test-worker"
    ln -f "$TIRAGE_WORKER_BIN" "$ctx/test-worker/tirage-worker" 2>/dev/null ||
      cp "$TIRAGE_WORKER_BIN" "$ctx/test-worker/tirage-worker"
    {
      echo "FROM $LOCAL/worker:dev"
      echo "COPY tirage-worker /usr/local/bin/tirage-worker"
      if [[ -n "${TIRAGE_TEST_JOB_DELAY_MS:-}" ]]; then
        echo "ENV TIRAGE_TEST_JOB_DELAY_MS=$TIRAGE_TEST_JOB_DELAY_MS"
      fi
    } >"$ctx/test-worker/Containerfile"
    build test-worker -f "$ctx/test-worker/Containerfile" -t "$LOCAL/worker:dev" "$ctx/test-worker"
    say "worker image runs $TIRAGE_WORKER_BIN"
  fi
  rm -rf "$ctx"
  # Images replaced by these builds; the layers of the current ones stay as the cache.
  podman image prune -f --filter label=org.tirage.local=1 >/dev/null
  say "garage, garage-init, api and worker images ready in $(elapsed "$t0")"
}

# --- the health loop ---------------------------------------------------------------------------
health_pid() {
  local pid
  pid="$(cat "$STATE/health.pid" 2>/dev/null)" || return 1
  # Only while the pid still is this project's loop (never a recycled pid).
  grep -qa "orchestrate.py.health.$PROJECT" "/proc/$pid/cmdline" 2>/dev/null || return 1
  echo "$pid"
}

health_start() {
  health_pid >/dev/null && return
  mkdir -p "$STATE"
  setsid nohup "$VENV/bin/python" deploy/podman/orchestrate.py health "$PROJECT" \
    >"$STATE/health.log" 2>&1 </dev/null &
  echo $! >"$STATE/health.pid"
}

health_stop() {
  local pid
  if pid="$(health_pid)"; then kill "$pid" 2>/dev/null || true; fi
  rm -f "$STATE/health.pid"
}

# --- up / down ---------------------------------------------------------------------------------
up() {
  secrets
  check_port nginx TIRAGE_PORT 8080
  check_port garage TIRAGE_S3_PORT 3900
  check_port prometheus TIRAGE_PROMETHEUS_PORT 9090
  images
  local t0=$SECONDS
  mkdir -p "$STATE"
  # It holds the merged compose file, secrets included.
  chmod 700 "$STATE"
  say "creating project $PROJECT $*"
  # --no-deps: no podman --requires links. With them, podman would refuse to restart a crashed
  # api or worker (restart policy) because garage-init, a dependency, has exited.
  compose up -d --no-start --no-deps --no-build "$@" >"$STATE/create.log" 2>&1 ||
    { cat "$STATE/create.log" >&2; die "podman-compose up --no-start"; }
  health_start
  compose config >"$STATE/config.yml" 2>/dev/null || die "podman-compose config"
  "$VENV/bin/python" deploy/podman/orchestrate.py start "$PROJECT" "$STATE/config.yml" "$UP_TIMEOUT" ||
    die "the project did not come up (scripts/compose.sh logs SERVICE; scripts/compose.sh down removes it)"
  say "up in $(elapsed "$t0"): nginx on http://127.0.0.1:${TIRAGE_PORT:-8080}"
}

project_leftovers() {
  local f="label=io.podman.compose.project=$PROJECT"
  podman ps -a -q --filter "$f"
  podman volume ls -q --filter "$f"
  podman network ls -q --filter "$f"
}

down() {
  local t0=$SECONDS
  if [[ -x "$VENV/bin/podman-compose" ]] && command -v podman >/dev/null; then
    secrets
    compose down -v --remove-orphans >"$STATE.down.log" 2>&1 || { cat "$STATE.down.log" >&2; }
    # Whatever podman-compose left (a network, a volume still referenced): remove by label.
    local f="label=io.podman.compose.project=$PROJECT" ids
    mapfile -t ids < <(podman ps -a -q --filter "$f")
    ((${#ids[@]} == 0)) || podman rm -f -t 10 "${ids[@]}" >/dev/null
    mapfile -t ids < <(podman volume ls -q --filter "$f")
    ((${#ids[@]} == 0)) || podman volume rm -f "${ids[@]}" >/dev/null
    mapfile -t ids < <(podman network ls -q --filter "$f")
    ((${#ids[@]} == 0)) || podman network rm -f "${ids[@]}" >/dev/null
    rm -f "$STATE.down.log"
  fi
  health_stop
  rm -rf "$STATE"
  if command -v podman >/dev/null && [[ -n "$(project_leftovers)" ]]; then
    die "project $PROJECT left: $(project_leftovers | tr '\n' ' ')"
  fi
  say "down in $(elapsed "$t0"): no container, network or volume of $PROJECT left"
}

case "${1:-}" in
  tools) tools ;;
  prepare) prepare ;;
  images) images ;;
  up) shift; up "$@" ;;
  down) down ;;
  ps) tools; podman ps -a --filter "label=io.podman.compose.project=$PROJECT" ;;
  secrets) secrets ;;
  logs) tools; secrets; compose logs "${@:2}" ;;
  compose) tools; secrets; compose "${@:2}" ;;
  test) shift; exec cargo test -p tirage-e2e --all-features --test compose "$@" ;;
  *) sed -n '2,/^set -euo/p' "$0" | sed '$d' >&2; exit 2 ;;
esac
