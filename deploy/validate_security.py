"""The security policies of issues 12 and 24, checked by deploy/validate.py:

- no proxy routes a probe or metrics path (/healthz, /readyz, /metrics, any probe path of a
  pod): not the nginx template (nginx's own location choice, modelled), not an Ingress
  (ingress-nginx's rule modelled: one `use-regex` or `rewrite-target` Ingress on a host makes
  every path of every Ingress on that host a case-insensitive regex prefix, `~* "^<path>"`);
- every Ingress serves TLS for each of its hosts, and with TLS the session cookie is Secure;
- NetworkPolicies: a default deny of ingress, and Redis, RabbitMQ and S3 reachable from the
  API and worker pods only;
- every pod of every workload runs non-root, read-only, without privilege escalation or
  capabilities;
- no usable credential ships: no Secret manifest among the kustomizations' resources, secret
  generators read git-ignored files whose committed examples hold placeholders only, rendered
  Secrets hold placeholders (the worker refuses them: worker/src/settings.rs
  KNOWN_PLACEHOLDERS), no container env spells a credential out, nothing key-like in the
  committed deploy files; compose takes every secret from `${VAR:?...}` with no default;
- Redis and RabbitMQ need a password (compose and Kubernetes: the URLs carry one), and Redis
  is bounded (`maxmemory` with `noeviction`).
"""

from __future__ import annotations

import base64
import re
import subprocess
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import unquote, urlsplit

import yaml

REPO = Path(__file__).resolve().parent.parent
INTERNAL_PATHS = ("/metrics", "/readyz", "/healthz")
BACKING = {"redis", "rabbitmq", "garage"}
CLIENTS = {"tirage-api", "tirage-worker"}
CALLBACK_KEY = "TIRAGE__WORKER__CALLBACK_SECRET"
REGEX_ANNOTATIONS = ("nginx.ingress.kubernetes.io/use-regex",
                     "nginx.ingress.kubernetes.io/rewrite-target")
WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob")
# Names of settings that hold a credential.
SECRET_NAME = re.compile(r"PASS|SECRET|TOKEN|AUTH|(^|_)KEY(_|$)")
# Values that look like a key: a Garage key id, or 32+ hex digits (not an image digest).
KEY_LIKE = re.compile(r"(?<![0-9A-Za-z])GK[0-9a-f]{24}(?![0-9a-f])"
                      r"|(?<![0-9A-Za-z:])[0-9a-fA-F]{32,}(?![0-9a-fA-F])")
# compose's `${VAR:?message}`: required, no default.
REQUIRED = r"\$\{[A-Za-z0-9_]+:\?[^}]*\}"
INTERPOLATION = re.compile(r"\$\{([A-Za-z0-9_]+)(?:(:?[-?])([^}]*))?\}")
URL_SETTINGS = ("TIRAGE__REDIS__URL", "TIRAGE__REDIS__CLUSTER_URLS", "TIRAGE__AMQP__URL",
                "TIRAGE__AMQP__URLS", "RABBITMQ_HOST")

Err = Callable[[str, str], None]


def known_placeholders() -> set[str]:
    text = (REPO / "worker/src/settings.rs").read_text()
    block = re.search(r"KNOWN_PLACEHOLDERS: &\[&str\] = &\[(.*?)\];", text, re.S)
    if not block:
        raise SystemExit("worker/src/settings.rs has no KNOWN_PLACEHOLDERS")
    return set(re.findall(r'"([^"]*)"', block.group(1)))


def is_placeholder(value: str) -> bool:
    """A value nobody can use: empty, a word the files tell to replace, a placeholder the
    worker refuses, or a URL whose password is one of those (or that has none)."""
    v = str(value).strip()
    if "://" in v:
        return all(is_placeholder(unquote(urlsplit(u.strip()).password or ""))
                   for u in v.split(","))
    return (v == "" or v in known_placeholders()
            or re.search(r"(?i)change-?me|replace-?me|placeholder|^<[^>]*>$", v) is not None)


def url_passwords_missing(value: str) -> list[str]:
    """The URLs of a (comma-separated) list that carry no password."""
    return [u.strip() for u in str(value).split(",") if u.strip() and not urlsplit(u.strip()).password]


