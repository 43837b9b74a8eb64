"""``GET /v1/pressure`` and ``GET /v1/pressure/{venue}/{symbol}``."""

from __future__ import annotations

import httpx
import pytest
import redis.asyncio as aioredis
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from publish_support import PROBLEM, pressure, store_pressure

from service.events import Side
from service.publish.api.params import rfc3339
from service.scores import State
from service.store import keys, poison

SCORES = [
    pressure("binance_usdm", "BTCUSDT", 81.0, State.CASCADE, side=Side.LONG, forced_share=0.7),
    pressure("binance_usdm", "ETHUSDT", 12.5),
    pressure("bybit", "BTCUSDT", 55.0, State.UNWINDING, side=Side.SHORT),
    pressure("bybit", "SOLUSDT", 30.0, State.BUILDING),
    pressure("okx", "ETHUSDT", 64.0, State.UNWINDING, side=Side.LONG),
]


@pytest.fixture(autouse=True)
async def _scores(redis: aioredis.Redis) -> None:
    await store_pressure(redis, *SCORES)


def _ids(r: httpx.Response) -> list[str]:
    assert r.status_code == 200, r.text
    return [f"{p['venue']}/{p['symbol']}" for p in r.json()["items"]]


async def test_pressure_is_sorted_by_score_descending(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/pressure")
    assert _ids(r) == [
        "binance_usdm/BTCUSDT", "okx/ETHUSDT", "bybit/BTCUSDT", "bybit/SOLUSDT",
        "binance_usdm/ETHUSDT",
    ]  # fmt: skip
    first = r.json()["items"][0]
    p = SCORES[0]
    assert first == {
        "venue": "binance_usdm", "symbol": "BTCUSDT", "asset": "BTC", "score": 81.0,
        "state": "cascade", "side": "long", "updated_at": rfc3339(p.updated_ms),
        "since": rfc3339(p.since_ms), "forced_share": 0.7, "data_quality": 1.0,
        "features": {"oi_change_base_pct": -1.5}, "reasons": ["OI -1.5% in 5m"],
        "depth_1pct_usd": None, "depth_1pct_exact": None, "depth_1pct_change_pct": None,
        "depth_1pct_z": None, "fragile": None,  # no liquidity figures
    }  # fmt: skip


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("venue=bybit", ["bybit/BTCUSDT", "bybit/SOLUSDT"]),
        ("asset=eth", ["okx/ETHUSDT", "binance_usdm/ETHUSDT"]),
        ("state=unwinding", ["okx/ETHUSDT", "bybit/BTCUSDT"]),
        ("min_score=55", ["binance_usdm/BTCUSDT", "okx/ETHUSDT", "bybit/BTCUSDT"]),
        ("venue=bybit&state=building&min_score=20", ["bybit/SOLUSDT"]),
        ("limit=2", ["binance_usdm/BTCUSDT", "okx/ETHUSDT"]),
        ("venue=kraken", []),
    ],
)
async def test_pressure_filters(client: httpx.AsyncClient, query: str, expected: list[str]) -> None:
    assert _ids(await client.get(f"/v1/pressure?{query}")) == expected


async def test_one_instrument(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/pressure/bybit/BTCUSDT")
    assert r.status_code == 200
    assert r.json()["score"] == 55.0
    assert r.json()["side"] == "short"


async def test_unknown_instrument_is_a_404_problem(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/pressure/bybit/DOGEUSDT")
    assert r.status_code == 404
    assert r.headers["content-type"] == PROBLEM
    assert r.json() == {
        "type": "about:blank",
        "title": "Not Found",
        "status": 404,
        "detail": "no pressure score for bybit/DOGEUSDT",
        "instance": "/v1/pressure/bybit/DOGEUSDT",
    }


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("state=panic", "state"),
        ("min_score=101", "min_score"),
        ("min_score=high", "min_score"),
        ("limit=0", "limit"),
        ("limit=51", "limit"),
        ("limit=ten", "limit"),
    ],
)
async def test_bad_parameters_are_422_problems_naming_them(
    client: httpx.AsyncClient, query: str, name: str
) -> None:
    r = await client.get(f"/v1/pressure?{query}")
    assert r.status_code == 422
    assert r.headers["content-type"] == PROBLEM
    body = r.json()
    assert body["type"] == "tag:deleverage,2026:invalid-params"
    assert body["status"] == 422
    assert body["detail"] == f"invalid parameter: {name}"
    assert [(e["name"], e["in"]) for e in body["errors"]] == [(name, "query")]


async def test_limit_over_the_maximum_says_the_maximum(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/pressure?limit=51")
    assert r.json()["errors"][0]["detail"] == "Input should be less than or equal to 50"


async def test_several_bad_parameters_are_all_named(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/pressure?state=x&min_score=-1")
    assert r.status_code == 422
    assert r.json()["detail"] == "invalid parameters: state, min_score"


async def test_a_corrupt_score_is_skipped_not_served(
    client: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    await redis.set(keys.pressure("bybit", "BADUSDT"), b"{not json")
    await redis.sadd(keys.INSTRUMENTS, keys.instrument_id("bybit", "BADUSDT"))
    before = poison.counts().get(("pressure", "undecodable"), 0)
    r = await client.get("/v1/pressure/bybit/BADUSDT")
    assert r.status_code == 404
    assert r.headers["content-type"] == PROBLEM
    listed = await client.get("/v1/pressure")
    assert listed.status_code == 200
    assert len(listed.json()["items"]) == len(SCORES)
    assert poison.counts()[("pressure", "undecodable")] == before + 2


async def test_a_bug_is_a_500_problem(app: FastAPI) -> None:
    async def broken() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/broken", broken)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            r = await c.get("/broken")
    assert r.status_code == 500
    assert r.headers["content-type"] == PROBLEM
    assert r.json()["type"] == "tag:deleverage,2026:internal-error"


async def test_pressure_items_carry_depth_within_1pct_and_fragility_from_the_features(
    client: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    features = {
        "oi_change_base_pct": -2.0, "depth_1pct_usd": 1.1e7, "depth_1pct_exact": 0.0,
        "depth_1pct_change_pct": -45.0, "depth_1pct_z": -7.2, "fragile": 1.0,
    }  # fmt: skip
    await store_pressure(
        redis,
        pressure("bybit", "ETHUSDT", 40.0, State.BUILDING, features=features),
        pressure("bybit", "XRPUSDT", 10.0, features={"spread_bp": 2.0, "fragile": 0.0}),
    )
    listed = (await client.get("/v1/pressure?venue=bybit&asset=eth")).json()["items"]
    one = (await client.get("/v1/pressure/bybit/ETHUSDT")).json()
    for item in (*listed, one):
        assert {k: v for k, v in item.items() if "1pct" in k or k == "fragile"} == {
            "depth_1pct_usd": 1.1e7, "depth_1pct_exact": False,  # a lower bound
            "depth_1pct_change_pct": -45.0, "depth_1pct_z": -7.2, "fragile": True,
        }  # fmt: skip
        assert item["features"] == features  # as the detector gave them
    xrp = (await client.get("/v1/pressure/bybit/XRPUSDT")).json()
    assert (xrp["fragile"], xrp["depth_1pct_usd"]) == (False, None)  # its book not followed
