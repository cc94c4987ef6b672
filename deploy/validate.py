"""Static checks of Tirage's deployment files, run by scripts/validate-deploy.sh.

    validate.py compose-nginx-env COMPOSE        NUL-separated NAME=value of the nginx service
    validate.py compose COMPOSE SCHEMA            schema + cross-checks + Dockerfiles
    validate.py k8s NAME RENDERED NGINX_TEMPLATE  policies on one rendered kustomization
    validate.py compose-override COMPOSE OVERRIDE an override that only swaps images
    validate.py nginx TEMPLATE                    the proxy never forwards probes or metrics
    validate.py sources K8S_DIR                   no Secret manifest, git-ignored generator
                                                  files, nothing key-like in deploy files
    validate.py rules ALERTS TESTS RULE RUNBOOK   the alert rules agree with their tests, their
                                                  PrometheusRule and their runbook

Schema validity says a file parses; these checks say it does what issue 5 asks (probes,
limits, non-root read-only pods, grace periods covering the drain, autoscalers and
disruption budgets that point at real objects, ingress rules equal to the nginx rules) and
that every TIRAGE__SECTION__KEY it sets names a real setting of config/default.toml.
"""

from __future__ import annotations

import json
import re
import sys
import tomllib
from pathlib import Path

import jsonschema
import yaml
from validate_rules import check_prometheus_rule, check_rules
from validate_security import (check_committed_credentials, check_compose_security,
                               check_k8s_security, check_k8s_sources, check_proxy_config,
                               tracked_deploy_files)

REPO = Path(__file__).resolve().parent.parent
errors: list[str] = []


def err(where: str, msg: str) -> None:
    errors.append(f"{where}: {msg}")


def finish(what: str) -> None:
    if errors:
        for e in errors:
            print(f"  ERROR {e}", file=sys.stderr)
        print(f"{what}: {len(errors)} problem(s)", file=sys.stderr)
        sys.exit(1)
    print(f"{what}: ok")


# --- settings ---------------------------------------------------------------------------------

def load_settings() -> dict:
    path = REPO / "config" / "default.toml"
    if not path.exists():
        return {}
    with path.open("rb") as f:
        return tomllib.load(f)


def rust_settings() -> dict[str, set[str]]:
    """Sections and keys the binaries deserialize, read off their settings structs: a field
    `pub redis: RedisSettings` of a settings struct makes [redis] a section whose keys are the
    `pub` fields of `RedisSettings`. Keys without a default in config/default.toml (a URL, a
    password) exist only here."""
    text = "\n".join(p.read_text() for d in ("api/src", "worker/src", "runtime/src", "redis/src", "amqp/src", "s3/src",
                                                   "embedded/src")
                     for p in (REPO / d).rglob("*.rs"))
    structs = {m.group(1): set(re.findall(r"(?m)^\s*pub (\w+):", m.group(2)))
               for m in re.finditer(r"pub struct (\w+) \{(.*?)\n\}", text, re.S)}
    sections: dict[str, set[str]] = {}
    for field, ty in re.findall(r"(?m)^\s*pub (\w+): (\w+Settings),", text):
        if ty in structs:
            sections.setdefault(field, set()).update(structs[ty])
    return sections


SETTINGS = load_settings()
KNOWN: dict[str, set[str]] = rust_settings()
for _section, _values in SETTINGS.items():
    if isinstance(_values, dict):
        KNOWN.setdefault(_section, set()).update(_values)


def check_setting(where: str, name: str) -> None:
    """TIRAGE__SECTION__KEY must name a real setting (the config crate lowercases environment
    names): a key of config/default.toml or a field of the settings struct of that section."""
    if not name.startswith("TIRAGE__"):
        return
    parts = name[len("TIRAGE__"):].lower().split("__")
    if len(parts) != 2:
        err(where, f"{name}: expected TIRAGE__SECTION__KEY")
        return
    section, key = parts
    if section not in KNOWN:
        err(where, f"{name}: no [{section}] section in config/default.toml or the settings types")
    elif key not in KNOWN[section]:
        err(where, f"{name}: [{section}] has no key '{key}'")