# --- proxies --------------------------------------------------------------------------------

def ingress_routes(path: str, path_type: str, regex: bool, target: str) -> bool:
    """Whether ingress-nginx sends `target` to this path. With regex on the host, every path
    is `location ~* "^<path>"` whatever its pathType (kubernetes/ingress-nginx#3145, #7586,
    #11397); otherwise Exact is `location = path`, Prefix matches whole path elements and
    ImplementationSpecific is a plain nginx prefix location."""
    if regex:
        return re.match("^" + path, target, re.IGNORECASE) is not None
    if path_type == "Exact":
        return path == target
    if path_type == "Prefix":
        p = path.rstrip("/")
        return p == "" or target == p or target.startswith(p + "/")
    return target.startswith(path)


def probe_paths(by_kind: dict) -> set[str]:
    paths = set(INTERNAL_PATHS)
    for _, _, template in pod_templates(by_kind):
        for c in containers(template["spec"]):
            for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
                path = (c.get(probe) or {}).get("httpGet", {}).get("path")
                if path:
                    paths.add(path)
    return paths


def check_ingress_paths(name: str, by_kind: dict, err: Err) -> None:
    ingresses = by_kind.get("Ingress", {})
    regex_hosts = set()
    for ing in ingresses.values():
        ann = ing["metadata"].get("annotations") or {}
        regex = str(ann.get(REGEX_ANNOTATIONS[0], "")).lower() == "true" or REGEX_ANNOTATIONS[1] in ann
        if regex:
            regex_hosts |= {r.get("host", "") for r in ing["spec"].get("rules", [])}
    targets = sorted(probe_paths(by_kind))
    for iname, ing in ingresses.items():
        for rule in ing["spec"].get("rules", []):
            host = rule.get("host", "")
            regex = host in regex_hosts
            for p in rule.get("http", {}).get("paths", []):
                try:
                    hits = [t for t in targets
                            if ingress_routes(p["path"], p.get("pathType", "Prefix"), regex, t)]
                except re.error as e:
                    err(f"{name} Ingress {iname}", f"path {p['path']} is no regex ({e})")
                    continue
                for t in hits:
                    how = ("as a case-insensitive regex prefix, because an Ingress of the host "
                           "uses use-regex or rewrite-target" if regex else "")
                    err(f"{name} Ingress {iname}",
                        f"host {host or '*'}: path {p['path']} routes {t} to the public {how}".rstrip())


def nginx_pick(locations: dict[str, dict], uri: str) -> str | None:
    """The location nginx serves `uri` from: an exact match, else the longest prefix if it is
    `^~`, else the first regex in file order that matches, else the longest prefix."""
    parsed = []
    for key in locations:
        mod, _, path = key.partition(" ")
        if mod not in ("=", "~", "~*", "^~"):
            mod, path = "", key
        parsed.append((mod, path.strip('"'), key))
    for mod, path, key in parsed:
        if mod == "=" and path == uri:
            return key
    prefixes = [(len(path), mod, key) for mod, path, key in parsed
                if mod in ("", "^~") and uri.startswith(path)]
    best = max(prefixes) if prefixes else None
    if best and best[1] == "^~":
        return best[2]
    for mod, path, key in parsed:
        if mod in ("~", "~*") and re.search(path, uri, re.IGNORECASE if mod == "~*" else 0):
            return key
    return best[2] if best else None


def check_proxy_config(where: str, locations: dict[str, dict], err: Err) -> None:
    """The nginx template (its server block's locations, as deploy/validate.py reads them)
    must answer the probe and metrics paths itself, never proxy them."""
    for target in INTERNAL_PATHS:
        key = nginx_pick(locations, target)
        if key is not None and "proxy_pass" in locations[key]:
            err(where, f"{target} is proxied (location {key}); answer it with `return 404`")


# --- pods -----------------------------------------------------------------------------------

def pod_templates(by_kind: dict) -> Iterator[tuple[str, str, dict]]:
    """(kind, name, pod template) of every workload."""
    for kind in WORKLOADS:
        for name, w in by_kind.get(kind, {}).items():
            yield kind, name, (w["spec"]["jobTemplate"]["spec"] if kind == "CronJob" else w["spec"])["template"]


