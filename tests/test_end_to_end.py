"""The whole path on loopback: the simulator plays a long deleveraging; the collectors, the
detector and the API run as in production; the API's state for BTCUSDT leaves ``calm`` for
``unwinding`` or ``cascade`` with side ``long``, and comes back to ``calm``."""

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

TIME_SCALE = 5.0
WINDOW_S = 8.0


@pytest.fixture
async def sim() -> AsyncIterator[BinanceUsdmSimulator]:
    base = SCENARIOS["long_unwind"]
    # One pass, with a recovery long enough for the window to forget the unwind.
    phases = (*base.phases[:-1], replace(base.phases[-1], duration_s=120.0))
    scenario = replace(base, phases=phases, loop=False)
    async with BinanceUsdmSimulator(
        scenario, seed=11, time_scale=TIME_SCALE, push_interval_s=0.25, list_only_simulated=True
    ) as s:
        yield s


async def test_api_state_goes_calm_then_long_deleveraging_then_calm(
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
        detector={
            "window_s": WINDOW_S,
            "min_dwell_s": 1.0,
            "enter_persist_s": 1.0,
            "eval_interval_s": 0.25,
            "stale_after_s": 10.0,
            "burn_in_samples": 0,  # seconds of history: the burn-in is tested apart
        },
        collect={"watchdog_s": 5.0},
    )
    runtime = Runtime(settings)
    task = asyncio.create_task(runtime.run())
    seen: list[tuple[str, str | None]] = []
    try:
        base_url = await asyncio.wait_for(runtime.serving(), 30)
        async with httpx.AsyncClient(base_url=base_url, timeout=5) as http:
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                r = await http.get("/v1/pressure/binance_usdm/BTCUSDT")
                if r.status_code == 200:
                    body = r.json()
                    state = (body["state"], body["side"])
                    if not seen or seen[-1] != state:
                        seen.append(state)
                    if len(seen) >= 3 and state[0] == "calm":
                        break
                await asyncio.sleep(0.25)
            venues = (await http.get("/v1/venues")).json()
            liqs = (
                await http.get("/v1/liquidations", params={"symbol": "BTCUSDT", "limit": 5})
            ).json()
            ready = await http.get("/readyz")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    states = [s for s, _ in seen]
    assert states[0] == "calm", seen
    hot = [(s, side) for s, side in seen if s in ("unwinding", "cascade")]
    assert hot, f"never left calm: {seen}"
    assert all(side == "long" for _, side in hot), seen
    assert states[-1] == "calm", f"never came back to calm: {seen}"
    assert ready.status_code == 200
    # The API's snapshot took the events its own writer stored rather than decoding them,
    # and its liquidation window the liquidations rather than reading them back.
    assert runtime.stored is not None
    assert runtime.stored.taken > 0
    assert runtime.stored.liquidations_taken > 0
    (venue,) = [v for v in venues["items"] if v["venue"] == "binance_usdm"]
    assert venue["connected"] is True
    assert liqs["items"]
    assert all(x["side"] in ("long", "short") for x in liqs["items"])
