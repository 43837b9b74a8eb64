"""The collector's order book depth against the Bybit simulator, writing to the real Redis: the
top N by open interest get a book on a connection of their own, a new set reconnects that
connection only, and the depth thins through the simulated cascade."""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import replace
from typing import Any

import pytest
import redis.asyncio as aioredis
from harness import (
    a_book_gap_heals,
    depths_once_a_second,
    only_ranked_books_stored,
    running,
    settings_for,
    stored,
    top_by_open_interest,
    until,
)
from procs_support import free_port

from service.collect import collector as collector_module
from service.config import DepthSettings
from service.events import Kind
from service.venues.base import Connection
from service.venues.bybit.simulator.server import BybitSimulator
from service.venues.bybit.venue import Bybit

pytestmark = pytest.mark.integration

VENUE = "bybit"
SYMBOLS = ["BTCUSDT", "ETHUSDT", "DOGEUSDT", "BTCUSD", "ETHUSD"]
LIQUIDATIONS = {"linear-liquidations-1", "inverse-liquidations-1"}
"""The quiet lane: the liquidations' connections."""


async def test_the_top_n_by_open_interest_get_books_that_thin_through_the_cascade(
    redis_client: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(collector_module, "FIRST_RANK_S", 0.2)
    depth = DepthSettings(top_n=2, rerank_s=1.0)
    async with (
        BybitSimulator(seed=3, time_scale=5.0, start_s=14) as sim,
        running(Bybit(settings_for(sim, SYMBOLS, depth=depth)), redis_client) as collector,
    ):
        venue = collector.venue
        await until(lambda: bool(venue.depth_symbols))
        top = top_by_open_interest(collector, 2)
        assert venue.depth_symbols == set(top)
        await until(lambda: sim.market.elapsed_s >= 50, within=30)
        assert collector.health.parse_errors == {}
        assert venue.depth_symbols == set(top)  # the ranking holds: no churn
        # Another ranking: the depth connections rotate to it, the others stay up.
        reconnects = collector.health.reconnects_total
        monkeypatch.setattr(collector_module, "rank", lambda *_: frozenset({"DOGEUSDT"}))
        await until(lambda: venue.depth_symbols == {"DOGEUSDT"})
        await until(
            lambda: set(collector._open) == {"linear-1", "inverse-1", "linear-depth", *LIQUIDATIONS}
        )
        await asyncio.sleep(1.5)
        assert collector.health.reconnects_total == reconnects  # resubscribed: not a reconnect
        assert set(collector._open) == {"linear-1", "inverse-1", "linear-depth", *LIQUIDATIONS}

    for symbol in top:
        depths = await depths_once_a_second(redis_client, VENUE, symbol)
        first, last = depths[0], depths[-1]
        assert first.exact("bid", 2.0)  # the simulated books reach 3 % of mid
        if symbol.startswith("BTC"):  # in the long cascade: thinner
            assert last.bid_usd_1 < 0.7 * first.bid_usd_1, symbol
    await only_ranked_books_stored(
        redis_client, VENUE, "DOGEUSDT", set(SYMBOLS) - set(top) - {"DOGEUSDT"}
    )


async def test_a_connection_opening_beside_a_connected_venue_leaves_it_connected(
    redis_client: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first ranking adds a depth connection per category beside the venue's open ones:
    while they open, the venue stays connected (a shard's health, hence a reader's
    ``/readyz``; seen failing in CI when one had opened and the other not yet). A new
    connection whose first attempt fails makes it not connected until it opens; "connected
    since" is the time every connection has been up."""
    monkeypatch.setattr(collector_module, "FIRST_RANK_S", 0.2)
    ranked: frozenset[str] = frozenset()  # nothing until the venue is up
    monkeypatch.setattr(collector_module, "rank", lambda *_: ranked)
    seen: list[tuple[str, bool, bool]] = []
    """(connection, up, the venue connected after it)"""
    set_connected = collector_module.VenueCollector._set_connected

    def spy(self: collector_module.VenueCollector, name: str, up: bool) -> None:
        set_connected(self, name, up)
        seen.append((name, up, self.health.connected))

    monkeypatch.setattr(collector_module.VenueCollector, "_set_connected", spy)
    depth = DepthSettings(top_n=2, rerank_s=1.0)
    async with (
        BybitSimulator(seed=3, time_scale=5.0, start_s=14) as sim,
        running(Bybit(settings_for(sim, SYMBOLS, depth=depth)), redis_client) as collector,
    ):
        await until(lambda: collector.health.connected)
        since = collector.health.connected_since_ms
        ranked = frozenset({"BTCUSDT", "BTCUSD"})  # one linear, one inverse: two connections
        books = {"linear-depth", "inverse-depth"}
        await until(lambda: books <= set(collector._open))
        up = next(i for i, (_, _, connected) in enumerate(seen) if connected)
        assert {name for name, _, _ in seen[:up]}.isdisjoint(books)  # added once it was up
        assert [connected for _, _, connected in seen[up:]] == [True] * len(seen[up:]), seen
        assert collector.health.reconnects_total == 0
        assert collector.health.connected_since_ms == since  # up all along

        # inverse-depth retired, then asked for again with nothing listening at its address
        ranked = frozenset({"BTCUSDT"})
        await until(lambda: "inverse-depth" not in collector._connected)
        connections, dead = collector.venue.connections, f"ws://127.0.0.1:{free_port()}"

        def nowhere(markets: Any) -> list[Connection]:
            asked = connections(markets)
            return [replace(c, url=dead) if c.name == "inverse-depth" else c for c in asked]

        monkeypatch.setattr(collector.venue, "connections", nowhere)
        ranked = frozenset({"BTCUSDT", "BTCUSD"})
        await until(lambda: not collector.health.connected)
        assert collector.health.last_error is not None
        monkeypatch.setattr(collector.venue, "connections", connections)
        await until(lambda: collector.health.connected and "inverse-depth" in collector._open)
        assert collector.health.connected_since_ms > since  # up again after a connection down


async def test_a_gap_is_counted_and_the_book_resubscribed_on_its_connection(
    redis_client: aioredis.Redis,
) -> None:
    depth = DepthSettings(symbols=["BTCUSDT"])  # a list: no ranking, a book at once
    async with (
        BybitSimulator(seed=3, time_scale=5.0, start_s=22) as sim,
        running(Bybit(settings_for(sim, SYMBOLS, depth=depth)), redis_client) as collector,
    ):
        await a_book_gap_heals(collector, sim, "BTCUSDT")
        assert set(collector._open) == {"linear-1", "inverse-1", "linear-depth", *LIQUIDATIONS}


async def test_books_follow_through_connection_rotations(redis_client: aioredis.Redis) -> None:
    """Make-before-break overlaps two sessions of the depth connection: each keeps books of its
    own (their update ids are the session's), so the overlap counts no gap, and the reports
    stay one a second."""
    depth = DepthSettings(symbols=["BTCUSDT"])
    async with (
        BybitSimulator(seed=3, time_scale=5.0, start_s=22) as sim,
        running(
            Bybit(settings_for(sim, SYMBOLS, depth=depth)), redis_client, max_connection_age_s=2.0
        ) as collector,
    ):
        await until(lambda: Kind.BOOK_DEPTH in collector.latest.get("BTCUSDT", {}))
        await asyncio.sleep(7.0)  # three rotations or so of every connection
        newest = collector.latest["BTCUSDT"][Kind.BOOK_DEPTH].recv_ms
        assert time.time() * 1000 - newest < 2500  # still reported once a second
        assert collector.health.parse_errors == {}
    depths = await stored(redis_client, VENUE, "BTCUSDT", Kind.BOOK_DEPTH)
    times = [d.ts_ms for d in depths]
    assert all(b - a >= 1000 for a, b in itertools.pairwise(times))
