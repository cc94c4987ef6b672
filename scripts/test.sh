#!/usr/bin/env bash
# The whole test suite, on a fresh machine or a used one: installs what is missing, starts
# the services the tests talk to (Redis, RabbitMQ, Garage) when they are not running, then
# runs every test of the workspace against them. This is README's test command and exactly
# what CI (.ci/run) runs.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
# On a fresh machine Garage builds from source (~15 min): it builds while the workspace does,
# filling the cores the workspace build leaves idle, and the tests wait for it below.
garage_log="$(mktemp -t tirage-garage-install.XXXXXX.log)"
scripts/garage.sh install >"$garage_log" 2>&1 &
garage_install=$!
# The compose test (tests/tests/compose.rs) runs docker-compose.yml in podman containers: the
# podman tools, the Debian base image and the images that need no binary are made while the
# workspace builds too (once; cached on the machine afterwards).
compose_log="$(mktemp -t tirage-compose-prepare.XXXXXX.log)"
scripts/compose.sh prepare >"$compose_log" 2>&1 &
compose_prepare=$!
export TIRAGE_TEST_REDIS_URL="${TIRAGE_TEST_REDIS_URL:-redis://127.0.0.1:6379}"
export TIRAGE_TEST_AMQP_URL="${TIRAGE_TEST_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"
# The end-to-end test (tests/) runs deploy/local/cluster.sh, which builds release binaries by
# default. The suite runs the debug `tirage-api` and `tirage-worker` that its own build below
# makes (the api and worker tests run them too), with the features the whole workspace
# unifies: building them again with cluster.sh's narrower features would recompile much of
# the dependency graph. Dependencies are optimised in every profile.
export TIRAGE_BUILD_PROFILE="${TIRAGE_BUILD_PROFILE:-debug}"
export TIRAGE_SKIP_BUILD="${TIRAGE_SKIP_BUILD:-1}"
# A clean clone builds once: incremental artefacts would only double the target's size on CI.
if [[ -n "${CI:-}" ]]; then export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"; fi

scripts/validate-deploy.sh   # deploy/, docker-compose.yml, k8s/: static checks (no Docker, no cluster)
scripts/check-architecture.py --self-test && scripts/check-architecture.py   # crate edges and module cycles vs docs/ARCHITECTURE.md
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --all-features -- -D warnings
cargo test --workspace --all-features --no-run

if ! wait "$garage_install"; then
  cat "$garage_log" >&2
  echo "test.sh: installing Garage failed (log above)" >&2
  exit 1
fi
if ! wait "$compose_prepare"; then
  cat "$compose_log" >&2
  echo "test.sh: preparing the compose images failed (log above)" >&2
  exit 1
fi
scripts/services.sh up
eval "$(scripts/garage.sh env)"
cargo test --workspace --all-features "$@"
