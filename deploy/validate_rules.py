"""The alert rules of issue 25, checked by deploy/validate.py (`rules`, and `k8s` for every
rendered PrometheusRule):

- deploy/prometheus/alerts.yml: every rule is a recording rule or an alert with `expr`, `for`,
  a `severity` of page or ticket, a summary, a description and a `runbook_url` that names
  the alert's own section of docs/RUNBOOK.md (at the repository's address, Cargo.toml);
  alert names are unique, and every `## Tirage…` section of the runbook is an alert's, with
  commands for docker compose and for kubectl;
- deploy/prometheus/alerts_test.yml loads alerts.yml and tests each alert both firing (a case
  that expects it) and quiet (a case that expects nothing), and names no alert that does not
  exist (promtool passes a case expecting nothing of an unknown alert);
- the PrometheusRule of k8s/components/monitoring carries exactly the groups of alerts.yml.
  This file, run as a script, writes it from alerts.yml (bare python3, no venv needed):
      python3 deploy/validate_rules.py deploy/prometheus/alerts.yml \
        > k8s/components/monitoring/prometheusrule.yaml

`promtool check rules` and `promtool test rules` (scripts/validate-deploy.sh) say that the
rules parse and behave; these checks say that the pieces agree.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parent.parent
SEVERITIES = ("page", "ticket")
ANNOTATIONS = ("summary", "description", "runbook_url")
RUNBOOK = "docs/RUNBOOK.md"

Err = Callable[[str, str], None]

PROMETHEUS_RULE_HEAD = """\
# The alert rules of deploy/prometheus/alerts.yml for the Prometheus Operator: the same groups,
# written out from that file by
#   python3 deploy/validate_rules.py deploy/prometheus/alerts.yml \\
#     > k8s/components/monitoring/prometheusrule.yaml
# Edit alerts.yml, never this file: scripts/validate-deploy.sh fails when the two differ.
# Which Prometheus loads it depends on its ruleSelector: kube-prometheus selects
# `role: alert-rules` and `prometheus: k8s` (below); kube-prometheus-stack selects
# `release: <its Helm release>`, which your overlay adds (docs/DEPLOY.md, "Alerts").
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: tirage-alerts
  labels:
    app.kubernetes.io/name: tirage
    app.kubernetes.io/part-of: tirage
    prometheus: k8s
    role: alert-rules
spec:
  groups:
"""


def load(path: Path):
    import yaml  # PyYAML: the checks need it, writing the PrometheusRule does not

    with open(path) as f:
        return yaml.safe_load(f)


def prometheus_rule_text(alerts_path: Path) -> str:
    """The PrometheusRule manifest: alerts.yml's groups, as written (comments, block scalars),
    under `spec.groups`."""
    lines = alerts_path.read_text().splitlines()
    try:
        start = lines.index("groups:") + 1
    except ValueError:
        raise SystemExit(f"{alerts_path}: no top-level `groups:` line") from None
    body = [("  " + line) if line.strip() else "" for line in lines[start:]]
    return PROMETHEUS_RULE_HEAD + "\n".join(body).rstrip("\n") + "\n"


def github_anchor(heading: str) -> str:
    """The anchor GitHub (and most Markdown renderers) give a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def runbook_base() -> str:
    with (REPO / "Cargo.toml").open("rb") as f:
        repository = tomllib.load(f)["workspace"]["package"]["repository"]
    return f"{repository.rstrip('/')}/blob/main/{RUNBOOK}#"


def alerts_of(doc: dict) -> list[dict]:
    return [r for g in (doc or {}).get("groups") or [] for r in g.get("rules") or []
            if "alert" in r]


def runbook_sections(text: str) -> dict[str, str]:
    """`## Heading` → the section's text, up to the next heading of level 1 or 2 (a `#` line
    inside a fenced code block is a shell comment, not a heading)."""
    sections: dict[str, str] = {}
    current: str | None = None
    fenced = False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        m = None if fenced else re.match(r"(#{1,2}) (.+)$", line)
        if m:
            current = m.group(2).strip() if len(m.group(1)) == 2 else None
            if current is not None:
                sections[current] = ""
        elif current is not None:
            sections[current] += line + "\n"
    return sections