def setting(section: str, key: str, default):
    return SETTINGS.get(section, {}).get(key, default)


# --- nginx ------------------------------------------------------------------------------------

def parse_nginx(text: str) -> list:
    """A minimal nginx parser: [(name, args, children|None)]. Enough for our own template."""
    tokens = re.findall(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|[{};]|[^\s{};]+",
                        re.sub(r"(?m)^\s*#.*$|\s#.*$", "", text))
    pos = 0

    def block() -> list:
        nonlocal pos
        out = []
        words: list[str] = []
        while pos < len(tokens):
            t = tokens[pos]
            pos += 1
            if t == ";":
                out.append((words[0], words[1:], None))
                words = []
            elif t == "{":
                name, args = words[0], words[1:]
                out.append((name, args, block()))
                words = []
            elif t == "}":
                return out
            else:
                words.append(t)
        return out

    return block()


def seconds(v: str) -> int:
    m = re.fullmatch(r"(\d+)(ms|s|m|h)?", v)
    if not m:
        raise ValueError(v)
    n, unit = int(m.group(1)), m.group(2) or "s"
    return {"ms": n // 1000, "s": n, "m": n * 60, "h": n * 3600}[unit]


def nginx_locations(template: Path) -> dict[str, dict[str, str]]:
    """Effective proxy settings per location of the server block, inherited values included."""
    # Placeholders are rendered by the deployment; any value parses the same way here.
    text = template.read_text().replace("${TIRAGE_API_SERVERS}", "server placeholder:1;")
    tree = parse_nginx(re.sub(r"\$\{TIRAGE_[A-Z_]+\}", "placeholder", text))
    server = next(c for n, _, c in tree if n == "server")
    base = {n: " ".join(a) for n, a, c in server if c is None}
    out = {}
    for n, args, children in server:
        if n != "location":
            continue
        eff = dict(base)
        eff.update({cn: " ".join(ca) for cn, ca, cc in children if cc is None})
        out[" ".join(args)] = eff
    return out


# --- compose ----------------------------------------------------------------------------------

def load_yaml(path: str):
    with open(path) as f:
        return yaml.safe_load(f)


def env_dict(env) -> dict[str, str]:
    if env is None:
        return {}
    if isinstance(env, list):
        return dict(e.split("=", 1) if "=" in e else (e, "") for e in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def dockerfile_stages(path: Path) -> tuple[list[str], str]:
    text = path.read_text()
    stages = re.findall(r"(?im)^FROM\s+\S+(?:\s+AS\s+(\S+))?", text)
    return [s.lower() for s in stages if s], text


def compose_nginx_env(compose_path: str) -> None:
    doc = load_yaml(compose_path)
    env = env_dict(doc["services"]["nginx"].get("environment"))
    out = [f"{k}={v}" for k, v in env.items() if k.startswith("TIRAGE_")]
    sys.stdout.write("\0".join(out) + ("\0" if out else ""))


def check_compose(compose_path: str, schema_path: str) -> None:
    doc = load_yaml(compose_path)
    schema = json.loads(Path(schema_path).read_text())
    validator = jsonschema.Draft7Validator(schema)
    for e in sorted(validator.iter_errors(doc), key=lambda e: list(e.path)):
        err("compose schema", f"{'/'.join(map(str, e.path)) or '(root)'}: {e.message}")
    services = doc.get("services", {})
    check_compose_security(services, err)
    for need in ("nginx", "api", "worker", "redis", "rabbitmq", "garage", "garage-init"):
        if need not in services:
            err("compose", f"no service '{need}'")
    for name, svc in services.items():
        where = f"compose service {name}"
        deps = svc.get("depends_on", {})
        if isinstance(deps, list):
            deps = {d: {"condition": "service_started"} for d in deps}
        for dep, spec in deps.items():
            target = services.get(dep)
            if target is None:
                err(where, f"depends_on unknown service '{dep}'")
                continue
            cond = spec.get("condition")
            if cond == "service_healthy" and "healthcheck" not in target:
                err(where, f"waits for '{dep}' to be healthy, which has no healthcheck")
            if cond == "service_completed_successfully" and target.get("restart", "no") != "no":
                err(where, f"waits for one-shot '{dep}', which restarts")
        build = svc.get("build")
        if isinstance(build, dict):
            dockerfile = REPO / build.get("context", ".") / build.get("dockerfile", "Dockerfile")
            if not dockerfile.exists():
                err(where, f"no Dockerfile {dockerfile}")
            elif build.get("target"):
                stages, _ = dockerfile_stages(dockerfile)
                if build["target"].lower() not in stages:
                    err(where, f"build target '{build['target']}' is no stage of {dockerfile}")
        for vol in svc.get("volumes", []):
            src = vol.split(":")[0] if isinstance(vol, str) else vol.get("source", "")
            if src.startswith("./") and not (REPO / src).exists():
                err(where, f"mounts missing file {src}")
        for k in env_dict(svc.get("environment")):
            check_setting(where, k)
    api, worker = services.get("api", {}), services.get("worker", {})
    if api.get("deploy", {}).get("replicas") != 2:
        err("compose service api", "needs deploy.replicas: 2")
    for name in ("api", "worker"):
        svc = services.get(name, {})
        if "container_name" in svc or "ports" in svc:
            err(f"compose service {name}", "container_name/ports prevent scaling replicas")
        if not svc.get("read_only"):
            err(f"compose service {name}", "should run with a read-only root file system")
        if "healthcheck" not in svc:
            err(f"compose service {name}", "has no healthcheck")
    grace = setting("worker", "shutdown_grace_ms", 30000) / 1000
    sgp = worker.get("stop_grace_period", "10s")
    if seconds(sgp) <= grace:
        err("compose service worker", f"stop_grace_period {sgp} must exceed the worker's "
            f"shutdown grace ({grace:.0f} s) or docker kills it mid-drain")
    redis_cmd = " ".join(services.get("redis", {}).get("command", []))
    if "--appendonly yes" not in redis_cmd:
        err("compose service redis", "needs AOF persistence (--appendonly yes)")
    if "healthcheck" not in services.get("nginx", {}):
        err("compose service nginx", "has no healthcheck")
    check_dockerfile(REPO / "deploy" / "docker" / "Dockerfile")
    finish(f"compose ({compose_path})")


def check_dockerfile(path: Path) -> None:
    where = str(path.relative_to(REPO))
    stages, text = dockerfile_stages(path)
    for s in ("chef", "planner", "builder", "runtime", "api", "worker"):
        if s not in stages:
            err(where, f"no stage '{s}'")
    if "cargo chef prepare" not in text or "cargo chef cook" not in text:
        err(where, "does not use cargo-chef (prepare + cook)")
    for tool in ("cmake", "nasm"):
        if not re.search(rf"apt-get install[^\n]*\b{tool}\b", text):
            err(where, f"the builder lacks {tool} (libjpeg-turbo is built from source)")
    if not re.search(r"(?m)^FROM debian:\S*-slim AS runtime", text) and \
            not re.search(r"(?m)^FROM debian:\$\{DEBIAN_RELEASE\}-slim AS runtime", text):
        err(where, "the runtime stage should be debian-slim")
    users = re.findall(r"(?m)^USER\s+(\S+)", text)
    if not users or users[-1].split(":")[0] in ("0", "root"):
        err(where, "the runtime must run as a non-root USER")
    if "tini" not in text and "STOPSIGNAL SIGTERM" not in text:
        err(where, "needs tini or STOPSIGNAL SIGTERM")
    ignore = REPO / ".dockerignore"
    if not ignore.exists() or "target" not in ignore.read_text():
        err(".dockerignore", "must keep target/ out of the build context")


# --- k8s --------------------------------------------------------------------------------------

def check_k8s(name: str, rendered: str, nginx_template: str) -> None:
    with open(rendered) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    by_kind: dict[str, dict[str, dict]] = {}
    for d in docs:
        by_kind.setdefault(d["kind"], {})[d["metadata"]["name"]] = d
    deployments = by_kind.get("Deployment", {})
    services = by_kind.get("Service", {})
    configmaps = by_kind.get("ConfigMap", {})
    secrets = by_kind.get("Secret", {})
    hpas = by_kind.get("HorizontalPodAutoscaler", {})
    scaled = by_kind.get("ScaledObject", {})

    for need in ("Namespace", "ConfigMap", "Secret", "Ingress"):
        if need not in by_kind:
            err(name, f"renders no {need}")
    for dep in ("tirage-api", "tirage-worker"):
        if dep not in deployments:
            err(name, f"no Deployment {dep}")
    if "tirage-api" not in services:
        err(name, "no Service tirage-api")

    def secret_keys(s: dict) -> set[str]:
        return set(s.get("data", {}) or {}) | set(s.get("stringData", {}) or {})

    for cm in configmaps.values():
        for k in cm.get("data", {}) or {}:
            check_setting(f"{name} ConfigMap {cm['metadata']['name']}", k)
    for s in secrets.values():
        for k in secret_keys(s):
            check_setting(f"{name} Secret {s['metadata']['name']}", k)

    for dname, d in deployments.items():
        where = f"{name} Deployment {dname}"
        pod = d["spec"]["template"]
        labels = pod["metadata"].get("labels", {})
        sel = d["spec"]["selector"]["matchLabels"]
        if any(labels.get(k) != v for k, v in sel.items()):
            err(where, "selector does not match its pod labels")
        spec = pod["spec"]
        ours = dname.startswith("tirage-")
        for c in spec["containers"]:
            cw = f"{where} container {c['name']}"
            res = c.get("resources", {})
            for part in ("requests", "limits"):
                for r in ("cpu", "memory"):
                    if r not in res.get(part, {}):
                        err(cw, f"no resources.{part}.{r}")
            if "readinessProbe" not in c:
                err(cw, "no readinessProbe")
            for ef in c.get("envFrom", []):
                if "configMapRef" in ef and ef["configMapRef"]["name"] not in configmaps:
                    err(cw, f"envFrom unknown ConfigMap {ef['configMapRef']['name']}")
                if "secretRef" in ef and ef["secretRef"]["name"] not in secrets:
                    err(cw, f"envFrom unknown Secret {ef['secretRef']['name']}")
            for e in c.get("env", []):
                check_setting(cw, e["name"])
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref and (ref["name"] not in secrets
                            or ref["key"] not in secret_keys(secrets[ref["name"]])):
                    err(cw, f"secretKeyRef {ref['name']}/{ref['key']} does not exist")
            # Non-root, read-only, no escalation, no capabilities: every workload's pods, in
            # validate_security.check_pods.
            if not ours:
                continue
            rp = c.get("readinessProbe", {}).get("httpGet", {}).get("path")
            lp = c.get("livenessProbe", {}).get("httpGet", {}).get("path")
            if rp != "/readyz" or lp != "/healthz":
                err(cw, f"probes should be /readyz (readiness) and /healthz (liveness), "
                    f"not {rp} and {lp}")
            ports = {p.get("name") for p in c.get("ports", [])}
            for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
                port = c.get(probe, {}).get("httpGet", {}).get("port")
                if isinstance(port, str) and port not in ports:
                    err(cw, f"{probe} uses unknown port name {port}")
        env = {e["name"]: e.get("value") for c in spec["containers"] for e in c.get("env", [])}
        tgps = spec.get("terminationGracePeriodSeconds", 30)
        if dname == "tirage-worker":
            grace = int(env.get("TIRAGE__WORKER__SHUTDOWN_GRACE_MS")
                        or setting("worker", "shutdown_grace_ms", 30000)) / 1000
            if tgps < grace + 5:
                err(where, f"terminationGracePeriodSeconds {tgps} does not cover the drain "
                    f"({grace:.0f} s + margin)")
        if dname == "tirage-api":
            grace = int(env.get("TIRAGE__API__SHUTDOWN_TIMEOUT_SECS")
                        or setting("api", "shutdown_timeout_secs", 30))
            pre = 0
            for c in spec["containers"]:
                cmd = c.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
                if cmd[:1] == ["sleep"]:
                    pre = int(cmd[1])
            if tgps < grace + pre:
                err(where, f"terminationGracePeriodSeconds {tgps} < preStop {pre} s + "
                    f"shutdown {grace} s")

    def pods_matching(selector: dict) -> list[str]:
        return [n for n, d in deployments.items()
                if selector and all(d["spec"]["template"]["metadata"].get("labels", {}).get(k) == v
                                    for k, v in selector.items())]

    for sname, s in services.items():
        if s["spec"].get("type") == "ExternalName":
            continue
        matched = pods_matching(s["spec"].get("selector", {}))
        if not matched:
            err(f"{name} Service {sname}", "selects no Deployment's pods")
        for p in s["spec"].get("ports", []):
            tp = p.get("targetPort")
            if isinstance(tp, str):
                names = {cp.get("name") for m in matched
                         for c in deployments[m]["spec"]["template"]["spec"]["containers"]
                         for cp in c.get("ports", [])}
                if tp not in names:
                    err(f"{name} Service {sname}", f"targetPort {tp} is no container port")
    for pname, p in by_kind.get("PodDisruptionBudget", {}).items():
        if not pods_matching(p["spec"]["selector"].get("matchLabels", {})):
            err(f"{name} PodDisruptionBudget {pname}", "selects no Deployment's pods")
    for dep in ("tirage-api", "tirage-worker"):
        if not any(pods_matching(p["spec"]["selector"].get("matchLabels", {})) == [dep]
                   for p in by_kind.get("PodDisruptionBudget", {}).values()):
            err(name, f"no PodDisruptionBudget for {dep}")
    for hname, h in hpas.items():
        ref = h["spec"]["scaleTargetRef"]
        if ref["kind"] != "Deployment" or ref["name"] not in deployments:
            err(f"{name} HPA {hname}", f"targets unknown {ref['kind']} {ref['name']}")
        if not any(m.get("resource", {}).get("name") == "cpu" for m in h["spec"].get("metrics", [])):
            err(f"{name} HPA {hname}", "does not scale on CPU")
    hpa_targets = [h["spec"]["scaleTargetRef"]["name"] for h in hpas.values()]
    so_targets = [s["spec"]["scaleTargetRef"]["name"] for s in scaled.values()]
    if "tirage-api" not in hpa_targets:
        err(name, "no HPA for tirage-api")
    for dep in ("tirage-worker",):
        n = hpa_targets.count(dep) + so_targets.count(dep)
        if n != 1:
            err(name, f"{dep} must have exactly one autoscaler (HPA or ScaledObject), has {n}")
    # A Redis the overlay runs itself must persist, as every deploy does (docs/RELIABILITY.md).
    redis = deployments.get("redis")
    if redis:
        spec = redis["spec"]["template"]["spec"]
        args = " ".join(spec["containers"][0].get("args", []))
        if "--appendonly yes" not in args or "--appendfsync everysec" not in args:
            err(f"{name} Deployment redis", "needs AOF (--appendonly yes --appendfsync everysec)")
        if not any("persistentVolumeClaim" in v for v in spec.get("volumes", [])):
            err(f"{name} Deployment redis", "keeps its AOF on no PersistentVolumeClaim")
    check_keda(name, by_kind, deployments, secrets, secret_keys)
    check_ingress(name, by_kind.get("Ingress", {}), services, nginx_template)
    check_k8s_security(name, by_kind, err)
    # What kustomize renders of k8s/components/monitoring: still alerts.yml's groups.
    for rname, rule in by_kind.get("PrometheusRule", {}).items():
        check_prometheus_rule(f"{name} PrometheusRule {rname}",
                              load_yaml(str(REPO / "deploy/prometheus/alerts.yml")), rule, err)
    finish(f"k8s {name}")


def check_keda(name, by_kind, deployments, secrets, secret_keys) -> None:
    auths = by_kind.get("TriggerAuthentication", {})
    for aname, a in auths.items():
        for ref in a["spec"].get("secretTargetRef", []):
            if ref["name"] not in secrets or ref["key"] not in secret_keys(secrets[ref["name"]]):
                err(f"{name} TriggerAuthentication {aname}",
                    f"secret {ref['name']}/{ref['key']} does not exist")
    for sname, s in by_kind.get("ScaledObject", {}).items():
        where = f"{name} ScaledObject {sname}"
        spec = s["spec"]
        if spec["scaleTargetRef"]["name"] not in deployments:
            err(where, f"targets unknown Deployment {spec['scaleTargetRef']['name']}")
        if spec.get("minReplicaCount", 0) > spec.get("maxReplicaCount", 100):
            err(where, "minReplicaCount > maxReplicaCount")
        rabbit = [t for t in spec.get("triggers", []) if t.get("type") == "rabbitmq"]
        if not rabbit:
            err(where, "no rabbitmq trigger")
        for t in rabbit:
            md = t.get("metadata", {})
            if md.get("mode") not in ("QueueLength", "MessageRate"):
                err(where, f"rabbitmq trigger mode {md.get('mode')}")
            if not str(md.get("value", "")).isdigit():
                err(where, "rabbitmq trigger needs a numeric value")
            # The work queues are `{[amqp] queue_prefix}.resize` and `.effects`, one per lane
            # (amqp/src/topology.rs).
            prefix = setting("amqp", "queue_prefix", "tirage")
            queues = {f"{prefix}.resize", f"{prefix}.effects"}
            if md.get("queueName") not in queues:
                err(where, f"queueName {md.get('queueName')} is not a work queue {sorted(queues)}")
        watched = {t.get("metadata", {}).get("queueName") for t in rabbit}
        lanes = {f"{setting('amqp', 'queue_prefix', 'tirage')}.{lane}" for lane in ("resize", "effects")}
        if spec.get("minReplicaCount", 0) == 0 and not lanes <= watched:
            # Scaled to zero, a worker wakes only for what a trigger watches.
            err(where, f"scales to zero but does not watch every lane: {sorted(lanes - watched)}")
        for t in rabbit:
            md = t.get("metadata", {})
            ref = t.get("authenticationRef", {}).get("name")
            if ref not in auths and "host" not in md and "hostFromEnv" not in md:
                err(where, f"rabbitmq trigger has no broker address (authenticationRef {ref})")


def check_ingress(name: str, ingresses: dict, services: dict, nginx_template: str) -> None:
    """The ingress-nginx annotations must say what deploy/nginx/tirage.conf.template says for
    the same paths, so the cluster behaves like the local and compose proxies."""
    locs = nginx_locations(Path(nginx_template))

    def location_for(path: str) -> str:
        """The template's regex location for the same anchored path, else `location /`."""
        for k in locs:
            if k.startswith("~") and k.split()[-1].lstrip("^") == path:
                return k
        return "/"

    a = "nginx.ingress.kubernetes.io/"
    for iname, ing in ingresses.items():
        where = f"{name} Ingress {iname}"
        if ing["spec"].get("ingressClassName") != "nginx":
            err(where, "ingressClassName should be nginx")
        ann = ing["metadata"].get("annotations", {})
        for rule in ing["spec"].get("rules", []):
            for p in rule.get("http", {}).get("paths", []):
                svc = p["backend"]["service"]
                if svc["name"] not in services:
                    err(where, f"backend Service {svc['name']} does not exist")
                else:
                    pnames = {sp.get("name") for sp in services[svc["name"]]["spec"]["ports"]}
                    if svc["port"].get("name") and svc["port"]["name"] not in pnames:
                        err(where, f"backend port {svc['port']['name']} does not exist")
                loc = locs[location_for(p["path"])]
                want = {
                    "proxy-body-size": loc["client_max_body_size"],
                    "proxy-next-upstream": loc["proxy_next_upstream"],
                    "proxy-next-upstream-tries": loc["proxy_next_upstream_tries"],
                    "proxy-next-upstream-timeout": str(seconds(loc["proxy_next_upstream_timeout"])),
                    "proxy-connect-timeout": str(seconds(loc["proxy_connect_timeout"])),
                    "proxy-read-timeout": str(seconds(loc["proxy_read_timeout"])),
                    "proxy-send-timeout": str(seconds(loc["proxy_send_timeout"])),
                    "proxy-request-buffering": loc.get("proxy_request_buffering", "on"),
                    "proxy-buffering": loc.get("proxy_buffering", "on"),
                }
                if loc["proxy_next_upstream"] == "off":
                    # Never retried: how many tries, and for how long, says nothing.
                    del want["proxy-next-upstream-tries"], want["proxy-next-upstream-timeout"]
                # ingress-nginx's defaults where an annotation is absent.
                defaults = {"proxy-request-buffering": "on", "proxy-buffering": "off"}
                for k, v in want.items():
                    have = ann.get(a + k, defaults.get(k))
                    if have != v:
                        err(where, f"{p['path']}: annotation {k}={have!r} but the nginx "
                            f"template says {v!r}")


def check_compose_override(compose_path: str, override_path: str) -> None:
    """scripts/compose.sh runs docker-compose.yml with deploy/podman/compose.local.yml on top:
    that override may give a service of the compose file another image, nothing else, so
    what runs locally is the compose file's own topology and configuration."""
    with open(compose_path) as f:
        services = yaml.safe_load(f).get("services", {})
    with open(override_path) as f:
        override = yaml.safe_load(f) or {}
    for key in override:
        if key != "services":
            err(override_path, f"top-level '{key}': the override may only name services' images")
    for name, spec in (override.get("services") or {}).items():
        if name not in services:
            err(override_path, f"service '{name}' is not in {compose_path}")
        for key in spec or {}:
            if key != "image":
                err(override_path, f"service '{name}' sets '{key}': only 'image' may be swapped")
    for name in services:
        if "image" not in ((override.get("services") or {}).get(name) or {}):
            err(override_path, f"service '{name}' keeps a registry image this machine cannot pull")
    finish(f"compose override ({override_path})")


def main() -> None:
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "compose-nginx-env":
        compose_nginx_env(sys.argv[2])
    elif cmd == "compose":
        check_compose(sys.argv[2], sys.argv[3])
    elif cmd == "compose-override":
        check_compose_override(sys.argv[2], sys.argv[3])
    elif cmd == "k8s":
        check_k8s(sys.argv[2], sys.argv[3], sys.argv[4])
    elif cmd == "nginx":
        check_proxy_config(sys.argv[2], nginx_locations(Path(sys.argv[2])), err)
        finish(f"nginx ({sys.argv[2]})")
    elif cmd == "rules":
        check_rules(*(Path(a) for a in sys.argv[2:6]), err)
        finish(f"alert rules ({sys.argv[2]})")
    elif cmd == "sources":
        check_k8s_sources(Path(sys.argv[2]).resolve(), err)
        check_committed_credentials(tracked_deploy_files(), err)
        finish("committed deploy files")
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
