"""``GET /v1/stream`` over real HTTP (uvicorn on loopback) against the real Redis: every kind
of event, in order, with ids; resuming with ``Last-Event-ID`` (on the same process and on
another); the current scores first; the filters; a slow client dropped with a reason while
the others keep up; one Redis reader for all clients; problems for bad requests."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
from collections.abc import AsyncIterator
from typing import Any, cast

import httpx
import pytest
import redis.asyncio as aioredis
from fastapi import FastAPI
from publish_support import REDIS_URL, liquidation, pressure, store_events, store_pressure
from stream_support import (
    add_alert,
    add_scores,
    add_transition,
    score,
    serve,
    stream,
)

from service.config import ApiSettings, Settings
from service.events import Side
from service.publish.api import create_app, end_streams
from service.publish.api.stream.events import parse_event_id
from service.publish.api.stream.hub import Hub
from service.scores import Scope, State
from service.scores import encode as encode_detect
from service.store import keys

pytestmark = pytest.mark.integration


def _app(settings: Settings, redis: aioredis.Redis, **api: Any) -> FastAPI:
    fields = settings.api.model_dump() | api
    return create_app(settings.model_copy(update={"api": ApiSettings(**fields)}), redis=redis)


@contextlib.asynccontextmanager
async def _served(
    settings: Settings, redis: aioredis.Redis, send_buffer: int | None = None, **api: Any
) -> AsyncIterator[tuple[str, httpx.AsyncClient, FastAPI]]:
    app = _app(settings, redis, **api)
    async with (
        serve(app, send_buffer) as url,
        httpx.AsyncClient(base_url=url, timeout=10) as client,
    ):
        yield url, client, app


def _hub(app: FastAPI) -> Hub:
    return cast(Hub, app.state.hub)  # set by the lifespan


def _ordered(ids: list[str | None]) -> bool:
    positions = [parse_event_id(i or "") for i in ids]
    assert None not in positions
    return all(a < b for a, b in itertools.pairwise(positions))  # type: ignore[operator]


async def test_each_kind_arrives_in_id_order_with_the_rest_api_shapes(
    settings: Settings, redis: aioredis.Redis
) -> None:
    async with _served(settings, redis) as (_, client, _), stream(client, "/v1/stream") as s:
        await asyncio.sleep(0.2)  # the hub is reading
        await add_scores(redis, score(Scope.ASSET, "BTC", 61.5, State.UNWINDING, side=Side.LONG))
        await add_transition(redis, Scope.ASSET, "BTC", State.UNWINDING)
        await add_alert(redis, "bybit", "BTCUSDT", "BTC")
        await store_events(redis, [liquidation("bybit", "BTCUSDT", price=90_000, quantity=2)])
        got = await s.collect(4)
    assert _ordered([e.id for e in got])  # (those of one millisecond: by stream name)
    by_type = {e.type: e for e in got}
    assert sorted(by_type) == ["alert", "liquidation", "score", "transition"]
    sc, tr, al, lq = (by_type[t].data for t in ("score", "transition", "alert", "liquidation"))
    assert (sc["scope"], sc["asset"], sc["state"], sc["side"], sc["score"]) == (
        "asset", "BTC", "unwinding", "long", 61.5
    )  # fmt: skip
    assert sc["updated_at"].endswith("Z")
    assert "features" not in sc
    assert (tr["to_state"], f"{tr['id']}@transitions_asset") == (
        "unwinding", by_type["transition"].id
    )  # fmt: skip
    assert (al["kind"], al["alert"]["key"], al["alert"]["state"]) == (
        "opened", "bybit|BTCUSDT", "cascade"
    )  # fmt: skip
    assert (lq["venue"], lq["side"], lq["notional_usd"]) == ("bybit", "long", 180_000.0)


async def test_a_burst_across_streams_arrives_whole_and_strictly_ordered(
    settings: Settings, redis: aioredis.Redis
) -> None:
    """Entries of several streams written in the same milliseconds (their sequence numbers
    are per stream) still reach the client in id order, none skipped."""
    async with _served(settings, redis) as (_, client, app), stream(client, "/v1/stream") as s:
        await asyncio.sleep(0.2)
        for i in range(100):
            async with redis.pipeline(transaction=True) as pipe:
                pipe.xadd(keys.SCORES, {"e": encode_detect([score(Scope.MARKET, "*", i % 100)])})
                t = encode_detect(_transition(i))
                pipe.xadd(keys.transitions("market"), {"e": t})
                await pipe.execute()
            await store_events(redis, [liquidation("bybit", "BTCUSDT", quantity=1 + i)])
        got = await s.collect(300, timeout_s=20)
        hub = _hub(app)
    assert _ordered([e.id for e in got])
    assert (
        sorted(e.type for e in got)
        == ["liquidation"] * 100 + ["score"] * 100 + ["transition"] * 100
    )
    assert hub.stats.late_events_total == 0


def _transition(i: int) -> Any:
    from service.scores import Transition

    return Transition(
        venue="*", symbol="*", asset="*", from_state=State.CALM, to_state=State.BUILDING,
        side=None, score=float(i % 100), ts_ms=1_795_000_000_000 + i, scope=Scope.MARKET,
    )  # fmt: skip


async def test_resuming_with_last_event_id_gets_exactly_what_was_missed_on_any_process(
    settings: Settings, redis: aioredis.Redis
) -> None:
    async with _served(settings, redis) as (_, client, _):
        async with stream(client, "/v1/stream") as s:
            await asyncio.sleep(0.2)
            await add_transition(redis, Scope.ASSET, "ETH", State.BUILDING)
            last = (await s.collect(1))[0]
        missed = [
            await add_transition(redis, Scope.ASSET, "ETH", State.UNWINDING),
            await add_alert(redis, "okx", "ETH-USDT-SWAP", "ETH"),
            await add_scores(redis, score(Scope.MARKET, "*", 33.0)),
        ]
        await store_events(redis, [liquidation("binance_usdm", "ETHUSDT")])
        async with stream(client, "/v1/stream", last_event_id=last.id) as s:
            same = await s.collect(4)
    # Another API process (its own hub, primed from Redis) resumes the same way.
    async with (
        _served(settings, redis) as (_, other, _app2),
        stream(other, "/v1/stream", last_event_id=last.id) as s,
    ):
        elsewhere = await s.collect(4)
    expected = [f"{missed[0]}@transitions_asset", f"{missed[1]}@alerts",
                f"{missed[2]}@scores"]  # fmt: skip
    for got in (same, elsewhere):
        # in the order of their ids (written in the same millisecond: by stream name, so
        # the liquidation may come before the scores)
        assert _ordered([e.id for e in got])
        assert [e.id for e in got if e.type != "liquidation"] == sorted(
            expected,
            key=parse_event_id,  # type: ignore[arg-type]
        )
        assert [e.type for e in got].count("liquidation") == 1
    assert [e.data for e in same] == [e.data for e in elsewhere]


async def test_a_new_client_first_gets_the_current_scores_of_every_scope_without_ids(
    settings: Settings, redis: aioredis.Redis
) -> None:
    await store_pressure(redis, pressure("bybit", "BTCUSDT", 72.0, State.CASCADE, side=Side.LONG))
    await redis.hset(keys.ASSET_PRESSURE, "BTC", encode_detect(score(Scope.ASSET, "BTC", 55.0)))
    await redis.set(keys.MARKET_PRESSURE, encode_detect(score(Scope.MARKET, "*", 41.0)))
    async with _served(settings, redis) as (_, client, _), stream(client, "/v1/stream") as s:
        first = await s.collect(3)
    assert {(e.data["scope"], e.data["score"]) for e in first} == {
        ("instrument", 72.0), ("asset", 55.0), ("market", 41.0)
    }  # fmt: skip
    assert all(e.type == "score" and e.id is None for e in first)


async def test_an_id_no_longer_kept_is_told_and_followed_by_the_current_scores(
    settings: Settings, redis: aioredis.Redis
) -> None:
    await redis.set(keys.MARKET_PRESSURE, encode_detect(score(Scope.MARKET, "*", 12.0)))
    async with (
        _served(settings, redis) as (_, client, _),
        stream(client, "/v1/stream", last_event_id="1000-0@scores") as s,
    ):
        reset, market = await s.collect(2)
    assert reset.type == "reset"
    assert "no longer kept" in reset.data["reason"]
    assert (market.type, market.data["scope"], market.id) == ("score", "market", None)


async def test_filters_select_scope_asset_venue_type_and_notional(
    settings: Settings, redis: aioredis.Redis
) -> None:
    urls = {
        "asset": "/v1/stream?scope=asset&asset=btc",
        "big": "/v1/stream?types=liquidation&venue=bybit&min_notional_usd=1000",
        "market": "/v1/stream?scope=market&types=score",
    }
    async with _served(settings, redis) as (_, client, _), contextlib.AsyncExitStack() as st:
        readers = {k: await st.enter_async_context(stream(client, u)) for k, u in urls.items()}
        await asyncio.sleep(0.2)
        await add_scores(
            redis, score(Scope.ASSET, "ETH", 10.0), score(Scope.ASSET, "BTC", 20.0),
            score(Scope.MARKET, "*", 30.0),
            score(Scope.INSTRUMENT, "BTC", 40.0, venue="bybit", symbol="BTCUSDT"),
        )  # fmt: skip
        await add_transition(redis, Scope.ASSET, "ETH", State.BUILDING)
        await add_transition(redis, Scope.ASSET, "BTC", State.BUILDING)
        await store_events(redis, [
            liquidation("bybit", "BTCUSDT", price=10.0),  # 10 USD: too small
            liquidation("binance_usdm", "BTCUSDT", price=5000.0),  # another venue
            liquidation("bybit", "ETHUSDT", price=2000.0, side=Side.SHORT),
        ])  # fmt: skip
        asset = await readers["asset"].collect(2)
        big = await readers["big"].collect(1)
        market = await readers["market"].collect(1)
        await add_scores(redis, score(Scope.MARKET, "*", 31.0))  # the end, for every reader
        await store_events(redis, [liquidation("bybit", "SOLUSDT", price=3000.0)])
        await add_transition(redis, Scope.ASSET, "BTC", State.CALM, side=None)
        asset.append((await readers["asset"].collect(1))[0])
        big.append((await readers["big"].collect(1))[0])
        market.append((await readers["market"].collect(1))[0])
    assert [(e.type, e.data["asset"]) for e in asset] == [
        ("score", "BTC"), ("transition", "BTC"), ("transition", "BTC")
    ]  # fmt: skip
    assert [(e.data["symbol"], e.data["side"]) for e in big] == [
        ("ETHUSDT", "short"), ("SOLUSDT", "long")
    ]  # fmt: skip
    assert [e.data["score"] for e in market] == [30.0, 31.0]


def _stalled_client(url: str, path: str) -> socket.socket:
    """A client that sends its request and reads nothing (a tiny receive buffer)."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    sock.sendall(f"GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())  # not chunked
    return sock


