"""The dashboard checks (deploy/validate_dashboard.py): its PromQL extractor on expressions
written to trip it, today's dashboard (which must pass), altered copies (which must fail), and
the check against /metrics dumps. Run by scripts/validate-deploy.sh:
    python -m unittest discover -s deploy/tests -t deploy   (the validate-deploy venv's python)
"""

from __future__ import annotations

import copy
import io
import json
import tempfile
import unittest
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import validate_dashboard as vd

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "deploy/grafana/tirage.json"


class Errors(list):
    def __call__(self, where: str, msg: str) -> None:
        self.append(f"{where}: {msg}")

    def naming(self, *words: str) -> list[str]:
        return [e for e in self if all(w in e for w in words)]


class Extractor(unittest.TestCase):
    def names(self, expr: str) -> set[str]:
        return vd.metric_names(expr)

    def test_a_bare_name_and_one_with_matchers(self):
        self.assertEqual(self.names("up"), {"up"})
        self.assertEqual(self.names('tirage_worker_paused{namespace="x"} == 1'),
                         {"tirage_worker_paused"})

    def test_functions_aggregations_and_ranges_are_not_names(self):
        expr = ('histogram_quantile(0.95, sum by (le, kind) '
                '(rate(tirage_worker_job_duration_seconds_bucket[$__rate_interval])))')
        q = vd.parse(expr)
        self.assertEqual(q.names, {"tirage_worker_job_duration_seconds_bucket"})
        self.assertEqual(q.grouping, {"le", "kind"})

    def test_grouping_after_the_aggregation_and_keywords_in_any_case(self):
        q = vd.parse("SUM(rate(a_total[5m])) BY (route) / Sum Without (pod) (b_total)")
        self.assertEqual(q.names, {"a_total", "b_total"})
        self.assertEqual(q.grouping, {"route", "pod"})

    def test_binary_keywords_vector_matching_and_bool(self):
        expr = ('sum by (namespace, queue) (x_ready{queue=~`.+\\.(resize|effects)`}) > 0\n'
                'and on (namespace, queue) group_left (team)\n'
                'sum by (namespace, queue) (x_consumers) == bool 0 unless y or atan2 z')
        q = vd.parse(expr)
        self.assertEqual(q.names, {"x_ready", "x_consumers", "y", "z"})
        self.assertEqual(q.grouping, {"namespace", "queue", "team"})

    def test_group_left_without_labels(self):
        self.assertEqual(self.names("a * on (x) group_left b"), {"a", "b"})

    def test_offsets_at_modifiers_subqueries_and_numbers(self):
        expr = ("(a_total unless a_total offset 15m) + rate(b_total[1h:5m] @ start()) "
                "- c offset -1h30m * 1e3 + 0x1F + Inf - NaN + d @ 1609746000")
        self.assertEqual(self.names(expr), {"a_total", "b_total", "c", "d"})

    def test_strings_that_look_like_names_or_brackets(self):
        expr = ('label_replace(m{route="/v1/{id}", x!~"sum(by)"}, "dst", "$1", "src", "(.*)")'
                ' + count_values("version", build_info) + n{path=\'a}b\'}')
        q = vd.parse(expr)
        self.assertEqual(q.names, {"m", "build_info", "n"})
        self.assertEqual(q.written, {"dst", "version"})
        self.assertEqual([sorted(s.labels) for s in q.selectors], [["route", "x"], [], ["path"]])

    def test_label_names_that_are_keywords(self):
        q = vd.parse('a{on="1", by="2", sum="3"}')
        self.assertEqual(q.names, {"a"})
        self.assertEqual(q.selectors[0].labels, {"on", "by", "sum"})

    def test_names_given_as_matchers(self):
        self.assertEqual(self.names('{__name__="a_total", job="x"} + {"b_total", job="y"}'),
                         {"a_total", "b_total"})

    def test_grafana_variables_and_comments(self):
        expr = ('sum(rate(a{namespace=~"$namespace", pod=~"${pod:regex}"}[$__rate_interval]))'
                ' # b_total in a comment\n* $factor + c[[[interval]]]')
        self.assertEqual(self.names(expr), {"a", "c"})

    def test_recording_rule_names_are_names(self):
        self.assertEqual(self.names('namespace:tirage_worker_jobs:increase15m{outcome="x"}'),
                         {"namespace:tirage_worker_jobs:increase15m"})

    def test_refusals(self):
        for expr, words in [
            ("rate(a[5m]", "missing ')'"),
            ("rate(a[5m]))", "unbalanced ')'"),
            ("a}", "unbalanced '}'"),
            ("raet(a[5m])", "unknown function raet"),
            ('{job="x"}', "without a metric name"),
            ('a{job="x"', "expected"),
            ("a{job=x}", "quoted value"),
            ('a{job~"x"}', "unexpected"),
            ("sum by route (a)", "'(' expected after by"),
            ("a offset", "duration expected"),
            ('a{__name__="b"}', "named twice"),
        ]:
            with self.subTest(expr=expr):
                with self.assertRaises(vd.PromQLError) as cm:
                    vd.parse(expr)
                self.assertIn(words, str(cm.exception))

    def test_variable_queries(self):
        q, label = vd.variable_query("label_values(tirage_api_http_requests_total, namespace)")
        self.assertEqual((q.names, label), ({"tirage_api_http_requests_total"}, "namespace"))
        q, label = vd.variable_query('label_values(a{job="x"},instance)')
        self.assertEqual((q.names, label), ({"a"}, "instance"))
        q, label = vd.variable_query("label_values(namespace)")
        self.assertEqual((q.names, label), (set(), "namespace"))
        q, _ = vd.variable_query("query_result(topk(5, sum by (route) (b_total)))")
        self.assertEqual(q.names, {"b_total"})
        with self.assertRaises(vd.PromQLError):
            vd.variable_query("up")

    def test_allowances_in_a_description(self):
        text = ("Callbacks.\n\nNot in /metrics before their first events: `a_total`, `b_total` "
                "and `c_total` (a reason\nover two lines). Not in /metrics before its first "
                "event: `d_total` ()")
        self.assertEqual(vd.allowances(text), {"a_total": "a reason over two lines",
                                               "b_total": "a reason over two lines",
                                               "c_total": "a reason over two lines",
                                               "d_total": ""})
        self.assertEqual(vd.allowances("may be absent: `a_total`"), {})


