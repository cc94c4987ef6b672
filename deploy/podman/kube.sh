#!/usr/bin/env bash
# The Kubernetes manifests booted as far as a machine without a control plane allows: an
# overlay rendered by kustomize, and its Deployments, ConfigMaps and Secrets played by
# `podman kube play` on the compose images (scripts/compose.sh images), so every container
# starts with the manifests' own command, env, envFrom, mounts and security context, against
# real Redis, RabbitMQ and Garage: the services host of the namespace topology
# (deploy/netns/services.sh, 10.77.0.40), which the pods reach through the Services' names
# (`hostAliases`: podman runs no Service). What podman cannot show (Services, Ingress, HPA,
# KEDA, PodDisruptionBudgets, NetworkPolicies, the CronJob) is listed by `up` and in
# docs/DEPLOY.md. deploy/podman/kube_play.py says what is translated and why.
#
#   deploy/podman/kube.sh up OVERLAY   render k8s/OVERLAY (base, overlays/dev, ...) with a
#                                      Secret for the services host, play it on network
#                                      tirage-kube (the previous `up`'s pods removed first);
#                                      prints each container as a JSON line (name, pod,
#                                      address, user, read-only root, capabilities, state);
#                                      the Deployments' probes are in $TIRAGE_KUBE_RUN_DIR/play/pods.json
#   deploy/podman/kube.sh down         remove the played pods, their secrets and network,
#                                      then the services and hosts
#
# Environment: TIRAGE_KUBE_RUN_DIR (default /tmp/tirage-kube), TIRAGE_BUILD_PROFILE and
# TIRAGE_SKIP_BUILD (passed to scripts/compose.sh images), TIRAGE_KUBECTL (default the kubectl
# scripts/validate-deploy.sh installs, else the one on PATH).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$REPO"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$REPO/deploy/podman/containers.conf}"
RUN="${TIRAGE_KUBE_RUN_DIR:-/tmp/tirage-kube}"
NETWORK=tirage-kube
LOCAL=localhost/tirage-local   # scripts/compose.sh's image names
NETNS="$REPO/deploy/netns"
say() { echo "kube: $*" >&2; }
die() { echo "kube: FAILED: $*" >&2; exit 1; }

kubectl_bin() {
  local venv="${XDG_CACHE_HOME:-$HOME/.cache}/tirage/validate-deploy/venv/bin/kubectl"
  if [[ -n "${TIRAGE_KUBECTL:-}" ]]; then echo "$TIRAGE_KUBECTL"
  elif [[ -x "$venv" ]]; then echo "$venv"
  elif command -v kubectl >/dev/null; then command -v kubectl
  else die "no kubectl: run scripts/validate-deploy.sh once (it installs one) or set TIRAGE_KUBECTL"
  fi
}

# Each service name's value in `services.sh env`.
service_env() { sed -nE "s#^export $1=##p" <<<"$SERVICES_ENV"; }

# k8s/ copied with the secrets' files an operator writes: the base's pointing at the services
# host (by the Services' names), overlays/dev's from its example.
render() { # render OVERLAY OUT
  local work="$RUN/k8s-src" services_addr
  services_addr="$("$NETNS/hosts.sh" addr services)"
  rm -rf "$work" && mkdir -p "$work" && cp -r k8s "$work/"
  find "$work/k8s" -name '*.env.example' -exec sh -c 'cp "$1" "${1%.example}"' sh {} \;
  local redis amqp
  redis="$(service_env TIRAGE__REDIS__URL)"
  amqp="$(service_env TIRAGE__AMQP__URL)"
  {
    echo "TIRAGE__REDIS__URL=${redis//$services_addr/redis}"
    echo "TIRAGE__AMQP__URL=${amqp//$services_addr/rabbitmq}"
    echo "TIRAGE__S3__ACCESS_KEY_ID=$(service_env TIRAGE__S3__ACCESS_KEY_ID)"
    echo "TIRAGE__S3__SECRET_ACCESS_KEY=$(service_env TIRAGE__S3__SECRET_ACCESS_KEY)"
    echo "TIRAGE__WORKER__CALLBACK_SECRET=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')"
    echo "RABBITMQ_HOST=${amqp//$services_addr/rabbitmq}"
  } >"$work/k8s/base/secrets.env"
  "$(kubectl_bin)" kustomize "$work/k8s/$1" >"$2" || die "kubectl kustomize k8s/$1"
}

