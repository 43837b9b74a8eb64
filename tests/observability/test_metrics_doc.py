"""``docs/metrics.md`` names every metric of ``service/publish/metrics.py`` and every
recording rule, and documents no metric that does not exist."""

from __future__ import annotations

import re

from obs_support import REPO, recording_rules

from service.publish.metrics import (
    ALERT_LATENCY,
    BUILD_INFO,
    DETECTOR_ROUND_SECONDS,
    DETECTOR_SPECS,
    OUTPUT_SPECS,
    SHARD_INFO,
    SPECS,
    STRESS_SPECS,
)

DOC = (REPO / "docs" / "metrics.md").read_text()


def test_every_metric_is_documented_with_its_type_and_labels() -> None:
    for spec in (*SPECS, *OUTPUT_SPECS, *DETECTOR_SPECS, *STRESS_SPECS):
        row = next(
            (line for line in DOC.splitlines() if line.startswith(f"| `{spec.name}` |")), None
        )
        assert row is not None, f"{spec.name} is not in docs/metrics.md"
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[1] == spec.type, spec.name
        assert cells[2] == (", ".join(spec.labels) or "—"), spec.name
        assert all(cells[3:5]), spec.name
    assert f"| `{BUILD_INFO}_info` |" in DOC
    assert f"| `{SHARD_INFO}_info` | gauge (info) | shard |" in DOC
    assert f"| `{ALERT_LATENCY}` | histogram | receiver |" in DOC
    assert f"| `{DETECTOR_ROUND_SECONDS}` | histogram | — |" in DOC


def test_no_documented_metric_is_missing_from_the_code() -> None:
    documented = set(re.findall(r"^\| `(deleverage_\w+)` \|", DOC, re.M))
    names = {s.name for s in (*SPECS, *OUTPUT_SPECS, *DETECTOR_SPECS, *STRESS_SPECS)}
    assert documented == names | {
        f"{BUILD_INFO}_info", f"{SHARD_INFO}_info", ALERT_LATENCY, DETECTOR_ROUND_SECONDS,
    }  # fmt: skip


def test_every_recording_rule_is_named() -> None:
    for name, _ in recording_rules():
        assert f"`{name}`" in DOC, name
