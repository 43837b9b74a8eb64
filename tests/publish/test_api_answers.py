"""A data endpoint's answer kept with its view (:mod:`service.publish.api.answers`): the same
target asked again within the view gets the very response the route made (status, headers,
bytes, on the wire too), without the route; a newer view is answered anew; problems,
filtered queries, other routes and views past their bound are never kept; the kept answers
are bounded per view."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

import httpx
import pytest
import redis.asyncio as aioredis
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from publish_support import now_ms, pressure, store_pressure, store_small_market
from stream_support import serve

from service.config import Settings
from service.publish.api import answers, create_app
from service.publish.api.answers import ViewAnswers
from service.publish.api.snapshot import ANSWERING, STALE_PERIODS, Answering, Snapshots, View

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


# -- the middleware alone, around an app of the test's ----------------------------------------


def _fresh_snapshots() -> Snapshots:
    """Snapshots whose view is fresh for the test's length (no Redis is read)."""
    snaps = Snapshots(cast(aioredis.Redis, None), LONG_S)
    snaps._view = View(time.monotonic(), now_ms(), [], {}, {}, {}, {}, [])
    return snaps


def _scope(snaps: Snapshots, method: str = "GET", **changes: Any) -> dict[str, Any]:
    return {
        "type": "http", "method": method, "path": "/x", "raw_path": b"/x", "query_string": b"",
        "headers": [], "state": {"snapshots": snaps},
    } | changes  # fmt: skip


async def _nothing() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def test_a_body_sent_in_parts_is_passed_on_and_nothing_of_it_held() -> None:
    """``/v1/stream`` is a GET that sends for as long as its client stays: its messages
    were all held until it left (the review of the change found it)."""
    held: list[int] = []

    async def streaming(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for i in range(50):
            message = {"type": "http.response.body", "body": b"event %d" % i, "more_body": True}
            await send(message)
            held.append(sys.getrefcount(message) - 2)  # beyond this frame's and the call's: none
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    answers = ViewAnswers(streaming)
    sent: list[Any] = []

    async def wire(message: Any) -> None:
        sent.append(message["type"])

    await answers(_scope(_fresh_snapshots()), _nothing, wire)
    assert len(sent) == 52
    assert held == [0] * 50
    assert answers.kept == 0


async def test_a_kept_answer_is_sent_as_copies() -> None:
    """A layer outside (a compression middleware added later) may change the messages it is
    given; the kept ones stay as the route made them."""
    snaps = _fresh_snapshots()
    view = snaps.fresh()
    assert view is not None
    body = b'{"items": []}'

    async def route(scope: Any, receive: Any, send: Any) -> None:
        answering = ANSWERING.get()
        assert answering is not None
        answering.view, answering.body = view, body
        await send({"type": "http.response.start", "status": 200, "headers": [(b"a", b"1")]})
        await send({"type": "http.response.body", "body": body})

    answers = ViewAnswers(route)
    seen: list[Any] = []

    async def meddling(message: Any) -> None:
        seen.append(dict(message, headers=list(message.get("headers", []))))
        if message["type"] == "http.response.start":
            message["headers"].append((b"content-encoding", b"gzip"))
        else:
            message["body"] = b"squeezed"

    for _ in range(3):
        await answers(_scope(snaps), _nothing, meddling)
    assert (answers.kept, answers.hits) == (1, 2)
    starts = [m for m in seen if m["type"] == "http.response.start"]
    assert [s["headers"] for s in starts[1:]] == [[(b"a", b"1")]] * 2
    assert [m["body"] for m in seen if m["type"] == "http.response.body"][1:] == [body] * 2


async def test_a_scope_without_raw_path_is_never_kept() -> None:
    """``raw_path`` is optional in ASGI: without it every path would share one key."""
    snaps = _fresh_snapshots()
    view = snaps.fresh()

    async def route(scope: Any, receive: Any, send: Any) -> None:
        answering = ANSWERING.get()
        assert answering is None  # not followed
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    answers = ViewAnswers(route)
    for path in ("/a", "/b"):
        await answers(_scope(snaps, path=path, raw_path=None), _nothing, _discard)
    assert (answers.kept, answers.hits, view is not None) == (0, 0, True)


async def test_a_request_not_followed_does_not_see_the_one_it_was_started_from() -> None:
    """uvicorn starts a connection's next request from within the last ``send`` of the one
    before: in a copy of that request's context, whose ``Answering`` it must not write."""
    snaps = _fresh_snapshots()
    outer = Answering()
    inside: list[Answering | None] = []

    async def route(scope: Any, receive: Any, send: Any) -> None:
        inside.append(ANSWERING.get())
        await send({"type": "http.response.start", "status": 405, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    answers = ViewAnswers(route)
    token = ANSWERING.set(outer)  # as if within a followed request's send
    try:
        await answers(_scope(snaps, method="POST"), _nothing, _discard)
        await answers(_scope(snaps, raw_path=None), _nothing, _discard)
    finally:
        ANSWERING.reset(token)
    assert inside == [None, None]


async def _discard(message: Any) -> None:
    pass
