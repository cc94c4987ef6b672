#!/usr/bin/env bash
# Renders one of the nginx templates: replaces exactly the ${NAME} placeholders given as
# NAME=value arguments and nothing else, so nginx's own $variables stay as they are (the same
# contract as the nginx image's envsubst step, which substitutes only defined variables).
#   deploy/nginx/render.sh TEMPLATE NAME=value... > out.conf
# Fails when a TIRAGE_ placeholder is left unrendered.
set -euo pipefail
template="${1:?usage: render.sh TEMPLATE NAME=value...}"
shift
text="$(<"$template")"
for pair in "$@"; do
  name="${pair%%=*}"
  value="${pair#*=}"
  [[ "$name" =~ ^[A-Z_][A-Z0-9_]*$ ]] || { echo "render.sh: bad name '$name'" >&2; exit 2; }
  text="${text//"\${$name}"/$value}"
done
# Comments may mention placeholders; a directive line must not keep one.
if left="$(grep -nE '^[^#]*\$\{TIRAGE_[A-Z0-9_]+\}' <<<"$text")"; then
  echo "render.sh: $template: placeholders left unrendered:" >&2
  echo "$left" >&2
  exit 1
fi
printf '%s\n' "$text"
