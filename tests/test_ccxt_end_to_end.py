"""The service with a venue polled through ccxt: ``Runtime`` as in production, its only venue
ccxt's ``bitget`` pointed at the REST-only simulator; the real API shows it as polled, ready,
without liquidations, and serves its funding and open interest in the right units."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from service.config import load_settings
from service.runtime import Runtime
from service.simulate.ccxt_bitget import CcxtBitgetSimulator
from service.venues import REGISTRY

pytestmark = pytest.mark.integration

VENUE = "bitget_ccxt"
SYMBOLS = ["BTCUSD", "BTCUSDT", "ETHUSD", "ETHUSDT"]


@pytest.fixture
async def sim() -> AsyncIterator[CcxtBitgetSimulator]:
    async with CcxtBitgetSimulator(seed=7, time_scale=2.0) as s:
        yield s


async def test_service_serves_a_ccxt_polled_venue_through_the_api(
    sim: CcxtBitgetSimulator, redis_url: str, redis_client: object
) -> None:
    settings = load_settings(
        set(REGISTRY),
        [],
        redis_url=redis_url,
        api={"port": 0},
        venues={
            VENUE: {
                "rest_url": sim.rest_base_url,
                "ccxt": {
                    "exchange": "bitget",
                    "poll_interval_s": 1.0,
                    "oi_amount_unit": "base",
                    "config": {"options": {"fetchMarkets": {"types": ["swap"]}}},
                },
            }
        },
        detector={
            "window_s": 10.0,
            "stale_after_s": 10.0,
            "eval_interval_s": 0.5,
            "burn_in_samples": 0,
        },
        collect={"watchdog_s": 5.0},
    )
    runtime = Runtime(settings)
    task = asyncio.create_task(runtime.run())
    try:
        base_url = await asyncio.wait_for(runtime.serving(), 30)
        async with httpx.AsyncClient(base_url=base_url, timeout=5) as http:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                oi = (await http.get("/v1/open-interest", params={"venue": VENUE})).json()
                ready = await http.get("/readyz")
                venues = (await http.get("/v1/venues")).json()
                polls = venues["items"][0]["oi_polls_total"]  # health: written every second
                if len(oi["items"]) == 4 and ready.status_code == 200 and polls >= 4:
                    break
                await asyncio.sleep(0.25)
            funding = (await http.get("/v1/funding", params={"venue": VENUE})).json()
            marks = (await http.get("/v1/mark", params={"venue": VENUE})).json()
            liqs = (await http.get("/v1/liquidations", params={"venue": VENUE})).json()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    assert ready.status_code == 200, ready.json()
    (venue,) = venues["items"]
    assert venue["venue"] == VENUE
    assert (venue["mode"], venue["liquidations"], venue["liquidations_sampled"]) == (
        "polled", "none", None
    )  # fmt: skip
    assert (venue["connected"], venue["fresh"], venue["ws_url"]) == (True, True, None)
    assert venue["rest_url"] == sim.rest_base_url
    assert (venue["poll_interval_s"], venue["instruments"]) == (1.0, 4)
    assert venue["oi_polls_total"] >= 4
    assert venue["rest_failures"] == {}

    assert sorted(f["symbol"] for f in funding["items"]) == SYMBOLS
    served = {s: sim.rest.served[("ticker", s)] for s in SYMBOLS}
    for f in funding["items"]:
        rates = {float(t["fundingRate"]) for t in served[f["symbol"]]}
        assert f["funding_rate"] in rates
        assert (f["interval_h"], f["funding_rate_1h"]) == (
            8.0,
            pytest.approx(f["funding_rate"] / 8),
        )
    mark: dict[str, Any] = {m["symbol"]: m["mark_price"] for m in marks["items"]}
    assert sorted(mark) == SYMBOLS
    for item in oi["items"]:  # base coin as served; USD = coin x mark, inverse swaps too
        sizes = {float(r["openInterestList"][0]["size"]) for r in
                 sim.rest.served[("open_interest", item["symbol"])]}  # fmt: skip
        assert item["oi_base"] in sizes
        assert item["oi_usd"] == pytest.approx(item["oi_base"] * mark[item["symbol"]], rel=0.01)
        assert item["asset"] in ("BTC", "ETH")
    assert liqs["items"] == []
