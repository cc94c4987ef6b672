"""What `docker compose up` does that podman-compose cannot do with Debian's podman 4.3, for
scripts/compose.sh. Both read the compose project as podman-compose created it.

    orchestrate.py health PROJECT
        Runs each running container's healthcheck (as the compose file defines it), forever.
        podman 4.3 schedules healthchecks with systemd timers, and these machines have no
        systemd: without this loop every health status would stay `starting`. A container
        that is not yet healthy is probed every 2 s (Docker's start_interval), then at its
        own interval. Exits by itself once the project has had no container for a minute.

    orchestrate.py start PROJECT CONFIG TIMEOUT
        CONFIG is the merged compose file (`podman-compose config`). Starts the project's
        created containers service by service in depends_on order, each once its dependencies
        meet their condition (service_started, service_healthy,
        service_completed_successfully): podman-compose ignores the health conditions before
        podman 4.6. Then waits until every service's containers run and are healthy (or, for
        a one-shot service, exited 0). Exit 1, with the culprits' logs, when a dependency
        fails or TIMEOUT seconds pass.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import yaml

STARTING_PROBE_SECS = 2.0
LABEL_PROJECT = "io.podman.compose.project"
LABEL_SERVICE = "com.docker.compose.service"


def podman(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout)


def containers(project: str, running_only: bool = False) -> list[dict]:
    """The project's containers, inspected: name, service, state, health, healthcheck."""
    args = ["ps", "-a", "-q", "--filter", f"label={LABEL_PROJECT}={project}"]
    if running_only:
        args += ["--filter", "status=running"]
    ids = podman(*args).stdout.split()
    if not ids:
        return []
    out = podman("inspect", *ids)
    if out.returncode != 0:
        # One went away between ps and inspect (removed by `down`): ask once more.
        ids = podman(*args).stdout.split()
        out = podman("inspect", *ids) if ids else None
        if out is None or out.returncode != 0:
            return []
    result = []
    for c in json.loads(out.stdout):
        state = c["State"]
        result.append({
            "id": c["Id"],
            "name": c["Name"],
            "service": c["Config"]["Labels"].get(LABEL_SERVICE, ""),
            "status": state["Status"],
            "exit_code": state.get("ExitCode", 0),
            "started_at": state.get("StartedAt", ""),
            "health": (state.get("Health") or {}).get("Status", ""),
            "healthcheck": c["Config"].get("Healthcheck"),
        })
    return result


# --- health ---------------------------------------------------------------------------------

def health(project: str) -> None:
    due: dict[str, float] = {}  # container id + start time -> next probe
    busy: set[str] = set()
    lock = threading.Lock()
    empty_since = time.monotonic()

    def probe(key: str, name: str, timeout: float) -> None:
        try:
            podman("healthcheck", "run", name, timeout=timeout + 10)
        except subprocess.TimeoutExpired:
            print(f"health: {name}: probe did not return", flush=True)
        finally:
            with lock:
                busy.discard(key)

    with ThreadPoolExecutor(max_workers=4) as pool:
        while True:
            now = time.monotonic()
            running = containers(project, running_only=True)
            if running or podman("ps", "-a", "-q", "--filter",
                                 f"label={LABEL_PROJECT}={project}").stdout.strip():
                empty_since = now
            elif now - empty_since > 60:
                print(f"health: project {project} has no container any more; done", flush=True)
                return
            for c in running:
                hc = c["healthcheck"]
                if not hc or hc.get("Test", ["NONE"])[0] == "NONE":
                    continue
                # A restarted container is a new run: probe it from the start again.
                key = f"{c['id']}@{c['started_at']}"
                interval = hc.get("Interval", 30_000_000_000) / 1e9
                with lock:
                    if key not in due:  # first seen: the first probe a second after start
                        due[key] = now + 1.0
                    if key in busy or now < due[key]:
                        continue
                    busy.add(key)
                    pace = interval if c["health"] == "healthy" else min(interval, STARTING_PROBE_SECS)
                    due[key] = now + pace
                pool.submit(probe, key, c["name"], hc.get("Timeout", 30_000_000_000) / 1e9)
            time.sleep(1.0)


# --- start ----------------------------------------------------------------------------------

class Failed(Exception):
    pass


def depends(service: dict) -> dict[str, str]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return {d: "service_started" for d in deps}
    return {d: (v or {}).get("condition", "service_started") for d, v in deps.items()}