# The manifests' image names on the compose images (kube play pulls nothing: IfNotPresent).
tag_images() { # tag_images PODS_JSON
  local image local_image
  while read -r image; do
    case "$(basename "${image%%:*}")" in
      tirage-api) local_image="$LOCAL/api:dev" ;;
      tirage-worker) local_image="$LOCAL/worker:dev" ;;
      *) die "no local image for $image" ;;
    esac
    [[ "$image" == */* ]] || image="localhost/$image"
    [[ "$image" == *:* ]] || image="$image:latest"
    podman tag "$local_image" "$image"
  done < <(python3 -c 'import json,sys; [print(i) for p in json.load(open(sys.argv[1])) for i in p["images"]]' "$1" | sort -u)
}

# One JSON line per played container (a pod's containers share its infra container's address).
describe() {
  local c pod infra addr
  while read -r c pod; do
    [[ -n "$pod" && "$c" != *-infra ]] || continue
    infra="$(podman pod inspect "$pod" --format '{{.InfraContainerID}}')"
    addr="$(podman inspect "$infra" --format "{{with index .NetworkSettings.Networks \"$NETWORK\"}}{{.IPAddress}}{{end}}")"
    [[ -n "$addr" ]] || continue
    podman inspect "$c" --format \
      '{"name":"{{.Name}}","pod":"'"$pod"'","address":"'"$addr"'","user":"{{.Config.User}}","read_only":{{.HostConfig.ReadonlyRootfs}},"cap_drop":"{{.HostConfig.CapDrop}}","cap_add":"{{.HostConfig.CapAdd}}","security_opt":"{{.HostConfig.SecurityOpt}}","state":"{{.State.Status}}"}'
  done < <(podman ps --pod --format '{{.Names}} {{.PodName}}')
}

up() {
  local overlay="${1:?usage: kube.sh up OVERLAY (base, overlays/dev, ...)}"
  [[ -d "k8s/$overlay" ]] || die "no k8s/$overlay"
  command -v catatonit >/dev/null || die "podman's pause image needs catatonit (scripts/compose.sh tools installs it)"
  mkdir -p "$RUN"
  "$NETNS/hosts.sh" up >&2
  "$NETNS/services.sh" up >&2
  SERVICES_ENV="$("$NETNS/services.sh" env)"
  scripts/compose.sh images >&2
  local out="$RUN/play"
  remove_played
  rm -rf "$out" && mkdir -p "$out"
  render "$overlay" "$out/rendered.yaml"
  python3 deploy/podman/kube_play.py "$out/rendered.yaml" "$out" "$("$NETNS/hosts.sh" addr services)" >&2
  tag_images "$out/pods.json"
  podman network exists "$NETWORK" || podman network create "$NETWORK" >/dev/null
  local secret name
  for secret in "$out"/secrets/*.json; do
    [[ -e "$secret" ]] || continue
    name="$(basename "$secret" .json)"
    podman secret rm "$name" >/dev/null 2>&1 || true
    podman secret create "$name" "$secret" >/dev/null
  done
  # podman without systemd cannot schedule the liveness probes' healthchecks; it says so on
  # stderr for each container, and runs them anyway.
  podman kube play --replace --network "$NETWORK" "$out/play.yaml" >"$RUN/play.log" 2>&1 ||
    { cat "$RUN/play.log" >&2; die "podman kube play k8s/$overlay"; }
  say "k8s/$overlay played: $(python3 -c "import json,sys; print(', '.join(f\"{p['deployment']} x{p['replicas']}\" for p in json.load(open(sys.argv[1]))))" "$out/pods.json")"
  describe
}

# The pods and secrets of the last `up`, if any.
remove_played() {
  [[ -f "$RUN/play/play.yaml" ]] || return 0
  podman kube down "$RUN/play/play.yaml" >/dev/null 2>&1 || true
  local secret
  for secret in "$RUN"/play/secrets/*.json; do
    [[ -e "$secret" ]] && podman secret rm "$(basename "$secret" .json)" >/dev/null 2>&1 || true
  done
}

down() {
  remove_played
  podman network rm -f "$NETWORK" >/dev/null 2>&1 || true
  "$NETNS/services.sh" down >&2 || true
  "$NETNS/hosts.sh" down >&2 || true
  rm -rf "$RUN/play" "$RUN/k8s-src"
  say "down"
}

case "${1:-}" in
  up) shift; up "$@" ;;
  down) down ;;
  *) echo "usage: $0 up OVERLAY | down" >&2; exit 2 ;;
esac
