"""``GET /v1/assets/{asset}/history``: an asset's open interest, funding, liquidations by side
and score in buckets, from the streams as the service writes them (entries stamped in the
past with explicit ids, as they would have been)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import msgspec
import pytest
import redis.asyncio as aioredis
from publish_support import PROBLEM, funding, liquidation, now_ms, open_interest

from service.events import Event, Kind, Side
from service.events import encode as encode_event
from service.store import keys

pytestmark = pytest.mark.integration


async def _at(redis: aioredis.Redis, ms: int, event: Event) -> None:
    """``event`` stored ``ms`` (epoch ms) as the store script would have: in its stream and
    as the newest of its kind (the API finds an asset's instruments there)."""
    event = msgspec.structs.replace(event, ts_ms=ms, recv_ms=ms)
    data = encode_event(event)
    kind = Kind(json.loads(data)["type"])
    await redis.xadd(keys.events(event.venue, event.symbol, kind), {"e": data}, id=f"{ms}-*")
    await redis.hset(keys.latest(event.venue, event.symbol), kind.value, data)
    await redis.sadd(keys.INSTRUMENTS, keys.instrument_id(event.venue, event.symbol))


async def _history(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    r = await client.get("/v1/assets/btc/history", params=params)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_buckets_sum_open_interest_weight_funding_and_split_liquidations(
    client: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    now = now_ms()
    for age_s, binance_oi, bybit_oi in ((290, 6e9, 2e9), (170, 5e9, 2e9), (50, 4e9, 1e9)):
        t = now - age_s * 1000
        await _at(redis, t, open_interest("binance_usdm", "BTCUSDT", binance_oi))
        await _at(redis, t, open_interest("bybit", "BTCUSD", bybit_oi))
        await _at(redis, t, funding("binance_usdm", "BTCUSDT", 0.0008, interval_h=8.0))
        await _at(redis, t, funding("bybit", "BTCUSD", 0.0002, interval_h=1.0))
    await _at(redis, now - 100_000, liquidation("bybit", "BTCUSD", price=100_000, quantity=2))
    await _at(redis, now - 90_000, liquidation("bybit", "BTCUSD", price=100_000, quantity=1))
    await _at(redis, now - 80_000,
              liquidation("binance_usdm", "BTCUSDT", side=Side.SHORT, price=100_000))  # fmt: skip
    await _at(redis, now - 20_000, open_interest("binance_usdm", "ETHUSDT", 9e9))  # not BTC
    for age_s, sample in ((150, {"score": 20.0, "state": "calm", "side": None}),
                          (30, {"score": 72.5, "state": "cascade", "side": "long"})):  # fmt: skip
        await redis.xadd(keys.score_history("BTC"), {"e": json.dumps(sample)},
                         id=f"{now - age_s * 1000}-*")  # fmt: skip

    body = await _history(client, window_s=300, step_s=60)
    assert (body["asset"], body["window_s"], body["step_s"], body["instruments"]) == (
        "BTC", 300, 60, 2
    )  # fmt: skip
    points = body["points"]
    assert len(points) == 5
    assert all(p["at"].endswith("Z") for p in points)
    # newest value before each bucket's end, summed over both venues
    assert [p["oi_usd"] for p in points] == [8e9, 8e9, 7e9, 7e9, 5e9]
    # per hour: binance 1e-4 (OI 6, 5, 4 B), bybit 2e-4 (OI 2, 2, 1 B)
    assert points[0]["funding_rate_1h"] == pytest.approx((6 * 1e-4 + 2 * 2e-4) / 8)
    assert points[-1]["funding_rate_1h"] == pytest.approx((4 * 1e-4 + 1 * 2e-4) / 5)
    liq = [(p["liq_long_usd"], p["liq_short_usd"], p["liq_count"]) for p in points]
    assert liq == [(0, 0, 0), (0, 0, 0), (0, 0, 0), (300_000, 100_000, 3), (0, 0, 0)]
    assert [(p["score"], p["state"], p["side"]) for p in points] == [
        (None, None, None), (None, None, None), (20.0, "calm", None), (None, None, None),
        (72.5, "cascade", "long"),
    ]  # fmt: skip


async def test_a_value_older_than_the_staleness_limit_is_left_out(
    client: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    now = now_ms()
    await _at(redis, now - 3_000_000, open_interest("bybit", "BTCUSD", 2e9))  # 50 min old
    await _at(redis, now - 10_000, open_interest("binance_usdm", "BTCUSDT", 6e9))
    points = (await _history(client, window_s=120, step_s=60))["points"]
    assert [p["oi_usd"] for p in points] == [None, 6e9]


async def test_an_unknown_asset_has_empty_buckets_and_too_many_points_are_422(
    client: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    await _at(redis, now_ms(), open_interest("bybit", "BTCUSD", 2e9))
    r = await client.get("/v1/assets/NOPE/history", params={"window_s": 600, "step_s": 60})
    assert r.status_code == 200
    assert r.json()["instruments"] == 0
    assert {(p["oi_usd"], p["liq_count"], p["score"]) for p in r.json()["points"]} == {
        (None, 0, None)
    }
    r = await client.get("/v1/assets/BTC/history", params={"window_s": 86400, "step_s": 60})
    assert (r.status_code, r.headers["content-type"]) == (422, PROBLEM)
    assert r.json()["errors"][0]["name"] == "step_s"
    default = await _history(client)
    assert (default["window_s"], default["step_s"], len(default["points"])) == (14400, 120, 120)
