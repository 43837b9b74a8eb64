"""``deleverage check-venues`` as an operator runs it, against the simulators run as the demo
runs them (``deleverage simulate`` in a process of its own, on free ports): it passes for all
nine venues, and with simulators switched into a changed protocol it exits 1 and says which
venue, which channel and what differed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from service.venues import REGISTRY

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parent.parent
TIMEOUT_S = "5"
DRIFTS = (
    "bybit:retire_channel=tickers",
    "gateio:rename_field=total_size:open_interest",
    r'okx:silence=^\{"arg":\{"channel":"open-interest"',
)


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("DELEVERAGE_")}


@pytest.fixture
def simulators(tmp_path: Path) -> Iterator[dict[str, Path]]:
    """Two ``deleverage simulate`` processes, one as it ships and one drifted; for each, a
    configuration file naming every venue (BitMEX enabled explicitly) at its URLs."""
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for kind, drifts in (("as_shipped", ()), ("drifted", DRIFTS)):
            urls = tmp_path / f"{kind}.json"
            args = [a for d in drifts for a in ("--drift", d)]
            procs[kind] = subprocess.Popen(
                [sys.executable, "-m", "service", "simulate", "--base-port", "0",
                 "--urls-file", str(urls), "--log-level", "error", *args],
                cwd=REPO, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
        configs: dict[str, Path] = {}
        deadline = time.monotonic() + 30
        for kind in procs:
            urls = tmp_path / f"{kind}.json"
            while not urls.exists():
                assert procs[kind].poll() is None, f"the {kind} simulator exited"
                assert time.monotonic() < deadline, "the simulators did not start"
                time.sleep(0.1)
            venues = {n: {"enabled": True, **u} for n, u in json.loads(urls.read_text()).items()}
            configs[kind] = tmp_path / f"{kind}.yaml"
            configs[kind].write_text(yaml.safe_dump({"venues": venues}))
        yield configs
    finally:
        for proc in procs.values():
            proc.terminate()
            proc.wait(10)


def _check(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service", "check-venues", "--config",
         str(REPO / "config/default.yaml"), "--timeout", TIMEOUT_S, *args],
        cwd=REPO, env=_env(), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_check_venues_passes_as_shipped_and_fails_on_each_drift(
    simulators: dict[str, Path],
) -> None:
    shipped = _check("--config", str(simulators["as_shipped"]), "--json")
    assert shipped.returncode == 0, shipped.stdout + shipped.stderr
    report = json.loads(shipped.stdout)
    assert report["ok"] is True
    assert [v["venue"] for v in report["venues"]] == sorted(REGISTRY)
    assert all(v["verdict"] in ("ok", "warn") for v in report["venues"])

    drifted = _check("--config", str(simulators["drifted"]), "--venue", "bybit,gateio,okx")
    assert drifted.returncode == 1, drifted.stdout + drifted.stderr
    table = drifted.stdout
    lines = table.splitlines()
    assert lines[0].split() == [
        "venue", "channel", "connected", "acknowledged", "first", "frame", "events", "unknown",
        "fields", "verdict",
    ]  # fmt: skip
    failed = table.split("FAILED:\n", 1)[1]
    assert "  bybit tickers: the subscription was refused: Invalid symbol" in failed
    assert "  gateio futures.tickers: fields the parser needs are missing: total_size (" in failed
    assert f"  okx open-interest: no frame within {TIMEOUT_S} s (documented: every 3 s" in failed
    assert "okx mark-price" not in failed  # the other channels of a drifted venue pass
    assert lines[-1] == "3 venue(s) checked: FAIL"


def test_a_disabled_venue_is_named_not_checked() -> None:
    result = _check("--venue", "bitmex")
    assert result.returncode == 2
    assert "bitmex: disabled (retired: BitMEX closed on 2026-09-23" in result.stderr