def containers(spec: dict) -> list[dict]:
    return list(spec.get("initContainers") or []) + list(spec.get("containers") or [])


def check_pods(name: str, by_kind: dict, err: Err) -> None:
    for kind, wname, template in pod_templates(by_kind):
        spec = template["spec"]
        psc = spec.get("securityContext") or {}
        for c in containers(spec):
            where = f"{name} {kind} {wname} container {c['name']}"
            csc = c.get("securityContext") or {}
            non_root = csc.get("runAsNonRoot", psc.get("runAsNonRoot"))
            user = csc.get("runAsUser", psc.get("runAsUser"))
            if not non_root or user in (None, 0):
                err(where, "must run as non-root (runAsNonRoot and a runAsUser other than 0)")
            if not csc.get("readOnlyRootFilesystem"):
                err(where, "needs readOnlyRootFilesystem: true")
            if csc.get("allowPrivilegeEscalation") is not False:
                err(where, "needs allowPrivilegeEscalation: false")
            caps = csc.get("capabilities") or {}
            if "ALL" not in (caps.get("drop") or []) or caps.get("add"):
                err(where, "must drop ALL capabilities and add none")
            for e in c.get("env") or []:
                if SECRET_NAME.search(e["name"]) and "value" in e:
                    err(where, f"env {e['name']} spells a credential out; take it from a Secret")


def check_backing_services(name: str, by_kind: dict, err: Err) -> None:
    """The Redis and RabbitMQ an overlay runs itself: a password, and Redis bounded."""
    for kind, wname, template in pod_templates(by_kind):
        app = template["metadata"].get("labels", {}).get("app.kubernetes.io/name")
        for c in template["spec"].get("containers") or []:
            where = f"{name} {kind} {wname}"
            if app == "redis":
                args = " ".join(c.get("command", []) + c.get("args", []))
                for need, why in (("--requirepass ", "a password"), ("--maxmemory ", "maxmemory"),
                                  ("--maxmemory-policy noeviction", "maxmemory-policy noeviction")):
                    if need not in args:
                        err(where, f"Redis needs {why} ({need.strip()})")
            if app == "rabbitmq":
                env = {e["name"]: e for e in c.get("env") or []}
                if "secretKeyRef" not in (env.get("RABBITMQ_DEFAULT_PASS") or {}).get("valueFrom", {}):
                    err(where, "RabbitMQ needs RABBITMQ_DEFAULT_PASS from a Secret (not guest)")


# --- secrets --------------------------------------------------------------------------------

def secret_values(s: dict) -> dict[str, str]:
    values = {k: str(v) for k, v in (s.get("stringData") or {}).items()}
    for k, v in (s.get("data") or {}).items():
        values[k] = base64.b64decode(v).decode(errors="replace")
    return values


def check_secrets(name: str, by_kind: dict, err: Err) -> None:
    secrets = by_kind.get("Secret", {})
    for sname, s in secrets.items():
        for k, v in secret_values(s).items():
            if not is_placeholder(v):
                err(f"{name} Secret {sname}", f"{k} ships a usable value; keep a placeholder")
    for cname, cm in by_kind.get("ConfigMap", {}).items():
        for k in URL_SETTINGS:
            if k in (cm.get("data") or {}):
                err(f"{name} ConfigMap {cname}", f"{k} belongs in the Secret, with its password")
    merged = {k: v for s in secrets.values() for k, v in secret_values(s).items()}
    for urls, what in ((URL_SETTINGS[:2], "Redis"), (URL_SETTINGS[2:], "RabbitMQ")):
        if not any(k in merged for k in urls[:2]):
            err(name, f"no Secret sets {' or '.join(urls[:2])}: {what} needs a password, "
                "which the URL carries")
        for k in (k for k in urls if k in merged):
            for u in url_passwords_missing(merged[k]):
                err(name, f"{k} {u} has no password: {what} must require one")