async def test_a_slow_client_is_dropped_with_a_reason_and_slows_no_one(
    settings: Settings, redis: aioredis.Redis
) -> None:
    bursts, per_burst = 100, 50
    served = _served(settings, redis, send_buffer=16384, stream_queue_events=1000)
    async with served as (url, client, app):
        stalled = _stalled_client(url, "/v1/stream?types=liquidation")
        try:
            async with stream(client, "/v1/stream?types=liquidation") as fast:
                await asyncio.sleep(0.3)
                reading = asyncio.create_task(fast.collect(bursts * per_burst, timeout_s=60))
                for b in range(bursts):
                    await store_events(redis, [
                        liquidation("bybit", "BTCUSDT", quantity=1 + b * per_burst + i)
                        for i in range(per_burst)
                    ])  # fmt: skip
                    await asyncio.sleep(0.005)
                got = await reading
            assert _hub(app).stats.clients_dropped_total == 1
            stalled.setblocking(False)
            received = await _read_to_end(stalled)
        finally:
            stalled.close()
    assert len(got) == bursts * per_burst
    assert _ordered([e.id for e in got])
    tail = received[received.rindex(b"event: ") :]
    assert tail.startswith(b"event: dropped\ndata: "), tail[:200]
    assert tail.endswith(b"\n\n")
    assert b"fell behind" in tail
    assert b"Last-Event-ID" in tail


