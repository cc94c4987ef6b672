"""The security validator against the deploy files as they were before issue 24 (fixtures/,
which it must refuse) and as they are (which it must pass). Run by scripts/validate-deploy.sh:
    python -m unittest discover -s deploy/tests -t deploy   (the validate-deploy venv's python)
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

import yaml

import validate_security as vs
from validate import nginx_locations

REPO = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
KUBECTL = Path(sys.executable).parent / "kubectl"


def by_kind(docs) -> dict:
    out: dict = {}
    for d in docs:
        if d:
            out.setdefault(d["kind"], {})[d["metadata"]["name"]] = d
    return out


def load(path: Path) -> list:
    return list(yaml.safe_load_all(path.read_text()))


class Errors(list):
    def __call__(self, where: str, msg: str) -> None:
        self.append(f"{where}: {msg}")

    def naming(self, *words: str) -> list[str]:
        return [e for e in self if all(w in e for w in words)]


def render(kustomization: str) -> dict:
    """kubectl kustomize of a copy of k8s/ whose secret files are their examples."""
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copytree(REPO / "k8s", Path(tmp) / "k8s")
        for example in (Path(tmp) / "k8s").rglob("*.env.example"):
            shutil.copy(example, example.with_suffix(""))
        out = subprocess.run([str(KUBECTL), "kustomize", str(Path(tmp) / kustomization)],
                             capture_output=True, text=True, check=True).stdout
    return by_kind(yaml.safe_load_all(out))


class IngressNginxRegexRule(unittest.TestCase):
    def test_exact_and_prefix_paths_are_literal_without_regex(self):
        self.assertFalse(vs.ingress_routes("/", "Exact", False, "/metrics"))
        self.assertTrue(vs.ingress_routes("/v1", "Prefix", False, "/v1/batches"))
        self.assertFalse(vs.ingress_routes("/v1", "Prefix", False, "/v10"))

    def test_with_regex_every_path_is_a_case_insensitive_prefix(self):
        self.assertTrue(vs.ingress_routes("/", "Exact", True, "/metrics"))
        self.assertTrue(vs.ingress_routes("/Ready", "Exact", True, "/readyz"))
        self.assertFalse(vs.ingress_routes("/$", "ImplementationSpecific", True, "/readyz"))
        self.assertFalse(vs.ingress_routes(r"/openapi\.json$", "ImplementationSpecific", True, "/metrics"))

    def test_the_ingress_before_24_routes_the_probes_and_metrics(self):
        errors = Errors()
        vs.check_ingress_paths("before", by_kind(load(FIXTURES / "ingress-before-24.yaml")), errors)
        for target in ("/metrics", "/readyz", "/healthz"):
            self.assertTrue(errors.naming("Ingress tirage-api:", "path / routes " + target,
                                          "case-insensitive regex"), errors)

    def test_rewrite_target_on_another_ingress_of_the_host_counts_too(self):
        docs = load(FIXTURES / "ingress-before-24.yaml")
        for d in docs[1:]:
            ann = d["metadata"]["annotations"]
            del ann["nginx.ingress.kubernetes.io/use-regex"]
            ann["nginx.ingress.kubernetes.io/rewrite-target"] = "/$1"
        errors = Errors()
        vs.check_ingress_paths("rewrite", by_kind(docs), errors)
        self.assertTrue(errors.naming("path / routes /readyz"), errors)

    def test_without_any_regex_ingress_the_exact_root_is_private(self):
        docs = load(FIXTURES / "ingress-before-24.yaml")[:1]
        errors = Errors()
        vs.check_ingress_paths("general only", by_kind(docs), errors)
        self.assertEqual(errors.naming("routes /metrics"), [])
        self.assertTrue(errors.naming("path /healthz routes /healthz"), errors)

    def test_a_pods_own_probe_path_counts(self):
        docs = load(REPO / "k8s/base/ingress.yaml") + load(REPO / "k8s/base/api-deployment.yaml")
        probe = docs[-1]["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
        probe["httpGet"]["path"] = "/v1/ready"
        errors = Errors()
        vs.check_ingress_paths("custom probe", by_kind(docs), errors)
        self.assertTrue(errors.naming("path /v1/ routes /v1/ready"), errors)

    def test_todays_ingress_routes_no_probe(self):
        errors = Errors()
        docs = load(REPO / "k8s/base/ingress.yaml") + load(REPO / "k8s/base/api-deployment.yaml") \
            + load(REPO / "k8s/base/worker-deployment.yaml")
        vs.check_ingress_paths("today", by_kind(docs), errors)
        self.assertEqual(errors, [])


class NginxTemplate(unittest.TestCase):
    def test_nginx_picks_exact_then_regex_then_prefix(self):
        locs = {"/": {}, "= /readyz": {}, "~ ^/v1/batches/[^/]+/photos$": {}, "^~ /assets/": {}}
        self.assertEqual(vs.nginx_pick(locs, "/readyz"), "= /readyz")
        self.assertEqual(vs.nginx_pick(locs, "/readyz/"), "/")
        self.assertEqual(vs.nginx_pick(locs, "/v1/batches/b/photos"), "~ ^/v1/batches/[^/]+/photos$")
        self.assertEqual(vs.nginx_pick(locs, "/assets/x"), "^~ /assets/")

    def test_the_template_before_24_proxies_the_probes(self):
        errors = Errors()
        template = FIXTURES / "tirage.conf-before-24.template"
        vs.check_proxy_config("before", nginx_locations(template), errors)
        self.assertTrue(errors.naming("/readyz is proxied (location /)"), errors)
        self.assertTrue(errors.naming("/healthz is proxied"), errors)
        self.assertTrue(errors.naming("/metrics is proxied (location = /metrics)"), errors)

    def test_todays_template_answers_them_itself(self):
        errors = Errors()
        vs.check_proxy_config("today", nginx_locations(REPO / "deploy/nginx/tirage.conf.template"), errors)
        self.assertEqual(errors, [])


class Compose(unittest.TestCase):
    def check(self, path: Path) -> Errors:
        errors = Errors()
        vs.check_compose_security(yaml.safe_load(path.read_text())["services"], errors)
        return errors

    def test_the_compose_file_before_24_ships_credentials(self):
        errors = self.check(FIXTURES / "docker-compose-before-24.yml")
        for want in (("${TIRAGE_S3_ACCESS_KEY}", "defaults to a credential"),
                     ("${TIRAGE_S3_SECRET_KEY}", "defaults to a credential"),
                     ("${TIRAGE_AMQP_PASSWORD}", "defaults to a credential"),
                     ("service rabbitmq", "RABBITMQ_DEFAULT_PASS must be"),
                     ("service redis", "--requirepass"),
                     ("service redis", "noeviction"),
                     ("TIRAGE__REDIS__URL must carry a password",),
                     ("service garage", "published on every interface"),
                     ("service nginx", "published on every interface"),
                     ("service nginx", "healthcheck asks /readyz")):
            self.assertTrue(errors.naming(*want), (want, errors))

    def test_a_published_redis_or_rabbitmq_management_port_fails(self):
        services = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]
        services["rabbitmq"]["ports"] = ["127.0.0.1:15672:15672"]
        errors = Errors()
        vs.check_compose_security(services, errors)
        self.assertTrue(errors.naming("service rabbitmq", "only nginx, Garage"), errors)

    def test_todays_compose_file_holds_none(self):
        self.assertEqual(self.check(REPO / "docker-compose.yml"), [])


class Kubernetes(unittest.TestCase):
    def test_the_base_before_24_ships_a_usable_secret(self):
        docs = load(FIXTURES / "secret-before-24.yaml") + load(FIXTURES / "ingress-before-24.yaml")
        errors = Errors()
        vs.check_secrets("before", by_kind(docs), errors)
        self.assertTrue(errors.naming("TIRAGE__S3__SECRET_ACCESS_KEY ships a usable value"), errors)
        self.assertTrue(errors.naming("TIRAGE__REDIS__URL redis://redis:6379 has no password"), errors)

    def test_a_secret_manifest_among_the_resources_fails(self):
        with tempfile.TemporaryDirectory() as tmp:
            shutil.copy(FIXTURES / "secret-before-24.yaml", Path(tmp) / "secret.example.yaml")
            (Path(tmp) / "kustomization.yaml").write_text(
                "resources:\n  - secret.example.yaml\n"
                "secretGenerator:\n  - name: s\n    literals:\n      - KEY=d1e8a7ba4a57cc94c45\n")
            errors = Errors()
            vs.check_k8s_sources(Path(tmp), errors)
        self.assertTrue(errors.naming("secret.example.yaml is a Secret manifest"), errors)
        self.assertTrue(errors.naming("literal KEY is a usable value"), errors)

    def test_committed_keys_are_found(self):
        errors = Errors()
        vs.check_committed_credentials([FIXTURES / "docker-compose-before-24.yml"], errors)
        self.assertTrue(errors.naming("looks like a committed key (GKa79cbc"), errors)

    def test_todays_sources_commit_no_secret(self):
        errors = Errors()
        vs.check_k8s_sources(REPO / "k8s", errors)
        vs.check_committed_credentials(vs.tracked_deploy_files(), errors)
        self.assertEqual(errors, [])

    def test_todays_renderings_pass(self):
        for k in ["k8s/base"] + sorted(f"k8s/overlays/{p.name}" for p in (REPO / "k8s/overlays").iterdir()):
            with self.subTest(k):
                errors = Errors()
                vs.check_k8s_security(k, render(k), errors)
                self.assertEqual(errors, [])

    def test_a_root_container_or_a_passwordless_redis_fails(self):
        kinds = render("k8s/overlays/dev")
        redis = kinds["Deployment"]["redis"]["spec"]["template"]["spec"]
        redis["containers"][0]["args"] = ["--appendonly", "yes"]
        del redis["securityContext"]["runAsNonRoot"]
        errors = Errors()
        vs.check_k8s_security("dev", kinds, errors)
        self.assertTrue(errors.naming("Deployment redis", "a password"), errors)
        self.assertTrue(errors.naming("Deployment redis", "noeviction"), errors)
        self.assertTrue(errors.naming("Deployment redis container redis", "non-root"), errors)


if __name__ == "__main__":
    unittest.main()
