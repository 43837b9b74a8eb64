"""``GET /v1/stress``: the stress states the writer stored, per venue, filtered by venue and
asset; an insurance pool's change over the last hour; problems for bad input and a Redis
that is down."""

from __future__ import annotations

import time

import httpx
import pytest
import redis.asyncio as aioredis
from asgi_lifespan import LifespanManager

from service.config import Settings
from service.events import (
    AdlLevel,
    AdlRisk,
    Basis,
    InsuranceFund,
    Positioning,
    PositioningMetric,
    StressEvent,
)
from service.publish.api import create_app
from service.publish.api.params import rfc3339
from service.publish.api.problems import STORE_UNAVAILABLE
from service.store.stress import StressWriter

PROBLEM = "application/problem+json"


def _now() -> int:
    return time.time_ns() // 1_000_000


def _fund(balance: float, at: int) -> InsuranceFund:
    return InsuranceFund(
        venue="bybit", symbol="BTCUSDT", base="*", ts_ms=at, recv_ms=at, pool="BTCUSDT",
        asset="USDT", balance=balance, balance_usd=balance, symbols=("BTCUSDT", "ETHUSDT"),
    )  # fmt: skip


def _adl(symbol: str, base: str, level: AdlLevel, native: str, at: int) -> AdlRisk:
    return AdlRisk(
        venue="bybit", symbol=symbol, base=base, ts_ms=at, recv_ms=at, level=level,
        native=native, native_kind="pnl_drawdown_ratio", trigger=-0.3,
    )  # fmt: skip


async def _store(redis: aioredis.Redis, *batches: list[StressEvent]) -> None:
    writer = StressWriter(redis, retention_s=86400)
    for batch in batches:
        await writer.write(batch)


async def test_stress_lists_each_venue_with_its_pools_change_and_adl_level(
    client: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    now = _now()
    ratio = Positioning(
        venue="bybit", symbol="ETHUSDT", base="ETH", ts_ms=now, recv_ms=now,
        metric=PositioningMetric.ACCOUNTS, period_s=300, long_short_ratio=3.0, long_share=0.75,
    )  # fmt: skip
    basis = Basis(
        venue="binance_usdm", symbol="BTCUSDT", base="BTC", ts_ms=now, recv_ms=now,
        contract="perpetual", futures_price=100_100.0, index_price=100_000.0, basis=100.0,
        basis_rate=0.001, annualized_rate=None,
    )  # fmt: skip
    await _store(
        redis,
        [_fund(1_000_000.0, now - 2000)],
        [
            _fund(800_000.0, now),  # down 20 % since the first stored within the hour
            _adl("BTCUSDT", "BTC", AdlLevel.ACTIVE, "-0.56", now),
            _adl("ETHUSDT", "ETH", AdlLevel.LOW, "-0.01", now),
            ratio,
            basis,
        ],
    )
    r = await client.get("/v1/stress")
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [v["venue"] for v in items] == ["binance_usdm", "bybit"]
    binance, bybit = items
    assert binance["adl_level_max"] is None
    assert binance["basis"][0]["basis_rate"] == 0.001
    assert bybit["adl_level_max"] == 4
    (pool,) = bybit["insurance"]
    assert pool["balance_usd"] == 800_000.0
    assert pool["change_1h_usd"] == -200_000.0
    assert pool["change_1h_pct"] == pytest.approx(-20.0)
    assert pool["symbols"] == ["BTCUSDT", "ETHUSDT"]
    assert pool["updated_at"] == rfc3339(now)
    assert [(a["symbol"], a["level"], a["level_name"], a["native"]) for a in bybit["adl"]] == [
        ("BTCUSDT", 4, "active", "-0.56"),
        ("ETHUSDT", 1, "low", "-0.01"),
    ]
    assert bybit["positioning"] == [
        {"symbol": "ETHUSDT", "asset": "ETH", "metric": "accounts", "period_s": 300,
         "long_short_ratio": 3.0, "long_share": 0.75, "updated_at": rfc3339(now)},
    ]  # fmt: skip

    r = await client.get("/v1/stress", params={"venue": "bybit", "asset": "eth"})
    (only,) = r.json()["items"]
    assert only["venue"] == "bybit"
    assert [a["symbol"] for a in only["adl"]] == ["ETHUSDT"]
    assert only["adl_level_max"] == 1
    assert only["insurance"] == []  # the pool is shared by two assets: base "*"
    assert (await client.get("/v1/stress", params={"venue": "okx"})).json() == {"items": []}


async def test_stress_with_a_bad_parameter_is_a_422_problem(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/stress", params={"asset": "X" * 200})
    assert r.status_code == 422
    assert r.headers["content-type"] == PROBLEM
    assert r.json()["errors"][0]["name"] == "asset"


async def test_stress_is_a_503_problem_when_redis_is_unreachable(settings: Settings) -> None:
    dead = aioredis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)
    try:
        async with LifespanManager(create_app(settings, redis=dead)) as manager:
            transport = httpx.ASGITransport(app=manager.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
                r = await c.get("/v1/stress")
    finally:
        await dead.aclose()
    assert r.status_code == 503
    assert r.json()["type"] == STORE_UNAVAILABLE
