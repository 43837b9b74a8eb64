"""BitMEX's liquidity through the collector against its simulator, writing to the real Redis:
top of book (``quote``) and traded volume (``trade``) for every symbol on the realtime
connection, the ``orderBookL2`` of the top N by open interest on a connection of its own,
all three moving the way the simulated cascade moves them; a gap in a book's ids counted and
healed by a new partial, without a reconnect."""

from __future__ import annotations

import asyncio
import itertools

import pytest
import redis.asyncio as aioredis
from harness import (
    a_book_gap_heals,
    depths_once_a_second,
    running,
    settings_for,
    stored,
    top_by_open_interest,
    until,
)

from service.collect import collector as collector_module
from service.config import DepthSettings
from service.events import BookTop, Kind, Volume
from service.venues.bitmex.simulator import wire
from service.venues.bitmex.simulator.server import BitmexSimulator
from service.venues.bitmex.venue import Bitmex

pytestmark = pytest.mark.integration

VENUE = "bitmex"
SYMBOLS = list(wire.BITMEX_SYMBOLS)


def simulator(start_s: float) -> BitmexSimulator:
    # calm until 20 s, BTC and ETH in a long cascade from 20 s to 60 s (5x faster)
    return BitmexSimulator(seed=3, time_scale=5.0, start_s=start_s, list_only_simulated=True)


async def test_books_top_of_book_and_volume_land_and_move_with_the_cascade(
    redis_client: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(collector_module, "FIRST_RANK_S", 0.2)
    depth = DepthSettings(top_n=2, rerank_s=1.0)
    async with (
        simulator(14) as sim,
        running(Bitmex(settings_for(sim, SYMBOLS, depth=depth)), redis_client) as collector,
    ):
        venue = collector.venue
        await until(lambda: bool(venue.depth_symbols))
        top = top_by_open_interest(collector, 2)
        assert venue.depth_symbols == set(top)
        await until(lambda: set(collector._open) == {"realtime", "depth"})
        await until(lambda: sim.market.elapsed_s >= 50, within=30)
        assert collector.health.parse_errors == {}
        assert venue.depth_symbols == set(top)  # the ranking holds: no churn
        # Another ranking: the depth connection rotates to it, the realtime one stays.
        reconnects = collector.health.reconnects_total
        (other,) = set(SYMBOLS) - set(top)
        monkeypatch.setattr(collector_module, "rank", lambda *_: frozenset({other}))
        await until(lambda: venue.depth_symbols == {other})
        await until(lambda: Kind.BOOK_DEPTH in collector.latest.get(other, {}))
        assert collector.health.reconnects_total == reconnects  # resubscribed: not a reconnect
        assert set(collector._open) == {"realtime", "depth"}
        await asyncio.sleep(1.2)  # the last second's reports reach Redis
        assert collector.health.parse_errors == {}

    for symbol in top:
        depths = await depths_once_a_second(redis_client, VENUE, symbol)
        first, last = depths[0], depths[-1]
        assert first.exact("bid", 2.0)  # the simulated books reach 3 % of mid
        assert first.exact("ask", 2.0)
        assert last.bid_usd_1 < 0.7 * first.bid_usd_1, symbol  # in the long cascade: thinner
    assert await stored(redis_client, VENUE, other, Kind.BOOK_DEPTH)  # the new set's

    for symbol in SYMBOLS:
        books = await stored(redis_client, VENUE, symbol, Kind.BOOK_TOP)
        assert len(books) >= 5, symbol
        assert all(isinstance(b, BookTop) for b in books)
        times = [b.ts_ms for b in books]  # quotes every 100 ms, reported once a second
        assert all(b - a >= 1000 for a, b in itertools.pairwise(times))
        calm, late = books[0], books[-1]
        assert isinstance(calm, BookTop)
        assert isinstance(late, BookTop)
        assert late.spread_bp > 3 * calm.spread_bp, symbol
        assert late.bid_usd + late.ask_usd < 0.6 * (calm.bid_usd + calm.ask_usd), symbol

        seconds = await stored(redis_client, VENUE, symbol, Kind.VOLUME)
        assert len(seconds) >= 5, symbol
        volumes = [v for v in seconds if isinstance(v, Volume)]
        assert len(volumes) == len(seconds)
        assert all(v.ts_ms % 1000 == 0 for v in volumes)
        assert all(b.ts_ms > a.ts_ms for a, b in itertools.pairwise(volumes))
        # the liquidated longs' closes sell into the book
        assert sum(v.taker_sell_usd for v in volumes) > sum(v.taker_buy_usd for v in volumes)
        for v in volumes:
            usd, base = v.taker_buy_usd + v.taker_sell_usd, v.taker_buy_base + v.taker_sell_base
            if symbol == "XBTUSD":
                assert usd == round(usd)  # whole 1 USD contracts
            price = usd / base
            assert 0.5 * sim.mark(symbol) < price < 2 * sim.mark(symbol), symbol


async def test_a_gap_is_counted_and_the_book_resubscribed_on_its_connection(
    redis_client: aioredis.Redis,
) -> None:
    depth = DepthSettings(symbols=["XBTUSD"])  # a list: no ranking, a book at once
    async with (
        simulator(22) as sim,
        running(Bitmex(settings_for(sim, SYMBOLS, depth=depth)), redis_client) as collector,
    ):
        await a_book_gap_heals(collector, sim, "XBTUSD")
        assert set(collector._open) == {"realtime", "depth"}
