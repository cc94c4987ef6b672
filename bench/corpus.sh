#!/usr/bin/env bash
# Builds bench/photos/{tune,held}/: the engine benchmark's corpus of real photographs (issue #14),
# 41 files from 39 photographs by a few dozen photographers, out of four Debian bookworm packages:
#   mate-backgrounds          (MATE)     nature/ photos
#   plasma-workspace-wallpapers (KDE)    the photographic wallpapers (largest size of each)
#   lomiri-wallpapers-16.04   (UBports)  the Ubuntu wallpaper contest photos
#   lomiri-wallpapers-20.04   (UBports)  Kleiber (bird), Infinite-Sea (night sky, noisy)
# The rendered/abstract wallpapers of those packages are left out (listed by hand below, after
# looking at every image). Shapes: 4032x3024 phone crops (Dragonfly, Kleiber: 1:1 pixel crops of
# larger photos), a 3024x4032 portrait phone crop (Infinite-Sea), 3840x2160 (Bridge and Kleiber
# scaled, seeding scaled), portraits (Wine 2560x3837, friends 2056x3088), 1024p..3391p as shot.
# Every file is re-encoded by the real ImageMagick as JPEG q92 4:2:0, stripped, as a phone
# writes it. The split is deterministic and by source photograph (all shapes of one photo go to
# the same half): photos sorted by the MD5 of their name, alternately to tune/ and held/.
# The .debs are fetched with `apt-get download` into bench/.cache and unpacked with `dpkg -x`
# (idempotent, nothing installed). Re-running does nothing when every file is there.
#
#   bench/corpus.sh           the engine benchmark's corpus (bench/photos/{tune,held})
#   bench/corpus.sh classes   the quality-by-class corpus (bench/photos/classes/{tune,held},
#                             issue #26): every entry below at its own shape and, when it is
#                             larger, shrunk to a short side of 2160 and of 1440 (Lanczos, aspect
#                             kept, never enlarged), each saved at q92 in 4:2:0, 4:2:2 and 4:4:4.
#                             Its renditions then cover every class of source-to-target ratio
#                             (< 1.5, 1.5-2.5, 2.5-4, >= 4) in every subsampling, with the same
#                             split by source photograph as the engine corpus, plus 1:1 crops at
#                             3840x2160 of the six photographs larger than that.
set -euo pipefail
cd "$(dirname "$0")"
IM=/usr/bin/convert-im6.q16
[[ -x $IM ]] || IM=/usr/bin/convert
out=photos
cache=.cache/corpus
mkdir -p "$out/tune" "$out/held" "$cache"
pkgs=(mate-backgrounds plasma-workspace-wallpapers lomiri-wallpapers-16.04 lomiri-wallpapers-20.04)
x=$cache/x/usr/share
if [[ ! -f $cache/unpacked ]]; then
  (cd "$cache" && apt-get download "${pkgs[@]}" >/dev/null 2>&1 \
    && for d in *.deb; do dpkg -x "$d" x; done && touch unpacked)
fi
mate=$x/backgrounds/mate/nature
bg=$x/backgrounds
kde() { echo "$x/wallpapers/$1/contents/images/2560x1600.jpg"; }

# group (source photo) | output name | source file | ImageMagick operations
entries=(
  "Aqua|mate_Aqua|$mate/Aqua.jpg|"
  "Blinds|mate_Blinds|$mate/Blinds.jpg|"
  "Dune|mate_Dune|$mate/Dune.jpg|"
  "FreshFlower|mate_FreshFlower|$mate/FreshFlower.jpg|"
  "Garden|mate_Garden|$mate/Garden.jpg|"
  "GreenMeadow|mate_GreenMeadow|$mate/GreenMeadow.jpg|"
  "LadyBird|mate_LadyBird|$mate/LadyBird.jpg|"
  "RainDrops|mate_RainDrops|$mate/RainDrops.jpg|"
  "Storm|mate_Storm|$mate/Storm.jpg|"
  "TwoWings|mate_TwoWings|$mate/TwoWings.jpg|"
  "Wood|mate_Wood|$mate/Wood.jpg|"
  "YellowFlower|mate_YellowFlower|$mate/YellowFlower.jpg|"
  "BytheWater|kde_BytheWater|$(kde BytheWater)|"
  "ColdRipple|kde_ColdRipple|$(kde ColdRipple)|"
  "ColorfulCups|kde_ColorfulCups|$(kde ColorfulCups)|"
  "DarkestHour|kde_DarkestHour|$(kde DarkestHour)|"
  "EveningGlow|kde_EveningGlow|$(kde EveningGlow)|"
  "FallenLeaf|kde_FallenLeaf|$(kde FallenLeaf)|"
  "Grey|kde_Grey|$(kde Grey)|"
  "Kite|kde_Kite|$(kde Kite)|"
  "OneStandsOut|kde_OneStandsOut|$(kde OneStandsOut)|"
  "Path|kde_Path|$(kde Path)|"
  "summer_1am|kde_summer_1am|$(kde summer_1am)|"
  "Bridge|lom_Bridge_4k|$bg/Bridge_by_Sander_Klootwijk.jpg|-resize 3840x2160!"
  "Dragonfly|lom_Dragonfly_phone|$bg/Dragonfly_by_Bolly.jpg|-gravity center -crop 4032x3024+0+0 +repage"
  "Picture_0B|lom_Picture_0B|$bg/Picture_0B_by_freespace.jpg|"
  "Picture_1A|lom_Picture_1A|$bg/Picture_1A_by_freespace.jpg|"
  "Wine|lom_Wine_portrait|$bg/Wine_by_Jakkub_Mede.jpg|"
  "aitzgorri|lom_aitzgorri|$bg/aitzgorri_by_Aitzol_Berasategi.jpg|"
  "analogpattern|lom_analogpattern|$bg/analogpattern_by_Peter_Nerlich.jpg|"
  "free|lom_free|$bg/free_by_Peter_Nerlich.jpg|"
  "friends|lom_friends_portrait|$bg/friends_by_Aitzol_Berasategi.jpg|"
  "greentock|lom_greentock|$bg/greentock_by_Peter_Nerlich.jpg|"
  "life|lom_life|$bg/life_by_Aitzol_Berasategi.jpg|"
  "picosdeeuropa|lom_picosdeeuropa|$bg/picosdeeuropa_by_Aitzol_Berasategi.jpg|"
  "seeding|lom_seeding|$bg/seeding_by_Clements_Engelhardt.jpg|"
  "seeding|lom_seeding_4k|$bg/seeding_by_Clements_Engelhardt.jpg|-resize 3840x2160!"
  "sunset|lom_sunset|$bg/sunset_by_Aitzol_Berasategi.jpg|"
  "Kleiber|lom_Kleiber_phone|$bg/Kleiber_by_Lukas_Baubkus.jpg|-gravity center -crop 4032x3024+0+0 +repage"
  "Kleiber|lom_Kleiber_4k|$bg/Kleiber_by_Lukas_Baubkus.jpg|-resize 3840x2160!"
  "InfiniteSea|lom_InfiniteSea_portrait|$bg/Infinite-Sea_by_Aury88.jpg|-gravity center -crop 3024x4032+0+0 +repage"
)