class Sources(unittest.TestCase):
    def test_the_registrations_of_both_processes(self):
        reg = vd.registered(REPO)
        self.assertIn("tirage_api_http_requests_total", reg.plain)
        self.assertIn("tirage_api_http_request_duration_seconds", reg.histograms)
        self.assertIn("tirage_worker_paused", reg.plain)
        self.assertIn("tirage_worker_publish_to_start_seconds", reg.histograms)
        self.assertIn("tirage_worker_job_duration_seconds_bucket", reg.series())
        self.assertNotIn("tirage_worker_job_duration_seconds", reg.series())

    def test_a_namespace_prefixes_the_names_of_its_registry(self):
        reg = vd.Registered()
        vd.registered_in('let r = Registry::new_custom(Some("ns".into()), None)?;\n'
                         'IntCounterVec::new(Opts::new("a_total", "help"), &["x"])?;\n'
                         'Histogram::with_opts(HistogramOpts::new(\n  "b_seconds", "h"))?;\n'
                         'IntGauge::new("ns_c", "already prefixed")?;', reg)
        self.assertEqual((reg.plain, reg.histograms), ({"ns_a_total", "ns_c"}, {"ns_b_seconds"}))


class TodaysDashboard(unittest.TestCase):
    def setUp(self):
        self.doc = json.loads(DASHBOARD.read_text())
        self.sources = vd.registered(REPO)

    def check(self, doc) -> Errors:
        errors = Errors()
        vd.check_dashboard(doc, errors, self.sources)
        return errors

    def panel(self, doc, title: str) -> dict:
        return next(p for p, _ in vd.panels_of(doc) if p.get("title") == title)

    def test_passes(self):
        self.assertEqual(self.check(self.doc), [])

    def test_the_command_passes(self):
        out = io.StringIO()
        with redirect_stdout(out):
            self.assertEqual(vd.main([str(DASHBOARD)]), 0)
        self.assertIn("dashboard: ok", out.getvalue())

    def test_every_rabbitmq_series_is_under_its_row_and_only_there(self):
        found = vd.check_dashboard(self.doc, Errors(), self.sources)
        rabbit = {pq.panel for pq in found for _, q in pq.queries
                  if any(n.startswith("rabbitmq_") for n in q.names)}
        under = {pq.panel for pq in found if vd.is_rabbitmq_row(pq.row)}
        self.assertTrue(rabbit)
        self.assertEqual(rabbit, under)

    def test_a_duplicate_id_a_missing_datasource_and_missing_targets(self):
        doc = copy.deepcopy(self.doc)
        self.panel(doc, "Upload bytes")["id"] = self.panel(doc, "Photos accepted")["id"]
        del self.panel(doc, "Jobs in flight")["datasource"]
        self.panel(doc, "Consumer restarts")["targets"] = []
        self.panel(doc, "Paused workers")["targets"][0]["datasource"] = {"uid": "prom"}
        errors = self.check(doc)
        self.assertTrue(errors.naming("Photos accepted", "is also"), errors)
        self.assertTrue(errors.naming("Jobs in flight", "datasource"), errors)
        self.assertTrue(errors.naming("Consumer restarts", "no targets"), errors)
        self.assertTrue(errors.naming("Paused workers", "A", "datasource"), errors)

    def test_no_datasource_variable(self):
        doc = copy.deepcopy(self.doc)
        doc["templating"]["list"] = [v for v in doc["templating"]["list"]
                                     if v["type"] != "datasource"]
        self.assertTrue(self.check(doc).naming("templating", "datasource"))

    def test_names_no_process_exports(self):
        doc = copy.deepcopy(self.doc)
        target = self.panel(doc, "Jobs in flight")["targets"][0]
        for expr, words in [
            ("sum(tirage_worker_jobs_inflight)", ["tirage_worker_jobs_inflight", "registered"]),
            ("rate(tirage_worker_job_duration_seconds[5m])", ["is a histogram", "_bucket"]),
            ("sum(namespace:tirage_worker_jobs:increase15m)", ["recording rule"]),
            ("sum(node_cpu_seconds_total)", ["neither Tirage's nor RabbitMQ's"]),
            ("sum(rabbitmq_detailed_queue_messages)", ["only panels under a RabbitMQ row"]),
            ("sum(rate(tirage_worker_jobs_total[5m)", ["PromQL"]),
        ]:
            with self.subTest(expr=expr):
                target["expr"] = expr
                self.assertTrue(self.check(doc).naming("Jobs in flight", *words),
                                self.check(doc))

    def test_a_tirage_series_under_the_rabbitmq_row(self):
        doc = copy.deepcopy(self.doc)
        self.panel(doc, "Dead-letter queue")["targets"][0]["expr"] = "sum(tirage_worker_paused)"
        self.assertTrue(self.check(doc).naming("Dead-letter queue", "not under the RabbitMQ"))

    def test_an_allowance_for_a_series_the_panel_does_not_read(self):
        doc = copy.deepcopy(self.doc)
        self.panel(doc, "Jobs in flight")["description"] += (
            "\n\nNot in /metrics before its first event: `tirage_worker_jobs_total` (none).")
        self.assertTrue(self.check(doc).naming("Jobs in flight", "does not read"))

    def test_an_unknown_metric_in_a_variable(self):
        doc = copy.deepcopy(self.doc)
        var = next(v for v in doc["templating"]["list"] if v["type"] == "query")
        var["query"]["query"] = "label_values(tirage_api_requests, namespace)"
        self.assertTrue(self.check(doc).naming("variable", "tirage_api_requests"))


