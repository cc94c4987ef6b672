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
want promtool prometheus          # promtool: the alert rules' checks and unit tests (validate-deploy.sh)
want /usr/include/lcms2.h liblcms2-dev   # ICC profile conversion to sRGB
want /usr/lib/x86_64-linux-gnu/pkgconfig/libheif.pc libheif-dev   # HEIC/AVIF input (libheif1 brings libde265, dav1d)
want /usr/share/backgrounds/gnome gnome-backgrounds   # real photographs for tests and benchmarks
want /usr/share/desktop-base desktop-base
want /usr/bin/convert-im6.q16 imagemagick   # bench/build-corpus.sh: the end-to-end test's photos
want redis-server redis-server    # the services (scripts/services.sh); the fault suite
want redis-cli redis-tools        # (tests/tests/faults.rs) also runs its own Redis and
want rabbitmq-server rabbitmq-server   # RabbitMQ node, which it stops and kills
want unzip unzip                  # the archive tests read Tirage's ZIPs with Info-ZIP too
want /usr/bin/chromium chromium   # the web page's tests: headless Chromium (tests/browser/)
want node nodejs                  # ... driven by playwright-core under node
want npm npm
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
  # The prometheus package is here for promtool only: its daemon (which apt may have started
  # and enabled) must not keep running or start with the machine.
  if [[ " ${need_debs[*]} " == *" prometheus "* ]]; then
    if command -v systemctl >/dev/null 2>&1; then
      systemctl disable --now prometheus.service >/dev/null 2>&1 || true
    fi
    if [[ -x /etc/init.d/prometheus ]]; then
      /etc/init.d/prometheus stop >/dev/null 2>&1 || true
      update-rc.d prometheus disable >/dev/null 2>&1 || true
    fi
  fi
fi

# The schema fuzzer run by api/tests/schema_fuzz.rs: schemathesis from PyPI, pinned, in a venv
# of the project's own (.venv-tools/, git-ignored) so the system Python stays untouched.
SCHEMATHESIS_VERSION=4.32.5
if [[ "$(.venv-tools/bin/schemathesis --version 2>/dev/null)" != *" $SCHEMATHESIS_VERSION" ]]; then
  echo "install-deps: schemathesis $SCHEMATHESIS_VERSION into .venv-tools/"
  python3 -m venv .venv-tools
  .venv-tools/bin/pip install -q --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi
# The engine's independent decoder (engine/tests/independent/): Pillow, with pillow-heif for
# HEIC; also what made engine/tests/fixtures/heif/ (make.py there).
PILLOW_VERSION=12.0.0 PILLOW_HEIF_VERSION=1.1.1
if ! .venv-tools/bin/python -c "import PIL, pillow_heif, sys
sys.exit(PIL.__version__ != '$PILLOW_VERSION' or pillow_heif.__version__ != '$PILLOW_HEIF_VERSION')" 2>/dev/null; then
  echo "install-deps: Pillow $PILLOW_VERSION and pillow-heif $PILLOW_HEIF_VERSION into .venv-tools/"
  [[ -x .venv-tools/bin/python ]] || python3 -m venv .venv-tools
  .venv-tools/bin/pip install -q --disable-pip-version-check \
    "pillow==$PILLOW_VERSION" "pillow-heif==$PILLOW_HEIF_VERSION"
fi

# The generated client's test (cli/tests/generated_client.rs): openapi-python-client from
# PyPI, pinned, in a venv of its own (its pydantic and httpx are not schemathesis' concern).
OPENAPI_PYTHON_CLIENT_VERSION=0.29.1
if [[ "$(.venv-generators/bin/openapi-python-client --version 2>/dev/null)" != *" $OPENAPI_PYTHON_CLIENT_VERSION" ]]; then
  echo "install-deps: openapi-python-client $OPENAPI_PYTHON_CLIENT_VERSION into .venv-generators/"
  python3 -m venv .venv-generators
  .venv-generators/bin/pip install -q --disable-pip-version-check \
    "openapi-python-client==$OPENAPI_PYTHON_CLIENT_VERSION"
fi

# The web page's browser tests (tests/browser/): playwright-core and axe-core from the npm
# registry, exactly as package-lock.json pins them. `npm ls` fails when the installed tree
# differs from package.json, so `npm ci` runs only when something is missing or changed.
if ! npm ls --prefix tests/browser --depth=0 >/dev/null 2>&1; then
  echo "install-deps: npm ci in tests/browser"
  (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
fi
