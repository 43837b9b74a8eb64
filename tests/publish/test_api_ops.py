"""Liveness, readiness, problem details for HTTP and store errors, the lifespan, OpenAPI."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from publish_support import PROBLEM, now_ms, snapshot, store_health

from service.config import Settings
from service.publish.api import create_app
from service.publish.api.problems import NOT_READY, STORE_UNAVAILABLE


@asynccontextmanager
async def _client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            yield c


@pytest.fixture
async def down_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app with a Redis that refuses connections (nothing listens on port 1)."""
    dead = aioredis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)
    async with _client(create_app(settings, redis=dead)) as c:
        yield c
    await dead.aclose()


async def test_healthz_is_always_ok(client: httpx.AsyncClient) -> None:
    r = await client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


async def test_readyz_is_ready_when_every_enabled_venue_is_fresh(
    client: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    await store_health(redis, snapshot("binance_usdm"), snapshot("bybit"))
    r = await client.get("/readyz")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "ready"
    assert [c["name"] for c in body["checks"]] == ["redis", "venue:binance_usdm", "venue:bybit"]
    assert all(c["ok"] for c in body["checks"])


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        (lambda: {"updated_ms": now_ms() - 11_000}, "health snapshot is 11."),
        (lambda: {"connected": False, "last_error": "1006"}, "not connected (1006)"),
        (lambda: {"last_message_ms": now_ms() - 31_000}, "(watchdog 30 s)"),
        (lambda: {"last_message_ms": None}, "no message received yet"),
    ],
    ids=["snapshot-old", "disconnected", "silent", "no-message"],
)
async def test_readyz_is_503_when_a_venue_is_stale(
    client: httpx.AsyncClient,
    redis: aioredis.Redis,
    overrides: Callable[[], dict[str, Any]],
    reason: str,
) -> None:
    await store_health(redis, snapshot("binance_usdm"), snapshot("bybit", **overrides()))
    r = await client.get("/readyz")
    assert r.status_code == 503
    assert r.headers["content-type"] == PROBLEM
    body = r.json()
    assert body["type"] == NOT_READY
    assert body["status"] == 503
    assert body["instance"] == "/readyz"
    assert body["detail"] == "failing checks: venue:bybit"
    failing = [c for c in body["checks"] if not c["ok"]]
    assert [c["name"] for c in failing] == ["venue:bybit"]
    assert reason in failing[0]["detail"]