# What a normal batch leaves: unlabelled series always, labelled ones after their events.
API_DUMP = """\
# HELP tirage_api_http_requests_total HTTP requests by route, method and status
# TYPE tirage_api_http_requests_total counter
tirage_api_http_requests_total{method="POST",route="/v1/batches/{batch_id}/photos",status="202"} 12
tirage_api_http_requests_total{method="GET",route="/metrics",status="200"} 1
# TYPE tirage_api_http_request_duration_seconds histogram
tirage_api_http_request_duration_seconds_bucket{method="GET",route="/metrics",le="0.0005"} 0
tirage_api_http_request_duration_seconds_bucket{method="GET",route="/metrics",le="+Inf"} 1
tirage_api_http_request_duration_seconds_sum{method="GET",route="/metrics"} 0.001
tirage_api_http_request_duration_seconds_count{method="GET",route="/metrics"} 1
# TYPE tirage_api_job_publish_duration_seconds histogram
tirage_api_job_publish_duration_seconds_bucket{le="+Inf"} 12
tirage_api_job_publish_duration_seconds_sum 0.02
tirage_api_job_publish_duration_seconds_count 12
tirage_api_job_publish_failures_total 0
tirage_api_photos_accepted_total 12
tirage_api_upload_bytes_total 123456 1700000000000
"""
WORKER_DUMP = """\
# TYPE tirage_worker_jobs_total counter
tirage_worker_jobs_total{kind="resize",outcome="done"} 12
tirage_worker_jobs_total{kind="finalize",outcome="done"} 1
# TYPE tirage_worker_job_duration_seconds histogram
tirage_worker_job_duration_seconds_bucket{kind="resize",le="+Inf"} 12
tirage_worker_job_duration_seconds_sum{kind="resize"} 3
tirage_worker_job_duration_seconds_count{kind="resize"} 12
tirage_worker_jobs_in_flight 0
tirage_worker_paused 0
tirage_worker_publish_to_start_seconds_bucket{le="+Inf"} 12
tirage_worker_publish_to_start_seconds_sum 1
tirage_worker_publish_to_start_seconds_count 12
tirage_worker_events_published_total 1
tirage_worker_consumer_restarts_total 0
tirage_worker_jobs_waiting{lane="resize"} 0
tirage_worker_jobs_waiting{lane="effects"} 0
tirage_worker_oldest_waiting_job_seconds 0
tirage_worker_batches_stalled 0
"""


