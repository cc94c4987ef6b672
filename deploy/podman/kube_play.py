#!/usr/bin/env python3
"""What `podman kube play` (podman 4.3) can run of a rendered overlay, translated where podman
and a cluster differ, and nothing else changed (deploy/podman/kube.sh runs it):

- Deployments whose containers run Tirage's images (tirage-api, tirage-worker) are kept with
  their replicas, command, env, envFrom, volumes, probes and security context as rendered.
  Two translations only: `ports` are dropped (a cluster never publishes a containerPort on
  the node; podman would, and two replicas would then collide), and `hostAliases` resolve the
  Services the workloads name (redis, rabbitmq, s3) to the services host, since podman runs
  no Service. Other Deployments (overlays/dev's Redis, RabbitMQ, Garage: stand-ins for managed
  services, official images that cannot be pulled here) are left out and listed.
- ConfigMaps are kept (kube play reads them from the same file).
- Secrets become podman secrets: podman 4.3 reads a Secret named in `secretRef` and
  `secretKeyRef` from its own store, as a JSON object of base64 values, not from the file.

Writes into OUTDIR: play.yaml, secrets/NAME.json, and pods.json (per Deployment: its name,
replicas, images, and per container its readiness probe, with the port number its name
resolves to, and the security context the manifest asks for), which the end-to-end test
compares with what podman runs.

Usage: kube_play.py RENDERED.yaml OUTDIR SERVICES_ADDRESS
"""

import json
import sys
from pathlib import Path

import yaml

TIRAGE_IMAGES = ("tirage-api", "tirage-worker")
SERVICE_NAMES = ["redis", "rabbitmq", "s3"]


def image_name(image: str) -> str:
    """tirage-api:dev → tirage-api; registry/org/tirage-worker:1.2 → tirage-worker."""
    return image.rsplit("/", 1)[-1].split(":", 1)[0]


def probe_port(container: dict, port) -> int:
    if isinstance(port, int):
        return port
    for p in container.get("ports") or []:
        if p.get("name") == port:
            return int(p["containerPort"])
    raise SystemExit(f"kube_play: container {container['name']}: no port named {port!r}")


def readiness(container: dict) -> dict | None:
    probe = container.get("readinessProbe") or {}
    http = probe.get("httpGet")
    if not http:
        return None
    return {"path": http.get("path", "/"), "port": probe_port(container, http["port"])}


def security(pod: dict, container: dict) -> dict:
    """What the manifest asks of the container's runtime, for the test to compare with what
    podman made of it."""
    ctx = container.get("securityContext") or {}
    user, group = ctx.get("runAsUser", pod.get("runAsUser")), ctx.get("runAsGroup", pod.get("runAsGroup"))
    return {
        "user": f"{user}:{group}" if user is not None and group is not None else None,
        "read_only": bool(ctx.get("readOnlyRootFilesystem")),
        "drop_all": "ALL" in ((ctx.get("capabilities") or {}).get("drop") or []),
        "no_new_privileges": ctx.get("allowPrivilegeEscalation") is False,
    }


def main() -> None:
    rendered, outdir, services = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    (outdir / "secrets").mkdir(parents=True, exist_ok=True)
    played, pods, skipped = [], [], []
    for doc in yaml.safe_load_all(rendered.read_text()):
        if not doc:
            continue
        kind, name = doc["kind"], doc["metadata"]["name"]
        if kind == "ConfigMap":
            played.append(doc)
        elif kind == "Secret":
            data = dict(doc.get("data") or {})
            (outdir / "secrets" / f"{name}.json").write_text(json.dumps(data))
        elif kind == "Deployment":
            spec = doc["spec"]["template"]["spec"]
            images = [image_name(c["image"]) for c in spec["containers"]]
            if not any(i in TIRAGE_IMAGES for i in images):
                skipped.append(f"Deployment {name} ({', '.join(images)})")
                continue
            spec["hostAliases"] = [{"ip": services, "hostnames": SERVICE_NAMES}]
            containers = {}
            for c in spec["containers"]:
                containers[c["name"]] = {
                    "readiness": readiness(c),
                    "security": security(spec.get("securityContext") or {}, c),
                }
                c.pop("ports", None)
            played.append(doc)
            pods.append({
                "deployment": name,
                "replicas": doc["spec"].get("replicas", 1),
                "images": [c["image"] for c in spec["containers"]],
                "containers": containers,
            })
        else:
            skipped.append(kind)
    if not pods:
        raise SystemExit(f"kube_play: {rendered} has no Deployment of Tirage's images")
    with open(outdir / "play.yaml", "w") as out:
        yaml.safe_dump_all(played, out)
    (outdir / "pods.json").write_text(json.dumps(pods, indent=2))
    kinds = sorted(set(skipped))
    print(f"kube_play: playing {len(pods)} Deployments; not played: {', '.join(kinds)}")


if __name__ == "__main__":
    main()
