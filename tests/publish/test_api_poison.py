"""Poisoned entries already in Redis: every GET endpoint still answers 200 with the good data,
and each skipped entry is counted in ``/metrics``."""

from __future__ import annotations

import httpx
import pytest
import redis.asyncio as aioredis
from fastapi import FastAPI
from poison_support import ALERT_ID, GOOD_INSTRUMENTS, Seeded, seed_poison, seed_realistic
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from publish_support import MemorySource

from service.config import Settings
from service.events import Side
from service.publish.api import create_app
from service.publish.metrics import MetricsCollector
from service.store import keys


@pytest.fixture
def app(settings: Settings, redis: aioredis.Redis) -> FastAPI:
    registry = CollectorRegistry()
    registry.register(MetricsCollector(MemorySource(), settings.metrics))
    return create_app(settings, redis=redis, metrics_registry=registry)


@pytest.fixture
async def seeded(redis: aioredis.Redis) -> Seeded:
    seeded = await seed_realistic(redis)
    await seed_poison(redis)
    return seeded


async def _get(client: httpx.AsyncClient, url: str, status: int = 200) -> object:
    r = await client.get(url)
    assert r.status_code == status, f"{url}: {r.status_code} {r.text}"
    return r.json()


def _items(body: object) -> list[dict[str, object]]:
    assert isinstance(body, dict)
    items = body["items"]
    assert isinstance(items, list)
    return items


async def _decode_errors(client: httpx.AsyncClient) -> dict[tuple[str, str], float]:
    text = (await client.get("/metrics")).text
    return {
        (s.labels["what"], s.labels["reason"]): s.value
        for family in text_string_to_metric_families(text)
        if family.name == "deleverage_store_decode_errors"
        for s in family.samples
        if s.name.endswith("_total")
    }


async def test_market_data_serves_what_is_good(client: httpx.AsyncClient, seeded: Seeded) -> None:
    liqs = _items(await _get(client, "/v1/liquidations?limit=50"))
    expected = sorted(seeded.liquidations, key=lambda e: (e.venue, e.symbol, e.price))
    assert sorted((i["venue"], i["symbol"], i["price"], i["quantity"]) for i in liqs) == [
        (e.venue, e.symbol, e.price, e.quantity) for e in expected
    ]
    marks = _items(await _get(client, "/v1/mark"))
    assert [(m["venue"], m["symbol"], m["mark_price"], m["index_price"]) for m in marks] == [
        (m.venue, m.symbol, m.mark_price, m.index_price) for m in seeded.marks
    ]
    funding = _items(await _get(client, "/v1/funding"))  # bybit ETHUSDT's is poisoned
    assert [(f["venue"], f["symbol"]) for f in funding] == GOOD_INSTRUMENTS[:3]
    oi = _items(await _get(client, "/v1/open-interest"))  # binance ETHUSDT's is poisoned
    assert sorted((i["venue"], i["symbol"]) for i in oi) == sorted(
        p for p in GOOD_INSTRUMENTS if p != ("binance_usdm", "ETHUSDT")
    )


@pytest.mark.parametrize("asset", ["BTC", "ETH"])
async def test_assets_sum_only_good_entries(
    client: httpx.AsyncClient, seeded: Seeded, asset: str
) -> None:
    one = await _get(client, f"/v1/assets/{asset}")
    listed = {i["asset"]: i for i in _items(await _get(client, "/v1/assets"))}
    assert isinstance(one, dict)
    assert listed[asset] == {k: v for k, v in one.items() if k != "stress"}  # one asset's own
    mine = [e for e in seeded.liquidations if e.base == asset]
    assert one["liq_count"] == len(mine)
    assert one["liq_long_usd"] == pytest.approx(
        sum(e.notional_usd for e in mine if e.side is Side.LONG)
    )
    assert one["liq_short_usd"] == pytest.approx(
        sum(e.notional_usd for e in mine if e.side is Side.SHORT)
    )
    assert one["oi_usd"] == pytest.approx(2e9 if asset == "BTC" else 1e9)


