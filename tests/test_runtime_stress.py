"""Stress polling inside the running service: the runtime starts it beside the Binance USDⓈ-M
collector (on by default), the events reach Redis; a venue whose stress endpoints fail costs
its collector nothing; ``stress.enabled: false`` starts no poller."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import httpx
import msgspec
import pytest
import redis.asyncio as aioredis
from waits import eventually

from service.config import load_settings
from service.events import (
    AdlLevel,
    AdlRisk,
    Basis,
    InsuranceFund,
    Positioning,
    Side,
    StressKind,
)
from service.runtime import Component, Runtime
from service.simulate.scenario import Drift, Label, Phase, Regime, Scenario
from service.store import keys
from service.store.reader import handoff_events
from service.store.stress import HANDOFF_BATCH, read_latest
from service.venues import REGISTRY
from service.venues.binance.simulator import stress_wire
from service.venues.binance.simulator.usdm import BinanceUsdmSimulator
from service.venues.bybit.simulator.server import BybitSimulator
from service.venues.bybit.venue import VENUE as BYBIT
from service.venues.okx.instruments import VENUE as OKX
from service.venues.okx.simulator.server import OkxSimulator

pytestmark = pytest.mark.integration

VENUE = "binance_usdm"
SYMBOLS = ("BTCUSDT", "ETHUSDT")


@pytest.fixture
async def sim() -> AsyncIterator[BinanceUsdmSimulator]:
    async with BinanceUsdmSimulator(
        symbols=SYMBOLS, push_interval_s=0.25, list_only_simulated=True
    ) as s:
        yield s


def _runtime(sim: BinanceUsdmSimulator, redis_url: str, **stress: object) -> Runtime:
    settings = load_settings(
        set(REGISTRY),
        [],
        redis_url=redis_url,
        api={"port": 0},
        venues={VENUE: {"ws_url": sim.ws_base_url, "rest_url": sim.rest_base_url,
                        "stress": stress}},
    )  # fmt: skip
    return Runtime(settings, {Component.COLLECT, Component.API})


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_the_runtime_polls_stress_and_stores_every_kind_in_redis(
    sim: BinanceUsdmSimulator, redis_url: str, redis_client: aioredis.Redis
) -> None:
    runtime = _runtime(sim, redis_url)
    assert [r.venue for r in runtime.stress.values()] == [VENUE]
    task = asyncio.create_task(runtime.run())
    try:

        async def stored() -> bool:
            states = (await read_latest(redis_client, [VENUE]))[VENUE]
            # per symbol: ADL risk, 3 ratios, taker volume, basis; one insurance pool for all
            return len(states) >= 6 * len(SYMBOLS) + 1

        await eventually(stored, within=15)
        states = (await read_latest(redis_client, [VENUE]))[VENUE]
        base = await asyncio.wait_for(runtime.serving(), 15)
        async with httpx.AsyncClient(base_url=base, timeout=5) as http:

            async def in_snapshot() -> bool:  # the API answers from a read at most 1 s old
                r = await http.get("/v1/stress", params={"asset": "btc"})
                return bool(r.status_code == 200 and r.json()["items"])

            await eventually(in_snapshot, within=5)
            api = await http.get("/v1/stress", params={"asset": "btc"})
            scraped = (await http.get("/metrics")).text
        history = await redis_client.xrange(keys.stress_events(VENUE, StressKind.INSURANCE))
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    adl = [e for e in states.values() if isinstance(e, AdlRisk)]
    assert sorted(e.symbol for e in adl) == sorted(SYMBOLS)
    assert all(e.level is AdlLevel.LOW and e.native == "low" for e in adl)
    (fund,) = [e for e in states.values() if isinstance(e, InsuranceFund)]
    assert fund.asset == "USDT"
    assert fund.balance_usd == stress_wire.INSURANCE_BALANCE_USDT
    assert fund.symbols == tuple(sorted(SYMBOLS))
    metrics = {(e.symbol, e.metric.value) for e in states.values() if isinstance(e, Positioning)}
    assert len(metrics) == 4 * len(SYMBOLS)
    assert {e.symbol for e in states.values() if isinstance(e, Basis)} == set(SYMBOLS)
    assert history, "the insurance history stream is written beside the latest hash"
    assert msgspec.json.decode(history[-1][1][b"e"])["type"] == "insurance"
    ttl = await redis_client.ttl(keys.stress_latest(VENUE))
    assert 0 < ttl <= 86400
    assert api.status_code == 200, api.text
    (item,) = api.json()["items"]  # over the real server: the same states, BTC's only
    assert item["venue"] == VENUE
    assert item["adl_level_max"] == 1
    assert [a["symbol"] for a in item["adl"]] == ["BTCUSDT"]
    assert {p["metric"] for p in item["positioning"]} == {
        "accounts", "top_accounts", "top_positions", "taker_volume",
    }  # fmt: skip
    assert item["basis"][0]["futures_price"] > 0
    assert 'deleverage_stress_adl_level_max{venue="binance_usdm"} 1.0' in scraped
    total = f'deleverage_stress_insurance_fund_total_usd{{venue="{VENUE}"}} 8e+08'
    assert total in scraped
    runner = next(iter(runtime.stress.values()))
    assert runner.failures == {}
    assert runner.stats.errors == {}


async def test_failing_stress_endpoints_cost_the_collector_and_readiness_nothing(
    sim: BinanceUsdmSimulator, redis_url: str, redis_client: aioredis.Redis
) -> None:
    runtime = _runtime(sim, redis_url)
    (runner,) = runtime.stress.values()
    runner.rest_url = f"http://127.0.0.1:{_closed_port()}"  # the venue's stress calls fail
    task = asyncio.create_task(runtime.run())
    try:
        base = await asyncio.wait_for(runtime.serving(), 15)

        async with httpx.AsyncClient(base_url=base, timeout=5) as http:

            async def collected_failed_and_ready() -> bool:
                mark = await redis_client.hget(keys.latest(VENUE, "BTCUSDT"), "mark")
                ready = await http.get("/readyz")
                return (
                    mark is not None
                    and runner.failures["network"] >= 3
                    and ready.status_code == 200
                )

            await eventually(collected_failed_and_ready, within=15)
            checks = {c["name"]: c for c in (await http.get("/readyz")).json()["checks"]}
        components = {c.name: c for c in runtime.supervisor.components()}
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert checks[f"component:stress:{VENUE}"]["ok"] is True
    assert components[f"stress:{VENUE}"].up
    assert components[f"collector:{VENUE}"].up
    assert components[f"stress:{VENUE}"].restarts == 0
    assert await redis_client.exists(keys.stress_latest(VENUE)) == 0


async def test_a_stress_poller_that_crashes_is_restarted_alone_and_readiness_holds(
    sim: BinanceUsdmSimulator, redis_url: str, redis_client: aioredis.Redis
) -> None:
    runtime = _runtime(sim, redis_url)
    (runner,) = runtime.stress.values()

    def broken() -> tuple[dict[str, object], None]:
        raise KeyError("a bug in the stress path")

    runner.markets = broken  # type: ignore[assignment]
    task = asyncio.create_task(runtime.run())
    try:
        base = await asyncio.wait_for(runtime.serving(), 15)
        async with httpx.AsyncClient(base_url=base, timeout=5) as http:

            async def restarted_and_ready() -> bool:
                mark = await redis_client.hget(keys.latest(VENUE, "BTCUSDT"), "mark")
                ready = await http.get("/readyz")
                status = {c.name: c for c in runtime.supervisor.components()}
                return (
                    mark is not None
                    and status[f"stress:{VENUE}"].restarts >= 1
                    and ready.status_code == 200
                )

            await eventually(restarted_and_ready, within=15)
        components = {c.name: c for c in runtime.supervisor.components()}
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert components[f"collector:{VENUE}"].up
    assert components[f"collector:{VENUE}"].restarts == 0
    assert "KeyError" in (components[f"stress:{VENUE}"].last_error or "")


async def test_the_simulated_cascade_drains_the_fund_and_raises_the_adl_level(
    redis_url: str, redis_client: aioredis.Redis
) -> None:
    """The demo's case: ``long_unwind`` 20 times faster (its cascade from 1 s to 3 s of wall
    time, its unwind to 6 s), the venue-wide calls every second (the demo: every 5 s): the
    ADL level rises to high, then falls to medium, and the fund loses more than 10 %."""
    async with BinanceUsdmSimulator(
        "long_unwind", symbols=SYMBOLS, time_scale=20.0, push_interval_s=0.25,
        list_only_simulated=True,
    ) as fast:  # fmt: skip
        runtime = _runtime(fast, redis_url, venue_every_s=1.0)
        task = asyncio.create_task(runtime.run())
        seen: list[tuple[int | None, float | None]] = []
        try:
            base = await asyncio.wait_for(runtime.serving(), 15)
            async with httpx.AsyncClient(base_url=base, timeout=5) as http:

                async def drained_and_high() -> bool:
                    items = (await http.get("/v1/stress")).json()["items"]
                    if items and items[0]["insurance"]:
                        pool = items[0]["insurance"][0]
                        seen.append((items[0]["adl_level_max"], pool["change_1h_pct"]))
                    levels = [level for level, _ in seen]
                    high_then_medium = 3 in levels and 2 in levels[levels.index(3) :]
                    return high_then_medium and any(
                        pct is not None and pct < -10 for _, pct in seen
                    )

                await eventually(drained_and_high, within=15)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    levels = [level for level, _ in seen]
    assert max(levels) == 3, (
        seen
    )  # high in the cascade, never "active" (Binance has no such rating)
    assert min(pct for _, pct in seen if pct is not None) < -10


async def test_stress_polling_can_be_turned_off(sim: BinanceUsdmSimulator, redis_url: str) -> None:
    runtime = _runtime(sim, redis_url, enabled=False)
    try:
        assert runtime.stress == {}
    finally:
        await runtime.redis.aclose()


@pytest.mark.parametrize("venue", [BYBIT, OKX])
async def test_the_bybit_and_okx_cascades_show_in_v1_stress(
    venue: str, redis_url: str, redis_client: aioredis.Redis
) -> None:
    """The same demo case on the Bybit and OKX simulators: ``long_unwind`` 20 times faster,
    the venue-wide calls every second. Both funds lose more than 10 %; Bybit's ADL alerts
    (a PnL drawdown against its trigger) reach high in the cascade and medium in the unwind
    (OKX publishes no ADL risk)."""
    simulator = BybitSimulator if venue == BYBIT else OkxSimulator
    async with simulator("long_unwind", time_scale=20.0, list_only_simulated=True) as fast:
        settings = load_settings(
            set(REGISTRY), [], redis_url=redis_url, api={"port": 0},
            venues={venue: {"ws_url": fast.ws_base_url, "rest_url": fast.rest_base_url,
                            "stress": {"venue_every_s": 1.0}}},
        )  # fmt: skip
        runtime = Runtime(settings, {Component.COLLECT, Component.API})
        task = asyncio.create_task(runtime.run())
        seen: list[tuple[int | None, float | None]] = []
        try:
            base = await asyncio.wait_for(runtime.serving(), 15)
            async with httpx.AsyncClient(base_url=base, timeout=5) as http:

                async def drained() -> bool:
                    items = (await http.get("/v1/stress", params={"venue": venue})).json()
                    for item in items["items"]:
                        pcts = [p["change_1h_pct"] for p in item["insurance"]]
                        low = min((p for p in pcts if p is not None), default=None)
                        seen.append((item["adl_level_max"], low))
                    levels = [level for level, _ in seen]
                    adl = venue != BYBIT or (3 in levels and 2 in levels[levels.index(3) :])
                    return adl and any(pct is not None and pct < -10 for _, pct in seen)

                await eventually(drained, within=20)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    levels = [level for level, _ in seen]
    if venue == BYBIT:
        assert max(level or 0 for level in levels) == 3, seen  # never past the trigger
    else:
        assert all(level is None for level in levels), seen


async def test_bybit_adl_alerts_arrive_by_websocket_and_reach_the_detectors_hand_off(
    redis_url: str, redis_client: aioredis.Redis
) -> None:
    """The scenario auto-deleverages BTC after 4 s of calm. The REST ADL alerts are polled
    at start and then every 10 minutes here: an ``ACTIVE`` that arrives came by the
    ``adlAlert.USDT`` topic (pushed every second), through the collector to the stress
    writer, which also hands the levels to the detector (``dlv:{bybit}:handoff``, batch
    ``stress``)."""
    adl = Scenario(
        "adl", "BTC auto-deleveraged after 4 s.",
        (Phase("calm", 4.0, Label(Regime.CALM)),
         Phase("adl", 600.0, Label(Regime.CASCADE, Side.LONG, ("BTC",)),
               {"BTC": Drift(price_pct_per_min=-1.0, oi_pct_per_min=-1.0, adl=True)})),
        loop=False,
    )  # fmt: skip
    async with BybitSimulator(adl, list_only_simulated=True) as sim:
        settings = load_settings(
            set(REGISTRY), [], redis_url=redis_url, api={"port": 0},
            venues={BYBIT: {"ws_url": sim.ws_base_url, "rest_url": sim.rest_base_url,
                            "stress": {"venue_every_s": 600.0}}},
        )  # fmt: skip
        runtime = Runtime(settings, {Component.COLLECT, Component.API})
        task = asyncio.create_task(runtime.run())
        try:
            base = await asyncio.wait_for(runtime.serving(), 15)
            async with httpx.AsyncClient(base_url=base, timeout=5) as http:
                rows: list[dict[str, object]] = []

                async def active() -> bool:
                    items = (await http.get("/v1/stress", params={"venue": BYBIT})).json()
                    rows[:] = [r for item in items["items"] for r in item["adl"]
                               if r["symbol"] == "BTCUSDT" and r["level"] == 4]  # fmt: skip
                    return bool(rows)

                await eventually(active, within=15)
                assert rows[0]["native_kind"] == "pnl_drawdown_ratio"
            handed: list[AdlRisk] = []

            async def handed_off() -> bool:
                entries = await redis_client.xrange(keys.handoff(BYBIT))
                handed[:] = [
                    e for _, f in entries if f[b"b"] == HANDOFF_BATCH.encode()
                    for e in handoff_events(f[b"e"], keys.handoff(BYBIT))
                    if isinstance(e, AdlRisk)
                ]  # fmt: skip
                return any(e.symbol == "BTCUSDT" for e in handed)

            await eventually(handed_off, within=10)
            btc = [e.level for e in handed if e.symbol == "BTCUSDT"]
            assert btc[-1] is AdlLevel.ACTIVE
            assert AdlLevel.ACTIVE not in btc[:1]  # the REST poll at start: before the ADL
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