def check_namespaces(name: str, docs: list[dict], err: Err) -> None:
    """Everything an overlay adds lands in the base's namespace (kustomize sets it only for the
    resources of the kustomization that names it)."""
    spaces = [d["metadata"]["name"] for d in docs if d["kind"] == "Namespace"]
    for d in docs:
        if spaces and d["kind"] != "Namespace" and d["metadata"].get("namespace") != spaces[0]:
            err(f"{name} {d['kind']} {d['metadata']['name']}",
                f"in namespace {d['metadata'].get('namespace')}, not {spaces[0]}")


def check_k8s_security(name: str, by_kind: dict, err: Err) -> None:
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
        any_tls = any_tls or bool(tls_hosts)
    check_ingress_paths(name, by_kind, err)
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
                check_backing_peers(name, dname, p, err)

    check_pods(name, by_kind, err)
    check_backing_services(name, by_kind, err)
    check_secrets(name, by_kind, err)
    check_namespaces(name, [d for docs in by_kind.values() for d in docs.values()], err)


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


def check_backing_peers(name: str, dname: str, p: dict, err: Err) -> None:
    for rule in p["spec"].get("ingress", []) or []:
        peers = rule.get("from")
        if not peers:
            err(f"{name} NetworkPolicy {p['metadata']['name']}", f"lets anything reach {dname}")
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


# --- committed files ------------------------------------------------------------------------

def git_ignored(path: Path) -> bool:
    return subprocess.run(["git", "-C", str(REPO), "check-ignore", "-q", str(path)]).returncode == 0


def env_file(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            k, v = line.split("=", 1)
            out[k.strip()] = v.strip()
    return out


def check_k8s_sources(root: Path, err: Err) -> None:
    """What the kustomizations under `root` ship as files: no Secret manifest among their
    resources, and secret generators that read git-ignored files, each with a committed
    `.example` of placeholders only (literals: placeholders only)."""
    for kfile in sorted(root.rglob("kustomization.yaml")):
        k = yaml.safe_load(kfile.read_text()) or {}
        where = str(kfile.relative_to(REPO) if kfile.is_relative_to(REPO) else kfile)
        for res in k.get("resources") or []:
            path = kfile.parent / res
            if not path.is_file():
                continue
            for doc in yaml.safe_load_all(path.read_text()):
                if doc and doc.get("kind") == "Secret":
                    err(where, f"resource {res} is a Secret manifest: generate it from a "
                        "git-ignored file or provide it outside the repository")
        for gen in k.get("secretGenerator") or []:
            for lit in gen.get("literals") or []:
                key, _, value = lit.partition("=")
                if not is_placeholder(value):
                    err(where, f"secretGenerator {gen.get('name')}: literal {key} is a usable value")
            for f in (gen.get("envs") or []) + ([gen["env"]] if gen.get("env") else []) + \
                    [x.split("=", 1)[-1] for x in gen.get("files") or []]:
                path = kfile.parent / f
                if not git_ignored(path):
                    err(where, f"secretGenerator {gen.get('name')} reads {f}, which git does not ignore")
                example = path.with_name(path.name + ".example")
                if not example.is_file():
                    err(where, f"secretGenerator {gen.get('name')}: no {f}.example lists its keys")
                    continue
                for key, value in env_file(example).items():
                    if not is_placeholder(value):
                        err(str(example.relative_to(REPO)), f"{key} is a usable value; keep a placeholder")


def check_committed_credentials(paths: list[Path], err: Err) -> None:
    """Nothing key-like in the deploy files git tracks (the generated env files are ignored)."""
    for path in paths:
        try:
            lines = path.read_text().splitlines()
        except (UnicodeDecodeError, IsADirectoryError, FileNotFoundError):
            continue
        for n, line in enumerate(lines, 1):
            m = KEY_LIKE.search(line)
            if m:
                rel = path.relative_to(REPO) if path.is_relative_to(REPO) else path
                err(f"{rel}:{n}", f"looks like a committed key ({m.group(0)[:8]}...)")


def tracked_deploy_files() -> list[Path]:
    out = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z", "--", "k8s", "deploy",
                          "docker-compose.yml", "scripts"], capture_output=True, text=True, check=True)
    return [REPO / p for p in out.stdout.split("\0")
            if p and not p.startswith("deploy/tests/") and (REPO / p).is_file()]


