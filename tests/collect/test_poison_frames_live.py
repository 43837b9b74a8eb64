"""Hostile frames from a venue, sent between the simulator's own pushes to a running collector
writing to the real Redis: each is counted and dropped, nothing invalid is stored, and the
feed goes on (no reconnect, later frames stored as usual). A frame over the venue's size
limit closes the connection, which is counted and reconnects."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from harness import running, settings_for, stored, until

from service.config import DepthSettings
from service.events import Kind
from service.validate import FUTURE_SLACK_MS, problem
from service.venues.binance.simulator.usdm import BinanceUsdmSimulator
from service.venues.binance.usdm import BinanceUsdm

pytestmark = pytest.mark.integration

VENUE = "binance_usdm"
SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]


@pytest.fixture
async def sim() -> AsyncIterator[BinanceUsdmSimulator]:
    async with BinanceUsdmSimulator(
        seed=5, time_scale=10.0, push_interval_s=0.1, start_s=20, list_only_simulated=True
    ) as s:
        yield s


def _mark(e_ms: int, **fields: object) -> str:
    data = {"e": "markPriceUpdate", "E": e_ms, "s": "BTCUSDT", "p": "60000.5", "i": "60001",
            "P": "60000", "r": "0.0001", "T": e_ms + 3_600_000} | fields  # fmt: skip
    return json.dumps({"stream": "btcusdt@markPrice@1s", "data": data})


def _force_order(t_ms: int, **fields: object) -> str:
    order = {"s": "BTCUSDT", "S": "SELL", "o": "LIMIT", "f": "IOC", "q": "0.5", "p": "59000",
             "ap": "59010", "X": "FILLED", "l": "0.5", "z": "0.5", "T": t_ms} | fields  # fmt: skip
    return json.dumps(
        {"stream": "!forceOrder@arr", "data": {"e": "forceOrder", "E": t_ms, "o": order}}
    )


async def test_poison_frames_are_counted_dropped_and_the_feed_goes_on(
    sim: BinanceUsdmSimulator, redis_client: aioredis.Redis
) -> None:
    # no books: the depth connection's sessions parse with parsers of their own
    depth = DepthSettings(top_n=0)
    venue = BinanceUsdm(settings_for(sim, SYMBOLS, depth=depth, oi_poll_weight_per_minute=60))
    async with running(venue, redis_client) as collector:
        health = collector.health
        await until(lambda: health.events_total > 20)
        now = int(time.time() * 1000)
        poison = {
            "bad_number": [_mark(now, r="x")],
            "too_deep": ['{"a":' * 1000 + "1" + "}" * 1000],
            "non_finite": [
                _force_order(now, p="NaN", ap="NaN"),
                _force_order(now + 1, z="1" + "0" * 400, q="1" + "0" * 400),
            ],
            "negative": [_force_order(now + 2, z="-26083968", q="-26083968")],
            "invalid_1s": [_mark(now, p=None), _mark(now, p="1e400")],
            "invalid_json": ['{"stream":"!forceOrder@arr","data":{"e":', b"\xff\xfe\x00junk", ""],
        }  # fmt: skip
        future = _mark(now + 24 * 3_600_000)  # a day ahead: valid alone, refused at storage
        # every open connection gets each frame (market, book-top, trades-1) and parses it
        expected = dict.fromkeys(poison, 0)
        for reason, frames in poison.items():
            for frame in frames:
                expected[reason] += await sim.inject(frame)
        assert all(n >= len(poison[r]) for r, n in expected.items())
        futures = await sim.inject(future)
        assert futures >= 1
        await until(lambda: all(health.parse_errors[r] >= n for r, n in expected.items()))
        # its mark and its funding, on each connection that got it
        await until(lambda: health.events_invalid["bad_time"] >= 2 * futures)
        events, messages = health.events_total, health.messages_total
        await until(lambda: health.events_total > events + 20 and health.messages_total > messages)
        assert health.parse_errors == expected  # nothing else, and no bug
        assert health.events_invalid == {"bad_time": 2 * futures}
        assert health.reconnects_total == 0
        assert health.connected

    marks = await stored(redis_client, VENUE, "BTCUSDT", Kind.MARK)
    assert [m for m in marks if m.ts_ms >= now - 1000], "marks after the poison were stored"
    assert all(m.ts_ms <= m.recv_ms + FUTURE_SLACK_MS for m in marks)
    for symbol in SYMBOLS:
        for kind in Kind:
            for ev in await stored(redis_client, VENUE, symbol, kind):
                assert problem(ev) is None, ev


async def test_a_frame_over_the_size_limit_reconnects_and_is_counted(
    sim: BinanceUsdmSimulator, redis_client: aioredis.Redis
) -> None:
    # no books: the depth connection's sessions parse with parsers of their own
    depth = DepthSettings(top_n=0)
    venue = BinanceUsdm(settings_for(sim, SYMBOLS, depth=depth, oi_poll_weight_per_minute=60))
    async with running(venue, redis_client) as collector:
        health = collector.health
        await until(lambda: health.messages_total > 10)
        closed = await sim.inject("x" * (venue.max_frame_bytes + 1))  # each open connection
        assert closed >= 1
        await until(lambda: health.reconnects_total == closed and health.connected)
        assert health.parse_errors == {"too_big": closed}
        messages = health.messages_total
        await until(lambda: health.messages_total > messages + 10)
