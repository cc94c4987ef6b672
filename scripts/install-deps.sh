#!/usr/bin/env bash
# Installs what a fresh machine lacks to build, test and benchmark Tirage. Idempotent: it
# installs only what is missing, so it is cheap on a machine that already has everything.
#   scripts/install-deps.sh          build + test dependencies
#   scripts/install-deps.sh --bench  also the peers the benchmarks compare against
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: name of a command or file that proves it is there, then the package.
need_debs=()
want() { # want <probe> <package>
  if [[ "$1" == /* ]]; then [[ -e "$1" ]] || need_debs+=("$2")
  else command -v "$1" >/dev/null 2>&1 || need_debs+=("$2"); fi
}
want cmake cmake                  # libjpeg-turbo 3 is built from source (turbojpeg-sys)
want nasm nasm                    # ... with its SIMD code
want pkg-config pkg-config
want nginx nginx                  # the reverse proxy of the local cluster and its tests
want /usr/include/lcms2.h liblcms2-dev   # ICC profile conversion to sRGB
want /usr/share/backgrounds/gnome gnome-backgrounds   # real photographs for tests and benchmarks
want /usr/share/desktop-base desktop-base
want /usr/bin/convert-im6.q16 imagemagick   # bench/build-corpus.sh: the end-to-end test's photos
# The schema fuzzer's venv (below) needs Python's venv module.
python3 -c 'import ensurepip, venv' 2>/dev/null || need_debs+=(python3-venv)
if [[ "${1:-}" == "--bench" ]]; then
  want vips libvips-tools
  want /usr/include/vips/vips.h libvips-dev
  want wrk wrk
  want hyperfine hyperfine
fi

if ((${#need_debs[@]})); then
  echo "install-deps: apt-get install ${need_debs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_debs[@]}" >/dev/null
fi

# The schema fuzzer run by api/tests/schema_fuzz.rs: schemathesis from PyPI, pinned, in a venv
# of the project's own (.venv-tools/, git-ignored) so the system Python stays untouched.
SCHEMATHESIS_VERSION=4.32.5
if [[ "$(.venv-tools/bin/schemathesis --version 2>/dev/null)" != *" $SCHEMATHESIS_VERSION" ]]; then
  echo "install-deps: schemathesis $SCHEMATHESIS_VERSION into .venv-tools/"
  python3 -m venv .venv-tools
  .venv-tools/bin/pip install -q --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi
