"""The dashboards' structure, without Grafana: what Grafana's file provisioning accepts and
what the project asks of every panel (the rules of grafana/dashboard-linter, in pytest)."""

from __future__ import annotations

import importlib.util
import re

import pytest
import yaml
from obs_support import (
    COMPOSE_FILE,
    DASHBOARDS,
    GRAFANA_DIR,
    Json,
    dashboard_queries,
    load_dashboards,
    panels,
    recording_rules,
)

from service.publish.metrics import (
    ALERT_LATENCY,
    BUILD_INFO,
    DETECTOR_ROUND_SECONDS,
    DETECTOR_SPECS,
    OUTPUT_SPECS,
    SPECS,
    STRESS_SPECS,
)

DATASOURCE_UID = "${datasource}"
SCHEMA_VERSIONS = range(36, 42)
"""Classic schema versions that the pinned Grafana (11.x) loads without a v2 conversion."""
RATE = re.compile(r"\b(rate|irate|increase)\(([^()]|\([^()]*\))*?\[(?P<range>[^\]]+)\]")
NAME = re.compile(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()")
PROMQL_WORDS = {
    "sum", "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or",
    "unless", "topk", "max", "min", "avg", "count", "offset", "bool", "time", "state",
    "venue", "symbol", "side", "asset", "job", "instance", "reason",
}  # fmt: skip

DASHBOARD_FILES = sorted(p.name for p in DASHBOARDS.glob("*.json"))


@pytest.fixture(scope="module")
def dashboards() -> dict[str, Json]:
    return load_dashboards()


def test_the_three_dashboards_exist() -> None:
    assert DASHBOARD_FILES == [
        "asset-drilldown.json",
        "collector-health.json",
        "market-overview.json",
    ]


def test_uids_and_titles_are_unique_and_stable(dashboards: dict[str, Json]) -> None:
    uids = [d["uid"] for d in dashboards.values()]
    titles = [d["title"] for d in dashboards.values()]
    assert len(set(uids)) == len(uids)
    assert len(set(titles)) == len(titles)
    assert all(re.fullmatch(r"[a-z0-9-]{8,40}", uid) for uid in uids), uids


@pytest.mark.parametrize("name", DASHBOARD_FILES)
def test_the_dashboard_is_the_classic_model_that_file_provisioning_loads(
    dashboards: dict[str, Json], name: str
) -> None:
    d = dashboards[name]
    assert not {"apiVersion", "elements", "layout"} & set(d), "the v2 resource format"
    assert d["schemaVersion"] in SCHEMA_VERSIONS
    assert d.get("id") is None
    ids = [p["id"] for p in panels(d)]
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize("name", DASHBOARD_FILES)
def test_the_datasource_is_a_variable_used_everywhere(
    dashboards: dict[str, Json], name: str
) -> None:
    d = dashboards[name]
    ds_vars = [v for v in d["templating"]["list"] if v["type"] == "datasource"]
    assert [(v["name"], v["label"], v["query"]) for v in ds_vars] == [
        ("datasource", "Data Source", "prometheus")
    ]
    for v in d["templating"]["list"]:
        if v["type"] == "query":
            assert v["datasource"]["uid"] == DATASOURCE_UID, v["name"]
    for a in d["annotations"]["list"]:
        if not a.get("builtIn"):
            assert a["datasource"]["uid"] == DATASOURCE_UID, a["name"]
    for p in panels(d):
        assert p["datasource"] == {"type": "prometheus", "uid": DATASOURCE_UID}, p["title"]
        for t in p["targets"]:
            assert t["datasource"]["uid"] == DATASOURCE_UID, p["title"]


@pytest.mark.parametrize("name", DASHBOARD_FILES)
def test_every_panel_has_a_title_a_description_and_a_unit(
    dashboards: dict[str, Json], name: str
) -> None:
    for p in panels(dashboards[name]):
        assert p.get("title"), p
        assert len(p.get("description", "")) >= 20, p["title"]
        assert p["fieldConfig"]["defaults"].get("unit"), p["title"]
        assert p["targets"], p["title"]


@pytest.mark.parametrize("name", DASHBOARD_FILES)
def test_every_rate_uses_the_rate_interval(dashboards: dict[str, Json], name: str) -> None:
    for q in dashboard_queries(dashboards[name]):
        ranges = [m["range"] for m in RATE.finditer(q.expr)]
        assert all(r == "$__rate_interval" for r in ranges), (q.where, q.expr)
        if re.search(r"\b(rate|irate|increase)\(", q.expr):
            assert ranges, (q.where, q.expr)


def _metric_names(expr: str) -> set[str]:
    no_strings = re.sub(r'"[^"]*"', '""', expr)
    no_labels = re.sub(r"\{[^}]*\}", "", no_strings)
    no_ranges = re.sub(r"\[[^\]]*\]", "", no_labels)
    no_groups = re.sub(
        r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", no_ranges
    )
    return {n for n in NAME.findall(no_groups) if n not in PROMQL_WORDS and not n.isdigit()}


def test_every_metric_a_dashboard_names_exists(dashboards: dict[str, Json]) -> None:
    """A metric renamed under a panel fails here, before any Prometheus runs."""
    specs = (*SPECS, *OUTPUT_SPECS, *DETECTOR_SPECS, *STRESS_SPECS)
    known = {spec.name for spec in specs} | {f"{BUILD_INFO}_info", "up"}
    known |= {
        f"{histogram}_{suffix}"
        for histogram in (ALERT_LATENCY, DETECTOR_ROUND_SECONDS)
        for suffix in ("bucket", "sum", "count")
    }
    known |= {name for name, _ in recording_rules()}
    for d in dashboards.values():
        for q in dashboard_queries(d):
            unknown = _metric_names(q.expr) - known
            assert not unknown, (q.where, unknown)


def test_the_committed_json_is_what_the_generator_writes() -> None:
    spec = importlib.util.spec_from_file_location("generate", DASHBOARDS / "generate.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name, build in module.DASHBOARDS.items():
        assert (DASHBOARDS / name).read_text() == module.render(build), (
            f"{name} differs from dashboards/generate.py: run `python dashboards/generate.py`"
        )


def test_provisioning_points_grafana_at_the_dashboards_and_the_fixed_datasource() -> None:
    (ds,) = yaml.safe_load((GRAFANA_DIR / "provisioning/datasources/prometheus.yaml").read_text())[
        "datasources"
    ]
    assert (ds["type"], ds["uid"], ds["url"]) == (
        "prometheus",
        "prometheus",
        "http://prometheus:9090",
    )
    (provider,) = yaml.safe_load(
        (GRAFANA_DIR / "provisioning/dashboards/deleverage.yaml").read_text()
    )["providers"]
    grafana = yaml.safe_load(COMPOSE_FILE.read_text())["services"]["grafana"]
    assert f"./dashboards:{provider['options']['path']}:ro" in grafana["volumes"]
    assert "./config/grafana/provisioning:/etc/grafana/provisioning:ro" in grafana["volumes"]