def check_alert_rules(where: str, doc: dict, runbook_text: str, base: str, err: Err) -> None:
    groups = (doc or {}).get("groups")
    if not groups:
        err(where, "no rule groups")
        return
    names: set[str] = set()
    sections = runbook_sections(runbook_text)
    anchors = {github_anchor(h) for h in sections}
    for g in groups:
        gname = g.get("name")
        if not g.get("rules"):
            err(f"{where} group {gname}", "has no rules")
        for r in g.get("rules") or []:
            if "record" in r:
                if "expr" not in r:
                    err(f"{where} record {r['record']}", "has no expr")
                continue
            name = r.get("alert")
            at = f"{where} alert {name}"
            if not name:
                err(f"{where} group {gname}", f"a rule is neither an alert nor a recording rule: {r}")
                continue
            if name in names:
                err(at, "is defined twice")
            names.add(name)
            for key in ("expr", "for"):
                if key not in r:
                    err(at, f"has no `{key}`")
            severity = (r.get("labels") or {}).get("severity")
            if severity not in SEVERITIES:
                err(at, f"severity {severity!r}, not one of {SEVERITIES}")
            ann = r.get("annotations") or {}
            for key in ANNOTATIONS:
                if not str(ann.get(key, "")).strip():
                    err(at, f"has no annotation `{key}`")
            want = base + github_anchor(name)
            if ann.get("runbook_url") and ann["runbook_url"] != want:
                err(at, f"runbook_url {ann['runbook_url']} should be {want}")
            if github_anchor(name) not in anchors:
                err(at, f"{RUNBOOK} has no section `## {name}`")
            else:
                for tool in ("docker compose", "kubectl"):
                    if tool not in sections.get(name, ""):
                        err(at, f"its {RUNBOOK} section gives no `{tool}` command")
    for heading in sections:
        if heading.startswith("Tirage") and heading not in names:
            err(RUNBOOK, f"section `## {heading}` names no alert of {where}")


def check_rule_tests(where: str, tests: dict, alerts_path: Path, tests_path: Path,
                     doc: dict, err: Err) -> None:
    files = [(tests_path.parent / f).resolve() for f in (tests or {}).get("rule_files") or []]
    if alerts_path.resolve() not in files:
        err(where, f"rule_files does not load {alerts_path}")
    alerts = {a["alert"] for a in alerts_of(doc)}
    firing: set[str] = set()
    quiet: set[str] = set()
    for t in (tests or {}).get("tests") or []:
        for case in t.get("alert_rule_test") or []:
            name = case.get("alertname")
            if name not in alerts:
                err(f"{where} test {t.get('name')!r}", f"alert {name} does not exist")
            (firing if case.get("exp_alerts") else quiet).add(name)
    for name in sorted(alerts):
        if name not in firing:
            err(where, f"no case where {name} fires")
        if name not in quiet:
            err(where, f"no case where {name} stays quiet")


def check_prometheus_rule(where: str, doc: dict, rule: dict, err: Err) -> None:
    if rule.get("apiVersion") != "monitoring.coreos.com/v1" or rule.get("kind") != "PrometheusRule":
        err(where, f"is a {rule.get('apiVersion')} {rule.get('kind')}, not a "
            "monitoring.coreos.com/v1 PrometheusRule")
    groups = (rule.get("spec") or {}).get("groups")
    want = (doc or {}).get("groups")
    if groups == want:
        return
    theirs = {g.get("name"): g for g in groups or []}
    ours = {g.get("name"): g for g in want or []}
    if list(theirs) != list(ours):
        err(where, f"groups {list(theirs)} but alerts.yml has {list(ours)}")
    for gname in ours.keys() & theirs.keys():
        a, b = ours[gname].get("rules") or [], theirs[gname].get("rules") or []
        if ours[gname] == theirs[gname]:
            continue
        if len(a) != len(b):
            err(where, f"group {gname}: {len(b)} rules, alerts.yml has {len(a)}")
        for ra, rb in zip(a, b):
            if ra != rb:
                err(where, f"group {gname}: {rb.get('alert') or rb.get('record')} differs from "
                    f"alerts.yml's {ra.get('alert') or ra.get('record')}")
        if len(a) == len(b) and a == b:
            err(where, f"group {gname}: differs from alerts.yml outside its rules")
    err(where, "drifted from deploy/prometheus/alerts.yml: write it again with "
        "`python3 deploy/validate_rules.py deploy/prometheus/alerts.yml "
        "> k8s/components/monitoring/prometheusrule.yaml`")


def check_rules(alerts_path: Path, tests_path: Path, rule_path: Path, runbook_path: Path,
                err: Err) -> None:
    doc = load(alerts_path)
    check_alert_rules(str(alerts_path), doc, runbook_path.read_text(), runbook_base(), err)
    check_rule_tests(str(tests_path), load(tests_path), alerts_path, tests_path, doc, err)
    check_prometheus_rule(str(rule_path), doc, load(rule_path), err)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: validate_rules.py deploy/prometheus/alerts.yml > PROMETHEUSRULE")
    sys.stdout.write(prometheus_rule_text(Path(sys.argv[1])))