# --- compose --------------------------------------------------------------------------------

def strings(obj) -> Iterator[str]:
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from strings(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from strings(v)


def compose_env(svc: dict) -> dict[str, str]:
    env = svc.get("environment") or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) for e in env if "=" in e)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def check_compose_security(services: dict, err: Err) -> None:
    for sname, svc in services.items():
        where = f"compose service {sname}"
        for text in strings(svc):
            for var, op, default in INTERPOLATION.findall(text):
                if op in (":-", "-") and default and (SECRET_NAME.search(var) or KEY_LIKE.search(default)):
                    err(where, f"${{{var}}} defaults to a credential; require it: ${{{var}:?...}}")
            m = KEY_LIKE.search(text)
            if m:
                err(where, f"a key-like value is written in the file ({m.group(0)[:8]}...)")
        env = compose_env(svc)
        for k, v in env.items():
            if SECRET_NAME.search(k) and not re.fullmatch(REQUIRED, v):
                err(where, f"{k} must be ${{VAR:?...}}: required from the environment, no default")
        for k in ("TIRAGE__REDIS__URL", "TIRAGE__AMQP__URL"):
            if k in env and not re.match(rf"^[a-z]+://(\$\{{[^}}]*\}}|[^:@/$])*:{REQUIRED}@", env[k]):
                err(where, f"{k} must carry a password from ${{VAR:?...}} (scheme://user:${{PASSWORD:?...}}@host)")
        check_compose_ports(sname, svc, err)
    rabbit = services.get("rabbitmq")
    if rabbit is not None and not re.fullmatch(REQUIRED, compose_env(rabbit).get("RABBITMQ_DEFAULT_PASS", "")):
        err("compose service rabbitmq", "RABBITMQ_DEFAULT_PASS must be ${VAR:?...} (no guest, no default)")
    redis = services.get("redis")
    if redis is not None:
        cmd = redis.get("command") or []
        cmd = cmd.split() if isinstance(cmd, str) else [str(c) for c in cmd]
        joined = " ".join(cmd)
        if not re.search(rf"--requirepass {REQUIRED}", joined):
            err("compose service redis", "needs --requirepass ${VAR:?...}")
        if "--maxmemory " not in joined or "--maxmemory-policy noeviction" not in joined:
            err("compose service redis", "needs --maxmemory and --maxmemory-policy noeviction")
    health = " ".join(strings((services.get("nginx") or {}).get("healthcheck") or {}))
    for p in INTERNAL_PATHS:
        if p in health:
            err("compose service nginx", f"its healthcheck asks {p}, which nginx does not proxy")


# Who may publish, and which container port: nginx, Garage's S3 port (presigned URLs), and
# Prometheus's UI and API (no authentication: on the loopback address by default, as all are).
PUBLISHED = {"nginx": None, "garage": "3900", "prometheus": "9090"}
LOOPBACK = r"(127\.0\.0\.1|\$\{[A-Za-z0-9_]+:-127\.0\.0\.1\})"


def check_compose_ports(sname: str, svc: dict, err: Err) -> None:
    where = f"compose service {sname}"
    ports = svc.get("ports") or []
    if ports and sname not in PUBLISHED:
        err(where, "publishes ports: only nginx, Garage's S3 port and Prometheus may be")
    for p in ports:
        if isinstance(p, dict):
            host_ip, target = str(p.get("host_ip", "")), str(p.get("target", ""))
        else:
            m = re.fullmatch(rf"{LOOPBACK}:(.+):(\d+)(/tcp)?", str(p))
            host_ip, target = (m.group(1), m.group(3)) if m else ("", str(p).rsplit(":", 1)[-1])
        if not re.fullmatch(LOOPBACK, host_ip):
            err(where, f"port {p} is published on every interface; bind it to 127.0.0.1 "
                "by default (${TIRAGE_BIND_ADDRESS:-127.0.0.1}:...)")
        want = PUBLISHED.get(sname)
        if want and target != want:
            err(where, f"publishes container port {target}; only {want} may be")
