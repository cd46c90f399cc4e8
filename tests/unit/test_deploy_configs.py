"""deploy/: alert rules (promtool), Grafana dashboard, compose file and K8s manifests.

Every metric the alerts and the dashboard use must be one the server exports
(``provmark.server.metrics.METRIC_NAMES``). ``promtool`` comes with the Debian package
``prometheus``; without it the promtool checks are skipped.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from provmark.server.metrics import METRIC_NAMES

yaml = pytest.importorskip("yaml")

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
_METRIC = re.compile(r"\bprovmark_[a-z_]+")
_SUFFIXES = ("_bucket", "_sum", "_count")


def used_metrics(exprs: list[str]) -> set[str]:
    found = set()
    for expr in exprs:
        for name in _METRIC.findall(expr):
            for suffix in _SUFFIXES:
                if name.endswith(suffix) and name[: -len(suffix)] in METRIC_NAMES:
                    name = name[: -len(suffix)]
            found.add(name)
    return found


def alert_rules() -> list[dict[str, Any]]:
    data = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    return [rule for group in data["groups"] for rule in group["rules"]]


def test_alert_rules_use_exported_metrics_and_are_documented() -> None:
    rules = alert_rules()
    assert len(rules) >= 8
    assert used_metrics([r["expr"] for r in rules]) <= set(METRIC_NAMES)
    for rule in rules:
        assert rule["labels"]["severity"] in ("critical", "warning", "info")
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
    covered = used_metrics([r["expr"] for r in rules])
    for needed in (
        "provmark_checkpoint_age_seconds",
        "provmark_queue_lag",
        "provmark_capture_failures_total",
        "provmark_webhook_deliveries_total",
        "provmark_ingest_latency_seconds",
    ):
        assert needed in covered


@pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool missing (apt-get install prometheus)"
)
def test_promtool_checks_and_unit_tests_the_rules() -> None:
    check = subprocess.run(
        ["promtool", "check", "rules", str(DEPLOY / "prometheus" / "alerts.yml")],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    test = subprocess.run(
        ["promtool", "test", "rules", str(DEPLOY / "prometheus" / "alerts_test.yml")],
        capture_output=True,
        text=True,
    )
    assert test.returncode == 0, test.stdout + test.stderr


def test_grafana_dashboard_is_valid_and_uses_exported_metrics() -> None:
    dash = json.loads((DEPLOY / "grafana" / "provmark.json").read_text())
    assert dash["uid"] == "provmark" and dash["panels"]
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    used = used_metrics(exprs)
    assert used <= set(METRIC_NAMES), used - set(METRIC_NAMES)
    for needed in (
        "provmark_records_ingested_total",
        "provmark_ingest_batch_records",
        "provmark_ingest_latency_seconds",
        "provmark_queue_depth",
        "provmark_queue_lag",
        "provmark_checkpoint_age_seconds",
        "provmark_capture_failures_total",
        "provmark_verification_failures_total",
        "provmark_webhook_deliveries_total",
    ):
        assert needed in used, needed
    for p in dash["panels"]:
        assert {"h", "w", "x", "y"} <= set(p["gridPos"]) and p["title"]


def test_metric_names_match_what_the_server_exports(tmp_path: Path) -> None:
    import provmark
    from provmark.server.metrics import Metrics

    with provmark.open(tmp_path / "p.db", home=tmp_path / "home") as pm:
        metrics = Metrics(
            lambda: {**pm.stats(), "queue_lag": 0, "webhook_pending": 0, "webhook_dead": 0}
        )
        metrics.records_ingested.labels("direct").inc()
        metrics.ingest_rejected.labels("invalid").inc()
        metrics.verifications.labels("verified").inc()
        metrics.verification_failures.labels("output_hash").inc()
        metrics.webhook_deliveries.labels("delivered").inc()
        metrics.http_requests.labels("GET", "/healthz", "200").inc()
        metrics.auth_failures.labels("401").inc()
        metrics.batch_records.observe(3)
        metrics.ingest_latency.observe(0.01)
        metrics.request_duration.labels("/healthz").observe(0.001)
        text = metrics.render().decode()
    exported = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")}
    exported = {
        n + "_total" if f"# TYPE {n} counter" in text and not n.endswith("_total") else n
        for n in exported
    }
    missing = (
        set(METRIC_NAMES) - exported - {"provmark_checkpoint_age_seconds"}
    )  # needs a checkpoint
    assert not missing, missing


def test_compose_runs_two_api_servers_a_worker_postgres_and_nats() -> None:
    compose = yaml.safe_load((DEPLOY / "compose" / "docker-compose.yml").read_text())
    services = compose["services"]
    api = [s for s in services.values() if s.get("command", [""])[0] == "serve"]
    assert len(api) == 2 and all("--queue" in s["command"] for s in api)
    assert any(s.get("command", [""])[0] == "worker" for s in services.values())
    assert {"postgres", "nats"} <= set(services)
    assert "-js" in services["nats"]["command"]
    nginx = (DEPLOY / "compose" / "nginx.conf").read_text()
    assert "api-1:8000" in nginx and "api-2:8000" in nginx


def test_k8s_manifests() -> None:
    docs: dict[str, dict[str, Any]] = {}
    kustomize = yaml.safe_load((DEPLOY / "k8s" / "kustomization.yaml").read_text())
    for name in kustomize["resources"]:
        for doc in yaml.safe_load_all((DEPLOY / "k8s" / name).read_text()):
            assert doc["apiVersion"] and doc["kind"] and doc["metadata"]["name"]
            docs[f"{doc['kind']}/{doc['metadata']['name']}"] = doc
    api = docs["Deployment/provmark-api"]["spec"]
    assert api["replicas"] == 2
    container = api["template"]["spec"]["containers"][0]
    assert container["args"][0] == "serve" and "--queue" in container["args"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    worker = docs["Deployment/provmark-worker"]["spec"]["template"]["spec"]["containers"][0]
    assert worker["args"][0] == "worker"
    assert {"StatefulSet/postgres", "StatefulSet/nats", "Service/provmark-api"} <= set(docs)
    for deployment in ("Deployment/provmark-api", "Deployment/provmark-worker"):
        spec = docs[deployment]["spec"]["template"]["spec"]
        assert spec["initContainers"][0]["name"] == "keys"  # same keys in every pod, mode 600