def order(services: dict) -> list[str]:
    done: list[str] = []

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in done:
            return
        if name in path:
            raise Failed(f"depends_on cycle: {' -> '.join(path + (name,))}")
        for dep in depends(services[name]):
            if dep not in services:
                raise Failed(f"{name} depends on unknown service {dep}")
            visit(dep, path + (name,))
        done.append(name)

    for name in sorted(services):
        visit(name, ())
    return done


def logs(name: str) -> str:
    out = podman("logs", "--tail", "30", name)
    return (out.stdout + out.stderr).rstrip()


def met(service: str, condition: str, spec: dict, mine: list[dict]) -> bool:
    """Whether every container of `service` meets `condition`; raises when it never will."""
    if not mine:
        raise Failed(f"service {service} has no container")
    for c in mine:
        one_shot = str(spec.get("restart", "no")) in ("no", "False", "false")
        if c["status"] == "exited" and c["exit_code"] != 0 and one_shot:
            raise Failed(f"{c['name']} exited with {c['exit_code']}:\n{logs(c['name'])}")
        if condition == "service_started" and c["status"] not in ("running", "exited", "stopped"):
            return False
        if condition == "service_healthy":
            if not spec.get("healthcheck") or spec["healthcheck"].get("disable"):
                raise Failed(f"service_healthy on {service}, which has no healthcheck")
            if c["status"] != "running" or c["health"] != "healthy":
                return False
        if condition == "service_completed_successfully" and c["status"] != "exited":
            return False
    return True


def ready(service: str, spec: dict, mine: list[dict]) -> bool:
    if spec.get("healthcheck") and not spec["healthcheck"].get("disable"):
        return met(service, "service_healthy", spec, mine)
    if str(spec.get("restart", "no")) in ("no", "False", "false") and \
            all(c["status"] == "exited" for c in mine):
        return met(service, "service_completed_successfully", spec, mine)
    return all(c["status"] == "running" for c in mine)


def start(project: str, config_path: str, timeout: float) -> None:
    with open(config_path) as f:
        services = yaml.safe_load(f)["services"]
    deadline = time.monotonic() + timeout

    def by_service() -> dict[str, list[dict]]:
        found: dict[str, list[dict]] = {s: [] for s in services}
        for c in containers(project):
            found.setdefault(c["service"], []).append(c)
        return found

    def wait(what: str, check) -> None:
        while True:
            if check(by_service()):
                return
            if time.monotonic() > deadline:
                table = "\n".join(f"  {c['name']}: {c['status']} {c['health']}"
                                  for cs in by_service().values() for c in cs)
                raise Failed(f"timed out after {timeout:.0f} s waiting for {what}:\n{table}")
            time.sleep(0.5)

    for name in order(services):
        for dep, condition in depends(services[name]).items():
            wait(f"{name}'s dependency {dep} ({condition})",
                 lambda found, d=dep, cond=condition: met(d, cond, services[d], found[d]))
        # Created ones, and stopped ones of a long-running service (as `docker compose up`
        # starts them again); a one-shot service that already ran is not run again.
        one_shot = str(services[name].get("restart", "no")) in ("no", "False", "false")
        fresh = [c["name"] for c in by_service()[name]
                 if c["status"] in ("created", "configured")
                 or (c["status"] in ("exited", "stopped") and not one_shot)]
        if fresh:
            out = podman("start", *fresh, timeout=120)
            if out.returncode != 0:
                raise Failed(f"podman start {' '.join(fresh)}: {out.stderr.strip()}")
            print(f"compose: started {', '.join(fresh)}", flush=True)
    for name in services:
        wait(f"{name} to be ready", lambda found, n=name: ready(n, services[n], found[n]))
    for name, cs in sorted(by_service().items()):
        states = ", ".join(f"{c['name']} {c['status']}{' ' + c['health'] if c['health'] else ''}"
                           for c in cs)
        print(f"compose: {name}: {states}", flush=True)


def main() -> None:
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    try:
        if cmd == "health" and len(sys.argv) == 3:
            health(sys.argv[2])
        elif cmd == "start" and len(sys.argv) == 5:
            start(sys.argv[2], sys.argv[3], float(sys.argv[4]))
        else:
            print(__doc__, file=sys.stderr)
            sys.exit(2)
    except Failed as e:
        print(f"compose: FAILED: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
