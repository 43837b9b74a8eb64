"""A data endpoint's answer kept with its view (:mod:`service.publish.api.answers`): the same
target asked again within the view gets the very response the route made (status, headers,
bytes, on the wire too), without the route; a newer view is answered anew; problems,
filtered queries, other routes and views past their bound are never kept; the kept answers
are bounded per view."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
import redis.asyncio as aioredis
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from publish_support import pressure, store_pressure, store_small_market
from stream_support import serve

from service.config import Settings
from service.publish.api import answers, create_app
from service.publish.api.answers import ViewAnswers
from service.publish.api.snapshot import STALE_PERIODS, Snapshots

LONG_S = 600.0
"""A period no test outlives: the view of the first read answers every request."""

KEPT_TARGETS = (
    "/v1/pressure", "/v1/pressure?limit=2", "/v1/assets/BTC", "/v1/funding", "/v1/venues",
    "/v1/liquidations?limit=2", "/v1/stress",
)  # fmt: skip
"""Targets whose routes answer from the view alone (``View.json``)."""


def _with_period(settings: Settings, snapshot_s: float) -> Settings:
    api = settings.api.model_copy(update={"snapshot_s": snapshot_s})
    return settings.model_copy(update={"api": api})


def _answers(app: FastAPI) -> ViewAnswers:
    """The app's :class:`ViewAnswers` (its middleware stack is built on the first request)."""
    layer = app.middleware_stack
    while layer is not None and not isinstance(layer, ViewAnswers):
        layer = getattr(layer, "app", None)
    assert isinstance(layer, ViewAnswers), "ViewAnswers is not in the app's middleware"
    return layer


@asynccontextmanager
async def _serve(
    settings: Settings, redis: aioredis.Redis
) -> AsyncIterator[tuple[httpx.AsyncClient, FastAPI, Snapshots]]:
    app = create_app(_with_period(settings, LONG_S), redis=redis)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            await c.get("/healthz")  # builds the middleware stack
            await app.state.snapshots.get()  # the first view (a target asked before is not kept)
            yield c, app, app.state.snapshots


async def test_a_repeated_target_gets_the_response_the_route_made_without_the_route(
    settings: Settings, redis: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    await store_small_market(redis)
    async with _serve(settings, redis) as (client, app, snaps):
        first = {t: await client.get(t) for t in KEPT_TARGETS}
        kept = _answers(app)
        assert kept.kept == len(KEPT_TARGETS)
        for t, r in first.items():
            assert r.status_code == 200, (t, r.text)

        async def no_read() -> None:
            raise AssertionError("a route asked for the view: it ran for a kept target")

        monkeypatch.setattr(snaps, "get", no_read)  # every route of these asks for it
        again = {t: await client.get(t) for t in KEPT_TARGETS}
        for t in KEPT_TARGETS:
            assert again[t].status_code == 200
            assert again[t].headers.raw == first[t].headers.raw, t
            assert again[t].content == first[t].content, t
        assert kept.hits == len(KEPT_TARGETS)


async def test_kept_answers_are_the_bytes_on_the_wire(
    settings: Settings, redis: aioredis.Redis
) -> None:
    """Over real HTTP (uvicorn, the API's protocol): the second answer of a target, served
    from what was kept, is the first one byte for byte but for the ``date`` header."""
    await store_small_market(redis)
    app = create_app(_with_period(settings, LONG_S), redis=redis)
    async with serve(app) as base:
        await app.state.snapshots.get()  # the first view (a target asked before is not kept)
        host, port = base.removeprefix("http://").split(":")

        async def raw_get(target: str) -> bytes:
            reader, writer = await asyncio.open_connection(host, int(port))
            writer.write(f"GET {target} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n".encode())
            data = await reader.read()
            writer.close()
            return data

        for target in ("/v1/pressure?limit=2", "/v1/venues"):
            first, second = await raw_get(target), await raw_get(target)
            assert first.startswith(b"HTTP/1.1 200 OK\r\n")

            def without_date(response: bytes) -> list[bytes]:
                return [line for line in response.split(b"\r\n") if not line.startswith(b"date:")]

            assert without_date(second) == without_date(first), target
        assert _answers(app).hits == 2


async def test_a_newer_view_is_answered_anew(settings: Settings, redis: aioredis.Redis) -> None:
    await store_pressure(redis, pressure("bybit", "BTCUSDT", 40.0))
    async with _serve(settings, redis) as (client, app, snaps):
        assert (await client.get("/v1/pressure")).json()["items"][0]["score"] == 40.0
        await store_pressure(redis, pressure("bybit", "BTCUSDT", 70.0))
        await snaps._start_read()  # what the timer does
        assert (await client.get("/v1/pressure")).json()["items"][0]["score"] == 70.0
        assert _answers(app).hits == 0
        assert (await client.get("/v1/pressure")).json()["items"][0]["score"] == 70.0
        assert _answers(app).hits == 1


async def test_a_view_past_its_bound_is_never_answered_from(
    settings: Settings, redis: aioredis.Redis
) -> None:
    """Past the bound the route waits for a read; so does a kept target."""
    await store_pressure(redis, pressure("bybit", "BTCUSDT", 40.0))
    async with _serve(settings, redis) as (client, app, snaps):
        await client.get("/v1/pressure")
        await store_pressure(redis, pressure("bybit", "BTCUSDT", 70.0))
        (await snaps.get()).started -= STALE_PERIODS * LONG_S + 1
        reads = snaps.refreshes
        assert (await client.get("/v1/pressure")).json()["items"][0]["score"] == 70.0
        assert snaps.refreshes == reads + 1
        assert _answers(app).hits == 0


@pytest.mark.parametrize(
    "target",
    [
        "/v1/pressure?limit=999",  # 422: over max_limit
        "/v1/pressure?limit=1&limit=2",  # 422: the query caps
        "/v1/assets/NOPE",  # 404
        "/v1/pressure?asset=BTC",  # a filter: not the view's kept rendering
        "/v1/liquidations?limit=50",  # more than the tape's head: read from Redis
        "/v1/transitions",  # Redis, per request
        "/healthz",
    ],
)
async def test_problems_filters_and_other_routes_are_never_kept(
    settings: Settings, redis: aioredis.Redis, target: str
) -> None:
    await store_small_market(redis)
    async with _serve(settings, redis) as (client, app, _):
        answers_seen = [await client.get(target) for _ in range(3)]
        assert len({(r.status_code, r.content) for r in answers_seen}) == 1
        assert (_answers(app).kept, _answers(app).hits) == (0, 0)


async def test_kept_answers_are_bounded_per_view(
    settings: Settings, redis: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(answers, "MAX_TARGETS", 2)
    await store_small_market(redis)
    async with _serve(settings, redis) as (client, app, _):
        targets = [f"/v1/pressure?limit={n}" for n in (1, 2, 3)]
        bodies = [[(await client.get(t)).content for t in targets] for _ in range(2)]
        assert bodies[0] == bodies[1]
        assert (_answers(app).kept, _answers(app).hits) == (2, 2)
