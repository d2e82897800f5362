"""The shipped alert rules and Grafana dashboard load, fire when they should, and name only
metrics that `gateway metrics` produces."""

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from gateway.commands.metrics import registry
from gateway.settings import Settings
from gateway.store.layout import DataDir
from gateway.store.ledgers import Identity, publish_status, write_identity

MONITORING = Path(__file__).resolve().parents[2] / "docs" / "monitoring"
RULES = MONITORING / "fieldgate-alerts.yml"
DASHBOARD = MONITORING / "fieldgate-dashboard.json"
PROMTOOL = shutil.which("promtool")  # Debian's prometheus package; `make setup` installs it
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool missing: make setup")
METRIC = re.compile(r"\bfieldgate_[a-z_]+")


def promtool(*args: str, cwd: Path = MONITORING) -> subprocess.CompletedProcess:
    return subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


@needs_promtool
def test_alert_rules_load_and_their_unit_tests_pass():
    checked = promtool("check", "rules", RULES.name)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = promtool("test", "rules", "fieldgate-alerts.test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr


@needs_promtool
def test_every_dashboard_query_is_valid_promql(tmp_path):
    exprs = dashboard_exprs()
    assert len(exprs) >= 10
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query_{n}", "expr": expr.replace("$gateway", ".*")}
                    for n, expr in enumerate(exprs)
                ],
            }
        ]
    }
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump(rules))
    checked = promtool("check", "rules", str(path), cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_dashboard_is_a_grafana_dashboard_with_a_gateway_variable():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["schemaVersion"] >= 36 and dashboard["uid"] == "fieldgate-gateways"
    names = [variable["name"] for variable in dashboard["templating"]["list"]]
    assert names == ["datasource", "gateway"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_rules_and_dashboard_name_only_metrics_the_gateway_exports(tmp_path):
    data_dir = DataDir(tmp_path / "data").ensure()
    write_identity(data_dir, Identity("pi-01"))
    now = time.time()
    for service in ("reader", "uploader"):
        publish_status(
            data_dir,
            service,
            {
                "pid": 1,
                "running": True,
                "updated_at": now,
                "counters": {"rejected_by_reason": {"bad_counter": 1}},
                "stream": {"connected": True},
                "last_success": {"at": now},
                "last_error": {"at": now},
            },
        )
    text = generate_latest(registry(Settings(data_dir=data_dir.root))).decode()
    exported = set()
    for family in text_string_to_metric_families(text):
        exported |= {sample.name for sample in family.samples}
    referenced = set(METRIC.findall(RULES.read_text())) | {
        name for expr in dashboard_exprs() for name in METRIC.findall(expr)
    }
    assert referenced - exported == set()
