"""All nine venues from their simulators at once, through the whole service: the asset view
for BTC sums every venue's contracts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from service.config import load_settings
from service.runtime import Component, Runtime
from service.simulate.clock import MarketClock
from service.simulate.market import Market
from service.simulate.runner import VenueSimulator
from service.simulate.scenario import SCENARIOS
from service.venues import REGISTRY, SIMULATORS
from service.venues.binance.simulator.usdm import BinanceUsdmSimulator
from service.venues.bitget.simulator.server import BitgetSimulator
from service.venues.bybit.simulator.server import BybitSimulator

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


async def test_bybit_one_sided_open_interest_matches_the_other_venues_on_one_market(
    redis_url: str, redis_client: object
) -> None:
    """Binance USDⓈ-M, Bybit and Bitget serve the same simulated BTCUSDT (one market, one
    open interest). Bybit's tickers carry ``openInterest`` for both sides and
    ``singleOpenInterest`` for one (its docs since 2026-06-11): read right, its USD open
    interest is within 1 % of the two others' and of the market's own, not twice it."""
    market = Market(SCENARIOS["calm"], symbols=["BTCUSDT"], seed=3)
    clock = MarketClock(market, time_scale=1.0)
    clock.start()
    sims = {
        "binance_usdm": BinanceUsdmSimulator(clock=clock, list_only_simulated=True),
        "bybit": BybitSimulator(clock=clock, list_only_simulated=True),
        "bitget": BitgetSimulator(clock=clock, list_only_simulated=True),
    }
    runtime: Runtime | None = None
    task: asyncio.Task[None] | None = None
    by_venue: dict[str, float] = {}
    try:
        for sim in sims.values():
            await sim.start()
        settings = load_settings(
            set(REGISTRY), [], redis_url=redis_url, api={"port": 0},
            detector={"warmup": False},
            venues={n: {"ws_url": s.ws_base_url, "rest_url": s.rest_base_url,
                        "oi_poll_weight_per_minute": 1200} for n, s in sims.items()},
        )  # fmt: skip
        runtime = Runtime(settings, {Component.COLLECT, Component.API})
        task = asyncio.create_task(runtime.run())
        base_url = await asyncio.wait_for(runtime.serving(), 30)
        async with httpx.AsyncClient(base_url=base_url, timeout=5) as http:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and set(by_venue) != set(sims):
                r = await http.get("/v1/assets/BTC")
                if r.status_code == 200:
                    by_venue = {
                        i["venue"]: i["oi_usd"]
                        for i in r.json()["instruments"]
                        if i["symbol"] == "BTCUSDT" and i["oi_usd"]
                    }
                await asyncio.sleep(0.3)
        truth = market.oi_base("BTCUSDT") * market.mark("BTCUSDT")
    finally:
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        for sim in sims.values():
            await sim.stop()
        await clock.stop()
    assert set(by_venue) == set(sims), by_venue
    assert by_venue["bybit"] == pytest.approx(by_venue["binance_usdm"], rel=0.01)
    assert by_venue["bybit"] == pytest.approx(by_venue["bitget"], rel=0.01)
    assert by_venue["bybit"] == pytest.approx(truth, rel=0.01)
