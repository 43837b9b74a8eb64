"""All nine venues from their simulators at once, through the whole service: the asset view
for BTC sums every venue's contracts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from service.config import load_settings
from service.runtime import Runtime
from service.simulate.runner import SIMULATORS, VenueSimulator
from service.simulate.scenario import SCENARIOS
from service.venues import REGISTRY

pytestmark = pytest.mark.integration


@pytest.fixture
async def sims() -> AsyncIterator[dict[str, VenueSimulator]]:
    started: dict[str, VenueSimulator] = {}
    try:
        for i, (name, factory) in enumerate(SIMULATORS.items()):
            started[name] = await factory(SCENARIOS["long_unwind"], i, 5.0).start()
        yield started
    finally:
        for sim in started.values():
            await sim.stop()


async def test_the_btc_asset_view_sums_every_venue(
    sims: dict[str, VenueSimulator], redis_url: str, redis_client: object
) -> None:
    assert set(sims) == set(REGISTRY)
    assert len(REGISTRY) == 9
    settings = load_settings(
        set(REGISTRY), [], redis_url=redis_url, api={"port": 0},
        venues={n: {"ws_url": s.ws_base_url, "rest_url": s.rest_base_url,
                    "oi_poll_weight_per_minute": 1200} for n, s in sims.items()},
    )  # fmt: skip
    runtime = Runtime(settings)
    task = asyncio.create_task(runtime.run())
    try:
        base_url = await asyncio.wait_for(runtime.serving(), 30)
        async with httpx.AsyncClient(base_url=base_url, timeout=5) as http:
            deadline = time.monotonic() + 45
            btc: dict = {}  # type: ignore[type-arg]
            while time.monotonic() < deadline:
                r = await http.get("/v1/assets/BTC")
                if r.status_code == 200:
                    btc = r.json()
                    with_oi = {i["venue"] for i in btc["instruments"] if i["oi_usd"]}
                    if with_oi == set(sims):
                        break
                await asyncio.sleep(0.5)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    assert btc["venues"] == sorted(sims)
    fresh = [i for i in btc["instruments"] if not i["stale"]]
    assert {i["venue"] for i in fresh if i["oi_usd"]} == set(sims), btc
    assert btc["oi_usd"] == pytest.approx(sum(i["oi_usd"] or 0 for i in fresh))
    # Linear and inverse contracts of the same asset: Bybit and OKX list both.
    assert {i["symbol"] for i in btc["instruments"] if i["venue"] == "bybit"} >= {
        "BTCUSDT",
        "BTCUSD",
    }
    sampled = {name for name, venue in REGISTRY.items() if venue.liquidations_sampled}
    assert {"binance_usdm", "okx", "bitget", "hyperliquid"} <= sampled
    assert set(btc["sampled_venues"]) <= sampled
