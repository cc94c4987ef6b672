"""The security policies of issue 12, checked by deploy/validate.py on every rendering:

- no Ingress routes /metrics or /readyz (per-replica and internal);
- every Ingress serves TLS for each of its hosts, and with TLS the session cookie is Secure;
- NetworkPolicies: a default deny of ingress, and Redis, RabbitMQ and S3 reachable from the
  API and worker pods only;
- no usable callback secret ships: Secrets hold only a placeholder the worker refuses
  (worker/src/settings.rs KNOWN_PLACEHOLDERS), compose requires one from the environment.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parent.parent
INTERNAL_PATHS = ("/metrics", "/readyz")
BACKING = {"redis", "rabbitmq", "garage"}
CLIENTS = {"tirage-api", "tirage-worker"}
CALLBACK_KEY = "TIRAGE__WORKER__CALLBACK_SECRET"


def known_placeholders() -> set[str]:
    text = (REPO / "worker/src/settings.rs").read_text()
    block = re.search(r"KNOWN_PLACEHOLDERS: &\[&str\] = &\[(.*?)\];", text, re.S)
    if not block:
        raise SystemExit("worker/src/settings.rs has no KNOWN_PLACEHOLDERS")
    return set(re.findall(r'"([^"]*)"', block.group(1)))


def routes(path: str, path_type: str, target: str) -> bool:
    if path_type == "Exact":
        return path == target
    if path_type == "Prefix":
        p = path.rstrip("/")
        return p == "" or target == p or target.startswith(p + "/")
    return re.fullmatch(path, target) is not None  # ImplementationSpecific (regex)


def selects(selector: dict, labels: dict) -> bool:
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in selector.get("matchExpressions") or []:
        have = labels.get(e["key"])
        if e["operator"] == "In" and have not in e["values"]:
            return False
        if e["operator"] == "NotIn" and have in e["values"]:
            return False
        if e["operator"] == "Exists" and e["key"] not in labels:
            return False
    return True


def check_k8s_security(name: str, by_kind: dict, err: Callable[[str, str], None]) -> None:
    ingresses = by_kind.get("Ingress", {})
    configmaps = by_kind.get("ConfigMap", {})
    any_tls = False
    for iname, ing in ingresses.items():
        where = f"{name} Ingress {iname}"
        tls_hosts = set()
        for t in ing["spec"].get("tls", []) or []:
            if not t.get("secretName"):
                err(where, "tls entry without secretName")
            tls_hosts |= set(t.get("hosts", []))
        for rule in ing["spec"].get("rules", []):
            if rule.get("host") not in tls_hosts:
                err(where, f"host {rule.get('host')} is served without TLS")
            for p in rule.get("http", {}).get("paths", []):
                for target in INTERNAL_PATHS:
                    if routes(p["path"], p.get("pathType", "Prefix"), target):
                        err(where, f"path {p['path']} routes {target} to the public")
        any_tls = any_tls or bool(tls_hosts)
    if any_tls:
        secure = [cm for cm in configmaps.values()
                  if str((cm.get("data") or {}).get("TIRAGE__SESSIONS__COOKIE_SECURE", "")).lower() == "true"]
        if not secure:
            err(name, "served over TLS but no ConfigMap sets TIRAGE__SESSIONS__COOKIE_SECURE=true")

    policies = list(by_kind.get("NetworkPolicy", {}).values())
    if not any(p["spec"].get("podSelector") == {} and "Ingress" in p["spec"].get("policyTypes", [])
               and not p["spec"].get("ingress") for p in policies):
        err(name, "no default-deny ingress NetworkPolicy")
    for kind in ("Deployment", "StatefulSet"):
        for dname, d in by_kind.get(kind, {}).items():
            labels = d["spec"]["template"]["metadata"].get("labels", {})
            applying = [p for p in policies if selects(p["spec"].get("podSelector", {}), labels)]
            if labels.get("app.kubernetes.io/name") in CLIENTS | BACKING and not applying:
                err(f"{name} {kind} {dname}", "no NetworkPolicy selects its pods")
            if labels.get("app.kubernetes.io/name") not in BACKING:
                continue
            for p in applying:
                for rule in p["spec"].get("ingress", []) or []:
                    peers = rule.get("from")
                    if not peers:
                        err(f"{name} NetworkPolicy {p['metadata']['name']}",
                            f"lets anything reach {dname}")
                    for peer in peers or []:
                        sel = peer.get("podSelector")
                        if sel is None or "namespaceSelector" in peer or "ipBlock" in peer:
                            err(f"{name} NetworkPolicy {p['metadata']['name']}",
                                f"lets more than the API and workers reach {dname}")
                            continue
                        names = set()
                        for e in sel.get("matchExpressions") or []:
                            if e["key"] == "app.kubernetes.io/name" and e["operator"] == "In":
                                names |= set(e["values"])
                        v = (sel.get("matchLabels") or {}).get("app.kubernetes.io/name")
                        if v:
                            names.add(v)
                        if not names or not names <= CLIENTS:
                            err(f"{name} NetworkPolicy {p['metadata']['name']}",
                                f"lets {sorted(names) or 'any pod'} reach {dname}")

    placeholders = known_placeholders()
    for sname, s in by_kind.get("Secret", {}).items():
        value = (s.get("stringData") or {}).get(CALLBACK_KEY)
        if value is not None and value not in placeholders:
            err(f"{name} Secret {sname}",
                f"{CALLBACK_KEY} ships a usable key; keep a placeholder the worker refuses")


def check_compose_security(services: dict, err: Callable[[str, str], None]) -> None:
    for sname, svc in services.items():
        env = svc.get("environment") or {}
        if isinstance(env, list):
            env = dict(e.split("=", 1) for e in env if "=" in e)
        value = env.get(CALLBACK_KEY)
        if value is None:
            continue
        # Only `${VAR:?message}`: compose refuses to start without it, and nothing is defaulted.
        if not re.fullmatch(r"\$\{[A-Z0-9_]+:\?[^}]*\}", str(value)):
            err(f"compose service {sname}", f"{CALLBACK_KEY} must be ${{VAR:?...}}, not a default")
