"""``promtool`` on the project's Prometheus files: the configuration, the rules (with the
duplicate-rule lint) and the rules' unit tests in ``config/prometheus/tests/``."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml
from obs_support import PROMETHEUS_DIR, alerting_rules, need, recording_rules

from service.publish.metrics import ALERT_LATENCY, OUTPUT_SPECS, SPECS, STRESS_SPECS

RULE_FILES = sorted(str(p) for p in (PROMETHEUS_DIR / "rules").glob("*.yml"))
TEST_FILES = sorted(str(p) for p in (PROMETHEUS_DIR / "tests").glob("*.yml"))


def _promtool(*args: str) -> str:
    result = subprocess.run(
        [need("promtool"), *args], capture_output=True, text=True, timeout=60, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    return output


@pytest.mark.parametrize("name", ["prometheus.yml", "cluster.yml"])
def test_promtool_check_config_accepts_the_configuration(name: str) -> None:
    """``prometheus.yml`` (the single stack), ``cluster.yml`` (the cluster profile)."""
    output = _promtool("check", "config", str(PROMETHEUS_DIR / name))
    assert f"SUCCESS: {len(RULE_FILES)} rule files found" in output


def test_promtool_check_rules_accepts_every_rule_file() -> None:
    assert RULE_FILES
    output = _promtool("check", "rules", *RULE_FILES)
    assert output.count("SUCCESS") == len(RULE_FILES)


def test_promtool_rule_unit_tests_pass() -> None:
    assert TEST_FILES
    output = _promtool("test", "rules", *TEST_FILES)
    assert output.count("SUCCESS") == len(TEST_FILES), output


def test_every_alert_has_a_unit_test() -> None:
    tested: set[str] = set()
    for path in TEST_FILES:
        for case in yaml.safe_load(Path(path).read_text())["tests"]:
            tested |= {t["alertname"] for t in case.get("alert_rule_test", [])}
    assert set(alerting_rules()) <= tested, set(alerting_rules()) - tested


def test_recording_rules_follow_level_metric_operations() -> None:
    for name, _ in recording_rules():
        level, metric, ops = name.split(":")
        assert level, name
        assert metric.startswith("deleverage_"), name
        assert not metric.endswith("_total"), name
        assert ops, name


def test_every_metric_the_rules_name_exists() -> None:
    """A metric renamed in metrics.py fails here, not silently in an alert."""
    exported = {spec.name for spec in (*SPECS, *OUTPUT_SPECS, *STRESS_SPECS)} | {ALERT_LATENCY}
    known = exported | {"up"} | {n for n, _ in recording_rules()}
    for path in RULE_FILES:
        for group in yaml.safe_load(Path(path).read_text())["groups"]:
            for rule in group["rules"]:
                expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", rule["expr"])
                names = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr))
                metrics = {n for n in names if n.startswith("deleverage_") or ":" in n or n == "up"}
                assert metrics, rule
                assert metrics <= known, (rule.get("record") or rule.get("alert"), metrics - known)
