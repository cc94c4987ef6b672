#!/usr/bin/env bash
# Robustness: the engine over odd, broken and hostile files, one process per file with a
# timeout, as a worker would resize them (default limits, 1080/720/360 JPEG). Counts every
# outcome: ok, refused (by failure code), crash (panic, signal), hang (timeout). Exits 1 when
# anything crashed or hung.
#   bench/robustness.sh [--quick]      (--quick: no system images, fewer mutations)
# Results per file: bench/out/robustness.txt.
# Sources:
#   - the image files the crates in the cargo registry ship as test data (libheif-rs's HEIF and
#     AVIF samples, libwebp's test WebPs incl. an animation, libjpeg-turbo's, image-rs's ...);
#   - the images installed under /usr/share (icons, wallpapers, documentation);
#   - bench/corpus/ photographs and the engine's committed fixtures;
#   - mutations of the small ones (< 2 MB): cut at 12 points, 12 single-byte corruptions and
#     3 multi-byte ones each, deterministic (seeded by file name).
set -euo pipefail
cd "$(dirname "$0")/.."
quick=${1:-}
timeout_s=${ROBUST_TIMEOUT:-30}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
cargo build -q --release -p tirage-engine --example robust
bin=$CARGO_TARGET_DIR/release/examples/robust

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
list=$work/files

image_find() { # image_find <dir>...: image files by extension, sorted
  find "$@" -type f \( -iname '*.jpg' -o -iname '*.jpeg' -o -iname '*.png' -o -iname '*.webp' \
    -o -iname '*.gif' -o -iname '*.heic' -o -iname '*.heif' -o -iname '*.avif' \) 2>/dev/null |
    LC_ALL=C sort
}
{
  image_find "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/
  image_find engine/tests/fixtures bench/corpus
} >"$work/seeds"
cp "$work/seeds" "$list"
[[ $quick == --quick ]] || image_find /usr/share >>"$list"

# Mutations, written next to each other under $work/mutants.
mkdir -p "$work/mutants"
python3 - "$work/seeds" "$work/mutants" "$quick" <<'EOF'
import hashlib, os, random, sys
seeds, out, quick = sys.argv[1], sys.argv[2], sys.argv[3] == "--quick"
for n, path in enumerate(open(seeds).read().split("\n")):
    if not path or os.path.getsize(path) > 2 << 20:
        continue
    data = open(path, "rb").read()
    rnd = random.Random(hashlib.sha256(path.encode()).digest())
    stem = f"{n:04d}-{os.path.basename(path)}"
    cuts = [0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.75, 0.9, 0.99] + [rnd.random()]
    for c in cuts[:4] if quick else cuts:
        open(f"{out}/{stem}.cut{int(c * 1000)}", "wb").write(data[: int(len(data) * c)])
    for i in range(4 if quick else 12):
        b = bytearray(data)
        at = rnd.randrange(len(b))
        b[at] = rnd.choice([0x00, 0xFF, b[at] ^ 0x80, rnd.randrange(256)])
        open(f"{out}/{stem}.flip{i}", "wb").write(bytes(b))
    for i in range(3):
        b = bytearray(data)
        for _ in range(16):
            b[rnd.randrange(len(b))] = rnd.randrange(256)
        open(f"{out}/{stem}.noise{i}", "wb").write(bytes(b))
EOF
find "$work/mutants" -type f | LC_ALL=C sort >>"$list"

# One process per file, two at a time; one line per file: <outcome> <detail> <path>, kept in
# bench/out/robustness.txt.
export bin timeout_s
xargs -d '\n' -P 2 -n 1 sh -c '
  out=$(timeout -k 5 "$timeout_s" "$bin" "$0" 2>/dev/null); rc=$?
  case $rc in
    0) echo "ok - $0" ;;
    3) echo "refused ${out#refused } $0" ;;
    124|137) echo "hang timeout $0" ;;
    101) echo "crash panic $0" ;;
    *) echo "crash exit=$rc $0" ;;
  esac' <"$list" >"$work/results"
mkdir -p bench/out
cp "$work/results" bench/out/robustness.txt

total=$(wc -l <"$work/results")
count() { grep -c "^$1 " "$work/results" || true; }
echo "files: $total (sources $(wc -l <"$work/seeds") seeds, $(find "$work/mutants" -type f | wc -l) mutants)"
echo "ok: $(count ok)  refused: $(count refused)  crash: $(count crash)  hang: $(count hang)"
echo "refusals by code:"
awk '$1 == "refused" { print $2 }' "$work/results" | sort | uniq -c | sort -rn
grep -E '^(crash|hang) ' "$work/results" || true
bad=$(grep -cE '^(crash|hang) ' "$work/results" || true)
((bad == 0))
