#!/usr/bin/env bash
# Builds bench/corpus/: real photographs from two Debian wallpaper packages (mate-backgrounds'
# "nature" photos and a bird photo from lomiri-wallpapers-20.04), cropped/scaled to 1600p-2160p
# (short side) and re-encoded as JPEG q92 4:2:0, like a phone camera's output. Downloads the
# .debs with `apt-get download` and unpacks them with `dpkg -x`: nothing is installed.
# Uses the real ImageMagick (/usr/bin/convert-im6.q16), never a stand-in on PATH.
set -euo pipefail
cd "$(dirname "$0")"
IM=/usr/bin/convert-im6.q16
[[ -x $IM ]] || IM=/usr/bin/convert
out=corpus
cache=.cache
mkdir -p "$out" "$cache"
if [[ ! -d $cache/x/usr/share/backgrounds/mate ]]; then
  (cd "$cache" && apt-get download mate-backgrounds lomiri-wallpapers-20.04 >/dev/null \
    && for d in *.deb; do dpkg -x "$d" x; done)
fi
src=$cache/x/usr/share/backgrounds
enc=(-strip -quality 92 -sampling-factor 2x2 -interlace none)

# name, source, ImageMagick geometry operations.
make() { # make <name> <source> <ops...>
  local name=$1 from=$2; shift 2
  [[ -s $out/$name.jpg ]] || "$IM" "$from" "$@" "${enc[@]}" "$out/$name.jpg"
}
for p in Aqua Garden LadyBird TwoWings YellowFlower; do
  make "$p" "$src/mate/nature/$p.jpg"                        # 2560x1600 as shot
done
make Wood        "$src/mate/nature/Wood.jpg"                 # 2560x1920
make Wood_tall   "$src/mate/nature/Wood.jpg" -crop 1600x1920+480+0 +repage
make Garden_tall "$src/mate/nature/Garden.jpg" -crop 1600x1600+300+0 +repage -rotate 90 \
  -crop 1600x1600+0+0 +repage                                # square 1600
k=$src/Kleiber_by_Lukas_Baubkus.jpg                          # 6028x3391 bird photo
make Kleiber_4k     "$k" -resize 3840x2160!                  # 3840x2160
make Kleiber_crop   "$k" -crop 3240x2160+1400+600 +repage    # 1:1 pixels, 3240x2160
make Kleiber_tall   "$k" -crop 2160x3240+1800+100 +repage    # portrait 2160x3240
make Kleiber_2880   "$k" -resize 2880x1620! -crop 2880x1620+0+0 +repage   # 1620p
ls -1 "$out" | wc -l | xargs echo "corpus photos:"
/usr/bin/identify-im6.q16 -format "%f %wx%h\n" "$out"/*.jpg 2>/dev/null || true
