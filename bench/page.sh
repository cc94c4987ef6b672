#!/usr/bin/env bash
# The web page against the CLI (docs/BENCHMARKS.md, "## Web page"): 200 4K photos through
# `tirage standalone` (release), first dropped on the page in headless Chromium and timed
# from pressing "Resize" to the gallery (tests/browser/page.mjs --bench), then sent with
# `tirage upload` to a fresh standalone on the same photos, timed to its exit. Alternating
# rounds; each round gets a fresh server.
#
#   bench/page.sh [rounds] [photos]      (defaults 3 and 200)
#
# Needs what the browser tests need (node, /usr/bin/chromium, tests/browser/node_modules:
# scripts/install-deps.sh) and ImageMagick for the 4K set, made from bench/corpus
# (bench/build-corpus.sh) into bench/corpus-4k/. TIRAGE_SKIP_BUILD=1 uses the release
# `tirage` already built. Writes bench/out/page/summary.txt.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROUNDS="${1:-3}"
COUNT="${2:-200}"
OUT="$REPO/bench/out/page"
SET="$REPO/bench/corpus-4k"
BIN="${CARGO_TARGET_DIR:-$REPO/target}/release/tirage"
IM=/usr/bin/convert-im6.q16
[[ -x $IM ]] || IM=/usr/bin/convert

die() { echo "bench/page: $*" >&2; exit 1; }

compgen -G "$REPO/bench/corpus/*.jpg" >/dev/null || "$REPO/bench/build-corpus.sh"
# 4K (3840x2160, or 2160x3840 for portrait sources), JPEG q92 4:2:0 like a phone's output.
mkdir -p "$SET"
for src in "$REPO"/bench/corpus/*.jpg; do
  name="$(basename "$src" .jpg)"
  [[ -s "$SET/$name.jpg" ]] && continue
  geometry=3840x2160
  read -r w h < <(/usr/bin/identify-im6.q16 -format '%w %h\n' "$src" 2>/dev/null || identify -format '%w %h\n' "$src")
  ((h > w)) && geometry=2160x3840
  "$IM" "$src" -resize "$geometry^" -gravity center -extent "$geometry" -strip \
    -quality 92 -sampling-factor 2x2 "$SET/$name.jpg"
done

cd "$REPO"
[[ "${TIRAGE_SKIP_BUILD:-0}" == 1 ]] || cargo build --release -p tirage-cli --bin tirage
[[ -x $BIN ]] || die "missing $BIN"
[[ -d tests/browser/node_modules/playwright-core ]] || (cd tests/browser && npm ci --no-audit --no-fund)
mkdir -p "$OUT"
work="$(mktemp -d -t tirage-bench-page.XXXXXX)"
server=""
stop_server() {
  [[ -n "$server" ]] && kill -TERM "$server" 2>/dev/null && wait "$server" 2>/dev/null
  server=""
}
trap 'stop_server; rm -rf "$work"' EXIT

start_server() { # prints the base URL
  rm -rf "$work/data"
  "$BIN" standalone --port 0 --data "$work/data" >"$work/server.out" 2>"$work/server.err" &
  server=$!
  for _ in $(seq 1 300); do
    url="$(grep -m1 '^http://' "$work/server.out" || true)"
    [[ -n "$url" ]] && { echo "$url"; return 0; }
    sleep 0.1
  done
  die "tirage standalone printed no URL; see $work/server.err"
}

# The same COUNT photos for both: the 4K set repeated under distinct names.
mkdir -p "$work/photos"
mapfile -t sources < <(ls "$SET"/*.jpg)
for ((i = 0; i < COUNT; i++)); do
  cp "${sources[i % ${#sources[@]}]}" "$work/photos/$(printf 'p%03d' "$i")-$(basename "${sources[i % ${#sources[@]}]}")"
done

page=() cli=()
for ((r = 1; r <= ROUNDS; r++)); do
  url="$(start_server)"
  secs="$(node tests/browser/page.mjs --base "$url" --photos "$work/photos" --count "$COUNT" \
    --bench --timeout-secs 1800 | sed -n 's/.*"seconds":\([0-9.]*\).*/\1/p')"
  [[ -n "$secs" ]] || die "the page run failed (round $r)"
  page+=("$secs")
  stop_server

  url="$(start_server)"
  rm -rf "$work/out"
  start=$(date +%s%N)
  "$BIN" upload "$work/photos" --server "$url" --out "$work/out" --concurrency 4 >/dev/null 2>"$work/upload.err" ||
    die "tirage upload failed (round $r); see $work/upload.err"
  cli+=("$(awk -v ns="$(($(date +%s%N) - start))" 'BEGIN { printf "%.1f", ns / 1e9 }')")
  stop_server
  echo "round $r: page ${page[-1]} s, tirage upload ${cli[-1]} s" >&2
done

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
{
  echo "# $(date -u +%FT%TZ) $(uname -srm), $(nproc) cores, $(/usr/bin/chromium --version 2>/dev/null)"
  echo "# bench/page.sh $ROUNDS $COUNT: $COUNT photos of 3840x2160 JPEG q92 -> 1080/720/360 JPEG q85"
  echo "page (Resize pressed -> gallery shown), s: ${page[*]} (median $(median "${page[@]}"))"
  echo "tirage upload --concurrency 4 (start -> exit, renditions written), s: ${cli[*]} (median $(median "${cli[@]}"))"
} | tee "$OUT/summary.txt"
