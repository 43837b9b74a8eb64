"""The passive drift check in the running service: simulators switched into a changed protocol
(Gate renames ``total_size``, OKX stops pushing ``open-interest``), the service's check run
every second instead of every hour, and the suspicions show in ``/v1/venues`` and in
``deleverage_feed_drift_suspected``; the venue that did not change shows nothing."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from service.config import load_settings
from service.runtime import Component, Runtime
from service.simulate.drift import ProtocolDrift
from service.simulate.runner import VenueSimulator
from service.simulate.scenario import SCENARIOS
from service.venues import REGISTRY, SIMULATORS, shape

pytestmark = pytest.mark.integration

DRIFTS = {
    "gateio": ProtocolDrift(rename_field=("total_size", "open_interest")),
    "okx": ProtocolDrift(silence=r'^\{"arg":\{"channel":"open-interest"'),
    "bybit": None,
}


async def test_suspected_drift_shows_in_venues_and_metrics(
    redis_url: str, redis_client: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    # OKX documents open-interest pushes every 3 s: silent after 3 s here, not 60.
    monkeypatch.setattr(shape, "SILENCE_FLOOR_S", 2.0)
    monkeypatch.setattr(shape, "SILENCE_FACTOR", 1.0)
    sims: dict[str, VenueSimulator] = {}
    runtime: Runtime | None = None
    task: asyncio.Task[None] | None = None
    venues: dict[str, Any] = {}
    try:
        for i, (name, drift) in enumerate(DRIFTS.items()):
            sim = SIMULATORS[name](SCENARIOS["long_unwind"], i, 1.0)
            sim.drift = drift
            sims[name] = await sim.start()
        settings = load_settings(
            set(REGISTRY), [], redis_url=redis_url, api={"port": 0},
            collect={"drift_check_s": 1.0, "watchdog_s": 30},
            venues={n: {"ws_url": s.ws_base_url, "rest_url": s.rest_base_url}
                    for n, s in sims.items()},
        )  # fmt: skip
        runtime = Runtime(settings, {Component.COLLECT, Component.API})
        task = asyncio.create_task(runtime.run())
        base_url = await asyncio.wait_for(runtime.serving(), 30)
        async with httpx.AsyncClient(base_url=base_url, timeout=5) as http:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                body = (await http.get("/v1/venues")).json()
                venues = {v["venue"]: v for v in body["items"]}
                reasons = {(n, d["reason"]) for n, v in venues.items() for d in v["drift"]}
                if {("okx", "silent"), ("gateio", "missing_fields")} <= reasons:
                    break
                await asyncio.sleep(0.5)
            metrics = (await http.get("/metrics")).text
    finally:
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        for sim in sims.values():
            await sim.stop()

    assert set(venues) == set(DRIFTS)
    gate = {d["reason"]: d for d in venues["gateio"]["drift"]}
    assert set(gate) == {"missing_fields", "unknown_fields"}
    assert gate["missing_fields"]["channel"] == "futures.tickers"
    assert gate["missing_fields"]["detail"].startswith("total_size (")
    assert gate["unknown_fields"]["detail"].startswith("open_interest (")
    (okx,) = venues["okx"]["drift"]
    assert (okx["channel"], okx["reason"]) == ("open-interest", "silent")
    assert "documented: every 3 s when it changes" in okx["detail"]
    assert venues["bybit"]["drift"] == []  # as it ships: nothing suspected
    assert all(v["drift_checked_at"] for v in venues.values())

    suspected = {
        (s.labels["venue"], s.labels["channel"], s.labels["reason"]): s.value
        for family in text_string_to_metric_families(metrics)
        if family.name == "deleverage_feed_drift_suspected"
        for s in family.samples
    }
    assert suspected == {
        ("gateio", "futures.tickers", "missing_fields"): 1.0,
        ("gateio", "futures.tickers", "unknown_fields"): 1.0,
        ("okx", "open-interest", "silent"): 1.0,
    }
