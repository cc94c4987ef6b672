"""The alert-rule checks (deploy/validate_rules.py) against today's files, which they must
pass, and against altered copies, which they must refuse. Run by scripts/validate-deploy.sh:
    python -m unittest discover -s deploy/tests -t deploy   (the validate-deploy venv's python)
"""

from __future__ import annotations

import copy
import tempfile
import unittest
from pathlib import Path

import yaml

import validate_rules as vr

REPO = Path(__file__).resolve().parents[2]
ALERTS = REPO / "deploy/prometheus/alerts.yml"
TESTS = REPO / "deploy/prometheus/alerts_test.yml"
RULE = REPO / "k8s/components/monitoring/prometheusrule.yaml"
RUNBOOK = REPO / "docs/RUNBOOK.md"


class Errors(list):
    def __call__(self, where: str, msg: str) -> None:
        self.append(f"{where}: {msg}")

    def naming(self, *words: str) -> list[str]:
        return [e for e in self if all(w in e for w in words)]


def alert(doc: dict, name: str) -> dict:
    return next(a for a in vr.alerts_of(doc) if a["alert"] == name)


class TodaysFiles(unittest.TestCase):
    def test_the_rules_their_tests_their_prometheusrule_and_the_runbook_agree(self):
        errors = Errors()
        vr.check_rules(ALERTS, TESTS, RULE, RUNBOOK, errors)
        self.assertEqual(errors, [])

    def test_the_committed_prometheusrule_is_what_the_writer_writes(self):
        self.assertEqual(RULE.read_text(), vr.prometheus_rule_text(ALERTS))


class Refusals(unittest.TestCase):
    def setUp(self):
        self.doc = vr.load(ALERTS)
        self.tests = vr.load(TESTS)
        self.rule = vr.load(RULE)
        self.runbook = RUNBOOK.read_text()
        self.base = vr.runbook_base()

    def test_a_prometheusrule_whose_expression_drifted(self):
        rule = copy.deepcopy(self.rule)
        alert(rule["spec"], "TirageIntakePaused")["expr"] = "avg(tirage_worker_paused) > 0.9"
        errors = Errors()
        vr.check_prometheus_rule("rule", self.doc, rule, errors)
        self.assertTrue(errors.naming("TirageIntakePaused", "differs"), errors)
        self.assertTrue(errors.naming("drifted"), errors)

    def test_a_prometheusrule_missing_a_group(self):
        rule = copy.deepcopy(self.rule)
        rule["spec"]["groups"].pop()
        errors = Errors()
        vr.check_prometheus_rule("rule", self.doc, rule, errors)
        self.assertTrue(errors.naming("groups"), errors)

    def test_an_alert_without_a_runbook_section(self):
        errors = Errors()
        runbook = self.runbook.replace("## TirageWorkerPaused\n", "## Paused worker\n")
        vr.check_alert_rules("alerts", self.doc, runbook, self.base, errors)
        self.assertTrue(errors.naming("TirageWorkerPaused", "no section"), errors)

    def test_a_runbook_section_of_no_alert(self):
        errors = Errors()
        runbook = self.runbook + "\n## TirageGone\n\ndocker compose ps; kubectl get pods\n"
        vr.check_alert_rules("alerts", self.doc, runbook, self.base, errors)
        self.assertTrue(errors.naming("TirageGone", "names no alert"), errors)

    def test_an_alert_without_severity_for_or_runbook_url(self):
        doc = copy.deepcopy(self.doc)
        a = alert(doc, "TirageApi5xxHigh")
        a["labels"]["severity"] = "critical"
        del a["for"]
        a["annotations"]["runbook_url"] = "https://example.invalid/elsewhere#tirageapi5xxhigh"
        errors = Errors()
        vr.check_alert_rules("alerts", doc, self.runbook, self.base, errors)
        self.assertTrue(errors.naming("TirageApi5xxHigh", "severity"), errors)
        self.assertTrue(errors.naming("TirageApi5xxHigh", "`for`"), errors)
        self.assertTrue(errors.naming("TirageApi5xxHigh", "runbook_url"), errors)

    def test_an_alert_tested_only_firing_and_a_test_of_an_unknown_alert(self):
        tests = copy.deepcopy(self.tests)
        for t in tests["tests"]:
            t["alert_rule_test"] = [c for c in t.get("alert_rule_test", [])
                                    if c["alertname"] != "TirageQueueWaitHigh" or c.get("exp_alerts")]
        tests["tests"][0]["alert_rule_test"].append({"eval_time": "1m", "alertname": "TirageTypo",
                                                     "exp_alerts": []})
        errors = Errors()
        vr.check_rule_tests("tests", tests, ALERTS, TESTS, self.doc, errors)
        self.assertTrue(errors.naming("TirageQueueWaitHigh", "stays quiet"), errors)
        self.assertTrue(errors.naming("TirageTypo", "does not exist"), errors)

    def test_tests_that_load_other_rules(self):
        with tempfile.TemporaryDirectory() as tmp:
            tests = dict(self.tests, rule_files=["other.yml"])
            path = Path(tmp) / "alerts_test.yml"
            path.write_text(yaml.safe_dump(tests))
            errors = Errors()
            vr.check_rule_tests("tests", tests, ALERTS, path, self.doc, errors)
        self.assertTrue(errors.naming("rule_files"), errors)


if __name__ == "__main__":
    unittest.main()
