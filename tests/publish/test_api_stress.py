"""``GET /v1/stress``: the stress states the writer stored, per venue, filtered by venue and
asset; an insurance pool's change over the last hour; problems for bad input and a Redis
that is down. Answered from the API's snapshot (over real HTTP: a write after the read does
not show within the period). ``GET /v1/assets/{asset}``: the asset's stress figures."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import msgspec
import pytest
import redis.asyncio as aioredis
from asgi_lifespan import LifespanManager
from publish_support import open_interest, snapshot, store_events, store_health

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
from service.simulate.asgi_server import AsgiServer
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


@asynccontextmanager
async def _served(settings: Settings, redis: aioredis.Redis) -> AsyncIterator[httpx.AsyncClient]:
    """The API over real HTTP on loopback (uvicorn), its lifespan (the snapshot task) run."""
    async with LifespanManager(create_app(settings, redis=redis)) as manager:
        server = AsgiServer(manager.app)
        port = await server.start()
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as c:
                yield c
        finally:
            await server.stop()


async def test_stress_is_answered_from_the_snapshot_not_per_request(
    settings: Settings, redis: aioredis.Redis
) -> None:
    """With ``api.snapshot_s`` 30, a balance written after the snapshot's read does not show
    until the next read: no request reads Redis."""
    slow = settings.model_copy(update={"api": settings.api.model_copy(update={"snapshot_s": 30})})
    now = _now()
    await _store(redis, [_fund(1_000_000.0, now - 2000)], [_fund(900_000.0, now)])
    async with _served(slow, redis) as http:
        first = (await http.get("/v1/stress")).json()
        await _store(redis, [_fund(100.0, _now())])  # after the read
        again = [(await http.get("/v1/stress")).json() for _ in range(3)]
        filtered = (await http.get("/v1/stress", params={"venue": "bybit"})).json()
    (pool,) = first["items"][0]["insurance"]
    assert (pool["balance_usd"], pool["change_1h_usd"]) == (900_000.0, -100_000.0)
    assert all(a == first for a in again)
    assert filtered == first


async def test_the_asset_view_carries_its_adl_levels_pools_positioning_and_basis(
    settings: Settings, redis: aioredis.Redis
) -> None:
    now = _now()
    await store_health(redis, snapshot("binance_usdm"), snapshot("bybit"))
    await store_events(
        redis,
        [
            open_interest("binance_usdm", "BTCUSDT", 6e9),
            open_interest("bybit", "BTCUSDT", 2e9),
            open_interest("bybit", "ETHUSDT", 1e9),
        ],
    )
    other_pool = InsuranceFund(
        venue="bybit", symbol="SOLUSDT", base="SOL", ts_ms=now, recv_ms=now, pool="SOLUSDT",
        asset="USDT", balance=5.0, balance_usd=5.0, symbols=("SOLUSDT",),
    )  # fmt: skip
    binance_pool = InsuranceFund(
        venue="binance_usdm", symbol="BTCUSDT", base="*", ts_ms=now, recv_ms=now,
        pool="BTCUSDT", asset="USDT", balance=8e8, balance_usd=8e8,
        symbols=("BTCUSDT", "ETHUSDT"),
    )  # fmt: skip
    ratio = Positioning(
        venue="binance_usdm", symbol="BTCUSDT", base="BTC", ts_ms=now, recv_ms=now,
        metric=PositioningMetric.TOP_POSITIONS, period_s=300, long_short_ratio=0.5,
        long_share=1 / 3,
    )  # fmt: skip
    basis = Basis(
        venue="binance_usdm", symbol="BTCUSDT", base="BTC", ts_ms=now, recv_ms=now,
        contract="perpetual", futures_price=99_900.0, index_price=100_000.0, basis=-100.0,
        basis_rate=-0.001, annualized_rate=None,
    )  # fmt: skip
    await _store(
        redis,
        [_fund(1_000_000.0, now - 2000)],
        [
            _fund(700_000.0, now),  # the shared pool lists BTCUSDT: BTC's too
            other_pool,  # SOL's alone: not BTC's
            binance_pool,
            _adl("BTCUSDT", "BTC", AdlLevel.HIGH, "-0.25", now),
            _adl("ETHUSDT", "ETH", AdlLevel.ACTIVE, "-0.5", now),  # ETH's, not BTC's
            ratio,
            basis,
        ],
    )
    async with _served(settings, redis) as http:
        r = await http.get("/v1/assets/btc")
        listed = (await http.get("/v1/assets")).json()["items"]
        eth = (await http.get("/v1/assets/ETH")).json()["stress"]
    assert r.status_code == 200, r.text
    btc = r.json()
    assert btc["asset"] == "BTC"
    assert btc["oi_usd"] == pytest.approx(8e9)  # the asset's own fields are unchanged
    assert {i["symbol"] for i in btc["instruments"]} == {"BTCUSDT"}
    stress = btc["stress"]
    assert stress["adl_level_max"] == 3
    binance, bybit = stress["venues"]
    assert bybit["venue"] == "bybit"
    assert [(a["symbol"], a["level_name"]) for a in bybit["adl"]] == [("BTCUSDT", "high")]
    (pool,) = bybit["insurance"]
    assert (pool["pool"], pool["change_1h_pct"]) == ("BTCUSDT", pytest.approx(-30.0))
    assert bybit["positioning"] == []
    assert binance["venue"] == "binance_usdm"
    assert binance["adl_level_max"] is None
    assert [p["balance_usd"] for p in binance["insurance"]] == [8e8]
    assert binance["positioning"][0]["metric"] == "top_positions"
    assert binance["basis"][0]["basis_rate"] == -0.001
    assert all("stress" not in item for item in listed)  # the list stays as it was
    assert eth["adl_level_max"] == 4
    # Binance's pool lists ETHUSDT, but ETH has no instrument stored on Binance here.
    (eth_bybit,) = eth["venues"]
    assert [p["pool"] for p in eth_bybit["insurance"]] == ["BTCUSDT"]


async def test_a_new_pool_gets_its_change_at_the_next_snapshot(
    settings: Settings, redis: aioredis.Redis
) -> None:
    """The hour-old balances are kept across reads (re-read every 30 s), but a pool with no
    base in them is looked up at the next read."""
    fast = settings.model_copy(update={"api": settings.api.model_copy(update={"snapshot_s": 0.2})})
    now = _now()
    await _store(redis, [_fund(1_000_000.0, now - 2000)], [_fund(900_000.0, now)])
    other = InsuranceFund(
        venue="bybit", symbol="SOLUSDT", base="SOL", ts_ms=now, recv_ms=now, pool="SOLUSDT",
        asset="USDT", balance=100.0, balance_usd=100.0, symbols=("SOLUSDT",),
    )  # fmt: skip
    async with _served(fast, redis) as http:
        first = (await http.get("/v1/stress")).json()
        await _store(redis, [other], [msgspec.structs.replace(other, balance_usd=50.0)])
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            pools = (await http.get("/v1/stress")).json()["items"][0]["insurance"]
            if len(pools) == 2:
                break
            await asyncio.sleep(0.1)
    assert [p["change_1h_usd"] for p in first["items"][0]["insurance"]] == [-100_000.0]
    assert {p["pool"]: p["change_1h_usd"] for p in pools} == {
        "BTCUSDT": -100_000.0, "SOLUSDT": -50.0,
    }  # fmt: skip