class Dumps(unittest.TestCase):
    def setUp(self):
        self.doc = json.loads(DASHBOARD.read_text())
        self.found = vd.check_dashboard(self.doc, Errors(), vd.registered(REPO))
        self.dumps = [vd.parse_dump(API_DUMP, "api"), vd.parse_dump(WORKER_DUMP, "worker")]

    def check(self, found=None, dumps=None) -> tuple[Errors, list[str]]:
        errors, lines = Errors(), []
        vd.check_against_dumps(found or self.found, dumps or self.dumps, errors, lines.append)
        return errors, lines

    def test_parsing_a_dump(self):
        dump = vd.parse_dump('# HELP a_total says "x{y}"\n# TYPE a_total counter\n'
                             'a_total{x="1,2",y="q\\"}\\\\"} 3 1700000000\nb 1e+06\n\n'
                             'c_bucket{le="+Inf", } NaN\n', "d")
        self.assertEqual(dump.samples, {"a_total": {"x", "y"}, "b": set(), "c_bucket": {"le"}})
        self.assertEqual(dump.types, {"a_total": "counter"})
        with self.assertRaises(ValueError):
            vd.parse_dump('a{x="1"', "d")

    def test_a_normal_run_passes_with_the_allowances_reported(self):
        errors, lines = self.check()
        self.assertEqual(errors, [])
        report = "\n".join(lines)
        self.assertIn("tirage_worker_callbacks_total: absent, allowed: ", report)
        self.assertIn("rabbitmq_detailed_queue_messages: not checked", report)
        self.assertIn("tirage_api_http_requests_total: in 1 of 2 dumps", report)

    def test_a_series_missing_from_every_dump(self):
        errors, _ = self.check(dumps=[self.dumps[0]])
        self.assertTrue(errors.naming("Jobs in flight", "tirage_worker_jobs_in_flight",
                                      "none of the dumps"), errors)
        self.assertFalse(errors.naming("tirage_worker_callbacks_total"), errors)

    def test_a_histogram_read_by_its_family_name(self):
        found = [vd.PanelQueries("panel 1 'x'", None, [("A", vd.parse(
            "rate(tirage_worker_job_duration_seconds[5m])"))], {})]
        errors, _ = self.check(found=found)
        self.assertTrue(errors.naming("is a histogram family"), errors)

    def test_labels_the_series_do_not_carry(self):
        found = [vd.PanelQueries("panel 1 'x'", None, [
            ("A", vd.parse('sum by (route, kind) (rate(tirage_api_http_requests_total'
                           '{namespace=~"$namespace", path="/"}[5m]))')),
            ("B", vd.parse("sum by (le, kind, instance) (tirage_worker_job_duration_seconds_bucket)")),
            ("C", vd.parse("sum by (outcome) (tirage_worker_callbacks_total)")),
        ], {"tirage_worker_callbacks_total": "why"})]
        errors, _ = self.check(found=found)
        self.assertEqual(sorted(errors), [
            "panel 1 'x' A: groups on kind, a label none of its series carries",
            "panel 1 'x' A: tirage_api_http_requests_total has no label path in any dump",
        ])

    def test_the_command_with_dumps(self):
        with tempfile.TemporaryDirectory() as tmp:
            api, worker = Path(tmp) / "api-1.prom", Path(tmp) / "worker-1.prom"
            api.write_text(API_DUMP)
            worker.write_text(WORKER_DUMP)
            out, err = io.StringIO(), io.StringIO()
            with redirect_stdout(out), redirect_stderr(err):
                ok = vd.main([str(DASHBOARD), "--metrics", str(api), str(worker)])
                missing = vd.main([str(DASHBOARD), "--metrics", str(api)])
        self.assertEqual(ok, 0, err.getvalue())
        self.assertEqual(missing, 1)
        self.assertIn("tirage_worker_paused is in none of the dumps", err.getvalue())


if __name__ == "__main__":
    unittest.main()
