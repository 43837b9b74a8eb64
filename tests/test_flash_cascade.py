"""A flash cascade on Binance alone, through the real websocket path: the simulator plays
BTC -4 % and its open interest -6 % in 90 s with far more liquidations than the venue's
one print per symbol per second, so the sampled ``forceOrder`` stream stays saturated and
its totals are a small lower bound of what was liquidated. The collector, the detector
(default configuration, warm start from the simulator's history) and the API run as in
production; the API must call it ``cascade`` with side ``long`` within 30 s of the onset."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest

from service.config import load_settings
from service.runtime import Runtime
from service.simulate.scenario import SCENARIOS
from service.venues import REGISTRY
from service.venues.binance.simulator.usdm import BinanceUsdmSimulator

pytestmark = pytest.mark.integration

CALM_S = 30.0
"""The calm lead (the scenario's 60 s shortened): enough for the warm start and a few OI polls."""


@pytest.fixture
async def sim() -> AsyncIterator[BinanceUsdmSimulator]:
    base = SCENARIOS["flash_cascade"]
    phases = (replace(base.phases[0], duration_s=CALM_S), *base.phases[1:])
    scenario = replace(base, phases=phases, loop=False)
    async with BinanceUsdmSimulator(
        scenario, seed=5, time_scale=1.0, push_interval_s=0.25, list_only_simulated=True
    ) as s:
        yield s


@pytest.mark.timeout(150)
async def test_a_saturated_sampled_feed_with_open_interest_falling_fast_is_a_long_cascade(
    sim: BinanceUsdmSimulator, redis_url: str, redis_client: object
) -> None:
    settings = load_settings(
        set(REGISTRY),
        [],
        redis_url=redis_url,
        api={"port": 0},
        venues={
            "binance_usdm": {
                "ws_url": sim.ws_base_url,
                "rest_url": sim.rest_base_url,
                "oi_poll_weight_per_minute": 2400,
            }
        },
    )
    (_, flash, *_) = sim.ground_truth(int(time.time() * 1000) + 300_000)
    assert flash.phase == "flash_cascade"
    onset_ms = flash.start_ms
    runtime = Runtime(settings)
    task = asyncio.create_task(runtime.run())
    seen: list[tuple[float, str, str | None, list[str]]] = []
    try:
        base_url = await asyncio.wait_for(runtime.serving(), 30)
        async with httpx.AsyncClient(base_url=base_url, timeout=5) as http:
            deadline = onset_ms / 1000 + 60
            while time.time() < deadline:
                r = await http.get("/v1/pressure/binance_usdm/BTCUSDT")
                if r.status_code == 200:
                    body = r.json()
                    state = (body["state"], body["side"])
                    if not seen or seen[-1][1:3] != state:
                        seen.append((time.time() - onset_ms / 1000, *state, body["reasons"]))
                    if state[0] == "cascade":
                        break
                await asyncio.sleep(0.25)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    before = [s for s in seen if s[0] < 0]
    assert before, seen
    assert all(state == "calm" for _, state, _, _ in before), seen
    cascade = [s for s in seen if s[1] == "cascade"]
    assert cascade, f"never called a cascade: {seen}"
    delay_s, _, side, reasons = cascade[0]
    assert side == "long", seen
    assert 0 <= delay_s <= 30, seen
    assert any(r.startswith("sampled liquidation feed saturated") for r in reasons), reasons
    assert any("sampled: totals are a lower bound" in r for r in reasons), reasons