async def test_a_client_lagging_too_long_is_dropped_whatever_the_rate(
    settings: Settings, redis: aioredis.Redis
) -> None:
    """A trickle that never fills the mailbox: the client is dropped by the age of what
    waits for it (``stream_max_lag_s``), told so, and the send it was stuck in is given up."""
    served = _served(settings, redis, send_buffer=16384, stream_max_lag_s=1.0)
    async with served as (url, client, app):
        stalled = _stalled_client(url, "/v1/stream?types=liquidation")
        try:
            async with stream(client, "/v1/stream?types=liquidation") as fast:
                await asyncio.sleep(0.3)
                reading = asyncio.create_task(fast.collect(40 * 50, timeout_s=60))
                for b in range(40):  # 200 KB over 4 s
                    await store_events(redis, [
                        liquidation("bybit", "BTCUSDT", quantity=1 + b * 50 + i)
                        for i in range(50)
                    ])  # fmt: skip
                    await asyncio.sleep(0.1)
                got = await reading
            hub = _hub(app)
            assert hub.stats.clients_dropped_total == 1
            stalled.setblocking(False)
            received = await _read_to_end(stalled)
        finally:
            stalled.close()
    assert len(got) == 40 * 50
    tail = received[received.rindex(b"event: ") :]
    assert tail.startswith(b"event: dropped\ndata: "), tail[:200]
    assert b"waiting to be sent for" in tail, tail
    assert b"more than 1 s" in tail, tail