async def test_readyz_is_503_when_an_enabled_venue_never_reported(
    client: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    # okx is disabled: its absence does not matter; bybit's does.
    await store_health(redis, snapshot("binance_usdm"))
    r = await client.get("/readyz")
    assert r.status_code == 503
    failing = [c for c in r.json()["checks"] if not c["ok"]]
    assert failing == [{"name": "venue:bybit", "ok": False, "detail": "no health snapshot"}]


async def test_readyz_is_503_when_redis_is_unreachable(down_client: httpx.AsyncClient) -> None:
    r = await down_client.get("/readyz")
    assert r.status_code == 503
    assert r.headers["content-type"] == PROBLEM
    body = r.json()
    assert body["detail"] == "failing checks: redis, venue:binance_usdm, venue:bybit"
    assert body["checks"][0]["name"] == "redis"
    assert body["checks"][0]["detail"].startswith("unreachable")


async def test_a_route_reading_redis_is_a_503_problem_when_redis_is_unreachable(
    down_client: httpx.AsyncClient,
) -> None:
    r = await down_client.get("/v1/pressure")
    assert r.status_code == 503
    assert r.headers["content-type"] == PROBLEM
    assert r.headers["retry-after"] == "5"
    assert r.json()["type"] == STORE_UNAVAILABLE
    assert r.json()["instance"] == "/v1/pressure"


async def test_unknown_route_is_a_404_problem(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/nothing")
    assert r.status_code == 404
    assert r.headers["content-type"] == PROBLEM
    assert r.json() == {
        "type": "about:blank",
        "title": "Not Found",
        "status": 404,
        "instance": "/v1/nothing",
    }


async def test_wrong_method_is_a_405_problem_with_allow(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/venues")
    assert r.status_code == 405
    assert r.headers["content-type"] == PROBLEM
    assert r.headers["allow"] == "GET"


async def test_lifespan_creates_and_closes_its_own_client(
    settings: Settings, redis: aioredis.Redis
) -> None:
    app = create_app(settings)  # no client given: it connects to settings.redis_url
    await store_health(redis, snapshot("binance_usdm"), snapshot("bybit"))
    async with _client(app) as c:
        assert (await c.get("/readyz")).status_code == 200


async def test_lifespan_leaves_a_given_client_open(
    client: httpx.AsyncClient, app: FastAPI, redis: aioredis.Redis
) -> None:
    assert (await client.get("/v1/venues")).status_code == 200
    async with _client(app) as c:  # a second start and stop of the same app
        assert (await c.get("/healthz")).status_code == 200
    assert await redis.ping()


async def test_openapi_has_stable_ids_tags_and_problem_responses(
    client: httpx.AsyncClient,
) -> None:
    schema = (await client.get("/openapi.json")).json()
    operations = {
        (method, path): op for path, item in schema["paths"].items() for method, op in item.items()
    }
    assert {(m, p): op["operationId"] for (m, p), op in operations.items()} == {
        ("get", "/healthz"): "liveness",
        ("get", "/readyz"): "readiness",
        ("get", "/v1/venues"): "list_venues",
        ("get", "/v1/pressure"): "list_pressure",
        ("get", "/v1/pressure/{venue}/{symbol}"): "get_pressure",
        ("get", "/v1/transitions"): "list_transitions",
        ("get", "/v1/liquidations"): "list_liquidations",
        ("get", "/v1/funding"): "list_funding",
        ("get", "/v1/open-interest"): "list_open_interest",
        ("get", "/v1/mark"): "list_marks",
        ("get", "/v1/liquidity"): "list_liquidity",
        ("get", "/v1/assets"): "list_assets",
        ("get", "/v1/assets/{asset}"): "get_asset",
        ("get", "/v1/assets/{asset}/history"): "get_asset_history",
        ("get", "/v1/stress"): "list_stress",
        ("get", "/v1/stream"): "stream",
        ("get", "/v1/alerts"): "list_alerts",
        ("get", "/v1/alerts/{alert_id}"): "get_alert",
        ("get", "/v1/receivers"): "list_receivers",
    }
    for (_, path), op in operations.items():
        assert op["tags"], path
        content = op["responses"]["200"]["content"]
        if path == "/v1/stream":  # each event's schema, its data one of the payload models
            events = content["text/event-stream"]["schema"]["oneOf"]
            for event in events:
                ref = event["properties"]["data"]["contentSchema"]["$ref"]
                assert ref.rpartition("/")[2] in schema["components"]["schemas"], ref
            assert {e["properties"]["event"]["const"] for e in events} >= {
                "score", "transition", "alert", "liquidation", "heartbeat", "dropped", "reset"
            }  # fmt: skip
        else:
            assert "$ref" in content["application/json"]["schema"], path
        for status, response in op["responses"].items():
            if status[0] in "45":
                assert list(response["content"]) == [PROBLEM], (path, status)
        if op.get("parameters"):
            assert "422" in op["responses"], path
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    limit = next(
        p for p in operations[("get", "/v1/funding")]["parameters"] if p["name"] == "limit"
    )
    assert limit["schema"]["default"] == 20
    assert limit["schema"]["anyOf"][0]["maximum"] == 50


class _Process:
    """A process status as the runtime gives it: a component down, the writer behind."""

    def __init__(self, checks: list[dict[str, Any]]) -> None:
        self._checks = checks

    def checks(self) -> list[dict[str, Any]]:
        return self._checks


async def test_readyz_adds_the_process_checks_and_fails_on_a_down_component(
    settings: Settings, redis: aioredis.Redis
) -> None:
    await store_health(redis, snapshot("binance_usdm"), snapshot("bybit"))
    down = {"name": "component:detector", "ok": False, "detail": "down for 0.4 s after ..."}
    up = {"name": "store:writer", "ok": True, "detail": "0 events waiting"}
    async with _client(create_app(settings, redis=redis, status=_Process([down, up]))) as c:
        r = await c.get("/readyz")
    assert r.status_code == 503
    body = r.json()
    assert body["detail"] == "failing checks: component:detector"
    assert body["checks"][-2:] == [down, up]
    async with _client(create_app(settings, redis=redis, status=_Process([up]))) as c:
        r = await c.get("/readyz")
    assert r.status_code == 200
    assert r.json()["checks"][-1] == up