# Deterministic split by source photo: sorted by MD5 of the group name, alternately tune/held.
declare -A half
i=0
while read -r _ group; do
  half[$group]=$([[ $((i % 2)) -eq 0 ]] && echo tune || echo held)
  i=$((i + 1))
done < <(for e in "${entries[@]}"; do
  g=${e%%|*}
  echo "$(printf %s "$g" | md5sum | cut -c1-32) $g"
done | sort -u)

if [[ "${1:-}" == classes ]]; then
  out=$out/classes
  mkdir -p "$out/tune" "$out/held"
  # 4K is the most common source and ratio 2 the hardest for a DCT-scaled decode: 1:1 pixel
  # crops at 3840x2160 keep each camera's own fine detail (a shrunk copy is smoother). They
  # belong to their photograph's group, so the split stays by source photograph.
  crop4k="-gravity center -crop 3840x2160+0+0 +repage"
  entries+=(
    "Bridge|lom_Bridge_crop4k|$bg/Bridge_by_Sander_Klootwijk.jpg|$crop4k"
    "Dragonfly|lom_Dragonfly_crop4k|$bg/Dragonfly_by_Bolly.jpg|$crop4k"
    "Kleiber|lom_Kleiber_crop4k|$bg/Kleiber_by_Lukas_Baubkus.jpg|$crop4k"
    "seeding|lom_seeding_crop4k|$bg/seeding_by_Clements_Engelhardt.jpg|$crop4k"
    "sunset|lom_sunset_crop4k|$bg/sunset_by_Aitzol_Berasategi.jpg|$crop4k"
    "InfiniteSea|lom_InfiniteSea_crop4k|$bg/Infinite-Sea_by_Aury88.jpg|$crop4k"
  )
  for e in "${entries[@]}"; do
    IFS='|' read -r group name from ops <<<"$e"
    native_short=  # measured once per entry, the first time a shrunk shape is missing
    for sampling in 2x2:420 2x1:422 1x1:444; do
      for short in native 2160 1440; do
        dest=$out/${half[$group]}/${name}_${short}_${sampling#*:}.jpg
        [[ -s $dest || -f $dest.skip ]] && continue
        shrink=()
        if [[ $short != native ]]; then
          if [[ -z $native_short ]]; then
            # shellcheck disable=SC2086 # ops is a list of ImageMagick words
            read -r w h <<<"$("$IM" "$from" $ops -format '%w %h' info:)"
            native_short=$((w < h ? w : h))
          fi
          # Only shapes that are a real shrink (not within 10 % of the native short side).
          if (( native_short * 10 <= short * 11 )); then
            : >"$dest.skip"
            continue
          fi
          shrink=(-filter Lanczos -resize "${short}x${short}^")
        fi
        # shellcheck disable=SC2086 # ops is a list of ImageMagick words
        "$IM" "$from" $ops "${shrink[@]}" -strip -quality 92 -sampling-factor "${sampling%%:*}" \
          -interlace none "$dest.tmp.jpg" && mv "$dest.tmp.jpg" "$dest"
      done
    done
  done
  for h in tune held; do
    echo "classes $h: $(find "$out/$h" -name '*.jpg' | wc -l) photos"
  done
  exit 0
fi

enc=(-strip -quality 92 -sampling-factor 2x2 -interlace none)
for e in "${entries[@]}"; do
  IFS='|' read -r group name from ops <<<"$e"
  dest=$out/${half[$group]}/$name.jpg
  [[ -s $dest ]] && continue
  # shellcheck disable=SC2086 # ops is a list of ImageMagick words
  "$IM" "$from" $ops "${enc[@]}" "$dest.tmp.jpg" && mv "$dest.tmp.jpg" "$dest"
done
for h in tune held; do
  echo "$h: $(find "$out/$h" -name '*.jpg' | wc -l) photos"
  /usr/bin/identify-im6.q16 -format "  %f %wx%h\n" "$out/$h"/*.jpg 2>/dev/null || true
done