async def _read_to_end(sock: socket.socket) -> bytes:
    loop = asyncio.get_running_loop()
    chunks = []
    async with asyncio.timeout(30):
        while chunk := await loop.sock_recv(sock, 65536):
            chunks.append(chunk)
    return b"".join(chunks)


async def test_one_redis_reader_serves_every_client(
    settings: Settings, redis: aioredis.Redis
) -> None:
    """Twenty clients cost no Redis connection each: the app's pool (named) holds the
    hub's blocking read and nothing per client."""
    named = aioredis.Redis.from_url(REDIS_URL, client_name="stream-test")
    app = create_app(settings, redis=named)
    try:
        async with (
            serve(app) as url,
            httpx.AsyncClient(base_url=url, timeout=10) as client,
            contextlib.AsyncExitStack() as st,
        ):
            readers = [
                await st.enter_async_context(stream(client, "/v1/stream")) for _ in range(20)
            ]
            await asyncio.sleep(0.2)
            await add_transition(redis, Scope.MARKET, "*", State.BUILDING)
            for r in readers:
                assert (await r.collect(1))[0].type == "transition"
            clients: Any = await redis.client_list()
            mine = [c for c in clients if c.get("name") == "stream-test"]
    finally:
        await named.aclose()
    assert 1 <= len(mine) <= 2, mine


async def test_bad_requests_are_problems(settings: Settings, redis: aioredis.Redis) -> None:
    async with _served(settings, redis, stream_max_clients=1) as (_, client, _):
        for params, headers, name in [
            ({}, {"Last-Event-ID": "yesterday"}, "Last-Event-ID"),
            ({"types": "score,gossip"}, {}, "types"),
            ({"scope": "market", "asset": "BTC"}, {}, "asset"),
            ({"scope": "asset", "venue": "bybit"}, {}, "venue"),
            ({"min_notional_usd": "-1"}, {}, "min_notional_usd"),
        ]:
            r = await client.get("/v1/stream", params=params, headers=headers)
            assert r.status_code == 422, (params, r.text)
            assert r.headers["content-type"] == "application/problem+json"
            assert [e["name"] for e in r.json()["errors"]] == [name]
        async with stream(client, "/v1/stream"):
            r = await client.get("/v1/stream")
        assert r.status_code == 503
        assert r.json()["type"] == "tag:deleverage,2026:too-many-clients"
        assert r.headers["retry-after"]


async def test_every_parameter_example_is_accepted(
    settings: Settings, redis: aioredis.Redis
) -> None:
    async with _served(settings, redis) as (_, client, app):
        op = app.openapi()["paths"]["/v1/stream"]["get"]
        sent = 0
        for p in op["parameters"]:
            for example in p.get("examples", []) or [p["schema"].get("examples", [None])[0]]:
                if example is None:
                    continue
                query = {p["name"]: example} if p["in"] == "query" else {}
                headers = {p["name"]: example} if p["in"] == "header" else {}
                async with client.stream("GET", "/v1/stream", params=query, headers=headers) as r:
                    assert r.status_code == 200, (p["name"], example, await r.aread())
                sent += 1
    assert sent >= 4


async def test_heartbeats_keep_a_quiet_stream_alive(
    settings: Settings, redis: aioredis.Redis
) -> None:
    async with (
        _served(settings, redis, stream_heartbeat_s=0.1) as (_, client, _),
        stream(client, "/v1/stream?scope=market") as s,
    ):
        beats = [await s.until("heartbeat", 2) for _ in range(3)]
    assert all(b.id is None and b.data["at"].endswith("Z") for b in beats)


async def test_the_hub_stops_reading_after_its_last_client(
    settings: Settings, redis: aioredis.Redis
) -> None:
    app = _app(settings, redis)
    async with serve(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        hub = _hub(app)
        hub.linger_s = 0.1  # the default (30 s) is too long to wait for
        async with stream(client, "/v1/stream") as s:
            await add_transition(redis, Scope.MARKET, "*", State.BUILDING)
            await s.collect(1)
            assert hub.reading
        await asyncio.sleep(0.5)
        assert not hub.reading
        assert hub.clients == 0


async def test_a_stopping_service_ends_every_stream_with_a_reason(
    settings: Settings, redis: aioredis.Redis
) -> None:
    """The server waits for open responses before it stops, and a stream never ends by
    itself: stopping ends each one (told why), and takes no new one."""
    async with _served(settings, redis) as (_, client, app):
        async with stream(client, "/v1/stream") as s:
            await asyncio.sleep(0.1)
            end_streams(app)
            ended = await s.until("dropped")
            with pytest.raises(EOFError):
                await s.next()
        r = await client.get("/v1/stream")
    assert "stopping" in ended.data["reason"]
    assert r.status_code == 503