async def test_scores_transitions_venues_alerts_serve_what_is_good(
    client: httpx.AsyncClient, seeded: Seeded
) -> None:
    scores = _items(await _get(client, "/v1/pressure"))
    assert sorted((s["venue"], s["symbol"], s["score"]) for s in scores) == sorted(
        (p.venue, p.symbol, p.score) for p in seeded.scores
    )
    await _get(client, "/v1/pressure/bybit/BTCUSDT")
    for venue, symbol in (("okx", "XRPUSDT"), ("bybit", "SOLUSDT"), ("binance_usdm", "SOLUSDT")):
        await _get(client, f"/v1/pressure/{venue}/{symbol}", 404)
    transitions = _items(await _get(client, "/v1/transitions"))
    assert [(t["venue"], t["symbol"], t["score"]) for t in transitions] == [
        (t.venue, t.symbol, t.score) for t in reversed(seeded.transitions)
    ]
    for scope in ("asset", "market"):
        assert len(_items(await _get(client, f"/v1/transitions?scope={scope}"))) == 1
    venues = _items(await _get(client, "/v1/venues"))
    assert [(v["venue"], v["fresh"]) for v in venues] == [("binance_usdm", True), ("bybit", True)]
    alerts = _items(await _get(client, "/v1/alerts"))
    assert [a["id"] for a in alerts] == [ALERT_ID]
    await _get(client, f"/v1/alerts/{ALERT_ID}")
    for bad in ("badbadbadbadbad0-1", "badbadbadbadbad1-2", "badbadbadbadbad2-3"):
        await _get(client, f"/v1/alerts/{bad}", 404)
    receivers = _items(await _get(client, "/v1/receivers"))
    assert [(r["name"], r["delivered_total"]) for r in receivers] == [("ops", 3)]


STREAM = "/v1/stream"


async def test_every_get_endpoint_answers_and_drops_are_counted(
    app: FastAPI, client: httpx.AsyncClient, seeded: Seeded
) -> None:
    before = await _decode_errors(client)
    paths = {
        "/v1/assets/{asset}": "/v1/assets/ETH",
        "/v1/assets/{asset}/history": "/v1/assets/ETH/history",
        "/v1/pressure/{venue}/{symbol}": "/v1/pressure/binance_usdm/ETHUSDT",
        "/v1/alerts/{alert_id}": f"/v1/alerts/{ALERT_ID}",
    }
    for path, operations in app.openapi()["paths"].items():
        if "get" not in operations or path == STREAM:
            continue  # the stream never ends: tests/publish/test_stream.py reads it
        url = paths.get(path, path)
        r = await client.get(url)
        ok = (200, 503) if path == "/readyz" else (200,)  # readiness also judges freshness
        assert r.status_code in ok, f"{url}: {r.status_code} {r.text}"
    after = await _decode_errors(client)
    for what, reason in [
        ("liquidation", "undecodable"), ("liquidation", "invalid"), ("liquidation", "wrong_type"),
        ("latest", "invalid"), ("latest", "wrong_type"), ("funding", "invalid"),
        ("open_interest", "invalid"), ("instruments", "invalid"),
        ("instruments", "undecodable"), ("pressure", "wrong_type"), ("pressure", "invalid"),
        ("health", "undecodable"), ("health", "wrong_type"), ("venues", "undecodable"),
        ("transition", "undecodable"), ("transition", "invalid"), ("alert", "undecodable"),
        ("alert", "invalid"), ("alert_index", "undecodable"), ("receiver", "invalid"),
        ("receiver", "wrong_type"), ("receiver", "undecodable"),
    ]:  # fmt: skip
        assert after.get((what, reason), 0) > before.get((what, reason), 0), (what, reason)


async def test_global_keys_of_the_wrong_type_leave_empty_lists(
    client: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    for key in (keys.INSTRUMENTS, keys.VENUES, keys.RECEIVERS, keys.TRANSITIONS):
        await redis.set(key, b"not what it should be")
    await redis.hset(keys.ALERTS_INDEX, "a", "b")
    for url in ("/v1/liquidations", "/v1/funding", "/v1/mark", "/v1/open-interest",
                "/v1/assets", "/v1/pressure", "/v1/transitions", "/v1/alerts",
                "/v1/receivers"):  # fmt: skip
        assert _items(await _get(client, url)) == [], url
    venues = _items(await _get(client, "/v1/venues"))  # the enabled ones, never reported
    assert [(v["venue"], v["connected"]) for v in venues] == [
        ("binance_usdm", False),
        ("bybit", False),
    ]
