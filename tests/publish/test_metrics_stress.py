"""The stress metrics on ``/metrics``: the largest pools only and every venue's total, the ADL
level per venue, long/short ratios of the selected symbols (and of their assets' per-currency
figures) only; promtool finds nothing to say."""

from __future__ import annotations

import asyncio
import shutil
from asyncio.subprocess import PIPE, STDOUT
from collections.abc import Mapping

import httpx
import msgspec
import pytest
import redis.asyncio as aioredis
from asgi_lifespan import LifespanManager
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from publish_support import MemorySource, open_interest

from service.config import MetricsSettings, Settings
from service.events import (
    AdlLevel,
    AdlRisk,
    InsuranceFund,
    Positioning,
    PositioningMetric,
    StressEvent,
)
from service.publish.api import create_app
from service.publish.metrics import MAX_POOLS_PER_VENUE, MetricsCollector, StressSnapshot

AT = 1_760_000_000_000


def _pool(venue: str, pool: str, usd: float | None) -> InsuranceFund:
    return InsuranceFund(
        venue=venue, symbol=pool, base="*", ts_ms=AT, recv_ms=AT, pool=pool, asset="USDT",
        balance=usd or 1.0, balance_usd=usd,
    )  # fmt: skip


def _adl(venue: str, symbol: str, level: AdlLevel) -> AdlRisk:
    return AdlRisk(
        venue=venue, symbol=symbol, base=symbol[:3], ts_ms=AT, recv_ms=AT, level=level,
        native=level.name.lower(), native_kind="rating",
    )  # fmt: skip


def _ratio(venue: str, symbol: str, base: str, ratio: float) -> Positioning:
    return Positioning(
        venue=venue, symbol=symbol, base=base, ts_ms=AT, recv_ms=AT,
        metric=PositioningMetric.ACCOUNTS, period_s=300, long_short_ratio=ratio,
        long_share=ratio / (1 + ratio),
    )  # fmt: skip


class Stress:
    """What a process's stress runners would hold (plain data)."""

    def __init__(self, states: Mapping[str, list[StressEvent]]) -> None:
        self.states = states

    def stress(self) -> list[StressSnapshot]:
        return [
            StressSnapshot(
                venue=v,
                states=s,
                polls=40,
                failures={"http_429": 2},
                drops={"invalid_row": 1},
                events=len(s),
            )
            for v, s in self.states.items()
        ]

    def stress_writer(self) -> Mapping[str, float]:
        return {"written": 120, "write_failures": 1, "pending": 0}


@pytest.fixture
def stress() -> Stress:
    binance: list[StressEvent] = [
        _pool("binance_usdm", f"P{i:02d}", 1e6 * (i + 1)) for i in range(12)
    ]
    binance += [
        _pool("binance_usdm", "BNFCR", None),  # no USD value: no series, not in the total
        _adl("binance_usdm", "BTCUSDT", AdlLevel.MEDIUM),
        _adl("binance_usdm", "ETHUSDT", AdlLevel.HIGH),
        _adl("binance_usdm", "DOGEUSDT", AdlLevel.LOW),
        _ratio("binance_usdm", "BTCUSDT", "BTC", 1.5),
        _ratio("binance_usdm", "DOGEUSDT", "DOGE", 0.8),  # not selected: no series
    ]
    okx: list[StressEvent] = [_ratio("okx", "BTC", "BTC", 2.0), _ratio("okx", "PEPE", "PEPE", 3.0)]
    return Stress({"binance_usdm": binance, "okx": okx})


async def _scrape(settings: Settings, redis: aioredis.Redis, stress: Stress) -> str:
    src = MemorySource()
    src.add(
        open_interest("binance_usdm", "BTCUSDT", 8e9, price=100_000.0),
        open_interest("binance_usdm", "DOGEUSDT", 1e7, price=0.1),
        msgspec.structs.replace(
            open_interest("okx", "BTC-USDT-SWAP", 5e9, price=100_000.0), base="BTC"
        ),
    )
    registry = CollectorRegistry()
    settings_m = MetricsSettings(max_symbols_per_venue=1)
    registry.register(MetricsCollector(src, settings_m, stress=stress))
    app = create_app(settings, redis=redis, metrics_registry=registry)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            return (await c.get("/metrics")).text


async def test_stress_series_are_bounded_and_right(
    settings: Settings, redis: aioredis.Redis, stress: Stress
) -> None:
    text = await _scrape(settings, redis, stress)
    samples = {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }

    def named(name: str) -> dict[frozenset[tuple[str, str]], float]:
        return {labels: v for (n, labels), v in samples.items() if n == name}

    pools = named("deleverage_stress_insurance_fund_usd")
    assert len(pools) == MAX_POOLS_PER_VENUE
    assert {dict(k)["pool"] for k in pools} == {f"P{i:02d}" for i in range(2, 12)}  # largest
    total = named("deleverage_stress_insurance_fund_total_usd")
    assert total == {frozenset({("venue", "binance_usdm")}): 1e6 * sum(range(1, 13))}
    assert named("deleverage_stress_adl_level_max") == {frozenset({("venue", "binance_usdm")}): 3}
    levels = {dict(k)["level"]: v for k, v in named("deleverage_stress_adl_instruments").items()}
    assert levels == {"low": 1, "medium": 1, "high": 1, "active": 0}
    ratios = {
        (dict(k)["venue"], dict(k)["symbol"]): v
        for k, v in named("deleverage_stress_long_short_ratio").items()
    }
    assert ratios == {("binance_usdm", "BTCUSDT"): 1.5, ("okx", "BTC"): 2.0}
    failures = named("deleverage_stress_poll_failures_total")
    assert failures[frozenset({("venue", "okx"), ("reason", "http_429")})] == 2
    assert named("deleverage_stress_events_written_total") == {frozenset(): 120}

    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not on PATH (apt-get install prometheus)")
    proc = await asyncio.create_subprocess_exec(
        promtool, "check", "metrics", stdin=PIPE, stdout=PIPE, stderr=STDOUT
    )
    output, _ = await asyncio.wait_for(proc.communicate(text.encode()), timeout=30)
    assert (proc.returncode, output.decode()) == (0, "")
