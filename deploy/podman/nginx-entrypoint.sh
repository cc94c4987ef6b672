#!/bin/sh
# The official nginx image's template step (docker-entrypoint.d/20-envsubst-on-templates.sh):
# each /etc/nginx/templates/NAME.template becomes /etc/nginx/conf.d/NAME, with only the
# environment variables whose names match NGINX_ENVSUBST_FILTER substituted, so nginx's own
# $variables stay as they are.
set -eu
templates="${NGINX_ENVSUBST_TEMPLATE_DIR:-/etc/nginx/templates}"
out="${NGINX_ENVSUBST_OUTPUT_DIR:-/etc/nginx/conf.d}"
suffix="${NGINX_ENVSUBST_TEMPLATE_SUFFIX:-.template}"
filter="${NGINX_ENVSUBST_FILTER:-}"
# shellcheck disable=SC2016,SC2046  # literal ${NAME} words, one per matching variable name
defined="$(printf '${%s} ' $(awk "END { for (name in ENVIRON) { print ( name ~ /${filter}/ ) ? name : \"\" } }" </dev/null))"
for template in "$templates"/*"$suffix"; do
  [ -f "$template" ] || continue
  name="$(basename "$template" "$suffix")"
  envsubst "$defined" <"$template" >"$out/$name"
  echo "nginx-entrypoint: rendered $template to $out/$name" >&2
done
exec "$@"
